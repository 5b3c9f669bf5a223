//go:build unix

package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"mime/multipart"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/graftcert/graftcert/internal/sharedtest"
)

// The edge service under workerd, started once for the package's tests.
var edge struct {
	once sync.Once
	url  string
	root string
	cli  string // native graftcert binary
	err  error
	skip string
	// bin and config launch more instances (the throughput report).
	bin, config string
}

// launch runs workerd on a free loopback port (the socket is bound here and handed
// over with --socket-fd, so no other process can take the port in between) and waits
// until /api/health answers. stop ends workerd's process group.
func launch(bin, config string) (url string, stop func(), err error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	f, err := ln.(*net.TCPListener).File()
	ln.Close()
	if err != nil {
		return "", nil, err
	}
	defer f.Close()
	cmd := exec.Command(bin, "serve", config, "--socket-fd", "http=3")
	cmd.ExtraFiles = []*os.File{f}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	var logs bytes.Buffer
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		return "", nil, fmt.Errorf("starting workerd: %w", err)
	}
	stop = func() {
		syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-done
		}
	}
	url = "http://" + ln.Addr().String()
	deadline := time.Now().Add(60 * time.Second)
	for {
		resp, err := http.Get(url + "/api/health")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return url, stop, nil
			}
		}
		if time.Now().After(deadline) {
			stop()
			return "", nil, fmt.Errorf("workerd did not answer /api/health within 60 s: %v\n%s", err, logs.String())
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// startEdge builds the worker and the CLI, and runs workerd on a free loopback port.
// Without workerd the tests skip, unless GRAFTCERT_EDGE_REQUIRE=1 (set by make test
// when npm is present), where they fail.
func startEdge(t *testing.T) string {
	t.Helper()
	edge.once.Do(func() {
		root, err := moduleRoot()
		if err != nil {
			edge.err = err
			return
		}
		edge.root = root
		bin, err := FindWorkerd(root)
		if err != nil {
			edge.skip = err.Error()
			return
		}
		dir, err := os.MkdirTemp("", "graftcert-edge-test-")
		if err != nil {
			edge.err = err
			return
		}
		ctx := context.Background()
		if _, err := Build(ctx, BuildOptions{Root: root, Out: filepath.Join(dir, "edge"), Static: filepath.Join(root, "static"), Addr: "127.0.0.1:0",
			Bindings: map[string]string{"GRAFTCERT_MAX_SAMPLES": "777"}}); err != nil {
			edge.err = err
			return
		}
		edge.cli = filepath.Join(dir, "graftcert")
		build := exec.Command(goTool(), "build", "-o", edge.cli, "./cmd/graftcert")
		build.Dir = root
		if out, err := build.CombinedOutput(); err != nil {
			edge.err = fmt.Errorf("building the CLI: %v\n%s", err, out)
			return
		}
		edge.bin, edge.config = bin, filepath.Join(dir, "edge", "config.capnp")
		url, stop, err := launch(bin, edge.config)
		if err != nil {
			edge.err = err
			return
		}
		edge.url = url
		stopEdge = func() {
			stop()
			os.RemoveAll(dir)
		}
	})
	if edge.err != nil {
		t.Fatal(edge.err)
	}
	if edge.skip != "" {
		if os.Getenv("GRAFTCERT_EDGE_REQUIRE") == "1" {
			t.Fatalf("GRAFTCERT_EDGE_REQUIRE=1 but %s", edge.skip)
		}
		t.Skip(edge.skip)
	}
	return edge.url
}

var stopEdge = func() {}

func TestMain(m *testing.M) {
	code := m.Run()
	stopEdge()
	os.Exit(code)
}

// form builds a multipart body from files (name → path; the file name sent is the
// path's base) and fields.
func form(t *testing.T, files map[string]string, fields map[string]string) ([]byte, string) {
	t.Helper()
	var b bytes.Buffer
	mw := multipart.NewWriter(&b)
	for name, path := range files {
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		w, _ := mw.CreateFormFile(name, filepath.Base(path))
		w.Write(data)
	}
	for k, v := range fields {
		mw.WriteField(k, v)
	}
	mw.Close()
	return b.Bytes(), mw.FormDataContentType()
}

func post(t *testing.T, url string, body io.Reader, ctype string, length int64) (int, http.Header, []byte) {
	t.Helper()
	req, err := http.NewRequest("POST", url, body)
	if err != nil {
		t.Fatal(err)
	}
	req.ContentLength = length
	req.Header.Set("Content-Type", ctype)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("POST %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, resp.Header, b
}

// rawPost sends a POST over a plain connection, writing the body concurrently with
// reading the answer: a server that refuses an oversized body answers before it has
// read it and closes the connection, which net/http's client may report as a failed
// write instead of returning the answer. chunked sends the body without a length.
func rawPost(t *testing.T, base, ctype string, body []byte, chunked bool) (int, http.Header, []byte) {
	t.Helper()
	addr := strings.TrimPrefix(base, "http://")
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	go func() {
		w := bufio.NewWriter(conn)
		fmt.Fprintf(w, "POST /api/bounds HTTP/1.1\r\nHost: %s\r\nContent-Type: %s\r\n", addr, ctype)
		if chunked {
			fmt.Fprintf(w, "Transfer-Encoding: chunked\r\n\r\n")
			for i := 0; i < len(body); i += 1 << 16 {
				c := body[i:min(len(body), i+1<<16)]
				fmt.Fprintf(w, "%x\r\n", len(c))
				w.Write(c)
				w.WriteString("\r\n")
			}
			w.WriteString("0\r\n\r\n")
		} else {
			fmt.Fprintf(w, "Content-Length: %d\r\n\r\n", len(body))
			w.Write(body)
		}
		w.Flush() // errors once the server has answered and closed: expected
	}()
	conn.SetReadDeadline(time.Now().Add(2 * time.Minute))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("reading the answer: %v", err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, resp.Header, b
}

func runCLI(t *testing.T, args ...string) []byte {
	t.Helper()
	cmd := exec.Command(edge.cli, args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("graftcert %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}
	return out
}

// sameJSON compares two JSON documents: numbers within 1e-9 relative, every
// "seconds" member skipped, everything else equal.
func sameJSON(t *testing.T, what string, got, want []byte) {
	t.Helper()
	var g, w any
	if err := json.Unmarshal(got, &g); err != nil {
		t.Fatalf("%s: service answer is not JSON: %v\n%s", what, err, got)
	}
	if err := json.Unmarshal(want, &w); err != nil {
		t.Fatalf("%s: CLI output is not JSON: %v", what, err)
	}
	if diff := compare("$", g, w); diff != "" {
		t.Errorf("%s: service and CLI differ at %s", what, diff)
	}
}

func compare(path string, g, w any) string {
	switch w := w.(type) {
	case map[string]any:
		gm, ok := g.(map[string]any)
		if !ok || len(gm) != len(w) {
			return fmt.Sprintf("%s: %v vs %v", path, g, w)
		}
		for k, wv := range w {
			if k == "seconds" {
				continue
			}
			gv, ok := gm[k]
			if !ok {
				return path + "." + k + " missing"
			}
			if d := compare(path+"."+k, gv, wv); d != "" {
				return d
			}
		}
	case []any:
		ga, ok := g.([]any)
		if !ok || len(ga) != len(w) {
			return fmt.Sprintf("%s: length %v vs %v", path, g, w)
		}
		for i := range w {
			if d := compare(fmt.Sprintf("%s[%d]", path, i), ga[i], w[i]); d != "" {
				return d
			}
		}
	case float64:
		gf, ok := g.(float64)
		if !ok || math.Abs(gf-w) > 1e-9*math.Max(math.Abs(gf), math.Abs(w)) {
			return fmt.Sprintf("%s: %v vs %v", path, g, w)
		}
	default:
		if g != w {
			return fmt.Sprintf("%s: %v vs %v", path, g, w)
		}
	}
	return ""
}

func healthy(t *testing.T, url string) {
	t.Helper()
	resp, err := http.Get(url + "/api/health")
	if err != nil {
		t.Fatalf("health after a bad request: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("health after a bad request: %d", resp.StatusCode)
	}
}

// /api/bounds under workerd answers what the native CLI prints.
func TestEdgeBoundsEqualsCLI(t *testing.T) {
	url := startEdge(t)
	models := func(n string) string { return sharedtest.Path(t, "models", n+".onnx") }
	shared := func(n string) string { return sharedtest.Path(t, "data", n) }
	demo := func(n string) string { return filepath.Join(edge.root, "static", "demo", n) }
	for _, c := range []struct {
		name   string
		files  map[string]string
		fields map[string]string
		args   []string
	}{
		{"crown, uploaded data", map[string]string{"model": models("mnist_6_100"), "data": shared("mnist_eran_X.npy"), "labels": shared("mnist_eran_y.npy")},
			map[string]string{"eps": "0.026", "method": "crown", "start": "100", "count": "10"},
			[]string{"--model", models("mnist_6_100"), "--data", shared("mnist_eran_X.npy"), "--labels", shared("mnist_eran_y.npy"), "--eps", "0.026", "--method", "crown", "--start", "100", "--count", "10"}},
		{"ibp, bundled mnist", map[string]string{"model": models("mnist_6_100_graft50")},
			map[string]string{"dataset": "mnist", "eps": "0.02", "method": "ibp", "count": "10"},
			[]string{"--model", models("mnist_6_100_graft50"), "--data", demo("mnist_X.npy"), "--labels", demo("mnist_y.npy"), "--eps", "0.02", "--method", "ibp", "--count", "10"}},
		{"alpha-crown with logits", map[string]string{"model": models("mnist_6_100")},
			map[string]string{"dataset": "mnist", "eps": "0.026", "method": "alpha-crown", "start": "1", "count": "1", "iterations": "5", "logits": "true"},
			[]string{"--model", models("mnist_6_100"), "--data", demo("mnist_X.npy"), "--labels", demo("mnist_y.npy"), "--eps", "0.026", "--method", "alpha-crown", "--start", "1", "--count", "1", "--iterations", "5", "--logits"}},
		{"crown, conv net, bundled cifar", map[string]string{"model": models("cifar_conv_small")},
			map[string]string{"dataset": "cifar", "eps": "0.00784313725490196", "method": "crown", "count": "1"},
			[]string{"--model", models("cifar_conv_small"), "--data", demo("cifar_X.npy"), "--labels", demo("cifar_y.npy"), "--eps", "0.00784313725490196", "--method", "crown", "--count", "1"}},
	} {
		body, ct := form(t, c.files, c.fields)
		code, _, got := post(t, url+"/api/bounds", bytes.NewReader(body), ct, int64(len(body)))
		if code != 200 {
			t.Errorf("%s: %d %s", c.name, code, got)
			continue
		}
		want := runCLI(t, append([]string{"bounds", "--json"}, c.args...)...)
		sameJSON(t, c.name, got, want)
	}
}

// Malformed and oversized bodies get 4xx JSON errors, and the service keeps
// answering.
func TestEdgeBadBodies(t *testing.T) {
	url := startEdge(t)
	model := sharedtest.Path(t, "models", "mnist_6_100.onnx")
	good, ct := form(t, map[string]string{"model": model}, map[string]string{"dataset": "mnist", "eps": "0.01", "count": "1"})
	notONNX := filepath.Join(t.TempDir(), "model.onnx")
	os.WriteFile(notONNX, []byte("<html>not a model</html>"), 0o644)
	bad, badCT := form(t, map[string]string{"model": notONNX}, map[string]string{"dataset": "mnist", "eps": "0.01"})
	truncONNX := filepath.Join(t.TempDir(), "trunc.onnx")
	b, _ := os.ReadFile(model)
	os.WriteFile(truncONNX, b[:len(b)/3], 0o644)
	trunc, truncCT := form(t, map[string]string{"model": truncONNX}, map[string]string{"dataset": "mnist", "eps": "0.01"})
	huge := bytes.Repeat([]byte("0123456789abcdef"), (17<<20)/16)
	hugeForm := append(append([]byte{}, good[:300]...), huge...)
	for _, c := range []struct {
		name    string
		body    []byte
		ctype   string
		chunked bool
		code    int
	}{
		{"oversized (Content-Length)", huge, ct, false, 413},
		{"oversized (chunked)", hugeForm, ct, true, 413},
		{"truncated multipart", good[:len(good)/2], ct, false, 400},
		{"non-ONNX model", bad, badCT, false, 400},
		{"truncated ONNX model", trunc, truncCT, false, 400},
		{"not multipart", []byte(`{"eps": 0.1}`), "application/json", false, 415},
		{"empty body", nil, ct, false, 400},
	} {
		code, h, out := rawPost(t, url, c.ctype, c.body, c.chunked)
		var e struct {
			Error string `json:"error"`
		}
		if err := json.Unmarshal(out, &e); err != nil || e.Error == "" || code != c.code {
			t.Errorf("%s: %d %q, want %d with a JSON error", c.name, code, out, c.code)
		}
		if !strings.HasPrefix(h.Get("Content-Type"), "application/json") {
			t.Errorf("%s: Content-Type %q", c.name, h.Get("Content-Type"))
		}
		healthy(t, url)
	}
	resp, err := http.Get(url + "/api/bounds")
	if err != nil || resp.StatusCode != 405 {
		t.Errorf("GET /api/bounds: %v %v", err, resp)
	}
	resp.Body.Close()
	if code, _, out := post(t, url+"/api/bounds", bytes.NewReader(good), ct, int64(len(good))); code != 200 {
		t.Errorf("good request after the bad ones: %d %s", code, out)
	}
}

// 20 concurrent requests all succeed, each with the CLI's bounds for its sample.
func TestEdgeConcurrent(t *testing.T) {
	url := startEdge(t)
	model := sharedtest.Path(t, "models", "mnist_6_100.onnx")
	demoX := filepath.Join(edge.root, "static", "demo", "mnist_X.npy")
	demoY := filepath.Join(edge.root, "static", "demo", "mnist_y.npy")
	var want struct {
		Samples []json.RawMessage `json:"samples"`
	}
	if err := json.Unmarshal(runCLI(t, "bounds", "--json", "--model", model, "--data", demoX, "--labels", demoY, "--eps", "0.026", "--count", "20"), &want); err != nil {
		t.Fatal(err)
	}
	const n = 20
	type answer struct {
		code int
		body []byte
		err  error
	}
	answers := make([]answer, n)
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		body, ct := form(t, map[string]string{"model": model}, map[string]string{"dataset": "mnist", "eps": "0.026", "start": fmt.Sprint(i), "count": "1"})
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			client := &http.Client{Timeout: 5 * time.Minute}
			resp, err := client.Post(url+"/api/bounds", ct, bytes.NewReader(body))
			if err != nil {
				answers[i].err = err
				return
			}
			defer resp.Body.Close()
			answers[i].code = resp.StatusCode
			answers[i].body, answers[i].err = io.ReadAll(resp.Body)
		}(i)
	}
	wg.Wait()
	for i, a := range answers {
		if a.err != nil || a.code != 200 {
			t.Errorf("request %d: %v %d %s", i, a.err, a.code, a.body)
			continue
		}
		var got struct {
			Samples []json.RawMessage `json:"samples"`
		}
		if err := json.Unmarshal(a.body, &got); err != nil || len(got.Samples) != 1 {
			t.Errorf("request %d: %s", i, a.body)
			continue
		}
		sameJSON(t, fmt.Sprintf("sample %d", i), got.Samples[0], want.Samples[i])
	}
}

func TestEdgeStaticVerifyHealth(t *testing.T) {
	url := startEdge(t)
	resp, err := http.Get(url + "/demo/mnist_y.npy")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	disk, _ := os.ReadFile(filepath.Join(edge.root, "static", "demo", "mnist_y.npy"))
	if resp.StatusCode != 200 || !bytes.Equal(b, disk) || !strings.Contains(resp.Header.Get("Content-Security-Policy"), "default-src 'self'") {
		t.Errorf("static asset: %d, %d bytes, CSP %q", resp.StatusCode, len(b), resp.Header.Get("Content-Security-Policy"))
	}
	if _, err := os.Stat(filepath.Join(edge.root, "static", "index.html")); err == nil {
		resp, err := http.Get(url + "/")
		if err != nil || resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
			t.Errorf("GET /: %v %v", err, resp)
		}
		resp.Body.Close()
	}
	// The worker's text bindings reach the Go limits.
	resp, err = http.Get(url + "/api/health")
	if err != nil {
		t.Fatal(err)
	}
	var h struct {
		Status string `json:"status"`
		Limits struct {
			MaxSamples int `json:"max_samples"`
		} `json:"limits"`
	}
	json.NewDecoder(resp.Body).Decode(&h)
	resp.Body.Close()
	if h.Status != "ok" || h.Limits.MaxSamples != 777 {
		t.Errorf("health: %+v, want max_samples 777 from the GRAFTCERT_MAX_SAMPLES binding", h)
	}
	req, _ := http.NewRequest("HEAD", url+"/api/health", nil)
	resp, err = http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != 200 {
		t.Errorf("HEAD /api/health: %v %v", err, resp)
	}
	resp.Body.Close()

	vnn := func(elem ...string) string {
		return sharedtest.Path(t, append([]string{"vnncomp", "test"}, elem...)...)
	}
	body, ct := form(t, map[string]string{"model": vnn("onnx", "test_small.onnx"), "vnnlib": vnn("vnnlib", "test_small.vnnlib")}, map[string]string{"timeout": "60"})
	code, _, out := post(t, url+"/api/verify", bytes.NewReader(body), ct, int64(len(body)))
	want := runCLI(t, "verify", "--json", "--model", vnn("onnx", "test_small.onnx"), "--vnnlib", vnn("vnnlib", "test_small.vnnlib"), "--timeout", "60")
	var g, w struct {
		Result string `json:"result"`
	}
	json.Unmarshal(out, &g)
	json.Unmarshal(want, &w)
	if code != 200 || g.Result != "unsat" || w.Result != "unsat" {
		t.Errorf("/api/verify test_small: %d %s; CLI %s", code, out, want)
	}
}

// A stalled upload does not hold up the requests behind it: bodies are received
// before requests queue for the Go instance.
func TestEdgeStalledUpload(t *testing.T) {
	url := startEdge(t)
	addr := strings.TrimPrefix(url, "http://")
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "POST /api/bounds HTTP/1.1\r\nHost: %s\r\nContent-Type: multipart/form-data; boundary=x\r\nContent-Length: 1000000\r\n\r\n--x\r\n", addr)
	time.Sleep(200 * time.Millisecond) // let the stalled request reach the worker
	model := sharedtest.Path(t, "models", "mnist_6_100.onnx")
	body, ct := form(t, map[string]string{"model": model}, map[string]string{"dataset": "mnist", "eps": "0.026", "count": "1"})
	done := make(chan int, 1)
	go func() {
		req, _ := http.NewRequest("POST", url+"/api/bounds", bytes.NewReader(body))
		req.Header.Set("Content-Type", ct)
		resp, err := (&http.Client{Timeout: 2 * time.Minute}).Do(req)
		if err != nil {
			done <- -1
			return
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		done <- resp.StatusCode
	}()
	select {
	case code := <-done:
		if code != 200 {
			t.Errorf("request behind a stalled upload: %d", code)
		}
	case <-time.After(90 * time.Second):
		t.Fatal("a stalled upload held up the next request")
	}
}
