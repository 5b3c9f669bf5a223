package graft

import (
	"context"
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/graftcert/graftcert/core/nn"
	"github.com/graftcert/graftcert/core/train"
)

func TestMaskHandMade(t *testing.T) {
	scores := [][]float64{{0.5, 0.1, 0.9}, {0.2, 0.2, 0.05, 1.0}}
	cases := []struct {
		ratio    float64
		perLayer bool
		want     [][]bool
	}{
		// 7 neurons; 3/7 → 3 lowest: 0.05, 0.1, then the first of the tied 0.2s.
		{3.0 / 7, false, [][]bool{{false, true, false}, {true, false, true, false}}},
		// round(3.5) = 4.
		{0.5, false, [][]bool{{false, true, false}, {true, true, true, false}}},
		{0, false, [][]bool{{false, false, false}, {false, false, false, false}}},
		{1, false, [][]bool{{true, true, true}, {true, true, true, true}}},
		// Per layer: round(1.5) = 2 of layer 0 (0.1, 0.5), round(2) = 2 of layer 1 (0.05, first 0.2).
		{0.5, true, [][]bool{{true, true, false}, {true, false, true, false}}},
	}
	for _, c := range cases {
		got, err := Mask(scores, c.ratio, c.perLayer)
		if err != nil {
			t.Fatal(err)
		}
		for l := range c.want {
			if !slices.Equal(got[l], c.want[l]) {
				t.Fatalf("ratio %v perLayer %v: mask %v, want %v", c.ratio, c.perLayer, got, c.want)
			}
		}
	}
	// Ties across layers go to the earlier layer.
	got, _ := Mask([][]float64{{1, 1}, {1, 1}}, 0.5, false)
	if !slices.Equal(got[0], []bool{true, true}) || !slices.Equal(got[1], []bool{false, false}) {
		t.Fatalf("tied scores: %v, want layer 0 grafted", got)
	}
	for _, r := range []float64{-0.1, 1.1, math.NaN()} {
		if _, err := Mask(scores, r, false); err == nil {
			t.Errorf("ratio %v accepted", r)
		}
	}
	if _, err := Mask([][]float64{{1, math.NaN()}}, 0.5, false); err == nil {
		t.Error("NaN score accepted")
	}
}

func TestMaskSelectsLowestFraction(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 1))
	for trial := 0; trial < 50; trial++ {
		var scores [][]float64
		for l := 0; l < 1+rng.IntN(4); l++ {
			s := make([]float64, 1+rng.IntN(30))
			for i := range s {
				s[i] = float64(rng.IntN(20)) // many ties
			}
			scores = append(scores, s)
		}
		ratio := rng.Float64()
		for _, per := range []bool{false, true} {
			m, err := Mask(scores, ratio, per)
			if err != nil {
				t.Fatal(err)
			}
			groups := [][]int{} // layer lists ranked together
			if per {
				for l := range scores {
					groups = append(groups, []int{l})
				}
			} else {
				var g []int
				for l := range scores {
					g = append(g, l)
				}
				groups = append(groups, g)
			}
			for _, g := range groups {
				n, k := 0, 0
				maxIn, minOut := math.Inf(-1), math.Inf(1)
				for _, l := range g {
					for i, s := range scores[l] {
						n++
						if m[l][i] {
							k++
							maxIn = max(maxIn, s)
						} else {
							minOut = min(minOut, s)
						}
					}
				}
				if want := int(math.Round(ratio * float64(n))); k != want {
					t.Fatalf("grafted %d of %d at ratio %v, want %d", k, n, ratio, want)
				}
				if maxIn > minOut {
					t.Fatalf("grafted score %v above a kept score %v", maxIn, minOut)
				}
			}
		}
	}
}

// tiny: 2 inputs → Dense W1 = [[1,-1],[2,1]], b1 = [0,-1] → ReLU → Dense identity (2 logits).
func tiny(t *testing.T) *nn.Network {
	t.Helper()
	net, err := nn.New(nn.Shape{2}, []nn.Layer{
		&nn.Dense{NodeName: "fc1", In: 2, Out: 2, W: []float64{1, -1, 2, 1}, B: []float64{0, -1}},
		&nn.ReLU{NodeName: "relu"},
		&nn.Dense{NodeName: "fc2", In: 2, Out: 2, W: []float64{1, 0, 0, 1}, B: []float64{0, 0}},
	})
	if err != nil {
		t.Fatal(err)
	}
	return net
}

func TestScoresByHand(t *testing.T) {
	net := tiny(t)
	// Sample a = (1,2): pre = (−1, 3). Sample b = (2,0): pre = (2, 3).
	X := []float64{1, 2, 2, 0}
	labels := []int{0, 1}
	mag, err := Scores(context.Background(), net, X, 2, Magnitude, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(mag) != 1 || mag[0][0] != 1.5 || mag[0][1] != 3 {
		t.Fatalf("magnitude scores %v, want [[1.5 3]]", mag)
	}
	grad, err := Scores(context.Background(), net, X, 2, Gradient, labels)
	if err != nil {
		t.Fatal(err)
	}
	// a: logits (0, 3), label 0: dz = (p0 − 1, p1), p1 = e³/(1+e³); neuron 0 is off.
	// b: logits (2, 3), label 1: dz = (1/(1+e), −1/(1+e)); both neurons on.
	e, e3 := math.E, math.Exp(3)
	want := []float64{(0 + 1/(1+e)) / 2, (e3/(1+e3) + 1/(1+e)) / 2}
	for i := range want {
		if math.Abs(grad[0][i]-want[i]) > 1e-15 {
			t.Fatalf("gradient scores %v, want %v", grad[0], want)
		}
	}
	if _, err := Scores(context.Background(), net, X, 2, Gradient, []int{0}); err == nil {
		t.Error("missing labels accepted")
	}
	if _, err := Scores(context.Background(), net, X[:3], 2, Magnitude, nil); err == nil {
		t.Error("short X accepted")
	}
}

func TestScoresChunkedMatchesDirect(t *testing.T) {
	// 250 samples span three chunks; compare with a direct per-sample computation.
	rng := rand.New(rand.NewPCG(2, 2))
	net, err := train.Architecture("mlp-6x100", 3)
	if err != nil {
		t.Fatal(err)
	}
	const n = 250
	X := make([]float64, n*784)
	for i := range X {
		X[i] = rng.Float64()
	}
	mag, err := Scores(context.Background(), net, X, n, Magnitude, nil)
	if err != nil {
		t.Fatal(err)
	}
	acts := net.Activations()
	if len(mag) != 5 || len(mag[4]) != 100 {
		t.Fatalf("score shape %d layers", len(mag))
	}
	for j, i := range acts {
		want := make([]float64, 100)
		for s := 0; s < n; s++ {
			tr := net.Trace(X[s*784 : (s+1)*784])
			for k, v := range tr[i] {
				want[k] += math.Abs(v) / n
			}
		}
		for k := range want {
			if math.Abs(mag[j][k]-want[k]) > 1e-9*math.Max(1, want[k]) {
				t.Fatalf("layer %d neuron %d: %v, want %v", j, k, mag[j][k], want[k])
			}
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Scores(ctx, net, X, n, Magnitude, nil); err == nil {
		t.Error("cancelled context ignored")
	}
}

func TestApplyGraftedForwardByHand(t *testing.T) {
	net := tiny(t)
	g, err := Apply(net, [][]bool{{true, false}}, DefaultOptions())
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := net.Layers[1].(*nn.ReLU); !ok {
		t.Fatal("Apply changed the original network")
	}
	mr, ok := g.Layers[1].(*nn.MaskedReLU)
	if !ok || mr.NodeName != "relu" || mr.NumGrafted() != 1 {
		t.Fatalf("layer 1 is %T", g.Layers[1])
	}
	// x = (1,2): pre = (−1, 3) → (0.4·(−1), relu 3) = (−0.4, 3).
	if y := g.Forward([]float64{1, 2}); y[0] != -0.4 || y[1] != 3 {
		t.Fatalf("grafted forward %v, want [-0.4 3]", y)
	}
	// x = (2,0): pre = (2, 3), grafted 0.8, relu 3.
	if y := g.Forward([]float64{2, 0}); math.Abs(y[0]-0.8) > 1e-15 || y[1] != 3 {
		t.Fatalf("grafted forward %v, want [0.8 3]", y)
	}
	// Nothing selected: the ReLU stays.
	g0, _ := Apply(net, [][]bool{{false, false}}, DefaultOptions())
	if _, ok := g0.Layers[1].(*nn.ReLU); !ok {
		t.Fatalf("empty mask turned the ReLU into %T", g0.Layers[1])
	}
}

func TestPruneEqualsGraftWithZeroLine(t *testing.T) {
	net, err := train.Architecture("cnn-small", 4)
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(5, 5))
	X := make([]float64, 20*784)
	for i := range X {
		X[i] = rng.Float64()
	}
	scores, err := Scores(context.Background(), net, X, 20, Magnitude, nil)
	if err != nil {
		t.Fatal(err)
	}
	masks, err := Mask(scores, 0.5, false)
	if err != nil {
		t.Fatal(err)
	}
	pruned, err := Apply(net, masks, Options{Slope: 0.4, Bias: 0.3, Prune: true})
	if err != nil {
		t.Fatal(err)
	}
	zero, err := Apply(net, masks, Options{})
	if err != nil {
		t.Fatal(err)
	}
	yp, yz := pruned.ForwardBatch(X, 20), zero.ForwardBatch(X, 20)
	if !slices.Equal(yp, yz) {
		t.Fatal("pruned and a=b=0 grafted networks differ")
	}
	// A pruned neuron outputs 0: the activation layers' outputs are 0 wherever grafted.
	acts := pruned.Activations()
	tr := pruned.Trace(X[:784])
	for j, i := range acts {
		for k, g := range masks[j] {
			if g && tr[i+1][k] != 0 {
				t.Fatalf("pruned neuron %d of layer %d outputs %v", k, i, tr[i+1][k])
			}
		}
	}
	// cnn-small has 16·13·13 + 32·5·5 + 100 = 3604 ReLUs; half are grafted.
	if k, n := Count(masks); k != 1802 || n != 3604 {
		t.Fatalf("grafted %d of %d, want 1802 of 3604", k, n)
	}
}

func TestApplyMergesExistingGrafts(t *testing.T) {
	net := tiny(t)
	g1, err := Apply(net, [][]bool{{true, false}}, Options{Slope: 0.7, Bias: 0.1})
	if err != nil {
		t.Fatal(err)
	}
	g2, err := Apply(g1, [][]bool{{false, true}}, DefaultOptions())
	if err != nil {
		t.Fatal(err)
	}
	mr := g2.Layers[1].(*nn.MaskedReLU)
	if !slices.Equal(mr.Mask, []float64{1, 1}) || !slices.Equal(mr.Slope, []float64{0.7, 0.4}) || !slices.Equal(mr.Bias, []float64{0.1, 0}) {
		t.Fatalf("merged layer mask %v slope %v bias %v", mr.Mask, mr.Slope, mr.Bias)
	}
	if g1.Layers[1].(*nn.MaskedReLU).Mask[1] != 0 {
		t.Fatal("Apply changed its input network")
	}
	if _, err := Apply(net, [][]bool{{true}}, DefaultOptions()); err == nil {
		t.Error("short mask accepted")
	}
	if _, err := Apply(net, nil, DefaultOptions()); err == nil {
		t.Error("missing masks accepted")
	}
}

func TestInstabilityAware(t *testing.T) {
	s, err := InstabilityAware([][]float64{{2, 4}, {1}}, [][]float64{{0, 5}, {10}}, 10, 0.5)
	if err != nil {
		t.Fatal(err)
	}
	// 2·(1−0) = 2, 4·(1 − 0.5·0.5) = 3, 1·(1 − 0.5·1) = 0.5
	if s[0][0] != 2 || s[0][1] != 3 || s[1][0] != 0.5 {
		t.Fatalf("instability-aware scores %v, want [[2 3] [0.5]]", s)
	}
	for _, bad := range [][][]float64{{{0, 11}, {0}}, {{0, 1}}, {{0, -1}, {0}}} {
		if _, err := InstabilityAware([][]float64{{2, 4}, {1}}, bad, 10, 0.5); err == nil {
			t.Errorf("bad counts %v accepted", bad)
		}
	}
	if _, err := InstabilityAware([][]float64{{1}}, [][]float64{{0}}, 10, 2); err == nil {
		t.Error("beta 2 accepted")
	}
}
