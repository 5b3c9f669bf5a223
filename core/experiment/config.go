package experiment

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/graftcert/graftcert/core/graft"
	"github.com/graftcert/graftcert/core/nn"
	"github.com/graftcert/graftcert/core/train"
)

// Config is one run of the comparison. Start from Default or Full.
type Config struct {
	Arch string  // a train.Architectures name
	Eps  float64 // L∞ radius for training, attacks and verification (pixel scale)
	Seed uint64  // drives initialisation, shuffling, calibration and attacks

	// TrainEpochs trains the baseline (train.DefaultTrain); FineTuneEpochs fine-tunes
	// every grafted and pruned model (train.DefaultFineTune).
	TrainEpochs, FineTuneEpochs int
	// Ratios are the grafting (and pruning) ratios, each in (0, 1).
	Ratios []float64
	// Score ranks the neurons (the paper: magnitude); PerLayer ranks each layer apart
	// instead of globally.
	Score    graft.Kind
	PerLayer bool
	// Instability, if positive, is the weight β of graft.InstabilityAware, a documented
	// extension of the paper: each neuron's score is lowered by how often its CROWN
	// pre-activation bounds at Eps straddle zero over the calibration set, so that the
	// neurons that make verification hard are grafted first (0: the paper's score).
	Instability float64
	// Calibration is the number of random training samples the scores average over.
	Calibration int

	// Evaluation: the first CleanCount test images for clean accuracy, the first PGDCount
	// for PGD (PGDSteps steps of 2.5·Eps/PGDSteps, PGDRestarts random starts), the first
	// CROWNCount, AlphaCount and CompleteCount for the verifiers. 0 means none (for
	// CleanCount: the whole test set).
	CleanCount, PGDCount, PGDSteps, PGDRestarts int
	CROWNCount, AlphaCount, CompleteCount       int
	AlphaIterations                             int // α-CROWN optimiser steps (default 20)
	// CompleteTimeout bounds each complete verification; Complete is the verifier (nil:
	// the column is left out).
	CompleteTimeout time.Duration
	Complete        CompleteVerifier

	// TrainCount uses only the first TrainCount training samples (0: all) — for quick
	// runs and tests.
	TrainCount int
	// Jobs is the number of samples verified concurrently and Workers the number of
	// goroutines training shares a batch over (0: all cores).
	Jobs, Workers int

	// Dir keeps the models (ONNX) and per-model results (JSON); with Resume, models and
	// results already there from a run with the same settings are reused.
	Dir    string
	Resume bool
	// Baseline, if set, is used instead of training one (a copy is kept in Dir).
	Baseline *nn.Network
	// Command is the command line that produced the run, quoted in the report.
	Command string
	// Log receives one line per step of progress (epochs, evaluations); nil: silent.
	Log func(string)
}

// Verdict is the answer of a complete verifier on one sample.
type Verdict string

// The verdicts a CompleteVerifier returns.
const (
	Verified      Verdict = "verified"
	Falsified     Verdict = "falsified"
	Unknown       Verdict = "unknown" // gave up or ran out of time
	Misclassified Verdict = "misclassified"
)

// CompleteVerifier decides whether net classifies every point of the eps-box around x as
// label, within timeout. The experiment calls it with at most Config.Jobs samples at
// once. Name says what it is in the report ("β-CROWN BaB").
type CompleteVerifier struct {
	Name   string
	Verify func(ctx context.Context, net *nn.Network, x []float64, label int, eps float64, timeout time.Duration) (Verdict, error)
}

// Default is the default protocol, sized to finish in about two hours on 2 cores for
// an MNIST MLP: baseline 20 epochs, 10 fine-tuning epochs per model, ratios 0.3, 0.5,
// 0.7, clean accuracy on the 10k test set, PGD-20 on the 10k test set, CROWN on the first
// 1000 test images, α-CROWN on the first 200, complete verification on the first 100 with
// 10 s each.
func Default() Config {
	return Config{Arch: "mlp-6x100", Eps: 0.1, Seed: 1, TrainEpochs: 20, FineTuneEpochs: 10,
		Ratios: []float64{0.3, 0.5, 0.7}, Score: graft.Magnitude, Calibration: 1000,
		PGDCount: 10000, PGDSteps: 20, PGDRestarts: 1, CROWNCount: 1000, AlphaCount: 200,
		AlphaIterations: 20, CompleteCount: 100, CompleteTimeout: 10 * time.Second}
}

// Full is the paper's protocol: ratios 0.1 … 0.9, 100 fine-tuning epochs, PGD-100, every
// verifier on the first 1000 test images, 300 s per complete verification.
func Full() Config {
	c := Default()
	c.TrainEpochs, c.FineTuneEpochs = 100, 100
	c.Ratios = []float64{0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9}
	c.PGDSteps = 100
	c.AlphaCount, c.CompleteCount = 1000, 1000
	c.CompleteTimeout = 300 * time.Second
	return c
}

func (c *Config) check() error {
	if !slices.Contains(train.Architectures, c.Arch) && c.Baseline == nil {
		return fmt.Errorf("experiment: unknown architecture %q (known: %v)", c.Arch, train.Architectures)
	}
	if !(c.Eps > 0) || math.IsInf(c.Eps, 0) {
		return fmt.Errorf("experiment: eps %v: must be positive", c.Eps)
	}
	if c.TrainEpochs < 0 || c.FineTuneEpochs < 0 {
		return errors.New("experiment: epochs must be ≥ 0")
	}
	if len(c.Ratios) == 0 {
		return errors.New("experiment: no ratios")
	}
	for i, r := range c.Ratios {
		if !(r > 0 && r < 1) {
			return fmt.Errorf("experiment: ratio %v: must be in (0, 1)", r)
		}
		if i > 0 && !(r > c.Ratios[i-1]) {
			return fmt.Errorf("experiment: ratios %v must increase", c.Ratios)
		}
	}
	for _, v := range []int{c.Calibration, c.CleanCount, c.PGDCount, c.PGDSteps, c.PGDRestarts,
		c.CROWNCount, c.AlphaCount, c.CompleteCount, c.AlphaIterations, c.TrainCount, c.Jobs, c.Workers} {
		if v < 0 {
			return errors.New("experiment: counts must be ≥ 0")
		}
	}
	if math.IsNaN(c.Instability) || c.Instability < 0 || c.Instability > 1 {
		return fmt.Errorf("experiment: instability weight %v outside [0, 1]", c.Instability)
	}
	if c.Calibration == 0 {
		return errors.New("experiment: calibration set is empty")
	}
	if c.CompleteCount > 0 && c.Complete.Verify != nil && c.CompleteTimeout <= 0 {
		return errors.New("experiment: complete verification needs a positive timeout")
	}
	if c.Dir == "" {
		return errors.New("experiment: no work directory")
	}
	return nil
}

// modelKey identifies the settings a model depends on: Resume reuses a saved model only
// when its key matches.
func (c *Config) modelKey(kind string, ratio float64) string {
	k := fmt.Sprintf("arch=%s eps=%g seed=%d train=%d n=%d", c.Arch, c.Eps, c.Seed, c.TrainEpochs, c.TrainCount)
	if c.Baseline != nil {
		k = fmt.Sprintf("given-baseline eps=%g seed=%d n=%d", c.Eps, c.Seed, c.TrainCount)
	}
	if kind != "baseline" {
		k += fmt.Sprintf(" %s ratio=%g score=%s perlayer=%v calib=%d finetune=%d", kind, ratio, c.Score, c.PerLayer, c.Calibration, c.FineTuneEpochs)
		if c.Instability > 0 {
			k += fmt.Sprintf(" instability=%g", c.Instability)
		}
	}
	return k
}

// evalKeys identifies, per measurement column, the settings it depends on: a resumed
// run recomputes only the columns whose settings changed.
func (c *Config) evalKeys(p *Protocol) map[string]string {
	k := map[string]string{
		"clean": fmt.Sprintf("n=%d", p.CleanCount),
		"pgd":   fmt.Sprintf("n=%d steps=%d restarts=%d", p.PGDCount, c.PGDSteps, p.PGDRestarts),
		"crown": fmt.Sprintf("n=%d", p.CROWNCount),
		"alpha": fmt.Sprintf("n=%d iterations=%d", p.AlphaCount, p.AlphaIterations),
	}
	if p.CompleteCount > 0 {
		k["complete"] = fmt.Sprintf("%s n=%d timeout=%s", p.CompleteName, p.CompleteCount, c.CompleteTimeout)
	}
	return k
}
