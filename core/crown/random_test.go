package crown

import (
	"math/rand/v2"

	"github.com/graftcert/graftcert/core/nn"
)

// randomMLP builds a dense ReLU network with the given widths; when graft is true every
// other ReLU layer is a MaskedReLU with about a third of its neurons grafted.
func randomMLP(rng *rand.Rand, widths []int, graft bool) *nn.Network {
	var layers []nn.Layer
	for i := 0; i+1 < len(widths); i++ {
		in, out := widths[i], widths[i+1]
		d := &nn.Dense{NodeName: "fc", In: in, Out: out, W: make([]float64, in*out), B: make([]float64, out)}
		for j := range d.W {
			d.W[j] = rng.NormFloat64() / float64(in) * 2
		}
		for j := range d.B {
			d.B[j] = rng.NormFloat64() * 0.1
		}
		layers = append(layers, d)
		if i+2 < len(widths) {
			if graft && i%2 == 1 {
				m := &nn.MaskedReLU{NodeName: "g", Mask: make([]float64, out), Slope: make([]float64, out), Bias: make([]float64, out)}
				for j := range m.Mask {
					if rng.IntN(3) == 0 {
						m.Mask[j] = 1
						m.Slope[j] = rng.Float64() - 0.2
						m.Bias[j] = rng.NormFloat64() * 0.1
					}
				}
				layers = append(layers, m)
			} else {
				layers = append(layers, &nn.ReLU{NodeName: "relu"})
			}
		}
	}
	net, err := nn.New(nn.Shape{widths[0]}, layers)
	if err != nil {
		panic(err)
	}
	return net
}

// randomCNN builds normalise → conv → relu → conv → relu → flatten → dense → relu → dense.
func randomCNN(rng *rand.Rand) *nn.Network {
	c, h := 2, 8
	norm := &nn.Affine{NodeName: "norm", Scale: make([]float64, c*h*h), Shift: make([]float64, c*h*h)}
	for i := range norm.Scale {
		norm.Scale[i] = 1 / (0.3 + 0.1*float64(i/(h*h)))
		norm.Shift[i] = -0.4 * norm.Scale[i]
	}
	conv := func(in, out, k, s, p int) *nn.Conv2d {
		cv := &nn.Conv2d{NodeName: "conv", InC: in, OutC: out, KH: k, KW: k, SH: s, SW: s, DH: 1, DW: 1,
			PT: p, PL: p, PB: p, PR: p, W: make([]float64, out*in*k*k), B: make([]float64, out)}
		for i := range cv.W {
			cv.W[i] = rng.NormFloat64() / float64(in*k*k) * 2
		}
		for i := range cv.B {
			cv.B[i] = rng.NormFloat64() * 0.1
		}
		return cv
	}
	c1 := conv(c, 4, 3, 2, 1) // 4×4×4
	c2 := conv(4, 3, 3, 1, 1) // 3×4×4
	d1 := &nn.Dense{NodeName: "fc1", In: 48, Out: 10, W: make([]float64, 480), B: make([]float64, 10)}
	d2 := &nn.Dense{NodeName: "fc2", In: 10, Out: 3, W: make([]float64, 30)}
	for _, d := range []*nn.Dense{d1, d2} {
		for i := range d.W {
			d.W[i] = rng.NormFloat64() / float64(d.In) * 3
		}
	}
	net, err := nn.New(nn.Shape{c, h, h}, []nn.Layer{norm, c1, &nn.ReLU{NodeName: "r1"}, c2, &nn.ReLU{NodeName: "r2"},
		&nn.Reshape{NodeName: "flat", To: nn.Shape{48}}, d1, &nn.ReLU{NodeName: "r3"}, d2})
	if err != nil {
		panic(err)
	}
	return net
}

func randomBox(rng *rand.Rand, n int, eps float64) (x, lo, hi []float64) {
	x = make([]float64, n)
	lo = make([]float64, n)
	hi = make([]float64, n)
	for i := range x {
		x[i] = rng.Float64()
		lo[i] = x[i] - eps
		hi[i] = x[i] + eps
	}
	return
}
