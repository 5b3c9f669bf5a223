package crown

import (
	"math"
	"math/rand"
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
		dead, work := rx.lists()
		gb, gm := relaxListed(row, dead, work, rx.state, rx.dL, rx.dU, rx.bU, op.slope, op.bias, al, rx.col)
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
