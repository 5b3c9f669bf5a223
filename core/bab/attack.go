package bab

import (
	"context"
	"math"
	"math/rand/v2"
	"sync"
	"sync/atomic"

	"github.com/graftcert/graftcert/core/nn"
	"github.com/graftcert/graftcert/core/train"
)

// hinge is how far below zero the attack pushes each row before it stops pulling on
// it: a small margin makes the found point robust to rounding.
const hinge = 1e-5

// attack searches the box of p for a counterexample with projected gradient descent on
// the rows of the conjunctions (L∞ geometry: signed steps of 2.5·radius/steps per
// coordinate, as Madry et al.). Restart k starts at the box centre (k = 0), at a corner
// (for boxes with few free coordinates), or uniformly at random, and descends either
// one conjunction's hinge loss Σ_r max(C_r·y − D_r, −hinge) (restarts take the
// conjunctions in turn) or, for every (nd+1)-th restart, that of the conjunction
// closest to violation at the current point. Every point visited is checked; a
// violation is returned only once confirm accepts it.
func attack(ctx context.Context, net *nn.Network, p *problem, o AttackOptions, workers int, seed uint64) (*Counterexample, error) {
	if o.Skip {
		return nil, nil
	}
	a := newAttacker(net)
	if a == nil {
		return nil, nil // a layer the gradient code cannot differentiate: no attack
	}
	return a.run(ctx, p, o, workers, seed)
}

// attacker holds what repeated attacks on one network share.
type attacker struct {
	net   *nn.Network
	model *train.Model
}

func newAttacker(net *nn.Network) *attacker {
	model, err := train.NewModel(net, true)
	if err != nil {
		return nil
	}
	return &attacker{net: net, model: model}
}

func (a *attacker) run(ctx context.Context, p *problem, o AttackOptions, workers int, seed uint64) (*Counterexample, error) {
	net, model := a.net, a.model
	n := len(p.lo)
	var free []int
	for i := range p.lo {
		if p.hi[i] > p.lo[i] {
			free = append(free, i)
		}
	}
	rng := rand.New(rand.NewPCG(seed, 0x9e3779b97f4a7c15))
	starts := make([][]float64, o.Restarts)
	for k := range starts {
		x := make([]float64, n)
		switch {
		case k == 0:
			for i := range x {
				x[i] = (p.lo[i] + p.hi[i]) / 2
			}
		case len(free) <= 10 && k <= 1<<len(free):
			copy(x, p.lo)
			for b, i := range free {
				if (k-1)>>b&1 == 1 {
					x[i] = p.hi[i]
				}
			}
		default:
			for i := range x {
				x[i] = p.lo[i] + (p.hi[i]-p.lo[i])*rng.Float64()
			}
		}
		starts[k] = x
	}
	nd := len(p.disj)
	target := make([]int, o.Restarts)
	for k := range target {
		target[k] = k%(nd+1) - 1
		if nd == 1 {
			target[k] = 0
		}
	}
	if o.parts > 1 {
		// One shard's part of the same restarts: together the shards run exactly the
		// unsharded attack.
		lo, hi := o.part*len(starts)/o.parts, (o.part+1)*len(starts)/o.parts
		starts, target = starts[lo:hi], target[lo:hi]
	}
	R := len(starts)
	workers = max(1, min(workers, R))
	var (
		found atomic.Pointer[Counterexample]
		wg    sync.WaitGroup
	)
	for w := 0; w < workers; w++ {
		lo, hi := w*R/workers, (w+1)*R/workers
		if lo == hi {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			pgd(ctx, model, net, p, starts[lo:hi], target[lo:hi], o.Steps, &found)
		}()
	}
	wg.Wait()
	if c := found.Load(); c != nil {
		return c, nil
	}
	return nil, ctx.Err()
}

// pgd runs the restarts xs (modified in place) as one batch.
func pgd(ctx context.Context, model *train.Model, net *nn.Network, p *problem, xs [][]float64, target []int, steps int, found *atomic.Pointer[Counterexample]) {
	n, m := len(p.lo), net.OutSize()
	nb := len(xs)
	X := make([]float64, nb*n)
	for s, x := range xs {
		copy(X[s*n:], x)
	}
	step := make([]float64, n)
	for i := range step {
		step[i] = 1.25 * (p.hi[i] - p.lo[i]) / float64(steps)
	}
	dOut := make([]float64, nb*m)
	var tape *train.Tape
	for it := 0; it <= steps; it++ {
		if ctx.Err() != nil || found.Load() != nil {
			return
		}
		tape = model.Forward(X, nb, tape)
		out := tape.Output()
		for s := 0; s < nb; s++ {
			y := out[s*m : (s+1)*m]
			if p.violated(y) >= 0 {
				if c, ok := confirm(net, p, X[s*n:(s+1)*n]); ok {
					found.CompareAndSwap(nil, c)
					return
				}
			}
		}
		if it == steps {
			return
		}
		clear(dOut)
		for s := 0; s < nb; s++ {
			seedRows(p, out[s*m:(s+1)*m], target[s], dOut[s*m:(s+1)*m])
		}
		g, err := model.Backward(tape, dOut, nil)
		if err != nil {
			return
		}
		// Steps shrink geometrically from 4× to 1/8 of the base step (the same
		// total distance as a constant 2.5·radius/steps schedule, finer at the end):
		// counterexamples near a decision boundary need the precision.
		f := 4 * math.Pow(1.0/32, float64(it)/float64(max(1, steps-1)))
		for s := 0; s < nb; s++ {
			x, gs := X[s*n:(s+1)*n], g[s*n:(s+1)*n]
			for i := range x {
				switch {
				case gs[i] > 0:
					x[i] -= f * step[i]
				case gs[i] < 0:
					x[i] += f * step[i]
				}
				x[i] = min(p.hi[i], max(p.lo[i], x[i]))
			}
		}
	}
}

// seedRows writes into d the gradient of the hinge loss of conjunction k (k < 0: the
// conjunction whose worst row is smallest at y) with respect to the output y.
func seedRows(p *problem, y []float64, k int, d []float64) {
	if k < 0 {
		best := math.Inf(1)
		for j, rows := range p.disj {
			w := math.Inf(-1)
			for _, r := range rows {
				w = max(w, rowValue(r.C, r.D, y))
			}
			if w < best {
				best, k = w, j
			}
		}
		if k < 0 {
			return
		}
	}
	for _, r := range p.disj[k] {
		if rowValue(r.C, r.D, y) > -hinge {
			for j, c := range r.C {
				d[j] += c
			}
		}
	}
}

func rowValue(C []float64, D float64, y []float64) float64 {
	s := -D
	for j, c := range C {
		s += c * y[j]
	}
	return s
}
