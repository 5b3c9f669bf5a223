package bab

import (
	"context"
	"encoding/csv"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/graftcert/graftcert/core/nn"
	"github.com/graftcert/graftcert/core/onnx"
	"github.com/graftcert/graftcert/core/spec"
	"github.com/graftcert/graftcert/internal/sharedtest"
)

// TestAttackFindsPlanted plants a counterexample: for a random network and a random
// point x* of the box, the row c·y ≤ c·f(x*) + tiny holds at x* (and nearby), while
// the box centre is far from it. The attack alone must find a point meeting the row,
// inside the box, confirmed by the forward pass.
func TestAttackFindsPlanted(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 5))
	for trial := 0; trial < 6; trial++ {
		in := []int{3, 20, 50}[trial%3]
		net := tinyNet(rng, in, []int{16, 16}, trial%2 == 1)
		lo, hi := make([]float64, in), make([]float64, in)
		for i := range lo {
			lo[i], hi[i] = -1, 1
		}
		// The planted point: the best of many random points, so the property is
		// violated only in a small part of the box.
		var xs []float64
		best := math.Inf(1)
		for k := 0; k < 2000; k++ {
			x := make([]float64, in)
			for i := range x {
				x[i] = lo[i] + (hi[i]-lo[i])*rng.Float64()
			}
			if y := net.Forward(x)[0]; y < best {
				best, xs = y, x
			}
		}
		D := best + 1e-6
		p := &problem{lo: lo, hi: hi, disj: [][]spec.Row{{{C: []float64{1}, D: D}}}}
		c, err := attack(context.Background(), net, p, AttackOptions{Restarts: 20, Steps: 100}, 2, uint64(trial))
		if err != nil {
			t.Fatal(err)
		}
		if c == nil {
			t.Fatalf("trial %d: no counterexample found (planted f(%v) = %v ≤ %v)", trial, xs, best, D)
		}
		if y := net.Forward(c.X)[0]; !(y <= D) || y != c.Y[0] {
			t.Fatalf("trial %d: counterexample gives %v (reported %v), want ≤ %v", trial, y, c.Y[0], D)
		}
		for i, v := range c.X {
			if v < lo[i] || v > hi[i] || float64(float32(v)) != v {
				t.Fatalf("trial %d: x[%d] = %v outside [%v, %v] or not a float32", trial, i, v, lo[i], hi[i])
			}
		}
	}
}

// TestConfirmRejects checks that confirm refuses points outside the box and points
// that do not violate, and moves inputs onto float32 values inside the box.
func TestConfirmRejects(t *testing.T) {
	net := tinyNet(rand.New(rand.NewPCG(1, 2)), 2, []int{4}, false)
	lo, hi := []float64{0.1, -1}, []float64{0.3, 1}
	y := net.Forward([]float64{0.2, 0})[0]
	p := &problem{lo: lo, hi: hi, disj: [][]spec.Row{{{C: []float64{1}, D: y + 1e-3}}}}
	if c, ok := confirm(net, p, []float64{0.2, 0}); !ok || float64(float32(c.X[0])) != c.X[0] || c.X[0] < 0.1 || c.X[0] > 0.3 {
		t.Fatalf("valid point rejected or not moved onto a float32: %v %v", c, ok)
	}
	if _, ok := confirm(net, p, []float64{0.2, 5}); ok {
		// x is clamped into the box first; only accept if the clamped point violates.
		if y2 := net.Forward([]float64{float64(float32(0.2)), 1})[0]; !(y2 <= y+1e-3) {
			t.Fatal("point outside the box accepted")
		}
	}
	p2 := &problem{lo: lo, hi: hi, disj: [][]spec.Row{{{C: []float64{1}, D: y - 10}}}}
	if _, ok := confirm(net, p2, []float64{0.2, 0}); ok {
		t.Fatal("non-violating point accepted")
	}
	// toFloat32In: 0.1 is not a float32; the nearest float32 inside [0.1, 0.3] is above it.
	if v := toFloat32In(0.1, 0.1, 0.3); v < 0.1 || float64(float32(v)) != v {
		t.Fatalf("toFloat32In(0.1) = %v", v)
	}
}

// TestTimeout runs a hard unsat ACAS Xu instance (alpha-beta-CROWN needed 84 s on a GPU)
// with a short budget: the answer must be timeout, returned within T + max(2 s, T/2).
func TestTimeout(t *testing.T) {
	dir := sharedtest.Path(t, "vnncomp", "acasxu")
	net, err := onnx.DecodeFile(filepath.Join(dir, "onnx", "ACASXU_run2a_3_3_batch_2000.onnx"))
	if err != nil {
		t.Fatal(err)
	}
	v, err := spec.ParseVNNLIBFile(filepath.Join(dir, "vnnlib", "prop_2.vnnlib"), net.InSize(), net.OutSize())
	if err != nil {
		t.Fatal(err)
	}
	for _, T := range []time.Duration{time.Second, 3 * time.Second} {
		start := time.Now()
		rep, err := Verify(context.Background(), net, v, Options{Timeout: T, AttackFirst: true})
		if err != nil {
			t.Fatal(err)
		}
		took := time.Since(start)
		if rep.Result != Timeout {
			t.Errorf("T = %v: answered %s", T, rep.Result)
		}
		if limit := T + max(2*time.Second, T/2); took > limit {
			t.Errorf("T = %v: returned after %v, limit %v", T, took, limit)
		}
	}
	// Cancellation of the caller's context ends the run the same way.
	ctx, cancel := context.WithCancel(context.Background())
	go func() { time.Sleep(500 * time.Millisecond); cancel() }()
	start := time.Now()
	rep, err := Verify(ctx, net, v, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Result != Timeout || time.Since(start) > 3*time.Second {
		t.Errorf("cancelled run: %s after %v", rep.Result, time.Since(start))
	}
}

// benchmarkRow is one instance with its expected verdict and timeout.
type benchmarkRow struct {
	onnx, vnnlib, expected string
	timeout                float64
}

func readBenchmark(t *testing.T, bench string) (string, []benchmarkRow) {
	t.Helper()
	dir := sharedtest.Path(t, "vnncomp", bench)
	read := func(name string) [][]string {
		f, err := os.Open(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		r := csv.NewReader(f)
		r.FieldsPerRecord = -1
		recs, err := r.ReadAll()
		if err != nil {
			t.Fatal(err)
		}
		return recs
	}
	exp := map[[2]string]string{}
	for _, r := range read("expected.csv")[1:] {
		exp[[2]string{r[0], r[1]}] = r[2]
	}
	var rows []benchmarkRow
	for _, r := range read("instances.csv") {
		if len(r) < 3 {
			continue
		}
		to, err := strconv.ParseFloat(r[2], 64)
		if err != nil {
			t.Fatal(err)
		}
		rows = append(rows, benchmarkRow{r[0], r[1], exp[[2]string{r[0], r[1]}], to})
	}
	return dir, rows
}

// runInstances verifies the rows and checks every answer against the expected
// verdicts: no unsound answer, every counterexample confirmed by the forward pass, and
// (when requireSat) every expected-sat instance answered sat within its timeout.
func runInstances(t *testing.T, dir string, rows []benchmarkRow, scale float64, requireSat bool) map[Status]int {
	t.Helper()
	nets := map[string]*nn.Network{}
	count := map[Status]int{}
	for _, r := range rows {
		net := nets[r.onnx]
		if net == nil {
			var err error
			if net, err = onnx.DecodeFile(filepath.Join(dir, r.onnx)); err != nil {
				t.Fatal(err)
			}
			nets[r.onnx] = net
		}
		v, err := spec.ParseVNNLIBFile(filepath.Join(dir, r.vnnlib), net.InSize(), net.OutSize())
		if err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		// As `graftcert vnncomp` runs them (refinement on, at its default share).
		rep, err := Verify(context.Background(), net, v, Options{Timeout: time.Duration(r.timeout * scale * float64(time.Second)), AttackFirst: true, Refine: 0.3})
		if err != nil {
			t.Fatalf("%s %s: %v", r.onnx, r.vnnlib, err)
		}
		count[rep.Result]++
		t.Logf("%s %s: %s in %.1f s (expected %s; %d subdomains)", r.onnx, r.vnnlib, rep.Result, time.Since(start).Seconds(), r.expected, rep.Stats.Domains)
		switch {
		case rep.Result == Unsat && r.expected == "sat", rep.Result == Sat && r.expected == "unsat":
			t.Errorf("%s %s: UNSOUND answer %s, expected %s", r.onnx, r.vnnlib, rep.Result, r.expected)
		case rep.Result == Sat:
			y := net.Forward(rep.Counterexample.X)
			if !v.IsCounterexample(rep.Counterexample.X, y, 0) {
				t.Errorf("%s %s: counterexample not confirmed by the forward pass", r.onnx, r.vnnlib)
			}
		case requireSat && r.expected == "sat":
			t.Errorf("%s %s: expected sat, answered %s", r.onnx, r.vnnlib, rep.Result)
		}
	}
	return count
}

// TestVNNCOMPQuick runs a quick subset of the shared VNN-COMP benchmarks: every test
// instance, ACAS Xu instances of properties 1 to 4 (three of them sat), four mnist_fc
// instances (one sat, three unsat: one needs branch and bound, one the refinement) and one oval21
// convolutional instance, each with a quarter of its timeout; every one must be solved.
func TestVNNCOMPQuick(t *testing.T) {
	pick := map[string][][2]string{
		"test": nil, // all
		"acasxu": {
			{"onnx/ACASXU_run2a_1_1_batch_2000.onnx", "vnnlib/prop_1.vnnlib"},
			{"onnx/ACASXU_run2a_1_7_batch_2000.onnx", "vnnlib/prop_2.vnnlib"},
			{"onnx/ACASXU_run2a_2_9_batch_2000.onnx", "vnnlib/prop_2.vnnlib"},
			{"onnx/ACASXU_run2a_1_7_batch_2000.onnx", "vnnlib/prop_3.vnnlib"},
			{"onnx/ACASXU_run2a_1_1_batch_2000.onnx", "vnnlib/prop_4.vnnlib"},
			// sat, 3e-5 deep in a region a few thousandths of the box wide: only the
			// attacks on promising sub-boxes of the input split find it.
			{"onnx/ACASXU_run2a_5_3_batch_2000.onnx", "vnnlib/prop_2.vnnlib"},
		},
		"mnist_fc": {
			{"onnx/mnist-net_256x2.onnx", "vnnlib/prop_1_0.03.vnnlib"},
			{"onnx/mnist-net_256x2.onnx", "vnnlib/prop_0_0.03.vnnlib"},
			{"onnx/mnist-net_256x2.onnx", "vnnlib/prop_10_0.05.vnnlib"}, // needs ReLU-split BaB
			// unsat; plain branch and bound stalls (a global bound of −1.137 for 300 s),
			// the refined intermediate bounds prove it at the root
			{"onnx/mnist-net_256x4.onnx", "vnnlib/prop_0_0.05.vnnlib"},
		},
		"oval21": {
			{"onnx/cifar_deep_kw.onnx", "vnnlib/cifar_deep_kw-img8406-eps0.00392156862745098.vnnlib"},
		},
	}
	for _, bench := range []string{"test", "acasxu", "mnist_fc", "oval21"} {
		dir, rows := readBenchmark(t, bench)
		var sel []benchmarkRow
		for _, r := range rows {
			if pick[bench] == nil {
				sel = append(sel, r)
				continue
			}
			for _, p := range pick[bench] {
				if r.onnx == p[0] && r.vnnlib == p[1] {
					sel = append(sel, r)
				}
			}
		}
		c := runInstances(t, dir, sel, 0.25, true)
		if c[Sat]+c[Unsat] != len(sel) {
			t.Errorf("%s: solved %d of %d", bench, c[Sat]+c[Unsat], len(sel))
		}
	}
}

// TestVNNCOMPFull runs every shared VNN-COMP instance at the competition's timeouts
// (GRAFTCERT_FULL=1 only: it takes hours).
func TestVNNCOMPFull(t *testing.T) {
	if os.Getenv("GRAFTCERT_FULL") == "" {
		t.Skip("set GRAFTCERT_FULL=1")
	}
	for _, bench := range []string{"test", "acasxu", "mnist_fc", "oval21"} {
		dir, rows := readBenchmark(t, bench)
		c := runInstances(t, dir, rows, 1, true)
		t.Logf("%s: sat %d unsat %d unknown %d timeout %d", bench, c[Sat], c[Unsat], c[Unknown], c[Timeout])
	}
}
