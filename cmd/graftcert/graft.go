package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/graftcert/graftcert/core/graft"
	"github.com/graftcert/graftcert/core/nn"
	"github.com/graftcert/graftcert/core/onnx"
	"github.com/graftcert/graftcert/core/train"
)

func init() {
	register("graft", "graft (or prune) the least significant neurons of a model and fine-tune it", runGraft)
}

func runGraft(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("graft", stderr)
	model := fs.String("model", "", "ONNX model `file` to graft")
	ratio := fs.Float64("ratio", 0.5, "fraction of the neurons to graft")
	score := fs.String("score", "magnitude", "significance score: magnitude (mean |pre-activation|) or gradient (mean |∂loss/∂pre-activation|)")
	perLayer := fs.Bool("per-layer", false, "graft the ratio within each layer instead of ranking all neurons together")
	prune := fs.Bool("prune", false, "prune instead of graft: selected neurons output 0 (a = b = 0, frozen)")
	calib := fs.Int("calibration", 1000, "number of random training samples the scores average over")
	slope := fs.Float64("slope", 0.4, "initial slope a of grafted neurons (intercept b starts at 0)")
	ff := addFitFlags(fs, 10, 1e-3, "weights and biases (slopes and intercepts: 0.01)")
	if err := parse(fs, args); err != nil {
		return err
	}
	if err := ff.check(); err != nil {
		return err
	}
	if !(*ratio >= 0 && *ratio <= 1) {
		return fmt.Errorf("--ratio %v: must be in [0, 1]", *ratio)
	}
	if *calib <= 0 {
		return errors.New("--calibration must be positive")
	}
	kind, err := graft.ParseKind(*score)
	if err != nil {
		return err
	}
	net, err := loadModel(*model)
	if err != nil {
		return err
	}
	if len(net.Activations()) == 0 {
		return fmt.Errorf("%s has no ReLU layers to graft", *model)
	}
	if _, err := train.NewModel(net, false); err != nil {
		return fmt.Errorf("%s: %w", *model, err)
	}
	d, what, err := ff.trainingData(net)
	if err != nil {
		return err
	}

	idx := graft.Calibration(d.Len(), *calib, *ff.seed)
	in := net.InSize()
	X := make([]float64, 0, len(idx)*in)
	y := make([]int, 0, len(idx))
	for _, i := range idx {
		X = append(X, d.X[i*in:(i+1)*in]...)
		y = append(y, d.Labels[i])
	}
	scores, err := graft.Scores(ctx, net, X, len(idx), kind, y)
	if err != nil {
		return err
	}
	masks, err := graft.Mask(scores, *ratio, *perLayer)
	if err != nil {
		return err
	}
	g, err := graft.Apply(net, masks, graft.Options{Slope: *slope, Prune: *prune})
	if err != nil {
		return err
	}
	verb := "grafted"
	if *prune {
		verb = "pruned"
	}
	k, n := graft.Count(masks)
	per := make([]int, len(masks))
	for l, m := range masks {
		for _, s := range m {
			if s {
				per[l]++
			}
		}
	}
	fmt.Fprintf(stderr, "graft: %s %d of %d neurons by %s score over %d samples of the %s (per layer %v)\n", verb, k, n, kind, len(idx), what, per)
	total := grafted(g)
	if *ff.epochs == 0 {
		if err := onnx.EncodeFile(*ff.out, g); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "wrote %s: %d of %d neurons linear (%d %s now), not fine-tuned\n", *ff.out, total, n, k, verb)
		return nil
	}
	o := ff.options(train.DefaultFineTune(*ff.eps), true)
	o.FreezeActivations = *prune
	fmt.Fprintf(stderr, "graft: fine-tuning %d epochs on %d samples, eps %g\n", o.Epochs, d.Len(), *ff.eps)
	start := time.Now()
	hist, err := fit(ctx, g, d, o, *ff.out, "graft", stderr)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "wrote %s: %d of %d neurons linear (%d %s now), fine-tuned %d epochs in %.1f s%s\n",
		*ff.out, total, n, k, verb, len(hist), time.Since(start).Seconds(), lastEpoch(hist))
	return nil
}

// grafted counts the linear neurons of net (a model grafted before keeps its own).
func grafted(net *nn.Network) int {
	n := 0
	for _, i := range net.Activations() {
		if m, ok := net.Layers[i].(*nn.MaskedReLU); ok {
			n += m.NumGrafted()
		}
	}
	return n
}
