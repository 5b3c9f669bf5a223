package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/graftcert/graftcert/core/data"
	"github.com/graftcert/graftcert/core/nn"
	"github.com/graftcert/graftcert/core/onnx"
	"github.com/graftcert/graftcert/core/train"
)

func init() {
	register("train", "train an adversarially robust baseline (FGSM-RS + GradAlign)", runTrain)
}

// fitFlags are the training flags train and graft share.
type fitFlags struct {
	epochs    *int
	seed      *uint64
	xPath     *string
	yPath     *string
	count     *int
	batch     *int
	lr        *float64
	gradAlign *float64
	workers   *int
	out       *string
	eps       *float64
}

func addFitFlags(fs *flag.FlagSet, epochs int, lr float64, lrWhat string) *fitFlags {
	return &fitFlags{
		eps:       fs.Float64("eps", 0, "L∞ radius of FGSM-RS adversarial training, pixel scale (0: clean training)"),
		epochs:    fs.Int("epochs", epochs, "training epochs"),
		seed:      fs.Uint64("seed", 1, "random seed (initialisation, shuffling, perturbations, calibration)"),
		xPath:     fs.String("data", "", "training samples .npy `file` (default: the MNIST training set)"),
		yPath:     fs.String("labels", "", "training labels .npy `file`"),
		count:     fs.Int("count", 0, "use only the first N training samples (0: all)"),
		batch:     fs.Int("batch", 128, "mini-batch size"),
		lr:        fs.Float64("lr", lr, "learning rate of "+lrWhat+" (cosine schedule)"),
		gradAlign: fs.Float64("grad-align", 0.2, "GradAlign weight λ (0: off)"),
		workers:   fs.Int("workers", 0, "goroutines per batch (0: all cores; results do not depend on it)"),
		out:       fs.String("out", "", "output ONNX `file`"),
	}
}

func (f *fitFlags) check() error {
	if *f.out == "" {
		return errors.New("--out is required")
	}
	if err := checkEps(*f.eps); err != nil {
		return err
	}
	if *f.epochs < 0 || *f.count < 0 || *f.batch <= 0 || !(*f.lr >= 0) || !(*f.gradAlign >= 0) || *f.workers < 0 {
		return errors.New("--epochs, --count, --lr, --grad-align and --workers must be ≥ 0, --batch > 0")
	}
	if *f.gradAlign > 0 && *f.eps == 0 {
		*f.gradAlign = 0 // GradAlign draws its noise from the eps-ball: nothing to align at eps 0
	}
	return nil
}

// trainingData loads the user's .npy training set, or the MNIST training set when none is
// given and the network takes MNIST images.
func (f *fitFlags) trainingData(net *nn.Network) (train.Data, string, error) {
	var X []float64
	var y []int
	var what string
	switch {
	case *f.xPath != "" || *f.yPath != "":
		var err error
		if X, y, err = loadData(net, *f.xPath, *f.yPath); err != nil {
			return train.Data{}, "", err
		}
		what = *f.xPath
	case net.InSize() == data.MNISTRows*data.MNISTRows:
		var err error
		if X, y, err = data.LoadMNIST("train"); err != nil {
			return train.Data{}, "", err
		}
		if err := data.CheckLabels(y, net.OutSize()); err != nil {
			return train.Data{}, "", err
		}
		what = "MNIST training set"
	default:
		return train.Data{}, "", fmt.Errorf("the model takes %v inputs, not MNIST images: give its training set with --data and --labels", net.Input)
	}
	d := train.Data{X: X, Labels: y}
	if n := *f.count; n > 0 && n < d.Len() {
		in := net.InSize()
		d = train.Data{X: X[:n*in], Labels: y[:n]}
	}
	return d, what, nil
}

// options applies the flags to a recipe.
func (f *fitFlags) options(o train.Options, weightsLR bool) train.Options {
	o.Epochs, o.Seed, o.BatchSize, o.Workers, o.GradAlign = *f.epochs, *f.seed, *f.batch, *f.workers, *f.gradAlign
	if weightsLR {
		o.Weights.LR, o.Biases.LR = *f.lr, *f.lr
	}
	return o
}

// fit trains net in place, reporting progress on stderr, and writes it to --out. If ctx
// is cancelled it writes the weights after the last full step to <out>.partial and
// returns an error naming that file. A checkpoint is also written there after every
// epoch, and removed once --out is written.
func fit(ctx context.Context, net *nn.Network, d train.Data, o train.Options, out, what string, stderr io.Writer) ([]train.Epoch, error) {
	partial := out + ".partial"
	steps := (d.Len() + o.BatchSize - 1) / o.BatchSize
	every := max(1, steps/10)
	lastLine := time.Now()
	o.OnBatch = func(b train.Batch) {
		if b.Step%every == 0 && b.Step < b.Steps && time.Since(lastLine) > time.Second {
			fmt.Fprintf(stderr, "%s: epoch %d/%d step %d/%d loss %.4f acc %.4f\n", what, b.Epoch, o.Epochs, b.Step, b.Steps, b.Loss, b.Accuracy)
			lastLine = time.Now()
		}
	}
	var ckptErr error
	hist, err := train.Train(ctx, net, d, o, func(e train.Epoch) {
		fmt.Fprintf(stderr, "%s: epoch %d/%d loss %.4f (ce %.4f, reg %.4f) acc %.4f lr %.2g, %.1f s, %.0f samples/s\n",
			what, e.Epoch, e.Epochs, e.Loss, e.CE, e.Reg, e.Accuracy, e.LR, e.Seconds, float64(e.Samples)/e.Seconds)
		if e.Epoch < e.Epochs && ckptErr == nil {
			ckptErr = onnx.EncodeFile(partial, net)
		}
	})
	if err != nil {
		if ctx.Err() != nil {
			if werr := onnx.EncodeFile(partial, net); werr != nil {
				return hist, fmt.Errorf("%w; writing the checkpoint failed: %v", err, werr)
			}
			return hist, fmt.Errorf("interrupted after %d full epoch(s); weights after the last full step saved to %s", len(hist), partial)
		}
		return hist, err
	}
	if ckptErr != nil {
		fmt.Fprintf(stderr, "warning: checkpoint %s: %v\n", partial, ckptErr)
	}
	if err := onnx.EncodeFile(out, net); err != nil {
		return hist, err
	}
	if err := os.Remove(partial); err != nil && !errors.Is(err, os.ErrNotExist) {
		fmt.Fprintf(stderr, "warning: %v\n", err)
	}
	return hist, nil
}

func runTrain(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("train", stderr)
	arch := fs.String("arch", "mlp-6x100", "architecture: mlp-6x100, mlp-6x200, cnn-small or cnn-a (MNIST, 1×28×28 → 10)")
	ff := addFitFlags(fs, 10, 0.1, "weights and biases")
	if err := parse(fs, args); err != nil {
		return err
	}
	if err := ff.check(); err != nil {
		return err
	}
	net, err := train.Architecture(*arch, *ff.seed)
	if err != nil {
		return err
	}
	d, what, err := ff.trainingData(net)
	if err != nil {
		return err
	}
	o := ff.options(train.DefaultTrain(*ff.eps), true)
	fmt.Fprintf(stderr, "train: %s (%d parameters) on %d samples of the %s, eps %g, %d epochs\n", *arch, net.NumParams(), d.Len(), what, *ff.eps, o.Epochs)
	start := time.Now()
	hist, err := fit(ctx, net, d, o, *ff.out, "train", stderr)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "wrote %s: %s trained %d epochs in %.1f s%s\n", *ff.out, *arch, len(hist), time.Since(start).Seconds(), lastEpoch(hist))
	return nil
}

func lastEpoch(hist []train.Epoch) string {
	if len(hist) == 0 {
		return ""
	}
	e := hist[len(hist)-1]
	return fmt.Sprintf(", final loss %.4f, training accuracy %.4f", e.Loss, e.Accuracy)
}
