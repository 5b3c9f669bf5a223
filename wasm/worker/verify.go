package worker

import (
	"context"
	"math"
	"time"

	"github.com/graftcert/graftcert/core/bab"
	"github.com/graftcert/graftcert/core/nn"
	"github.com/graftcert/graftcert/core/spec"
)

// verify decides one sample completely (PGD, α-CROWN, β-CROWN branch and bound), or
// one shard of it: the page sends the same sample with shard {w, n} to n workers;
// each runs the same deterministic first rounds and then searches its share of the
// subdomains (bab.Shard). The sample is verified when every shard is (with equal
// fingerprints), falsified when any shard is. Given Rows instead, only those margin
// rows are proven (the older way of sharing, kept for compatibility).
func (h *Handler) verify(ctx context.Context, req Request, emit Emit) error {
	if len(req.Indices) != 1 {
		return badRequest("verify takes one sample index, got %d", len(req.Indices))
	}
	if err := h.ready(req.Indices); err != nil {
		return err
	}
	if !(req.Eps >= 0) || req.Eps > 1e6 {
		return badRequest("eps %v: must be a non-negative number", req.Eps)
	}
	timeout := req.Timeout
	if timeout == 0 {
		timeout = 60
	}
	if !(timeout > 0) || timeout > 86400 {
		return badRequest("timeout %v: want seconds in (0, 86400]", req.Timeout)
	}
	if !(req.Refine >= 0 && req.Refine <= 1) {
		return badRequest("refine %v: want a share of the time between 0 and 1", req.Refine)
	}
	if h.summary.AlphaBytes > h.limit {
		return tooBig(h.summary.Name, h.summary.AlphaBytes, h.limit, "branch and bound")
	}
	i := req.Indices[0]
	x, label := h.sample(i)
	classes := h.net.OutSize()
	for _, r := range req.Rows {
		if r < 0 || r >= classes-1 {
			return badRequest("margin row %d outside [0, %d)", r, classes-1)
		}
	}
	var shard bab.Shard
	if req.Shard != nil {
		shard = bab.Shard{Index: req.Shard.Index, Count: req.Shard.Count}
		if req.Shard.Count > 1 && (req.Shard.Index < 0 || req.Shard.Index >= req.Shard.Count) {
			return badRequest("shard %d of %d: want 0 ≤ index < count", req.Shard.Index, req.Shard.Count)
		}
		if req.Shard.Count <= 1 {
			if req.Shard.Index != 0 {
				return badRequest("shard %d of %d: want index 0 without sharding", req.Shard.Index, req.Shard.Count)
			}
			shard = bab.Shard{}
		}
		if shard.Count > 1 && len(req.Rows) > 0 {
			return badRequest("verify takes rows or a shard, not both")
		}
	}
	start := time.Now()
	last := start
	// On js/wasm a timer cannot fire while Go computes (no preemption, and the event
	// loop is blocked), so bab's own context.WithTimeout would never expire: the
	// budget is a context whose Err reads the clock, and bab gets no Timeout.
	ctx = bab.WithClockDeadline(ctx, start.Add(time.Duration(timeout*float64(time.Second))))
	opts := bab.Options{
		MaxDomains: req.MaxDomains,
		Seed:       1,
		Shard:      shard,
		Workers:    1, // one wasm instance runs one goroutine at a time
		Refine:     req.Refine,
		// The queue may hold at most what is left of the budget after the model.
		MemoryLimit: max(64<<20, (h.limit-h.summary.AlphaBytes)/2),
		Progress: func(p bab.Progress) {
			if time.Since(last) < 200*time.Millisecond {
				return
			}
			last = time.Now()
			emit(Response{V: Version, ID: req.ID, Type: TypeProgress, BaB: &BaBProgress{Domains: p.Domains, Bounded: p.Bounded,
				Lower: finite(p.Lower), Seconds: p.Elapsed.Seconds()}}, nil)
		},
	}
	rep := &VerifyReport{Index: i, Label: label, Pred: nn.Argmax(h.net.Forward(x)), Rows: req.Rows, Counterexample: nil}
	switch {
	case rep.Pred != label:
		rep.Result = bab.Misclassified
	case len(req.Rows) == 0:
		s, err := bab.VerifySample(ctx, h.net, x, label, i, req.Eps, opts)
		if err != nil {
			return err
		}
		rep.Result, rep.Counterexample, rep.Domains = s.Result, s.Counterexample, s.Stats.Domains
		rep.Shard = s.Stats.Shard
	default:
		lo, hi, err := spec.Box(x, req.Eps)
		if err != nil {
			return err
		}
		C, err := spec.Margin(label, classes)
		if err != nil {
			return err
		}
		v := &spec.VNNLIB{NumInputs: h.net.InSize(), NumOutputs: classes}
		for _, r := range req.Rows {
			// Unsafe: y_label − y_j ≤ 0.
			v.Cases = append(v.Cases, spec.Case{Lo: lo, Hi: hi, Out: []spec.Row{{C: C[r*classes : (r+1)*classes], D: 0}}})
		}
		res, err := bab.Verify(ctx, h.net, v, opts)
		if err != nil {
			return err
		}
		rep.Domains = res.Stats.Domains
		switch res.Result {
		case bab.Unsat:
			rep.Result = bab.Verified
		case bab.Sat:
			rep.Result = bab.Falsified
			if res.Counterexample != nil {
				rep.Counterexample = res.Counterexample.X
			}
		case bab.Timeout:
			rep.Result = string(bab.Timeout)
		default:
			rep.Result = bab.Undecided
		}
	}
	rep.Seconds = time.Since(start).Seconds()
	resp := result(req)
	resp.Verify = rep
	emit(resp, nil)
	return nil
}

// finite keeps ±Inf out of JSON.
func finite(v float64) float64 {
	switch {
	case math.IsNaN(v):
		return 0
	case math.IsInf(v, 1):
		return math.MaxFloat64
	case math.IsInf(v, -1):
		return -math.MaxFloat64
	}
	return v
}
