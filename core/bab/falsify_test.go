package bab

import (
	"math"
	"testing"

	"github.com/graftcert/graftcert/core/spec"
)

// TestPhi checks phi by hand: two conjunctions, the first violated when y0 ≤ 1 and
// y1 ≤ 2, the second when y0 ≥ 3.
func TestPhi(t *testing.T) {
	p := &problem{disj: [][]spec.Row{
		{{C: []float64{1, 0}, D: 1}, {C: []float64{0, 1}, D: 2}},
		{{C: []float64{-1, 0}, D: -3}},
	}}
	cases := []struct {
		y    []float64
		want float64
	}{
		{[]float64{0.5, 1}, -0.5},
		{[]float64{1.5, 0}, 0.5},
		{[]float64{2.5, 9}, 0.5},
		{[]float64{4, 9}, -1},
		{[]float64{1, 2}, 0},
	}
	for _, c := range cases {
		if got := p.phi(c.y); math.Abs(got-c.want) > 1e-15 {
			t.Errorf("phi(%v) = %v, want %v", c.y, got, c.want)
		}
		if (p.phi(c.y) <= 0) != (p.violated(c.y) >= 0) {
			t.Errorf("phi(%v) = %v disagrees with violated = %d", c.y, p.phi(c.y), p.violated(c.y))
		}
	}
}

// TestAttackPool checks the pool keeps the best hints in order, at most size of
// them, and refuses boxes too close below the last attacked one or without a hint.
func TestAttackPool(t *testing.T) {
	a := &attackPool{size: 3}
	mk := func(v float64, depth, attackedAt int) *idom {
		return &idom{hint: []float64{0}, hintVal: v, depth: depth, attackedAt: attackedAt}
	}
	a.offer(mk(0.5, 5, 0))
	a.offer(mk(0.1, 5, 0))
	a.offer(mk(0.3, 4, 2))  // only 2 levels below an attacked box: refused
	a.offer(mk(0.2, 5, 2))  // 3 levels: accepted
	a.offer(mk(0.05, 9, 0)) // best
	a.offer(&idom{hintVal: 0.01, depth: 9})
	a.offer(mk(0.7, 9, 0)) // worse than the three kept
	var got []float64
	for d := a.take(); d != nil; d = a.take() {
		got = append(got, d.hintVal)
	}
	want := []float64{0.05, 0.1, 0.2}
	if len(got) != len(want) {
		t.Fatalf("pool gave %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("pool gave %v, want %v", got, want)
		}
	}
}
