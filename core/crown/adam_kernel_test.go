package crown

import (
	"math"
	"testing"
)

// Hand-computed steps (exact in float64): with B1 = B2 = 1/2, C1 = 1/2, C2 = 1/4,
// IC1 = 1/2, IC2 = 1, LR = 1, Eps = 0, m = 1 and v = 0, a gradient of 4 gives m = 2.5,
// v = (4/4)·4 = 4 and a step of (2.5/2)/√4 = 0.625; a gradient of −4 gives m = −1.5 and
// a step of −0.375. From 0.25 the first reaches 0.875; from 0.75 it is clamped to 1; the
// second from 0.25 is clamped to 0; a NaN α stays NaN.
func TestAdamHandValues(t *testing.T) {
	s := AdamStep{B1: 0.5, C1: 0.5, B2: 0.5, C2: 0.25, Eps: 0, LR: 1, IC1: 0.5, IC2: 1}
	a := []float64{0.25, 0.75, 0.25, math.NaN()}
	g := []float64{4, 4, -4, 4}
	m := []float64{1, 1, 1, 1}
	v := []float64{0, 0, 0, 0}
	Adam(a, g, m, v, s)
	for i, w := range []float64{0.875, 1, 0, math.NaN()} {
		if a[i] != w && !(math.IsNaN(w) && math.IsNaN(a[i])) {
			t.Errorf("a[%d] = %v, want %v", i, a[i], w)
		}
	}
	if m[0] != 2.5 || v[0] != 4 || m[2] != -1.5 || v[2] != 4 {
		t.Errorf("moments m %v v %v, want m[0] 2.5, m[2] −1.5, v 4", m, v)
	}
}

// Adam calls the hook for matrices of at least minWork values and steps the others
// itself; SetAdamKernel(nil, 0) removes it.
func TestAdamKernelHook(t *testing.T) {
	defer SetAdamKernel(nil, 0)
	calls := 0
	SetAdamKernel(func(a, g, m, v []float64, s AdamStep) {
		calls++
		if len(g) != len(a) || len(m) != len(a) || len(v) != len(a) || s.LR != 0.5 {
			t.Errorf("hook got lengths %d %d %d %d, LR %v", len(a), len(g), len(m), len(v), s.LR)
		}
	}, 4)
	mk := func(n int) []float64 { return make([]float64, n+2) } // g, m, v may be longer
	s := AdamStep{B1: 0.9, C1: 0.1, B2: 0.999, C2: 0.001, Eps: 1e-8, LR: 0.5, IC1: 10, IC2: 1000}
	a := []float64{0.5, 0.5, 0.5}
	Adam(a, mk(3), mk(3), mk(3), s)
	if calls != 0 || a[0] != 0.5 {
		t.Errorf("3 values with minWork 4: %d hook calls, a %v (zero gradient: unchanged)", calls, a)
	}
	Adam(make([]float64, 4), mk(4), mk(4), mk(4), s)
	if calls != 1 {
		t.Errorf("4 values with minWork 4: %d hook calls, want 1", calls)
	}
	SetAdamKernel(nil, 0)
	Adam(make([]float64, 4), mk(4), mk(4), mk(4), s)
	if calls != 1 {
		t.Error("the hook was called after SetAdamKernel(nil, 0)")
	}
}
