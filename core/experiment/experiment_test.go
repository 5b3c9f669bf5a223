package experiment

import (
	"context"
	"encoding/json"
	"encoding/xml"
	"errors"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/graftcert/graftcert/core/certify"
	"github.com/graftcert/graftcert/core/data"
	"github.com/graftcert/graftcert/core/nn"
	"github.com/graftcert/graftcert/core/onnx"
	"github.com/graftcert/graftcert/core/train"
)

// smallMLP is a 784→24→24→10 ReLU network with He-initialised weights: small enough that
// a whole run takes seconds.
func smallMLP(t *testing.T) *nn.Network {
	t.Helper()
	dense := func(name string, in, out int) nn.Layer {
		return &nn.Dense{NodeName: name, In: in, Out: out, W: make([]float64, in*out), B: make([]float64, out)}
	}
	net, err := nn.New(nn.Shape{1, 28, 28}, []nn.Layer{&nn.Reshape{NodeName: "flatten", To: nn.Shape{784}},
		dense("fc1", 784, 24), &nn.ReLU{NodeName: "relu1"}, dense("fc2", 24, 24), &nn.ReLU{NodeName: "relu2"}, dense("fc3", 24, 10)})
	if err != nil {
		t.Fatal(err)
	}
	train.Init(net, 5)
	return net
}

func mnist(t *testing.T, nTrain, nTest int) (train.Data, train.Data) {
	t.Helper()
	X, y, err := data.LoadMNIST("train")
	if err != nil {
		t.Fatal(err)
	}
	Xt, yt, err := data.LoadMNIST("test")
	if err != nil {
		t.Fatal(err)
	}
	return train.Data{X: X[:nTrain*784], Labels: y[:nTrain]}, train.Data{X: Xt[:nTest*784], Labels: yt[:nTest]}
}

func tinyConfig(dir string, base *nn.Network) Config {
	c := Default()
	c.Baseline = base
	c.Arch = "small"
	c.Eps = 0.02
	c.FineTuneEpochs = 1
	c.Ratios = []float64{0.5}
	c.Calibration = 100
	c.CleanCount, c.PGDCount, c.PGDSteps = 200, 40, 3
	c.CROWNCount, c.AlphaCount, c.AlphaIterations = 30, 4, 3
	c.Dir = dir
	return c
}

// stripTimes zeroes the timing fields so that two runs can be compared.
func stripTimes(rows []Row) []Row {
	out := make([]Row, len(rows))
	for i, r := range rows {
		r.Fit.Seconds, r.Fit.Reused = 0, false
		r.Clean.Seconds, r.PGD.Seconds = 0, 0
		for _, v := range []**Verification{&r.CROWN, &r.Alpha} {
			if *v != nil {
				c := **v
				c.Seconds, c.PerSample = 0, 0
				*v = &c
			}
		}
		out[i] = r
	}
	return out
}

// A small run end to end. Its bookkeeping is checked against independent calls on the
// saved ONNX files (accuracy, verified counts, grafted neurons); then a run interrupted
// during fine-tuning keeps a checkpoint, and resuming it gives the rows of the
// uninterrupted run exactly (the pipeline is seeded), reusing the finished models.
func TestRunBookkeepingAndResume(t *testing.T) {
	ctx := context.Background()
	trainSet, testSet := mnist(t, 600, 200)
	base := smallMLP(t)
	o := train.DefaultTrain(0.02)
	o.Epochs, o.BatchSize = 2, 64
	if _, err := train.Train(ctx, base, trainSet, o, nil); err != nil {
		t.Fatal(err)
	}

	dir := t.TempDir()
	res, err := Run(ctx, tinyConfig(dir, base), trainSet, testSet)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Rows) != 3 || res.Rows[0].Model != "baseline" || res.Rows[1].Model != "pruned-0.5" || res.Rows[2].Model != "grafted-0.5" {
		t.Fatalf("rows %+v", res.Rows)
	}
	if strings.Join(res.Layers, ",") != "relu1,relu2" {
		t.Errorf("layers %v", res.Layers)
	}
	for _, row := range res.Rows {
		net, err := onnx.DecodeFile(filepath.Join(dir, row.Model+".onnx"))
		if err != nil {
			t.Fatal(err)
		}
		m, _ := train.Evaluate(ctx, net, testSet, 1)
		if row.Clean.Correct != m.Correct || row.Clean.Total != 200 {
			t.Errorf("%s: clean %d/%d, the file gives %d/200", row.Model, row.Clean.Correct, row.Clean.Total, m.Correct)
		}
		idx := make([]int, 30)
		for i := range idx {
			idx[i] = i
		}
		rep, err := certify.Run(ctx, net, row.Model, testSet.X, testSet.Labels, idx, certify.Options{Eps: 0.02, Jobs: 1}, nil)
		if err != nil {
			t.Fatal(err)
		}
		if row.CROWN.Verified != rep.Verified || row.CROWN.Total != 30 {
			t.Errorf("%s: CROWN %d/%d, the file gives %d/30", row.Model, row.CROWN.Verified, row.CROWN.Total, rep.Verified)
		}
		if row.Alpha.Total != 4 || row.Alpha.Verified > 4 || row.PGD.Total != 40 || row.PGD.Correct > m.Correct {
			t.Errorf("%s: alpha %+v PGD %+v", row.Model, row.Alpha, row.PGD)
		}
		want := 0
		if row.Kind != "baseline" {
			want = 24 // half of the 48 neurons
		}
		if sum(row.Grafted) != want || sum(row.Neurons) != 48 {
			t.Errorf("%s: grafted %v of %v, want %d of 48", row.Model, row.Grafted, row.Neurons, want)
		}
	}
	if g := res.Find("grafted", 0.5); g.Fit.Epochs != 1 || g.Fit.Samples != 600 {
		t.Errorf("grafted fit %+v", g.Fit)
	}
	saved, err := ReadResult(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(saved.Rows) != 3 {
		t.Errorf("result.json has %d rows", len(saved.Rows))
	}

	// Interrupt during the grafted model's fine-tuning, then resume.
	dir2 := t.TempDir()
	cctx, cancel := context.WithCancel(ctx)
	defer cancel()
	cfg := tinyConfig(dir2, base)
	cfg.FineTuneEpochs = 2
	cfg.Log = func(line string) {
		if strings.HasPrefix(line, "grafted-0.5: epoch 1/2") {
			cancel()
		}
	}
	part, err := Run(cctx, cfg, trainSet, testSet)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("interrupted run: %v", err)
	}
	if len(part.Rows) != 2 {
		t.Errorf("interrupted run kept %d rows, want baseline and pruned", len(part.Rows))
	}
	if _, err := onnx.DecodeFile(filepath.Join(dir2, "grafted-0.5.partial.onnx")); err != nil {
		t.Errorf("checkpoint: %v", err)
	}
	var logs []string
	cfg.Log = func(line string) { logs = append(logs, line) }
	cfg.Resume = true
	resumed, err := Run(ctx, cfg, trainSet, testSet)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Resume, cfg.Log, cfg.Dir = false, nil, t.TempDir()
	whole, err := Run(ctx, cfg, trainSet, testSet)
	if err != nil {
		t.Fatal(err)
	}
	a, _ := json.Marshal(stripTimes(resumed.Rows))
	b, _ := json.Marshal(stripTimes(whole.Rows))
	if string(a) != string(b) {
		t.Errorf("resumed run differs from an uninterrupted one:\n%s\n%s", a, b)
	}
	joined := strings.Join(logs, "\n")
	if !strings.Contains(joined, "baseline: reusing") || !strings.Contains(joined, "pruned-0.5: reusing") || strings.Contains(joined, "pruned-0.5: epoch") {
		t.Errorf("resume did not reuse the finished models:\n%s", joined)
	}
}

// A hand-made result: the report states the goal check from its numbers, and the figures
// are well-formed SVG naming what they draw.
func TestRenderHandMadeResult(t *testing.T) {
	ver := func(m string, k, n int, unstable ...float64) *Verification {
		return &Verification{Method: m, Verified: k, Total: n, Unstable: unstable, MeanMarginLB: -1}
	}
	res := &Result{Arch: "mlp-6x100", Eps: 0.1, Seed: 1, Command: "graftcert experiment --x 1", Layers: []string{"relu1", "relu2"}, Cores: 2, WallSeconds: 3725,
		Protocol: Protocol{TrainEpochs: 20, FineTuneEpochs: 10, Ratios: []float64{0.3, 0.5}, Score: "magnitude", Calibration: 1000,
			CleanCount: 10000, PGDCount: 10000, PGDSteps: 20, PGDRestarts: 1, CROWNCount: 1000, AlphaCount: 200, AlphaIterations: 20},
		Rows: []Row{
			{Model: "baseline", Kind: "baseline", Grafted: []int{0, 0}, Neurons: []int{100, 100}, Clean: Accuracy{Correct: 9800, Total: 10000},
				CROWN: ver("crown", 50, 1000, 80, 90), Alpha: ver("alpha-crown", 20, 200, 70, 80),
				Fit: Fit{Epochs: 20, Samples: 1200000, Seconds: 600}},
			{Model: "pruned-0.3", Kind: "pruned", Ratio: 0.3, Grafted: []int{10, 50}, Neurons: []int{100, 100}, Clean: Accuracy{Correct: 9000, Total: 10000},
				CROWN: ver("crown", 100, 1000, 60, 20), Alpha: ver("alpha-crown", 30, 200, 50, 20)},
			{Model: "grafted-0.3", Kind: "grafted", Ratio: 0.3, Grafted: []int{10, 50}, Neurons: []int{100, 100}, Clean: Accuracy{Correct: 9790, Total: 10000},
				CROWN: ver("crown", 200, 1000, 60, 20), Alpha: ver("alpha-crown", 50, 200, 50, 20)},
			{Model: "pruned-0.5", Kind: "pruned", Ratio: 0.5, Grafted: []int{30, 70}, Neurons: []int{100, 100}, Clean: Accuracy{Correct: 5000, Total: 10000},
				CROWN: ver("crown", 300, 1000, 40, 10), Alpha: ver("alpha-crown", 80, 200, 30, 10)},
			{Model: "grafted-0.5", Kind: "grafted", Ratio: 0.5, Grafted: []int{30, 70}, Neurons: []int{100, 100}, Clean: Accuracy{Correct: 9650, Total: 10000},
				CROWN: ver("crown", 240, 1000, 40, 10), Alpha: ver("alpha-crown", 90, 200, 30, 10)},
		}}
	md := Markdown(res, "## Discussion\n\nhand-written")
	for _, want := range []string{
		"graftcert experiment --x 1",
		"| grafted | 0.5 | 100 / 200 | 96.5 | 0.0 | 24.0 (240/1000) | 45.0 (90/200) |",
		// clean 98.0 → 96.5 is 1.5 points, within the 2 allowed
		"Clean accuracy: baseline 98.0%, grafted 96.5% → -1.50 points (goal: loss ≤ 2): **yes**",
		// CROWN 5.0 → 24.0 is +19.0: not 20; pruning verifies 30.0 > 24.0
		"Verified accuracy (CROWN): baseline 5.0%, grafted 24.0% → +19.0 points (goal ≥ 20): **no**; pruned 30.0% → grafted beats pruning: **no**",
		// α-CROWN 10.0 → 45.0 is +35.0; pruning 40.0 < 45.0
		"Verified accuracy (α-CROWN): baseline 10.0%, grafted 45.0% → +35.0 points (goal ≥ 20): **yes**; pruned 40.0% → grafted beats pruning: **yes**",
		"| baseline | — | 80.0 | 90.0 | 170.0 |",
		"Wall time of the run: 1 h 02 min 05 s on 2 core(s).",
		"| baseline | 20 | 1200000 | 600 | 2000 | 1000 |",
		"Complete verification (branch and bound) was not available",
		"hand-written",
		"| 0.5 | -1.5 / -48.0 | +19.0 / +25.0 | +35.0 / +30.0 |",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("report lacks %q", want)
		}
	}
	if strings.Contains(md, "verified % complete") {
		t.Error("complete column without complete results")
	}
	if strings.Contains(md, "collapsed") {
		t.Error("a model flagged as collapsed at 50% clean accuracy")
	}
	res.Rows[3].Clean.Correct = 1500
	if !strings.Contains(Markdown(res, ""), "**pruned 0.5 has collapsed**: clean accuracy 15.0%") {
		t.Error("a model at 15% clean accuracy is not flagged")
	}
	res.Rows[3].Clean.Correct = 5000

	dir := t.TempDir()
	if err := Render(dir, res, ""); err != nil {
		t.Fatal(err)
	}
	for file, labels := range map[string][]string{
		VerifiedFigure: {"grafted, verified, CROWN", "pruned, verified, α-CROWN", "grafted, clean"},
		UnstableFigure: {"baseline", "pruned 0.5", "grafted 0.3", "grafted 0.5", "relu2"},
	} {
		b, err := os.ReadFile(filepath.Join(dir, file))
		if err != nil {
			t.Fatal(err)
		}
		dec := xml.NewDecoder(strings.NewReader(string(b)))
		for {
			if _, err := dec.Token(); err != nil {
				if err != io.EOF {
					t.Fatalf("%s is not well-formed XML: %v", file, err)
				}
				break
			}
		}
		for _, l := range labels {
			if !strings.Contains(string(b), l) {
				t.Errorf("%s does not show %q", file, l)
			}
		}
	}
	if _, err := os.Stat(filepath.Join(dir, ReportFile)); err != nil {
		t.Error(err)
	}
}

func TestConfigErrors(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		change func(*Config)
		want   string
	}{
		{func(c *Config) { c.Arch = "vgg" }, "unknown architecture"},
		{func(c *Config) { c.Eps = 0 }, "eps"},
		{func(c *Config) { c.Ratios = []float64{0.5, 1} }, "ratio 1"},
		{func(c *Config) { c.Ratios = []float64{0.5, 0.3} }, "must increase"},
		{func(c *Config) { c.Ratios = nil }, "no ratios"},
		{func(c *Config) { c.Calibration = 0 }, "calibration"},
		{func(c *Config) { c.CROWNCount = -1 }, "≥ 0"},
		{func(c *Config) { c.Dir = "" }, "work directory"},
		{func(c *Config) {
			c.Complete = CompleteVerifier{Name: "x", Verify: func(context.Context, *nn.Network, []float64, int, float64, time.Duration) (Verdict, error) {
				return Unknown, nil
			}}
			c.CompleteTimeout = 0
		}, "timeout"},
	} {
		c := Default()
		c.Dir = dir
		tc.change(&c)
		_, err := Run(context.Background(), c, train.Data{}, train.Data{})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("error %v, want %q", err, tc.want)
		}
	}
}

// The complete column tallies the verifier's verdicts, and images the network gets wrong
// are counted misclassified without asking the verifier.
func TestCompleteTally(t *testing.T) {
	ctx := context.Background()
	trainSet, testSet := mnist(t, 300, 60)
	base := smallMLP(t)
	o := train.DefaultTrain(0.02)
	o.Epochs, o.BatchSize = 2, 64
	if _, err := train.Train(ctx, base, trainSet, o, nil); err != nil {
		t.Fatal(err)
	}
	cfg := tinyConfig(t.TempDir(), base)
	cfg.FineTuneEpochs = 0
	cfg.CROWNCount, cfg.AlphaCount, cfg.PGDCount = 0, 0, 0
	cfg.CompleteCount, cfg.CompleteTimeout = 40, time.Second
	var asked atomic.Int32
	cfg.Complete = CompleteVerifier{Name: "by label", Verify: func(_ context.Context, _ *nn.Network, _ []float64, label int, eps float64, timeout time.Duration) (Verdict, error) {
		asked.Add(1)
		if eps != 0.02 || timeout != time.Second {
			return "", errors.New("wrong eps or timeout")
		}
		switch label % 3 {
		case 0:
			return Verified, nil
		case 1:
			return Falsified, nil
		}
		return Unknown, nil
	}}
	res, err := Run(ctx, cfg, trainSet, testSet)
	if err != nil {
		t.Fatal(err)
	}
	for _, row := range res.Rows {
		net, _ := onnx.DecodeFile(filepath.Join(cfg.Dir, row.Model+".onnx"))
		var want Complete
		for i := 0; i < 40; i++ {
			l := testSet.Labels[i]
			switch {
			case nn.Argmax(net.Forward(testSet.X[i*784:(i+1)*784])) != l:
				want.Misclassified++
			case l%3 == 0:
				want.Verified++
			case l%3 == 1:
				want.Falsified++
			default:
				want.Unknown++
			}
		}
		c := row.Complete
		if c == nil || c.Verified != want.Verified || c.Falsified != want.Falsified || c.Unknown != want.Unknown ||
			c.Misclassified != want.Misclassified || c.Total != 40 || c.Verifier != "by label" {
			t.Errorf("%s: complete %+v, want %+v", row.Model, c, want)
		}
	}
	if n := int(asked.Load()); n == 0 || n > 3*40 {
		t.Errorf("verifier asked %d times", n)
	}
	if !strings.Contains(Markdown(res, ""), "verified % complete (falsified / unknown)") {
		t.Error("report lacks the complete column")
	}
}

// The core/bab adapter at a vanishing radius: a correctly classified image is verified,
// a misclassified one is reported so.
func TestBaBAdapterTinyRadius(t *testing.T) {
	trainSet, testSet := mnist(t, 300, 20)
	net := smallMLP(t)
	o := train.DefaultTrain(0.02)
	o.Epochs, o.BatchSize = 2, 64
	if _, err := train.Train(context.Background(), net, trainSet, o, nil); err != nil {
		t.Fatal(err)
	}
	v := BaB()
	seen := map[Verdict]int{}
	for i := 0; i < 20; i++ {
		x := testSet.X[i*784 : (i+1)*784]
		got, err := v.Verify(context.Background(), net, x, testSet.Labels[i], 1e-7, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		want := Verified
		if nn.Argmax(net.Forward(x)) != testSet.Labels[i] {
			want = Misclassified
		}
		if got != want {
			t.Errorf("image %d: %s, want %s", i, got, want)
		}
		seen[got]++
	}
	t.Logf("verdicts %v", seen)
}

// Resuming with one more column measures only that column: models and the other
// columns are reused.
func TestResumeAddsOnlyNewColumn(t *testing.T) {
	ctx := context.Background()
	trainSet, testSet := mnist(t, 300, 60)
	cfg := tinyConfig(t.TempDir(), smallMLP(t))
	cfg.FineTuneEpochs, cfg.AlphaCount = 0, 0
	first, err := Run(ctx, cfg, trainSet, testSet)
	if err != nil {
		t.Fatal(err)
	}
	var logs []string
	cfg.Log = func(line string) { logs = append(logs, line) }
	cfg.Resume = true
	cfg.CompleteCount, cfg.CompleteTimeout = 10, time.Second
	cfg.Complete = CompleteVerifier{Name: "stub", Verify: func(context.Context, *nn.Network, []float64, int, float64, time.Duration) (Verdict, error) {
		return Unknown, nil
	}}
	second, err := Run(ctx, cfg, trainSet, testSet)
	if err != nil {
		t.Fatal(err)
	}
	joined := strings.Join(logs, "\n")
	if strings.Count(joined, ": reusing ") != 3 || strings.Contains(joined, "clean accuracy") || strings.Contains(joined, "crown verified") ||
		strings.Count(joined, "stub verified") != 3 {
		t.Errorf("resume log:\n%s", joined)
	}
	for i := range second.Rows {
		a, b := first.Rows[i], second.Rows[i]
		if a.Clean != b.Clean || !reflect.DeepEqual(a.CROWN, b.CROWN) || b.Complete == nil || b.Complete.Total != 10 {
			t.Errorf("%s: first %+v, resumed %+v", a.Model, a, b)
		}
	}
}

// The per-neuron instability tally agrees with the per-layer unstable counts that
// certification reports for the same images, and a run with the instability-aware score
// logs the tally and keys its models apart.
func TestInstabilityCounts(t *testing.T) {
	ctx := context.Background()
	trainSet, testSet := mnist(t, 300, 40)
	base := smallMLP(t)
	o := train.DefaultTrain(0.02)
	o.Epochs, o.BatchSize = 2, 64
	if _, err := train.Train(ctx, base, trainSet, o, nil); err != nil {
		t.Fatal(err)
	}
	const n = 25
	counts, err := unstableCounts(ctx, base, testSet.X[:n*784], testSet.Labels[:n], 0.02, 2)
	if err != nil {
		t.Fatal(err)
	}
	idx := make([]int, n)
	for i := range idx {
		idx[i] = i
	}
	rep, err := certify.Run(ctx, base, "small", testSet.X, testSet.Labels, idx, certify.Options{Eps: 0.02, Jobs: 1}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(counts) != 2 || len(counts[0]) != 24 || len(counts[1]) != 24 {
		t.Fatalf("tally shape %d layers", len(counts))
	}
	for l := range counts {
		want := 0
		for _, s := range rep.Samples {
			want += s.Unstable[l]
		}
		got := 0.0
		for _, v := range counts[l] {
			if v < 0 || v > n {
				t.Fatalf("layer %d: count %v", l, v)
			}
			got += v
		}
		if got != float64(want) {
			t.Errorf("layer %d: tally sums to %v, certification counts %d", l, got, want)
		}
		if want == 0 {
			t.Errorf("layer %d: no unstable neuron at all; the check is vacuous", l)
		}
	}

	cfg := tinyConfig(t.TempDir(), base)
	cfg.FineTuneEpochs, cfg.AlphaCount, cfg.PGDCount = 0, 0, 0
	cfg.Instability = 1
	var logs []string
	cfg.Log = func(line string) { logs = append(logs, line) }
	res, err := Run(ctx, cfg, trainSet, testSet)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(strings.Join(logs, "\n"), "unstable neurons per calibration image under CROWN") ||
		!strings.Contains(res.Rows[2].ModelKey, "instability=1") || !strings.Contains(Markdown(res, ""), "Instability-aware scores") {
		t.Errorf("instability run: key %q, logs %v", res.Rows[2].ModelKey, logs)
	}
}
