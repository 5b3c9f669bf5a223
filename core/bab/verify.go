package bab

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sort"
	"time"

	"github.com/graftcert/graftcert/core/crown"
	"github.com/graftcert/graftcert/core/nn"
	"github.com/graftcert/graftcert/core/spec"
)

var inf = math.Inf(1)

// outcome is the state of one part of a verification.
type outcome int

const (
	proven outcome = iota
	violated
	gaveUp
	outOfTime
)

// runner carries one verification: the network, options, statistics and the
// counterexample once found.
type runner struct {
	net    *nn.Network
	o      Options
	start  time.Time
	stats  Stats
	cex    *Counterexample
	reason string
	lower  float64 // smallest global lower bound reported by a branch and bound
	hasLow bool
}

// Verify decides the VNNLIB property v for net: sat (a confirmed counterexample is in
// the report), unsat (every conjunction of every input box proven infeasible), unknown
// or timeout. Errors are reserved for bad input (sizes that do not match the network)
// and a cancelled context is reported as timeout.
func Verify(ctx context.Context, net *nn.Network, v *spec.VNNLIB, opts Options) (*Report, error) {
	if v == nil || len(v.Cases) == 0 {
		return nil, errors.New("bab: specification has no cases")
	}
	if v.NumInputs != net.InSize() || v.NumOutputs != net.OutSize() {
		return nil, fmt.Errorf("bab: specification has %d inputs and %d outputs, the network %d and %d",
			v.NumInputs, v.NumOutputs, net.InSize(), net.OutSize())
	}
	var probs []*problem
	for _, g := range v.Groups() {
		probs = append(probs, &problem{lo: g.Lo, hi: g.Hi, disj: g.Out})
	}
	return solve(ctx, net, probs, opts)
}

// solve runs the verification of the problems (the unsafe set is their union).
func solve(ctx context.Context, net *nn.Network, probs []*problem, opts Options) (*Report, error) {
	if err := opts.Shard.validate(); err != nil {
		return nil, err
	}
	r := &runner{net: net, o: opts.withDefaults(), start: time.Now()}
	if r.sharded() {
		r.stats.Shard = &ShardStats{Index: opts.Shard.Index, Count: opts.Shard.Count, Fingerprint: "0"}
	}
	if ctx == nil {
		ctx = context.Background()
	}
	if r.o.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, r.o.Timeout)
		defer cancel()
	}
	for _, p := range probs {
		if len(p.lo) != net.InSize() || len(p.hi) != net.InSize() {
			return nil, fmt.Errorf("bab: input box has %d values, the network takes %d", len(p.lo), net.InSize())
		}
		for _, rows := range p.disj {
			for _, row := range rows {
				if len(row.C) != net.OutSize() {
					return nil, fmt.Errorf("bab: output row has %d coefficients, the network has %d outputs", len(row.C), net.OutSize())
				}
			}
		}
		r.stats.Disjuncts += len(p.disj)
	}
	r.stats.Groups = len(probs)
	r.stats.Mode = "none"
	rep := r.run(ctx, probs)
	rep.Seconds = time.Since(r.start).Seconds()
	rep.Stats = r.stats
	if r.hasLow && rep.Result != Sat {
		v := r.lower
		rep.Stats.GlobalLower = &v
	}
	if rep.Result == Unknown && rep.Stats.Reason == "" {
		rep.Stats.Reason = r.reason
	}
	return rep, nil
}

func (r *runner) run(ctx context.Context, probs []*problem) *Report {
	sat := func() *Report { return &Report{Result: Sat, Counterexample: r.cex} }
	// A conjunction without rows makes its whole box unsafe.
	for _, p := range probs {
		for _, rows := range p.disj {
			if len(rows) == 0 {
				x := make([]float64, len(p.lo))
				for i := range x {
					x[i] = (p.lo[i] + p.hi[i]) / 2
				}
				if c, ok := confirm(r.net, p, x); ok {
					r.cex, r.stats.Found = c, "attack"
					return sat()
				}
			}
		}
	}
	if r.o.AttackFirst {
		for k, p := range probs {
			if r.attack(ctx, p, k) {
				return sat()
			}
		}
	}
	all, timedOut := true, false
	for k, p := range probs {
		switch r.problem(ctx, p, k) {
		case violated:
			return sat()
		case outOfTime:
			timedOut = true
		case gaveUp:
			all = false
		}
		if timedOut {
			break
		}
	}
	switch {
	case timedOut:
		return &Report{Result: Timeout}
	case all:
		return &Report{Result: Unsat}
	}
	return &Report{Result: Unknown}
}

// attack runs PGD on p and records a confirmed counterexample.
func (r *runner) attack(ctx context.Context, p *problem, k int) bool {
	t := time.Now()
	ao := r.o.Attack
	if r.sharded() {
		ao.part, ao.parts = r.o.Shard.Index, r.o.Shard.Count
	}
	c, _ := attack(ctx, r.net, p, ao, r.o.Workers, r.o.Seed+uint64(k)*7919)
	r.stats.AttackSeconds += time.Since(t).Seconds()
	if c != nil {
		r.cex, r.stats.Found = c, "attack"
		return true
	}
	return false
}

// checkAll confirms the candidate points of every bounded domain, in order, and
// records the first counterexample. The points go through one batched forward pass
// first (a subdomain round yields one or more points per domain, and single-sample
// passes would pack every weight matrix once per point); only those whose output
// already violates a conjunction go on to confirm, whose verdict alone counts.
func (r *runner) checkAll(p *problem, cands [][][]float64) bool {
	n := len(p.lo)
	var flat []float64
	var pts [][]float64
	for _, cs := range cands {
		for _, x := range cs {
			if len(x) != n {
				continue
			}
			for i, v := range x {
				flat = append(flat, toFloat32In(v, p.lo[i], p.hi[i]))
			}
			pts = append(pts, x)
		}
	}
	if len(pts) == 0 {
		return false
	}
	ys := r.net.ForwardBatch(flat, len(pts))
	m := r.net.OutSize()
	for j, x := range pts {
		if p.violated(ys[j*m:(j+1)*m]) < 0 {
			continue
		}
		if c, ok := confirm(r.net, p, x); ok {
			r.cex, r.stats.Found = c, "bab"
			return true
		}
	}
	return false
}

func ctxOutcome(ctx context.Context, err error) outcome {
	if ctx.Err() != nil || errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		return outOfTime
	}
	return gaveUp
}

// flatRows stacks the rows of the conjunctions ks of p: C row-major, D, and the
// conjunction each row belongs to.
func flatRows(p *problem, ks []int) (C, D []float64, owner []int) {
	for _, k := range ks {
		for _, row := range p.disj[k] {
			C = append(C, row.C...)
			D = append(D, row.D)
			owner = append(owner, k)
		}
	}
	return
}

// minusD subtracts D from a lower bound of C·y, rounding down.
func minusD(lb, d float64) float64 {
	v := lb - d
	return v - 1e-12*(math.Abs(lb)+math.Abs(d))
}

func (r *runner) useInputSplit() bool {
	switch r.o.Mode {
	case InputSplit:
		return true
	case ReLUSplit:
		return false
	}
	return r.net.InSize() <= r.o.InputSplitDims
}

// problem verifies one input box: root bound, attack (unless done first), then branch
// and bound on the conjunctions the root bound leaves open.
func (r *runner) problem(ctx context.Context, p *problem, pk int) outcome {
	if r.useInputSplit() {
		r.stats.Mode = "input-split"
		if r.sharded() {
			p = r.inputShare(p)
		}
		return r.inputBaB(ctx, p, pk)
	}
	r.stats.Mode = "relu-split"
	all := make([]int, len(p.disj))
	for k := range all {
		all[k] = k
	}
	m := r.net.OutSize()
	C, D, owner := flatRows(p, all)
	lower := make([]float64, len(D))
	for i := range lower {
		lower[i] = math.Inf(-1)
	}
	value := make([]float64, len(p.disj))
	var open []int
	var solver *crown.SplitSolver
	var res *crown.Result
	// root bounds the rows with α-CROWN under the known intermediate bounds (none,
	// or refined ones), raises their lower bounds and keeps open those of the
	// conjunctions cands that it does not prove.
	root := func(preLo, preHi [][]float64, cands []int) error {
		t := time.Now()
		var err error
		solver, res, err = crown.NewSplitSolver(ctx, r.net, p.lo, p.hi, C, crown.Options{
			Method: crown.AlphaCROWN, Iterations: r.o.RootIterations, StopWhenPositive: true, Threads: r.o.Workers,
			PreLower: preLo, PreUpper: preHi})
		r.stats.BoundSeconds += time.Since(t).Seconds()
		if err != nil {
			return err
		}
		r.stats.Domains++
		for k := range value {
			value[k] = math.Inf(-1)
		}
		for i := range D {
			lower[i] = max(lower[i], minusD(res.Lower[i], D[i]))
			value[owner[i]] = max(value[owner[i]], lower[i])
		}
		open = nil
		for _, k := range cands {
			if value[k] > 0 {
				r.stats.ProvenAtRoot++
			} else {
				open = append(open, k)
			}
		}
		return nil
	}
	if err := root(nil, nil, all); err != nil {
		r.reason = err.Error()
		return ctxOutcome(ctx, err)
	}
	if len(open) == 0 {
		return proven
	}
	if !r.o.AttackFirst && r.attack(ctx, p, pk) {
		return violated
	}
	if ctx.Err() != nil {
		return outOfTime
	}
	// bab runs branch and bound on the open conjunctions, hardest first (if it cannot
	// be proven the rest need not be tried), dropping each one it proves.
	bab := func(ctx context.Context) outcome {
		sort.SliceStable(open, func(a, b int) bool { return value[open[a]] < value[open[b]] })
		for len(open) > 0 {
			k := open[0]
			Ck, Dk, _ := flatRows(p, []int{k})
			var lk []float64
			for i := range D {
				if owner[i] == k {
					lk = append(lk, lower[i])
				}
			}
			rs, err := crown.NewRowSet(Ck, Dk, m)
			if err != nil {
				r.reason = err.Error()
				return gaveUp
			}
			if out := r.reluBaB(ctx, solver, p, rs, lk); out != proven {
				return out
			}
			open = open[1:]
		}
		return proven
	}
	deadline, hasDeadline := ctx.Deadline()
	// Only the layers after the first are refined: a network with one activation
	// layer has nothing to gain.
	if r.o.Refine <= 0 || r.sharded() || !hasDeadline || len(solver.Unstable()) < 2 {
		return bab(ctx)
	}
	// With refinement: a short branch and bound first, which settles the easy
	// problems without paying for the refinement; then the refinement, and branch
	// and bound again from the refined root.
	quick := min(time.Until(deadline)/10, r.o.RefineAfter)
	out := bab(WithClockDeadline(ctx, time.Now().Add(quick)))
	if out == proven || out == violated || ctx.Err() != nil {
		return out
	}
	t := time.Now()
	end := t.Add(time.Duration(r.o.Refine * float64(time.Until(deadline))))
	preLo, preHi, err := r.refineBounds(ctx, p.lo, p.hi, res.PreLower, res.PreUpper, end)
	r.stats.RefineSeconds += time.Since(t).Seconds()
	if err != nil {
		r.reason = err.Error()
		return ctxOutcome(ctx, err)
	}
	if ctx.Err() != nil {
		return outOfTime
	}
	for q := range preLo {
		for i := range preLo[q] {
			if preLo[q][i] >= 0 && res.PreLower[q][i] < 0 || preHi[q][i] <= 0 && res.PreUpper[q][i] > 0 {
				r.stats.RefineStable++
			}
		}
	}
	if err := root(preLo, preHi, open); err != nil {
		r.reason = err.Error()
		return ctxOutcome(ctx, err)
	}
	// The first branch and bound's state is superseded by the refined root's.
	r.reason, r.hasLow = "", false
	return bab(ctx)
}

func (r *runner) progress(open, bounded int, lower float64) {
	r.lower, r.hasLow = lower, true
	if r.o.Progress != nil {
		r.o.Progress(Progress{Domains: open, Bounded: bounded, Lower: lower, Elapsed: time.Since(r.start)})
	}
}

// reluBaB proves one conjunction over p's box by branch and bound on ReLU splits.
func (r *runner) reluBaB(ctx context.Context, s *crown.SplitSolver, p *problem, rs *crown.RowSet, rootLower []float64) outcome {
	beta := r.o.Beta
	batch := r.o.BatchSize
	if batch <= 0 {
		batch = 64
	}
	q := newQueue(func(d *crown.Domain) float64 { return d.Value() }, func(d *crown.Domain) int { return d.Bytes() })
	bound := func(doms []*crown.Domain, b crown.BetaOptions) (outcome, bool) {
		t := time.Now()
		cands, err := s.BoundDomains(ctx, doms, b)
		r.stats.BoundSeconds += time.Since(t).Seconds()
		if err != nil {
			r.reason = err.Error()
			return ctxOutcome(ctx, err), false
		}
		r.stats.Domains += len(doms)
		for _, d := range doms {
			r.stats.MaxDepth = max(r.stats.MaxDepth, d.Depth)
		}
		if r.checkAll(p, cands) {
			return violated, false
		}
		return proven, true
	}
	babStart := time.Now()
	root := s.Root(rs, rootLower)
	if out, ok := bound([]*crown.Domain{root}, beta); !ok {
		return out
	}
	rootValue := root.Value()
	var leaves []*crown.Domain
	minProven := inf
	provenCount := 0
	admit := func(d *crown.Domain) {
		switch {
		case d.Proven():
			provenCount++
			minProven = min(minProven, d.Value())
		case d.Leaf() || !d.Decided():
			leaves = append(leaves, d)
		default:
			q.push(d)
		}
	}
	admit(root)
	bounded := 1
	// A shard runs the common deterministic rounds until the frontier is large enough
	// to share out; nothing before that may depend on the clock.
	shared := r.frontierSize() == 0
	for q.Len() > 0 || len(leaves) > 0 {
		if len(leaves) > 0 {
			// Every neuron of a leaf is fixed: its exact bound is a linear program that
			// β reaches with more iterations. If it stays unproven, give up.
			lb := leafOptions(beta)
			ls := leaves
			leaves = nil
			if out, ok := bound(ls, lb); !ok {
				return out
			}
			for _, d := range ls {
				if !d.Proven() {
					r.reason = "a fully split subdomain could not be proven"
					r.progress(q.Len()+1, bounded, d.Value())
					return gaveUp
				}
			}
			continue
		}
		if !shared && q.Len() >= r.frontierSize() {
			q, shared = r.shareFrontier(q), true
		}
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
		if r.o.GiveUpEarly && shared && r.hopeless(ctx, babStart, rootValue, q.min(), provenCount) {
			r.reason = "branch and bound made too little progress to finish in time"
			r.progress(q.Len(), bounded, q.min())
			return gaveUp
		}
		q.setReverse(int64(q.total) > r.o.MemoryLimit/2)
		var kids []*crown.Domain
		for q.Len() > 0 && len(kids) < 2*batch {
			d := q.pop()
			a, b, err := d.Branch()
			if err != nil {
				r.reason = err.Error()
				return gaveUp
			}
			for _, c := range []*crown.Domain{a, b} {
				if !c.Proven() {
					kids = append(kids, c)
				}
			}
		}
		if len(kids) == 0 {
			continue
		}
		if out, ok := bound(kids, beta); !ok {
			if out == outOfTime {
				r.progress(q.Len()+len(kids), bounded, min(q.min(), minValue(kids)))
			}
			return out
		}
		bounded += len(kids)
		for _, d := range kids {
			admit(d)
		}
		r.progress(q.Len(), bounded, q.min())
	}
	r.progress(0, bounded, minProven)
	return proven
}

// hopeless reports that a branch and bound started at start cannot plausibly finish
// before the context's deadline: a quarter of its time is gone, not one subdomain has
// been proven, and the global lower bound has closed less than half of the gap it
// started with. (On networks whose bounds are far too loose the bound creeps up
// logarithmically and the remaining time would be spent for nothing.)
func (r *runner) hopeless(ctx context.Context, start time.Time, root, now float64, proven int) bool {
	deadline, ok := ctx.Deadline()
	if !ok || proven > 0 || !(root < 0) {
		return false
	}
	total := deadline.Sub(start)
	if time.Since(start) < total/4 {
		return false
	}
	return now-root < -root/2
}

// leafOptions is b for a leaf, every neuron of which is fixed: its exact bound is a
// linear program that β reaches with more iterations and a larger step.
func leafOptions(b crown.BetaOptions) crown.BetaOptions {
	b.Iterations = max(100, 5*b.Iterations)
	b.LRBeta = 2 * max(b.LRBeta, 0.05)
	return b
}

func minValue(ds []*crown.Domain) float64 {
	m := inf
	for _, d := range ds {
		m = min(m, d.Value())
	}
	return m
}
