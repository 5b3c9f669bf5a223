package train

import (
	"fmt"
	"sync"

	"github.com/graftcert/graftcert/core/nn"
)

// Single-sample gradients for attacks (FGSM, PGD in core/bab): tapes come from a pool and
// grow to the largest network seen, so a steady stream of calls allocates nothing but the
// slices it returns.
var tapePool = sync.Pool{New: func() any { return new(Tape) }}

// InputGradient returns the gradient of dOut·f(x) with respect to x for one sample x of
// net (the vector-Jacobian product dOutᵀ·∂f/∂x), with the derivative of ReLU taken as 0
// at 0. It runs one forward and one backward pass and allocates only the result; it is
// safe for concurrent use. It returns nil if x or dOut have the wrong length or the
// network holds a layer type the trainer cannot differentiate.
func InputGradient(net *nn.Network, x, dOut []float64) []float64 {
	g := make([]float64, net.InSize())
	if err := InputGradientTo(g, net, x, dOut); err != nil {
		return nil
	}
	return g
}

// InputGradientTo is InputGradient writing into dst (InSize values); it does not
// allocate once the pooled tapes have grown.
func InputGradientTo(dst []float64, net *nn.Network, x, dOut []float64) error {
	_, err := forwardGrad(dst, nil, net, x, func(_, d []float64) { copy(d, dOut) }, len(dOut))
	return err
}

// ForwardGrad runs one sample, lets seed fill dOut (zeroed, OutSize values) from the
// output — e.g. a margin or a loss gradient that depends on the prediction — and returns
// the output and the gradient of dOut·f(x) with respect to x. Safe for concurrent use.
func ForwardGrad(net *nn.Network, x []float64, seed func(out, dOut []float64)) (out, grad []float64, err error) {
	out = make([]float64, net.OutSize())
	grad = make([]float64, net.InSize())
	if _, err := forwardGrad(grad, out, net, x, seed, net.OutSize()); err != nil {
		return nil, nil, err
	}
	return out, grad, nil
}

func forwardGrad(dst, out []float64, net *nn.Network, x []float64, seed func(out, dOut []float64), nOut int) ([]float64, error) {
	if len(x) != net.InSize() || len(dst) != net.InSize() || nOut != net.OutSize() {
		return nil, fmt.Errorf("train: input gradient: got x %d, dst %d, dOut %d values; network takes %d and gives %d",
			len(x), len(dst), nOut, net.InSize(), net.OutSize())
	}
	t := tapePool.Get().(*Tape)
	defer tapePool.Put(t)
	forward(net, t, x, 1)
	k := net.OutSize()
	// The seed gradient lives in the scratch of the conv product, which the backward
	// pass does not touch.
	t.tmp = grow(t.tmp, max(k, len(t.tmp)))
	d := t.tmp[:k]
	clear(d)
	seed(t.Output(), d)
	if out != nil {
		copy(out, t.Output())
	}
	g, err := backward(planFor(net), t, t, d, pass{wantIn: 0})
	if err != nil {
		return nil, err
	}
	copy(dst, g)
	return dst, nil
}
