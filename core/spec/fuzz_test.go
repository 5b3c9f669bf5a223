package spec

import (
	"math"
	"os"
	"path/filepath"
	"testing"
)

// FuzzParseVNNLIB checks that the VNNLIB and counterexample parsers never panic, and
// that every specification the VNNLIB parser accepts is well formed: at least one case,
// finite non-empty boxes of NumInputs, finite rows of NumOutputs coefficients.
func FuzzParseVNNLIB(f *testing.F) {
	for _, name := range []string{"test_prop", "test_tiny", "test_nano"} {
		if b, err := os.ReadFile(filepath.Join("..", "..", "..", "shared", "testdata", "vnncomp", "test", "vnnlib", name+".vnnlib")); err == nil {
			f.Add(b)
		}
	}
	f.Add([]byte(`(declare-const X_0 Real) (declare-const X_1 Real) (declare-const Y_0 Real) (declare-const Y_1 Real)
(assert (<= X_0 1)) (assert (>= X_0 0))
(assert (or (and (<= X_1 1) (>= X_1 0) (<= Y_0 Y_1)) (and (<= X_1 3) (>= X_1 2))))
(assert (or (>= Y_0 5) (and (<= (+ Y_0 (* 2 Y_1)) (- 3)) (< Y_1 1e-1))))`))
	f.Add([]byte("sat\n((X_0 1)\n (Y_0 -2.5e-3))\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		ParseCounterexampleBytes(b)
		v, err := ParseVNNLIBBytes(b, 0, 0)
		if err != nil {
			return
		}
		if v.NumInputs < 1 || v.NumOutputs < 1 || len(v.Cases) == 0 {
			t.Fatalf("accepted %d inputs, %d outputs, %d cases", v.NumInputs, v.NumOutputs, len(v.Cases))
		}
		for ci, c := range v.Cases {
			if len(c.Lo) != v.NumInputs || len(c.Hi) != v.NumInputs {
				t.Fatalf("case %d: box of %d/%d", ci, len(c.Lo), len(c.Hi))
			}
			for i := range c.Lo {
				if !(c.Lo[i] <= c.Hi[i]) || math.IsInf(c.Lo[i], 0) || math.IsInf(c.Hi[i], 0) {
					t.Fatalf("case %d X_%d: [%v, %v]", ci, i, c.Lo[i], c.Hi[i])
				}
			}
			for _, r := range c.Out {
				if len(r.C) != v.NumOutputs || math.IsNaN(r.D) || math.IsInf(r.D, 0) {
					t.Fatalf("case %d: row %+v", ci, r)
				}
			}
			if !c.Contains(c.Lo, 0) || !c.Contains(c.Hi, 0) {
				t.Fatalf("case %d does not contain its corners", ci)
			}
		}
		x, y, err := ParseCounterexampleBytes([]byte(FormatCounterexample(v.Cases[0].Lo, v.Cases[0].Hi[:1])))
		if err != nil || !sameBits(x, v.Cases[0].Lo) || !sameBits(y, v.Cases[0].Hi[:1]) {
			t.Fatalf("counterexample round trip: %v", err)
		}
		v.Groups()
	})
}
