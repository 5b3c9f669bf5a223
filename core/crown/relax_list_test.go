package crown

import (
	"math"
	"math/rand"
	rand2 "math/rand/v2"
	"testing"
)

// relaxListed must give relaxRow's values bit for bit on every mix of states, with and
// without α, including zeros of both signs and negative coefficients.
func TestRelaxListedMatchesRelaxRow(t *testing.T) {
	rng := rand.New(rand.NewSource(3))
	for trial := 0; trial < 200; trial++ {
		n := 1 + rng.Intn(60)
		l, u := make([]float64, n), make([]float64, n)
		graft := make([]bool, n)
		slope, ib := make([]float64, n), make([]float64, n)
		for i := range l {
			c, w := rng.NormFloat64(), rng.Float64()*2
			l[i], u[i] = c-w, c+w
			graft[i] = rng.Intn(5) == 0
			slope[i], ib[i] = rng.NormFloat64(), rng.NormFloat64()
		}
		op := &actOp{n: n, linear: graft, slope: slope, bias: ib}
		rx := newRelaxation(op, l, u)
		var al []float64
		if trial%2 == 1 {
			al = make([]float64, rx.acols)
			for i := range al {
				al[i] = rng.Float64()
			}
		}
		row := make([]float64, n)
		for i := range row {
			switch rng.Intn(5) {
			case 0:
			case 1:
				row[i] = math.Copysign(0, -1)
			default:
				row[i] = rng.NormFloat64()
			}
		}
		want := append([]float64(nil), row...)
		wb, wm := relaxRow(want, rx.state, rx.dL, rx.dU, rx.bU, op.slope, op.bias, al, rx.col)
		_, dead, work := rx.split()
		gb, gm := relaxListed(row, dead, work, rx.lines(), al, rx.col)
		if math.Float64bits(gb) != math.Float64bits(wb) || math.Float64bits(gm) != math.Float64bits(wm) {
			t.Fatalf("trial %d: constant %v/%v, relaxRow %v/%v", trial, gb, gm, wb, wm)
		}
		for i := range row {
			if math.Float64bits(row[i]) != math.Float64bits(want[i]) {
				t.Fatalf("trial %d: coefficient %d is %v, relaxRow %v", trial, i, row[i], want[i])
			}
		}
	}
}

// Without α, patch rows are relaxed by masked lines (patchBackwardLines); the values
// must be those of the per-neuron switch that α-CROWN's patch rows go through, given
// α equal to CROWN's lower slopes: bit for bit, with signed zeros, infinities and
// NaNs (any NaN for a NaN), windows partly off the map included.
func TestPatchLinesMatchSwitch(t *testing.T) {
	rng := rand2.New(rand2.NewPCG(5, 6))
	for trial := 0; trial < 100; trial++ {
		c, h, w := 1+rng.IntN(3), 2+rng.IntN(5), 2+rng.IntN(5)
		rx := randomRelaxation(rng, c*h*w, false)
		n, ph, pw := 1+rng.IntN(6), 1+rng.IntN(4), 1+rng.IntN(4)
		p := &patchRows{n: n, c: c, h: h, w: w, ph: ph, pw: pw, y0: make([]int, n), x0: make([]int, n),
			a: make([]float64, n*c*ph*pw), bias: make([]float64, n), mag: make([]float64, n)}
		sp := []float64{math.Inf(1), math.Inf(-1), math.NaN(), 0, math.Copysign(0, -1)}
		for r := 0; r < n; r++ {
			p.y0[r], p.x0[r] = rng.IntN(h+2)-2, rng.IntN(w+2)-2
			p.bias[r], p.mag[r] = rng.NormFloat64(), rng.Float64()
		}
		for i := range p.a {
			if trial%3 == 0 && rng.IntN(4) == 0 {
				p.a[i] = sp[rng.IntN(len(sp))]
			} else {
				p.a[i] = rng.NormFloat64()
			}
		}
		// α = the lower slope of every unstable neuron, in every row.
		alpha := make([]float64, n*rx.acols)
		for r := 0; r < n; r++ {
			for col, i := range rx.unst {
				alpha[r*rx.acols+col] = rx.dL[i]
			}
		}
		want, got := p.clone(), p.clone()
		rx.patchBackward(want, alpha)
		rx.patchBackward(got, nil)
		for _, q := range [][2][]float64{{got.a, want.a}, {got.bias, want.bias}, {got.mag, want.mag}} {
			for i := range q[1] {
				g, w := q[0][i], q[1][i]
				if math.Float64bits(g) != math.Float64bits(w) && !(math.IsNaN(g) && math.IsNaN(w)) {
					t.Fatalf("trial %d value %d: lines give %v (%#x), the switch %v (%#x)", trial, i, g, math.Float64bits(g), w, math.Float64bits(w))
				}
			}
		}
	}
}
