package main

import (
	"encoding/csv"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/graftcert/graftcert/core/onnx"
	"github.com/graftcert/graftcert/core/spec"
	"github.com/graftcert/graftcert/internal/sharedtest"
)

// TestVerifyVNNLIB checks the property mode's JSON and result file on the `test`
// benchmark: test_sat violates test_prop (a counterexample that the forward pass
// confirms, written in the competition's format), test_unsat satisfies it.
func TestVerifyVNNLIB(t *testing.T) {
	dir := sharedtest.Path(t, "vnncomp", "test")
	prop := filepath.Join(dir, "vnnlib", "test_prop.vnnlib")
	tmp := t.TempDir()
	for _, c := range []struct{ model, want string }{{"test_sat", "sat"}, {"test_unsat", "unsat"}} {
		model := filepath.Join(dir, "onnx", c.model+".onnx")
		out := filepath.Join(tmp, c.model+".txt")
		code, stdout, stderr := cli(t, "verify", "--model", model, "--vnnlib", prop, "--timeout", "30", "--out", out, "--json")
		if code != 0 {
			t.Fatalf("%s: exit %d: %s", c.model, code, stderr)
		}
		var rep struct {
			Result         string           `json:"result"`
			Seconds        *float64         `json:"seconds"`
			Counterexample *json.RawMessage `json:"counterexample"`
			Stats          map[string]any   `json:"stats"`
		}
		if err := json.Unmarshal([]byte(stdout), &rep); err != nil {
			t.Fatalf("%s: %v\n%s", c.model, err, stdout)
		}
		if rep.Result != c.want || rep.Seconds == nil || rep.Stats["domains"] == nil {
			t.Fatalf("%s: result %q (want %s), seconds %v, stats %v", c.model, rep.Result, c.want, rep.Seconds, rep.Stats)
		}
		if !strings.Contains(stdout, `"counterexample"`) {
			t.Fatalf("%s: no counterexample field", c.model)
		}
		text, err := os.ReadFile(out)
		if err != nil {
			t.Fatal(err)
		}
		if c.want == "unsat" {
			if !(rep.Counterexample == nil || string(*rep.Counterexample) == "null") || string(text) != "unsat\n" {
				t.Fatalf("%s: counterexample %v, result file %q", c.model, rep.Counterexample, text)
			}
			continue
		}
		var cex struct{ X, Y []float64 }
		if err := json.Unmarshal(*rep.Counterexample, &cex); err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(string(text), "sat\n((X_0 ") {
			t.Fatalf("result file %q", text)
		}
		x, y, err := spec.ParseCounterexampleBytes(text)
		if err != nil {
			t.Fatal(err)
		}
		net, err := onnx.DecodeFile(model)
		if err != nil {
			t.Fatal(err)
		}
		v, err := spec.ParseVNNLIBFile(prop, net.InSize(), net.OutSize())
		if err != nil {
			t.Fatal(err)
		}
		fy := net.Forward(x)
		if !v.IsCounterexample(x, fy, 0) || len(y) != len(fy) || len(cex.X) != len(x) {
			t.Fatalf("counterexample %v → %v does not violate the property", x, fy)
		}
		for i := range y {
			if y[i] != fy[i] || cex.Y[i] != fy[i] {
				t.Fatalf("Y_%d = %v, forward pass gives %v", i, y[i], fy[i])
			}
		}
	}
}

// TestVerifyClassification checks the data mode: on mnist_6_100 at eps 0.026, samples 0
// and 1 are proven (alpha-CROWN already proves them: reference margins positive) and
// sample 8 is misclassified; at eps 0.3 sample 0 is falsified with an input of the box.
func TestVerifyClassification(t *testing.T) {
	model := sharedtest.Path(t, "models", "mnist_6_100.onnx")
	X := sharedtest.Path(t, "data", "mnist_eran_X.npy")
	y := sharedtest.Path(t, "data", "mnist_eran_y.npy")
	type sample struct {
		Index          int       `json:"index"`
		Label          int       `json:"label"`
		Pred           int       `json:"pred"`
		Result         string    `json:"result"`
		Seconds        *float64  `json:"seconds"`
		Counterexample []float64 `json:"counterexample"`
	}
	type report struct {
		Verified, Falsified, Unknown, Misclassified, Total int
		Seconds                                            *float64
		Samples                                            []sample
	}
	run := func(args ...string) report {
		t.Helper()
		code, stdout, stderr := cli(t, append([]string{"verify", "--model", model, "--data", X, "--labels", y, "--json", "--timeout", "20"}, args...)...)
		if code != 0 {
			t.Fatalf("exit %d: %s", code, stderr)
		}
		var r report
		if err := json.Unmarshal([]byte(stdout), &r); err != nil {
			t.Fatal(err)
		}
		for _, k := range []string{`"verified"`, `"falsified"`, `"unknown"`, `"misclassified"`, `"total"`, `"seconds"`, `"samples"`, `"counterexample"`, `"pred"`, `"result"`} {
			if !strings.Contains(stdout, k) {
				t.Fatalf("JSON lacks %s", k)
			}
		}
		return r
	}
	r := run("--eps", "0.026", "--count", "2")
	if r.Verified != 2 || r.Total != 2 || len(r.Samples) != 2 || r.Samples[1].Index != 1 || r.Samples[0].Result != "verified" || r.Samples[0].Counterexample != nil || r.Seconds == nil {
		t.Fatalf("eps 0.026, samples 0-1: %+v", r)
	}
	r = run("--eps", "0.026", "--start", "8", "--count", "1")
	if r.Misclassified != 1 || r.Samples[0].Result != "misclassified" || r.Samples[0].Label != 5 || r.Samples[0].Pred != 6 {
		t.Fatalf("sample 8: %+v", r)
	}
	r = run("--eps", "0.3", "--count", "1")
	s := r.Samples[0]
	if r.Falsified != 1 || s.Result != "falsified" || len(s.Counterexample) != 784 {
		t.Fatalf("eps 0.3: %+v", r)
	}
}

// TestVNNCompCommand runs the `test` benchmark through the vnncomp command and checks
// the results CSV and the result files.
func TestVNNCompCommand(t *testing.T) {
	inst := sharedtest.Path(t, "vnncomp", "test", "instances.csv")
	tmp := t.TempDir()
	out := filepath.Join(tmp, "results.csv")
	cex := filepath.Join(tmp, "cex")
	code, stdout, stderr := cli(t, "vnncomp", "--instances", inst, "--out", out, "--cex-dir", cex, "--timeout-scale", "0.5")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	f, err := os.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	recs, err := csv.NewReader(f).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(recs[0], ",") != "onnx,vnnlib,result,seconds" || len(recs) != 6 {
		t.Fatalf("results: %v", recs)
	}
	want := map[string]string{"onnx/test_sat.onnx": "sat", "onnx/test_unsat.onnx": "unsat", "onnx/test_nano.onnx": "unsat"}
	for _, r := range recs[1:] {
		if w, ok := want[r[0]]; ok && r[2] != w {
			t.Errorf("%s: %s, want %s", r[0], r[2], w)
		}
		if r[2] == "error" {
			t.Errorf("%s: error", r[0])
		}
	}
	b, err := os.ReadFile(filepath.Join(cex, "test_sat__test_prop.txt"))
	if err != nil || !strings.HasPrefix(string(b), "sat\n") {
		t.Fatalf("result file: %q %v", b, err)
	}
	if !strings.Contains(stdout, "unsound") || !strings.Contains(stdout, "test") {
		t.Fatalf("no summary: %s", stdout)
	}
}

// TestVerifyBadInput checks the one-line errors of the verify and vnncomp commands.
func TestVerifyBadInput(t *testing.T) {
	model := sharedtest.Path(t, "models", "mnist_6_100.onnx")
	X := sharedtest.Path(t, "data", "mnist_eran_X.npy")
	y := sharedtest.Path(t, "data", "mnist_eran_y.npy")
	prop := sharedtest.Path(t, "vnncomp", "test", "vnnlib", "test_prop.vnnlib")
	for _, c := range []struct {
		args []string
		msg  string
	}{
		{[]string{"verify", "--model", model, "--data", X, "--labels", y}, "--eps"},
		{[]string{"verify", "--model", model, "--data", X, "--labels", y, "--eps", "0.1", "--vnnlib", prop}, "not both"},
		{[]string{"verify", "--model", model, "--data", X, "--labels", y, "--eps", "0.1", "--timeout", "-3"}, "timeout"},
		{[]string{"verify", "--model", model, "--data", X, "--labels", y, "--eps", "0.1", "--mode", "sideways"}, "--mode"},
		{[]string{"verify", "--model", model, "--data", X, "--labels", y, "--eps", "0.1", "--refine", "1.5"}, "--refine"},
		{[]string{"verify", "--model", model, "--data", X, "--labels", y, "--eps", "0.1", "--refine-domains", "-2"}, "negative"},
		{[]string{"verify", "--model", model, "--vnnlib", prop}, "784"},
		{[]string{"vnncomp", "--out", "x.csv"}, "--instances"},
		{[]string{"vnncomp", "--instances", prop, "--out", filepath.Join(t.TempDir(), "r.csv")}, "fields"},
	} {
		code, _, stderr := cli(t, c.args...)
		if code == 0 || !strings.Contains(stderr, c.msg) {
			t.Errorf("%v: exit %d, stderr %q (want it to mention %q)", c.args, code, stderr, c.msg)
		}
	}
}
