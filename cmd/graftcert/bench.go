package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/graftcert/graftcert/core/certify"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/graftcert/graftcert/core/crown"
	"github.com/graftcert/graftcert/core/data"
	"github.com/graftcert/graftcert/core/nn"
	"github.com/graftcert/graftcert/core/onnx"
	"github.com/graftcert/graftcert/core/spec"
)

func init() {
	register("bench", "time IBP, CROWN and alpha-CROWN per sample on the shared models", runBench)
}

// auto_LiRPA's per-sample medians on the same 2-core machine (torch CPU, 2 threads,
// normalisation folded, patches mode), from the issues that set the speed goals.
var lirpaCROWN = map[string]float64{
	"mnist_6_100": 0.021, "mnist_9_100": 0.044, "mnist_6_200": 0.025, "mnist_9_200": 0.107,
	"mnist_conv_small": 0.010, "mnist_cnn_a_adv": 0.021, "cifar_conv_small": 0.022,
	"cifar_cnn_a_adv": 0.020, "cifar_cnn_a_adv4": 0.016, "cifar_cnn_a_mix": 0.027,
	"cifar_cnn_a_mix4": 0.024, "oval_cifar_base": 0.011, "oval_cifar_wide": 0.018, "oval_cifar_deep": 0.038,
}

var lirpaAlpha = map[string]float64{
	"mnist_6_100": 0.88, "mnist_9_100": 2.40, "mnist_6_200": 2.03, "mnist_9_200": 5.61,
	"mnist_conv_small": 0.66, "mnist_cnn_a_adv": 1.71, "cifar_conv_small": 1.61,
	"cifar_cnn_a_adv": 1.64, "cifar_cnn_a_adv4": 1.63, "cifar_cnn_a_mix": 2.37,
	"cifar_cnn_a_mix4": 1.88, "oval_cifar_base": 0.47, "oval_cifar_wide": 1.83, "oval_cifar_deep": 1.50,
}

const lirpaIBP = 0.003

var benchModels = []string{
	"mnist_6_100", "mnist_9_100", "mnist_6_200", "mnist_9_200", "mnist_conv_small",
	"mnist_cnn_a_adv", "cifar_conv_small", "cifar_cnn_a_adv", "cifar_cnn_a_adv4",
	"cifar_cnn_a_mix", "cifar_cnn_a_mix4", "oval_cifar_base", "oval_cifar_wide", "oval_cifar_deep",
}

func runBench(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("bench", stderr)
	dir := fs.String("testdata", "../shared/testdata", "shared testdata `dir` (models/, data/, reference/)")
	models := fs.String("models", "", "comma-separated model names (default: the 14 shared models with timings)")
	methods := fs.String("methods", "ibp,crown,alpha-crown", "comma-separated methods")
	samples := fs.Int("samples", 10, "samples per model (0 … n−1)")
	// With 4 samples, one that runs all 20 iterations while the others stop early made
	// the --jobs throughput mostly a measure of that one sample (mnist_6_100: 1.46× from
	// one job to two with 4 samples, 1.76× with 8).
	alphaSamples := fs.Int("alpha-samples", 8, "samples per model for alpha-crown (slow)")
	jobs := fs.Int("jobs", runtime.GOMAXPROCS(0), "goroutines for the throughput column")
	repeat := fs.Int("repeat", 3, "times each measurement is repeated; the fastest counts (timings on a shared machine only ever err slow)")
	synthetic := fs.String("synthetic", "", "bench a synthetic network instead (cnn-b)")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *repeat < 1 {
		return fmt.Errorf("--repeat %d: must be at least 1", *repeat)
	}
	if *synthetic != "" {
		return benchSynthetic(ctx, *synthetic, stdout)
	}
	names := benchModels
	if *models != "" {
		names = strings.Split(*models, ",")
	}
	var ms []crown.Method
	for _, s := range strings.Split(*methods, ",") {
		m, err := crown.ParseMethod(strings.TrimSpace(s))
		if err != nil {
			return err
		}
		ms = append(ms, m)
	}
	fmt.Fprintf(stdout, "Per-sample time in ms on %d cores: median latency with one sample at a time (lat),\n"+
		"and wall time / samples with --jobs %d (thr), beside auto_LiRPA's per-sample median (2 threads).\n"+
		"Each timing is the fastest of %d runs.\n\n", runtime.NumCPU(), *jobs, *repeat)
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "model\t")
	for _, m := range ms {
		fmt.Fprintf(tw, "%s lat\tthr\tauto_LiRPA\tthr/LiRPA\t", m)
	}
	fmt.Fprintln(tw)
	for _, name := range names {
		if err := ctx.Err(); err != nil {
			return err
		}
		net, X, labels, eps, err := benchLoad(*dir, name)
		if err != nil {
			return err
		}
		fmt.Fprintf(tw, "%s\t", name)
		for _, m := range ms {
			n := *samples
			if m == crown.AlphaCROWN {
				n = *alphaSamples
			}
			med, err := medianTime(ctx, net, X, labels, eps, m, n, *repeat)
			if err != nil {
				return fmt.Errorf("%s %s: %w", name, m, err)
			}
			thr := math.Inf(1)
			for r := 0; r < *repeat; r++ {
				t, err := throughput(ctx, net, X, labels, eps, m, n, *jobs)
				if err != nil {
					return fmt.Errorf("%s %s: %w", name, m, err)
				}
				thr = min(thr, t)
			}
			ref := map[crown.Method]float64{crown.IBP: lirpaIBP, crown.CROWN: lirpaCROWN[name], crown.AlphaCROWN: lirpaAlpha[name]}[m]
			if ref > 0 {
				fmt.Fprintf(tw, "%.2f\t%.2f\t%.1f\t%.2f\t", med*1000, thr*1000, ref*1000, thr/ref)
			} else {
				fmt.Fprintf(tw, "%.2f\t%.2f\t-\t-\t", med*1000, thr*1000)
			}
		}
		fmt.Fprintln(tw)
		fmt.Fprintf(stderr, "bench: %s done\n", name)
	}
	return tw.Flush()
}

// throughput is the wall time per sample of certifying n samples on jobs goroutines.
func throughput(ctx context.Context, net *nn.Network, X *data.Array, labels []int, eps float64, m crown.Method, n, jobs int) (float64, error) {
	idx := make([]int, n)
	for i := range idx {
		idx[i] = i
	}
	start := time.Now()
	_, err := certify.Run(ctx, net, "", X.Data, labels, idx, certify.Options{Eps: eps, Jobs: jobs, Bound: crown.Options{Method: m}}, nil)
	return time.Since(start).Seconds() / float64(n), err
}

// benchSynthetic times CROWN and α-CROWN on a fixed-seed random network of the paper's
// CNN-B shape (CIFAR input) and reports the peak resident memory.
func benchSynthetic(ctx context.Context, name string, stdout io.Writer) error {
	if name != "cnn-b" {
		return fmt.Errorf("unknown synthetic network %q (want cnn-b)", name)
	}
	net := syntheticCNNB(1)
	rng := rand.New(rand.NewPCG(2, 3))
	x := make([]float64, net.InSize())
	for i := range x {
		x[i] = rng.Float64()
	}
	lo, hi, err := spec.Box(x, 2.0/255)
	if err != nil {
		return err
	}
	label := nn.Argmax(net.Forward(x))
	C, err := spec.Margin(label, net.OutSize())
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "synthetic CNN-B: %d parameters, %d ReLUs, input %v\n", net.NumParams(), net.NumNeurons(), net.Input)
	for _, m := range []crown.Method{crown.CROWN, crown.AlphaCROWN} {
		fmt.Fprintf(stdout, "%-12s estimated memory %.2f GB\n", m, float64(crown.EstimateMemory(net, m, len(C)/net.OutSize()))/1e9)
		start := time.Now()
		res, err := crown.Bound(ctx, net, lo, hi, C, crown.Options{Method: m})
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "%-12s %.2f s, min margin lb %.4f, unstable %v, peak RSS %.0f MB\n", m, time.Since(start).Seconds(),
			minOf(res.Lower), res.Unstable, float64(peakRSS())/1e6)
	}
	return nil
}

// syntheticCNNB: Conv 3→32 5×5/2 p2, Conv 32→128 4×4/2 p1, FC 8192→250, FC 250→10
// (about 2.1M parameters), He-scaled normal weights from a fixed seed, CIFAR
// normalisation in front.
func syntheticCNNB(seed uint64) *nn.Network {
	rng := rand.New(rand.NewPCG(seed, 7))
	fill := func(n, fanIn int) []float64 {
		w := make([]float64, n)
		s := math.Sqrt(2 / float64(fanIn))
		for i := range w {
			w[i] = rng.NormFloat64() * s
		}
		return w
	}
	mean, std := []float64{0.4914, 0.4822, 0.4465}, []float64{0.2471, 0.2435, 0.2616}
	norm := &nn.Affine{NodeName: "normalize", Scale: make([]float64, 3*32*32), Shift: make([]float64, 3*32*32)}
	for c := 0; c < 3; c++ {
		for i := 0; i < 1024; i++ {
			norm.Scale[c*1024+i] = 1 / std[c]
			norm.Shift[c*1024+i] = -mean[c] / std[c]
		}
	}
	c1 := &nn.Conv2d{NodeName: "conv1", InC: 3, OutC: 32, KH: 5, KW: 5, SH: 2, SW: 2, DH: 1, DW: 1, PT: 2, PL: 2, PB: 2, PR: 2,
		W: fill(32*3*25, 75), B: make([]float64, 32)}
	c2 := &nn.Conv2d{NodeName: "conv2", InC: 32, OutC: 128, KH: 4, KW: 4, SH: 2, SW: 2, DH: 1, DW: 1, PT: 1, PL: 1, PB: 1, PR: 1,
		W: fill(128*32*16, 512), B: make([]float64, 128)}
	d1 := &nn.Dense{NodeName: "fc1", In: 8192, Out: 250, W: fill(250*8192, 8192), B: make([]float64, 250)}
	d2 := &nn.Dense{NodeName: "fc2", In: 250, Out: 10, W: fill(2500, 250), B: make([]float64, 10)}
	net, err := nn.New(nn.Shape{3, 32, 32}, []nn.Layer{norm, c1, &nn.ReLU{NodeName: "relu1"}, c2, &nn.ReLU{NodeName: "relu2"},
		&nn.Reshape{NodeName: "flatten", To: nn.Shape{8192}}, d1, &nn.ReLU{NodeName: "relu3"}, d2})
	if err != nil {
		panic(err) // the shapes above are consistent
	}
	return net
}

func minOf(v []float64) float64 {
	m := math.Inf(1)
	for _, x := range v {
		m = math.Min(m, x)
	}
	return m
}

func benchLoad(dir, name string) (*nn.Network, *data.Array, []int, float64, error) {
	net, err := onnx.DecodeFile(filepath.Join(dir, "models", name+".onnx"))
	if err != nil {
		return nil, nil, nil, 0, err
	}
	b, err := os.ReadFile(filepath.Join(dir, "reference", name+".json"))
	if err != nil {
		return nil, nil, nil, 0, err
	}
	var ref struct {
		Dataset string  `json:"dataset"`
		Eps     float64 `json:"eps"`
	}
	if err := json.Unmarshal(b, &ref); err != nil {
		return nil, nil, nil, 0, fmt.Errorf("%s reference: %w", name, err)
	}
	X, labels, err := data.LoadSamples(filepath.Join(dir, "data", ref.Dataset+"_X.npy"), filepath.Join(dir, "data", ref.Dataset+"_y.npy"))
	if err != nil {
		return nil, nil, nil, 0, err
	}
	return net, X, labels, ref.Eps, nil
}

// medianTime is the median over samples 0..n−1 of each sample's fastest of repeat
// bounds.
func medianTime(ctx context.Context, net *nn.Network, X *data.Array, labels []int, eps float64, m crown.Method, n, repeat int) (float64, error) {
	if n <= 0 || n > len(labels) {
		return 0, errors.New("bad sample count")
	}
	var ts []float64
	for i := 0; i < n; i++ {
		x := X.Sample(i)
		lo, hi, err := spec.Box(x, eps)
		if err != nil {
			return 0, err
		}
		C, err := spec.Margin(labels[i], net.OutSize())
		if err != nil {
			return 0, err
		}
		best := math.Inf(1)
		for r := 0; r < repeat; r++ {
			start := time.Now()
			if _, err := crown.Bound(ctx, net, lo, hi, C, crown.Options{Method: m, Threads: runtime.GOMAXPROCS(0)}); err != nil {
				return 0, err
			}
			best = min(best, time.Since(start).Seconds())
		}
		ts = append(ts, best)
	}
	sort.Float64s(ts)
	return ts[len(ts)/2], nil
}
