package main

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"os"
	"path"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

func init() {
	register("serve", "serve the browser certifier (static/) on a local address", runServe)
}

// ContentSecurityPolicy is what the page may do: scripts and WebAssembly from its own
// origin only, fetches only to its own origin (it fetches nothing after loading its
// assets), no plugins, no forms, no framing. img-src allows data: for the favicon,
// which is inline. Workers get the policy from this header on worker.js, since a
// worker does not inherit the page's <meta> policy.
const ContentSecurityPolicy = "default-src 'self'; script-src 'self' 'wasm-unsafe-eval'; connect-src 'self'; " +
	"img-src 'self' data:; style-src 'self'; worker-src 'self'; object-src 'none'; base-uri 'none'; " +
	"form-action 'none'; frame-ancestors 'none'"

// staticTypes are the MIME types of the page's files, set explicitly so that the
// answer does not depend on the host's /etc/mime.types (WebAssembly.compileStreaming
// refuses anything but application/wasm).
var staticTypes = map[string]string{
	".html": "text/html; charset=utf-8",
	".js":   "text/javascript; charset=utf-8",
	".mjs":  "text/javascript; charset=utf-8",
	".css":  "text/css; charset=utf-8",
	".wasm": "application/wasm",
	".json": "application/json",
	".svg":  "image/svg+xml",
	".png":  "image/png",
	".ico":  "image/x-icon",
	".onnx": "application/octet-stream",
	".npy":  "application/octet-stream",
	".txt":  "text/plain; charset=utf-8",
	".md":   "text/markdown; charset=utf-8",
}

func runServe(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("serve", stderr)
	addr := fs.String("addr", "127.0.0.1:8080", "listen `address` (port 0 picks a free port)")
	dir := fs.String("dir", "static", "`directory` to serve")
	if err := parse(fs, args); err != nil {
		return err
	}
	st, err := os.Stat(filepath.Join(*dir, "index.html"))
	if err != nil || st.IsDir() {
		return fmt.Errorf("%s has no index.html: build the page first (make web)", *dir)
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: newStaticHandler(*dir), ReadHeaderTimeout: 10 * time.Second}
	fmt.Fprintf(stdout, "graftcert: serving %s on http://%s/\n", *dir, ln.Addr())
	if f, ok := stdout.(interface{ Sync() error }); ok {
		f.Sync()
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
		sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		srv.Shutdown(sctx)
		return nil
	}
}

// staticHandler serves the files of one directory read-only, with the security
// headers and gzip for the large text and wasm files.
type staticHandler struct {
	root string
	mu   sync.Mutex
	gz   map[string]gzEntry // path → compressed body, keyed on size and mtime
}

type gzEntry struct {
	size  int64
	mtime time.Time
	body  []byte
}

func newStaticHandler(root string) *staticHandler {
	return &staticHandler{root: root, gz: map[string]gzEntry{}}
}

// compressible lists the extensions sent gzipped to clients that accept it.
var compressible = map[string]bool{".html": true, ".js": true, ".css": true, ".wasm": true, ".json": true,
	".svg": true, ".onnx": true, ".npy": true, ".txt": true, ".md": true}

func (h *staticHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	hd := w.Header()
	hd.Set("Content-Security-Policy", ContentSecurityPolicy)
	hd.Set("X-Content-Type-Options", "nosniff")
	hd.Set("Referrer-Policy", "no-referrer")
	hd.Set("Cross-Origin-Opener-Policy", "same-origin")
	hd.Set("Cross-Origin-Resource-Policy", "same-origin")
	// The page is rebuilt in place by make: always revalidate (Last-Modified).
	hd.Set("Cache-Control", "no-cache")
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		hd.Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	p := path.Clean("/" + r.URL.Path)
	if strings.HasSuffix(p, "/") {
		p += "index.html"
	}
	name := filepath.Join(h.root, filepath.FromSlash(p))
	f, err := os.Open(name)
	if err != nil {
		http.NotFound(w, r)
		return
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil || st.IsDir() {
		if err == nil {
			if idx, err := os.Stat(filepath.Join(name, "index.html")); err == nil && !idx.IsDir() {
				http.Redirect(w, r, p+"/", http.StatusMovedPermanently)
				return
			}
		}
		http.NotFound(w, r)
		return
	}
	ext := strings.ToLower(path.Ext(p))
	ctype := staticTypes[ext]
	if ctype == "" {
		ctype = mime.TypeByExtension(ext)
	}
	if ctype == "" {
		ctype = "application/octet-stream"
	}
	hd.Set("Content-Type", ctype)
	if compressible[ext] && acceptsGzip(r) {
		body, err := h.gzipped(p, f, st)
		if err == nil {
			hd.Set("Content-Encoding", "gzip")
			hd.Add("Vary", "Accept-Encoding")
			http.ServeContent(w, r, p, st.ModTime(), bytes.NewReader(body))
			return
		}
		if _, err := f.Seek(0, io.SeekStart); err != nil {
			http.Error(w, "read error", http.StatusInternalServerError)
			return
		}
	}
	http.ServeContent(w, r, p, st.ModTime(), f)
}

func acceptsGzip(r *http.Request) bool {
	for _, part := range strings.Split(r.Header.Get("Accept-Encoding"), ",") {
		enc, q, _ := strings.Cut(strings.TrimSpace(part), ";")
		if strings.TrimSpace(enc) == "gzip" && strings.ReplaceAll(q, " ", "") != "q=0" {
			return true
		}
	}
	return false
}

// gzipped returns the compressed file, compressing it once per size and mtime.
func (h *staticHandler) gzipped(p string, f *os.File, st os.FileInfo) ([]byte, error) {
	h.mu.Lock()
	e, ok := h.gz[p]
	h.mu.Unlock()
	if ok && e.size == st.Size() && e.mtime.Equal(st.ModTime()) {
		return e.body, nil
	}
	var buf bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	n, err := io.Copy(zw, f)
	if err != nil {
		return nil, err
	}
	if n != st.Size() {
		return nil, errors.New("file changed while compressing")
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	h.mu.Lock()
	h.gz[p] = gzEntry{size: st.Size(), mtime: st.ModTime(), body: buf.Bytes()}
	h.mu.Unlock()
	return buf.Bytes(), nil
}
