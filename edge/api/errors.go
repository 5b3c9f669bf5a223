package api

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
)

// Error is the JSON body of every non-2xx answer: {"error": "...", "code": "..."}.
// Code is a stable machine-readable word (see the constants); Error is for people.
type Error struct {
	Status  int    `json:"-"`
	Message string `json:"error"`
	Code    string `json:"code"`
	// MaxSamples, on an over_budget answer, is the largest sample count that this
	// request's model and method would fit in the budget (0 if not even one).
	MaxSamples *int `json:"max_samples,omitempty"`
}

// Error codes.
const (
	CodeBadRequest       = "bad_request"        // 400: malformed body, field or file
	CodeNotFound         = "not_found"          // 404
	CodeMethodNotAllowed = "method_not_allowed" // 405
	CodeTooLarge         = "too_large"          // 413: body or part over its byte limit
	CodeUnsupportedMedia = "unsupported_media"  // 415: not multipart/form-data
	CodeOverBudget       = "over_budget"        // 422: the work would exceed the budget
	CodeNotImplemented   = "not_implemented"    // 501
	CodeInternal         = "internal"           // 500
)

func (e *Error) Error() string { return e.Message }

func errorf(status int, code, format string, args ...any) *Error {
	return &Error{Status: status, Code: code, Message: fmt.Sprintf(format, args...)}
}

func badRequest(format string, args ...any) *Error {
	return errorf(http.StatusBadRequest, CodeBadRequest, format, args...)
}

// writeJSON answers v as indented JSON, exactly as the CLI prints it.
//
// It sets no Content-Length on purpose. With one, syumai/workers v0.27.0 copies the
// body into a FixedLengthStream from a goroutine whose end closes the response, which
// ends the Go program; under Go 1.26 that can happen before the response promise is
// resolved, and the request fails. Without it the body is a pull-based stream that
// the runtime drains after it has the response.
func writeJSON(w http.ResponseWriter, status int, v any) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		buf.Reset()
		status = http.StatusInternalServerError
		fmt.Fprintf(&buf, "{\"error\": %q, \"code\": %q}\n", "encoding the answer: "+err.Error(), CodeInternal)
	}
	h := w.Header()
	h.Set("Content-Type", "application/json; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	w.Write(buf.Bytes())
}

func writeError(w http.ResponseWriter, e *Error) {
	writeJSON(w, e.Status, e)
}
