package worker

import (
	"github.com/graftcert/graftcert/core/crown"
	"github.com/graftcert/graftcert/core/nn"
	"github.com/graftcert/graftcert/core/onnx"
)

// DefaultMaxBytes is the memory budget of one worker, 1.5 GiB. A wasm32 instance can
// address 4 GiB, but Go's heap doubles as it grows and a tab holds one instance per
// worker plus the page, so a model whose estimate exceeds this is refused with the
// estimate and a pointer to the native CLI instead of crashing the tab.
const DefaultMaxBytes int64 = 1536 << 20

// EstimateMemory estimates the peak bytes of one bound computation on net: the
// decoded network and the file it came from, plus the largest batch of linear bounds
// that the backward pass holds. CROWN bounds every neuron of an activation layer at
// once, so for activation layer k it holds 2·N_k rows over the widest layer between
// the input and k (twice: a layer's input and output rows). α-CROWN adds, for every
// start node (each activation layer and the output), its α matrices and Adam moments
// over every earlier activation layer and the recorded rows of its adjoint pass. The
// figures are upper estimates: the engine only bounds unstable neurons, usually far
// fewer than N_k.
func EstimateMemory(net *nn.Network, fileBytes int, method crown.Method) int64 {
	base := int64(fileBytes) + onnx.NetworkBytes(net)
	if method == crown.IBP {
		return base
	}
	acts := net.Activations()
	widest := make([]int64, len(net.Layers)+1) // widest[k]: max layer input size over layers < k, and k's input
	var w int64
	for k := 0; k <= len(net.Layers); k++ {
		if s := int64(net.Shapes[k].Size()); s > w {
			w = s
		}
		widest[k] = w
	}
	type start struct {
		layer int
		rows  int64
	}
	var starts []start
	for _, k := range acts {
		starts = append(starts, start{k, 2 * int64(net.Layers[k].(nn.Activation).Neurons())})
	}
	starts = append(starts, start{len(net.Layers), 2 * int64(net.OutSize())})
	var peak, alphaSum, tapeMax int64
	for _, s := range starts {
		b := 2 * 8 * s.rows * widest[s.layer]
		peak = max(peak, b)
		if method != crown.AlphaCROWN {
			continue
		}
		var tape int64
		for _, j := range acts {
			if j >= s.layer {
				break
			}
			n := int64(net.Layers[j].(nn.Activation).Neurons())
			alphaSum += 4 * 8 * s.rows / 2 * n // α, gradient, two Adam moments
			tape += 8 * s.rows * int64(net.Shapes[j].Size())
		}
		tapeMax = max(tapeMax, tape)
	}
	return base + peak + alphaSum + tapeMax
}
