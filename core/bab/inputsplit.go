package bab

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"sort"
	"sync"
	"time"

	"github.com/graftcert/graftcert/core/crown"
)

// idom is a sub-box of an input-split branch and bound.
type idom struct {
	lo, hi []float64
	bb     *crown.BoxBound // bound of the open conjunctions' rows (their order: owner)
	open   []int           // conjunctions not yet proven on the box
	owner  []int           // conjunction of each row of bb
	value  float64         // min over open conjunctions of their best row bound
	depth  int
	// hint is the best point evaluated in the box (smallest phi, hintVal): where a
	// counterexample is likeliest. attackedAt is the depth of the last attacked box
	// this one descends from.
	hint       []float64
	hintVal    float64
	attackedAt int
}

// improveHint keeps the better of d's hint and x (phi v).
func (d *idom) improveHint(x []float64, v float64) {
	if x != nil && (d.hint == nil || v < d.hintVal) {
		d.hint, d.hintVal = x, v
	}
}

// inherit gives d the hint of its parent when the hint lies in d.
func (d *idom) inherit(parent *idom) {
	d.attackedAt = parent.attackedAt
	if parent.hint == nil {
		return
	}
	for i, v := range parent.hint {
		if v < d.lo[i] || v > d.hi[i] {
			return
		}
	}
	d.hint, d.hintVal = parent.hint, parent.hintVal
}

func (d *idom) bytes() int {
	n := 128 + 16*len(d.lo) + 8*(len(d.open)+len(d.owner))
	if d.bb != nil {
		n += d.bb.Bytes()
	}
	return n
}

// inputBaB proves every conjunction of p by bisecting the input box. Sub-boxes are
// bounded by CROWN with the intermediate bounds of the box they came from, and the
// rows' slopes optimised where that leaves them open; the conjunctions proven on a
// box are dropped for its sub-boxes. Each split bisects the coordinate whose halves
// bound best among up to lookahead candidates (all of them bounded). Candidate points
// of every sub-box are checked, and the sub-boxes whose points came closest to a
// violation are attacked (falsify.go).
func (r *runner) inputBaB(ctx context.Context, p *problem, pk int) outcome {
	m := r.net.OutSize()
	bounder, err := crown.NewBoxBounder(r.net)
	if err != nil {
		r.reason = err.Error()
		return gaveUp
	}
	// The forward bounder (when the network's layers allow it) optimises the rows'
	// slopes on the sub-boxes CROWN leaves unproven.
	fwd, _ := crown.NewForwardBounder(r.net)
	if fwd != nil {
		fwd.AlphaLR = alphaLR
	}

	all := make([]int, len(p.disj))
	for k := range all {
		all[k] = k
	}
	// Root: α-CROWN proves what it can outright.
	C, D, owner := flatRows(p, all)
	t := time.Now()
	res, err := crown.Bound(ctx, r.net, p.lo, p.hi, C, crown.Options{Method: crown.AlphaCROWN,
		Iterations: r.o.RootIterations, StopWhenPositive: true, Threads: r.o.Workers})
	r.stats.BoundSeconds += time.Since(t).Seconds()
	if err != nil {
		r.reason = err.Error()
		return ctxOutcome(ctx, err)
	}
	r.stats.Domains++
	value := make([]float64, len(p.disj))
	for k := range value {
		value[k] = math.Inf(-1)
	}
	for i := range D {
		value[owner[i]] = max(value[owner[i]], minusD(res.Lower[i], D[i]))
	}
	var open []int
	for k, v := range value {
		if v > 0 {
			r.stats.ProvenAtRoot++
		} else {
			open = append(open, k)
		}
	}
	if len(open) == 0 {
		return proven
	}
	if !r.o.AttackFirst && r.attack(ctx, p, pk) {
		return violated
	}
	rootW := make([]float64, len(p.lo))
	for i := range rootW {
		rootW[i] = p.hi[i] - p.lo[i]
	}
	// stage bounds d for the conjunctions parentOpen with one bounder, the
	// intermediate bounds of parent tightening it, and fills d.bb, d.owner, d.open and
	// d.value (clipping d's box); lower, when its rows are those of parentOpen, holds
	// row bounds that are known to hold on d.
	stage := func(d *idom, parentOpen []int, parent *crown.BoxBound, lower []float64, how int) error {
		C, D, owner := flatRows(p, parentOpen)
		rs, err := crown.NewRowSet(C, D, m)
		if err != nil {
			return err
		}
		// For conjunctions of several rows, the weights λ of the best convex combination
		// of their linear bounds (jointBound) also give a combined row Σλ_r(C_r·y − D_r)
		// that CROWN bounds directly, choosing its relaxation for the combination.
		type joint struct {
			lp  float64
			lam []float64
		}
		joints := map[int]*joint{}
		var jointOrder []int
		combine := func(bb *crown.BoxBound) (cc, dc []float64) {
			for _, k := range parentOpen {
				var A, B []float64
				var rows []int
				for i, o := range owner {
					if o == k {
						a, b := rowFunc(bb, i, d.lo, d.hi)
						A, B, rows = append(A, a...), append(B, b), append(rows, i)
					}
				}
				if len(B) < 2 {
					continue
				}
				v, lam, ok := jointBound(A, B, d.lo, d.hi)
				if !ok {
					continue
				}
				joints[k] = &joint{lp: v, lam: lam}
				if nonzero(lam) < 2 {
					continue // one row alone is best: nothing to combine
				}
				jointOrder = append(jointOrder, k)
				c := make([]float64, m)
				dd := 0.0
				for t, i := range rows {
					for j := 0; j < m; j++ {
						c[j] += lam[t] * C[i*m+j]
					}
					dd += lam[t] * D[i]
				}
				cc, dc = append(cc, c...), append(dc, dd)
			}
			return cc, dc
		}
		var bb *crown.BoxBound
		switch how {
		case howCROWN:
			bb, err = bounder.BoundExtra(ctx, d.lo, d.hi, rs, parent, combine)
		case howAlpha:
			// Enough once every conjunction has a positive row.
			done := func(lower []float64) bool {
				for _, k := range parentOpen {
					ok := false
					for i, o := range owner {
						ok = ok || o == k && lower[i] > 0
					}
					if !ok {
						return false
					}
				}
				return true
			}
			bb, err = fwd.Optimize(ctx, d.lo, d.hi, rs, parent, alphaSteps, done, combine)
		}
		if err != nil {
			return err
		}
		if len(lower) == len(bb.Lower) {
			// The parent's bounds hold on the sub-box too (CROWN is not monotone).
			for i, v := range lower {
				bb.Lower[i] = max(bb.Lower[i], v)
			}
		}
		val := map[int]float64{}
		for i, k := range owner {
			if v, ok := val[k]; !ok || bb.Lower[i] > v {
				val[k] = bb.Lower[i]
			}
		}
		for t, k := range jointOrder {
			val[k] = max(val[k], joints[k].lp)
			if t < len(bb.Extra) {
				val[k] = max(val[k], bb.Extra[t])
			}
		}
		// Clip the box to the hull of the points that can still be unsafe: those where
		// every row of an open conjunction has a non-positive linear lower bound.
		clipped := map[int][2][]float64{}
		for _, k := range parentOpen {
			if val[k] > 0 {
				continue
			}
			var A, B []float64
			for i, o := range owner {
				if o == k {
					a, b := rowFunc(bb, i, d.lo, d.hi)
					A = append(A, a...)
					B = append(B, b)
				}
			}
			var lam []float64
			if j := joints[k]; j != nil {
				lam = j.lam
			}
			lo, hi := append([]float64(nil), d.lo...), append([]float64(nil), d.hi...)
			empty := false
			n := len(lo)
			for r := range B {
				if !clipLinear(A[r*n:(r+1)*n], B[r], lo, hi) {
					empty = true
					break
				}
			}
			if !empty && lam != nil {
				ca := make([]float64, n)
				cb := 0.0
				for r, l := range lam {
					cb += l * B[r]
					for j := range ca {
						ca[j] += l * A[r*n+j]
					}
				}
				// The combination's own rounding: shift it down by a margin.
				cb -= 1e-12 * (math.Abs(cb) + l1(ca, lo, hi))
				empty = !clipLinear(ca, cb, lo, hi)
			}
			if empty {
				val[k] = inf // no unsafe point of this conjunction in the box
				continue
			}
			clipped[k] = [2][]float64{lo, hi}
		}
		d.open = d.open[:0]
		d.value = inf
		for _, k := range parentOpen {
			d.value = min(d.value, val[k])
			if val[k] <= 0 {
				d.open = append(d.open, k)
			}
		}
		if len(d.open) > 0 {
			lo, hi := clipped[d.open[0]][0], clipped[d.open[0]][1]
			for _, k := range d.open[1:] {
				for i := range lo {
					lo[i] = min(lo[i], clipped[k][0][i])
					hi[i] = max(hi[i], clipped[k][1][i])
				}
			}
			d.lo, d.hi = lo, hi
		}
		if len(d.open) == len(parentOpen) {
			d.bb, d.owner = bb, owner
			return nil
		}
		// Keep only the rows of the conjunctions still open.
		keep := &crown.BoxBound{}
		*keep = *bb
		keep.Lower, keep.A, keep.Bias = nil, nil, nil
		d.owner = nil
		n := len(d.lo)
		for i, k := range owner {
			if val[k] <= 0 {
				keep.Lower = append(keep.Lower, bb.Lower[i])
				keep.A = append(keep.A, bb.A[i*n:(i+1)*n]...)
				keep.Bias = append(keep.Bias, bb.Bias[i])
				d.owner = append(d.owner, k)
			}
		}
		d.bb = keep
		return nil
	}
	// bound fills d.bb, d.owner, d.open and d.value for the conjunctions parentOpen:
	// CROWN with the parent's intermediate bounds, then, when a conjunction stays open
	// and some neuron is unstable, the rows' slopes optimised under CROWN's bounds.
	bound := func(d *idom, parentOpen []int, parent *crown.BoxBound) error {
		var lower []float64
		if parent != nil {
			lower = parent.Lower
		}
		if err := stage(d, parentOpen, parent, lower, howCROWN); err != nil {
			return err
		}
		if len(d.open) == 0 || fwd == nil || d.bb.Unstable() == 0 {
			return nil // proven, or exact: no slope to choose
		}
		// CROWN left a conjunction open: optimise the rows' slopes under its
		// intermediate bounds.
		cb := d.bb
		return stage(d, append([]int(nil), d.open...), cb, cb.Lower, howAlpha)
	}
	// candidates: the box centre and, per open row, the corner minimising its linear
	// lower bound.
	candidates := func(d *idom) [][]float64 {
		n := len(d.lo)
		c := make([]float64, n)
		for i := range c {
			c[i] = (d.lo[i] + d.hi[i]) / 2
		}
		pts := [][]float64{c}
		for i := range d.owner {
			a := d.bb.A[i*n : (i+1)*n]
			x := make([]float64, n)
			for j, v := range a {
				if v >= 0 {
					x[j] = d.lo[j]
				} else {
					x[j] = d.hi[j]
				}
			}
			pts = append(pts, x)
		}
		return pts
	}
	// evaluate checks a bounded box's candidate points and keeps the best as its hint.
	evaluate := func(d *idom) bool {
		x, v, c := r.evalPoints(p, candidates(d))
		if c != nil {
			r.cex, r.stats.Found = c, "bab"
			return true
		}
		d.improveHint(x, v)
		return false
	}
	root := &idom{lo: p.lo, hi: p.hi, attackedAt: -attackGap}
	if err := bound(root, open, nil); err != nil {
		r.reason = err.Error()
		return ctxOutcome(ctx, err)
	}
	r.stats.Domains++
	if evaluate(root) {
		return violated
	}
	if len(root.open) == 0 {
		return proven
	}
	q := newQueue(func(d *idom) float64 { return d.value }, func(d *idom) int { return d.bytes() })
	q.push(root)
	batch := r.o.BatchSize
	if batch <= 0 {
		batch = 256
	}
	bounded := 2
	minProven := inf
	var att *attacker
	if !r.o.Attack.Skip {
		att = newAttacker(r.net)
	}
	pool := &attackPool{size: 1024}
	pool.offer(root)
	rng := rand.New(rand.NewPCG(r.o.Seed, 0x51ed2701))
	t0, attackTime := time.Now(), 0.0
	for q.Len() > 0 {
		if err := ctx.Err(); err != nil {
			r.progress(q.Len(), bounded, q.min())
			return outOfTime
		}
		if r.o.MaxDomains > 0 && r.stats.Domains >= r.o.MaxDomains {
			r.reason = fmt.Sprintf("node limit of %d subdomains reached", r.o.MaxDomains)
			r.progress(q.Len(), bounded, q.min())
			return gaveUp
		}
		if int64(q.total) > r.o.MemoryLimit {
			r.reason = fmt.Sprintf("memory limit of %d bytes reached with %d subdomains", r.o.MemoryLimit, q.Len())
			r.progress(q.Len(), bounded, q.min())
			return gaveUp
		}
		q.setReverse(int64(q.total) > r.o.MemoryLimit/2)
		type job struct {
			d          *idom
			parentOpen []int
			parent     *crown.BoxBound
			group      int // the popped domain and candidate coordinate it belongs to
		}
		var jobs []job
		var groups [][]int // per popped domain: the first job of each candidate pair
		for q.Len() > 0 && len(jobs) < 2*batch {
			d := q.pop()
			dims := r.splitDims(d, rootW)
			if len(dims) == 0 {
				r.reason = "an input box became too small to split"
				r.progress(q.Len()+1, bounded, d.value)
				return gaveUp
			}
			var g []int
			for _, dim := range dims {
				mid := d.lo[dim] + (d.hi[dim]-d.lo[dim])/2
				g = append(g, len(jobs))
				for side := 0; side < 2; side++ {
					c := &idom{lo: append([]float64(nil), d.lo...), hi: append([]float64(nil), d.hi...), depth: d.depth + 1}
					if side == 0 {
						c.hi[dim] = mid
					} else {
						c.lo[dim] = mid
					}
					c.inherit(d)
					jobs = append(jobs, job{c, d.open, d.bb, len(groups)})
				}
			}
			groups = append(groups, g)
		}
		// Every candidate coordinate's pair of halves is bounded; the best pair is kept.
		t := time.Now()
		if err := r.parallel(ctx, len(jobs), func(i int) error {
			return bound(jobs[i].d, jobs[i].parentOpen, jobs[i].parent)
		}); err != nil {
			r.reason = err.Error()
			r.progress(q.Len()+len(groups), bounded, q.min())
			return ctxOutcome(ctx, err)
		}
		chosen := make([]int, len(groups))
		for gi, g := range groups {
			chosen[gi] = bestPair(g, func(i int) (float64, float64) { return jobs[i].d.value, jobs[i+1].d.value })
		}
		r.stats.BoundSeconds += time.Since(t).Seconds()
		r.stats.Domains += len(jobs)
		bounded += len(jobs)
		for gi := range groups {
			bi := chosen[gi]
			for _, j := range jobs[bi : bi+2] {
				d := j.d
				r.stats.MaxDepth = max(r.stats.MaxDepth, d.depth)
				if len(d.open) == 0 {
					minProven = min(minProven, d.value)
					continue
				}
				if evaluate(d) {
					return violated
				}
				q.push(d)
				pool.offer(d)
			}
		}
		// Counterexamples near the decision boundary are too rare for an attack on the
		// whole box; the sub-boxes whose points came closest to a violation are where
		// they hide. Spend a bounded share of the time attacking those.
		if att != nil && attackTime < attackShare*time.Since(t0).Seconds() {
			ta := time.Now()
			for time.Since(ta).Seconds() < 0.02 && ctx.Err() == nil {
				d := pool.take()
				if d == nil {
					break
				}
				d.attackedAt = d.depth
				if c := r.attackBox(ctx, att, p, d, rng); c != nil {
					r.cex, r.stats.Found = c, "bab"
					return violated
				}
				r.stats.BoxAttacks++
			}
			attackTime += time.Since(ta).Seconds()
			r.stats.AttackSeconds += time.Since(ta).Seconds()
		}
		r.progress(q.Len(), bounded, q.min())
	}
	r.progress(0, bounded, minProven)
	return proven
}

// attackShare is the share of the branch and bound's time spent attacking sub-boxes.
const attackShare = 0.15

// sensWeight weighs the linear sensitivity of a coordinate against its relative width
// in splitDims (measured on ACAS Xu: sensitivity must dominate, width only breaks
// ties and keeps a coordinate the linear bound ignores from being starved).
const sensWeight = 100

// lookahead is the number of candidate coordinates whose halves are bounded before
// one is chosen (all of them for ACAS Xu's five inputs). Choosing by the halves'
// actual bounds shrinks the tree far more than any score of the parent predicts, and
// ranking by cheaper bounds (intervals, or the forward relaxation alone) misleads
// exactly where it matters, in boxes with many unstable neurons (measured on ACAS Xu
// property 2, network 4_2: ~260k bounded boxes with it against well over a million
// without, where ranking by forward bounds did not finish in 300 s).
const lookahead = 6

// alphaSteps and alphaLR configure the optimisation of the rows' lower slopes
// (crown.ForwardBounder.Optimize) on every sub-box CROWN leaves unproven. Large steps
// matter: with few unstable neurons the best slopes are far from CROWN's adaptive
// ones, and Adam with step 1 gets there in a few steps where 0.1 needs twenty.
// Measured on ACAS Xu property 2: network 4_2 needs 30k bounded boxes instead of 260k,
// network 3_3 54k (it times out without).
const (
	alphaSteps = 5
	alphaLR    = 1.0
)

// How a stage bounds a sub-box: CROWN with the parent's intermediate bounds, or the
// optimisation of the rows' slopes under a CROWN bound's intermediate bounds.
const (
	howCROWN = iota
	howAlpha
)

// bestPair picks, among the pairs of halves starting at the jobs g, the one whose
// halves are best on average (a proven half counts as 0; values from val). The worse
// half alone ties too often, when one half does not improve. The first pair (the
// heuristic's favourite) stands unless another is measurably better: rounding noise
// must not steer the split to a degenerate side.
func bestPair(g []int, val func(i int) (float64, float64)) int {
	score := func(i int) float64 {
		a, b := val(i)
		return min(a, 0) + min(b, 0)
	}
	bi, bv := g[0], score(g[0])
	for _, i := range g[1:] {
		if v := score(i); v > bv+1e-9+1e-6*math.Abs(bv) {
			bi, bv = i, v
		}
	}
	return bi
}

// splitDims returns up to lookahead coordinates to bisect, best first: for the open
// conjunction with the lowest bound, its best row's linear bound A·x + b loses |A_i|·w_i
// to coordinate i over the box, and bisecting a coordinate with a large loss helps it
// most (smart branching on the input); that score, taken relative to the gap to prove,
// is balanced against the coordinate's width relative to the root box. None when no
// coordinate can be split further.
func (r *runner) splitDims(d *idom, rootW []float64) []int {
	n := len(d.lo)
	worst, wv := -1, inf
	for _, k := range d.open {
		v := math.Inf(-1)
		for i, o := range d.owner {
			if o == k {
				v = max(v, d.bb.Lower[i])
			}
		}
		if v < wv {
			worst, wv = k, v
		}
	}
	row := -1
	for i, o := range d.owner {
		if o == worst && (row < 0 || d.bb.Lower[i] > d.bb.Lower[row]) {
			row = i
		}
	}
	// Normalise both scores to [0, 1]: the sensitivity |A_i|·w_i of the binding row and
	// the width relative to the root box, so that a coordinate the linear bound ignores
	// (its nonlinearity hidden by the relaxation) is still split once it is the widest.
	sens, rel := make([]float64, n), make([]float64, n)
	sumS, maxR := 0.0, 0.0
	ok := make([]bool, n)
	for i := 0; i < n; i++ {
		w := d.hi[i] - d.lo[i]
		mid := d.lo[i] + w/2
		if !(w > 0) || mid <= d.lo[i] || mid >= d.hi[i] {
			continue // cannot be bisected in floating point
		}
		if w < 1e-9*rootW[i] {
			continue // bisecting further gains nothing measurable
		}
		ok[i] = true
		if row >= 0 {
			sens[i] = math.Abs(d.bb.A[row*n+i]) * w
		}
		rel[i] = w / rootW[i]
		sumS += sens[i]
		maxR = max(maxR, rel[i])
	}
	type scored struct {
		i int
		s float64
	}
	var cand []scored
	for i := 0; i < n; i++ {
		if !ok[i] || rel[i] < 1e-3*maxR {
			continue // far narrower than the widest: splitting it is noise
		}
		// Sensitivity counts relative to the gap to prove: when the linear bound barely
		// varies over the box, its looseness comes from the relaxation, which only
		// shrinking the widest coordinates reduces.
		s := rel[i] / maxR
		if norm := max(sumS, math.Abs(wv)); norm > 0 {
			s += sensWeight * sens[i] / norm
		}
		cand = append(cand, scored{i, s})
	}
	sort.SliceStable(cand, func(a, b int) bool { return cand[a].s > cand[b].s })
	k := lookahead
	var out []int
	for _, c := range cand[:min(k, len(cand))] {
		out = append(out, c.i)
	}
	return out
}

// rowFunc returns row i of bb as a linear function a·x + b of the input that lies
// below C_i·f(x) − D_i on the box [lo, hi] even after rounding: CROWN's linear bound
// shifted down so that its minimum over the box is at most the sound bound Lower_i
// (which carries CROWN's rounding margin), and by a margin for the conversion to input
// coordinates.
func rowFunc(bb *crown.BoxBound, i int, lo, hi []float64) ([]float64, float64) {
	n := len(lo)
	a := bb.A[i*n : (i+1)*n]
	minBox, mag := bb.Bias[i], math.Abs(bb.Bias[i])
	for j, v := range a {
		minBox += min(v*lo[j], v*hi[j])
		mag += math.Abs(v) * max(math.Abs(lo[j]), math.Abs(hi[j]))
	}
	delta := max(0, minBox-bb.Lower[i]) + 1e-9*mag
	return a, bb.Bias[i] - delta
}

// clipLinear narrows [lo, hi] (in place) to a box that holds every point of it where
// a·x + b ≤ 0, by interval propagation with outward rounding. It returns false when no
// point of the box qualifies.
func clipLinear(a []float64, b float64, lo, hi []float64) bool {
	sum := b // min over the box of a·x + b
	for j, v := range a {
		sum += min(v*lo[j], v*hi[j])
	}
	if sum > 1e-15*math.Abs(b) {
		return false
	}
	for j, v := range a {
		if v == 0 {
			continue
		}
		rest := sum - min(v*lo[j], v*hi[j])
		bound := -rest / v
		slack := 1e-12*(math.Abs(bound)+math.Abs(hi[j]-lo[j])) + 1e-300
		if v > 0 {
			if nb := bound + slack; nb < hi[j] {
				hi[j] = nb
			}
		} else {
			if nb := bound - slack; nb > lo[j] {
				lo[j] = nb
			}
		}
		if lo[j] > hi[j] {
			return false
		}
		sum = rest + min(v*lo[j], v*hi[j])
	}
	return true
}

func l1(a, lo, hi []float64) float64 {
	s := 0.0
	for j, v := range a {
		s += math.Abs(v) * max(math.Abs(lo[j]), math.Abs(hi[j]))
	}
	return s
}

// parallel runs f(0), …, f(n−1) on the runner's workers and returns the first error.
func (r *runner) parallel(ctx context.Context, n int, f func(i int) error) error {
	errs := make([]error, n)
	var wg sync.WaitGroup
	next := make(chan int, n)
	for i := 0; i < n; i++ {
		next <- i
	}
	close(next)
	for w := 0; w < min(r.o.Workers, n); w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				if err := ctx.Err(); err != nil {
					errs[i] = err
					continue
				}
				errs[i] = f(i)
			}
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

func nonzero(v []float64) int {
	n := 0
	for _, x := range v {
		if x != 0 {
			n++
		}
	}
	return n
}
