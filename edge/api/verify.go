package api

import (
	"context"
	"fmt"
	"math"
	"net/http"
	"time"

	"github.com/graftcert/graftcert/core/bab"
	"github.com/graftcert/graftcert/core/crown"
	"github.com/graftcert/graftcert/core/onnx"
	"github.com/graftcert/graftcert/core/spec"
)

// verifyAvailable reports whether /api/verify is implemented in this build.
const verifyAvailable = true

// The defaults of `graftcert verify --vnnlib` that the budget estimate needs (core/bab
// applies the same when the options are left zero).
const (
	attackRestarts  = 50
	attackSteps     = 100
	rootIterations  = 50
	betaIterations  = 20
	inputSplitDims  = 10
	defaultTimeout  = 300 // seconds, as the CLI
	queueMemoryEdge = 16 << 20
)

var verifyFields = []string{"timeout", "max_domains"}

// verify answers POST /api/verify (parts model and vnnlib, fields timeout and
// max_domains) with the JSON of `graftcert verify --vnnlib --json`.
//
// The timeout applies where clocks run (natively, and workerd locally), but the
// Workers runtime stands its clocks still during computation, so the request is also
// held to a domain budget: what remains of MaxWork after the attack and the root
// α-CROWN bound, divided by the estimated cost of bounding one subdomain, and at most
// MaxDomains. When branch and bound reaches it, the answer is "unknown" with
// stats.reason saying so.
func (h *Handler) verify(w http.ResponseWriter, r *http.Request) {
	lim := h.opts.Limits
	f, e := readForm(r, lim.MaxBodyBytes, map[string]int64{
		"model": lim.MaxModelBytes, "vnnlib": lim.MaxVNNLIBBytes,
	}, verifyFields)
	if e != nil {
		writeError(w, e)
		return
	}
	rep, e := h.runVerify(r.Context(), f)
	if e != nil {
		writeError(w, e)
		return
	}
	writeJSON(w, http.StatusOK, rep)
}

func (h *Handler) runVerify(ctx context.Context, f *form) (*bab.Report, *Error) {
	lim := h.opts.Limits
	timeout, e := f.float("timeout", defaultTimeout, false)
	if e != nil {
		return nil, e
	}
	if !(timeout >= 0) || math.IsInf(timeout, 0) || timeout > 1e6 {
		return nil, badRequest("field \"timeout\": %v must be a non-negative number of seconds", timeout)
	}
	maxDomains, e := f.int("max_domains", 0)
	if e != nil {
		return nil, e
	}
	if maxDomains < 0 {
		return nil, badRequest("field \"max_domains\" must not be negative")
	}
	modelBytes, ok := f.files["model"]
	if !ok || len(modelBytes) == 0 {
		return nil, badRequest("part \"model\" (the ONNX file) is required")
	}
	src, ok := f.files["vnnlib"]
	if !ok || len(src) == 0 {
		return nil, badRequest("part \"vnnlib\" (the property) is required")
	}
	net, err := onnx.Decode(modelBytes)
	if err != nil {
		return nil, badRequest("part \"model\": %v", err)
	}
	v, err := spec.ParseVNNLIBBytes(src, net.InSize(), net.OutSize())
	if err != nil {
		return nil, badRequest("part \"vnnlib\": %v", err)
	}
	if len(v.Cases) == 0 {
		return nil, badRequest("part \"vnnlib\": the property has no cases")
	}

	// Budget: attack and root bound per input box, then subdomains.
	var fixed, perDomain float64
	var mem int64
	groups := v.Groups()
	for _, g := range groups {
		res, err := crown.Bound(ctx, net, g.Lo, g.Hi, make([]float64, net.OutSize()), crown.Options{Method: crown.IBP})
		if err != nil {
			return nil, badRequest("part \"vnnlib\": %v", err)
		}
		rows := 0
		for _, d := range g.Out {
			rows += len(d)
		}
		rows = max(1, rows)
		root := sampleEstimate(net, res.Unstable, rows, crown.AlphaCROWN, rootIterations)
		fwd := sampleEstimate(net, nil, 0, crown.IBP, 0).Work / 3
		fixed += root.Work + attackRestarts*attackSteps*3*fwd
		// A subdomain keeps its parent's intermediate bounds: β-CROWN optimises the
		// output rows, 1 + 2·iterations passes of them through the network (counted
		// twice for the branching heuristic and bookkeeping); input splitting bounds a
		// box with one CROWN pass.
		dom := 2 * float64(1+2*betaIterations) * float64(rows) * fwd
		if net.InSize() <= inputSplitDims {
			dom = sampleEstimate(net, res.Unstable, rows, crown.CROWN, 0).Work
		}
		perDomain = max(perDomain, dom)
		mem = max(mem, root.Memory)
	}
	live := mem + onnx.NetworkBytes(net) + 2*f.bytes() + queueMemoryEdge // body: see bounds
	if m := memBase + memHeadroom*live; m > lim.MaxMemory {
		return nil, overBudget(fmt.Sprintf("verification needs about %s of memory, over this endpoint's limit of %s: use the native CLI",
			sizeLabel(m), sizeLabel(lim.MaxMemory)), 0)
	}
	if fixed > lim.MaxWork {
		return nil, overBudget(fmt.Sprintf("the attack and root bound alone need about %.3g multiply-adds, over this endpoint's budget of %.3g: use the native CLI",
			fixed, lim.MaxWork), 0)
	}
	domains := lim.MaxDomains
	if perDomain > 0 {
		domains = min(domains, int((lim.MaxWork-fixed)/perDomain))
	}
	if maxDomains > 0 {
		domains = min(domains, maxDomains)
	}
	opts := bab.Options{
		Timeout:     time.Duration(timeout * float64(time.Second)),
		MaxDomains:  max(1, domains),
		Workers:     1,
		MemoryLimit: queueMemoryEdge,
		AttackFirst: true, // as `graftcert verify --vnnlib`
	}
	// Subdomains are bounded in batches and the limit is checked between batches: keep
	// a batch within the budget.
	if domains < 64 {
		opts.BatchSize = max(1, domains)
	}
	rep, err := bab.Verify(ctx, net, v, opts)
	if err != nil {
		return nil, badRequest("%v", err)
	}
	return rep, nil
}
