package crown

import (
	"context"
	"math"
)

// startNode is one node whose bounds α-CROWN computes by a backward pass: an
// activation layer's input (rows for its unstable neurons) or the output (rows of C).
// It owns one α matrix per activation layer below it, as auto_LiRPA does.
type startNode struct {
	layer int
	idx   []int // neurons of an intermediate node; nil for the output
	n     int   // rows
	alpha map[int][]float64
	grad  map[int][]float64
	m, v  map[int][]float64 // Adam moments

	// per iteration
	tape             *tape
	final            *rows
	start            int        // the layer final's backward pass started below
	pfinal           *patchRows // final rows when they were patches
	activeL, activeU []bool     // whether this node's bound is the one in force
}

func (e *engine) newStartNode(layer int, idx []int, n int, cols map[int][]int) *startNode {
	s := &startNode{layer: layer, idx: idx, n: n, alpha: map[int][]float64{}, grad: map[int][]float64{},
		m: map[int][]float64{}, v: map[int][]float64{}}
	for j := 0; j < layer; j++ {
		rx := e.relax[j]
		if rx == nil || len(cols[j]) == 0 {
			continue
		}
		nc := len(cols[j])
		a := make([]float64, n*nc)
		for r := 0; r < n; r++ {
			for c, i := range cols[j] {
				a[r*nc+c] = rx.dL[i]
			}
		}
		s.alpha[j] = a
		s.grad[j] = make([]float64, n*nc)
		s.m[j] = make([]float64, n*nc)
		s.v[j] = make([]float64, n*nc)
	}
	return s
}

// adam takes one ascent step on every α of the node and projects onto [0, 1].
func (s *startNode) adam(lr float64, step int) {
	const b1, b2, eps = 0.9, 0.999, 1e-8
	// The bias corrections are applied as products: this loop runs over every α of
	// every start node each iteration, and divisions are its slowest part.
	st := AdamStep{B1: b1, C1: 1 - b1, B2: b2, C2: 1 - b2, Eps: eps, LR: lr,
		IC1: 1 / (1 - math.Pow(b1, float64(step))), IC2: 1 / (1 - math.Pow(b2, float64(step)))}
	for j, a := range s.alpha {
		Adam(a, s.grad[j], s.m[j], s.v[j], st)
	}
}

func (s *startNode) zeroGrad() {
	for _, g := range s.grad {
		clear(g)
	}
}

// alphaState is one α-CROWN optimisation: the start nodes with their α, and the
// fixed α column layout of every activation layer.
type alphaState struct {
	e       *engine
	spec    *rows
	cols    map[int][]int
	nodes   []*startNode // intermediate start nodes, in layer order
	byLayer map[int]*startNode
	out     *startNode
	ones    []float64
}

func (e *engine) newAlphaState(spec *rows) *alphaState {
	st := &alphaState{e: e, spec: spec, cols: map[int][]int{}, byLayer: map[int]*startNode{}}
	for k, rx := range e.relax {
		if rx != nil {
			st.cols[k] = append([]int(nil), rx.unst...)
		}
	}
	for k, rx := range e.relax {
		if rx != nil && len(rx.unst) > 0 && !e.exactByIBP(k) {
			s := e.newStartNode(k, st.cols[k], 2*len(st.cols[k]), st.cols)
			st.nodes = append(st.nodes, s)
			st.byLayer[k] = s
		}
	}
	st.out = e.newStartNode(len(e.ops), nil, spec.n, st.cols)
	st.ones = make([]float64, spec.n)
	for i := range st.ones {
		st.ones[i] = 1
	}
	return st
}

// sweep computes every start node's bounds under the current α, each intermediate box
// intersected with the given boxes (the previous iteration's, which are sound), and
// returns the output rows' lower bounds.
func (st *alphaState) sweep(baseLo, baseHi [][]float64) []float64 {
	e := st.e
	last := 0
	for k, o := range e.ops {
		act, ok := o.(*actOp)
		if !ok {
			continue
		}
		e.ibpFrom(last, k)
		intersect(e.boxLo[k], e.boxHi[k], baseLo[k], baseHi[k])
		if s := st.byLayer[k]; s != nil {
			s.tape = newTape()
			var lb []float64
			if e.patchable(k) {
				s.pfinal = e.backwardPatch(k, identityPatches(s.idx, e.net.Shapes[k]), s.alpha, s.tape)
				lb = e.concretizePatch(s.pfinal)
			} else {
				r, start := e.startRows(k, s.idx)
				s.final, s.start = e.backward(start, r, s.alpha, s.tape), start
				lb = e.concretize(s.final)
			}
			n := len(s.idx)
			s.activeL = make([]bool, n)
			s.activeU = make([]bool, n)
			for t, i := range s.idx {
				s.activeL[t] = !e.keepTighter || lb[t] >= e.boxLo[k][i]
				s.activeU[t] = !e.keepTighter || -lb[n+t] <= e.boxHi[k][i]
			}
			e.tighten(k, s.idx, lb)
		}
		e.relax[k] = newRelaxation(act, e.boxLo[k], e.boxHi[k]).withColumns(st.cols[k])
		last = k
	}
	st.out.tape = newTape()
	st.out.final = e.backward(len(e.ops), st.spec.clone(), st.out.alpha, st.out.tape)
	return e.concretize(st.out.final)
}

// backprop fills every start node's grad with the gradient of the sum of the output
// lower bounds computed by the last sweep.
func (st *alphaState) backprop() {
	e := st.e
	g := &grads{dU: map[int][]float64{}, bU: map[int][]float64{}}
	for k, rx := range e.relax {
		if rx != nil {
			g.dU[k] = make([]float64, len(rx.l))
			g.bU[k] = make([]float64, len(rx.l))
		}
	}
	st.out.zeroGrad()
	e.adjoint(len(e.ops), st.out.final, st.ones, st.out.tape, st.out.alpha, st.out.grad, g)
	for t := len(st.nodes) - 1; t >= 0; t-- {
		s := st.nodes[t]
		s.zeroGrad()
		if seed, any := e.boundSeeds(s, g); any {
			if s.pfinal != nil {
				e.adjointPatch(s.layer, s.pfinal, seed, s.tape, s.alpha, s.grad, g)
			} else {
				e.adjoint(s.start, s.final, seed, s.tape, s.alpha, s.grad, g)
			}
		}
	}
}

// alphaBound runs α-CROWN as auto_LiRPA does by default — CROWN first, then Adam on
// the lower slopes of every unstable ReLU, separately per start node, maximising the
// sum of the output lower bounds, every iteration recomputing the intermediate bounds
// of CROWN's unstable neurons from scratch — followed by one refinement pass of our
// own: the intermediate boxes intersected over all iterations (and with IBP) under the
// best iteration's α. Gradients come from the adjoint of the backward passes and are
// exact. The best bound of every row over all passes is returned.
func (e *engine) alphaBound(ctx context.Context, C []float64, opts Options) (*Result, error) {
	iters, lr, decay := opts.Iterations, opts.LR, opts.LRDecay
	if iters <= 0 {
		iters = 20
	}
	if lr <= 0 {
		lr = 0.1
	}
	if decay <= 0 {
		decay = 0.98
	}
	if err := e.crownIntermediate(ctx); err != nil {
		return nil, err
	}
	m := e.net.OutSize()
	st := e.newAlphaState(specRows(C, m, opts.Upper))
	best := make([]float64, st.spec.n)
	for i := range best {
		best[i] = math.Inf(-1)
	}
	// CROWN's boxes are the base of every iteration: neurons CROWN found stable keep
	// them, the others are recomputed under the current α.
	initLo, initHi := e.boxLo, e.boxHi
	tightLo, tightHi := copyBoxes(initLo), copyBoxes(initHi)
	bestLoss := math.Inf(-1)
	var bestAlpha []map[int][]float64
	for it := 0; it < iters; it++ {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		lb := st.run(initLo, initHi)
		loss := 0.0
		for i, v := range lb {
			best[i] = max(best[i], v)
			loss += v
		}
		for k, rx := range e.relax {
			if rx != nil {
				intersect(tightLo[k], tightHi[k], e.boxLo[k], e.boxHi[k])
			}
		}
		if loss > bestLoss {
			bestLoss = loss
			bestAlpha = st.snapshot()
		}
		if opts.StopWhenPositive && allPositive(best[:len(C)/m]) {
			return e.finish(best, len(C)/m, opts.Upper), nil
		}
		if it == iters-1 {
			break
		}
		st.backprop()
		rate := lr * math.Pow(decay, float64(it))
		st.out.adam(rate, it+1)
		for _, s := range st.nodes {
			s.adam(rate, it+1)
		}
	}
	// Refinement, our addition: from the best α, a few more steps in which every
	// intermediate box is intersected with the tightest seen so far (and IBP). The
	// gradients then hold those intersected bounds constant.
	st.restore(bestAlpha)
	e.keepTighter = true
	refine := 1 + iters/5
	for r := 0; r < refine; r++ {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		for i, v := range st.run(tightLo, tightHi) {
			best[i] = max(best[i], v)
		}
		for k, rx := range e.relax {
			if rx != nil {
				intersect(tightLo[k], tightHi[k], e.boxLo[k], e.boxHi[k])
			}
		}
		if r == refine-1 {
			break
		}
		st.backprop()
		rate := lr * math.Pow(decay, float64(iters+r))
		st.out.adam(rate, iters+r)
		for _, s := range st.nodes {
			s.adam(rate, iters+r)
		}
	}
	return e.finish(best, len(C)/m, opts.Upper), nil
}

// finish rebuilds the relaxations from the final boxes (they give the reported
// unstable counts) and returns the result.
func (e *engine) finish(best []float64, nspec int, upper bool) *Result {
	for k, o := range e.ops {
		if act, ok := o.(*actOp); ok {
			e.relax[k] = newRelaxation(act, e.boxLo[k], e.boxHi[k])
		}
	}
	return e.result(best, nspec, upper)
}

func allPositive(v []float64) bool {
	for _, x := range v {
		if !(x > 0) {
			return false
		}
	}
	return true
}

// run resets the boxes and sweeps with the given base boxes.
func (st *alphaState) run(baseLo, baseHi [][]float64) []float64 {
	e := st.e
	e.boxLo = make([][]float64, len(baseLo))
	e.boxHi = make([][]float64, len(baseHi))
	e.boxLo[0], e.boxHi[0] = e.lo, e.hi
	return st.sweep(baseLo, baseHi)
}

func (st *alphaState) all() []*startNode { return append([]*startNode{st.out}, st.nodes...) }

// snapshot copies every start node's α.
func (st *alphaState) snapshot() []map[int][]float64 {
	var snap []map[int][]float64
	for _, s := range st.all() {
		m := map[int][]float64{}
		for j, a := range s.alpha {
			m[j] = append([]float64(nil), a...)
		}
		snap = append(snap, m)
	}
	return snap
}

func (st *alphaState) restore(snap []map[int][]float64) {
	for n, s := range st.all() {
		for j, a := range snap[n] {
			copy(s.alpha[j], a)
		}
	}
}

func copyBoxes(b [][]float64) [][]float64 {
	c := make([][]float64, len(b))
	for i, v := range b {
		if v != nil {
			c[i] = append([]float64(nil), v...)
		}
	}
	return c
}

// boundSeeds turns the gradient with respect to the upper-line parameters of start
// node s's layer into gradients with respect to the rows that bounded it: dU = u/(u−l)
// and bU = −l·u/(u−l) depend on l (lower row) and u (minus the negated row).
func (e *engine) boundSeeds(s *startNode, g *grads) ([]float64, bool) {
	k := s.layer
	rx := e.relax[k]
	n := len(s.idx)
	seed := make([]float64, 2*n)
	any := false
	for t, i := range s.idx {
		if rx.state[i] != unstable {
			continue
		}
		l, u := rx.l[i], rx.u[i]
		w := u - l
		w2 := w * w
		gd, gb := g.dU[k][i], g.bU[k][i]
		gl := gd*u/w2 - gb*u*u/w2
		gu := -gd*l/w2 + gb*l*l/w2
		if s.activeL[t] && gl != 0 {
			seed[t] = gl
			any = true
		}
		if s.activeU[t] && gu != 0 {
			seed[n+t] = -gu
			any = true
		}
	}
	return seed, any
}

// intersect narrows [lo, hi] to [plo, phi] where the latter is given.
func intersect(lo, hi, plo, phi []float64) {
	if plo == nil {
		return
	}
	for i := range lo {
		if plo[i] > lo[i] {
			lo[i] = plo[i]
		}
		if phi[i] < hi[i] {
			hi[i] = phi[i]
		}
		if lo[i] > hi[i] {
			lo[i], hi[i] = hi[i], lo[i]
		}
	}
}
