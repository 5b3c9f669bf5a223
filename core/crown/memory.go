package crown

import (
	"fmt"

	"github.com/graftcert/graftcert/core/nn"
)

// EstimateMemory returns an upper estimate, in bytes, of the working memory one Bound
// call with the given method needs on net with a specification of nspec rows: the
// largest batch of rows a start node propagates (every neuron of a layer assumed
// unstable), and for α-CROWN the tapes and optimiser state of every start node.
func EstimateMemory(net *nn.Network, method Method, nspec int) int64 {
	const f = 8 // bytes per float64
	weights := int64(0)
	for _, l := range net.Layers {
		for _, p := range l.Params() {
			weights += int64(len(p))
		}
	}
	var acts []int
	for k, l := range net.Layers {
		if _, ok := l.(nn.Activation); ok {
			acts = append(acts, k)
		}
	}
	e := &engine{net: net}
	for _, l := range net.Layers {
		o, err := newOp(l)
		if err != nil {
			return 0
		}
		e.ops = append(e.ops, o)
	}
	for e.first < len(e.ops) {
		lo, ok := e.ops[e.first].(linearOp)
		if !ok || lo.mixing() {
			break
		}
		e.first++
	}
	boxes := int64(0)
	for _, s := range net.Shapes {
		boxes += 2 * int64(s.Size())
	}
	peak := int64(0)
	alphaState := int64(0)
	nodes := append(append([]int(nil), acts...), len(net.Layers))
	for _, k := range nodes {
		rows := int64(nspec)
		if k < len(net.Layers) {
			if e.exactByIBP(k) {
				continue
			}
			rows = 2 * int64(net.Shapes[k].Size())
		}
		width := int64(0)
		tapeW := int64(0)
		if k < len(net.Layers) && e.patchable(k) {
			width = patchWidth(e, k)
			tapeW = width * int64(len(acts))
		} else {
			for j := e.first; j <= k; j++ {
				width = max(width, int64(net.Shapes[j].Size()))
				if _, ok := net.Layers[min(j, len(net.Layers)-1)].(nn.Activation); ok && j < k {
					tapeW += int64(net.Shapes[j].Size())
				}
			}
		}
		peak = max(peak, 3*rows*width)
		if method == AlphaCROWN {
			unst := int64(0)
			for _, j := range acts {
				if j < k {
					unst += int64(net.Shapes[j].Size())
				}
			}
			// tape + final rows + four α-sized arrays (α, gradient, two Adam moments)
			alphaState += rows*(tapeW+width) + 4*rows*unst
		}
	}
	const convBuffers = 2 * (4 << 20) // the GEMM column buffers of one conv op
	return f*(weights+boxes+peak+alphaState+convBuffers) + sparseBytes(e)
}

// sparseBytes bounds the sparse products CROWN may build (sparseConv), one per
// convolution with an activation above it: at most sparseMaxDensity of the dense
// product's multiplications, 12 bytes each (weight and index), plus the index lists.
func sparseBytes(e *engine) int64 {
	total := int64(0)
	for j, o := range e.ops {
		c, ok := o.(*convOp)
		if !ok || j+1 >= len(e.ops) {
			continue
		}
		if _, ok := e.ops[j+1].(*actOp); !ok {
			continue
		}
		cv := c.c
		dense := float64(cv.OutSize()) * float64(cv.InC*cv.KH*cv.KW)
		total += int64(12*sparseMaxDensity*dense) + 12*int64(cv.InSize()+cv.OutSize())
	}
	return total
}

// patchWidth is the largest patch (all channels) a start node at layer k reaches.
func patchWidth(e *engine, k int) int64 {
	s := e.net.Shapes[k]
	c, ph, pw := int64(s[0]), int64(1), int64(1)
	w := c
	for j := k - 1; j >= e.first; j-- {
		if o, ok := e.ops[j].(*convOp); ok {
			cv := o.c
			ph = (ph-1)*int64(cv.SH) + int64((cv.KH-1)*cv.DH) + 1
			pw = (pw-1)*int64(cv.SW) + int64((cv.KW-1)*cv.DW) + 1
			c = int64(cv.InC)
			w = max(w, c*ph*pw)
		}
	}
	return w
}

// ErrTooLarge is wrapped by the error Bound returns when the estimate exceeds
// Options.MaxMemory.
var ErrTooLarge = fmt.Errorf("model too large for the memory limit")

func checkMemory(net *nn.Network, opts Options, nspec int) error {
	if opts.MaxMemory <= 0 {
		return nil
	}
	m := opts.Method
	if m == "" {
		m = CROWN
	}
	need := EstimateMemory(net, m, nspec)
	if need > opts.MaxMemory {
		return fmt.Errorf("%w: %s needs an estimated %.2f GB, the limit is %.2f GB", ErrTooLarge, m,
			float64(need)/1e9, float64(opts.MaxMemory)/1e9)
	}
	return nil
}
