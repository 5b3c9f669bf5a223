package data

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/graftcert/graftcert/internal/sharedtest"
)

// npyFile builds a .npy file by hand: version major.0, the given header text padded
// with spaces and '\n' to a multiple of 64 as NumPy does, then data.
func npyFile(major byte, header string, data []byte) []byte {
	prefix := 10
	if major >= 2 {
		prefix = 12
	}
	hl := len(header) + 1
	pad := 64 - (prefix+hl)%64
	var b bytes.Buffer
	b.WriteString("\x93NUMPY")
	b.Write([]byte{major, 0})
	if major == 1 {
		binary.Write(&b, binary.LittleEndian, uint16(hl+pad))
	} else {
		binary.Write(&b, binary.LittleEndian, uint32(hl+pad))
	}
	b.WriteString(header)
	b.WriteString(strings.Repeat(" ", pad))
	b.WriteByte('\n')
	b.Write(data)
	return b.Bytes()
}

func hdr(descr, shape string) string {
	return "{'descr': '" + descr + "', 'fortran_order': False, 'shape': " + shape + ", }"
}

// readBoth reads b with the streaming and the in-memory reader and checks they agree.
func readBoth(t *testing.T, b []byte) (*Array, error) {
	t.Helper()
	a1, err1 := ReadNPY(bytes.NewReader(b))
	a2, err2 := ReadNPYBytes(b)
	if (err1 == nil) != (err2 == nil) {
		t.Fatalf("ReadNPY err %v, ReadNPYBytes err %v", err1, err2)
	}
	if err1 != nil {
		return nil, err1
	}
	if !equalArrays(a1, a2) {
		t.Fatalf("readers disagree: %+v vs %+v", a1, a2)
	}
	return a1, nil
}

func equalArrays(a, b *Array) bool {
	if a.DType != b.DType || len(a.Shape) != len(b.Shape) || len(a.Data) != len(b.Data) {
		return false
	}
	for i := range a.Shape {
		if a.Shape[i] != b.Shape[i] {
			return false
		}
	}
	for i := range a.Data {
		if math.Float64bits(a.Data[i]) != math.Float64bits(b.Data[i]) {
			return false
		}
	}
	return true
}

func TestReadSharedNPY(t *testing.T) {
	for _, tc := range []struct {
		name    string
		shape   []int
		refFrom string // a model whose reference JSON uses this data set
	}{
		{"mnist_eran", []int{1000, 1, 28, 28}, "mnist_6_100"},
		{"mnist_sdp", []int{100, 1, 28, 28}, "mnist_cnn_a_adv"},
		{"cifar_sdp", []int{100, 3, 32, 32}, "cifar_conv_small"},
	} {
		X, err := ReadNPYFile(sharedtest.Path(t, "data", tc.name+"_X.npy"))
		if err != nil {
			t.Fatal(err)
		}
		if X.DType != "<f4" || !equalInts(X.Shape, tc.shape) {
			t.Errorf("%s_X: dtype %s shape %v, want <f4 %v", tc.name, X.DType, X.Shape, tc.shape)
		}
		for i, v := range X.Data {
			if v < 0 || v > 1 {
				t.Fatalf("%s_X element %d = %v outside [0,1]", tc.name, i, v)
			}
		}
		Y, err := ReadNPYFile(sharedtest.Path(t, "data", tc.name+"_y.npy"))
		if err != nil {
			t.Fatal(err)
		}
		if Y.DType != "<i8" || !equalInts(Y.Shape, tc.shape[:1]) {
			t.Errorf("%s_y: dtype %s shape %v", tc.name, Y.DType, Y.Shape)
		}
		labels, err := Y.Ints()
		if err != nil {
			t.Fatal(err)
		}
		ref := sharedtest.LoadReference(t, tc.refFrom)
		if ref.Dataset != tc.name {
			t.Fatalf("reference %s uses %s", tc.refFrom, ref.Dataset)
		}
		for _, s := range ref.Samples {
			if labels[s.Index] != s.Label {
				t.Errorf("%s label %d = %d, reference says %d", tc.name, s.Index, labels[s.Index], s.Label)
			}
		}
	}
}

func equalInts(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// NumPy wrote the shared files; writing what was read must give the same bytes.
func TestWriteNPYMatchesNumPyBytes(t *testing.T) {
	for _, name := range []string{"mnist_sdp_X", "mnist_sdp_y", "cifar_sdp_X", "cifar_sdp_y"} {
		path := sharedtest.Path(t, "data", name+".npy")
		orig, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		a, err := ReadNPYBytes(orig)
		if err != nil {
			t.Fatal(err)
		}
		var buf bytes.Buffer
		if err := WriteNPY(&buf, a); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(buf.Bytes(), orig) {
			t.Errorf("%s: rewritten file differs from NumPy's (%d vs %d bytes)", name, buf.Len(), len(orig))
		}
	}
}

func TestWriteNPYExactBytes(t *testing.T) {
	var buf bytes.Buffer
	if err := WriteNPY(&buf, &Array{Shape: []int{2}, DType: "<i8", Data: []float64{1, -2}}); err != nil {
		t.Fatal(err)
	}
	want := "\x93NUMPY\x01\x00\x76\x00" + "{'descr': '<i8', 'fortran_order': False, 'shape': (2,), }" +
		strings.Repeat(" ", 60) + "\n" +
		"\x01\x00\x00\x00\x00\x00\x00\x00" + "\xfe\xff\xff\xff\xff\xff\xff\xff"
	if buf.String() != want {
		t.Errorf("got %q\nwant %q", buf.String(), want)
	}
	// 0-d array, default dtype <f8.
	buf.Reset()
	if err := WriteNPY(&buf, &Array{Data: []float64{0.5}}); err != nil {
		t.Fatal(err)
	}
	want = "\x93NUMPY\x01\x00\x76\x00" + "{'descr': '<f8', 'fortran_order': False, 'shape': (), }" +
		strings.Repeat(" ", 62) + "\n" + "\x00\x00\x00\x00\x00\x00\xe0\x3f"
	if buf.String() != want {
		t.Errorf("got %q\nwant %q", buf.String(), want)
	}
}

func TestReadNPYDTypes(t *testing.T) {
	le, be := binary.LittleEndian, binary.BigEndian
	f32 := func(o binary.ByteOrder, v ...float32) []byte {
		b := make([]byte, 4*len(v))
		for i, x := range v {
			o.PutUint32(b[4*i:], math.Float32bits(x))
		}
		return b
	}
	f64 := func(o binary.ByteOrder, v ...float64) []byte {
		b := make([]byte, 8*len(v))
		for i, x := range v {
			o.PutUint64(b[8*i:], math.Float64bits(x))
		}
		return b
	}
	for _, tc := range []struct {
		descr string
		data  []byte
		want  []float64
	}{
		{"<f4", f32(le, 0.1, -2.5, 1e30), []float64{float64(float32(0.1)), -2.5, float64(float32(1e30))}},
		{">f4", f32(be, 0.1, -2.5, 3), []float64{float64(float32(0.1)), -2.5, 3}},
		{"<f8", f64(le, 0.1, -1e-300, math.Inf(1)), []float64{0.1, -1e-300, math.Inf(1)}},
		{">f8", f64(be, 0.1, 7, math.Copysign(0, -1)), []float64{0.1, 7, math.Copysign(0, -1)}},
		{"|u1", []byte{0, 7, 255}, []float64{0, 7, 255}},
		{"|i1", []byte{0, 0x80, 0xff}, []float64{0, -128, -1}},
		{"|b1", []byte{0, 1, 1}, []float64{0, 1, 1}},
		{"<i2", []byte{1, 0, 0, 0x80, 0xff, 0xff}, []float64{1, -32768, -1}},
		{">i2", []byte{0, 1, 0x80, 0, 0xff, 0xff}, []float64{1, -32768, -1}},
		{"<u2", []byte{1, 0, 0, 0x80, 0xff, 0xff}, []float64{1, 32768, 65535}},
		{"<i4", []byte{1, 0, 0, 0, 0, 0, 0, 0x80, 0xff, 0xff, 0xff, 0xff}, []float64{1, -2147483648, -1}},
		{"<u4", []byte{1, 0, 0, 0, 0, 0, 0, 0x80, 0xff, 0xff, 0xff, 0xff}, []float64{1, 2147483648, 4294967295}},
		{"<i8", []byte{9, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x20, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff},
			[]float64{9, 1 << 53, -1}},
		{"<u8", []byte{9, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x20, 0, 0, 0, 0, 0, 0, 0, 0, 0}, []float64{9, 1 << 53, 0}},
	} {
		for _, major := range []byte{1, 2, 3} {
			a, err := readBoth(t, npyFile(major, hdr(tc.descr, "(3,)"), tc.data))
			if err != nil {
				t.Errorf("%s v%d: %v", tc.descr, major, err)
				continue
			}
			if a.DType != tc.descr || !equalInts(a.Shape, []int{3}) {
				t.Errorf("%s: got dtype %s shape %v", tc.descr, a.DType, a.Shape)
			}
			for i := range tc.want {
				if math.Float64bits(a.Data[i]) != math.Float64bits(tc.want[i]) {
					t.Errorf("%s v%d element %d = %v, want %v", tc.descr, major, i, a.Data[i], tc.want[i])
				}
			}
		}
		// Writing back with the same dtype reproduces the data bytes.
		a, _ := ReadNPYBytes(npyFile(1, hdr(tc.descr, "(3,)"), tc.data))
		var buf bytes.Buffer
		if err := WriteNPY(&buf, a); err != nil {
			t.Errorf("write %s: %v", tc.descr, err)
		} else if !bytes.Equal(buf.Bytes(), npyFile(1, hdr(tc.descr, "(3,)"), tc.data)) {
			t.Errorf("write %s: bytes differ", tc.descr)
		}
	}
}

func TestReadNPYHeaderForms(t *testing.T) {
	for _, tc := range []struct {
		header string
		shape  []int
	}{
		{`{"descr": "<f8", "fortran_order": False, "shape": (2, 1)}`, []int{2, 1}},
		{`{'shape': (2L, 1L), 'fortran_order': False, 'descr': '<f8'}`, []int{2, 1}},
		{"{'descr':'<f8','fortran_order':False,'shape':(2,1,),}", []int{2, 1}},
		{"{ 'descr' : '<f8' ,\t'fortran_order' : False , 'shape' : ( 2 , ) , }", []int{2}},
		{"{'descr': '<f8', 'fortran_order': False, 'shape': (0, 5), }", []int{0, 5}},
	} {
		n := 1
		for _, d := range tc.shape {
			n *= d
		}
		a, err := readBoth(t, npyFile(1, tc.header, make([]byte, 8*n)))
		if err != nil {
			t.Errorf("%s: %v", tc.header, err)
			continue
		}
		if !equalInts(a.Shape, tc.shape) || len(a.Data) != n {
			t.Errorf("%s: shape %v, %d elements", tc.header, a.Shape, len(a.Data))
		}
	}
	// A version 3 header may hold UTF-8 (NumPy uses it for field names); ours has it
	// in trailing whitespace-free form nowhere else, so check the UTF-8 check instead.
	bad := npyFile(3, hdr("<f8", "(1,)")+"\xff", make([]byte, 8))
	if _, err := readBoth(t, bad); !errors.Is(err, ErrHeader) || !strings.Contains(err.Error(), "UTF-8") {
		t.Errorf("invalid UTF-8 in v3 header: %v", err)
	}
}

func TestReadNPYErrors(t *testing.T) {
	good := npyFile(1, hdr("<f8", "(2,)"), make([]byte, 16))
	flip := func(i int, b byte) []byte {
		c := append([]byte(nil), good...)
		c[i] = b
		return c
	}
	hugeLen := append([]byte("\x93NUMPY\x02\x00"), 0, 0, 0, 0x40)
	for _, tc := range []struct {
		name string
		in   []byte
		want error
		msg  string
	}{
		{"empty", nil, ErrTruncated, "empty input"},
		{"short magic", []byte("\x93NUM"), ErrTruncated, "shorter than the 8-byte magic"},
		{"bad magic", flip(1, 'X'), ErrMagic, "at byte 0"},
		{"version 4", flip(6, 4), ErrUnsupported, "version 4.0 at byte 6"},
		{"no header length", good[:9], ErrTruncated, "header length at byte 8"},
		{"truncated header", good[:40], ErrTruncated, "header at byte 10: got 30 of 118 bytes"},
		{"huge header length", hugeLen, ErrHeader, "exceeds"},
		{"truncated data", good[:len(good)-3], ErrTruncated, "data at byte 128: shape [2] of <f8 needs 16 bytes"},
		{"trailing data", append(append([]byte(nil), good...), 0), ErrTrailing, "at byte 144"},
		{"fortran order", npyFile(1, "{'descr': '<f8', 'fortran_order': True, 'shape': (2,), }", make([]byte, 16)), ErrUnsupported, "fortran_order True at byte 44"},
		{"object array", npyFile(1, hdr("|O", "(2,)"), make([]byte, 16)), ErrUnsupported, "object arrays"},
		{"complex", npyFile(1, hdr("<c16", "(2,)"), make([]byte, 32)), ErrUnsupported, `"<c16"`},
		{"half", npyFile(1, hdr("<f2", "(2,)"), make([]byte, 4)), ErrUnsupported, `"<f2"`},
		{"unicode", npyFile(1, hdr("<U3", "(2,)"), make([]byte, 24)), ErrUnsupported, `"<U3"`},
		{"structured", npyFile(1, "{'descr': [('a', '<f8')], 'fortran_order': False, 'shape': (2,), }", make([]byte, 16)), ErrUnsupported, "structured dtype"},
		{"shape overflow", npyFile(1, hdr("<f8", "(2147483648, 2147483648)"), nil), ErrShape, "more than"},
		{"too many elements", npyFile(1, hdr("|u1", "(65536, 65536)"), nil), ErrShape, "more than 2147483648 elements"},
		{"huge dimension", npyFile(1, hdr("|u1", "(99999999999999999999999,)"), nil), ErrShape, "too large"},
		{"negative dimension", npyFile(1, hdr("<f8", "(-2,)"), nil), ErrHeader, "non-negative integer"},
		{"int not tuple", npyFile(1, hdr("<f8", "(2)"), make([]byte, 16)), ErrHeader, "not a tuple"},
		{"missing shape", npyFile(1, "{'descr': '<f8', 'fortran_order': False}", nil), ErrHeader, "no 'shape'"},
		{"missing descr", npyFile(1, "{'fortran_order': False, 'shape': ()}", nil), ErrHeader, "no 'descr'"},
		{"missing order", npyFile(1, "{'descr': '<f8', 'shape': ()}", nil), ErrHeader, "no 'fortran_order'"},
		{"unknown key", npyFile(1, "{'descr': '<f8', 'fortran_order': False, 'shape': (), 'x': 1}", nil), ErrHeader, `unexpected key "x"`},
		{"duplicate key", npyFile(1, "{'descr': '<f8', 'descr': '<f8', 'fortran_order': False, 'shape': ()}", nil), ErrHeader, "duplicate key"},
		{"bad bool", npyFile(1, "{'descr': '<f8', 'fortran_order': 0, 'shape': ()}", nil), ErrHeader, "want True or False"},
		{"unterminated string", npyFile(1, "{'descr': '<f8", nil), ErrHeader, "unterminated string"},
		{"no brace", npyFile(1, "'descr': '<f8'", nil), ErrHeader, "want '{'"},
		{"junk after dict", npyFile(1, hdr("<f8", "()")+" x", make([]byte, 8)), ErrHeader, "after the header dictionary"},
		{"latin1 byte", npyFile(1, "{'descr': '<f8', 'fortran_order': False, 'shape': (\xe9,)}", nil), ErrHeader, "non-negative integer"},
		{"int64 beyond 2^53", npyFile(1, hdr("<i8", "(1,)"), []byte{1, 0, 0, 0, 0, 0, 0x20, 0}), ErrValue, "beyond ±2^53"},
	} {
		_, err := readBoth(t, tc.in)
		if !errors.Is(err, tc.want) || !strings.Contains(err.Error(), tc.msg) {
			t.Errorf("%s: got %v, want %v containing %q", tc.name, err, tc.want, tc.msg)
		}
	}
}

// A header may claim a shape of gigabytes; a truncated stream must fail after reading
// what is there, without allocating what was claimed.
func TestReadNPYHugeClaimDoesNotAllocate(t *testing.T) {
	in := npyFile(1, hdr("<f8", "(268435456,)"), make([]byte, 1000)) // claims 2 GiB
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	_, err := ReadNPY(bytes.NewReader(in))
	runtime.ReadMemStats(&after)
	if !errors.Is(err, ErrTruncated) {
		t.Fatalf("got %v, want ErrTruncated", err)
	}
	if got := after.TotalAlloc - before.TotalAlloc; got > 8<<20 {
		t.Errorf("allocated %d bytes for a 1 kB input", got)
	}
	runtime.ReadMemStats(&before)
	_, err = ReadNPYBytes(in)
	runtime.ReadMemStats(&after)
	if !errors.Is(err, ErrTruncated) {
		t.Fatalf("got %v, want ErrTruncated", err)
	}
	if got := after.TotalAlloc - before.TotalAlloc; got > 1<<20 {
		t.Errorf("ReadNPYBytes allocated %d bytes for a 1 kB input", got)
	}
}

func TestWriteNPYErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		a    *Array
		want error
		msg  string
	}{
		{"shape mismatch", &Array{Shape: []int{2, 2}, Data: make([]float64, 3)}, ErrShape, "holds 4 elements but Data has 3"},
		{"negative shape", &Array{Shape: []int{-1}}, ErrShape, "negative"},
		{"fraction as int", &Array{Shape: []int{2}, DType: "<i8", Data: []float64{1, 1.5}}, ErrValue, "element 1 (1.5)"},
		{"NaN as int", &Array{Shape: []int{1}, DType: "<i4", Data: []float64{math.NaN()}}, ErrValue, "element 0"},
		{"u1 overflow", &Array{Shape: []int{1}, DType: "|u1", Data: []float64{256}}, ErrValue, "[0, 255]"},
		{"i1 underflow", &Array{Shape: []int{1}, DType: "|i1", Data: []float64{-129}}, ErrValue, "[-128, 127]"},
		{"i8 beyond 2^53", &Array{Shape: []int{1}, DType: "<i8", Data: []float64{1 << 54}}, ErrValue, "element 0"},
		{"f4 overflow", &Array{Shape: []int{1}, DType: "<f4", Data: []float64{1e39}}, ErrValue, "overflows float32"},
		{"object", &Array{Shape: []int{1}, DType: "|O", Data: []float64{1}}, ErrUnsupported, "object"},
	} {
		err := WriteNPY(&bytes.Buffer{}, tc.a)
		if !errors.Is(err, tc.want) || !strings.Contains(err.Error(), tc.msg) {
			t.Errorf("%s: got %v, want %v containing %q", tc.name, err, tc.want, tc.msg)
		}
	}
}

func TestNPYFileRoundTrip(t *testing.T) {
	dir := t.TempDir()
	a := &Array{Shape: []int{2, 3}, DType: "<f4", Data: []float64{0, 0.25, -1, 3, 1e-3, 65504}}
	p := filepath.Join(dir, "a.npy")
	if err := WriteNPYFile(p, a); err != nil {
		t.Fatal(err)
	}
	b, err := ReadNPYFile(p)
	if err != nil {
		t.Fatal(err)
	}
	want := []float64{0, 0.25, -1, 3, float64(float32(1e-3)), 65504}
	for i := range want {
		if b.Data[i] != want[i] {
			t.Errorf("element %d = %v, want %v", i, b.Data[i], want[i])
		}
	}
	if got := b.Sample(1); len(got) != 3 || got[0] != 3 {
		t.Errorf("Sample(1) = %v", got)
	}
	if b.Sample(2) != nil || b.Sample(-1) != nil {
		t.Error("Sample out of range is not nil")
	}
	if _, err := ReadNPYFile(filepath.Join(dir, "missing.npy")); err == nil {
		t.Error("missing file: no error")
	}
	// Truncated file on disk: the error names the path.
	os.WriteFile(p, npyFile(1, hdr("<f8", "(9,)"), make([]byte, 8)), 0o644)
	if _, err := ReadNPYFile(p); !errors.Is(err, ErrTruncated) || !strings.Contains(err.Error(), p) {
		t.Errorf("truncated file: %v", err)
	}
}

func TestInts(t *testing.T) {
	a := &Array{Shape: []int{3}, Data: []float64{0, -4, 9}}
	got, err := a.Ints()
	if err != nil || !equalInts(got, []int{0, -4, 9}) {
		t.Errorf("Ints = %v, %v", got, err)
	}
	for _, v := range []float64{0.5, math.NaN(), math.Inf(-1), 1 << 54} {
		a := &Array{Shape: []int{2}, Data: []float64{1, v}}
		if _, err := a.Ints(); !errors.Is(err, ErrValue) || !strings.Contains(err.Error(), "element 1") {
			t.Errorf("Ints with %v: %v", v, err)
		}
	}
}
