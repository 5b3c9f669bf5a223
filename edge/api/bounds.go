package api

import (
	"fmt"
	"math"
	"net/http"

	"github.com/graftcert/graftcert/core/certify"
	"github.com/graftcert/graftcert/core/crown"
	"github.com/graftcert/graftcert/core/data"
	"github.com/graftcert/graftcert/core/onnx"
)

// boundsFields are the plain fields of POST /api/bounds.
var boundsFields = []string{"dataset", "eps", "method", "start", "count", "logits", "iterations", "lr", "early_stop"}

// bounds answers POST /api/bounds with the JSON of `graftcert bounds --json`.
func (h *Handler) bounds(w http.ResponseWriter, r *http.Request) {
	lim := h.opts.Limits
	f, e := readForm(r, lim.MaxBodyBytes, map[string]int64{
		"model": lim.MaxModelBytes, "data": lim.MaxDataBytes, "labels": lim.MaxDataBytes,
	}, boundsFields)
	if e != nil {
		writeError(w, e)
		return
	}
	rep, e := h.runBounds(r, f)
	if e != nil {
		writeError(w, e)
		return
	}
	writeJSON(w, http.StatusOK, rep)
}

func (h *Handler) runBounds(r *http.Request, f *form) (*certify.Report, *Error) {
	lim := h.opts.Limits
	eps, e := f.float("eps", 0, true)
	if e != nil {
		return nil, e
	}
	if !(eps >= 0) || eps > 1e6 {
		return nil, badRequest("field \"eps\": %v must be a non-negative number", eps)
	}
	method, err := crown.ParseMethod(f.str("method", "crown"))
	if err != nil {
		return nil, badRequest("field \"method\": %v", err)
	}
	start, e := f.int("start", 0)
	if e != nil {
		return nil, e
	}
	count, e := f.int("count", 0)
	if e != nil {
		return nil, e
	}
	logits, e := f.bool("logits")
	if e != nil {
		return nil, e
	}
	iters, e := f.int("iterations", 20)
	if e != nil {
		return nil, e
	}
	lr, e := f.float("lr", 0.1, false)
	if e != nil {
		return nil, e
	}
	earlyStop := true // the CLI's default (--early-stop)
	if _, ok := f.fields["early_stop"]; ok {
		if earlyStop, e = f.bool("early_stop"); e != nil {
			return nil, e
		}
	}
	if iters <= 0 || !(lr > 0) || math.IsInf(lr, 0) {
		return nil, badRequest("fields \"iterations\" and \"lr\" must be positive")
	}
	if method == crown.AlphaCROWN && iters > lim.MaxIterations {
		return nil, errorf(http.StatusUnprocessableEntity, CodeOverBudget,
			"iterations %d exceeds this endpoint's limit of %d", iters, lim.MaxIterations)
	}

	modelBytes, ok := f.files["model"]
	if !ok || len(modelBytes) == 0 {
		return nil, badRequest("part \"model\" (the ONNX file) is required")
	}
	xb, hasX := f.files["data"]
	yb, hasY := f.files["labels"]
	name := f.str("dataset", "")
	switch {
	case name != "" && (hasX || hasY):
		return nil, badRequest("give either the field \"dataset\" or the parts \"data\" and \"labels\", not both")
	case name != "":
		if xb, yb, err = h.opts.Dataset(name); err != nil {
			return nil, badRequest("field \"dataset\": %v", err)
		}
	case !hasX || !hasY:
		return nil, badRequest("parts \"data\" and \"labels\" (.npy) or the field \"dataset\" are required")
	}

	net, err := onnx.Decode(modelBytes)
	if err != nil {
		return nil, badRequest("part \"model\": %v", err)
	}
	X, labels, err := data.LoadSamplesBytes(xb, yb)
	if err != nil {
		return nil, badRequest("data: %v", err)
	}
	if X.SampleSize() != net.InSize() {
		return nil, badRequest("data: samples have shape %v (%d values), the model's input %v has %d",
			X.Shape[1:], X.SampleSize(), net.Input, net.InSize())
	}
	if err := data.CheckLabels(labels, net.OutSize()); err != nil {
		return nil, badRequest("labels: %v", err)
	}
	if start < 0 || start >= len(labels) {
		return nil, badRequest("field \"start\": %d out of range [0, %d)", start, len(labels))
	}
	end := len(labels)
	if count > 0 {
		end = min(end, start+count)
	}
	if end-start > lim.MaxSamples {
		return nil, overBudget(fmt.Sprintf("%d samples exceed this endpoint's limit of %d per request", end-start, lim.MaxSamples), lim.MaxSamples)
	}
	idx := make([]int, 0, end-start)
	for i := start; i < end; i++ {
		idx = append(idx, i)
	}
	ctx := r.Context()
	// The body is held twice: by the worker entry, which receives it before the
	// request queues, and here.
	est, err := estimateBounds(ctx, net, X.Data, idx, eps, method, iters, logits, 2*f.bytes())
	if err != nil {
		return nil, badRequest("%v", err)
	}
	if est.Memory > lim.MaxMemory {
		return nil, overBudget(fmt.Sprintf("bounding needs about %s of memory, over this endpoint's limit of %s: use the native CLI",
			sizeLabel(est.Memory), sizeLabel(lim.MaxMemory)), 0)
	}
	if est.Work > lim.MaxWork {
		fit := int(lim.MaxWork / (est.Work / float64(len(idx))))
		return nil, overBudget(fmt.Sprintf("the request needs about %.3g multiply-adds, over this endpoint's budget of %.3g: send at most about %d samples per request",
			est.Work, lim.MaxWork, fit), fit)
	}
	opts := certify.Options{Eps: eps, Logits: logits, Jobs: 1,
		Bound: crown.Options{Method: method, Iterations: iters, LR: lr, StopWhenPositive: earlyStop}}
	rep, err := certify.Run(ctx, net, modelName(f.fileNames["model"]), X.Data, labels, idx, opts, nil)
	if err != nil {
		return nil, badRequest("%v", err)
	}
	return rep, nil
}

func overBudget(msg string, fit int) *Error {
	e := errorf(http.StatusUnprocessableEntity, CodeOverBudget, "%s", msg)
	e.MaxSamples = &fit
	return e
}
