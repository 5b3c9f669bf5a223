package crown

import (
	"math"
	"math/rand/v2"
	"testing"
)

// randomRelaxation is a relaxation of n neurons of every state (grafted ones with
// random slope and bias), its α columns those of a larger unstable set when cols.
func randomRelaxation(rng *rand.Rand, n int, cols bool) *relaxation {
	o := &actOp{n: n, linear: make([]bool, n), slope: make([]float64, n), bias: make([]float64, n)}
	l, u := make([]float64, n), make([]float64, n)
	for i := 0; i < n; i++ {
		switch rng.IntN(5) {
		case 0:
			l[i], u[i] = -2*rng.Float64()-0.1, -rng.Float64()
		case 1:
			l[i], u[i] = rng.Float64(), 1+rng.Float64()
		case 2:
			o.linear[i] = true
			o.slope[i], o.bias[i] = rng.NormFloat64(), rng.NormFloat64()
			l[i], u[i] = -1, 1
		default:
			l[i], u[i] = -rng.Float64()-0.01, rng.Float64()+0.01
		}
	}
	rx := newRelaxation(o, l, u)
	if cols {
		// Every neuron's column as if all had been unstable when α-CROWN started.
		all := make([]int, n)
		for i := range all {
			all[i] = i
		}
		rx.withColumns(all)
	}
	return rx
}

// randomRows fills n rows of size values, with exact zeros of both signs and, when
// specials, infinities and NaNs.
func randomRelaxRows(rng *rand.Rand, n, size int, specials bool) *rows {
	r := newRows(n, size)
	sp := []float64{math.Inf(1), math.Inf(-1), math.NaN(), 5e-324, -1e308}
	for i := range r.a {
		switch {
		case rng.IntN(6) == 0:
			r.a[i] = []float64{0, math.Copysign(0, -1)}[rng.IntN(2)]
		case specials && rng.IntN(5) == 0:
			r.a[i] = sp[rng.IntN(len(sp))]
		default:
			r.a[i] = rng.NormFloat64()
		}
	}
	for i := range r.bias {
		r.bias[i], r.mag[i] = rng.NormFloat64(), rng.Float64()
	}
	return r
}

func sameRowsBits(t *testing.T, what string, got, want *rows) bool {
	t.Helper()
	for _, p := range [][2][]float64{{got.a, want.a}, {got.bias, want.bias}, {got.mag, want.mag}} {
		for i := range p[1] {
			g, w := p[0][i], p[1][i]
			if math.Float64bits(g) != math.Float64bits(w) && !(math.IsNaN(g) && math.IsNaN(w)) {
				t.Errorf("%s: value %d is %v (%#x), relaxRow gives %v (%#x)", what, i, g, math.Float64bits(g), w, math.Float64bits(w))
				return false
			}
		}
	}
	return true
}

// RelaxRows over a relaxation's table computes what relaxRow does, bit for bit (any
// NaN for a NaN): every state, α columns or none, signed zeros and special values.
func TestRelaxRowsMatchesRelaxRow(t *testing.T) {
	defer SetRelaxKernel(nil, 0)
	SetRelaxKernel(nil, 0)
	rng := rand.New(rand.NewPCG(71, 72))
	for trial := 0; trial < 200; trial++ {
		n, size := 1+rng.IntN(9), 1+rng.IntN(40)
		withAlpha, specials := trial%2 == 1, trial%3 == 0
		rx := randomRelaxation(rng, size, withAlpha)
		var alpha []float64
		if withAlpha {
			alpha = make([]float64, n*rx.acols)
			for i := range alpha {
				alpha[i] = rng.Float64()
			}
		}
		in := randomRelaxRows(rng, n, size, specials)
		want := in.clone()
		rx.backward(want, alpha) // no hook: relaxRow
		got := in.clone()
		RelaxRows(n, size, got.a, rx.table(), alpha, rx.acols, got.bias, got.mag)
		if !sameRowsBits(t, "RelaxRows", got, want) {
			return
		}
	}
}

// Hand-computed: an unstable neuron with l = −1, u = 3 (chord slope 3/4, intercept
// 3/4, lower slope 1) and a grafted one (slope −2, bias 0.5). Row [−2, 4]: −2 takes
// the chord, −1.5 with constant −1.5; 4 becomes −8 with constant 2: total 0.5 added
// to bias 1, magnitudes 1.5 + 2 added to mag 0. Row [2, 0]: 2·1 = 2, the zero stays.
func TestRelaxRowsHandValues(t *testing.T) {
	o := &actOp{n: 2, linear: []bool{false, true}, slope: []float64{0, -2}, bias: []float64{0, 0.5}}
	rx := newRelaxation(o, []float64{-1, -1}, []float64{3, 1})
	a := []float64{-2, 4, 2, 0}
	bias, mag := []float64{1, 0}, []float64{0, 0}
	RelaxRows(2, 2, a, rx.table(), nil, 0, bias, mag)
	want := []float64{-1.5, -8, 2, 0}
	for i := range want {
		if a[i] != want[i] {
			t.Errorf("a[%d] = %v, want %v", i, a[i], want[i])
		}
	}
	if bias[0] != 1.5 || mag[0] != 3.5 || bias[1] != 0 || mag[1] != 0 {
		t.Errorf("bias %v mag %v, want [1.5 0] [3.5 0]", bias, mag)
	}
}

// relaxation.backward calls the hook for batches of at least minWork elements, with
// the relaxation's table and α, and relaxRow below that or without a hook.
func TestRelaxKernelHook(t *testing.T) {
	defer SetRelaxKernel(nil, 0)
	rng := rand.New(rand.NewPCG(73, 74))
	rx := randomRelaxation(rng, 10, true)
	alpha := make([]float64, 4*rx.acols)
	calls := 0
	SetRelaxKernel(func(n, size int, a, tab, al []float64, nu int, bias, mag []float64) {
		calls++
		if n != 4 || size != 10 || len(a) != 40 || len(tab) != 10*RelaxSlots || len(al) != len(alpha) || nu != rx.acols || len(bias) != 4 || len(mag) != 4 {
			t.Errorf("hook called with n %d size %d, lengths %d %d %d, nu %d", n, size, len(a), len(tab), len(al), nu)
		}
		// RelaxRows's Go loop, without going through the hook again.
		for r := 0; r < n; r++ {
			s, m := relaxTableRow(a[r*size:(r+1)*size], tab, al[r*nu:(r+1)*nu])
			bias[r] += s
			mag[r] += m
		}
	}, 40)
	in := randomRelaxRows(rng, 4, 10, false)
	got := in.clone()
	rx.backward(got, alpha)
	if calls != 1 {
		t.Fatalf("4×10 batch with minWork 40: %d hook calls, want 1", calls)
	}
	small := randomRelaxRows(rng, 3, 10, false)
	rx.backward(small.clone(), alpha[:3*rx.acols])
	if calls != 1 {
		t.Errorf("3×10 batch with minWork 40 called the hook")
	}
	SetRelaxKernel(nil, 0)
	want := in.clone()
	rx.backward(want, alpha)
	if calls != 1 {
		t.Errorf("the hook was called after SetRelaxKernel(nil, 0)")
	}
	sameRowsBits(t, "through the hook", got, want)
}
