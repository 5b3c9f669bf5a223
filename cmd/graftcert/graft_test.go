package main

import (
	"context"
	"math"
	"path/filepath"
	"strings"
	"testing"

	"github.com/graftcert/graftcert/core/graft"
	"github.com/graftcert/graftcert/core/nn"
	"github.com/graftcert/graftcert/core/onnx"
	"github.com/graftcert/graftcert/core/train"
	"github.com/graftcert/graftcert/internal/sharedtest"
)

// libraryGraft reproduces `graftcert graft` through the library: calibration samples,
// scores, mask, graft or prune, fine-tuning.
func libraryGraft(t *testing.T, base *nn.Network, d train.Data, kind graft.Kind, ratio float64, perLayer, prune bool, epochs int, eps float64) *nn.Network {
	t.Helper()
	ctx := context.Background()
	idx := graft.Calibration(d.Len(), 200, 1)
	var X []float64
	var y []int
	for _, i := range idx {
		X = append(X, d.X[i*784:(i+1)*784]...)
		y = append(y, d.Labels[i])
	}
	scores, err := graft.Scores(ctx, base, X, len(idx), kind, y)
	if err != nil {
		t.Fatal(err)
	}
	masks, err := graft.Mask(scores, ratio, perLayer)
	if err != nil {
		t.Fatal(err)
	}
	g, err := graft.Apply(base, masks, graft.Options{Slope: 0.4, Prune: prune})
	if err != nil {
		t.Fatal(err)
	}
	if epochs > 0 {
		o := train.DefaultFineTune(eps)
		o.Epochs, o.Seed, o.BatchSize, o.FreezeActivations = epochs, 1, 64, prune
		if _, err := train.FineTune(ctx, g, d, o, nil); err != nil {
			t.Fatal(err)
		}
	}
	return g
}

// maskedLayers returns the MaskedReLU layers of net.
func maskedLayers(net *nn.Network) []*nn.MaskedReLU {
	var out []*nn.MaskedReLU
	for _, i := range net.Activations() {
		if m, ok := net.Layers[i].(*nn.MaskedReLU); ok {
			out = append(out, m)
		}
	}
	return out
}

// `graftcert graft` on the shared mnist_6_100 with a small .npy training subset: graft
// only, prune per layer with one fine-tuning epoch, and graft by gradient score with one
// epoch. Each output re-imports (import → export → import bit-identical), holds the
// expected number of linear neurons with the expected lines, and gives exactly the
// outputs of the same pipeline run through the library.
func TestGraftCommand(t *testing.T) {
	basePath := sharedtest.Path(t, "models", "mnist_6_100.onnx")
	base, err := onnx.DecodeFile(basePath)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	d := mnistHead(t, 256)
	xp, yp := writeSubset(t, dir, d)
	probe := train.Data{X: d.X[:30*784], Labels: d.Labels[:30]}
	// The .npy file holds float32 pixels, which is what the CLI trains on: the library run
	// must see the same rounded values.
	d32 := d
	d32.X = make([]float64, len(d.X))
	for i, v := range d.X {
		d32.X[i] = float64(float32(v))
	}

	for _, tc := range []struct {
		name            string
		flags           []string
		kind            graft.Kind
		perLayer, prune bool
		epochs          int
	}{
		{"graft-only", []string{"--epochs", "0"}, graft.Magnitude, false, false, 0},
		{"prune-per-layer", []string{"--prune", "--per-layer", "--epochs", "1"}, graft.Magnitude, true, true, 1},
		{"gradient", []string{"--score", "gradient", "--epochs", "1"}, graft.Gradient, false, false, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out := filepath.Join(dir, tc.name+".onnx")
			args := append([]string{"graft", "--model", basePath, "--ratio", "0.5", "--eps", "0.026", "--calibration", "200",
				"--batch", "64", "--data", xp, "--labels", yp, "--out", out}, tc.flags...)
			code, stdout, stderr := gcRun(context.Background(), args...)
			if code != 0 {
				t.Fatalf("exit %d: %s", code, stderr)
			}
			verb := "grafted"
			if tc.prune {
				verb = "pruned"
			}
			if !strings.Contains(stderr, verb+" 250 of 500 neurons") || !strings.Contains(stdout, "250 of 500 neurons linear") {
				t.Errorf("summary:\nstdout %s\nstderr %s", stdout, stderr)
			}
			if tc.epochs > 0 && !strings.Contains(stderr, "epoch 1/1 loss") {
				t.Errorf("no epoch progress on stderr: %s", stderr)
			}
			got := decodeRoundTrip(t, out, probe)
			ml := maskedLayers(got)
			total := 0
			for l, m := range ml {
				k := m.NumGrafted()
				total += k
				if tc.perLayer && k != 50 {
					t.Errorf("layer %d: %d grafted, want 50 per layer", l, k)
				}
				for i := range m.Mask {
					if m.Mask[i] == 0 {
						continue
					}
					a, b := m.Slope[i], m.Bias[i]
					switch {
					case tc.prune && (a != 0 || b != 0):
						t.Fatalf("layer %d neuron %d pruned but a=%v b=%v", l, i, a, b)
					case tc.epochs == 0 && (a != float64(float32(0.4)) || b != 0):
						t.Fatalf("layer %d neuron %d: a=%v b=%v, want the initial 0.4, 0", l, i, a, b)
					}
				}
			}
			if total != 250 {
				t.Errorf("%d neurons linear, want 250", total)
			}
			want := libraryGraft(t, base, d32, tc.kind, 0.5, tc.perLayer, tc.prune, tc.epochs, 0.026)
			sameForward(t, "CLI vs library", got, asExported(t, want), probe)
			if tc.name == "gradient" {
				moved := 0
				for _, m := range ml {
					for i := range m.Mask {
						if m.Mask[i] != 0 && math.Abs(m.Slope[i]-0.4) > 1e-6 {
							moved++
						}
					}
				}
				if moved == 0 {
					t.Error("fine-tuning left every grafted slope at 0.4")
				}
			}
		})
	}
}

func TestGraftBadInput(t *testing.T) {
	dir := t.TempDir()
	mnist := sharedtest.Path(t, "models", "mnist_6_100.onnx")
	cifar := sharedtest.Path(t, "models", "cifar_conv_small.onnx")
	out := filepath.Join(dir, "g.onnx")
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"graft", "--out", out}, "--model is required"},
		{[]string{"graft", "--model", mnist, "--ratio", "1.5", "--out", out}, "--ratio"},
		{[]string{"graft", "--model", mnist, "--score", "random", "--out", out}, "random"},
		{[]string{"graft", "--model", mnist, "--calibration", "0", "--out", out}, "--calibration"},
		{[]string{"graft", "--model", cifar, "--out", out}, "--data and --labels"},
		{[]string{"graft", "--model", filepath.Join(dir, "missing.onnx"), "--out", out}, "missing.onnx"},
	} {
		code, _, stderr := gcRun(context.Background(), tc.args...)
		if code != 1 || !strings.Contains(stderr, tc.want) {
			t.Errorf("%v: exit %d, stderr %q, want %q", tc.args, code, stderr, tc.want)
		}
	}
}

// A CIFAR model is grafted and fine-tuned from the user's .npy training set (here the
// shared 100 CIFAR images): half of its 16·15·15 + 32·6·6 + 100 = 4852 neurons become
// linear, and the file re-imports with identical outputs.
func TestGraftCIFARFromNPY(t *testing.T) {
	model := sharedtest.Path(t, "models", "cifar_conv_small.onnx")
	xp, yp := sharedtest.Path(t, "data", "cifar_sdp_X.npy"), sharedtest.Path(t, "data", "cifar_sdp_y.npy")
	out := filepath.Join(t.TempDir(), "g.onnx")
	code, stdout, stderr := gcRun(context.Background(), "graft", "--model", model, "--data", xp, "--labels", yp,
		"--eps", "0.00784313725490196", "--calibration", "100", "--epochs", "1", "--batch", "50", "--out", out)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	if !strings.Contains(stdout, "2426 of 4852 neurons linear") {
		t.Errorf("stdout %q", stdout)
	}
	X, labels, err := loadData(mustDecode(t, model), xp, yp)
	if err != nil {
		t.Fatal(err)
	}
	got := decodeRoundTrip(t, out, train.Data{X: X[:10*3072], Labels: labels[:10]})
	if n := grafted(got); n != 2426 {
		t.Errorf("%d grafted neurons in the file, want 2426", n)
	}
}

func mustDecode(t *testing.T, path string) *nn.Network {
	t.Helper()
	net, err := onnx.DecodeFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return net
}
