package bab

import (
	"context"
	"math"
	"math/rand/v2"
	"sort"
	"sync"
	"sync/atomic"
)

// Counterexamples of properties that hold almost everywhere sit in regions far too
// small for an attack on the whole box to find (ACAS Xu property 2 on network 5_3:
// the violation is 3e-5 deep and a few thousandths of the box wide in one
// coordinate). Input-split branch and bound finds them where it evaluates points:
// every bounded sub-box has candidate points (its centre, the corners its linear lower
// bounds point to); the best of them, its "hint", says how close the sub-box comes to
// a violation. The sub-boxes with the best hints are attacked with projected gradient
// descent scaled to their size, which resolves a narrow violation the whole-box
// attack steps over.

// phi measures how far y is from violating p: the minimum over the conjunctions of
// the largest C_r·y − D_r over the conjunction's rows (≤ 0: y violates it).
func (p *problem) phi(y []float64) float64 {
	best := inf
	for _, rows := range p.disj {
		w := math.Inf(-1)
		for _, r := range rows {
			w = max(w, rowValue(r.C, r.D, y))
		}
		best = min(best, w)
	}
	return best
}

// evalPoints evaluates candidate inputs of p (moved onto float32 values inside p's
// box, as confirm does) in one batch and returns the best one with its phi, and a
// confirmed counterexample when one violates p.
func (r *runner) evalPoints(p *problem, pts [][]float64) (best []float64, val float64, cex *Counterexample) {
	n, m := len(p.lo), r.net.OutSize()
	X := make([]float64, 0, len(pts)*n)
	k := 0
	for _, x := range pts {
		if x == nil {
			continue
		}
		for i, v := range x {
			X = append(X, toFloat32In(v, p.lo[i], p.hi[i]))
		}
		k++
	}
	val = inf
	if k == 0 {
		return nil, val, nil
	}
	Y := r.net.ForwardBatch(X, k)
	for s := 0; s < k; s++ {
		x, y := X[s*n:(s+1)*n], Y[s*m:(s+1)*m]
		v := p.phi(y)
		if math.IsNaN(v) {
			continue
		}
		// confirm decides; the margin covers phi's own summation order.
		if v <= 1e-9 {
			if c, ok := confirm(r.net, p, x); ok {
				return x, v, c
			}
		}
		if v < val {
			val, best = v, x
		}
	}
	return best, val, nil
}

// attackGap is how many bisections a sub-box must lie below the last attacked box it
// descends from before it is attacked again (its volume is then 2^-gap of that box's).
const attackGap = 3

// attackPool keeps the sub-boxes most worth attacking: the lowest hints, at most
// size of them.
type attackPool struct {
	items []*idom // increasing hintVal
	size  int
}

// offer adds d when it is eligible and among the best.
func (a *attackPool) offer(d *idom) {
	if d.hint == nil || d.depth < d.attackedAt+attackGap {
		return
	}
	i := sort.Search(len(a.items), func(i int) bool { return a.items[i].hintVal > d.hintVal })
	if i >= a.size {
		return
	}
	a.items = append(a.items, nil)
	copy(a.items[i+1:], a.items[i:])
	a.items[i] = d
	if len(a.items) > a.size {
		a.items[len(a.items)-1] = nil
		a.items = a.items[:a.size]
	}
}

// take removes and returns the best sub-box (nil when empty).
func (a *attackPool) take() *idom {
	if len(a.items) == 0 {
		return nil
	}
	d := a.items[0]
	a.items[0] = nil
	a.items = a.items[1:]
	return d
}

// runStarts runs projected gradient descent on p from the given starting points
// (each descending the hint-nearest conjunction, and the conjunctions in turn), split
// over the workers, and returns the first confirmed counterexample.
func (a *attacker) runStarts(ctx context.Context, p *problem, starts [][]float64, steps, workers int) *Counterexample {
	nd := len(p.disj)
	target := make([]int, len(starts))
	for k := range target {
		target[k] = k%(nd+1) - 1
		if nd == 1 {
			target[k] = 0
		}
	}
	workers = max(1, min(workers, len(starts)))
	var (
		found atomic.Pointer[Counterexample]
		wg    sync.WaitGroup
	)
	for w := 0; w < workers; w++ {
		lo, hi := w*len(starts)/workers, (w+1)*len(starts)/workers
		if lo == hi {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			pgd(ctx, a.model, a.net, p, starts[lo:hi], target[lo:hi], steps, &found)
		}()
	}
	wg.Wait()
	return found.Load()
}

// attackBox attacks the sub-box d of p from its hint, its centre and random points.
func (r *runner) attackBox(ctx context.Context, att *attacker, p *problem, d *idom, rng *rand.Rand) *Counterexample {
	const restarts, steps = 6, 60
	n := len(d.lo)
	starts := [][]float64{append([]float64(nil), d.hint...)}
	c := make([]float64, n)
	for i := range c {
		c[i] = (d.lo[i] + d.hi[i]) / 2
	}
	starts = append(starts, c)
	for len(starts) < restarts {
		x := make([]float64, n)
		for i := range x {
			x[i] = d.lo[i] + (d.hi[i]-d.lo[i])*rng.Float64()
		}
		starts = append(starts, x)
	}
	sub := &problem{lo: d.lo, hi: d.hi, disj: p.disj}
	return att.runStarts(ctx, sub, starts, steps, r.o.Workers)
}
