package main

import (
	"bytes"
	"compress/gzip"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestStaticHandler(t *testing.T) {
	dir := t.TempDir()
	files := map[string]string{
		"index.html":          "<!doctype html><title>x</title>",
		"worker.wasm":         "\x00asm\x01\x00\x00\x00" + strings.Repeat("w", 4000),
		"pool.js":             "console.log(1)",
		"style.css":           "body{}",
		"demo/m.onnx":         "onnx",
		"demo/sub/index.html": "sub",
	}
	for name, body := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	os.WriteFile(filepath.Join(t.TempDir(), "secret"), []byte("no"), 0o644)
	srv := httptest.NewServer(newStaticHandler(dir))
	defer srv.Close()
	get := func(method, path string, gz bool) (*http.Response, []byte) {
		t.Helper()
		req, _ := http.NewRequest(method, srv.URL+path, nil)
		if gz {
			req.Header.Set("Accept-Encoding", "gzip")
		} else {
			req.Header.Set("Accept-Encoding", "identity")
		}
		resp, err := http.DefaultTransport.RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, b
	}
	for _, c := range []struct{ path, ctype string }{
		{"/", "text/html; charset=utf-8"},
		{"/index.html", "text/html; charset=utf-8"},
		{"/worker.wasm", "application/wasm"},
		{"/pool.js", "text/javascript; charset=utf-8"},
		{"/style.css", "text/css; charset=utf-8"},
		{"/demo/m.onnx", "application/octet-stream"},
	} {
		resp, body := get("GET", c.path, false)
		if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != c.ctype {
			t.Errorf("%s: %d %q, want 200 %q", c.path, resp.StatusCode, resp.Header.Get("Content-Type"), c.ctype)
		}
		csp := resp.Header.Get("Content-Security-Policy")
		for _, d := range []string{"default-src 'self'", "script-src 'self' 'wasm-unsafe-eval'", "connect-src 'self'"} {
			if !strings.Contains(csp, d) {
				t.Errorf("%s: CSP %q lacks %q", c.path, csp, d)
			}
		}
		if strings.Contains(csp, "unsafe-eval'") && strings.Contains(csp, " 'unsafe-eval'") || strings.Contains(csp, "unsafe-inline") {
			t.Errorf("%s: CSP too loose: %q", c.path, csp)
		}
		if resp.Header.Get("X-Content-Type-Options") != "nosniff" {
			t.Errorf("%s: no nosniff", c.path)
		}
		name := strings.TrimPrefix(c.path, "/")
		if name == "" {
			name = "index.html"
		}
		if string(body) != files[name] {
			t.Errorf("%s: body %q", c.path, body)
		}
	}
	// gzip when accepted, same bytes after decompression.
	resp, body := get("GET", "/worker.wasm", true)
	if resp.Header.Get("Content-Encoding") != "gzip" || resp.Header.Get("Content-Type") != "application/wasm" {
		t.Fatalf("gzip: %v", resp.Header)
	}
	zr, err := gzip.NewReader(bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	plain, _ := io.ReadAll(zr)
	if string(plain) != files["worker.wasm"] || len(body) >= len(plain) {
		t.Errorf("gzip body: %d bytes → %d", len(body), len(plain))
	}
	// Nothing outside the directory, no listings, no writes.
	for _, p := range []string{"/../secret", "/%2e%2e/secret", "/nope.js", "/demo/"} {
		if resp, _ := get("GET", p, false); resp.StatusCode != 404 {
			t.Errorf("%s: %d, want 404", p, resp.StatusCode)
		}
	}
	if resp, _ := get("POST", "/index.html", false); resp.StatusCode != 405 {
		t.Errorf("POST: %d, want 405", resp.StatusCode)
	}
	if resp, _ := get("GET", "/demo/sub", false); resp.StatusCode != 301 {
		t.Errorf("directory with index: %d, want 301", resp.StatusCode)
	}
}

func TestServeNeedsIndex(t *testing.T) {
	var out, errb bytes.Buffer
	if code := run(t.Context(), []string{"serve", "--dir", t.TempDir(), "--addr", "127.0.0.1:0"}, &out, &errb); code == 0 ||
		!strings.Contains(errb.String(), "index.html") {
		t.Errorf("exit %d, stderr %q", code, errb.String())
	}
}

// The page declares the same policy as the server's header (less frame-ancestors,
// which a <meta> policy cannot carry), so it holds under any static file server.
func TestPagePolicyMatchesHeader(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("..", "..", "static", "index.html"))
	if err != nil {
		t.Fatal(err)
	}
	const open = `<meta http-equiv="Content-Security-Policy" content="`
	i := strings.Index(string(b), open)
	if i < 0 {
		t.Fatal("index.html has no CSP meta tag")
	}
	meta := string(b)[i+len(open):]
	meta = meta[:strings.Index(meta, `"`)]
	want := strings.TrimSuffix(ContentSecurityPolicy, "; frame-ancestors 'none'")
	if meta != want {
		t.Errorf("meta policy\n%s\nheader policy\n%s", meta, want)
	}
	for _, bad := range []string{"http:", "https:", "//"} {
		if strings.Contains(strings.ReplaceAll(string(b), "http://www.w3.org/2000/svg", ""), bad) {
			t.Errorf("index.html references %q: the page loads nothing from elsewhere", bad)
		}
	}
}
