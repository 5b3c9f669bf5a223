package crown

import (
	"context"
	"math/rand/v2"
	"testing"
)

// TestBoxBounderSound bounds random sub-boxes of a box, with and without the parent's
// intermediate bounds, and checks against sampled points: every row value at least
// the lower bound, and at least the linear function A·x + Bias (up to its rounding).
// It also checks that the parent's bounds never loosen the child's and that Quick is
// sound too.
func TestBoxBounderSound(t *testing.T) {
	rng := rand.New(rand.NewPCG(4, 4))
	for trial := 0; trial < 4; trial++ {
		net := randomMLP(rng, []int{5, 20, 20, 20, 4}, trial%2 == 1)
		b, err := NewBoxBounder(net)
		if err != nil {
			t.Fatal(err)
		}
		C := []float64{1, -1, 0, 0, 0, 1, 0, -1}
		rs, err := NewRowSet(C, []float64{0.05, -0.1}, 4)
		if err != nil {
			t.Fatal(err)
		}
		_, lo, hi := randomBox(rng, 5, 0.5)
		parent, err := b.Bound(context.Background(), lo, hi, rs, nil)
		if err != nil {
			t.Fatal(err)
		}
		for k := 0; k < 10; k++ {
			l, h := make([]float64, 5), make([]float64, 5)
			for i := range l {
				a, c := lo[i]+(hi[i]-lo[i])*rng.Float64(), lo[i]+(hi[i]-lo[i])*rng.Float64()
				l[i], h[i] = min(a, c), max(a, c)
			}
			alone, err := b.Bound(context.Background(), l, h, rs, nil)
			if err != nil {
				t.Fatal(err)
			}
			child, err := b.Bound(context.Background(), l, h, rs, parent)
			if err != nil {
				t.Fatal(err)
			}
			quick, err := b.Quick(context.Background(), l, h, rs, parent)
			if err != nil {
				t.Fatal(err)
			}
			for r := range child.Lower {
				if child.Lower[r] < alone.Lower[r]-1e-9*(1+abs(alone.Lower[r])) {
					t.Errorf("trial %d box %d row %d: parent bounds loosened %v to %v", trial, k, r, alone.Lower[r], child.Lower[r])
				}
			}
			x := make([]float64, 5)
			for s := 0; s < 500; s++ {
				for i := range x {
					x[i] = l[i] + (h[i]-l[i])*rng.Float64()
				}
				y := net.Forward(x)
				for r := 0; r < 2; r++ {
					v := -rs.D[r]
					for j := 0; j < 4; j++ {
						v += C[r*4+j] * y[j]
					}
					for _, bb := range []*BoxBound{alone, child, quick} {
						lin := bb.Bias[r]
						for i := range x {
							lin += bb.A[r*5+i] * x[i]
						}
						if v < bb.Lower[r] || v < lin-1e-9 {
							t.Fatalf("trial %d box %d row %d: value %v below bound %v or linear bound %v", trial, k, r, v, bb.Lower[r], lin)
						}
					}
				}
			}
		}
	}
}

func abs(x float64) float64 {
	if x < 0 {
		return -x
	}
	return x
}
