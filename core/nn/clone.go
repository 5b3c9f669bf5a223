package nn

import "fmt"

// Clone returns a deep copy of the network: parameters are copied, so the copy can be
// grafted or trained without touching the original.
func (n *Network) Clone() *Network {
	layers := make([]Layer, len(n.Layers))
	for i, l := range n.Layers {
		layers[i] = CloneLayer(l)
	}
	c, err := New(n.Input, layers)
	if err != nil {
		panic(fmt.Sprintf("nn: clone of a valid network failed: %v", err)) // cannot happen
	}
	return c
}

// CloneLayer deep-copies one layer.
func CloneLayer(l Layer) Layer {
	cp := func(v []float64) []float64 {
		if v == nil {
			return nil
		}
		return append([]float64(nil), v...)
	}
	switch t := l.(type) {
	case *Dense:
		c := *t
		c.W, c.B = cp(t.W), cp(t.B)
		return &c
	case *Conv2d:
		c := *t
		c.W, c.B = cp(t.W), cp(t.B)
		return &c
	case *ReLU:
		c := *t
		return &c
	case *MaskedReLU:
		c := *t
		c.Mask, c.Slope, c.Bias = cp(t.Mask), cp(t.Slope), cp(t.Bias)
		return &c
	case *Affine:
		c := *t
		c.Scale, c.Shift = cp(t.Scale), cp(t.Shift)
		return &c
	case *Reshape:
		c := *t
		c.To = t.To.Clone()
		return &c
	}
	panic(fmt.Sprintf("nn: CloneLayer: unknown layer type %T", l))
}
