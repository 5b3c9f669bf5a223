package crown

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

// goIm2col is Im2col's Go loop, for hooks that must not call back into Im2col.
func goIm2col(nr int, src []float64, srcStep int, cols []float64, w, ohw int, jobs []int32, stride int) {
	defer SetIm2colKernel(im2colKernel.Load().f, im2colKernel.Load().minWork)
	SetIm2colKernel(nil, 0)
	Im2col(nr, src, srcStep, cols, w, ohw, jobs, stride)
}

// The column matrices laid out by the im2col plan's jobs (through a hook running
// Im2col's Go loop) are those of the loop nest, bit for bit, on the shared geometries
// and random ones (padding, strides 1–3, dilations), chunks of 1 to 9 rows, columns
// holding garbage beforehand (which padding must clear).
func TestIm2colPlanMatchesLoops(t *testing.T) {
	defer SetIm2colKernel(nil, 0)
	rng := rand.New(rand.NewPCG(101, 102))
	cases := append([]patchConvCase(nil), patchConvCases...)
	for range 200 {
		cases = append(cases, randomConvCase(rng))
	}
	calls := 0
	for ci, k := range cases {
		o := k.build(t, rng)
		c := o.c
		nr := 1 + rng.IntN(9)
		g := randomRows(rng, nr+2, c.InSize())
		ohw := c.OutH * c.OutW
		ckk := c.InC * c.KH * c.KW
		garbage := func() []float64 {
			x := make([]float64, ckk*nr*ohw)
			for i := range x {
				x[i] = math.NaN()
			}
			return x
		}
		SetIm2colKernel(nil, 0)
		want := garbage()
		o.im2col(g, 1, nr, want)
		SetIm2colKernel(func(nr int, src []float64, srcStep int, cols []float64, w, ohw int, jobs []int32, stride int) {
			calls++
			goIm2col(nr, src, srcStep, cols, w, ohw, jobs, stride)
		}, 1)
		got := garbage()
		before := calls
		o.im2col(g, 1, nr, got)
		if calls == before && len(o.im2colPlan().jobs) > 0 {
			t.Fatalf("case %d: the hook was not called", ci)
		}
		for i := range want {
			if math.Float64bits(got[i]) != math.Float64bits(want[i]) {
				t.Fatalf("case %d (%s): cols[%d] = %v through the plan, %v through the loops", ci, fmt.Sprintf("%+v", k), i, got[i], want[i])
			}
		}
	}
}

// Hand-made: a 1×3×5 map, kernel 1×2, stride 2: output 1×2, taps kx = 0, 1. Jobs
// copy the even and the odd input columns of the middle row.
func TestIm2colHandValues(t *testing.T) {
	src := []float64{0, 1, 2, 3, 4, 10, 11, 12, 13, 14} // two rows of 5
	jobs := []int32{0, 0, 0, 3, 1, 1, 1, 2}             // tap 0: 3 values from 0; tap 1: 2 values from 1 at 1
	cols := make([]float64, 2*2*3)                      // 2 taps × (2 rows × 3)
	Im2col(2, src, 5, cols, 6, 3, jobs, 2)
	want := []float64{0, 2, 4, 10, 12, 14, 0, 1, 3, 0, 11, 13}
	for i := range want {
		if cols[i] != want[i] {
			t.Fatalf("cols = %v, want %v", cols, want)
		}
	}
}
