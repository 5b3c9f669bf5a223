package graft

import (
	"context"
	"math/rand/v2"
	"testing"

	"github.com/graftcert/graftcert/core/nn"
	"github.com/graftcert/graftcert/core/train"
)

// blobs is a 4-class problem in [0,1]^16: class prototypes plus Gaussian noise.
func blobs(n int, seed uint64) train.Data {
	rng := rand.New(rand.NewPCG(seed, 3))
	pr := rand.New(rand.NewPCG(77, 7))
	protos := make([]float64, 4*16)
	for i := range protos {
		protos[i] = pr.Float64()
	}
	d := train.Data{X: make([]float64, n*16), Labels: make([]int, n)}
	for s := 0; s < n; s++ {
		c := rng.IntN(4)
		d.Labels[s] = c
		for j := 0; j < 16; j++ {
			d.X[s*16+j] = min(max(protos[c*16+j]+0.45*rng.NormFloat64(), 0), 1)
		}
	}
	return d
}

// The paper's pipeline on a toy problem: train, score, graft half the neurons, fine-tune.
// Grafting costs loss; fine-tuning the slopes, intercepts and weights wins it back.
func TestGraftAndFineTune(t *testing.T) {
	ctx := context.Background()
	dense := func(name string, in, out int) nn.Layer {
		return &nn.Dense{NodeName: name, In: in, Out: out, W: make([]float64, in*out), B: make([]float64, out)}
	}
	net, err := nn.New(nn.Shape{16}, []nn.Layer{dense("a", 16, 32), &nn.ReLU{NodeName: "r1"}, dense("b", 32, 32), &nn.ReLU{NodeName: "r2"}, dense("c", 32, 4)})
	if err != nil {
		t.Fatal(err)
	}
	train.Init(net, 1)
	data, test := blobs(600, 1), blobs(300, 2)
	o := train.DefaultTrain(0.05)
	o.Epochs, o.BatchSize = 5, 32
	if _, err := train.Train(ctx, net, data, o, nil); err != nil {
		t.Fatal(err)
	}
	base, _ := train.Evaluate(ctx, net, test, 0)
	idx := Calibration(data.Len(), 200, 1)
	X := make([]float64, 0, len(idx)*16)
	for _, i := range idx {
		X = append(X, data.X[i*16:(i+1)*16]...)
	}
	scores, err := Scores(ctx, net, X, len(idx), Magnitude, nil)
	if err != nil {
		t.Fatal(err)
	}
	masks, err := Mask(scores, 0.5, false)
	if err != nil {
		t.Fatal(err)
	}
	g, err := Apply(net, masks, DefaultOptions())
	if err != nil {
		t.Fatal(err)
	}
	grafted, _ := train.Evaluate(ctx, g, test, 0)
	ft := train.DefaultFineTune(0.05)
	ft.Epochs, ft.BatchSize = 4, 32
	if _, err := train.FineTune(ctx, g, data, ft, nil); err != nil {
		t.Fatal(err)
	}
	tuned, _ := train.Evaluate(ctx, g, test, 0)
	t.Logf("test loss/acc: base %.3f/%.3f, grafted %.3f/%.3f, fine-tuned %.3f/%.3f",
		base.Loss, base.Accuracy, grafted.Loss, grafted.Accuracy, tuned.Loss, tuned.Accuracy)
	if base.Accuracy < 0.85 || tuned.Loss >= grafted.Loss || tuned.Accuracy < 0.85 {
		t.Fatalf("base acc %v; grafted loss %v → fine-tuned %v (acc %v)", base.Accuracy, grafted.Loss, tuned.Loss, tuned.Accuracy)
	}
	if k, n := Count(masks); k != 32 || n != 64 {
		t.Fatalf("grafted %d of %d", k, n)
	}
}
