package bab

import (
	"fmt"
	"math/rand/v2"
	"os"
	"testing"
)

func TestDbgJoint(t *testing.T) {
	if os.Getenv("GC_DBG") == "" {
		t.Skip("debug experiment")
	}
	rng := rand.New(rand.NewPCG(1, 2))
	okc, better := 0, 0
	for trial := 0; trial < 200; trial++ {
		R, n := 4, 5
		A := make([]float64, R*n)
		b := make([]float64, R)
		for i := range A {
			A[i] = rng.NormFloat64()
		}
		for i := range b {
			b[i] = rng.NormFloat64() + 1
		}
		lo, hi := make([]float64, n), make([]float64, n)
		for i := range lo {
			lo[i], hi[i] = -0.5, 0.5
		}
		v, lam, ok := jointBound(A, b, lo, hi)
		if !ok {
			continue
		}
		okc++
		best := -1e9
		for r := 0; r < R; r++ {
			best = max(best, combinedMin(A, b, []float64{b2(r == 0), b2(r == 1), b2(r == 2), b2(r == 3)}, lo, hi))
		}
		if v > best+1e-9 {
			better++
		}
		// brute force check: min over random points of max_r g_r >= v
		for k := 0; k < 2000; k++ {
			x := make([]float64, n)
			for i := range x {
				x[i] = lo[i] + (hi[i]-lo[i])*rng.Float64()
			}
			m := -1e9
			for r := 0; r < R; r++ {
				g := b[r]
				for i := range x {
					g += A[r*n+i] * x[i]
				}
				m = max(m, g)
			}
			if m < v-1e-9 {
				t.Fatalf("unsound %v < %v (lam %v)", m, v, lam)
			}
		}
	}
	fmt.Println("ok", okc, "better", better)
}

func b2(x bool) float64 {
	if x {
		return 1
	}
	return 0
}
