package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/graftcert/graftcert/core/bab"
	"github.com/graftcert/graftcert/core/spec"
)

func init() {
	register("verify", "complete verification: a VNNLIB property, or samples under an eps box (PGD + BaB)", runVerify)
}

// babFlags are the branch-and-bound options shared by verify and vnncomp.
type babFlags struct {
	seed      *uint64
	maxDoms   *int
	mode      *string
	workers   *int
	batch     *int
	restarts  *int
	steps     *int
	rootIters *int
	iters     *int
	cands     *int
	noAttack  *bool
	refine    *float64
	refDoms   *int
}

func addBabFlags(fs *flag.FlagSet) *babFlags {
	return &babFlags{
		seed:      fs.Uint64("seed", 0, "random seed (attack starts)"),
		maxDoms:   fs.Int("max-domains", 0, "give up (unknown) after this many subdomains (0: no limit)"),
		mode:      fs.String("mode", "auto", "branching: auto, input (split the input box) or relu (split neurons)"),
		workers:   fs.Int("workers", 0, "goroutines (0: all cores)"),
		batch:     fs.Int("batch", 0, "subdomains branched per round (0: 64 for ReLU splits, 256 for input splits)"),
		restarts:  fs.Int("attack-restarts", 0, "PGD restarts per input box (0: 50)"),
		steps:     fs.Int("attack-steps", 0, "PGD steps per restart (0: 100)"),
		rootIters: fs.Int("root-iterations", 0, "alpha-CROWN iterations at the root (0: 50)"),
		iters:     fs.Int("iterations", 0, "beta-CROWN iterations per batch of subdomains (0: 20)"),
		cands:     fs.Int("candidates", 0, "filtered smart branching candidates per score (0: 3; -1: BaBSR only)"),
		noAttack:  fs.Bool("no-attack", false, "skip the PGD attack"),
		refine:    fs.Float64("refine", 0.3, "share of the time left (0 to 1) that refining intermediate bounds (a small branch and bound per unstable neuron) may take when a short first branch and bound does not settle a ReLU-split problem (0: off)"),
		refDoms:   fs.Int("refine-domains", 0, "subdomains per neuron bound when refining (0: 64)"),
	}
}

func (b *babFlags) options(timeout float64) (bab.Options, error) {
	o := bab.Options{Seed: *b.seed, MaxDomains: *b.maxDoms, Workers: *b.workers, BatchSize: *b.batch,
		RootIterations: *b.rootIters, Refine: *b.refine, RefineDomains: *b.refDoms}
	if *b.refine < 0 || *b.refine > 1 || math.IsNaN(*b.refine) {
		return o, fmt.Errorf("--refine %v: want a share of the timeout between 0 and 1", *b.refine)
	}
	if timeout < 0 || math.IsNaN(timeout) || math.IsInf(timeout, 0) {
		return o, fmt.Errorf("--timeout %v: must be a non-negative number of seconds", timeout)
	}
	o.Timeout = time.Duration(timeout * float64(time.Second))
	switch *b.mode {
	case "auto":
		o.Mode = bab.Auto
	case "input":
		o.Mode = bab.InputSplit
	case "relu":
		o.Mode = bab.ReLUSplit
	default:
		return o, fmt.Errorf("--mode %q: want auto, input or relu", *b.mode)
	}
	if *b.maxDoms < 0 || *b.workers < 0 || *b.batch < 0 || *b.restarts < 0 || *b.steps < 0 || *b.rootIters < 0 || *b.iters < 0 || *b.refDoms < 0 {
		return o, errors.New("counts must not be negative")
	}
	o.Attack = bab.AttackOptions{Restarts: *b.restarts, Steps: *b.steps, Skip: *b.noAttack}
	o.Beta.Iterations = *b.iters
	o.Beta.Candidates = *b.cands
	return o, nil
}

func runVerify(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("verify", stderr)
	model := fs.String("model", "", "ONNX model `file`")
	vnnlib := fs.String("vnnlib", "", "VNNLIB property `file` (property mode)")
	out := fs.String("out", "", "write the VNN-COMP result `file` (property mode)")
	xPath := fs.String("data", "", "samples .npy `file` (classification mode)")
	yPath := fs.String("labels", "", "labels .npy `file` (classification mode)")
	eps := fs.Float64("eps", -1, "L∞ radius, pixel scale (classification mode)")
	start := fs.Int("start", 0, "first sample index")
	count := fs.Int("count", 0, "number of samples (0: to the end)")
	timeout := fs.Float64("timeout", 0, "time limit in seconds: for the property, or per sample (default 300 / 60; 0: none)")
	asJSON := fs.Bool("json", false, "print JSON")
	shard := shardFlag(fs)
	bf := addBabFlags(fs)
	if err := parse(fs, args); err != nil {
		return err
	}
	timeoutSet := false
	fs.Visit(func(f *flag.Flag) { timeoutSet = timeoutSet || f.Name == "timeout" })
	if timeoutSet && !(*timeout >= 0) {
		return fmt.Errorf("--timeout %v: must be a non-negative number of seconds", *timeout)
	}
	net, err := loadModel(*model)
	if err != nil {
		return err
	}
	switch {
	case *vnnlib != "" && (*xPath != "" || *yPath != ""):
		return errors.New("give either --vnnlib or --data/--labels, not both")
	case *vnnlib != "":
		if shard.N > 1 {
			return errors.New("--shard applies to --data runs (one property is not split)")
		}
		if !timeoutSet {
			*timeout = 300
		}
		opts, err := bf.options(*timeout)
		if err != nil {
			return err
		}
		opts.AttackFirst = true
		v, err := spec.ParseVNNLIBFile(*vnnlib, net.InSize(), net.OutSize())
		if err != nil {
			return err
		}
		var end func()
		opts.Progress, end = babProgress(stderr)
		rep, err := bab.Verify(ctx, net, v, opts)
		end()
		if err != nil {
			return err
		}
		if *out != "" {
			if err := writeResultFile(*out, rep); err != nil {
				return err
			}
		}
		if *asJSON {
			return writeJSON(stdout, rep)
		}
		fmt.Fprintf(stdout, "%s in %.2f s (%d subdomains, %s)\n", rep.Result, rep.Seconds, rep.Stats.Domains, rep.Stats.Mode)
		if rep.Stats.Reason != "" {
			fmt.Fprintf(stdout, "reason: %s\n", rep.Stats.Reason)
		}
		return nil
	}
	if *out != "" {
		return errors.New("--out needs --vnnlib")
	}
	if *eps < 0 {
		return errors.New("--eps is required with --data (and must not be negative)")
	}
	if err := checkEps(*eps); err != nil {
		return err
	}
	if !timeoutSet {
		*timeout = 60
	}
	opts, err := bf.options(*timeout)
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
	rootOnly := 0
	rep, err := bab.VerifySamples(ctx, net, X, labels, idx, *eps, opts, func(done, total int, s bab.SampleReport) {
		if s.RootVerified {
			rootOnly++
		}
		fmt.Fprintf(stderr, "verify: %d/%d samples (sample %d %s in %.1f s, %d subdomains)\n", done, total, s.Index, s.Result, s.Seconds, s.Stats.Domains)
	})
	if err != nil {
		return err
	}
	fmt.Fprintf(stderr, "verify: %d verified (%d by the root alpha-CROWN bound alone), %d falsified, %d unknown, %d misclassified of %d; %.1f s per sample\n",
		rep.Verified, rootOnly, rep.Falsified, rep.Unknown, rep.Misclassified, rep.Total, rep.Seconds/float64(max(1, rep.Total)))
	if *asJSON {
		return writeJSON(stdout, rep)
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "index\tlabel\tpred\tresult\tseconds\n")
	for _, s := range rep.Samples {
		fmt.Fprintf(tw, "%d\t%d\t%d\t%s\t%.2f\n", s.Index, s.Label, s.Pred, s.Result, s.Seconds)
	}
	tw.Flush()
	fmt.Fprintf(stdout, "verified %d / %d (%.1f%%), falsified %d, unknown %d, misclassified %d in %.1f s\n",
		rep.Verified, rep.Total, 100*float64(rep.Verified)/float64(max(1, rep.Total)), rep.Falsified, rep.Unknown, rep.Misclassified, rep.Seconds)
	return nil
}

// resultText is the VNN-COMP result file for a report: the verdict, then for sat the
// counterexample assignment.
func resultText(rep *bab.Report) string {
	if rep.Result == bab.Sat && rep.Counterexample != nil {
		return "sat\n" + spec.FormatCounterexample(rep.Counterexample.X, rep.Counterexample.Y)
	}
	return string(rep.Result) + "\n"
}

func writeResultFile(path string, rep *bab.Report) error {
	if err := os.WriteFile(path, []byte(resultText(rep)), 0o644); err != nil {
		return fmt.Errorf("writing result file: %w", err)
	}
	return nil
}

// babProgress reports branch-and-bound progress on one overwritten stderr line, at
// most every half second after the first second; end clears the line if it was used.
func babProgress(w io.Writer) (progress func(bab.Progress), end func()) {
	start := time.Now()
	var last time.Time
	used := false
	progress = func(p bab.Progress) {
		if time.Since(start) < time.Second || time.Since(last) < 500*time.Millisecond {
			return
		}
		last, used = time.Now(), true
		fmt.Fprintf(w, "\rverify: %.1f s, %d subdomains bounded, %d open, lower bound %.4g   ", p.Elapsed.Seconds(), p.Bounded, p.Domains, p.Lower)
	}
	end = func() {
		if used {
			fmt.Fprint(w, "\r"+strings.Repeat(" ", 78)+"\r")
		}
	}
	return progress, end
}
