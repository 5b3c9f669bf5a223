package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/graftcert/graftcert/core/data"
	"github.com/graftcert/graftcert/core/experiment"
	"github.com/graftcert/graftcert/core/graft"
	"github.com/graftcert/graftcert/core/onnx"
	"github.com/graftcert/graftcert/core/train"
)

func init() {
	register("experiment", "run the Linearity Grafting paper's comparison on MNIST: Markdown report + SVG figures", runExperiment)
}

func runExperiment(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	def := experiment.Default()
	fs := newFlags("experiment", stderr)
	full := fs.Bool("full", false, "the paper's protocol: ratios 0.1…0.9, 100 epochs, PGD-100, every verifier on 1000 images, 300 s BaB")
	arch := fs.String("arch", def.Arch, "baseline architecture: mlp-6x100, mlp-6x200, cnn-small or cnn-a")
	eps := fs.Float64("eps", def.Eps, "L∞ radius, pixel scale")
	seed := fs.Uint64("seed", def.Seed, "random seed")
	ratios := fs.String("ratios", joinFloats(def.Ratios), "comma-separated grafting ratios")
	trainEpochs := fs.Int("train-epochs", def.TrainEpochs, "baseline training epochs")
	epochs := fs.Int("epochs", def.FineTuneEpochs, "fine-tuning epochs per grafted or pruned model")
	score := fs.String("score", def.Score.String(), "significance score: magnitude or gradient")
	perLayer := fs.Bool("per-layer", false, "rank neurons within each layer instead of globally")
	instability := fs.Float64("instability", 0, "extension: weight β in [0,1] of the instability-aware score (neurons often unstable under CROWN at eps are grafted first; 0: the paper's score)")
	calib := fs.Int("calibration", def.Calibration, "random training samples the scores average over")
	trainCount := fs.Int("train-count", 0, "use only the first N training images (0: all 60000)")
	cleanCount := fs.Int("clean-count", 0, "test images for clean accuracy (0: all 10000)")
	pgdCount := fs.Int("pgd-count", def.PGDCount, "test images for PGD accuracy")
	pgdSteps := fs.Int("pgd-steps", def.PGDSteps, "PGD steps")
	pgdRestarts := fs.Int("pgd-restarts", def.PGDRestarts, "PGD random restarts")
	crownCount := fs.Int("crown-count", def.CROWNCount, "test images verified with CROWN")
	alphaCount := fs.Int("alpha-count", def.AlphaCount, "test images verified with alpha-CROWN")
	alphaIters := fs.Int("alpha-iterations", def.AlphaIterations, "alpha-CROWN iterations")
	completeCount := fs.Int("complete-count", def.CompleteCount, "test images given to complete verification (when available)")
	completeTimeout := fs.Duration("complete-timeout", def.CompleteTimeout, "time limit per complete verification")
	jobs := fs.Int("jobs", 0, "images verified in parallel (0: all cores)")
	workers := fs.Int("workers", 0, "goroutines per training batch (0: all cores)")
	out := fs.String("out", filepath.Join("docs", "experiment"), "report `directory` (README.md and SVG figures)")
	work := fs.String("work", filepath.Join(os.TempDir(), "graftcert-experiment"), "work `directory` for the models (ONNX) and per-model results")
	resume := fs.Bool("resume", false, "reuse models and results in --work from an earlier run with the same settings")
	base := fs.String("base", "", "use this ONNX model as the baseline instead of training one")
	notes := fs.String("notes", "", "Markdown `file` appended to the report as its discussion")
	render := fs.Bool("render", false, "only re-render the report from --work/result.json (no computation)")
	if err := parse(fs, args); err != nil {
		return err
	}
	var notesText string
	if *notes != "" {
		b, err := os.ReadFile(*notes)
		if err != nil {
			return err
		}
		notesText = string(b)
	}
	if *render {
		res, err := experiment.ReadResult(*work)
		if err != nil {
			return err
		}
		if err := experiment.Render(*out, res, notesText); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "wrote %s\n", filepath.Join(*out, experiment.ReportFile))
		return nil
	}

	cfg := def
	if *full {
		cfg = experiment.Full()
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	apply := func(name string, f func()) {
		if set[name] || !*full {
			f()
		}
	}
	var err error
	apply("arch", func() { cfg.Arch = *arch })
	apply("eps", func() { cfg.Eps = *eps })
	apply("seed", func() { cfg.Seed = *seed })
	apply("ratios", func() { cfg.Ratios, err = parseFloats(*ratios) })
	if err != nil {
		return fmt.Errorf("--ratios: %w", err)
	}
	apply("train-epochs", func() { cfg.TrainEpochs = *trainEpochs })
	apply("epochs", func() { cfg.FineTuneEpochs = *epochs })
	apply("score", func() { cfg.Score, err = graft.ParseKind(*score) })
	if err != nil {
		return err
	}
	apply("per-layer", func() { cfg.PerLayer = *perLayer })
	apply("instability", func() { cfg.Instability = *instability })
	apply("calibration", func() { cfg.Calibration = *calib })
	apply("train-count", func() { cfg.TrainCount = *trainCount })
	apply("clean-count", func() { cfg.CleanCount = *cleanCount })
	apply("pgd-count", func() { cfg.PGDCount = *pgdCount })
	apply("pgd-steps", func() { cfg.PGDSteps = *pgdSteps })
	apply("pgd-restarts", func() { cfg.PGDRestarts = *pgdRestarts })
	apply("crown-count", func() { cfg.CROWNCount = *crownCount })
	apply("alpha-count", func() { cfg.AlphaCount = *alphaCount })
	apply("alpha-iterations", func() { cfg.AlphaIterations = *alphaIters })
	apply("complete-count", func() { cfg.CompleteCount = *completeCount })
	apply("complete-timeout", func() { cfg.CompleteTimeout = *completeTimeout })
	cfg.Jobs, cfg.Workers, cfg.Dir, cfg.Resume = *jobs, *workers, *work, *resume
	if err := checkEps(cfg.Eps); err != nil {
		return err
	}
	if *base != "" {
		if cfg.Baseline, err = onnx.DecodeFile(*base); err != nil {
			return err
		}
		cfg.Arch = modelName(*base)
	}
	if cfg.CompleteCount > 0 {
		cfg.Complete = experiment.BaB()
	}
	cfg.Command = "graftcert experiment " + shellJoin(args)
	start := time.Now()
	cfg.Log = func(line string) {
		d := time.Since(start).Round(time.Second)
		fmt.Fprintf(stderr, "[%s] %s\n", d, line)
	}

	Xtr, ytr, err := data.LoadMNIST("train")
	if err != nil {
		return err
	}
	Xte, yte, err := data.LoadMNIST("test")
	if err != nil {
		return err
	}
	fmt.Fprintf(stderr, "experiment: %s at eps %g, ratios %v, models and results in %s\n", cfg.Arch, cfg.Eps, cfg.Ratios, cfg.Dir)
	res, runErr := experiment.Run(ctx, cfg, train.Data{X: Xtr, Labels: ytr}, train.Data{X: Xte, Labels: yte})
	if res == nil {
		return runErr
	}
	if runErr != nil {
		if len(res.Rows) == 0 {
			return runErr
		}
		// Render what is finished, so an interrupted run still leaves a (partial) report.
		fmt.Fprintf(stderr, "experiment: %v\nexperiment: rendering the %d finished model(s); rerun with --resume to continue\n", runErr, len(res.Rows))
	}
	if err := experiment.Render(*out, res, notesText); err != nil {
		return errors.Join(runErr, err)
	}
	fmt.Fprintf(stdout, "wrote %s (%d models, %s)\n", filepath.Join(*out, experiment.ReportFile), len(res.Rows), time.Since(start).Round(time.Second))
	return runErr
}

func joinFloats(v []float64) string {
	s := make([]string, len(v))
	for i, x := range v {
		s[i] = strconv.FormatFloat(x, 'f', -1, 64)
	}
	return strings.Join(s, ",")
}

func parseFloats(s string) ([]float64, error) {
	var v []float64
	for _, f := range strings.Split(s, ",") {
		x, err := strconv.ParseFloat(strings.TrimSpace(f), 64)
		if err != nil {
			return nil, err
		}
		v = append(v, x)
	}
	return v, nil
}

// shellJoin quotes args so that the line can be pasted into a POSIX shell.
func shellJoin(args []string) string {
	q := make([]string, len(args))
	for i, a := range args {
		if a != "" && strings.IndexFunc(a, func(r rune) bool {
			return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-_./=,:+", r))
		}) < 0 {
			q[i] = a
		} else {
			q[i] = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
		}
	}
	return strings.Join(q, " ")
}
