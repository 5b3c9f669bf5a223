package main

import (
	"context"
	"fmt"
	"io"
	"text/tabwriter"

	"github.com/graftcert/graftcert/core/certify"
	"github.com/graftcert/graftcert/core/crown"
)

func init() {
	register("bounds", "bound the margins of samples under an eps box (IBP, CROWN, alpha-CROWN)", runBounds)
}

func runBounds(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("bounds", stderr)
	model := fs.String("model", "", "ONNX model `file`")
	xPath := fs.String("data", "", "samples .npy `file` (N×C×H×W or N×D)")
	yPath := fs.String("labels", "", "labels .npy `file` (N integers)")
	eps := fs.Float64("eps", 0, "L∞ radius, pixel scale")
	method := fs.String("method", "crown", "ibp, crown or alpha-crown")
	start := fs.Int("start", 0, "first sample index")
	count := fs.Int("count", 0, "number of samples (0: to the end)")
	logits := fs.Bool("logits", false, "also bound the logits (logit_lb, logit_ub)")
	iters := fs.Int("iterations", 20, "alpha-CROWN iterations")
	lr := fs.Float64("lr", 0.1, "alpha-CROWN learning rate")
	earlyStop := fs.Bool("early-stop", true, "stop alpha-CROWN once every margin bound of a sample is positive")
	jobs := fs.Int("jobs", 0, "samples bounded in parallel (0: all cores)")
	maxMem := fs.Float64("max-memory", float64(defaultMaxMemory())/1e9, "refuse a model whose bound computation needs more than this many `GB` (estimated, per concurrent sample)")
	asJSON := fs.Bool("json", false, "print JSON")
	shard := shardFlag(fs)
	remote := remoteFlags(fs)
	outPath := fs.String("out", "", "write the output to `file` (written whole, then renamed into place) instead of stdout")
	if err := parse(fs, args); err != nil {
		return err
	}
	m, err := crown.ParseMethod(*method)
	if err != nil {
		return err
	}
	if err := checkEps(*eps); err != nil {
		return err
	}
	if *iters <= 0 || *lr <= 0 {
		return fmt.Errorf("--iterations and --lr must be positive")
	}
	net, err := loadModel(*model)
	if err != nil {
		return err
	}
	X, labels, err := loadData(net, *xPath, *yPath)
	if err != nil {
		return err
	}
	idx, err := sampleRange(*start, *count, len(labels))
	if err != nil {
		return err
	}
	idx = shardItems(*shard, idx)
	opts := certify.Options{Eps: *eps, Logits: *logits, Jobs: *jobs,
		Bound: crown.Options{Method: m, Iterations: *iters, LR: *lr, MaxMemory: int64(*maxMem * 1e9), StopWhenPositive: *earlyStop}}
	var rep *certify.Report
	if remote.URL != "" {
		rep, err = remote.bounds(ctx, *model, net.InSize(), X, labels, idx, opts, progressLine(stderr, "bounds"))
	} else {
		rep, err = certify.Run(ctx, net, modelName(*model), X, labels, idx, opts, progressLine(stderr, "bounds"))
	}
	if err != nil {
		return err
	}
	return outputTo(*outPath, stdout, func(stdout io.Writer) error { return printBounds(stdout, rep, *asJSON) })
}

// printBounds writes a bounds report as JSON or as the readable table.
func printBounds(stdout io.Writer, rep *certify.Report, asJSON bool) error {
	if asJSON {
		return writeJSON(stdout, rep)
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "index\tlabel\tpred\tmin margin lb\tunstable\tverified\tms\n")
	for _, s := range rep.Samples {
		minLB := 0.0
		for i, v := range s.MarginLB {
			if i == 0 || v < minLB {
				minLB = v
			}
		}
		fmt.Fprintf(tw, "%d\t%d\t%d\t%.4f\t%v\t%v\t%.1f\n", s.Index, s.Label, s.Pred, minLB, s.Unstable, s.Verified, s.Seconds*1000)
	}
	tw.Flush()
	_, err := fmt.Fprintf(stdout, "%s, %s, eps %g: verified %d / %d (%.1f%%) in %.2f s\n", rep.Model, rep.Method, rep.Eps,
		rep.Verified, rep.Total, 100*float64(rep.Verified)/float64(max(1, rep.Total)), rep.Seconds)
	return err
}

// progressLine reports progress on stderr, overwriting one line, for runs long enough
// to need it.
func progressLine(w io.Writer, what string) certify.Progress {
	return func(done, total int) {
		if total < 20 {
			return
		}
		fmt.Fprintf(w, "\r%s: %d/%d samples", what, done, total)
		if done == total {
			fmt.Fprintln(w)
		}
	}
}
