package onnx

import (
	"bufio"
	"encoding/binary"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/graftcert/graftcert/internal/sharedtest"
)

// readNpyF32 is a test-only reader for little-endian float32 C-order .npy files
// (v1–v3 headers); it returns the shape and the values as float64. core/data has the
// real reader; this keeps the onnx tests independent of it.
func readNpyF32(tb testing.TB, path string) ([]int, []float64) {
	tb.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		tb.Fatal(err)
	}
	if len(b) < 10 || string(b[:6]) != "\x93NUMPY" {
		tb.Fatalf("%s: not an npy file", path)
	}
	var hl, start int
	if b[6] == 1 {
		hl, start = int(binary.LittleEndian.Uint16(b[8:])), 10
	} else {
		hl, start = int(binary.LittleEndian.Uint32(b[8:])), 12
	}
	header := string(b[start : start+hl])
	if !strings.Contains(header, "'descr': '<f4'") || !strings.Contains(header, "'fortran_order': False") {
		tb.Fatalf("%s: want little-endian float32 C order, header %s", path, header)
	}
	m := regexp.MustCompile(`'shape': \(([^)]*)\)`).FindStringSubmatch(header)
	var shape []int
	n := 1
	for _, f := range strings.Split(m[1], ",") {
		if f = strings.TrimSpace(f); f != "" {
			d, _ := strconv.Atoi(f)
			shape = append(shape, d)
			n *= d
		}
	}
	data := b[start+hl:]
	if len(data) != 4*n {
		tb.Fatalf("%s: %d data bytes for shape %v", path, len(data), shape)
	}
	v := make([]float64, n)
	for i := range v {
		v[i] = float64(math.Float32frombits(binary.LittleEndian.Uint32(data[4*i:])))
	}
	return shape, v
}

// witness is a VNN-COMP counterexample: input X and output Y.
type witness struct{ X, Y []float64 }

var witnessRE = regexp.MustCompile(`\(\s*([XY])_(\d+)\s+([-+0-9.eE]+)\s*\)`)

// readWitness parses the competition's `((X_0 v) ... (Y_0 v) ...)` format.
func readWitness(tb testing.TB, path string) witness {
	tb.Helper()
	f, err := os.Open(path)
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	var w witness
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<24)
	for sc.Scan() {
		for _, m := range witnessRE.FindAllStringSubmatch(sc.Text(), -1) {
			i, _ := strconv.Atoi(m[2])
			v, err := strconv.ParseFloat(m[3], 64)
			if err != nil {
				tb.Fatalf("%s: %v", path, err)
			}
			dst := &w.X
			if m[1] == "Y" {
				dst = &w.Y
			}
			for len(*dst) <= i {
				*dst = append(*dst, math.NaN())
			}
			(*dst)[i] = v
		}
	}
	if len(w.X) == 0 || len(w.Y) == 0 {
		tb.Fatalf("%s: no X or Y values", path)
	}
	return w
}

func closeEnough(got, want, tol float64) bool {
	return math.Abs(got-want) <= tol*math.Max(1, math.Abs(want))
}

func modelPath(tb testing.TB, name string) string {
	return sharedtest.Path(tb, "models", name+".onnx")
}

func vnncompModels(tb testing.TB) []string {
	tb.Helper()
	files, err := filepath.Glob(sharedtest.Path(tb, "vnncomp", "*", "onnx", "*.onnx"))
	if err != nil || len(files) == 0 {
		tb.Fatalf("no VNN-COMP networks found: %v", err)
	}
	return files
}
