package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/graftcert/graftcert/core/data"
	"github.com/graftcert/graftcert/core/experiment"
	"github.com/graftcert/graftcert/core/onnx"
	"github.com/graftcert/graftcert/core/train"
)

// `graftcert experiment` on a tiny configuration writes the report, both figures and the
// models; its clean accuracies agree with the saved models; --render rebuilds the same
// report without computing; --resume reuses every model.
func TestExperimentCommand(t *testing.T) {
	out, work := filepath.Join(t.TempDir(), "report"), t.TempDir()
	args := []string{"experiment", "--train-count", "512", "--train-epochs", "1", "--epochs", "1", "--eps", "0.05",
		"--ratios", "0.5", "--calibration", "100", "--clean-count", "300", "--pgd-count", "30", "--pgd-steps", "2",
		"--crown-count", "8", "--alpha-count", "2", "--alpha-iterations", "2", "--complete-count", "0",
		"--out", out, "--work", work}
	code, stdout, stderr := gcRun(context.Background(), args...)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	if !strings.Contains(stdout, "wrote "+filepath.Join(out, "README.md")+" (3 models") {
		t.Errorf("stdout %q", stdout)
	}
	for _, want := range []string{"baseline: epoch 1/1 loss", "grafted-0.5: 250 of 500 neurons grafted", "pruned-0.5: epoch 1/1", "grafted-0.5: crown verified"} {
		if !strings.Contains(stderr, want) {
			t.Errorf("progress lacks %q:\n%s", want, stderr)
		}
	}
	report, err := os.ReadFile(filepath.Join(out, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	md := string(report)
	if !strings.Contains(md, "graftcert "+shellJoin(args)) {
		t.Errorf("report does not quote the command")
	}
	for _, f := range []string{experiment.VerifiedFigure, experiment.UnstableFigure} {
		if b, err := os.ReadFile(filepath.Join(out, f)); err != nil || !strings.HasPrefix(string(b), "<?xml") {
			t.Errorf("%s: %v", f, err)
		}
	}
	res, err := experiment.ReadResult(work)
	if err != nil {
		t.Fatal(err)
	}
	Xt, yt, err := data.LoadMNIST("test")
	if err != nil {
		t.Fatal(err)
	}
	test := train.Data{X: Xt[:300*784], Labels: yt[:300]}
	for _, row := range res.Rows {
		net, err := onnx.DecodeFile(filepath.Join(work, row.Model+".onnx"))
		if err != nil {
			t.Fatal(err)
		}
		m, _ := train.Evaluate(context.Background(), net, test, 0)
		if row.Clean.Correct != m.Correct {
			t.Errorf("%s: report says %d correct, the saved model gets %d", row.Model, row.Clean.Correct, m.Correct)
		}
		if !strings.Contains(md, "| "+row.Kind+" | ") {
			t.Errorf("report has no %s row", row.Kind)
		}
	}

	// --render: the same report from result.json, nothing recomputed.
	if err := os.Remove(filepath.Join(out, "README.md")); err != nil {
		t.Fatal(err)
	}
	code, _, stderr = gcRun(context.Background(), "experiment", "--render", "--out", out, "--work", work)
	if code != 0 {
		t.Fatalf("render: exit %d: %s", code, stderr)
	}
	again, _ := os.ReadFile(filepath.Join(out, "README.md"))
	if string(again) != md {
		t.Error("--render gives a different report")
	}

	// --resume: every model and its evaluation is reused.
	code, _, stderr = gcRun(context.Background(), append(args, "--resume")...)
	if code != 0 {
		t.Fatalf("resume: exit %d: %s", code, stderr)
	}
	if strings.Count(stderr, ": reusing ") != 3 || strings.Contains(stderr, "epoch 1/1") {
		t.Errorf("resume retrained:\n%s", stderr)
	}
}

func TestExperimentBadFlags(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"experiment", "--ratios", "0.5,x"}, "--ratios"},
		{[]string{"experiment", "--ratios", "0.5,1.2", "--work", t.TempDir()}, "ratio 1.2"},
		{[]string{"experiment", "--score", "size"}, "size"},
		{[]string{"experiment", "--render", "--work", t.TempDir()}, "no result.json"},
		{[]string{"experiment", "--eps", "-0.1"}, "--eps"},
	} {
		code, _, stderr := gcRun(context.Background(), tc.args...)
		if code != 1 || !strings.Contains(stderr, tc.want) {
			t.Errorf("%v: exit %d, stderr %q, want %q", tc.args, code, stderr, tc.want)
		}
	}
}
