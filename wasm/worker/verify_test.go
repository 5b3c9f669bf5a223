package worker

import (
	"context"
	"math"
	"os"
	"runtime"
	"testing"
	"time"

	"github.com/graftcert/graftcert/core/bab"
	"github.com/graftcert/graftcert/core/nn"
)

// Complete verification in the worker: a sample CROWN already proves is verified
// (whole, and split into row shares), the misclassified sample 8 (reference: pred 6,
// label 5 — shared README's mnist_eran) is reported as such, and at a large eps a
// counterexample comes back that lies in the box and changes the prediction.
func TestVerify(t *testing.T) {
	h := New()
	loadShared(t, h, "mnist_6_100", "mnist_eran")
	res := func(req Request) *VerifyReport {
		t.Helper()
		req.Type = TypeVerify
		out := call(t, h, req, nil)
		r := out[len(out)-1]
		if r.Type != TypeResult || r.Verify == nil {
			t.Fatalf("%+v: %s", req, r.Message)
		}
		return r.Verify
	}
	// Sample 0 is verified by CROWN at 0.026 (the shared reference's crown_margin_lb
	// are all positive), so complete verification must agree.
	if r := res(Request{Indices: []int{0}, Eps: 0.026, Timeout: 60}); r.Result != "verified" || r.Label != 7 {
		t.Errorf("sample 0: %+v", r)
	}
	for _, rows := range [][]int{{0, 2, 4, 6, 8}, {1, 3, 5, 7}} {
		if r := res(Request{Indices: []int{0}, Eps: 0.026, Timeout: 60, Rows: rows}); r.Result != "verified" || len(r.Rows) != len(rows) {
			t.Errorf("sample 0 rows %v: %+v", rows, r)
		}
	}
	if r := res(Request{Indices: []int{8}, Eps: 0.026}); r.Result != "misclassified" || r.Pred == r.Label {
		t.Errorf("sample 8: %+v", r)
	}
	r := res(Request{Indices: []int{1}, Eps: 0.3, Timeout: 60})
	if r.Result != "falsified" || len(r.Counterexample) != 784 {
		t.Fatalf("sample 1 at eps 0.3: %+v", r)
	}
	x := h.x[784 : 2*784]
	for k, v := range r.Counterexample {
		if math.Abs(v-x[k]) > 0.3+1e-12 || v < 0 || v > 1 {
			t.Fatalf("counterexample leaves the box at %d: %v vs %v", k, v, x[k])
		}
	}
	if p := nn.Argmax(h.net.Forward(r.Counterexample)); p == r.Label {
		t.Errorf("counterexample is still classified %d", p)
	}
	// Bad rows are refused.
	out := call(t, h, Request{Type: TypeVerify, Indices: []int{0}, Eps: 0.01, Rows: []int{9}}, nil)
	if last := out[len(out)-1]; last.Type != TypeError {
		t.Errorf("row 9 of 9: %+v", last)
	}
	// So is a refinement share outside [0, 1].
	out = call(t, h, Request{Type: TypeVerify, Indices: []int{0}, Eps: 0.01, Refine: 1.5}, nil)
	if last := out[len(out)-1]; last.Type != TypeError {
		t.Errorf("refine 1.5: %+v", last)
	}
}

// The verify budget holds even though no timer can fire inside a busy js/wasm
// program: the clock-polling context ends a hard sample on time (sample 7 stays
// unproven for seconds on mnist_6_100 at 0.026).
func TestVerifyTimeout(t *testing.T) {
	h := New()
	loadShared(t, h, "mnist_6_100", "mnist_eran")
	t0 := time.Now()
	out := call(t, h, Request{Type: TypeVerify, Indices: []int{7}, Eps: 0.026, Timeout: 1}, nil)
	r := out[len(out)-1]
	if r.Type != TypeResult || (r.Verify.Result != "unknown" && r.Verify.Result != "verified") {
		t.Fatalf("%+v", r)
	}
	if d := time.Since(t0); d > 3*time.Second {
		t.Errorf("a 1 s budget took %v", d)
	}
	c := bab.WithClockDeadline(context.Background(), time.Now().Add(-time.Millisecond))
	if c.Err() != context.DeadlineExceeded {
		t.Error("past deadline not reported")
	}
}

// One hard sample shared out over two workers by subdomains: graft50 sample 19 at
// 0.026 needs branch and bound (about a thousand subdomains; CROWN and α-CROWN leave
// it open) and is verified whole. Each shard must answer for its share, both must
// share out the same frontier (equal fingerprints, shares adding up to it), and each
// must bound fewer subdomains than the whole run. Bad shards are refused. Under
// js/wasm (node) this takes about two minutes: it runs there with GRAFTCERT_FULL=1
// only (the browser test shares the same sample over two real workers).
func TestVerifyShard(t *testing.T) {
	if runtime.GOOS == "js" && os.Getenv("GRAFTCERT_FULL") == "" {
		t.Skip("slow under js/wasm; GRAFTCERT_FULL=1 runs it")
	}
	h := New()
	loadShared(t, h, "mnist_6_100_graft50", "mnist_eran")
	res := func(req Request) *VerifyReport {
		t.Helper()
		req.Type, req.Indices, req.Eps, req.Timeout = TypeVerify, []int{19}, 0.026, 120
		out := call(t, h, req, nil)
		r := out[len(out)-1]
		if r.Type != TypeResult || r.Verify == nil {
			t.Fatalf("%+v: %s", req, r.Message)
		}
		return r.Verify
	}
	whole := res(Request{})
	if whole.Result != "verified" || whole.Shard != nil || whole.Domains < 100 {
		t.Fatalf("whole: %+v", whole)
	}
	var shares []*VerifyReport
	for k := 0; k < 2; k++ {
		r := res(Request{Shard: &ShardSpec{Index: k, Count: 2}})
		if r.Result != "verified" || r.Shard == nil || r.Shard.Index != k || r.Shard.Count != 2 || r.Shard.Frontiers < 1 {
			t.Fatalf("shard %d: %+v %+v", k, r, r.Shard)
		}
		if r.Domains >= whole.Domains {
			t.Errorf("shard %d bounded %d subdomains, the whole run %d", k, r.Domains, whole.Domains)
		}
		shares = append(shares, r)
	}
	a, b := shares[0].Shard, shares[1].Shard
	t.Logf("whole: %d subdomains in %.2f s; shards: %d and %d subdomains in %.2f and %.2f s (frontier %d)",
		whole.Domains, whole.Seconds, shares[0].Domains, shares[1].Domains, shares[0].Seconds, shares[1].Seconds, a.Frontier)
	if a.Fingerprint != b.Fingerprint || a.Frontier != b.Frontier || a.Share+b.Share != a.Frontier {
		t.Errorf("shards disagree: %+v, %+v", a, b)
	}
	// A count of 1 (or none) is the whole problem.
	if r := res(Request{Shard: &ShardSpec{Index: 0, Count: 1}}); r.Result != "verified" || r.Shard != nil || r.Domains != whole.Domains {
		t.Errorf("shard 0 of 1: %+v", r)
	}
	for _, req := range []Request{
		{Shard: &ShardSpec{Index: 2, Count: 2}},
		{Shard: &ShardSpec{Index: -1, Count: 3}},
		{Shard: &ShardSpec{Index: 1, Count: 1}},
		{Shard: &ShardSpec{Index: 0, Count: 2}, Rows: []int{0}},
	} {
		req.Type, req.Indices, req.Eps = TypeVerify, []int{19}, 0.026
		out := call(t, h, req, nil)
		if last := out[len(out)-1]; last.Type != TypeError || last.Code != "bad_request" {
			t.Errorf("shard %+v rows %v: %+v", *req.Shard, req.Rows, last)
		}
	}
}
