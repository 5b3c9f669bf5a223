package train

import (
	"context"
	"errors"
	"math"
	"math/rand/v2"
	"runtime"
	"slices"
	"testing"

	"github.com/graftcert/graftcert/core/nn"
)

// synth is an MNIST-like toy problem: 10 random 8×8 prototypes in [0,1], samples are
// prototypes plus Gaussian noise, clipped to [0,1].
func synth(n int, seed uint64) Data {
	rng := rand.New(rand.NewPCG(seed, 99))
	protoRng := rand.New(rand.NewPCG(12345, 1))
	const d = 64
	protos := randVec(protoRng, 10*d, 0, 1)
	data := Data{X: make([]float64, n*d), Labels: make([]int, n)}
	for s := 0; s < n; s++ {
		c := rng.IntN(10)
		data.Labels[s] = c
		for j := 0; j < d; j++ {
			v := protos[c*d+j] + 0.25*rng.NormFloat64()
			data.X[s*d+j] = min(max(v, 0), 1)
		}
	}
	return data
}

// smallCNN is a conv net for 1×8×8 inputs; with graft it has a MaskedReLU layer.
func smallCNN(t testing.TB, seed uint64, graft bool) *nn.Network {
	t.Helper()
	var act nn.Layer = &nn.ReLU{NodeName: "r2"}
	if graft {
		mask := make([]float64, 8*3*3)
		slope := make([]float64, len(mask))
		for i := range mask {
			if i%3 == 0 {
				mask[i], slope[i] = 1, 0.4
			}
		}
		act = &nn.MaskedReLU{NodeName: "r2", Mask: mask, Slope: slope, Bias: make([]float64, len(mask))}
	}
	net, err := nn.New(nn.Shape{1, 8, 8}, []nn.Layer{
		&nn.Affine{NodeName: "norm", Scale: constVec(64, 1/0.3), Shift: constVec(64, -0.5/0.3)},
		&nn.Conv2d{NodeName: "c1", InC: 1, OutC: 4, KH: 3, KW: 3, SH: 1, SW: 1, DH: 1, DW: 1, PT: 1, PL: 1, PB: 1, PR: 1,
			W: make([]float64, 36), B: make([]float64, 4)},
		&nn.ReLU{NodeName: "r1"},
		&nn.Conv2d{NodeName: "c2", InC: 4, OutC: 8, KH: 4, KW: 4, SH: 2, SW: 2, DH: 1, DW: 1,
			W: make([]float64, 8*4*16), B: make([]float64, 8)},
		act,
		&nn.Reshape{NodeName: "flat", To: nn.Shape{72}},
		&nn.Dense{NodeName: "d1", In: 72, Out: 32, W: make([]float64, 72*32), B: make([]float64, 32)},
		&nn.ReLU{NodeName: "r3"},
		&nn.Dense{NodeName: "d2", In: 32, Out: 10, W: make([]float64, 320), B: make([]float64, 10)},
	})
	if err != nil {
		t.Fatal(err)
	}
	Init(net, seed)
	return net
}

func constVec(n int, v float64) []float64 {
	r := make([]float64, n)
	for i := range r {
		r[i] = v
	}
	return r
}

func params(net *nn.Network) [][]float64 {
	var ps [][]float64
	for _, l := range net.Layers {
		for _, p := range l.Params() {
			ps = append(ps, append([]float64(nil), p...))
		}
	}
	return ps
}

func sameParams(a, b [][]float64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if !slices.Equal(a[i], b[i]) {
			return false
		}
	}
	return true
}

func TestTrainLowersLoss(t *testing.T) {
	data := synth(640, 1)
	test := synth(300, 2)
	net := smallCNN(t, 3, false)
	ctx := context.Background()
	before, err := Evaluate(ctx, net, test, 0)
	if err != nil {
		t.Fatal(err)
	}
	o := DefaultTrain(0.05)
	o.Epochs = 4
	o.BatchSize = 32
	var seen []Epoch
	hist, err := Train(ctx, net, data, o, func(e Epoch) { seen = append(seen, e) })
	if err != nil {
		t.Fatal(err)
	}
	if len(hist) != 4 || len(seen) != 4 || hist[3].Epoch != 4 || hist[3].Samples != 640 {
		t.Fatalf("history %+v", hist)
	}
	after, err := Evaluate(ctx, net, test, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("test loss %.4f → %.4f, accuracy %.3f → %.3f; train loss %.4f → %.4f (reg %.4f → %.4f)",
		before.Loss, after.Loss, before.Accuracy, after.Accuracy, hist[0].Loss, hist[3].Loss, hist[0].Reg, hist[3].Reg)
	// Chance level is ln 10 ≈ 2.30 and 10%; the classes are far apart relative to eps.
	if before.Loss < 2 || after.Loss > 0.5*before.Loss || after.Accuracy < 0.8 || hist[3].Loss >= hist[0].Loss {
		t.Fatalf("training did not learn: test loss %v → %v, accuracy %v; train loss %v → %v",
			before.Loss, after.Loss, after.Accuracy, hist[0].Loss, hist[3].Loss)
	}
	rob, err := PGDAccuracy(ctx, net, test, PGD{Eps: 0.05, Steps: 10, Restarts: 1, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	if rob.Accuracy > after.Accuracy || rob.Accuracy < 0.5 {
		t.Fatalf("PGD accuracy %v (clean %v)", rob.Accuracy, after.Accuracy)
	}
}

func TestTrainDeterministicAcrossWorkers(t *testing.T) {
	data := synth(200, 4)
	var ref [][]float64
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(0))
	for i, w := range []int{1, 2, 3, 2} {
		if i == 3 {
			runtime.GOMAXPROCS(1) // gonum's matrix products must not depend on it either
		}
		net := smallCNN(t, 5, true)
		o := DefaultFineTune(0.05)
		o.Epochs = 2
		o.BatchSize = 50 // chunks of 16, 16, 16, 2; last batch of 50
		o.Chunk = 16
		o.Workers = w
		if _, err := FineTune(context.Background(), net, data, o, nil); err != nil {
			t.Fatal(err)
		}
		p := params(net)
		if ref == nil {
			ref = p
			if sameParams(ref, params(smallCNN(t, 5, true))) {
				t.Fatal("fine-tuning changed nothing")
			}
			continue
		}
		if !sameParams(ref, p) {
			t.Fatalf("weights with %d workers differ from 1 worker", w)
		}
	}
}

func TestFineTuneKeepsMaskAndFrozenSlopes(t *testing.T) {
	data := synth(128, 6)
	for _, frozen := range []bool{false, true} {
		net := smallCNN(t, 7, true)
		mr := net.Layers[4].(*nn.MaskedReLU)
		if frozen {
			for i := range mr.Slope {
				if mr.Mask[i] != 0 {
					mr.Slope[i] = 0
				}
			}
		}
		slope0 := append([]float64(nil), mr.Slope...)
		o := DefaultFineTune(0.05)
		o.Epochs = 1
		o.BatchSize = 32
		o.FreezeActivations = frozen
		if _, err := FineTune(context.Background(), net, data, o, nil); err != nil {
			t.Fatal(err)
		}
		changed := 0
		for i := range mr.Slope {
			if mr.Mask[i] == 0 && (mr.Slope[i] != slope0[i] || mr.Bias[i] != 0) {
				t.Fatalf("ungrafted neuron %d: slope/bias changed to %v/%v", i, mr.Slope[i], mr.Bias[i])
			}
			if mr.Mask[i] != 0 && (mr.Slope[i] != slope0[i] || mr.Bias[i] != 0) {
				changed++
			}
			if (i%3 == 0) != (mr.Mask[i] != 0) {
				t.Fatalf("mask changed at %d", i)
			}
		}
		if frozen && changed != 0 {
			t.Fatalf("frozen: %d grafted neurons changed", changed)
		}
		if !frozen && changed == 0 {
			t.Fatal("grafted slopes were not trained")
		}
	}
}

func TestTrainCancelKeepsLastStep(t *testing.T) {
	data := synth(256, 8)
	net := smallCNN(t, 9, false)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	o := DefaultTrain(0.05)
	o.BatchSize = 32
	var snap [][]float64
	steps := 0
	o.OnBatch = func(b Batch) {
		steps++
		if steps == 3 {
			snap = params(net)
			cancel()
		}
	}
	hist, err := Train(ctx, net, data, o, nil)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("error %v, want context.Canceled", err)
	}
	if len(hist) != 0 || steps != 3 || !sameParams(snap, params(net)) {
		t.Fatalf("after cancel: %d epochs, %d steps, weights equal to step 3: %v", len(hist), steps, sameParams(snap, params(net)))
	}
}

func TestSGDByHand(t *testing.T) {
	net, err := nn.New(nn.Shape{1}, []nn.Layer{&nn.Dense{NodeName: "d", In: 1, Out: 1, W: []float64{1}, B: []float64{2}}})
	if err != nil {
		t.Fatal(err)
	}
	m, _ := NewModel(net, false)
	o := &SGD{Momentum: 0.9, Group: func(k ParamKind) Hyper {
		if k == Weight {
			return Hyper{LR: 0.1, WeightDecay: 0.1}
		}
		return Hyper{LR: 1}
	}}
	g := m.NewGrad()
	g.G[0][0], g.G[1][0] = 0.5, 0.25
	o.Step(m, g, 1)
	// w: d = 0.5 + 0.1·1 = 0.6, buf 0.6, w = 1 − 0.06; b: buf 0.25, b = 2 − 0.25
	if d := net.Layers[0].(*nn.Dense); math.Abs(d.W[0]-0.94) > 1e-15 || d.B[0] != 1.75 {
		t.Fatalf("after step 1: w %v b %v, want 0.94 1.75", d.W[0], d.B[0])
	}
	o.Step(m, g, 0.5)
	// w: d = 0.5 + 0.094 = 0.594, buf 0.54 + 0.594 = 1.134, w = 0.94 − 0.05·1.134
	// b: buf 0.225 + 0.25 = 0.475, b = 1.75 − 0.5·0.475
	if d := net.Layers[0].(*nn.Dense); math.Abs(d.W[0]-(0.94-0.05*1.134)) > 1e-15 || math.Abs(d.B[0]-1.5125) > 1e-15 {
		t.Fatalf("after step 2: w %v b %v, want %v 1.5125", d.W[0], d.B[0], 0.94-0.05*1.134)
	}
	if Cosine.scale(0, 10) != 1 || math.Abs(Cosine.scale(5, 10)-0.5) > 1e-15 || Constant.scale(7, 10) != 1 {
		t.Fatal("schedule")
	}
	if s := Cosine.scale(9, 10); math.Abs(s-0.5*(1+math.Cos(0.9*math.Pi))) > 1e-15 {
		t.Fatalf("cosine at 9/10 = %v", s)
	}
}

func TestFGSMRS(t *testing.T) {
	// f(x) = (x0 − x1, 0): for label 0 the loss falls with x0 and rises with x1, so the
	// attack moves x0 down and x1 up.
	net, err := nn.New(nn.Shape{2}, []nn.Layer{&nn.Dense{NodeName: "d", In: 2, Out: 2, W: []float64{1, -1, 0, 0}}})
	if err != nil {
		t.Fatal(err)
	}
	const eps = 0.1
	x := []float64{0.5, 0.5, 0.05, 0.97}
	adv, err := FGSMRS(net, x, []int{0, 0}, eps, 0, 0, 0, 3)
	if err != nil {
		t.Fatal(err)
	}
	// δ0 ∈ [−eps, eps] plus the step 1.25·eps in the gradient's sign, projected: the
	// result lies between 0.25·eps and eps in that direction, and inside [0,1].
	want := [][2]float64{{0.5 - eps, 0.5 - 0.25*eps}, {0.5 + 0.25*eps, 0.5 + eps}, {0, 0.05 - 0.25*eps}, {0.97 + 0.25*eps, 1}}
	for j, w := range want {
		if adv[j] < w[0]-1e-15 || adv[j] > w[1]+1e-15 {
			t.Fatalf("adv[%d] = %v, want in %v", j, adv[j], w)
		}
	}
	if adv[2] != 0 || adv[3] != 1 {
		t.Fatalf("clipping: adv = %v, want x2 = 0 and x3 = 1", adv)
	}
}

func TestOptionAndDataErrors(t *testing.T) {
	net := smallCNN(t, 1, false)
	data := synth(10, 1)
	ctx := context.Background()
	bad := []func(o *Options){
		func(o *Options) { o.BatchSize = 0 },
		func(o *Options) { o.Eps = -1 },
		func(o *Options) { o.Eps = math.NaN() },
		func(o *Options) { o.Eps = 0 }, // GradAlign without eps
		func(o *Options) { o.Weights.LR = math.Inf(1) },
		func(o *Options) { o.Lo, o.Hi = 1, 0 },
	}
	for i, f := range bad {
		o := DefaultTrain(0.1)
		f(&o)
		if _, err := Train(ctx, net, data, o, nil); err == nil {
			t.Errorf("bad option %d accepted", i)
		}
	}
	o := DefaultTrain(0.1)
	d2 := Data{X: data.X, Labels: append([]int(nil), data.Labels...)}
	d2.Labels[3] = 10
	if _, err := Train(ctx, net, d2, o, nil); err == nil {
		t.Error("label 10 accepted for 10 classes")
	}
	if _, err := Train(ctx, net, Data{X: data.X[:100], Labels: data.Labels}, o, nil); err == nil {
		t.Error("short X accepted")
	}
	d3 := Data{X: append([]float64(nil), data.X...), Labels: data.Labels}
	d3.X[5] = math.NaN()
	if _, err := Evaluate(ctx, net, d3, 1); err == nil {
		t.Error("NaN input accepted")
	}
}
