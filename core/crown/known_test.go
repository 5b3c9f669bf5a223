package crown

import (
	"context"
	"math"
	"strings"
	"testing"
)

// Known pre-activation bounds (Options.PreLower/PreUpper) of the wrong size or with
// a NaN are refused with an error naming the layer, by Bound and NewSplitSolver alike.
func TestKnownBoundsBadInput(t *testing.T) {
	rm := loadRef(t, "mnist_6_100")
	s := rm.ref.Samples[0]
	lo, hi := box(rm.X.Sample(s.Index), rm.ref.Eps)
	C := marginSpec(s.Label, rm.net.OutSize())
	nan := make([]float64, 100)
	nan[7] = math.NaN()
	for _, c := range []struct {
		lo, hi [][]float64
		msg    string
	}{
		{[][]float64{make([]float64, 99)}, [][]float64{make([]float64, 100)}, "activation layer 0 have 99/100 values"},
		{[][]float64{nil, make([]float64, 100)}, [][]float64{nil, nil}, "activation layer 1 have 100/0 values"},
		{[][]float64{nan}, [][]float64{make([]float64, 100)}, "neuron 7 of activation layer 0 is NaN"},
	} {
		opts := Options{Method: CROWN, PreLower: c.lo, PreUpper: c.hi}
		if _, err := Bound(context.Background(), rm.net, lo, hi, C, opts); err == nil || !strings.Contains(err.Error(), c.msg) {
			t.Errorf("Bound: error %v, want it to mention %q", err, c.msg)
		}
		opts.Method = AlphaCROWN
		if _, _, err := NewSplitSolver(context.Background(), rm.net, lo, hi, C, opts); err == nil || !strings.Contains(err.Error(), c.msg) {
			t.Errorf("NewSplitSolver: error %v, want it to mention %q", err, c.msg)
		}
	}
}
