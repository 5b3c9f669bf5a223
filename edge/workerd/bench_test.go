//go:build unix

package main

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/graftcert/graftcert/edge/api"
	"github.com/graftcert/graftcert/internal/sharedtest"
)

// TestEdgeThroughput measures (GRAFTCERT_EDGE_BENCH=1; make bench-edge): requests/s of
// the service under workerd for CROWN on mnist_6_100 with one sample per request, one
// at a time and from several clients, and the speedup of `bounds --remote` fanning out
// (--remote-jobs 4) over one request at a time (--remote-jobs 1), against workerd
// and against the native handler on this machine's cores. A report, not a test.
func TestEdgeThroughput(t *testing.T) {
	if os.Getenv("GRAFTCERT_EDGE_BENCH") != "1" {
		t.Skip("set GRAFTCERT_EDGE_BENCH=1 (make bench-edge)")
	}
	url := startEdge(t)
	model := sharedtest.Path(t, "models", "mnist_6_100.onnx")
	const n = 40
	bodies := make([][]byte, n)
	cts := make([]string, n)
	for i := range bodies {
		bodies[i], cts[i] = form(t, map[string]string{"model": model}, map[string]string{"dataset": "mnist", "eps": "0.026", "start": fmt.Sprint(i), "count": "1"})
	}
	rate := func(base string, clients int) float64 {
		start := time.Now()
		var wg sync.WaitGroup
		next := make(chan int)
		for c := 0; c < clients; c++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range next {
					resp, err := http.Post(base+"/api/bounds", cts[i], bytes.NewReader(bodies[i]))
					if err != nil {
						t.Error(err)
						continue
					}
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if resp.StatusCode != 200 {
						t.Errorf("request %d: %d", i, resp.StatusCode)
					}
				}
			}()
		}
		for i := 0; i < n; i++ {
			next <- i
		}
		close(next)
		wg.Wait()
		return n / time.Since(start).Seconds()
	}
	native := httptest.NewServer(api.New(api.Options{Limits: api.DefaultLimits}))
	defer native.Close()
	for _, s := range []struct{ name, url string }{{"workerd", url}, {"native handler", native.URL}} {
		r1 := rate(s.url, 1)
		r4 := rate(s.url, 4)
		t.Logf("%s: CROWN mnist_6_100, 1 sample/request: %.2f req/s one at a time, %.2f req/s from 4 clients", s.name, r1, r4)
	}
	demoX := filepath.Join(edge.root, "static", "demo", "mnist_X.npy")
	demoY := filepath.Join(edge.root, "static", "demo", "mnist_y.npy")
	remote := func(base string, jobs, batch int) float64 {
		start := time.Now()
		cmd := exec.Command(edge.cli, "bounds", "--json", "--model", model, "--data", demoX, "--labels", demoY,
			"--eps", "0.026", "--count", "80", "--remote", base, "--remote-jobs", fmt.Sprint(jobs), "--remote-batch", fmt.Sprint(batch))
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("--remote: %v\n%.300s", err, out)
		}
		return time.Since(start).Seconds()
	}
	// workerd runs one isolate on one thread: a second instance uses the second core.
	url2, stop2, err := launch(edge.bin, edge.config)
	if err != nil {
		t.Fatal(err)
	}
	defer stop2()
	two := url + "," + url2
	t.Logf("workerd ×2: bounds --remote, 80 samples: %.2f s with --remote-jobs 4 over two instances (vs one instance one request at a time: see below)", remote(two, 4, 1))
	for _, s := range []struct{ name, url string }{{"workerd", url}, {"native handler", native.URL}} {
		serial := remote(s.url, 1, 1)
		fan := remote(s.url, 4, 1)
		batched := remote(s.url, 4, 5)
		t.Logf("%s: bounds --remote, 80 samples: %.2f s one request at a time (batch 1), %.2f s with --remote-jobs 4 (%.2fx), %.2f s with --remote-jobs 4 --remote-batch 5 (%.2fx)",
			s.name, serial, fan, serial/fan, batched, serial/batched)
	}
}
