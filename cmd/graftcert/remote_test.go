package main

import (
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/graftcert/graftcert/edge/api"
	"github.com/graftcert/graftcert/internal/sharedtest"
)

// remoteArgs bounds samples 10..22 of the shared MNIST set with CROWN.
func remoteArgs(t *testing.T, extra ...string) []string {
	return append([]string{"bounds", "--model", sharedtest.Path(t, "models", "mnist_6_100.onnx"),
		"--data", sharedtest.Path(t, "data", "mnist_eran_X.npy"), "--labels", sharedtest.Path(t, "data", "mnist_eran_y.npy"),
		"--eps", "0.026", "--method", "crown", "--start", "10", "--count", "13", "--json"}, extra...)
}

// flaky fails the first fail requests with 503, then hands over to the API; it counts
// requests and the largest batch seen in flight.
type flaky struct {
	h        http.Handler
	fail     int32
	requests atomic.Int32
}

func (f *flaky) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if f.requests.Add(1) <= f.fail {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusServiceUnavailable)
		w.Write([]byte(`{"error": "try later", "code": "unavailable"}`))
		return
	}
	f.h.ServeHTTP(w, r)
}

// --remote gives the local run's report (timing aside), through batches, retries
// and over-budget splitting.
func TestRemoteBoundsEqualsLocal(t *testing.T) {
	code, local, errs := cli(t, remoteArgs(t)...)
	if code != 0 {
		t.Fatalf("local run: %s", errs)
	}
	want := withoutTiming(decodeJSON(t, local))

	srv := &flaky{h: api.New(api.Options{Limits: api.DefaultLimits}), fail: 3}
	ts := httptest.NewServer(srv) // 127.0.0.1
	defer ts.Close()
	code, out, errs := cli(t, remoteArgs(t, "--remote", ts.URL, "--remote-jobs", "3", "--remote-batch", "4", "--remote-backoff", "1ms")...)
	if code != 0 {
		t.Fatalf("--remote: %d %s", code, errs)
	}
	if got := withoutTiming(decodeJSON(t, out)); !reflect.DeepEqual(got, want) {
		t.Fatalf("--remote report differs from the local one\nremote: %.600s\nlocal: %.600s", out, local)
	}
	// 13 samples in batches of 4 = 4 requests, plus the 3 that failed.
	if n := srv.requests.Load(); n != 7 {
		t.Errorf("%d requests, want 4 batches + 3 retried failures", n)
	}

	// A service whose budget admits 3 samples per request: batches of 8 are split.
	lim := api.DefaultLimits
	lim.MaxSamples = 3
	small := &flaky{h: api.New(api.Options{Limits: lim})}
	ts2 := httptest.NewServer(small)
	defer ts2.Close()
	code, out, errs = cli(t, remoteArgs(t, "--remote", ts2.URL, "--remote-batch", "8", "--remote-backoff", "1ms")...)
	if code != 0 {
		t.Fatalf("--remote with splitting: %d %s", code, errs)
	}
	if got := withoutTiming(decodeJSON(t, out)); !reflect.DeepEqual(got, want) {
		t.Fatalf("split --remote report differs from the local one")
	}
	// 2 refused batches of 8 and 5, then 3+3+2 and 3+2 samples.
	if n := small.requests.Load(); n != 7 {
		t.Errorf("%d requests with splitting, want 7", n)
	}

	// Several endpoints share the batches; a retry goes to the next one, so a dead
	// endpoint costs retries but not the run.
	a := &flaky{h: api.New(api.Options{Limits: api.DefaultLimits})}
	dead := &flaky{h: nil, fail: 1 << 30}
	ta, td := httptest.NewServer(a), httptest.NewServer(dead)
	defer ta.Close()
	defer td.Close()
	code, out, errs = cli(t, remoteArgs(t, "--remote", td.URL+","+ta.URL, "--remote-batch", "2", "--remote-backoff", "1ms")...)
	if code != 0 || !reflect.DeepEqual(withoutTiming(decodeJSON(t, out)), want) {
		t.Fatalf("--remote with a dead endpoint: %d %s", code, errs)
	}
	// 7 batches, alternately first sent to each endpoint: 3 or 4 fail over.
	if na, nd := a.requests.Load(), dead.requests.Load(); na != 7 || nd < 3 || nd > 4 {
		t.Errorf("requests: %d to the live endpoint (want 7), %d to the dead one (want 3 or 4)", na, nd)
	}

	// Sharding and --remote compose: shard 1/2 remotely = shard 1/2 locally.
	_, localShard, _ := cli(t, remoteArgs(t, "--shard", "1/2")...)
	code, out, errs = cli(t, remoteArgs(t, "--shard", "1/2", "--remote", ts.URL+"/", "--remote-backoff", "1ms")...)
	if code != 0 || !reflect.DeepEqual(withoutTiming(decodeJSON(t, out)), withoutTiming(decodeJSON(t, localShard))) {
		t.Errorf("--shard 1/2 --remote differs from --shard 1/2: %d %s", code, errs)
	}
}

func TestRemoteBoundsErrors(t *testing.T) {
	// A client error is reported at once, not retried.
	var n atomic.Int32
	bad := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		w.WriteHeader(http.StatusBadRequest)
		w.Write([]byte(`{"error": "part \"model\": onnx: nonsense", "code": "bad_request"}`))
	}))
	defer bad.Close()
	code, _, errs := cli(t, remoteArgs(t, "--remote", bad.URL, "--remote-batch", "13", "--remote-backoff", "1ms")...)
	if code == 0 || !strings.Contains(errs, "400") || !strings.Contains(errs, "nonsense") || n.Load() != 1 {
		t.Errorf("400: code %d, %d requests, stderr %q", code, n.Load(), errs)
	}
	// Server errors are retried --remote-retries times, then reported.
	n.Store(0)
	down := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		http.Error(w, "overloaded", http.StatusBadGateway)
	}))
	defer down.Close()
	code, _, errs = cli(t, remoteArgs(t, "--remote", down.URL, "--remote-batch", "13", "--remote-retries", "2", "--remote-backoff", "1ms")...)
	if code == 0 || !strings.Contains(errs, "502") || !strings.Contains(errs, "3 attempts") || n.Load() != 3 {
		t.Errorf("502: code %d, %d requests, stderr %q", code, n.Load(), errs)
	}
	// An answer that is not a report for the batch is an error.
	wrong := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte(`{"model": "m", "method": "crown", "eps": 0.026, "verified": 0, "total": 0, "seconds": 0, "samples": []}`))
	}))
	defer wrong.Close()
	code, _, errs = cli(t, remoteArgs(t, "--remote", wrong.URL)...)
	if code == 0 || !strings.Contains(errs, "answered 0 samples") {
		t.Errorf("short answer: code %d, stderr %q", code, errs)
	}
	if code, _, errs := cli(t, remoteArgs(t, "--remote", "ftp://x")...); code == 0 || !strings.Contains(errs, "http") {
		t.Errorf("bad URL: code %d, stderr %q", code, errs)
	}
}
