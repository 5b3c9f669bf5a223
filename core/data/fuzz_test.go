package data

import (
	"bytes"
	"math"
	"testing"
)

// FuzzReadNPY checks that the two .npy readers never panic, agree with each other, and
// that whatever they accept survives a write and a re-read.
func FuzzReadNPY(f *testing.F) {
	f.Add(npyFile(1, hdr("<f4", "(2, 1)"), make([]byte, 8)))
	f.Add(npyFile(2, hdr("<i8", "(1,)"), []byte{7, 0, 0, 0, 0, 0, 0, 0}))
	f.Add(npyFile(3, hdr(">f8", "()"), []byte{0x3f, 0xf0, 0, 0, 0, 0, 0, 0}))
	f.Add(npyFile(1, hdr("|u1", "(3,)"), []byte{1, 2, 3}))
	f.Add(npyFile(1, "{'descr': '<f8', 'fortran_order': True, 'shape': (2,), }", make([]byte, 16)))
	f.Add([]byte("\x93NUMPY\x01\x00"))
	f.Fuzz(func(t *testing.T, b []byte) {
		a1, err1 := ReadNPY(bytes.NewReader(b))
		a2, err2 := ReadNPYBytes(b)
		if (err1 == nil) != (err2 == nil) {
			t.Fatalf("ReadNPY err %v, ReadNPYBytes err %v", err1, err2)
		}
		if err1 != nil {
			return
		}
		if !equalArrays(a1, a2) {
			t.Fatal("readers disagree")
		}
		var buf bytes.Buffer
		if err := WriteNPY(&buf, a1); err != nil {
			t.Fatalf("re-writing an accepted array: %v", err)
		}
		a3, err := ReadNPYBytes(buf.Bytes())
		if err != nil {
			t.Fatalf("re-reading: %v", err)
		}
		for i := range a1.Data {
			x, y := a1.Data[i], a3.Data[i]
			if x != y && !(math.IsNaN(x) && math.IsNaN(y)) {
				t.Fatalf("element %d: %v became %v", i, x, y)
			}
		}
	})
}

// FuzzReadIDX checks that the IDX readers never panic and that accepted image files
// hold exactly the pixels their dimensions promise.
func FuzzReadIDX(f *testing.F) {
	f.Add(idxImg)
	f.Add(idxLab)
	f.Add(gz(idxImg))
	f.Add(gz(idxLab))
	f.Add(idxImg[:7])
	f.Fuzz(func(t *testing.T, b []byte) {
		if m, err := ReadIDXImages(bytes.NewReader(b)); err == nil {
			if len(m.Pixels) != m.N*m.Rows*m.Cols {
				t.Fatalf("%d pixels for %d×%d×%d", len(m.Pixels), m.N, m.Rows, m.Cols)
			}
		}
		ReadIDXLabels(bytes.NewReader(b))
	})
}
