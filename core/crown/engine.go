package crown

import (
	"context"
	"fmt"
	"math"
	"sync"

	"github.com/graftcert/graftcert/core/nn"
)

// safety is the relative widening applied to every concretised bound. float64
// accumulation over at most a few million terms per bound errs by far less than
// 1e-9 of the magnitudes involved, so this keeps bounds sound against rounding while
// staying six orders of magnitude below the 1e-4 agreement with auto_LiRPA.
const safety = 1e-9

// engine holds one bound computation over one input box.
type engine struct {
	net    *nn.Network
	ops    []op
	lo, hi []float64
	// relax[k] is the relaxation of activation layer k (nil for other layers).
	relax []*relaxation
	// box[k] is a sound box over the input of layer k (refined as bounds improve).
	boxLo, boxHi [][]float64
	// first is the first layer that is not elementwise-affine or a reshape. The box at
	// its input is the exact image of the input box, so backward passes stop there and
	// concretise against it (mid, rad, and mx = max|·| for the rounding margin).
	first        int
	mid, rad, mx []float64
	threads      int
	// keepTighter intersects CROWN's intermediate bounds with the interval bounds
	// instead of replacing them. auto_LiRPA replaces them (CROWN can be looser than IBP
	// on some neurons at large eps), and plain CROWN does the same so that its numbers
	// equal the reference; α-CROWN and branch and bound keep the tighter of the two.
	keepTighter bool
	// knownLo/knownHi[k], when set, are sound bounds on the input of activation layer
	// k (Options.PreLower/PreUpper) that every box at k is intersected with.
	knownLo, knownHi [][]float64
	// cLo, cHi are mid ∓ rad (corners, for the adjoint passes).
	cornersOnce sync.Once
	cLo, cHi    []float64
	// sparse holds the restricted transposed convolutions of CROWN's passes.
	sparse sparseConvs
}

// setKnown takes the known pre-activation bounds of opts, checking their sizes.
func (e *engine) setKnown(opts Options) error {
	if opts.PreLower == nil && opts.PreUpper == nil {
		return nil
	}
	e.knownLo = make([][]float64, len(e.ops)+1)
	e.knownHi = make([][]float64, len(e.ops)+1)
	p := 0
	for k, o := range e.ops {
		act, ok := o.(*actOp)
		if !ok {
			continue
		}
		var lo, hi []float64
		if p < len(opts.PreLower) {
			lo = opts.PreLower[p]
		}
		if p < len(opts.PreUpper) {
			hi = opts.PreUpper[p]
		}
		p++
		if lo == nil && hi == nil {
			continue
		}
		if len(lo) != act.n || len(hi) != act.n {
			return fmt.Errorf("crown: known bounds of activation layer %d have %d/%d values, the layer has %d neurons", p-1, len(lo), len(hi), act.n)
		}
		for i := range lo {
			if math.IsNaN(lo[i]) || math.IsNaN(hi[i]) {
				return fmt.Errorf("crown: known bound of neuron %d of activation layer %d is NaN", i, p-1)
			}
		}
		e.knownLo[k], e.knownHi[k] = lo, hi
	}
	// Known bounds may be tighter than CROWN's on any neuron: keep the tighter.
	e.keepTighter = true
	return nil
}

// applyKnown intersects the box at the input of layer k with the known bounds.
func (e *engine) applyKnown(k int) {
	if e.knownLo == nil || e.knownLo[k] == nil {
		return
	}
	// The box may share its slices with the layer before (a reshape) or the input.
	e.boxLo[k] = append([]float64(nil), e.boxLo[k]...)
	e.boxHi[k] = append([]float64(nil), e.boxHi[k]...)
	intersect(e.boxLo[k], e.boxHi[k], e.knownLo[k], e.knownHi[k])
}

func newEngine(net *nn.Network, lo, hi []float64) (*engine, error) {
	if len(lo) != net.InSize() || len(hi) != net.InSize() {
		return nil, fmt.Errorf("crown: input box has %d/%d values, network input %v has %d", len(lo), len(hi), net.Input, net.InSize())
	}
	for i := range lo {
		if math.IsNaN(lo[i]) || math.IsNaN(hi[i]) || lo[i] > hi[i] {
			return nil, fmt.Errorf("crown: input box element %d is [%v, %v]", i, lo[i], hi[i])
		}
	}
	e := &engine{net: net, lo: lo, hi: hi, relax: make([]*relaxation, len(net.Layers)),
		boxLo: make([][]float64, len(net.Layers)+1), boxHi: make([][]float64, len(net.Layers)+1)}
	for _, l := range net.Layers {
		o, err := newOp(l)
		if err != nil {
			return nil, err
		}
		e.ops = append(e.ops, o)
	}
	e.boxLo[0], e.boxHi[0] = lo, hi
	for e.first < len(e.ops) {
		lo, ok := e.ops[e.first].(linearOp)
		if !ok || lo.mixing() {
			break
		}
		e.first++
	}
	e.ibpFrom(0, e.first)
	flo, fhi := e.boxLo[e.first], e.boxHi[e.first]
	e.mid, e.rad, e.mx = make([]float64, len(flo)), make([]float64, len(flo)), make([]float64, len(flo))
	for i := range flo {
		e.mid[i] = (flo[i] + fhi[i]) / 2
		e.rad[i] = (fhi[i] - flo[i]) / 2
		e.mx[i] = max(math.Abs(flo[i]), math.Abs(fhi[i]))
	}
	e.threads = 1
	return e, nil
}

// ibpFrom propagates intervals from the box at the input of layer k up to the input
// of layer stop, storing every intermediate box.
func (e *engine) ibpFrom(k, stop int) {
	for j := k; j < stop; j++ {
		e.boxLo[j+1], e.boxHi[j+1] = e.ops[j].interval(e.boxLo[j], e.boxHi[j])
	}
}

// exactByIBP reports whether the map from the network input to the input of layer k
// has at most one mixing linear layer and no activation, in which case the interval
// bound is the exact range (and equals CROWN's).
func (e *engine) exactByIBP(k int) bool {
	mixing := 0
	for j := 0; j < k; j++ {
		lo, ok := e.ops[j].(linearOp)
		if !ok {
			return false
		}
		if lo.mixing() {
			mixing++
		}
	}
	return mixing <= 1
}

// backward propagates rows over the input of layer start down to the network input.
// alpha[j], when present, is the lower-slope matrix for activation layer j. When tp is
// not nil, the rows entering every activation layer are recorded for the adjoint pass.
func (e *engine) backward(start int, r *rows, alpha map[int][]float64, tp *tape) *rows {
	return e.backwardTo(start, e.first-1, r, alpha, tp)
}

// backwardTo is backward stopped above layer stop: it returns rows over the output of
// layer stop.
func (e *engine) backwardTo(start, stop int, r *rows, alpha map[int][]float64, tp *tape) *rows {
	in := r
	next := func(nr *rows) { r = recycle(r, nr, in) }
	for j := start - 1; j > stop; j-- {
		switch o := e.ops[j].(type) {
		case *denseOp:
			if j+1 < start {
				if _, ok := e.ops[j+1].(*actOp); ok {
					live, dead := e.relax[j+1].skip(r.n)
					next(o.backwardLive(r, live, dead))
					continue
				}
			}
			next(o.backward(r))
		case *convOp:
			// The restriction leaves the rows at zero on the inactive neurons below,
			// where the α adjoint reads nothing from the tape (adjointAct) and its
			// gradients are zero.
			if s := e.sparseConv(j, start); s != nil {
				next(s.backward(o, r))
				continue
			}
			next(o.backward(r))
		case linearOp:
			next(o.backward(r))
		case *actOp:
			if tp != nil {
				tp.pre[j] = r.clone()
			}
			var al []float64
			if alpha != nil {
				al = alpha[j]
			}
			e.relax[j].backward(r, al)
		}
	}
	return r
}

// concretize returns the lower bound of every row (over the input of layer first)
// over the box: a·mid − |a|·rad + bias, minus the rounding margin.
func (e *engine) concretize(r *rows) []float64 {
	lb := make([]float64, r.n)
	Concretize(r.n, r.size, r.a, e.mid, e.rad, e.mx, r.bias, r.mag, safety, lb)
	return lb
}

// identityRows builds, for the listed neurons of a layer of the given size, the rows
// +e_i (lower bounds) followed by −e_i (minus the upper bounds).
func identityRows(idx []int, size int) *rows {
	n := len(idx)
	r := pooledRows(2*n, size)
	for k, i := range idx {
		r.a[k*size+i] = 1
		r.a[(n+k)*size+i] = -1
	}
	return r
}

// startRows returns the rows bounding the neurons idx at the input of layer k (lower
// rows, then negated upper rows) and the layer they start below. When layer k−1 is
// Dense, the identity rows times W are rows of W, so they are taken as ±W[i] (bias
// ±B[i]) over its input, the values the product would give, without the product: for
// the first Dense layer above a convolution that product was a tenth of CROWN's time.
func (e *engine) startRows(k int, idx []int) (*rows, int) {
	d, ok := e.ops[k-1].(*denseOp)
	if !ok || k-1 < e.first {
		return identityRows(idx, len(e.boxLo[k])), k
	}
	n, in := len(idx), d.d.In
	r := uninitRows(2*n, in) // every value is written below
	for t, i := range idx {
		w := d.d.W[i*in : (i+1)*in]
		copy(r.row(t), w)
		neg := r.row(n + t)
		for c, v := range w {
			neg[c] = -v
		}
		if d.d.B != nil {
			b := d.d.B[i]
			r.bias[t], r.bias[n+t] = b, -b
			r.mag[t], r.mag[n+t] = math.Abs(b), math.Abs(b)
		}
	}
	return r, k - 1
}

// candidates lists the neurons of activation layer k whose interval bound straddles
// zero and that are not grafted: the only ones whose relaxation CROWN can change.
func (e *engine) candidates(k int) []int {
	o := e.ops[k].(*actOp)
	lo, hi := e.boxLo[k], e.boxHi[k]
	var idx []int
	for i := range lo {
		if o.linear != nil && o.linear[i] {
			continue
		}
		if lo[i] < 0 && hi[i] > 0 {
			idx = append(idx, i)
		}
	}
	return idx
}

// intermediate computes CROWN bounds for the candidates of activation layer k,
// tightening boxLo[k]/boxHi[k], and returns the rows' lower bounds.
func (e *engine) intermediate(k int, idx []int, alpha map[int][]float64, tp *tape) []float64 {
	if e.patchable(k) {
		p := identityPatches(idx, e.net.Shapes[k])
		f := e.backwardPatch(k, p, alpha, tp)
		lb := e.concretizePatch(f)
		if f != p && tp == nil {
			f.release()
		}
		return lb
	}
	r, start := e.startRows(k, idx)
	if alpha == nil && tp == nil {
		lb := e.lowerBounds(start, r)
		r.release()
		return lb
	}
	f := e.backward(start, r, alpha, tp)
	lb := e.concretize(f)
	if f != r {
		r.release()
		if tp == nil {
			f.release()
		}
	}
	return lb
}

// lowerBounds is concretize(backward(start, r, nil, nil)), CROWN's bound of rows r
// over the input of layer start, going down a sparse chain (chainBound) where the
// pass ends in one. r is left to the caller.
func (e *engine) lowerBounds(start int, r *rows) []float64 {
	j := start - 1
	for j >= e.first {
		if _, ok := e.ops[j].(*convOp); ok {
			break
		}
		j--
	}
	if j >= e.first {
		if steps := e.sparseChain(j, start); steps != nil {
			f := e.backwardTo(start, j, r, nil, nil)
			lb := e.chainBound(steps, f)
			if f != r {
				f.release()
			}
			return lb
		}
	}
	f := e.backward(start, r, nil, nil)
	lb := e.concretize(f)
	if f != r {
		f.release()
	}
	return lb
}

// tighten sets layer k's box from CROWN bounds lb (lower rows, then negated upper
// rows) of the neurons idx, intersecting when keepTighter is set.
func (e *engine) tighten(k int, idx []int, lb []float64) {
	n := len(idx)
	lo, hi := e.boxLo[k], e.boxHi[k]
	for t, i := range idx {
		if !e.keepTighter {
			lo[i], hi[i] = lb[t], -lb[n+t]
			if lo[i] > hi[i] { // only through rounding at a degenerate box
				lo[i], hi[i] = hi[i], lo[i]
			}
			continue
		}
		if l := lb[t]; l > lo[i] {
			lo[i] = l
		}
		if u := -lb[n+t]; u < hi[i] {
			hi[i] = u
		}
		if lo[i] > hi[i] { // only through rounding at a degenerate box
			lo[i], hi[i] = hi[i], lo[i]
		}
	}
}

// crownIntermediate runs CROWN for every activation layer in order, building the
// relaxations the output bound needs.
func (e *engine) crownIntermediate(ctx context.Context) error {
	e.boxLo[0], e.boxHi[0] = e.lo, e.hi
	last := 0
	for k, o := range e.ops {
		act, ok := o.(*actOp)
		if !ok {
			continue
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		e.ibpFrom(last, k)
		e.applyKnown(k)
		if !e.exactByIBP(k) {
			idx := e.candidates(k)
			if len(idx) > 0 {
				lb := e.parallelIntermediate(k, idx)
				e.tighten(k, idx, lb)
			}
		}
		e.relax[k] = newRelaxation(act, e.boxLo[k], e.boxHi[k])
		last = k
	}
	e.ibpFrom(last, len(e.ops))
	return nil
}

// tape records what the adjoint pass of one backward computation needs.
type tape struct {
	pre  map[int]*rows      // rows entering activation layer j (before relaxation)
	ppre map[int]*patchRows // the same for patch rows
}

func newTape() *tape { return &tape{pre: map[int]*rows{}, ppre: map[int]*patchRows{}} }
