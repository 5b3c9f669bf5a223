package experiment

import (
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
)

// Figure file names written by Render next to the report.
const (
	ReportFile       = "README.md"
	VerifiedFigure   = "verified_vs_ratio.svg"
	UnstableFigure   = "unstable_per_layer.svg"
	goalRatio        = 0.5
	goalVerifiedGain = 20.0 // points of verified accuracy the paper's claim needs
	goalCleanLoss    = 2.0  // points of clean accuracy it may cost
	collapsed        = 0.2  // clean accuracy below which a model is flagged as collapsed (chance is 0.1)
)

// Render writes the Markdown report and its SVG figures into dir. notes, if not empty, is
// appended as the report's discussion.
func Render(dir string, res *Result, notes string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("experiment: %w", err)
	}
	if err := VerifiedPlot(res, filepath.Join(dir, VerifiedFigure)); err != nil {
		return err
	}
	if err := UnstablePlot(res, filepath.Join(dir, UnstableFigure)); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, ReportFile), []byte(Markdown(res, notes)), 0o644); err != nil {
		return fmt.Errorf("experiment: %w", err)
	}
	return nil
}

func pct(x float64) string { return fmt.Sprintf("%.1f", 100*x) }

func ratioLabel(row *Row) string {
	if row.Kind == "baseline" {
		return "—"
	}
	return fmt.Sprintf("%g", row.Ratio)
}

// Markdown renders the report.
func Markdown(res *Result, notes string) string {
	var b strings.Builder
	p := &res.Protocol
	w := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	w("# Linearity grafting on MNIST: %s at ε = %g\n\n", res.Arch, res.Eps)
	w("Linearity Grafting (Chen et al., ICML 2022) replaces the least significant ReLU neurons of a network by linear functions a·x + b and fine-tunes it, so that verifiers no longer have to relax those neurons. This report compares an adversarially trained baseline with its grafted and pruned (a = b = 0) versions, all trained and verified by graftcert in Go.\n\n")
	if res.Command != "" {
		w("Produced by:\n\n```\n%s\n```\n\n", res.Command)
	}
	w("## Protocol\n\n")
	if p.BaselineGiven {
		w("- **Baseline**: a given model (not trained by this run).\n")
	} else {
		w("- **Baseline**: `%s`, trained from seed %d for %d epochs on %d MNIST training images with FGSM from a random start (step 1.25ε, ε = %g) plus the GradAlign regulariser (λ = 0.2): SGD, lr 0.1, momentum 0.9, weight decay 5e-4, batch 128, cosine schedule.\n",
			res.Arch, res.Seed, p.TrainEpochs, p.TrainSamples, res.Eps)
	}
	rank := "globally across layers"
	if p.PerLayer {
		rank = "within each layer"
	}
	w("- **Scores**: %s score of every ReLU neuron of the baseline over %d random training images; neurons ranked %s, the lowest fraction r selected.\n", p.Score, p.Calibration, rank)
	if p.Instability > 0 {
		w("- **Instability-aware scores** (an extension, not the paper's recipe): each score s is replaced by s·(1 − β·u/n) with β = %g, where u counts the calibration images (of n) on which the neuron's CROWN pre-activation bounds at ε straddle zero, so that often-unstable neurons are grafted first.\n", p.Instability)
	}
	w("- **Grafted**: selected neurons become a·x + b (start a = 0.4, b = 0; a and b trained). **Pruned**: selected neurons output 0 (a = b = 0, frozen), the paper's baseline.\n")
	w("- **Fine-tuning** (both): %d epochs, the paper's recipe: SGD momentum 0.9, cosine schedule, lr 1e-3 and weight decay 5e-4 for weights, lr 0.01 without decay for a and b, FGSM-RS + GradAlign λ 0.2 at ε = %g, batch 128. (The paper fine-tunes 100 epochs.)\n", p.FineTuneEpochs, res.Eps)
	w("- **Clean accuracy** on the first %d test images; **PGD accuracy** under PGD-%d (%d restart(s), step 2.5ε/%d, a sample counts as broken if any iterate is misclassified) on the first %d.\n",
		p.CleanCount, p.PGDSteps, p.PGDRestarts, p.PGDSteps, p.PGDCount)
	w("- **Verified accuracy**: the fraction of test images that are correctly classified and whose every margin f_label − f_j has a positive lower bound over the box [x − ε, x + ε] ∩ [0, 1]: CROWN on the first %d test images, α-CROWN (%d Adam iterations) on the first %d",
		p.CROWNCount, p.AlphaIterations, p.AlphaCount)
	if p.CompleteCount > 0 {
		w(", complete verification (%s, %g s per image) on the first %d.\n", p.CompleteName, p.CompleteTimeout, p.CompleteCount)
	} else {
		w(". Complete verification (branch and bound) was not available to this run, so that column is left out.\n")
	}
	w("- All numbers are for the models as saved in ONNX (float32 weights).\n\n")

	w("## Results\n\n")
	hasComplete := false
	for _, r := range res.Rows {
		hasComplete = hasComplete || r.Complete != nil
	}
	w("| model | ratio | grafted neurons | clean acc. %% | PGD acc. %% | verified %% CROWN | verified %% α-CROWN |")
	if hasComplete {
		w(" verified %% complete (falsified / unknown) |")
	}
	w(" mean worst margin lb, CROWN / α-CROWN | s per image, CROWN / α-CROWN")
	if hasComplete {
		w(" / complete")
	}
	w(" |\n|---|---|---|---|---|---|---|")
	if hasComplete {
		w("---|")
	}
	w("---|---|\n")
	for i := range res.Rows {
		r := &res.Rows[i]
		w("| %s | %s | %d / %d | %s | %s | %s | %s |", r.Kind, ratioLabel(r), sum(r.Grafted), sum(r.Neurons),
			pct(r.Clean.Rate()), pct(r.PGD.Rate()), verCell(r.CROWN), verCell(r.Alpha))
		if hasComplete {
			if c := r.Complete; c != nil {
				w(" %s (%d / %d) |", pct(c.Rate()), c.Falsified, c.Unknown)
			} else {
				w(" — |")
			}
		}
		w(" %s / %s | %s / %s", marginCell(r.CROWN), marginCell(r.Alpha), timeCell(r.CROWN), timeCell(r.Alpha))
		if hasComplete {
			if c := r.Complete; c != nil {
				w(" / %.2f", c.PerSample)
			} else {
				w(" / —")
			}
		}
		w(" |\n")
	}
	w("\nVerified %% is out of the images each verifier ran on (not out of the correctly classified ones); the margin column averages, over those images, the smallest lower bound of f_label − f_j (positive: verified).\n\n")
	deltaTable(&b, res, hasComplete)
	for i := range res.Rows {
		r := &res.Rows[i]
		if r.Clean.Total > 0 && r.Clean.Rate() < collapsed {
			w("**%s %s has collapsed**: clean accuracy %s%%, about chance. A network whose output hardly depends on its input \"verifies\" the images of the one class it predicts, so its verified accuracy says nothing about robustness.\n\n",
				r.Kind, ratioLabel(r), pct(r.Clean.Rate()))
		}
	}

	w("### Unstable neurons per layer\n\nMean number of ReLU neurons per test image whose CROWN pre-activation bounds straddle zero (grafted neurons are linear and never counted), over the CROWN images.\n\n")
	w("| model | ratio |")
	for _, l := range res.Layers {
		w(" %s |", l)
	}
	w(" total |\n|---|---|")
	for range res.Layers {
		w("---|")
	}
	w("---|\n")
	for i := range res.Rows {
		r := &res.Rows[i]
		if r.CROWN == nil {
			continue
		}
		w("| %s | %s |", r.Kind, ratioLabel(r))
		t := 0.0
		for _, u := range r.CROWN.Unstable {
			w(" %.1f |", u)
			t += u
		}
		w(" %.1f |\n", t)
	}
	w("\nGrafted neurons per layer (of %v):\n\n", neuronsOf(res))
	w("| model | ratio | per layer |\n|---|---|---|\n")
	for i := range res.Rows {
		r := &res.Rows[i]
		if r.Kind == "baseline" {
			continue
		}
		w("| %s | %s | %v |\n", r.Kind, ratioLabel(r), r.Grafted)
	}

	w("\n## Figures\n\n![verified accuracy vs grafting ratio](%s)\n\n![unstable neurons per layer](%s)\n\n", VerifiedFigure, UnstableFigure)

	w("## Goal check (ratio %g)\n\n", goalRatio)
	w("%s\n", goalCheck(res))

	w("## Cost\n\n")
	w("Wall time of the run: %s on %d core(s).\n\n", duration(res.WallSeconds), res.Cores)
	w("| model | epochs | training samples | seconds | samples/s | samples/s per core | clean + PGD s | CROWN s | α-CROWN s |")
	if hasComplete {
		w(" complete s |")
	}
	w("\n|---|---|---|---|---|---|---|---|---|")
	if hasComplete {
		w("---|")
	}
	w("\n")
	for i := range res.Rows {
		r := &res.Rows[i]
		f := r.Fit
		rate, per := "—", "—"
		if f.Seconds > 0 && f.Samples > 0 {
			s := float64(f.Samples) / f.Seconds
			rate, per = fmt.Sprintf("%.0f", s), fmt.Sprintf("%.0f", s/float64(max(1, res.Cores)))
		}
		secs := fmt.Sprintf("%.0f", f.Seconds)
		if f.Reused {
			secs += " (earlier run)"
		}
		w("| %s | %d | %d | %s | %s | %s | %.0f | %s | %s |", r.Model, f.Epochs, f.Samples, secs, rate, per,
			r.Clean.Seconds+r.PGD.Seconds, wallCell(r.CROWN), wallCell(r.Alpha))
		if hasComplete {
			if r.Complete != nil {
				w(" %.0f |", r.Complete.Seconds)
			} else {
				w(" — |")
			}
		}
		w("\n")
	}
	w("\nTraining throughput counts training samples per second of the whole recipe (FGSM-RS example, cross-entropy gradient and the GradAlign double backpropagation per sample).\n")
	if notes = strings.TrimSpace(notes); notes != "" {
		w("\n%s\n", notes)
	}
	return b.String()
}

func neuronsOf(res *Result) []int {
	if len(res.Rows) == 0 {
		return nil
	}
	return res.Rows[0].Neurons
}

func verCell(v *Verification) string {
	if v == nil {
		return "—"
	}
	return fmt.Sprintf("%s (%d/%d)", pct(v.Rate()), v.Verified, v.Total)
}

func marginCell(v *Verification) string {
	if v == nil {
		return "—"
	}
	return fmt.Sprintf("%.2f", v.MeanMarginLB)
}

func timeCell(v *Verification) string {
	if v == nil {
		return "—"
	}
	return fmt.Sprintf("%.3f", v.PerSample)
}

func wallCell(v *Verification) string {
	if v == nil {
		return "—"
	}
	return fmt.Sprintf("%.0f", v.Seconds)
}

func duration(s float64) string {
	d := int(math.Round(s))
	if d >= 3600 {
		return fmt.Sprintf("%d h %02d min %02d s", d/3600, d%3600/60, d%60)
	}
	return fmt.Sprintf("%d min %02d s", d/60, d%60)
}

// nearest returns the row of kind whose ratio is closest to r.
func nearest(res *Result, kind string, r float64) *Row {
	var best *Row
	for i := range res.Rows {
		row := &res.Rows[i]
		if row.Kind == kind && (best == nil || math.Abs(row.Ratio-r) < math.Abs(best.Ratio-r)) {
			best = row
		}
	}
	return best
}

// goalCheck states, per verifier, whether grafting at the goal ratio reached the paper's
// claim: ≥ 20 points of verified accuracy over the baseline at ≤ 2 points of clean
// accuracy, and more verified than pruning at the same ratio.
func goalCheck(res *Result) string {
	base := res.Find("baseline", 0)
	g := nearest(res, "grafted", goalRatio)
	pr := nearest(res, "pruned", goalRatio)
	if base == nil || g == nil {
		return "Not enough rows to check the goal.\n"
	}
	var b strings.Builder
	w := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	if g.Ratio != goalRatio {
		w("(No ratio %g in this run: the closest, %g, is used.)\n\n", goalRatio, g.Ratio)
	}
	cleanLoss := 100 * (base.Clean.Rate() - g.Clean.Rate())
	w("Goal: grafting %g%% of the neurons raises verified accuracy by ≥ %.0f points over the baseline, costs ≤ %.0f points of clean accuracy, and verifies more than pruning at the same ratio.\n\n",
		100*g.Ratio, goalVerifiedGain, goalCleanLoss)
	w("- Clean accuracy: baseline %s%%, grafted %s%% → %+.2f points (goal: loss ≤ %.0f): **%s**.",
		pct(base.Clean.Rate()), pct(g.Clean.Rate()), -cleanLoss, goalCleanLoss, yesNo(cleanLoss <= goalCleanLoss))
	if pr != nil {
		w(" Pruned: %s%%.", pct(pr.Clean.Rate()))
	}
	w("\n")
	type col struct {
		name        string
		b, gr, prun float64
		ok          bool
	}
	cols := []col{}
	if base.CROWN != nil && g.CROWN != nil {
		c := col{name: "CROWN", b: base.CROWN.Rate(), gr: g.CROWN.Rate(), ok: true}
		if pr != nil && pr.CROWN != nil {
			c.prun = pr.CROWN.Rate()
		}
		cols = append(cols, c)
	}
	if base.Alpha != nil && g.Alpha != nil {
		c := col{name: "α-CROWN", b: base.Alpha.Rate(), gr: g.Alpha.Rate(), ok: true}
		if pr != nil && pr.Alpha != nil {
			c.prun = pr.Alpha.Rate()
		}
		cols = append(cols, c)
	}
	if base.Complete != nil && g.Complete != nil {
		c := col{name: "complete", b: base.Complete.Rate(), gr: g.Complete.Rate(), ok: true}
		if pr != nil && pr.Complete != nil {
			c.prun = pr.Complete.Rate()
		}
		cols = append(cols, c)
	}
	for _, c := range cols {
		gain := 100 * (c.gr - c.b)
		w("- Verified accuracy (%s): baseline %s%%, grafted %s%% → %+.1f points (goal ≥ %.0f): **%s**",
			c.name, pct(c.b), pct(c.gr), gain, goalVerifiedGain, yesNo(gain >= goalVerifiedGain))
		if pr != nil {
			w("; pruned %s%% → grafted beats pruning: **%s**", pct(c.prun), yesNo(c.gr > c.prun))
		}
		w(".\n")
	}
	return b.String()
}

func yesNo(ok bool) string {
	if ok {
		return "yes"
	}
	return "no"
}

// deltaTable writes, per ratio, how far grafting and pruning moved clean and verified
// accuracy from the baseline, in percentage points.
func deltaTable(b *strings.Builder, res *Result, hasComplete bool) {
	base := res.Find("baseline", 0)
	if base == nil {
		return
	}
	w := func(format string, args ...any) { fmt.Fprintf(b, format, args...) }
	w("### Change from the baseline (percentage points, grafted / pruned)\n\n| ratio | clean | verified, CROWN | verified, α-CROWN |")
	if hasComplete {
		w(" verified, complete |")
	}
	w("\n|---|---|---|---|")
	if hasComplete {
		w("---|")
	}
	w("\n")
	d := func(g, p *Row, rate func(*Row) (float64, bool)) string {
		cell := func(r *Row) string {
			if r == nil {
				return "—"
			}
			v, ok := rate(r)
			bv, bok := rate(base)
			if !ok || !bok {
				return "—"
			}
			return fmt.Sprintf("%+.1f", 100*(v-bv))
		}
		return cell(g) + " / " + cell(p)
	}
	for _, ratio := range res.Protocol.Ratios {
		g, p := res.Find("grafted", ratio), res.Find("pruned", ratio)
		if g == nil && p == nil {
			continue
		}
		w("| %g | %s | %s | %s |", ratio,
			d(g, p, func(r *Row) (float64, bool) { return r.Clean.Rate(), r.Clean.Total > 0 }),
			d(g, p, func(r *Row) (float64, bool) { return r.CROWN.Rate(), r.CROWN != nil }),
			d(g, p, func(r *Row) (float64, bool) { return r.Alpha.Rate(), r.Alpha != nil }))
		if hasComplete {
			w(" %s |", d(g, p, func(r *Row) (float64, bool) { return r.Complete.Rate(), r.Complete != nil }))
		}
		w("\n")
	}
	w("\n")
}
