package worker

import (
	"context"
	"errors"
	"fmt"
	"math"
	"runtime"
	"runtime/debug"
	"strings"
	"time"

	"github.com/graftcert/graftcert/core/certify"
	"github.com/graftcert/graftcert/core/crown"
	"github.com/graftcert/graftcert/core/data"
	"github.com/graftcert/graftcert/core/graft"
	"github.com/graftcert/graftcert/core/nn"
	"github.com/graftcert/graftcert/core/onnx"
	"github.com/graftcert/graftcert/core/train"
)

// Emit sends one response; buf, when not nil, travels beside it as the buffer
// "model" (the grafted ONNX file of a graft result).
type Emit func(resp Response, buf []byte)

// Handler holds one worker's state: the loaded model and samples. It is not safe for
// concurrent use; a worker serves one request at a time.
type Handler struct {
	net     *nn.Network
	summary *Summary
	limit   int64

	x      []float64
	labels []int // -1: the model's prediction
	shape  []int
}

// New returns a Handler with nothing loaded.
func New() *Handler { return &Handler{} }

// Features lists the request types this build answers; the page greys out the rest.
func Features() []string {
	return []string{TypeLoad, TypeData, TypeBounds, TypeEval, TypeGraft, TypeVerify}
}

// requestError is an error with a code for the page.
type requestError struct {
	code           string
	msg            string
	estimated, lim int64
}

func (e *requestError) Error() string { return e.msg }

func badRequest(format string, a ...any) error {
	return &requestError{code: "bad_request", msg: fmt.Sprintf(format, a...)}
}

// Handle answers one request: zero or more progress messages, then exactly one result
// or error. A panic inside the core becomes an error message (code "panic"), so the
// worker stays usable.
func (h *Handler) Handle(ctx context.Context, req Request, bufs map[string][]byte, emit Emit) {
	fail := func(err error) {
		resp := Response{V: Version, ID: req.ID, Type: TypeError, Message: err.Error()}
		var re *requestError
		if errors.As(err, &re) {
			resp.Code, resp.EstimatedBytes, resp.LimitBytes = re.code, re.estimated, re.lim
		}
		emit(resp, nil)
	}
	defer func() {
		if p := recover(); p != nil {
			fail(&requestError{code: "panic", msg: fmt.Sprintf("internal error in %s: %v", req.Type, p)})
			// A panic may leave the loaded model half-updated: drop it.
			h.net, h.summary = nil, nil
			debug.FreeOSMemory()
		}
	}()
	if req.V != Version {
		fail(badRequest("protocol version %d, this worker speaks %d: reload the page", req.V, Version))
		return
	}
	var err error
	switch req.Type {
	case TypeLoad:
		err = h.load(req, bufs, emit)
	case TypeData:
		err = h.data(req, bufs, emit)
	case TypeBounds:
		err = h.bounds(ctx, req, emit)
	case TypeEval:
		err = h.eval(req, emit)
	case TypeGraft:
		err = h.graft(ctx, req, bufs, emit)
	case TypeVerify:
		err = h.verify(ctx, req, emit)
	default:
		err = badRequest("unknown request type %q", req.Type)
	}
	if err != nil {
		fail(err)
	}
}

func result(req Request) Response { return Response{V: Version, ID: req.ID, Type: TypeResult} }

func (h *Handler) load(req Request, bufs map[string][]byte, emit Emit) error {
	b := bufs["model"]
	if len(b) == 0 {
		return badRequest("load: no model bytes (buffer \"model\" is empty)")
	}
	limit := req.MaxBytes
	if limit <= 0 {
		limit = DefaultMaxBytes
	}
	// Drop the previous model first so that its memory can serve the new one.
	h.net, h.summary = nil, nil
	runtime.GC()
	info, err := onnx.Inspect(b)
	if err != nil {
		return fmt.Errorf("%s: %w", req.Name, err)
	}
	if est, _ := onnx.EstimateBytes(b); est > limit {
		return tooBig(req.Name, est, limit, "its weights alone")
	}
	net, err := onnx.Decode(b)
	if err != nil {
		return fmt.Errorf("%s: %w", req.Name, err)
	}
	s := summarize(req.Name, len(b), info, net)
	s.LimitBytes = limit
	if s.EstimatedBytes > limit {
		return tooBig(req.Name, s.EstimatedBytes, limit, "a CROWN run")
	}
	h.net, h.summary, h.limit = net, s, limit
	resp := result(req)
	resp.Summary = s
	emit(resp, nil)
	return nil
}

func tooBig(name string, est, limit int64, what string) error {
	return &requestError{code: "too_big", estimated: est, lim: limit,
		msg: fmt.Sprintf("%s is too big for a browser tab: %s needs an estimated %s, above this page's limit of %s. Use the native CLI (graftcert bounds --model %s ...)",
			name, what, FormatBytes(est), FormatBytes(limit), name)}
}

// FormatBytes prints a byte count in binary units, e.g. "1.5 GiB".
func FormatBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	v, u := float64(n), "B"
	for _, s := range []string{"KiB", "MiB", "GiB", "TiB"} {
		if v < unit {
			break
		}
		v, u = v/unit, s
	}
	return fmt.Sprintf("%.1f %s", v, u)
}

func summarize(name string, size int, info *onnx.Info, net *nn.Network) *Summary {
	s := &Summary{Name: name, Bytes: size, Producer: info.Producer, Opset: info.Opsets[""], Ops: info.Ops,
		Input: append([]int(nil), net.Input...), Classes: net.OutSize(), Params: net.NumParams(),
		ReLUs: net.NumNeurons()}
	for i, l := range net.Layers {
		li := LayerInfo{Name: l.Name(), Kind: l.Kind(), Out: append([]int(nil), net.Shapes[i+1]...)}
		switch l.(type) {
		case *nn.Dense, *nn.Conv2d:
			for _, p := range l.Params() {
				li.Params += len(p)
			}
		}
		if a, ok := l.(nn.Activation); ok {
			li.Neurons = a.Neurons()
		}
		if m, ok := l.(*nn.MaskedReLU); ok {
			for _, v := range m.Mask {
				if v != 0 {
					li.Grafted++
				}
			}
			s.Grafted += li.Grafted
		}
		s.Layers = append(s.Layers, li)
	}
	s.EstimatedBytes = EstimateMemory(net, size, crown.CROWN)
	s.AlphaBytes = EstimateMemory(net, size, crown.AlphaCROWN)
	return s
}

func (h *Handler) data(req Request, bufs map[string][]byte, emit Emit) error {
	var (
		X      []float64
		labels []int
		shape  []int
	)
	if xb, yb := bufs["x"], bufs["y"]; len(xb) > 0 || len(yb) > 0 {
		arr, ls, err := data.LoadSamplesBytes(xb, yb)
		if err != nil {
			return fmt.Errorf("%s: %w", req.Name, err)
		}
		X, labels, shape = arr.Data, ls, append([]int(nil), arr.Shape[1:]...)
	} else {
		if len(req.Shape) == 0 || len(req.Labels) == 0 {
			return badRequest("data: give .npy buffers \"x\" and \"y\", or x, shape and labels")
		}
		size := 1
		for _, d := range req.Shape {
			if d <= 0 {
				return badRequest("data: shape %v has a non-positive dimension", req.Shape)
			}
			size *= d
		}
		if len(req.X) != size*len(req.Labels) {
			return badRequest("data: %d values for %d samples of shape %v", len(req.X), len(req.Labels), req.Shape)
		}
		for i, v := range req.X {
			if math.IsNaN(v) || math.IsInf(v, 0) {
				return badRequest("data: sample %d element %d is %v", i/size, i%size, v)
			}
		}
		for i, l := range req.Labels {
			if l < -1 {
				return badRequest("data: label %d is %d (want a class, or -1 for the prediction)", i, l)
			}
		}
		X, labels, shape = req.X, req.Labels, req.Shape
	}
	h.x, h.labels, h.shape = X, labels, shape
	resp := result(req)
	resp.Data = &DataSummary{Count: len(labels), Shape: shape, Labels: labels}
	emit(resp, nil)
	return nil
}

// ready checks that a model and matching samples are loaded and the indices are valid.
func (h *Handler) ready(idx []int) error {
	if h.net == nil {
		return &requestError{code: "no_model", msg: "no model loaded"}
	}
	if h.labels == nil {
		return &requestError{code: "no_data", msg: "no samples loaded"}
	}
	n := h.net.InSize()
	size := 1
	for _, d := range h.shape {
		size *= d
	}
	if size != n {
		return &requestError{code: "bad_request", msg: fmt.Sprintf("samples have shape %v (%d values), the model's input %v has %d", h.shape, size, h.net.Input, n)}
	}
	for _, l := range h.labels {
		if l >= h.net.OutSize() {
			return &requestError{code: "bad_request", msg: fmt.Sprintf("label %d is outside the model's %d classes", l, h.net.OutSize())}
		}
	}
	if len(idx) == 0 {
		return badRequest("no sample indices given")
	}
	for _, i := range idx {
		if i < 0 || i >= len(h.labels) {
			return badRequest("sample index %d out of range [0, %d)", i, len(h.labels))
		}
	}
	return nil
}

// sample returns sample i and its label, resolving -1 to the prediction.
func (h *Handler) sample(i int) ([]float64, int) {
	n := h.net.InSize()
	x := h.x[i*n : (i+1)*n]
	l := h.labels[i]
	if l < 0 {
		l = nn.Argmax(h.net.Forward(x))
	}
	return x, l
}

// BoundOptions maps a request to the options `graftcert bounds` uses for the same
// flags (its defaults: 20 iterations, lr 0.1, early stop), so that the browser's
// numbers are the CLI's. limit becomes crown's MaxMemory.
func BoundOptions(req Request, limit int64) (certify.Options, error) {
	method := req.Method
	if method == "" {
		method = "crown"
	}
	m, err := crown.ParseMethod(method)
	if err != nil {
		return certify.Options{}, badRequest("%v", err)
	}
	if !(req.Eps >= 0) || req.Eps > 1e6 {
		return certify.Options{}, badRequest("eps %v: must be a non-negative number", req.Eps)
	}
	it, lr := req.Iterations, req.LR
	if it == 0 {
		it = 20
	}
	if lr == 0 {
		lr = 0.1
	}
	if it < 0 || it > 10000 || !(lr > 0) {
		return certify.Options{}, badRequest("iterations %d and lr %v must be positive", it, lr)
	}
	return certify.Options{Eps: req.Eps, Logits: req.Logits, Jobs: 1,
		Bound: crown.Options{Method: m, Iterations: it, LR: lr, StopWhenPositive: !req.NoEarlyStop, MaxMemory: limit}}, nil
}

func (h *Handler) bounds(ctx context.Context, req Request, emit Emit) error {
	if err := h.ready(req.Indices); err != nil {
		return err
	}
	opts, err := BoundOptions(req, h.limit)
	if err != nil {
		return err
	}
	if opts.Bound.Method == crown.AlphaCROWN && h.summary.AlphaBytes > h.limit {
		return tooBig(h.summary.Name, h.summary.AlphaBytes, h.limit, "an alpha-CROWN run")
	}
	out := make([]certify.SampleReport, 0, len(req.Indices))
	for k, i := range req.Indices {
		x, l := h.sample(i)
		r, err := certify.Sample(ctx, h.net, x, l, i, opts)
		if errors.Is(err, crown.ErrTooLarge) {
			return &requestError{code: "too_big", msg: fmt.Sprintf("%s: %v. Use the native CLI.", h.summary.Name, err),
				estimated: EstimateMemory(h.net, 0, opts.Bound.Method), lim: h.limit}
		}
		if err != nil {
			return err
		}
		out = append(out, r)
		emit(Response{V: Version, ID: req.ID, Type: TypeProgress, Done: k + 1, Total: len(req.Indices), Sample: &r}, nil)
	}
	resp := result(req)
	resp.Samples = out
	emit(resp, nil)
	return nil
}

func (h *Handler) eval(req Request, emit Emit) error {
	if err := h.ready(req.Indices); err != nil {
		return err
	}
	rep := &certify.EvalReport{Samples: make([]certify.EvalSample, 0, len(req.Indices))}
	correct := 0
	for _, i := range req.Indices {
		x, l := h.sample(i)
		y := h.net.Forward(x)
		p := nn.Argmax(y)
		if p == l {
			correct++
		}
		rep.Samples = append(rep.Samples, certify.EvalSample{Index: i, Label: l, Pred: p, Logits: y})
	}
	rep.Accuracy = float64(correct) / float64(len(req.Indices))
	resp := result(req)
	resp.Eval = rep
	emit(resp, nil)
	return nil
}

func (h *Handler) graft(ctx context.Context, req Request, bufs map[string][]byte, emit Emit) error {
	start := time.Now()
	if h.net == nil {
		return &requestError{code: "no_model", msg: "no model loaded"}
	}
	if len(bufs["trainX"]) == 0 || len(bufs["trainY"]) == 0 {
		return badRequest("graft: training samples missing (buffers \"trainX\" and \"trainY\", .npy)")
	}
	arr, labels, err := data.LoadSamplesBytes(bufs["trainX"], bufs["trainY"])
	if err != nil {
		return fmt.Errorf("training set: %w", err)
	}
	in := h.net.InSize()
	if arr.SampleSize() != in {
		return badRequest("training samples have %d values, the model's input has %d", arr.SampleSize(), in)
	}
	if err := data.CheckLabels(labels, h.net.OutSize()); err != nil {
		return fmt.Errorf("training set: %w", err)
	}
	n := len(labels)
	if req.TrainCount > 0 && req.TrainCount < n {
		n = req.TrainCount
	}
	X := arr.Data[:n*in]
	labels = labels[:n]
	if math.IsNaN(req.Ratio) || req.Ratio < 0 || req.Ratio > 1 {
		return badRequest("ratio %v outside [0, 1]", req.Ratio)
	}
	scoreName := req.Score
	if scoreName == "" {
		scoreName = "magnitude"
	}
	kind, err := graft.ParseKind(scoreName)
	if err != nil {
		return badRequest("%v", err)
	}
	if req.Epochs < 0 || req.Epochs > 1000 {
		return badRequest("epochs %d outside [0, 1000]", req.Epochs)
	}
	if !(req.Eps >= 0) || req.Eps > 1 {
		return badRequest("training eps %v outside [0, 1]", req.Eps)
	}
	seed := req.Seed
	if seed == 0 {
		seed = 1
	}
	calib := req.Calibration
	if calib <= 0 {
		calib = 1000
	}
	progress := func(stage string) {
		emit(Response{V: Version, ID: req.ID, Type: TypeProgress, Stage: stage}, nil)
	}
	progress("score")
	ci := graft.Calibration(n, calib, seed)
	cx := make([]float64, 0, len(ci)*in)
	cl := make([]int, 0, len(ci))
	for _, i := range ci {
		cx = append(cx, X[i*in:(i+1)*in]...)
		cl = append(cl, labels[i])
	}
	scores, err := graft.Scores(ctx, h.net, cx, len(ci), kind, cl)
	if err != nil {
		return err
	}
	masks, err := graft.Mask(scores, req.Ratio, req.PerLayer)
	if err != nil {
		return err
	}
	gopts := graft.DefaultOptions()
	gopts.Prune = req.Prune
	g, err := graft.Apply(h.net, masks, gopts)
	if err != nil {
		return err
	}
	grafted, total := graft.Count(masks)
	rep := &GraftReport{Grafted: grafted, Total: total, Ratio: req.Ratio, Score: kind.String(), Prune: req.Prune, Epochs: []EpochReport{}}
	if req.Epochs > 0 {
		progress("train")
		o := train.DefaultFineTune(req.Eps)
		o.Epochs, o.Seed, o.Workers = req.Epochs, seed, 1
		if req.BatchSize > 0 {
			o.BatchSize = req.BatchSize
		}
		if req.Eps == 0 || req.NoGradAlign {
			o.GradAlign = 0
		}
		o.FreezeActivations = req.Prune
		o.OnBatch = func(b train.Batch) {
			emit(Response{V: Version, ID: req.ID, Type: TypeProgress, Stage: "train",
				Epoch: &EpochReport{Epoch: b.Epoch, Epochs: req.Epochs, Step: b.Step, Steps: b.Steps, Loss: b.Loss, Accuracy: b.Accuracy}}, nil)
		}
		_, err := train.FineTune(ctx, g, train.Data{X: X, Labels: labels}, o, func(e train.Epoch) {
			er := EpochReport{Epoch: e.Epoch, Epochs: e.Epochs, Loss: e.Loss, Accuracy: e.Accuracy, Seconds: e.Seconds}
			rep.Epochs = append(rep.Epochs, er)
			emit(Response{V: Version, ID: req.ID, Type: TypeProgress, Stage: "train", Epoch: &er}, nil)
		})
		if err != nil {
			return err
		}
	}
	b, err := onnx.Encode(g)
	if err != nil {
		return err
	}
	info, err := onnx.Inspect(b)
	if err != nil {
		return err
	}
	rep.Seconds = time.Since(start).Seconds()
	resp := result(req)
	resp.Graft = rep
	resp.Summary = summarize(graftName(h.summary.Name, req), len(b), info, g)
	resp.Summary.LimitBytes = h.limit
	emit(resp, b)
	return nil
}

func graftName(base string, req Request) string {
	base = strings.TrimSuffix(base, ".onnx")
	what := "graft"
	if req.Prune {
		what = "prune"
	}
	name := fmt.Sprintf("%s_%s%d", base, what, int(math.Round(req.Ratio*100)))
	if req.Epochs > 0 {
		name += fmt.Sprintf("_ft%d", req.Epochs) // not the bundled, untuned *_graft50
	}
	return name + ".onnx"
}
