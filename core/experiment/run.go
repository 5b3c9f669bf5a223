package experiment

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"sync"
	"time"

	"github.com/graftcert/graftcert/core/certify"
	"github.com/graftcert/graftcert/core/crown"
	"github.com/graftcert/graftcert/core/graft"
	"github.com/graftcert/graftcert/core/nn"
	"github.com/graftcert/graftcert/core/onnx"
	"github.com/graftcert/graftcert/core/train"
)

// ResultFile is the name of the run's JSON result in the work directory.
const ResultFile = "result.json"

type runner struct {
	cfg         Config
	train, test train.Data
	res         *Result
}

// Run runs the comparison: trainSet trains and calibrates, testSet is evaluated from its
// first sample on (both raw inputs of the network's per-sample size, labels in range).
// The result is also written to Dir/result.json. On error or cancellation it returns the
// rows finished so far with the error; the files in Dir let a run with Resume continue.
func Run(ctx context.Context, cfg Config, trainSet, testSet train.Data) (*Result, error) {
	start := time.Now()
	if err := cfg.check(); err != nil {
		return nil, err
	}
	if cfg.TrainCount > 0 && cfg.TrainCount < trainSet.Len() {
		in := len(trainSet.X) / max(1, trainSet.Len())
		trainSet = train.Data{X: trainSet.X[:cfg.TrainCount*in], Labels: trainSet.Labels[:cfg.TrainCount]}
	}
	if trainSet.Len() == 0 || testSet.Len() == 0 {
		return nil, errors.New("experiment: empty training or test set")
	}
	if err := os.MkdirAll(cfg.Dir, 0o755); err != nil {
		return nil, fmt.Errorf("experiment: %w", err)
	}
	cores := cfg.Workers
	if cores == 0 {
		cores = runtime.GOMAXPROCS(0)
	}
	r := &runner{cfg: cfg, train: trainSet, test: testSet}
	r.res = &Result{Arch: cfg.Arch, Eps: cfg.Eps, Seed: cfg.Seed, Command: cfg.Command, Cores: cores,
		Protocol: Protocol{TrainSamples: trainSet.Len(), TestSamples: testSet.Len(), TrainEpochs: cfg.TrainEpochs,
			FineTuneEpochs: cfg.FineTuneEpochs, Ratios: cfg.Ratios, Score: cfg.Score.String(),
			PerLayer: cfg.PerLayer, Instability: cfg.Instability, Calibration: cfg.Calibration, CleanCount: r.clip(cfg.CleanCount, true),
			PGDCount: r.clip(cfg.PGDCount, false), PGDSteps: cfg.PGDSteps, PGDRestarts: max(1, cfg.PGDRestarts),
			CROWNCount: r.clip(cfg.CROWNCount, false), AlphaCount: r.clip(cfg.AlphaCount, false),
			AlphaIterations: r.alphaIters(), BaselineGiven: cfg.Baseline != nil}}
	if cfg.Complete.Verify != nil && cfg.CompleteCount > 0 {
		p := &r.res.Protocol
		p.CompleteName, p.CompleteCount, p.CompleteTimeout = cfg.Complete.Name, r.clip(cfg.CompleteCount, false), cfg.CompleteTimeout.Seconds()
	}
	if cfg.Baseline != nil && r.res.Arch == "" {
		r.res.Arch = "given"
	}
	err := r.run(ctx)
	r.res.WallSeconds = time.Since(start).Seconds()
	if werr := writeJSONFile(filepath.Join(cfg.Dir, ResultFile), r.res); werr != nil && err == nil {
		err = werr
	}
	return r.res, err
}

func (r *runner) clip(n int, zeroIsAll bool) int {
	if n == 0 && zeroIsAll {
		return r.test.Len()
	}
	return min(n, r.test.Len())
}

func (r *runner) alphaIters() int {
	if r.cfg.AlphaIterations == 0 {
		return 20
	}
	return r.cfg.AlphaIterations
}

func (r *runner) logf(format string, args ...any) {
	if r.cfg.Log != nil {
		r.cfg.Log(fmt.Sprintf(format, args...))
	}
}

func (r *runner) run(ctx context.Context) error {
	base, err := r.model(ctx, "baseline", 0, nil)
	if err != nil {
		return err
	}
	r.res.Layers = layerNames(base)
	idx := graft.Calibration(r.train.Len(), r.cfg.Calibration, r.cfg.Seed)
	in := base.InSize()
	X := make([]float64, 0, len(idx)*in)
	y := make([]int, 0, len(idx))
	for _, i := range idx {
		X = append(X, r.train.X[i*in:(i+1)*in]...)
		y = append(y, r.train.Labels[i])
	}
	scores, err := graft.Scores(ctx, base, X, len(idx), r.cfg.Score, y)
	if err != nil {
		return fmt.Errorf("experiment: scoring the baseline: %w", err)
	}
	if r.cfg.Instability > 0 {
		counts, err := unstableCounts(ctx, base, X, y, r.cfg.Eps, r.cfg.Jobs)
		if err != nil {
			return fmt.Errorf("experiment: instability of the baseline: %w", err)
		}
		mean := make([]float64, len(counts))
		for l, c := range counts {
			for _, v := range c {
				mean[l] += v / float64(len(y))
			}
		}
		r.logf("baseline: unstable neurons per calibration image under CROWN at eps %g: %s", r.cfg.Eps, fmtFloats(mean, 1))
		if scores, err = graft.InstabilityAware(scores, counts, len(y), r.cfg.Instability); err != nil {
			return fmt.Errorf("experiment: %w", err)
		}
	}
	for _, ratio := range r.cfg.Ratios {
		masks, err := graft.Mask(scores, ratio, r.cfg.PerLayer)
		if err != nil {
			return fmt.Errorf("experiment: %w", err)
		}
		for _, kind := range []string{"pruned", "grafted"} {
			build := func() (*nn.Network, error) {
				return graft.Apply(base, masks, graft.Options{Slope: graft.DefaultOptions().Slope, Prune: kind == "pruned"})
			}
			if _, err := r.model(ctx, kind, ratio, build); err != nil {
				return err
			}
		}
	}
	return nil
}

func layerNames(net *nn.Network) []string {
	var names []string
	for _, i := range net.Activations() {
		names = append(names, net.Layers[i].Name())
	}
	return names
}

func rowName(kind string, ratio float64) string {
	if kind == "baseline" {
		return kind
	}
	return kind + "-" + strconv.FormatFloat(ratio, 'f', -1, 64)
}

// model obtains one model — reused from Dir, or built (nil build: the baseline) and
// fitted — saves it, evaluates it and appends its row.
func (r *runner) model(ctx context.Context, kind string, ratio float64, build func() (*nn.Network, error)) (*nn.Network, error) {
	name := rowName(kind, ratio)
	onnxPath := filepath.Join(r.cfg.Dir, name+".onnx")
	jsonPath := filepath.Join(r.cfg.Dir, name+".json")
	mkey := r.cfg.modelKey(kind, ratio)
	var row Row
	var net *nn.Network
	if r.cfg.Resume {
		var old Row
		if b, err := os.ReadFile(jsonPath); err == nil && json.Unmarshal(b, &old) == nil && old.ModelKey == mkey {
			if n, err := onnx.DecodeFile(onnxPath); err == nil {
				net, row = n, old
				row.Fit.Reused = true
				r.logf("%s: reusing %s", name, onnxPath)
			}
		}
	}
	if net == nil {
		row = Row{Model: name, Kind: kind, Ratio: ratio, ModelKey: mkey}
		fresh, fit, err := r.fit(ctx, name, kind, build)
		if err != nil {
			return nil, err
		}
		row.Fit = fit
		// The models are evaluated as the ONNX files hold them (float32 weights), so that
		// anyone re-checking a file gets the report's numbers.
		if err := onnx.EncodeFile(onnxPath, fresh); err != nil {
			return nil, fmt.Errorf("experiment: saving %s: %w", name, err)
		}
		if net, err = onnx.DecodeFile(onnxPath); err != nil {
			return nil, fmt.Errorf("experiment: re-reading %s: %w", name, err)
		}
		if err := writeJSONFile(jsonPath, row); err != nil {
			return nil, err
		}
	}
	row.Grafted, row.Neurons = graftedPerLayer(net)
	if err := r.evaluate(ctx, name, net, &row, jsonPath); err != nil {
		return nil, err
	}
	r.res.Rows = append(r.res.Rows, row)
	return net, nil
}

func graftedPerLayer(net *nn.Network) (grafted, neurons []int) {
	for _, i := range net.Activations() {
		act := net.Layers[i].(nn.Activation)
		g := 0
		if m, ok := net.Layers[i].(*nn.MaskedReLU); ok {
			g = m.NumGrafted()
		}
		grafted = append(grafted, g)
		neurons = append(neurons, act.Neurons())
	}
	return grafted, neurons
}

// fit trains the baseline or builds and fine-tunes a grafted/pruned model. On
// cancellation the weights reached so far are written to Dir/<name>.partial.onnx.
func (r *runner) fit(ctx context.Context, name, kind string, build func() (*nn.Network, error)) (*nn.Network, Fit, error) {
	cfg := &r.cfg
	var net *nn.Network
	var o train.Options
	var err error
	if kind == "baseline" {
		if cfg.Baseline != nil {
			r.logf("baseline: given")
			return cfg.Baseline.Clone(), Fit{}, nil
		}
		if net, err = train.Architecture(cfg.Arch, cfg.Seed); err != nil {
			return nil, Fit{}, err
		}
		o = train.DefaultTrain(cfg.Eps)
		o.Epochs = cfg.TrainEpochs
	} else {
		if net, err = build(); err != nil {
			return nil, Fit{}, fmt.Errorf("experiment: %s: %w", name, err)
		}
		o = train.DefaultFineTune(cfg.Eps)
		o.Epochs = cfg.FineTuneEpochs
		o.FreezeActivations = kind == "pruned"
		g, n := graftedPerLayer(net)
		r.logf("%s: %d of %d neurons %s (per layer %v of %v)", name, sum(g), sum(n), kind, g, n)
	}
	o.Seed, o.Workers = cfg.Seed, cfg.Workers
	start := time.Now()
	hist, err := train.Train(ctx, net, r.train, o, func(e train.Epoch) {
		r.logf("%s: epoch %d/%d loss %.4f (ce %.4f, reg %.4f) train acc %.4f, %.1f s, %.0f samples/s",
			name, e.Epoch, e.Epochs, e.Loss, e.CE, e.Reg, e.Accuracy, e.Seconds, float64(e.Samples)/e.Seconds)
	})
	if err != nil {
		if ctx.Err() != nil {
			p := filepath.Join(cfg.Dir, name+".partial.onnx")
			if werr := onnx.EncodeFile(p, net); werr == nil {
				err = fmt.Errorf("%w (weights after the last full step saved to %s)", err, p)
			}
		}
		return nil, Fit{}, fmt.Errorf("experiment: %s: %w", name, err)
	}
	f := Fit{Epochs: len(hist), Seconds: time.Since(start).Seconds()}
	for _, e := range hist {
		f.Samples += e.Samples
	}
	if len(hist) > 0 {
		f.FinalLoss, f.FinalAcc = hist[len(hist)-1].Loss, hist[len(hist)-1].Accuracy
	}
	return net, f, nil
}

func sum(v []int) int {
	s := 0
	for _, x := range v {
		s += x
	}
	return s
}

func (r *runner) head(n int) train.Data {
	in := len(r.test.X) / r.test.Len()
	n = min(n, r.test.Len())
	return train.Data{X: r.test.X[:n*in], Labels: r.test.Labels[:n]}
}

// evaluate fills row's measurements, column by column, saving the row to jsonPath after
// each. A column whose settings match those it was measured with (row.Keys, from a
// resumed run) is kept as it is.
func (r *runner) evaluate(ctx context.Context, name string, net *nn.Network, row *Row, jsonPath string) error {
	cfg, p := &r.cfg, &r.res.Protocol
	keys := cfg.evalKeys(p)
	old := row.Keys
	row.Keys = map[string]string{}
	step := func(col string, wanted bool, measure func() error) error {
		if !wanted {
			return nil
		}
		if old[col] == keys[col] {
			row.Keys[col] = keys[col]
			return nil
		}
		if err := measure(); err != nil {
			return fmt.Errorf("experiment: %s: %w", name, err)
		}
		row.Keys[col] = keys[col]
		return writeJSONFile(jsonPath, row)
	}
	err := step("clean", true, func() error {
		t := time.Now()
		m, err := train.Evaluate(ctx, net, r.head(p.CleanCount), cfg.Workers)
		if err != nil {
			return err
		}
		row.Clean = Accuracy{Correct: m.Correct, Total: m.N, Seconds: time.Since(t).Seconds()}
		r.logf("%s: clean accuracy %.4f (%d images)", name, m.Accuracy, m.N)
		return nil
	})
	if err != nil {
		return err
	}
	if p.PGDCount == 0 {
		row.PGD = Accuracy{}
	}
	err = step("pgd", p.PGDCount > 0, func() error {
		t := time.Now()
		m, err := train.PGDAccuracy(ctx, net, r.head(p.PGDCount), train.PGD{Eps: cfg.Eps, Steps: cfg.PGDSteps,
			Restarts: p.PGDRestarts, Seed: cfg.Seed, Workers: cfg.Workers})
		if err != nil {
			return err
		}
		row.PGD = Accuracy{Correct: m.Correct, Total: m.N, Seconds: time.Since(t).Seconds()}
		r.logf("%s: PGD-%d accuracy %.4f (%d images, %.1f s)", name, cfg.PGDSteps, m.Accuracy, m.N, row.PGD.Seconds)
		return nil
	})
	if err != nil {
		return err
	}
	if p.CROWNCount == 0 {
		row.CROWN = nil
	}
	err = step("crown", p.CROWNCount > 0, func() (err error) {
		row.CROWN, err = r.bounds(ctx, name, net, crown.CROWN, p.CROWNCount)
		return err
	})
	if err != nil {
		return err
	}
	if p.AlphaCount == 0 {
		row.Alpha = nil
	}
	err = step("alpha", p.AlphaCount > 0, func() (err error) {
		row.Alpha, err = r.bounds(ctx, name, net, crown.AlphaCROWN, p.AlphaCount)
		return err
	})
	if err != nil {
		return err
	}
	if p.CompleteCount == 0 {
		row.Complete = nil
	}
	return step("complete", p.CompleteCount > 0, func() (err error) {
		row.Complete, err = r.complete(ctx, name, net, p.CompleteCount)
		return err
	})
}

func (r *runner) bounds(ctx context.Context, name string, net *nn.Network, method crown.Method, n int) (*Verification, error) {
	idx := make([]int, n)
	for i := range idx {
		idx[i] = i
	}
	opts := certify.Options{Eps: r.cfg.Eps, Jobs: r.cfg.Jobs, Bound: crown.Options{Method: method, Iterations: r.alphaIters()}}
	rep, err := certify.Run(ctx, net, name, r.test.X, r.test.Labels, idx, opts, nil)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", method, err)
	}
	v := &Verification{Method: string(method), Verified: rep.Verified, Total: rep.Total, Seconds: rep.Seconds}
	for _, s := range rep.Samples {
		worst := s.MarginLB[0]
		for _, lb := range s.MarginLB {
			worst = min(worst, lb)
		}
		v.MeanMarginLB += worst / float64(n)
		v.PerSample += s.Seconds / float64(n)
		if v.Unstable == nil {
			v.Unstable = make([]float64, len(s.Unstable))
		}
		for l, u := range s.Unstable {
			v.Unstable[l] += float64(u) / float64(n)
		}
	}
	r.logf("%s: %s verified %d/%d, mean worst margin lb %.3f, unstable %s, %.1f s (%.3f s/sample)",
		name, method, v.Verified, v.Total, v.MeanMarginLB, fmtFloats(v.Unstable, 1), v.Seconds, v.PerSample)
	return v, nil
}

func (r *runner) complete(ctx context.Context, name string, net *nn.Network, n int) (*Complete, error) {
	cv := r.cfg.Complete
	c := &Complete{Verifier: cv.Name, Total: n, Timeout: r.cfg.CompleteTimeout.Seconds()}
	start := time.Now()
	in := net.InSize()
	jobs := r.cfg.Jobs
	if jobs <= 0 {
		jobs = runtime.GOMAXPROCS(0)
	}
	verdicts := make([]Verdict, n)
	secs := make([]float64, n)
	errs := make([]error, n)
	next := make(chan int)
	var wg sync.WaitGroup
	for w := 0; w < min(jobs, n); w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				t := time.Now()
				x, label := r.test.X[i*in:(i+1)*in], r.test.Labels[i]
				if nn.Argmax(net.Forward(x)) != label {
					verdicts[i] = Misclassified
				} else {
					verdicts[i], errs[i] = cv.Verify(ctx, net, x, label, r.cfg.Eps, r.cfg.CompleteTimeout)
				}
				secs[i] = time.Since(t).Seconds()
			}
		}()
	}
feed:
	for i := 0; i < n; i++ {
		select {
		case next <- i:
		case <-ctx.Done():
			break feed
		}
	}
	close(next)
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("complete verification: %w", err)
	}
	for i, v := range verdicts {
		if errs[i] != nil {
			return nil, fmt.Errorf("complete verification of test image %d: %w", i, errs[i])
		}
		switch v {
		case Verified:
			c.Verified++
		case Falsified:
			c.Falsified++
		case Misclassified:
			c.Misclassified++
		default:
			c.Unknown++
		}
		c.PerSample += secs[i] / float64(n)
	}
	c.Seconds = time.Since(start).Seconds()
	r.logf("%s: %s verified %d, falsified %d, unknown %d, misclassified %d of %d, %.1f s",
		name, cv.Name, c.Verified, c.Falsified, c.Unknown, c.Misclassified, n, c.Seconds)
	return c, nil
}

func fmtFloats(v []float64, prec int) string {
	s := "["
	for i, x := range v {
		if i > 0 {
			s += " "
		}
		s += strconv.FormatFloat(x, 'f', prec, 64)
	}
	return s + "]"
}

func writeJSONFile(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return fmt.Errorf("experiment: %w", err)
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("experiment: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("experiment: %w", err)
	}
	return nil
}

// ReadResult reads a run's result.json from dir.
func ReadResult(dir string) (*Result, error) {
	b, err := os.ReadFile(filepath.Join(dir, ResultFile))
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("experiment: no %s in %s", ResultFile, dir)
		}
		return nil, fmt.Errorf("experiment: %w", err)
	}
	var res Result
	if err := json.Unmarshal(b, &res); err != nil {
		return nil, fmt.Errorf("experiment: %s: %w", filepath.Join(dir, ResultFile), err)
	}
	return &res, nil
}
