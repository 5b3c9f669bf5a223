package api

import (
	"fmt"
	"net/http"
	"strings"

	"github.com/graftcert/graftcert/static/demo"
)

// Version is the API version reported by /api/health.
const Version = "1"

// Limits bound what one request may ask for. Byte limits are checked while the body
// is read (a body is never buffered past them); the work limits are checked from
// estimates before any bound is computed, and BaB stops at MaxDomains with "unknown".
type Limits struct {
	MaxBodyBytes   int64 `json:"max_body_bytes"`   // whole request body
	MaxModelBytes  int64 `json:"max_model_bytes"`  // the model part (ONNX)
	MaxDataBytes   int64 `json:"max_data_bytes"`   // each of the data and labels parts (.npy)
	MaxVNNLIBBytes int64 `json:"max_vnnlib_bytes"` // the vnnlib part
	MaxSamples     int   `json:"max_samples"`      // samples per bounds request
	// MaxWork is the budget of estimated multiply-adds per request (see Estimate).
	MaxWork float64 `json:"max_work"`
	// MaxMemory is the budget of estimated bound workspace per request, in bytes, on
	// top of the model and data (which the byte limits bound).
	MaxMemory     int64 `json:"max_memory_bytes"`
	MaxIterations int   `json:"max_iterations"` // α-CROWN iterations
	// MaxDomains caps the branch-and-bound domains of one verify request; a run that
	// reaches it answers "unknown" (or "timeout" when the request's timeout budget,
	// converted to domains, is the smaller).
	MaxDomains int `json:"max_domains"`
}

// DefaultLimits suit a Workers deployment with the 128 MB memory limit and a CPU limit
// (limits.cpu_ms) of at least 30 s: at the slowest rate measured under workerd, about
// 4e8 units/s, MaxWork is about 25 s of CPU; MaxMemory keeps the Go heap's predicted
// peak under 100 MiB (see the README's edge section).
var DefaultLimits = Limits{
	MaxBodyBytes:   16 << 20,
	MaxModelBytes:  8 << 20,
	MaxDataBytes:   8 << 20,
	MaxVNNLIBBytes: 1 << 20,
	MaxSamples:     1000,
	MaxWork:        1e10,
	MaxMemory:      100 << 20,
	MaxIterations:  100,
	MaxDomains:     2000,
}

// Options configure a Handler.
type Options struct {
	Limits Limits
	// Dataset returns the .npy bytes of a bundled sample set; nil means the sets
	// embedded from static/demo.
	Dataset func(name string) (x, y []byte, err error)
	// Datasets lists the bundled set names for /api/health.
	Datasets []string
	// Static serves every path outside /api/ (the page); nil answers 404.
	Static http.Handler
}

// Handler is the API as an http.Handler.
type Handler struct {
	opts Options
}

// New returns the API handler.
func New(opts Options) *Handler {
	if opts.Dataset == nil {
		opts.Dataset = demo.Dataset
		opts.Datasets = demo.Datasets()
	}
	return &Handler{opts: opts}
}

// ServeHTTP routes /api/health, /api/bounds and /api/verify, and hands every other
// path to the static handler. A panic becomes a 500 JSON error: on the edge an
// unrecovered panic would end the Go instance without an answer.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	defer func() {
		if v := recover(); v != nil {
			writeError(w, errorf(http.StatusInternalServerError, CodeInternal, "internal error: %v", v))
		}
	}()
	p := r.URL.Path
	if !strings.HasPrefix(p, "/api/") && p != "/api" {
		if h.opts.Static != nil {
			h.opts.Static.ServeHTTP(w, r)
			return
		}
		writeError(w, errorf(http.StatusNotFound, CodeNotFound, "no such path %q", truncate(p, 80)))
		return
	}
	switch p {
	case "/api/health":
		if !allow(w, r, http.MethodGet, http.MethodHead) {
			return
		}
		h.health(w)
	case "/api/bounds":
		if !allow(w, r, http.MethodPost) {
			return
		}
		h.bounds(w, r)
	case "/api/verify":
		if !allow(w, r, http.MethodPost) {
			return
		}
		h.verify(w, r)
	default:
		writeError(w, errorf(http.StatusNotFound, CodeNotFound, "no API endpoint %q (have /api/health, /api/bounds, /api/verify)", truncate(p, 80)))
	}
}

func allow(w http.ResponseWriter, r *http.Request, methods ...string) bool {
	for _, m := range methods {
		if r.Method == m {
			return true
		}
	}
	w.Header().Set("Allow", strings.Join(methods, ", "))
	writeError(w, errorf(http.StatusMethodNotAllowed, CodeMethodNotAllowed, "%s %s: use %s", r.Method, r.URL.Path, strings.Join(methods, " or ")))
	return false
}

// Health is the /api/health answer.
type Health struct {
	Status   string   `json:"status"`
	Version  string   `json:"version"`
	Methods  []string `json:"methods"`
	Verify   bool     `json:"verify"` // whether /api/verify is implemented
	Datasets []string `json:"datasets"`
	Limits   Limits   `json:"limits"`
}

func (h *Handler) health(w http.ResponseWriter) {
	writeJSON(w, http.StatusOK, Health{Status: "ok", Version: Version,
		Methods: []string{"ibp", "crown", "alpha-crown"}, Verify: verifyAvailable,
		Datasets: h.opts.Datasets, Limits: h.opts.Limits})
}

// sizeLabel formats a byte count for error messages.
func sizeLabel(n int64) string {
	switch {
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d bytes", n)
}
