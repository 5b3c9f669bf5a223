package train

import (
	"fmt"

	"github.com/graftcert/graftcert/core/nn"
)

// ParamKind says what a parameter tensor is; the optimiser picks its hyper-parameters by
// kind (the paper trains the grafted slopes and intercepts with their own learning rate
// and no weight decay).
type ParamKind int

const (
	Weight    ParamKind = iota // Dense or Conv2d weight
	Bias                       // Dense or Conv2d bias
	Slope                      // MaskedReLU slope a of grafted neurons
	Intercept                  // MaskedReLU bias b of grafted neurons
)

func (k ParamKind) String() string {
	switch k {
	case Weight:
		return "weight"
	case Bias:
		return "bias"
	case Slope:
		return "slope"
	case Intercept:
		return "intercept"
	}
	return fmt.Sprintf("ParamKind(%d)", int(k))
}

// Param is one trainable tensor. Value aliases the layer's own storage, so updating it
// updates the network.
type Param struct {
	Layer int // index into Network.Layers
	Kind  ParamKind
	Value []float64
	// Mask is the MaskedReLU mask for Slope and Intercept: entries with mask 0 do not
	// influence the output, get zero gradient and are never updated. Nil otherwise.
	Mask []float64
}

// Grad holds one gradient slice per parameter, parallel to Model.Params.
type Grad struct {
	G [][]float64
}

// NewGrad returns a zero gradient shaped like m's parameters.
func (m *Model) NewGrad() *Grad {
	g := &Grad{G: make([][]float64, len(m.Params))}
	for i, p := range m.Params {
		g.G[i] = make([]float64, len(p.Value))
	}
	return g
}

// Zero clears every gradient value.
func (g *Grad) Zero() {
	for _, v := range g.G {
		clear(v)
	}
}

// AddScaled adds s·o to g (same shapes).
func (g *Grad) AddScaled(o *Grad, s float64) {
	for i, v := range g.G {
		for j, x := range o.G[i] {
			v[j] += s * x
		}
	}
}

// Model is a network prepared for training: its trainable parameters in a fixed order
// and the bookkeeping the forward and backward passes need. The network's layers are
// shared, not copied: training a Model trains the network.
type Model struct {
	Net *nn.Network
	// Params lists the trainable tensors: per layer in order, the weight then the bias of
	// Dense and Conv2d layers, the slope then the intercept of MaskedReLU layers (unless
	// frozen). Affine layers (input normalisation) are fixed.
	Params []Param
	// Frozen is true when MaskedReLU slopes and intercepts are not trained (pruning:
	// grafted neurons stay at a = b = 0).
	Frozen bool

	pw, pb     []int // per layer: index in Params of the weight/slope and bias/intercept, or -1
	firstParam int   // lowest layer index holding a trainable parameter (len(Layers) if none)
	maxSize    int   // largest per-sample tensor size over all layer boundaries
}

// NewModel checks that every layer of net is a type the trainer can differentiate and
// lists its parameters. With frozen, MaskedReLU parameters are left out (pruning).
func NewModel(net *nn.Network, frozen bool) (*Model, error) {
	if net == nil {
		return nil, fmt.Errorf("train: nil network")
	}
	m := &Model{Net: net, Frozen: frozen, firstParam: len(net.Layers)}
	m.pw = make([]int, len(net.Layers))
	m.pb = make([]int, len(net.Layers))
	for _, s := range net.Shapes {
		m.maxSize = max(m.maxSize, s.Size())
	}
	add := func(i int, k ParamKind, v, mask []float64) int {
		if v == nil {
			return -1
		}
		m.Params = append(m.Params, Param{Layer: i, Kind: k, Value: v, Mask: mask})
		m.firstParam = min(m.firstParam, i)
		return len(m.Params) - 1
	}
	for i, l := range net.Layers {
		m.pw[i], m.pb[i] = -1, -1
		switch t := l.(type) {
		case *nn.Dense:
			m.pw[i] = add(i, Weight, t.W, nil)
			m.pb[i] = add(i, Bias, t.B, nil)
		case *nn.Conv2d:
			m.pw[i] = add(i, Weight, t.W, nil)
			m.pb[i] = add(i, Bias, t.B, nil)
		case *nn.MaskedReLU:
			if !frozen {
				m.pw[i] = add(i, Slope, t.Slope, t.Mask)
				m.pb[i] = add(i, Intercept, t.Bias, t.Mask)
			}
		case *nn.ReLU, *nn.Affine, *nn.Reshape:
		default:
			return nil, fmt.Errorf("train: layer %d %q: cannot differentiate layer type %s", i, l.Name(), l.Kind())
		}
	}
	return m, nil
}

// NumParams counts the trainable values.
func (m *Model) NumParams() int {
	k := 0
	for _, p := range m.Params {
		k += len(p.Value)
	}
	return k
}
