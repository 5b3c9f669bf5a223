package graft

import (
	"fmt"

	"github.com/graftcert/graftcert/core/nn"
)

// Options says how grafted neurons start.
type Options struct {
	// Slope and Bias initialise a newly grafted neuron's line a·x + b; the paper starts
	// from a = 0.4, b = 0 (DefaultOptions). The zero Options graft with a = b = 0.
	Slope, Bias float64
	// Prune sets a = b = 0 regardless of Slope and Bias: the neuron outputs 0, the
	// paper's pruning baseline. Fine-tune a pruned network with
	// train.Options.FreezeActivations so that a and b stay 0.
	Prune bool
}

// DefaultOptions is the paper's initialisation, a = 0.4, b = 0.
func DefaultOptions() Options { return Options{Slope: 0.4} }

// Apply returns a copy of net in which the neurons selected by masks (one slice per
// activation layer, in the order of net.Activations()) are grafted; net is not changed.
// A ReLU layer with at least one selected neuron becomes an nn.MaskedReLU with the same
// name (every neuron's slope and bias set to the initial values, which only matter for
// grafted ones); a ReLU layer with none stays a ReLU. An existing MaskedReLU keeps its
// grafted neurons with their trained slopes and biases and grafts the selected ones in
// addition (the masks are merged).
func Apply(net *nn.Network, masks [][]bool, o Options) (*nn.Network, error) {
	acts := net.Activations()
	if len(masks) != len(acts) {
		return nil, fmt.Errorf("graft: %d masks for %d activation layers", len(masks), len(acts))
	}
	a, b := o.Slope, o.Bias
	if o.Prune {
		a, b = 0, 0
	}
	layers := make([]nn.Layer, len(net.Layers))
	for i, l := range net.Layers {
		layers[i] = nn.CloneLayer(l)
	}
	for j, i := range acts {
		act := net.Layers[i].(nn.Activation)
		if len(masks[j]) != act.Neurons() {
			return nil, fmt.Errorf("graft: mask %d has %d values, layer %q has %d neurons", j, len(masks[j]), act.Name(), act.Neurons())
		}
		sel := false
		for _, g := range masks[j] {
			sel = sel || g
		}
		switch t := layers[i].(type) {
		case *nn.ReLU:
			if !sel {
				continue
			}
			n := t.N
			mr := &nn.MaskedReLU{NodeName: t.NodeName, Mask: make([]float64, n), Slope: make([]float64, n), Bias: make([]float64, n)}
			for k := 0; k < n; k++ {
				mr.Slope[k], mr.Bias[k] = a, b
				if masks[j][k] {
					mr.Mask[k] = 1
				}
			}
			layers[i] = mr
		case *nn.MaskedReLU:
			for k, g := range masks[j] {
				if g && t.Mask[k] == 0 {
					t.Mask[k], t.Slope[k], t.Bias[k] = 1, a, b
				}
			}
		default:
			return nil, fmt.Errorf("graft: layer %q: cannot graft a %s", act.Name(), act.Kind())
		}
	}
	out, err := nn.New(net.Input, layers)
	if err != nil {
		return nil, fmt.Errorf("graft: %w", err)
	}
	return out, nil
}
