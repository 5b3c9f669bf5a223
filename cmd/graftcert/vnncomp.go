package main

import (
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/graftcert/graftcert/core/bab"
	"github.com/graftcert/graftcert/core/nn"
	"github.com/graftcert/graftcert/core/onnx"
	"github.com/graftcert/graftcert/core/spec"
)

func init() {
	register("vnncomp", "run every instance of a VNN-COMP benchmark (instances.csv) and write results.csv", runVNNComp)
}

// instance is one row of a VNN-COMP instances.csv.
type instance struct {
	onnx, vnnlib string // as written in the CSV, relative to its folder
	timeout      float64
}

func readInstances(path string) ([]instance, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	r := csv.NewReader(f)
	r.FieldsPerRecord = -1
	r.TrimLeadingSpace = true
	var out []instance
	for line := 1; ; line++ {
		rec, err := r.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		if len(rec) == 1 && strings.TrimSpace(rec[0]) == "" {
			continue
		}
		if len(rec) != 3 {
			return nil, fmt.Errorf("%s:%d: want onnx,vnnlib,timeout, got %d fields", path, line, len(rec))
		}
		t, err := strconv.ParseFloat(strings.TrimSpace(rec[2]), 64)
		if err != nil || !(t > 0) || math.IsInf(t, 0) {
			return nil, fmt.Errorf("%s:%d: timeout %q is not a positive number", path, line, rec[2])
		}
		out = append(out, instance{onnx: strings.TrimSpace(rec[0]), vnnlib: strings.TrimSpace(rec[1]), timeout: t})
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s: no instances", path)
	}
	return out, nil
}

func runVNNComp(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("vnncomp", stderr)
	instPath := fs.String("instances", "", "the benchmark's instances.csv `file`")
	scale := fs.Float64("timeout-scale", 1, "multiply every instance's timeout by this factor")
	outPath := fs.String("out", "", "results CSV `file` (onnx,vnnlib,result,seconds)")
	cexDir := fs.String("cex-dir", "", "write each instance's VNN-COMP result file into this `directory`")
	filter := fs.String("filter", "", "only run instances whose onnx or vnnlib path contains this `text`")
	shard := shardFlag(fs)
	bf := addBabFlags(fs)
	if err := parse(fs, args); err != nil {
		return err
	}
	if *instPath == "" || *outPath == "" {
		return errors.New("--instances and --out are required")
	}
	if !(*scale > 0) || math.IsInf(*scale, 0) {
		return fmt.Errorf("--timeout-scale %v: must be positive", *scale)
	}
	all, err := readInstances(*instPath)
	if err != nil {
		return err
	}
	insts := shardItems(*shard, all)
	base := filepath.Dir(*instPath)
	if *cexDir != "" {
		if err := os.MkdirAll(*cexDir, 0o755); err != nil {
			return err
		}
	}
	f, err := os.Create(*outPath)
	if err != nil {
		return err
	}
	defer f.Close()
	w := csv.NewWriter(f)
	w.Write([]string{"onnx", "vnnlib", "result", "seconds"})
	w.Flush()
	nets := map[string]*nn.Network{}
	results := map[[2]string]string{}
	for k, in := range insts {
		if *filter != "" && !strings.Contains(in.onnx, *filter) && !strings.Contains(in.vnnlib, *filter) {
			continue
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		t0 := time.Now()
		opts, err := bf.options(in.timeout * *scale)
		if err != nil {
			return err
		}
		opts.AttackFirst = true
		result, rep, msg := runInstance(ctx, nets, filepath.Join(base, in.onnx), filepath.Join(base, in.vnnlib), opts)
		secs := time.Since(t0).Seconds()
		results[[2]string{in.onnx, in.vnnlib}] = result
		w.Write([]string{in.onnx, in.vnnlib, result, strconv.FormatFloat(secs, 'f', 2, 64)})
		w.Flush()
		if err := w.Error(); err != nil {
			return err
		}
		extra := ""
		if rep != nil {
			extra = fmt.Sprintf(" (%d subdomains, %s", rep.Stats.Domains, rep.Stats.Mode)
			if rep.Stats.Reason != "" {
				extra += ", " + rep.Stats.Reason
			}
			extra += ")"
		}
		if msg != "" {
			extra = ": " + msg
		}
		fmt.Fprintf(stderr, "vnncomp %d/%d %s %s: %s in %.1f s%s\n", k+1, len(insts), in.onnx, in.vnnlib, result, secs, extra)
		if *cexDir != "" && rep != nil {
			name := stem(in.onnx) + "__" + stem(in.vnnlib) + ".txt"
			if err := os.WriteFile(filepath.Join(*cexDir, name), []byte(resultText(rep)), 0o644); err != nil {
				return err
			}
		}
	}
	return summarize(stdout, base, insts, results)
}

func stem(p string) string {
	b := filepath.Base(p)
	return strings.TrimSuffix(b, filepath.Ext(b))
}

// runInstance verifies one instance; errors become the result "error".
func runInstance(ctx context.Context, nets map[string]*nn.Network, onnxPath, vnnPath string, opts bab.Options) (string, *bab.Report, string) {
	net := nets[onnxPath]
	if net == nil {
		var err error
		if net, err = onnx.DecodeFile(onnxPath); err != nil {
			return "error", nil, err.Error()
		}
		nets[onnxPath] = net
	}
	v, err := spec.ParseVNNLIBFile(vnnPath, net.InSize(), net.OutSize())
	if err != nil {
		return "error", nil, err.Error()
	}
	rep, err := bab.Verify(ctx, net, v, opts)
	if err != nil {
		return "error", nil, err.Error()
	}
	return string(rep.Result), rep, ""
}

// summarize prints, when the benchmark folder holds expected.csv (and abcrown.csv),
// the solved counts beside the expected verdicts and alpha-beta-CROWN's answers, and
// lists every unsound answer.
func summarize(w io.Writer, base string, insts []instance, results map[[2]string]string) error {
	expected, err := readKeyed(filepath.Join(base, "expected.csv"), "expected")
	if err != nil {
		return nil // no expected verdicts: nothing to compare
	}
	abcrown, _ := readKeyed(filepath.Join(base, "abcrown.csv"), "abcrown_result")
	var n, sat, unsat, unsound, ab, abRun int
	var bad []string
	for _, in := range insts {
		key := [2]string{in.onnx, in.vnnlib}
		res, ran := results[key]
		if !ran {
			continue
		}
		n++
		exp := expected[key]
		switch res {
		case "sat":
			sat++
		case "unsat":
			unsat++
		}
		if res == "sat" && exp == "unsat" || res == "unsat" && exp == "sat" {
			unsound++
			bad = append(bad, fmt.Sprintf("%s %s: answered %s, expected %s", in.onnx, in.vnnlib, res, exp))
		}
		if a, ok := abcrown[key]; ok {
			abRun++
			if a == "sat" || a == "unsat" {
				ab++
			}
		}
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "benchmark\tinstances\tsolved\tsat\tunsat\tunsound\talpha-beta-CROWN solved\n")
	abs := "-"
	if abRun > 0 {
		abs = fmt.Sprintf("%d/%d", ab, abRun)
	}
	fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%d\t%s\n", filepath.Base(base), n, sat+unsat, sat, unsat, unsound, abs)
	tw.Flush()
	for _, b := range bad {
		fmt.Fprintln(w, "UNSOUND:", b)
	}
	return nil
}

// readKeyed reads a CSV with header onnx,vnnlib,…, returning column col by instance.
func readKeyed(path, col string) (map[[2]string]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	r := csv.NewReader(f)
	r.FieldsPerRecord = -1
	recs, err := r.ReadAll()
	if err != nil || len(recs) == 0 {
		return nil, fmt.Errorf("%s: unreadable", path)
	}
	ci := -1
	for i, h := range recs[0] {
		if h == col {
			ci = i
		}
	}
	if ci < 2 {
		return nil, fmt.Errorf("%s: no column %s", path, col)
	}
	out := map[[2]string]string{}
	for _, rec := range recs[1:] {
		if len(rec) > ci {
			out[[2]string{rec[0], rec[1]}] = rec[ci]
		}
	}
	return out, nil
}
