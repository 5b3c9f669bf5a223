//go:build js && wasm

package main

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"syscall/js"

	"github.com/vugu/vugu"
)

// A bundled model: its file under static/demo and the data set and eps it is
// certified with by default (../shared/testdata/README.md).
type bundledModel struct {
	Path, Label, Data, Eps string
}

var bundledModels = []bundledModel{
	{"demo/mnist_6_100.onnx", "mnist_6_100 — MLP 6×100, MNIST", "mnist", "0.026"},
	{"demo/mnist_6_100_graft50.onnx", "mnist_6_100_graft50 — the same, 50% grafted", "mnist", "0.026"},
	{"demo/cifar_conv_small.onnx", "cifar_conv_small — 2 conv + 2 dense, CIFAR-10", "cifar", "0.00784313725490196"},
}

// Data sources.
const (
	dataMNIST = "mnist"
	dataCIFAR = "cifar"
	dataNPY   = "npy"
	dataDraw  = "draw"
)

// modelRef is a model the pool can load: key identifies its bytes (the pool reloads a
// worker only when the key changes).
type modelRef struct {
	Key     string
	Name    string
	Bytes   js.Value // ArrayBuffer
	Summary *Summary
}

func (m *modelRef) js() js.Value {
	return object(map[string]any{"key": m.Key, "name": m.Name, "bytes": m.Bytes})
}

// dataRef is a set of samples for the pool.
type dataRef struct {
	Key    string
	Name   string
	X, Y   js.Value // .npy ArrayBuffers, or
	Inline js.Value // {x: Float64Array, shape, labels}
	Count  int      // samples, when known
}

func (d *dataRef) js() js.Value {
	m := map[string]any{"key": d.Key, "name": d.Name}
	if d.Inline.Truthy() {
		m["inline"] = d.Inline
	} else {
		m["x"], m["y"] = d.X, d.Y
	}
	return object(m)
}

// App is the page's state. Event handlers run with the render lock held; work that
// waits for JavaScript (files, workers) runs on its own goroutine and takes the lock
// (env.Lock / UnlockRender) to publish results.
type App struct {
	env  vugu.EventEnv
	gc   js.Value // window.graftcert
	pool js.Value
	seq  int

	Cores int

	// Model panel.
	ModelChoice  string // a bundled path, or "file"
	Model        *modelRef
	ModelLoading bool
	ModelErr     string
	ModelTooBig  string // the estimate, when the model was refused for size
	DragOver     bool
	loadingKey   string

	// Samples panel.
	DataChoice string
	NpyX, NpyY js.Value // File objects
	NpyXName   string
	NpyYName   string
	DrawLabel  string // "" = the prediction
	DataErr    string
	dataCache  map[string]*dataRef

	// Run settings (as typed).
	Eps, Method, Iterations, Start, Count, Workers, Timeout string
	BaBState                                                string // branch and bound progress of the current sample

	// Run state.
	Running   bool
	Phase     string
	Done      int
	Total     int
	startMs   float64
	Elapsed   float64
	RunErr    string
	Cancelled bool
	Results   []Sample // by position in the run; Raw == nil until finished
	Selected  int      // position of the sample whose chart is shown
	Report    string   // the run as `graftcert bounds --json`
	Stats     Stats
	RunModel  *Summary
	runName   string
	runMethod string
	runEps    float64

	Graft GraftState
}

func newApp(env vugu.EventEnv) *App {
	gc := js.Global().Get("graftcert")
	a := &App{env: env, gc: gc, pool: gc.Get("pool"), Cores: gc.Get("cores").Int(),
		DataChoice: dataMNIST, Method: "crown", Iterations: "20", Start: "0", Count: "10", Timeout: "30",
		dataCache: map[string]*dataRef{}, Selected: -1}
	a.Workers = strconv.Itoa(a.Cores)
	a.Graft = defaultGraft()
	a.chooseBundled(bundledModels[0].Path)
	return a
}

func (a *App) nextKey(prefix string) string {
	a.seq++
	return fmt.Sprintf("%s:%d", prefix, a.seq)
}

// update runs f with the render lock held and re-renders.
func (a *App) update(f func()) {
	a.env.Lock()
	defer a.env.UnlockRender()
	f()
}

// ---- model ----

// SetModelChoice handles the model picker.
func (a *App) SetModelChoice(v string) {
	a.ModelChoice = v
	if v == "file" {
		return
	}
	a.chooseBundled(v)
}

func (a *App) chooseBundled(path string) {
	var bm *bundledModel
	for i := range bundledModels {
		if bundledModels[i].Path == path {
			bm = &bundledModels[i]
		}
	}
	if bm == nil {
		return
	}
	a.ModelChoice = path
	a.Eps = bm.Eps
	if a.DataChoice == dataMNIST || a.DataChoice == dataCIFAR {
		a.DataChoice = bm.Data
	}
	name := path[strings.LastIndex(path, "/")+1:]
	a.loadModel(func() (js.Value, error) { return await(a.gc.Call("fetchBundled", path)) }, path, name)
}

// OnModelFile handles the file dialog.
func (a *App) OnModelFile(event vugu.DOMEvent) {
	files := js.Value(event.JSEventTarget()).Get("files")
	if files.Length() == 0 {
		return
	}
	a.modelFromFile(files.Index(0))
	// Clear the input so that choosing the same file again fires change again.
	js.Value(event.JSEventTarget()).Set("value", "")
}

// OnDragOver and OnDrop make the model panel a drop zone for .onnx files.
func (a *App) OnDragOver(event vugu.DOMEvent) {
	event.PreventDefault()
	a.DragOver = true
}

func (a *App) OnDragLeave(event vugu.DOMEvent) { a.DragOver = false }

func (a *App) OnDrop(event vugu.DOMEvent) {
	event.PreventDefault()
	a.DragOver = false
	files := js.Value(event.JSEvent()).Get("dataTransfer").Get("files")
	if files.Length() == 0 {
		return
	}
	a.modelFromFile(files.Index(0))
}

func (a *App) modelFromFile(file js.Value) {
	a.ModelChoice = "file"
	name := file.Get("name").String()
	a.loadModel(func() (js.Value, error) { return await(a.gc.Call("readFile", file)) }, a.nextKey("file"), name)
}

// loadModel reads the bytes with get, loads them into the first worker and shows the
// summary or the error. The page stays usable whatever happens.
func (a *App) loadModel(get func() (js.Value, error), key, name string) {
	a.ModelLoading, a.ModelErr, a.ModelTooBig = true, "", ""
	a.Model = nil
	a.loadingKey = key
	go func() {
		b, err := get()
		var s *Summary
		var m *modelRef
		if err == nil {
			m = &modelRef{Key: key, Name: name, Bytes: b}
			var r js.Value
			r, err = await(a.pool.Call("prepare", 1, m.js(), js.Null()))
			if err == nil {
				s = &Summary{}
				err = decode(r, s)
			}
		}
		a.update(func() {
			if a.loadingKey != key {
				return // another model was chosen meanwhile
			}
			a.ModelLoading = false
			if err != nil {
				a.ModelErr = fmt.Sprintf("Cannot use %s: %v", name, err)
				if e, ok := err.(*jsError); ok && e.Code == "too_big" {
					a.ModelTooBig = fmt.Sprintf("estimated %s, limit %s", FormatBytes(e.EstimatedBytes), FormatBytes(e.LimitBytes))
				}
				return
			}
			m.Summary = s
			a.Model = m
		})
	}()
}

// ModelName is the model's name as the CLI prints it (file name without extension).
func (a *App) ModelName() string {
	if a.Model == nil {
		return ""
	}
	return strings.TrimSuffix(a.Model.Name, ".onnx")
}

// ---- samples ----

// SetDataChoice handles the samples picker.
func (a *App) SetDataChoice(v string) {
	a.DataChoice = v
	a.DataErr = ""
	if v == dataDraw {
		a.Count, a.Start = "1", "0"
	}
}

func (a *App) OnNpyX(event vugu.DOMEvent) {
	files := js.Value(event.JSEventTarget()).Get("files")
	if files.Length() > 0 {
		a.NpyX = files.Index(0)
		a.NpyXName = a.NpyX.Get("name").String()
		delete(a.dataCache, dataNPY)
	}
}

func (a *App) OnNpyY(event vugu.DOMEvent) {
	files := js.Value(event.JSEventTarget()).Get("files")
	if files.Length() > 0 {
		a.NpyY = files.Index(0)
		a.NpyYName = a.NpyY.Get("name").String()
		delete(a.dataCache, dataNPY)
	}
}

// ClearDrawing, LoadImage and DrawTestDigit drive the digit pad (static/draw.js).
func (a *App) ClearDrawing() { js.Global().Get("graftcertDraw").Call("clear") }

func (a *App) OnImageFile(event vugu.DOMEvent) {
	files := js.Value(event.JSEventTarget()).Get("files")
	if files.Length() == 0 {
		return
	}
	file := files.Index(0)
	go func() {
		_, err := await(js.Global().Get("graftcertDraw").Call("loadImage", file))
		if err != nil {
			a.update(func() { a.DataErr = "Cannot read the image: " + err.Error() })
		}
	}()
}

// DrawTestDigit paints test digit k of the bundled MNIST samples on the pad.
func (a *App) DrawTestDigit() {
	go func() {
		b, err := await(a.gc.Call("fetchBundled", "demo/mnist_X.npy"))
		if err != nil {
			a.update(func() { a.DataErr = err.Error() })
			return
		}
		// Float32 pixels after the 128-byte header of the bundled file; sample 0.
		px := js.Global().Get("Float32Array").New(b, 128, 784)
		js.Global().Get("graftcertDraw").Call("drawSample", px)
	}()
}

// data returns the samples to certify (fetching bundled files if needed). Run it off
// the event goroutine.
func (a *App) data(choice string) (*dataRef, error) {
	switch choice {
	case dataMNIST, dataCIFAR:
		if d := a.dataCache[choice]; d != nil {
			return d, nil
		}
		x, err := await(a.gc.Call("fetchBundled", "demo/"+choice+"_X.npy"))
		if err != nil {
			return nil, err
		}
		y, err := await(a.gc.Call("fetchBundled", "demo/"+choice+"_y.npy"))
		if err != nil {
			return nil, err
		}
		d := &dataRef{Key: "demo:" + choice, Name: choice, X: x, Y: y, Count: 100}
		a.dataCache[choice] = d
		return d, nil
	case dataNPY:
		if !a.NpyX.Truthy() || !a.NpyY.Truthy() {
			return nil, fmt.Errorf("choose both .npy files: the samples (X) and the labels (y)")
		}
		if d := a.dataCache[dataNPY]; d != nil {
			return d, nil
		}
		x, err := await(a.gc.Call("readFile", a.NpyX))
		if err != nil {
			return nil, err
		}
		y, err := await(a.gc.Call("readFile", a.NpyY))
		if err != nil {
			return nil, err
		}
		d := &dataRef{Key: a.nextKey("npy"), Name: a.NpyXName, X: x, Y: y}
		a.dataCache[dataNPY] = d
		return d, nil
	case dataDraw:
		px := js.Global().Get("graftcertDraw").Call("pixels")
		if px.IsNull() || px.IsUndefined() {
			return nil, fmt.Errorf("draw a digit first (or load a picture of one)")
		}
		label := -1
		if s := strings.TrimSpace(a.DrawLabel); s != "" {
			l, err := strconv.Atoi(s)
			if err != nil || l < 0 || l > 9 {
				return nil, fmt.Errorf("the digit's label must be 0 to 9, or empty for the prediction")
			}
			label = l
		}
		ver := js.Global().Get("graftcertDraw").Get("version").Int()
		inline := object(map[string]any{"x": px, "shape": []any{1, 28, 28}, "labels": []any{label}})
		return &dataRef{Key: fmt.Sprintf("draw:%d:%d", ver, label), Name: "drawing", Inline: inline, Count: 1}, nil
	}
	return nil, fmt.Errorf("unknown sample source %q", choice)
}

// ---- run ----

type runSettings struct {
	eps        float64
	method     string
	iterations int
	timeout    float64
	indices    []int
	workers    int
}

func (a *App) settings() (runSettings, error) {
	var rs runSettings
	eps, err := strconv.ParseFloat(strings.TrimSpace(a.Eps), 64)
	if err != nil || eps < 0 || math.IsInf(eps, 0) {
		return rs, fmt.Errorf("eps %q: want a number ≥ 0 (pixel scale, e.g. 0.026 or 0.00784 for 2/255)", a.Eps)
	}
	start, err := strconv.Atoi(strings.TrimSpace(a.Start))
	if err != nil || start < 0 {
		return rs, fmt.Errorf("first sample %q: want an index ≥ 0", a.Start)
	}
	count, err := strconv.Atoi(strings.TrimSpace(a.Count))
	if err != nil || count < 1 || count > 100000 {
		return rs, fmt.Errorf("count %q: want 1 or more", a.Count)
	}
	w, err := strconv.Atoi(strings.TrimSpace(a.Workers))
	if err != nil || w < 1 || w > 64 {
		return rs, fmt.Errorf("workers %q: want 1 to 64", a.Workers)
	}
	it := 20
	if a.Method == "alpha-crown" {
		it, err = strconv.Atoi(strings.TrimSpace(a.Iterations))
		if err != nil || it < 1 || it > 1000 {
			return rs, fmt.Errorf("iterations %q: want 1 to 1000", a.Iterations)
		}
	}
	timeout := 30.0
	if a.Method == "bab" {
		timeout, err = strconv.ParseFloat(strings.TrimSpace(a.Timeout), 64)
		if err != nil || !(timeout > 0) || timeout > 3600 {
			return rs, fmt.Errorf("timeout %q: want seconds, up to 3600", a.Timeout)
		}
	}
	rs = runSettings{eps: eps, method: a.Method, iterations: it, timeout: timeout, workers: w}
	if a.DataChoice == dataDraw {
		start, count = 0, 1
	}
	for i := start; i < start+count; i++ {
		rs.indices = append(rs.indices, i)
	}
	return rs, nil
}

// CanRun reports whether the Run button is enabled.
func (a *App) CanRun() bool {
	return !a.Running && a.Model != nil && !a.ModelLoading && !a.Graft.Running
}

// Run certifies the chosen samples on the worker pool.
func (a *App) Run() {
	if !a.CanRun() {
		return
	}
	rs, err := a.settings()
	if err != nil {
		a.RunErr = err.Error()
		return
	}
	model := a.Model
	a.Running, a.Cancelled, a.RunErr, a.Report = true, false, "", ""
	a.Phase = "starting workers"
	a.Done, a.Total, a.Elapsed = 0, len(rs.indices), 0
	a.Results = make([]Sample, len(rs.indices))
	a.Selected = -1
	a.Stats = Stats{}
	a.RunModel = model.Summary
	a.runName, a.runMethod, a.runEps = strings.TrimSuffix(model.Name, ".onnx"), rs.method, rs.eps
	a.startMs = a.gc.Call("now").Float()
	choice := a.DataChoice
	a.BaBState = ""
	run := a.certify
	if rs.method == "bab" {
		run = a.verifyAll
	}
	go func() {
		samples, err := run(model, choice, rs, func(k int, s Sample, done int) {
			a.update(func() {
				if !a.Running || k >= len(a.Results) {
					return
				}
				a.Results[k] = s
				a.Done = max(a.Done, done)
				a.Phase = "certifying"
				a.Elapsed = (a.gc.Call("now").Float() - a.startMs) / 1000
				if a.Selected < 0 {
					a.Selected = k
				}
				a.Stats = Summarize(a.finished())
			})
		})
		a.update(func() {
			a.Running = false
			a.Elapsed = (a.gc.Call("now").Float() - a.startMs) / 1000
			if err != nil {
				if errCode(err) == "cancelled" {
					a.Cancelled = true
					a.Phase = fmt.Sprintf("cancelled after %d of %d samples", a.Done, a.Total)
				} else {
					a.RunErr = err.Error()
					a.Phase = "failed"
				}
				a.Stats = Summarize(a.finished())
				return
			}
			for k := range samples {
				if k < len(a.Results) {
					samples[k].Worker = a.Results[k].Worker
				}
			}
			a.Results = samples
			a.Done = len(samples)
			a.Phase = "done"
			a.Stats = Summarize(samples)
			if a.Selected < 0 && len(samples) > 0 {
				a.Selected = 0
			}
			if a.runMethod == "bab" {
				a.Report, err = verifyReportJSON(samples, a.Elapsed)
			} else {
				a.Report, err = reportJSON(a.runName, a.runMethod, a.runEps, samples, a.Elapsed)
			}
			if err != nil {
				a.RunErr = err.Error()
			}
		})
	}()
}

// certify runs the bounds of rs on the pool and returns the samples in order.
func (a *App) certify(model *modelRef, choice string, rs runSettings, progress func(k int, s Sample, done int)) ([]Sample, error) {
	d, err := a.data(choice)
	if err != nil {
		return nil, err
	}
	idx := make([]any, len(rs.indices))
	for i, v := range rs.indices {
		idx[i] = v
	}
	opts := object(map[string]any{"eps": rs.eps, "method": rs.method, "iterations": rs.iterations, "indices": idx})
	onSample := js.FuncOf(func(_ js.Value, args []js.Value) any {
		k, done, w := args[0].Int(), args[2].Int(), args[4].Int()
		s := Sample{Raw: rawJSON(args[1]), Worker: w}
		if err := decode(args[1], &s.R); err != nil {
			return nil
		}
		go progress(k, s, done)
		return nil
	})
	defer onSample.Release()
	r, err := await(a.pool.Call("bounds", rs.workers, model.js(), d.js(), opts, onSample))
	if err != nil {
		return nil, err
	}
	out := make([]Sample, r.Length())
	for k := range out {
		v := r.Index(k)
		out[k].Raw = rawJSON(v)
		if err := decode(v, &out[k].R); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// verifyAll decides the samples one after the other with complete verification,
// each shared out over all the workers (pool.verify).
func (a *App) verifyAll(model *modelRef, choice string, rs runSettings, progress func(k int, s Sample, done int)) ([]Sample, error) {
	d, err := a.data(choice)
	if err != nil {
		return nil, err
	}
	classes := 10
	if model.Summary != nil {
		classes = model.Summary.Classes
	}
	onProgress := js.FuncOf(func(_ js.Value, args []js.Value) any {
		w, p := args[0].Int(), args[1]
		msg := fmt.Sprintf("worker %d: %d subdomains open, %d bounded, lower bound %.4g, %.1f s", w,
			p.Get("domains").Int(), p.Get("bounded").Int(), p.Get("lower").Float(), p.Get("seconds").Float())
		go a.update(func() { a.BaBState = msg })
		return nil
	})
	defer onProgress.Release()
	out := make([]Sample, len(rs.indices))
	for k, i := range rs.indices {
		opts := object(map[string]any{"index": i, "eps": rs.eps, "timeout": rs.timeout, "classes": classes})
		r, err := await(a.pool.Call("verify", rs.workers, model.js(), d.js(), opts, onProgress))
		if err != nil {
			return nil, err
		}
		s := Sample{Raw: rawJSON(r)}
		if err := decode(r, &s.R); err != nil {
			return nil, err
		}
		s.R.Verified = s.R.Result == "verified"
		out[k] = s
		progress(k, s, k+1)
	}
	return out, nil
}

// finished lists the samples done so far, in order.
func (a *App) finished() []Sample {
	var out []Sample
	for _, s := range a.Results {
		if s.Raw != nil {
			out = append(out, s)
		}
	}
	return out
}

// Cancel terminates the workers; the run's promise rejects with "cancelled".
func (a *App) Cancel() {
	if a.Running || a.Graft.Running {
		a.pool.Call("cancel")
	}
}

// Select shows sample k's chart.
func (a *App) Select(k int) { a.Selected = k }

// SelectedSample returns the sample whose chart is shown.
func (a *App) SelectedSample() (SampleReport, bool) {
	if a.Selected < 0 || a.Selected >= len(a.Results) || a.Results[a.Selected].Raw == nil {
		return SampleReport{}, false
	}
	return a.Results[a.Selected].R, true
}

// Progress is the value of the progress bar, 0 to 1000.
func (a *App) Progress() int {
	if a.Total == 0 {
		return 0
	}
	return 1000 * a.Done / a.Total
}

// Classes is the number of classes of the model that produced the results.
func (a *App) Classes() int {
	if a.RunModel != nil {
		return a.RunModel.Classes
	}
	return 10
}

// DownloadReport saves the JSON report.
func (a *App) DownloadReport() {
	if a.Report == "" {
		return
	}
	a.gc.Call("download", a.runName+"_"+a.runMethod+".json", a.Report, "application/json")
}
