package crown

import (
	"math"
	"math/rand/v2"
	"testing"
)

// windowOrder must list every row once, rows of one window position together.
func TestWindowOrder(t *testing.T) {
	rng := rand.New(rand.NewPCG(21, 22))
	for trial := 0; trial < 50; trial++ {
		n := rng.IntN(60)
		p := randomPatches(rng, n, 2, 5+rng.IntN(4), 5+rng.IntN(4), 1+rng.IntN(3), 1+rng.IntN(3))
		if trial%5 == 0 { // far-apart offsets: the fallback order
			for r := range p.y0 {
				p.y0[r] = rng.IntN(100000) - 50000
			}
		}
		order := p.windowOrder()
		seen := make([]bool, n)
		done := map[[2]int]bool{}
		for j, r := range order {
			if seen[r] {
				t.Fatalf("trial %d: row %d listed twice", trial, r)
			}
			seen[r] = true
			key := [2]int{p.y0[r], p.x0[r]}
			if j > 0 {
				q := order[j-1]
				if prev := [2]int{p.y0[q], p.x0[q]}; prev != key {
					if done[key] && trial%5 != 0 {
						t.Fatalf("trial %d: window %v split in the order", trial, key)
					}
					done[prev] = true
				}
			}
		}
		if len(order) != n {
			t.Fatalf("trial %d: %d rows ordered, want %d", trial, len(order), n)
		}
	}
}

// concretizePatch (window by window) against Concretize of the same rows spelled out
// over the whole map, for windows over every border and rows sharing positions.
func TestConcretizePatchMatchesDense(t *testing.T) {
	rng := rand.New(rand.NewPCG(23, 24))
	for trial := 0; trial < 20; trial++ {
		c, h, w := 1+rng.IntN(3), 3+rng.IntN(5), 3+rng.IntN(5)
		p := randomPatches(rng, 40, c, h, w, 1+rng.IntN(4), 1+rng.IntN(4))
		for r := 0; r < p.n; r++ {
			p.clearOffMap(r) // as every patch row reaching concretisation is
			if r%3 == 1 {    // rows at one position
				p.y0[r], p.x0[r] = p.y0[r-1], p.x0[r-1]
				p.clearOffMap(r)
			}
		}
		size := c * h * w
		e := &engine{mid: make([]float64, size), rad: make([]float64, size), mx: make([]float64, size)}
		for i := range e.mid {
			e.mid[i], e.rad[i] = rng.NormFloat64(), rng.Float64()
			e.mx[i] = math.Abs(e.mid[i]) + e.rad[i]
		}
		dense := newRows(p.n, size)
		for r := 0; r < p.n; r++ {
			row, a := dense.row(r), p.row(r)
			p.each(r, func(k, i int) { row[i] = a[k] })
			dense.bias[r], dense.mag[r] = p.bias[r], p.mag[r]
		}
		got := e.concretizePatch(p)
		want := e.concretize(dense)
		for r := range want {
			if math.Abs(got[r]-want[r]) > 1e-12*(1+math.Abs(want[r])) {
				t.Fatalf("trial %d row %d: window bound %v, dense %v", trial, r, got[r], want[r])
			}
		}
	}
}
