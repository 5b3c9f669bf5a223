package nn

import (
	"errors"
	"fmt"
)

// Network is a sequential network: Layers applied in order to a per-sample input of
// shape Input. Shapes[i] is the input shape of layer i; Shapes[len(Layers)] the output.
type Network struct {
	Input  Shape
	Layers []Layer
	Shapes []Shape
}

// New checks every layer against the shape flowing into it and returns the network.
func New(input Shape, layers []Layer) (*Network, error) {
	if len(input) == 0 || input.Size() <= 0 {
		return nil, fmt.Errorf("nn: invalid input shape %v", input)
	}
	if len(layers) == 0 {
		return nil, errors.New("nn: network has no layers")
	}
	net := &Network{Input: input.Clone(), Layers: layers}
	s := input.Clone()
	net.Shapes = append(net.Shapes, s)
	for _, l := range layers {
		out, err := l.Setup(s)
		if err != nil {
			return nil, err
		}
		s = out
		net.Shapes = append(net.Shapes, s)
	}
	return net, nil
}

// InSize and OutSize are the per-sample input and output element counts.
func (n *Network) InSize() int  { return n.Input.Size() }
func (n *Network) OutSize() int { return n.Shapes[len(n.Shapes)-1].Size() }

// Forward runs one sample.
func (n *Network) Forward(x []float64) []float64 { return n.ForwardBatch(x, 1) }

// ForwardBatch runs k samples stored contiguously and returns k outputs, contiguous.
func (n *Network) ForwardBatch(x []float64, k int) []float64 {
	cur := x[:k*n.InSize()]
	for i, l := range n.Layers {
		out := make([]float64, k*n.Shapes[i+1].Size())
		l.Forward(cur, out, k)
		cur = out
	}
	return cur
}

// Trace runs one sample and returns the input of every layer followed by the
// output: trace[i] is layer i's input, trace[len(Layers)] the logits.
func (n *Network) Trace(x []float64) [][]float64 {
	tr := make([][]float64, 0, len(n.Layers)+1)
	cur := x[:n.InSize()]
	tr = append(tr, cur)
	for i, l := range n.Layers {
		out := make([]float64, n.Shapes[i+1].Size())
		l.Forward(cur, out, 1)
		tr = append(tr, out)
		cur = out
	}
	return tr
}

// Activations returns the indices of the activation layers, in order.
func (n *Network) Activations() []int {
	var idx []int
	for i, l := range n.Layers {
		if _, ok := l.(Activation); ok {
			idx = append(idx, i)
		}
	}
	return idx
}

// NumParams counts parameter values (masks excluded).
func (n *Network) NumParams() int {
	k := 0
	for _, l := range n.Layers {
		switch l.(type) {
		case *Dense, *Conv2d:
			for _, p := range l.Params() {
				k += len(p)
			}
		}
	}
	return k
}

// NumNeurons counts activation units.
func (n *Network) NumNeurons() int {
	k := 0
	for _, i := range n.Activations() {
		k += n.Layers[i].(Activation).Neurons()
	}
	return k
}

// Argmax returns the index of the largest value (the first on ties).
func Argmax(v []float64) int {
	best := 0
	for i, x := range v {
		if x > v[best] {
			best = i
		}
	}
	return best
}
