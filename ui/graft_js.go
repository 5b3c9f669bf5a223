//go:build js && wasm

package main

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"syscall/js"
)

// GraftState is the Graft panel: settings as typed, progress, and the comparison.
type GraftState struct {
	Ratio, Score, Epochs, TrainEps, TrainCount, Eps, TestCount string
	Prune                                                      bool

	Running bool
	Stage   string
	Step    int // progress of the current stage, 0..StepMax
	StepMax int
	Loss    float64
	Acc     float64
	Err     string

	Before, After *GraftSide
	Report        *GraftReport
	bytes         js.Value
	name          string
	model         *modelRef
}

// GraftSide is one column of the before/after comparison.
type GraftSide struct {
	Name    string
	Summary *Summary
	Correct int // clean accuracy over the bundled test samples
	Tested  int
	Stats   Stats // CROWN over the first TestCount test samples
	Seconds float64
}

// GraftReport mirrors worker.GraftReport.
type GraftReport struct {
	Grafted int `json:"grafted"`
	Total   int `json:"total"`
	Epochs  []struct {
		Epoch    int     `json:"epoch"`
		Loss     float64 `json:"loss"`
		Accuracy float64 `json:"accuracy"`
		Seconds  float64 `json:"seconds"`
	} `json:"epochs"`
	Seconds float64 `json:"seconds"`
}

func defaultGraft() GraftState {
	return GraftState{Ratio: "0.5", Score: "magnitude", Epochs: "2", TrainEps: "0.026", TrainCount: "2000",
		Eps: "0.026", TestCount: "100"}
}

// Progress is the stage's progress bar value, 0 to 1000.
func (g *GraftState) Progress() int {
	if g.StepMax == 0 {
		return 0
	}
	return 1000 * g.Step / g.StepMax
}

type graftSettings struct {
	ratio, trainEps, eps float64
	epochs, trainCount   int
	testCount, workers   int
}

func (a *App) graftSettings() (graftSettings, error) {
	g := &a.Graft
	var gs graftSettings
	f := func(s, what string, lo, hi float64) (float64, error) {
		v, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
		if err != nil || v < lo || v > hi || math.IsNaN(v) {
			return 0, fmt.Errorf("%s %q: want a number in [%g, %g]", what, s, lo, hi)
		}
		return v, nil
	}
	i := func(s, what string, lo, hi int) (int, error) {
		v, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || v < lo || v > hi {
			return 0, fmt.Errorf("%s %q: want a whole number from %d to %d", what, s, lo, hi)
		}
		return v, nil
	}
	var err error
	if gs.ratio, err = f(g.Ratio, "ratio", 0, 1); err != nil {
		return gs, err
	}
	if gs.trainEps, err = f(g.TrainEps, "training eps", 0, 1); err != nil {
		return gs, err
	}
	if gs.eps, err = f(g.Eps, "certification eps", 0, 1); err != nil {
		return gs, err
	}
	if gs.epochs, err = i(g.Epochs, "epochs", 0, 100); err != nil {
		return gs, err
	}
	if gs.trainCount, err = i(g.TrainCount, "training samples", 1, 2000); err != nil {
		return gs, err
	}
	if gs.testCount, err = i(g.TestCount, "test samples", 1, 100); err != nil {
		return gs, err
	}
	if gs.workers, err = i(a.Workers, "workers", 1, 64); err != nil {
		return gs, err
	}
	return gs, nil
}

// RunGraft grafts the bundled mnist_6_100 in a worker, fine-tunes it on the bundled
// training subset, then certifies the base and the grafted model on the same test
// samples with CROWN.
func (a *App) RunGraft() {
	g := &a.Graft
	if g.Running || a.Running {
		return
	}
	gs, err := a.graftSettings()
	if err != nil {
		g.Err = err.Error()
		return
	}
	g.Running, g.Err, g.Before, g.After, g.Report = true, "", nil, nil, nil
	g.Stage, g.Step, g.StepMax = "loading", 0, 0
	score := g.Score
	prune := g.Prune
	go func() {
		err := a.graft(gs, score, prune)
		a.update(func() {
			g.Running = false
			if err != nil {
				if errCode(err) == "cancelled" {
					g.Err = "Cancelled."
				} else {
					g.Err = err.Error()
				}
				g.Stage = ""
				return
			}
			g.Stage = "done"
		})
	}()
}

func (a *App) graft(gs graftSettings, score string, prune bool) error {
	g := &a.Graft
	const basePath = "demo/mnist_6_100.onnx"
	baseBytes, err := await(a.gc.Call("fetchBundled", basePath))
	if err != nil {
		return err
	}
	base := &modelRef{Key: basePath, Name: "mnist_6_100.onnx", Bytes: baseBytes}
	tx, err := await(a.gc.Call("fetchBundled", "demo/train/mnist_train_X.npy"))
	if err != nil {
		return err
	}
	ty, err := await(a.gc.Call("fetchBundled", "demo/train/mnist_train_y.npy"))
	if err != nil {
		return err
	}
	test, err := a.data(dataMNIST)
	if err != nil {
		return err
	}
	a.update(func() { g.Stage, g.Step, g.StepMax = "scoring neurons", 0, 0 })
	onProgress := js.FuncOf(func(_ js.Value, args []js.Value) any {
		m := args[0]
		stage := m.Get("stage").String()
		ep := m.Get("epoch")
		go a.update(func() {
			switch {
			case stage == "score":
				g.Stage = "scoring neurons"
			case ep.Truthy():
				e, n := ep.Get("epoch").Int(), ep.Get("epochs").Int()
				step, steps := ep.Get("step"), ep.Get("steps")
				g.Loss, g.Acc = ep.Get("loss").Float(), ep.Get("accuracy").Float()
				if step.Truthy() && steps.Truthy() {
					g.Stage = fmt.Sprintf("fine-tuning: epoch %d of %d, step %d of %d", e, n, step.Int(), steps.Int())
					g.Step, g.StepMax = (e-1)*steps.Int()+step.Int(), n*steps.Int()
				} else {
					g.Stage = fmt.Sprintf("fine-tuning: epoch %d of %d done", e, n)
				}
			default:
				g.Stage = "fine-tuning"
			}
		})
		return nil
	})
	defer onProgress.Release()
	opts := object(map[string]any{"ratio": gs.ratio, "score": score, "prune": prune, "epochs": gs.epochs,
		"eps": gs.trainEps, "trainCount": gs.trainCount, "seed": 1})
	r, err := await(a.pool.Call("graft", base.js(), opts, tx, ty, onProgress))
	if err != nil {
		return err
	}
	rep := &GraftReport{}
	if err := decode(r.Get("report"), rep); err != nil {
		return err
	}
	sum := &Summary{}
	if err := decode(r.Get("summary"), sum); err != nil {
		return err
	}
	grafted := &modelRef{Key: a.nextKey("graft"), Name: sum.Name, Bytes: r.Get("bytes"), Summary: sum}
	baseSum := &Summary{}
	if s, err := await(a.pool.Call("prepare", 1, base.js(), js.Null())); err == nil {
		decode(s, baseSum)
	}
	a.update(func() {
		g.Report, g.bytes, g.name, g.model = rep, grafted.Bytes, grafted.Name, grafted
		g.Before = &GraftSide{Name: "mnist_6_100 (base)", Summary: baseSum}
		g.After = &GraftSide{Name: strings.TrimSuffix(sum.Name, ".onnx"), Summary: sum}
	})
	for _, side := range []struct {
		m *modelRef
		s **GraftSide
	}{{base, &g.Before}, {grafted, &g.After}} {
		label := "base"
		if side.m == grafted {
			label = "grafted"
		}
		idx := make([]any, gs.testCount)
		all := make([]any, test.Count)
		for i := range all {
			all[i] = i
			if i < gs.testCount {
				idx[i] = i
			}
		}
		ev, err := await(a.pool.Call("eval", side.m.js(), test.js(), all))
		if err != nil {
			return err
		}
		correct := int(math.Round(ev.Get("accuracy").Float() * float64(test.Count)))
		t0 := a.gc.Call("now").Float()
		rs := runSettings{eps: gs.eps, method: "crown", iterations: 20, workers: gs.workers}
		for i := 0; i < gs.testCount; i++ {
			rs.indices = append(rs.indices, i)
		}
		a.update(func() { g.Stage, g.Step, g.StepMax = "certifying the "+label+" model (CROWN)", 0, gs.testCount })
		samples, err := a.certify(side.m, dataMNIST, rs, func(k int, s Sample, done int) {
			a.update(func() { g.Step = max(g.Step, done) })
		})
		if err != nil {
			return err
		}
		secs := (a.gc.Call("now").Float() - t0) / 1000
		st := Summarize(samples)
		a.update(func() {
			(*side.s).Correct, (*side.s).Tested, (*side.s).Stats, (*side.s).Seconds = correct, test.Count, st, secs
		})
	}
	return nil
}

// UseGrafted makes the grafted model the one the Certify panel uses.
func (a *App) UseGrafted() {
	g := &a.Graft
	if g.model == nil {
		return
	}
	a.Model, a.ModelChoice, a.ModelErr, a.ModelTooBig, a.loadingKey = g.model, "file", "", "", g.model.Key
	a.DataChoice, a.Eps = dataMNIST, g.Eps
}

// DownloadGrafted saves the grafted ONNX file.
func (a *App) DownloadGrafted() {
	if a.Graft.bytes.Truthy() {
		a.gc.Call("download", a.Graft.name, a.Graft.bytes, "application/octet-stream")
	}
}

// GraftChart compares unstable neurons per layer before and after.
func (a *App) GraftChart() Chart {
	g := &a.Graft
	if g.Before == nil || g.After == nil || g.After.Summary == nil {
		return Chart{}
	}
	return UnstableChart(g.After.Summary.ActivationLayers(), g.Before.Stats.MeanUnstable, g.After.Stats.MeanUnstable)
}
