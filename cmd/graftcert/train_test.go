package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/graftcert/graftcert/core/data"
	"github.com/graftcert/graftcert/core/nn"
	"github.com/graftcert/graftcert/core/onnx"
	"github.com/graftcert/graftcert/core/train"
)

// gcRun runs the CLI in-process and returns its exit status, stdout and stderr.
func gcRun(ctx context.Context, args ...string) (int, string, string) {
	var out, errw bytes.Buffer
	code := run(ctx, args, &out, &errw)
	return code, out.String(), errw.String()
}

// mnistHead returns the first n MNIST training images and labels.
func mnistHead(t *testing.T, n int) train.Data {
	t.Helper()
	X, y, err := data.LoadMNIST("train")
	if err != nil {
		t.Fatal(err)
	}
	return train.Data{X: X[:n*784], Labels: y[:n]}
}

// writeSubset writes d as X.npy (float32, N×1×28×28) and y.npy (int64) into dir.
func writeSubset(t *testing.T, dir string, d train.Data) (string, string) {
	t.Helper()
	xp, yp := filepath.Join(dir, "X.npy"), filepath.Join(dir, "y.npy")
	lab := make([]float64, len(d.Labels))
	for i, l := range d.Labels {
		lab[i] = float64(l)
	}
	if err := data.WriteNPYFile(xp, &data.Array{DType: "<f4", Shape: []int{d.Len(), 1, 28, 28}, Data: d.X}); err != nil {
		t.Fatal(err)
	}
	if err := data.WriteNPYFile(yp, &data.Array{DType: "<i8", Shape: []int{d.Len()}, Data: lab}); err != nil {
		t.Fatal(err)
	}
	return xp, yp
}

// asExported returns net as an ONNX file stores it (exported and read back: float32
// weights, the normalisation in the file's form).
func asExported(t *testing.T, net *nn.Network) *nn.Network {
	t.Helper()
	b, err := onnx.Encode(net)
	if err != nil {
		t.Fatal(err)
	}
	c, err := onnx.Decode(b)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// sameForward checks that two networks give bit-identical outputs on the samples.
func sameForward(t *testing.T, what string, a, b *nn.Network, d train.Data) {
	t.Helper()
	in := a.InSize()
	for s := 0; s < d.Len(); s++ {
		x := d.X[s*in : (s+1)*in]
		oa, ob := a.Forward(x), b.Forward(x)
		for i := range oa {
			if oa[i] != ob[i] {
				t.Fatalf("%s: sample %d output %d: %v vs %v", what, s, i, oa[i], ob[i])
			}
		}
	}
}

// decodeRoundTrip decodes path, exports and decodes it again, and checks that the two
// give bit-identical outputs on d (import → export → import).
func decodeRoundTrip(t *testing.T, path string, d train.Data) *nn.Network {
	t.Helper()
	net, err := onnx.DecodeFile(path)
	if err != nil {
		t.Fatalf("%s does not re-import: %v", path, err)
	}
	b, err := onnx.Encode(net)
	if err != nil {
		t.Fatal(err)
	}
	again, err := onnx.Decode(b)
	if err != nil {
		t.Fatal(err)
	}
	sameForward(t, path+" import→export→import", net, again, d)
	return net
}

// `graftcert train` on a small MNIST subset, one epoch, seeded: the ONNX file it writes
// re-imports with exactly the outputs of the same training run done through the library
// (as exported), the run is reproducible, and
// training moved the weights away from their initialisation.
func TestTrainCommand(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "base.onnx")
	args := []string{"train", "--arch", "mlp-6x100", "--eps", "0.05", "--epochs", "1", "--seed", "3",
		"--count", "512", "--batch", "64", "--lr", "0.05", "--out", out}
	code, stdout, stderr := gcRun(context.Background(), args...)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	if !strings.Contains(stderr, "epoch 1/1 loss") || !strings.Contains(stdout, "wrote "+out) {
		t.Errorf("progress or summary missing:\nstdout %s\nstderr %s", stdout, stderr)
	}
	if _, err := os.Stat(out + ".partial"); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("checkpoint %s.partial left behind", out)
	}
	d := mnistHead(t, 512)
	got := decodeRoundTrip(t, out, train.Data{X: d.X[:20*784], Labels: d.Labels[:20]})

	want, err := train.Architecture("mlp-6x100", 3)
	if err != nil {
		t.Fatal(err)
	}
	initial := want.Clone()
	o := train.DefaultTrain(0.05)
	o.Epochs, o.Seed, o.BatchSize = 1, 3, 64
	o.Weights.LR, o.Biases.LR = 0.05, 0.05
	if _, err := train.Train(context.Background(), want, d, o, nil); err != nil {
		t.Fatal(err)
	}
	sameForward(t, "CLI model vs library run", got, asExported(t, want), train.Data{X: d.X[:50*784], Labels: d.Labels[:50]})
	moved := false
	w0, w1 := initial.Layers[2].(*nn.Dense).W, got.Layers[2].(*nn.Dense).W
	for i := range w0 {
		if float64(float32(w0[i])) != w1[i] {
			moved = true
			break
		}
	}
	if !moved {
		t.Error("the first layer's weights are still the initial ones")
	}

	out2 := filepath.Join(dir, "again.onnx")
	args[len(args)-1] = out2
	if code, _, stderr := gcRun(context.Background(), args...); code != 0 {
		t.Fatalf("second run: exit %d: %s", code, stderr)
	}
	b1, _ := os.ReadFile(out)
	b2, _ := os.ReadFile(out2)
	if !bytes.Equal(b1, b2) {
		t.Error("the same seeded run wrote a different file")
	}
}

// Ctrl-C (a cancelled context) after the first epoch stops training, leaves --out
// unwritten and keeps the weights reached in <out>.partial.
func TestTrainInterruptKeepsCheckpoint(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "base.onnx")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var errw cancelOn
	errw.trigger, errw.cancel = "epoch 1/3 loss", cancel
	var stdout bytes.Buffer
	code := run(ctx, []string{"train", "--eps", "0.05", "--epochs", "3", "--count", "256", "--batch", "64", "--out", out}, &stdout, &errw)
	if code == 0 {
		t.Fatal("interrupted run exited 0")
	}
	if _, err := os.Stat(out); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("--out written by an interrupted run")
	}
	if !strings.Contains(errw.String(), out+".partial") {
		t.Errorf("error does not name the checkpoint: %s", errw.String())
	}
	net, err := onnx.DecodeFile(out + ".partial")
	if err != nil {
		t.Fatalf("checkpoint: %v", err)
	}
	if net.NumParams() != 119910 {
		t.Errorf("checkpoint has %d parameters, mlp-6x100 has 119910", net.NumParams())
	}
}

// cancelOn is a stderr that cancels a context once a line containing trigger is written.
type cancelOn struct {
	mu      sync.Mutex
	buf     bytes.Buffer
	trigger string
	cancel  func()
}

func (c *cancelOn) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	n, err := c.buf.Write(p)
	if strings.Contains(c.buf.String(), c.trigger) {
		c.cancel()
	}
	return n, err
}

func (c *cancelOn) String() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.buf.String()
}

func TestTrainBadFlags(t *testing.T) {
	out := filepath.Join(t.TempDir(), "m.onnx")
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"train", "--eps", "0.1"}, "--out is required"},
		{[]string{"train", "--arch", "resnet", "--out", out}, "unknown architecture"},
		{[]string{"train", "--eps", "-1", "--out", out}, "--eps"},
		{[]string{"train", "--batch", "0", "--out", out}, "--batch"},
		{[]string{"train", "--data", "/nonexistent.npy", "--labels", "/nonexistent2.npy", "--out", out}, "nonexistent"},
	} {
		code, _, stderr := gcRun(context.Background(), tc.args...)
		if code != 1 || !strings.Contains(stderr, tc.want) {
			t.Errorf("%v: exit %d, stderr %q, want %q", tc.args, code, stderr, tc.want)
		}
	}
}
