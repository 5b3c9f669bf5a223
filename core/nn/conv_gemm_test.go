package nn

import (
	"math"
	"math/rand/v2"
	"testing"
)

// TestConvGemmMatchesDirect checks the column-matrix forward pass against the direct
// loops on random convolutions of every kind Setup accepts (strides, dilations,
// asymmetric padding, several samples), to rounding.
func TestConvGemmMatchesDirect(t *testing.T) {
	rng := rand.New(rand.NewPCG(11, 12))
	tested := 0
	for trial := 0; trial < 1000; trial++ {
		c := &Conv2d{NodeName: "c",
			InC: 1 + rng.IntN(8), OutC: 1 + rng.IntN(12),
			KH: 1 + rng.IntN(5), KW: 1 + rng.IntN(5),
			SH: 1 + rng.IntN(3), SW: 1 + rng.IntN(3),
			PT: rng.IntN(3), PL: rng.IntN(3), PB: rng.IntN(3), PR: rng.IntN(3),
			DH: 1 + rng.IntN(2), DW: 1 + rng.IntN(2)}
		c.W = make([]float64, c.OutC*c.InC*c.KH*c.KW)
		for i := range c.W {
			c.W[i] = rng.NormFloat64()
		}
		if rng.IntN(2) == 0 {
			c.B = make([]float64, c.OutC)
			for i := range c.B {
				c.B[i] = rng.NormFloat64()
			}
		}
		in := Shape{c.InC, 6 + rng.IntN(20), 6 + rng.IntN(20)}
		if _, err := c.Setup(in); err != nil {
			continue
		}
		if c.OutC*c.OutH*c.OutW*c.InC*c.KH*c.KW < gemmConvWork {
			continue // Forward would take the direct path itself
		}
		tested++
		n := 1 + rng.IntN(3)
		x := make([]float64, n*c.InSize())
		for i := range x {
			x[i] = rng.NormFloat64()
		}
		got := make([]float64, n*c.OutSize())
		c.Forward(x, got, n)
		for s := 0; s < n; s++ {
			want := make([]float64, c.OutSize())
			c.forward1(x[s*c.InSize():(s+1)*c.InSize()], want)
			for i, w := range want {
				g := got[s*c.OutSize()+i]
				if math.Abs(g-w) > 1e-12*(1+math.Abs(w))*float64(c.InC*c.KH*c.KW) {
					t.Fatalf("trial %d %+v sample %d output %d: gemm %v, direct %v", trial, *c, s, i, g, w)
				}
			}
		}
	}
	if tested < 200 {
		t.Fatalf("only %d convolutions took the column path", tested)
	}
}
