package crown

import (
	"math"
	"math/rand/v2"
	"testing"
)

// Hand-computed bounds (every value a small dyadic rational, so each operation is
// exact): row 1 is [1, −2, 0.5] over mid [0.5, 1, −2] ± rad [0.25, 0.5, 1]:
// a·mid = 0.5 − 2 − 1 = −2.5, |a|·rad = 0.25 + 1 + 0.5 = 1.75, bias 1, so 1 − 2.5 −
// 1.75 = −3.25 without the margin; |a|·mx with mx [0.75, 1.5, 3] is 0.75 + 3 + 1.5 =
// 5.25, so the margin 2⁻¹⁰·(5.25 + mag 0.5 + |bias| 1) = 6.75/1024.
func TestConcretizeHandValues(t *testing.T) {
	a := []float64{
		1, -2, 0.5,
		0, 0, 0,
		-4, 1, 0,
	}
	mid, rad, mx := []float64{0.5, 1, -2}, []float64{0.25, 0.5, 1}, []float64{0.75, 1.5, 3}
	bias, mag := []float64{1, -3, 0.5}, []float64{0.5, 0, 0.25}
	const safety = 1.0 / 1024
	want := []float64{
		-3.25 - 6.75/1024,
		-3 - 3.0/1024, // no terms: the bias and its margin
		// a·mid = −2 + 1 = −1, |a|·rad = 1 + 0.5 = 1.5, |a|·mx = 3 + 1.5 = 4.5
		0.5 - 1 - 1.5 - (4.5+0.25+0.5)/1024,
	}
	lb := make([]float64, 3)
	Concretize(3, 3, a, mid, rad, mx, bias, mag, safety, lb)
	for i := range want {
		if lb[i] != want[i] {
			t.Errorf("lb[%d] = %v, want %v", i, lb[i], want[i])
		}
	}
}

// The sums run in two lanes, even and odd indices, an odd last index in the even lane,
// as the WebAssembly kernel computes them: 1 + 10¹⁶ + 1 − 10¹⁶ summed in order is 0 in
// float64 (10¹⁶ + 1 rounds to 10¹⁶ twice), in lanes (1 + 1) + (10¹⁶ − 10¹⁶) = 2; and
// [10¹⁶, 1, −10¹⁶] is (10¹⁶ − 10¹⁶) + 1 = 1, where the last index in the odd lane
// would give 10¹⁶ + (1 − 10¹⁶) = 0.
func TestConcretizeLanes(t *testing.T) {
	for _, c := range []struct {
		a    []float64
		want float64
	}{
		{[]float64{1, 1e16, 1, -1e16}, 2},
		{[]float64{1e16, 1, -1e16}, 1},
		{[]float64{3}, 3},
	} {
		n := len(c.a)
		ones, zeros := make([]float64, n), make([]float64, n)
		for i := range ones {
			ones[i] = 1
		}
		lb := make([]float64, 1)
		Concretize(1, n, c.a, ones, zeros, zeros, []float64{0}, []float64{0}, 0, lb)
		if lb[0] != c.want {
			t.Errorf("a·1 for a = %v: %v, want %v", c.a, lb[0], c.want)
		}
		// |a|·rad is subtracted with the same lanes.
		Concretize(1, n, c.a, zeros, ones, zeros, []float64{0}, []float64{0}, 0, lb)
		if wantW := -sumAbsLanes(c.a); lb[0] != wantW {
			t.Errorf("−|a|·1 for a = %v: %v, want %v", c.a, lb[0], wantW)
		}
	}
}

// sumAbsLanes is Σ|a| with the even and the odd indices summed apart: exact for the
// cases above (the absolute values are 1, 10¹⁶ and 3).
func sumAbsLanes(a []float64) float64 {
	var s0, s1 float64
	for i, v := range a {
		if i%2 == 0 {
			s0 += math.Abs(v)
		} else {
			s1 += math.Abs(v)
		}
	}
	return s0 + s1
}

// The hook gets batches of at least minWork elements, with slices exactly as long as
// the batch, and nothing smaller; SetConcretizeKernel(nil, 0) removes it.
func TestConcretizeKernelHook(t *testing.T) {
	defer SetConcretizeKernel(nil, 0)
	var calls int
	hook := func(n, size int, a, mid, rad, mx, bias, mag []float64, safety float64, lb []float64) {
		calls++
		if len(a) != n*size || len(mid) != size || len(rad) != size || len(mx) != size || len(bias) != n || len(mag) != n || len(lb) != n {
			t.Errorf("hook called for %d×%d with lengths %d %d %d %d %d %d %d", n, size, len(a), len(mid), len(rad), len(mx), len(bias), len(mag), len(lb))
		}
		if safety != 0.125 {
			t.Errorf("hook got safety %v, want 0.125", safety)
		}
		for i := range lb {
			lb[i] = 42
		}
	}
	rng := rand.New(rand.NewPCG(1, 2))
	// Slices longer than the batch, as the engine's may be.
	vals := func(k int) []float64 {
		v := make([]float64, k+3)
		for i := range v {
			v[i] = rng.NormFloat64()
		}
		return v
	}
	a, mid, rad, mx, bias, mag := vals(4*6), vals(6), vals(6), vals(6), vals(4), vals(4)
	run := func(n, size int) []float64 {
		lb := make([]float64, n)
		Concretize(n, size, a, mid, rad, mx, bias, mag, 0.125, lb)
		return lb
	}
	SetConcretizeKernel(hook, 24)
	if lb := run(3, 6); calls != 0 || lb[0] == 42 {
		t.Errorf("an 18-element batch went to the hook (minWork 24)")
	}
	if lb := run(4, 6); calls != 1 || lb[3] != 42 {
		t.Errorf("a 24-element batch: %d hook calls, lb %v", calls, lb)
	}
	SetConcretizeKernel(nil, 0)
	if lb := run(4, 6); calls != 1 || lb[3] == 42 {
		t.Errorf("after SetConcretizeKernel(nil, 0) the hook was still called")
	}
	// The Go loop's bound, which the hook replaced: row 3 by hand, in lanes.
	var c, w, m [2]float64
	for j := 0; j < 6; j++ {
		v := a[3*6+j]
		c[j%2] += float64(v * mid[j])
		w[j%2] += float64(math.Abs(v) * rad[j])
		m[j%2] += float64(math.Abs(v) * mx[j])
	}
	want := bias[3] + (c[0] + c[1]) - (w[0] + w[1]) - 0.125*((m[0]+m[1])+mag[3]+math.Abs(bias[3]))
	if lb := run(4, 6); lb[3] != want {
		t.Errorf("lb[3] = %v, want %v", lb[3], want)
	}
}

// BenchmarkConcretize is CROWN's batch on mnist_6_100: 18 rows over the 784 inputs.
func BenchmarkConcretize(b *testing.B) {
	const n, size = 18, 784
	rng := rand.New(rand.NewPCG(3, 4))
	v := func(k int) []float64 {
		x := make([]float64, k)
		for i := range x {
			x[i] = rng.NormFloat64()
		}
		return x
	}
	a, mid, rad, mx, bias, mag, lb := v(n*size), v(size), v(size), v(size), v(n), v(n), make([]float64, n)
	b.SetBytes(8 * n * size)
	for b.Loop() {
		Concretize(n, size, a, mid, rad, mx, bias, mag, safety, lb)
	}
}
