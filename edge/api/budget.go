package api

import (
	"context"
	"fmt"

	"github.com/graftcert/graftcert/core/crown"
	"github.com/graftcert/graftcert/core/nn"
	"github.com/graftcert/graftcert/core/onnx"
	"github.com/graftcert/graftcert/core/spec"
)

// Work is counted in units of about one dense multiply-add because the Workers runtime
// does not advance its clocks while code computes: a wall-clock deadline would never
// fire, and the platform would end the request at its CPU limit instead. Estimates
// are made per sample before any bound is computed, from the sample's own interval
// (IBP) bounds, which cost about two forward passes: CROWN only propagates bounds for
// the neurons that IBP leaves unstable, so their count decides the cost.

// convWeight is the units one convolution multiply-add counts for. Bound propagation
// through a convolution (im2col, transposes, chunking) ran at about a quarter of the
// dense rate per multiply-add in wasm under workerd, so with this weight one unit
// takes about the same time whatever the layer type (README, edge section).
const convWeight = 4

// layerMACs is the cost in units of one pass of one row through layer l with input
// shape in: the weight products for Dense (one unit each) and Conv2d (convWeight
// each), one unit per element for the rest.
func layerMACs(l nn.Layer, in nn.Shape) float64 {
	switch l := l.(type) {
	case *nn.Dense:
		return float64(l.In) * float64(l.Out)
	case *nn.Conv2d:
		return convWeight * float64(l.OutC*l.OutH*l.OutW) * float64(l.InC*l.KH*l.KW)
	}
	return float64(in.Size())
}

// mixing reports whether a layer mixes its inputs (a CROWN backward pass through it
// costs a matrix product).
func mixing(l nn.Layer) bool {
	switch l.(type) {
	case *nn.Dense, *nn.Conv2d:
		return true
	}
	return false
}

// Estimate is the predicted cost of one request.
type Estimate struct {
	Work float64 // multiply-adds, summed over samples
	// Memory is the predicted peak of the Go heap in bytes: base, plus headroom times
	// the live data (model, samples, request body and the largest workspace any one
	// sample needs).
	Memory int64
}

// Memory model. The Go heap (the wasm linear memory, which never shrinks) peaks at
// about twice the live data, since the collector lets the heap double before it runs
// (GOGC=100), on top of a fixed base: the runtime, the binary's data and the embedded
// sample sets. The constants were fitted to the linear memory measured after one
// sample of IBP, CROWN and α-CROWN on five shared models (README, edge section).
const (
	memBase     = 12 << 20
	memHeadroom = 2
	// alphaCopies counts the per-start-node arrays of α-CROWN over the unstable
	// neurons of an earlier layer: α, its gradient, two Adam moments, the best α so
	// far, and the relaxation slopes.
	alphaCopies = 6
)

// sampleEstimate predicts the work and the live workspace of bounding one sample whose
// activation layers have unstable[i] IBP-unstable neurons (grafted ones excluded),
// with nspec specification rows. CROWN propagates a lower and an upper row per
// unstable neuron of every activation layer back to the input (a row through a layer
// costs about that layer's forward multiply-adds), except for activations whose input
// is an affine image of the input box (IBP is exact there), then the specification
// rows through the whole network. α-CROWN recomputes those bounds and runs the adjoint
// pass every iteration (about 1 + 2·iterations CROWN passes), keeps per-start-node
// slopes and Adam state over the earlier unstable neurons, and records the rows
// entering each activation for the adjoint.
func sampleEstimate(net *nn.Network, unstable []int, nspec int, m crown.Method, iterations int) Estimate {
	var fwd float64
	for k, l := range net.Layers {
		fwd += layerMACs(l, net.Shapes[k])
	}
	if m == crown.IBP {
		// Two interval products per layer, plus the forward pass for the prediction.
		return Estimate{Work: 3 * fwd, Memory: 16 * int64(maxShape(net))}
	}
	var work, prefix float64
	var rowsMem, convMem, alphaMem int64
	var maxSize, act, mixes int
	var unstableBefore, neuronsBefore int64
	// pass accounts for rows propagated back from layer k to the input.
	pass := func(k, rows int) {
		work += float64(rows) * prefix
		// Two row buffers (in and out of a backward step) of the widest layer.
		rowsMem = max(rowsMem, 16*int64(rows)*int64(maxSize))
		// Conv backward works in chunks of rows over an im2col buffer of at most about
		// 4M values (core/crown/ops.go).
		for j := 0; j < k; j++ {
			if c, ok := net.Layers[j].(*nn.Conv2d); ok {
				ckk, ohw := c.InC*c.KH*c.KW, c.OutH*c.OutW
				chunk := min(rows, max(1, (4<<20)/(ckk*ohw)))
				convMem = max(convMem, 8*int64(chunk)*int64(ohw)*int64(ckk+c.OutC))
			}
		}
	}
	for k, l := range net.Layers {
		if a, ok := l.(nn.Activation); ok {
			rows := 0
			if act < len(unstable) && (mixes > 1 || act > 0) {
				rows = 2 * unstable[act]
			}
			pass(k, rows)
			alphaMem += 8 * int64(rows) * (alphaCopies*unstableBefore + neuronsBefore)
			if act < len(unstable) {
				unstableBefore += int64(unstable[act])
			}
			neuronsBefore += int64(a.Neurons())
			act++
		}
		if mixing(l) {
			mixes++
		}
		prefix += layerMACs(l, net.Shapes[k])
		maxSize = max(maxSize, net.Shapes[k].Size())
	}
	pass(len(net.Layers), nspec)
	alphaMem += 8 * int64(nspec) * (alphaCopies*unstableBefore + neuronsBefore)
	mem := rowsMem + convMem
	if m == crown.AlphaCROWN {
		work *= float64(1 + 2*iterations)
		mem += alphaMem
	}
	return Estimate{Work: work + fwd, Memory: mem}
}

func maxShape(net *nn.Network) int {
	m := 0
	for _, s := range net.Shapes {
		m = max(m, s.Size())
	}
	return m
}

// estimateBounds predicts the cost of bounding the samples idx of X (rows of
// net.InSize()) at eps: one IBP pass per sample for its unstable counts. The logits
// option adds a second bound with one lower and one upper row per output. held is
// the bytes the request already holds besides the decoded network and samples (the
// body).
func estimateBounds(ctx context.Context, net *nn.Network, X []float64, idx []int, eps float64, m crown.Method, iterations int, logits bool, held int64) (Estimate, error) {
	n := net.InSize()
	out := net.OutSize()
	var est Estimate
	for _, i := range idx {
		lo, hi, err := spec.Box(X[i*n:(i+1)*n], eps)
		if err != nil {
			return est, fmt.Errorf("sample %d: %w", i, err)
		}
		r, err := crown.Bound(ctx, net, lo, hi, make([]float64, out), crown.Options{Method: crown.IBP})
		if err != nil {
			return est, fmt.Errorf("sample %d: %w", i, err)
		}
		e := sampleEstimate(net, r.Unstable, max(1, out-1), m, iterations)
		if logits {
			l := sampleEstimate(net, r.Unstable, 2*out, m, iterations)
			e.Work += l.Work
			e.Memory = max(e.Memory, l.Memory)
		}
		est.Work += e.Work
		est.Memory = max(est.Memory, e.Memory)
	}
	live := est.Memory + onnx.NetworkBytes(net) + 8*int64(len(X)) + held
	est.Memory = memBase + memHeadroom*live
	return est, nil
}
