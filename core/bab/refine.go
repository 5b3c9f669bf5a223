package bab

import (
	"context"
	"math"
	"time"

	"github.com/graftcert/graftcert/core/crown"
	"github.com/graftcert/graftcert/core/nn"
)

// Branch and bound over a deep network stalls when its intermediate bounds are loose:
// every unstable neuron of a late layer is relaxed in every subdomain, and splitting
// early neurons barely tightens them because subdomains reuse the root's intermediate
// bounds. α,β-CROWN answers this with MIP solves per neuron before branching
// ("bab-refine"). graftcert does the same with its own tool: for each activation layer
// after the first, in order, the network truncated before that layer is bounded again
// under the bounds refined so far, and every neuron that stays unstable gets two small
// branch and bounds over ReLU splits, one on z_i (its lower bound) and one on −z_i
// (its upper bound). The global lower bound of a branch and bound is sound whenever it
// stops (the minimum over its open, leaf and proven subdomains), so every refined
// bound is sound, and a neuron whose sign gets proven becomes stable.

// refineProblem is one neuron bound being refined: a branch and bound on one row.
type refineProblem struct {
	neuron int
	upper  bool // the row is −z (its bound is minus the upper bound)
	open   *queue[*crown.Domain]
	low    float64 // min over the proven and leaf subdomains
	doms   int
}

func (q *refineProblem) bound() float64 {
	b := q.low
	if q.open.Len() > 0 {
		b = min(b, q.open.min())
	}
	return b
}

// refineBounds returns pre-activation bounds of every activation layer of r.net over
// [lo, hi], start (the root α-CROWN's) tightened as described above, spending at most
// until deadline. Layers whose turn does not come keep start's bounds.
func (r *runner) refineBounds(ctx context.Context, lo, hi []float64, startLo, startHi [][]float64, deadline time.Time) (preLo, preHi [][]float64, err error) {
	preLo, preHi = copyRagged(startLo), copyRagged(startHi)
	// The truncated networks are built from a private copy: building one sets its
	// layers up, and other verifications may share r.net.
	clone := r.net.Clone()
	var acts []int
	for k, l := range clone.Layers {
		switch l.(type) {
		case *nn.ReLU, *nn.MaskedReLU:
			acts = append(acts, k)
		}
	}
	if len(acts) != len(preLo) {
		return startLo, startHi, nil
	}
	for p := 1; p < len(acts); p++ {
		left := time.Until(deadline)
		if left <= 0 || ctx.Err() != nil {
			break
		}
		// Later layers need their turn too: each gets an equal share of what is left.
		layerEnd := time.Now().Add(left / time.Duration(len(acts)-p))
		sub, err := nn.New(clone.Input, clone.Layers[:acts[p]])
		if err != nil {
			return nil, nil, err
		}
		if err := r.refineLayer(ctx, sub, lo, hi, preLo, preHi, p, layerEnd); err != nil {
			if ctx.Err() != nil {
				break
			}
			return nil, nil, err
		}
	}
	return preLo, preHi, nil
}

// refineLayer refines the bounds of activation layer p (the output of sub) in place.
func (r *runner) refineLayer(ctx context.Context, sub *nn.Network, lo, hi []float64, preLo, preHi [][]float64, p int, end time.Time) (err error) {
	l, u := preLo[p], preHi[p]
	n := len(l)
	var unst []int
	for i := range l {
		if l[i] < 0 && u[i] > 0 {
			unst = append(unst, i)
		}
	}
	if len(unst) == 0 {
		return nil
	}
	C := make([]float64, 2*len(unst)*n)
	for t, i := range unst {
		C[t*n+i] = 1
		C[(len(unst)+t)*n+i] = -1
	}
	// The layer's share of time bounds everything below; running out of it is not
	// an error (what was refined so far stays, and is sound).
	lctx := WithClockDeadline(ctx, end)
	outer := ctx
	ctx = lctx
	defer func() {
		if outer.Err() == nil && lctx.Err() != nil {
			err = nil
		}
	}()
	t0 := time.Now()
	solver, res, err := crown.NewSplitSolver(ctx, sub, lo, hi, C, crown.Options{
		Method: crown.AlphaCROWN, Iterations: r.o.RootIterations, Threads: r.o.Workers,
		PreLower: preLo[:p], PreUpper: preHi[:p]})
	r.stats.BoundSeconds += time.Since(t0).Seconds()
	if err != nil {
		return err
	}
	var probs []*refineProblem
	for j := range 2 * len(unst) {
		t := j % len(unst)
		q := &refineProblem{neuron: unst[t], upper: j >= len(unst), low: inf,
			open: newQueue(func(d *crown.Domain) float64 { return d.Value() }, func(d *crown.Domain) int { return d.Bytes() })}
		row := C[j*n : (j+1)*n]
		rs, err := crown.NewRowSet(row, []float64{0}, n)
		if err != nil {
			return err
		}
		q.open.push(solver.Root(rs, []float64{res.Lower[j]}))
		probs = append(probs, q)
	}
	defer func() {
		for _, q := range probs {
			b := q.bound()
			if math.IsInf(b, 0) || math.IsNaN(b) {
				continue
			}
			if q.upper {
				u[q.neuron] = min(u[q.neuron], -b)
			} else {
				l[q.neuron] = max(l[q.neuron], b)
			}
			if l[q.neuron] > u[q.neuron] { // only through rounding at a degenerate box
				l[q.neuron], u[q.neuron] = u[q.neuron], l[q.neuron]
			}
		}
	}()
	// Rounds: every problem whose sign is not yet proven branches its worst
	// subdomain, or bounds its root in the first round; the whole round is one batch.
	first := true
	for time.Now().Before(end) && ctx.Err() == nil {
		var doms []*crown.Domain
		var owner []*refineProblem
		for _, q := range probs {
			if q.open.Len() == 0 || q.open.min() > 0 || q.doms >= r.o.RefineDomains {
				continue
			}
			if first {
				d := q.open.pop()
				doms, owner = append(doms, d), append(owner, q)
				continue
			}
			d := q.open.pop()
			a, b, err := d.Branch()
			if err != nil {
				return err
			}
			for _, c := range []*crown.Domain{a, b} {
				doms, owner = append(doms, c), append(owner, q)
			}
		}
		first = false
		if len(doms) == 0 {
			break
		}
		t0 := time.Now()
		_, err := solver.BoundDomains(ctx, doms, r.o.Beta)
		r.stats.BoundSeconds += time.Since(t0).Seconds()
		if err != nil {
			// Cancelled mid-batch: those domains' bounds are still sound but the
			// parents were popped; put them back as they were bounded.
			for t, d := range doms {
				owner[t].open.push(d)
			}
			return err
		}
		r.stats.RefineDomains += len(doms)
		var leaves []*crown.Domain
		var lowner []*refineProblem
		for t, d := range doms {
			q := owner[t]
			q.doms++
			switch {
			case d.Proven():
				q.low = min(q.low, d.Value())
			case d.Leaf() || !d.Decided():
				leaves, lowner = append(leaves, d), append(lowner, q)
			default:
				q.open.push(d)
			}
		}
		if len(leaves) > 0 {
			t0 := time.Now()
			_, err := solver.BoundDomains(ctx, leaves, leafOptions(r.o.Beta))
			r.stats.BoundSeconds += time.Since(t0).Seconds()
			// Bounds only ever rise, so they are sound even when cancelled.
			for t, d := range leaves {
				lowner[t].low = min(lowner[t].low, d.Value())
			}
			if err != nil {
				return err
			}
		}
	}
	return nil
}

func copyRagged(v [][]float64) [][]float64 {
	c := make([][]float64, len(v))
	for i, s := range v {
		c[i] = append([]float64(nil), s...)
	}
	return c
}

// clockDeadline is ctx limited to deadline, with an Err that reads the clock on every
// call. context.WithDeadline relies on a timer, which on js/wasm cannot fire while Go
// computes (no preemption): a budget in the browser worker would never end. bab and
// crown poll Err, so this works everywhere; Done is only the parent's.
type clockDeadline struct {
	context.Context
	deadline time.Time
}

// WithClockDeadline returns ctx limited to deadline (or the parent's, if earlier),
// expiring by the clock alone: the budget to give Verify and VerifySample where no
// timer can fire while they run (js/wasm).
func WithClockDeadline(ctx context.Context, deadline time.Time) context.Context {
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	return clockDeadline{ctx, deadline}
}

func (c clockDeadline) Deadline() (time.Time, bool) { return c.deadline, true }

func (c clockDeadline) Err() error {
	if err := c.Context.Err(); err != nil {
		return err
	}
	if !time.Now().Before(c.deadline) {
		return context.DeadlineExceeded
	}
	return nil
}
