package api

import (
	"github.com/graftcert/graftcert/core/crown"
	"github.com/graftcert/graftcert/core/nn"
)

// Work is counted in estimated multiply-adds ("units") because the Workers runtime
// does not advance its clocks while code computes: a wall-clock deadline would never
// fire, and the platform would kill the request at its CPU limit instead. The
// estimates are worst cases (every neuron unstable), so a request the budget admits
// finishes within the budget's CPU time at any eps.

// layerMACs is the multiply-adds of one forward pass through layer l with input shape
// in: the weight products for Dense and Conv2d, one per element for the rest.
func layerMACs(l nn.Layer, in nn.Shape) float64 {
	switch l := l.(type) {
	case *nn.Dense:
		return float64(l.In) * float64(l.Out)
	case *nn.Conv2d:
		return float64(l.OutC*l.OutH*l.OutW) * float64(l.InC*l.KH*l.KW)
	}
	return float64(in.Size())
}

// forwardCost is the multiply-adds of one forward pass.
func forwardCost(net *nn.Network) float64 {
	var c float64
	for k, l := range net.Layers {
		c += layerMACs(l, net.Shapes[k])
	}
	return c
}

// crownCost estimates CROWN on one sample with nspec specification rows: for every
// activation layer, a lower and an upper row per neuron propagated back to the input
// (a row through a layer costs about that layer's forward multiply-adds), then the
// specification rows through the whole network.
func crownCost(net *nn.Network, nspec int) float64 {
	var c, prefix float64
	for k, l := range net.Layers {
		if a, ok := l.(nn.Activation); ok {
			c += 2 * float64(a.Neurons()) * prefix
		}
		prefix += layerMACs(l, net.Shapes[k])
	}
	return c + float64(nspec)*prefix
}

// SampleCost estimates the units of bounding one sample of a classification
// network by the method: IBP is two forward passes per bound; α-CROWN recomputes
// every CROWN bound each iteration and runs the adjoint pass back through them, about
// 1 + 2·iterations CROWN passes. Bounding the logits too (the logits field) adds
// the same again with one upper and one lower row per output.
func SampleCost(net *nn.Network, m crown.Method, iterations int, logits bool) float64 {
	out := net.OutSize()
	nspec := max(1, out-1)
	var c float64
	switch m {
	case crown.IBP:
		c = 2 * forwardCost(net)
		if logits {
			c *= 2
		}
		return c + forwardCost(net)
	case crown.AlphaCROWN:
		c = float64(1+2*iterations) * crownCost(net, nspec)
		if logits {
			c += float64(1+2*iterations) * crownCost(net, 2*out)
		}
	default:
		c = crownCost(net, nspec)
		if logits {
			c += crownCost(net, 2*out)
		}
	}
	// The forward pass for the prediction.
	return c + forwardCost(net)
}

// activationNeurons counts the neurons a verifier can split.
func activationNeurons(net *nn.Network) int {
	n := 0
	for _, l := range net.Layers {
		if a, ok := l.(nn.Activation); ok {
			n += a.Neurons()
		}
	}
	return n
}
