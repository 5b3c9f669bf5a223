package train

import "math"

// Hyper is the learning rate and weight decay of one parameter group.
type Hyper struct {
	LR          float64
	WeightDecay float64
}

// Schedule scales the learning rates over the run.
type Schedule int

const (
	// Cosine anneals every learning rate from its value to 0 over the run's total steps:
	// lr_t = lr·(1 + cos(π·t/T))/2 at step t of T. The paper's code anneals once per
	// epoch (PyTorch CosineAnnealingLR stepped per epoch); per step is the same curve
	// without the staircase.
	Cosine Schedule = iota
	// Constant keeps every learning rate fixed.
	Constant
)

func (s Schedule) scale(step, total int) float64 {
	if s == Constant || total <= 0 {
		return 1
	}
	return 0.5 * (1 + math.Cos(math.Pi*float64(step)/float64(total)))
}

// SGD is stochastic gradient descent with momentum and L2
// weight decay, as PyTorch's torch.optim.SGD computes it: d = g + wd·θ,
// buf = μ·buf + d (buf = d at the first step), θ -= lr·buf.
type SGD struct {
	Momentum float64
	// Group returns the hyper-parameters of a parameter kind.
	Group func(ParamKind) Hyper

	buf [][]float64
}

// Step applies one update to m's parameters from g, with every learning rate multiplied
// by lrScale. Entries of MaskedReLU slopes and intercepts whose neuron is not grafted
// (mask 0) are left untouched: they do not affect the network.
func (o *SGD) Step(m *Model, g *Grad, lrScale float64) {
	if o.buf == nil {
		o.buf = make([][]float64, len(m.Params))
		for i, p := range m.Params {
			o.buf[i] = make([]float64, len(p.Value))
		}
	}
	for i, p := range m.Params {
		h := o.Group(p.Kind)
		lr := h.LR * lrScale
		v, b, gi := p.Value, o.buf[i], g.G[i]
		for j := range v {
			if p.Mask != nil && p.Mask[j] == 0 {
				continue
			}
			d := gi[j] + h.WeightDecay*v[j]
			b[j] = o.Momentum*b[j] + d
			v[j] -= lr * b[j]
		}
	}
}
