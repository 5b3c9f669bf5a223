package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
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
	alphaSamples := fs.Int("alpha-samples", 3, "samples per model for alpha-crown (slow)")
	if err := parse(fs, args); err != nil {
		return err
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
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "model\t")
	for _, m := range ms {
		fmt.Fprintf(tw, "%s ms\tauto_LiRPA ms\tratio\t", m)
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
			med, err := medianTime(ctx, net, X, labels, eps, m, n)
			if err != nil {
				return fmt.Errorf("%s %s: %w", name, m, err)
			}
			ref := map[crown.Method]float64{crown.IBP: lirpaIBP, crown.CROWN: lirpaCROWN[name], crown.AlphaCROWN: lirpaAlpha[name]}[m]
			if ref > 0 {
				fmt.Fprintf(tw, "%.2f\t%.1f\t%.2f\t", med*1000, ref*1000, med/ref)
			} else {
				fmt.Fprintf(tw, "%.2f\t-\t-\t", med*1000)
			}
		}
		fmt.Fprintln(tw)
		tw.Flush()
	}
	return tw.Flush()
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

func medianTime(ctx context.Context, net *nn.Network, X *data.Array, labels []int, eps float64, m crown.Method, n int) (float64, error) {
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
		start := time.Now()
		if _, err := crown.Bound(ctx, net, lo, hi, C, crown.Options{Method: m}); err != nil {
			return 0, err
		}
		ts = append(ts, time.Since(start).Seconds())
	}
	sort.Float64s(ts)
	return ts[len(ts)/2], nil
}
