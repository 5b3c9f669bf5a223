package crown

import (
	"math"
	"math/rand/v2"
	"testing"
)

// goConvHooks are hooks running Gather's and Interleave's Go loops (the hooks removed
// meanwhile), counting their calls.
func goConvHooks(calls *[2]int) (GatherKernel, InterleaveKernel) {
	return func(inC, ihw, kkw, nr int, cols, g []float64, segs, src []int32) {
			calls[0]++
			h := convKernels.Load()
			defer convKernels.Store(h)
			convKernels.Store(nil)
			Gather(inC, ihw, kkw, nr, cols, g, segs, src)
		}, func(ny, iw, nr int, g []float64, xmap, rs []int32, out []float64, size int) {
			calls[1]++
			h := convKernels.Load()
			defer convKernels.Store(h)
			convKernels.Store(nil)
			Interleave(ny, iw, nr, g, xmap, rs, out, size)
		}
}

// The transposed convolution through Gather and Interleave (their Go loops, via the
// hooks) equals the gather and interleave loops bit for bit, on the shared geometries
// and random ones (padding, strides 1–3, dilations), in several chunks of rows.
func TestConvKernelsMatchLoops(t *testing.T) {
	defer SetConvKernels(nil, nil, 0)
	rng := rand.New(rand.NewPCG(121, 122))
	cases := append([]patchConvCase(nil), patchConvCases...)
	for range 150 {
		cases = append(cases, randomConvCase(rng))
	}
	var calls [2]int
	gk, ik := goConvHooks(&calls)
	for ci, k := range cases {
		o := k.build(t, rng)
		c := o.c
		n := 1 + rng.IntN(9)
		if ci < len(patchConvCases) {
			n = 37
		}
		in := randomRows(rng, n, c.OutSize())
		SetConvKernels(nil, nil, 0)
		want := newRows(n, c.InSize())
		o.gemmBackward(in, want)
		SetConvKernels(gk, ik, 1)
		before := calls
		got := newRows(n, c.InSize())
		o.gemmBackward(in, got)
		if calls[0] == before[0] || calls[1] == before[1] {
			t.Fatalf("case %d: the hooks were not called", ci)
		}
		for i := range want.a {
			if g, w := got.a[i], want.a[i]; math.Float64bits(g) != math.Float64bits(w) {
				t.Fatalf("case %d (%+v): value %d is %v through Gather and Interleave, %v through the loops", ci, k, i, g, w)
			}
		}
	}
}

// Hand-made: two channels of 3 positions, 2 rows (nr = 2): segment 0 (position 0, one
// value) has no source, segment 1 (positions 1–2) sums sources 0 and 2 of its
// channel's columns. Interleave then reads g's first 8 values as 2 input rows of 2
// positions (g[y·4 + pos·2 + r]), swaps the positions (xmap = [1, 0]) and writes row
// r = 0 to out row 1, r = 1 to out row 0: out row 1 is [6, 0 | 0, 10] (y = 0: pos 1
// then 0 of r = 0; y = 1 likewise), out row 0 is [8, 0 | 0, 12].
func TestGatherInterleaveHandValues(t *testing.T) {
	cols := []float64{ // per channel (kkw = 8): sources 0–3, each 2 rows
		1, 2, 3, 4, 5, 6, 7, 8,
		10, 20, 30, 40, 50, 60, 70, 80,
	}
	segs := []int32{0, 1, 0, 0, 1, 2, 2, 0}
	src := []int32{0, 2}
	g := make([]float64, 2*3*2)
	for i := range g {
		g[i] = -1
	}
	Gather(2, 3, 8, 2, cols, g, segs, src)
	// position 0: 0, 0; positions 1–2 (4 values): sources 0 and 2 from value 0: 1+5, 2+6, 3+7, 4+8.
	want := []float64{0, 0, 6, 8, 10, 12, 0, 0, 60, 80, 100, 120}
	for i := range want {
		if g[i] != want[i] {
			t.Fatalf("g = %v, want %v", g, want)
		}
	}
	out := make([]float64, 2*4)
	Interleave(2, 2, 2, g, []int32{1, 0}, []int32{1, 0}, out, 4)
	wantOut := []float64{8, 0, 0, 12, 6, 0, 0, 10}
	for i := range wantOut {
		if out[i] != wantOut[i] {
			t.Fatalf("out = %v, want %v", out, wantOut)
		}
	}
}
