package graft

import (
	"math"
	"testing"

	"github.com/graftcert/graftcert/core/data"
	"github.com/graftcert/graftcert/core/nn"
	"github.com/graftcert/graftcert/core/onnx"
	"github.com/graftcert/graftcert/internal/sharedtest"
)

// The shared *_graft50 models were grafted per layer at ratio 0.5 by the mean |ReLU
// output| over the first 200 samples of their data set (testdata README). Ranking that
// score of the base model with Mask(…, 0.5, perLayer) must select exactly their masks,
// except where neurons tie at the threshold (dead neurons all score 0; any tie-break is
// valid there).
func TestMaskReproducesSharedGraft50(t *testing.T) {
	for _, base := range []string{"mnist_6_100", "cifar_conv_small"} {
		t.Run(base, func(t *testing.T) {
			net, err := onnx.DecodeFile(sharedtest.Path(t, "models", base+".onnx"))
			if err != nil {
				t.Fatal(err)
			}
			g50, err := onnx.DecodeFile(sharedtest.Path(t, "models", base+"_graft50.onnx"))
			if err != nil {
				t.Fatal(err)
			}
			ref := sharedtest.LoadReference(t, base)
			X, _, err := data.LoadSamples(sharedtest.Path(t, "data", ref.Dataset+"_X.npy"), sharedtest.Path(t, "data", ref.Dataset+"_y.npy"))
			if err != nil {
				t.Fatal(err)
			}
			acts := net.Activations()
			scores := make([][]float64, len(acts))
			for j, i := range acts {
				scores[j] = make([]float64, net.Layers[i].(nn.Activation).Neurons())
			}
			n := min(200, X.NumSamples()) // cifar_sdp holds 100 samples
			for s := 0; s < n; s++ {
				tr := net.Trace(X.Sample(s))
				for j, i := range acts {
					for k, v := range tr[i+1] {
						scores[j][k] += math.Abs(v) / float64(n)
					}
				}
			}
			masks, err := Mask(scores, 0.5, true)
			if err != nil {
				t.Fatal(err)
			}
			gacts := g50.Activations()
			if len(gacts) != len(acts) {
				t.Fatalf("%d activation layers in the grafted model, %d in the base", len(gacts), len(acts))
			}
			for j, i := range gacts {
				mr, ok := g50.Layers[i].(*nn.MaskedReLU)
				if !ok {
					t.Fatalf("layer %d of the grafted model is %T", i, g50.Layers[i])
				}
				// The threshold: the largest score we graft.
				thr := math.Inf(-1)
				for k, g := range masks[j] {
					if g {
						thr = max(thr, scores[j][k])
					}
				}
				diff := 0
				for k, g := range masks[j] {
					if g != (mr.Mask[k] != 0) {
						if scores[j][k] != thr {
							t.Fatalf("layer %d neuron %d (score %v, threshold %v): ours %v, shared %v", j, k, scores[j][k], thr, g, mr.Mask[k])
						}
						diff++
					}
				}
				if g, _ := Count([][]bool{masks[j]}); g != mr.NumGrafted() {
					t.Fatalf("layer %d: we graft %d, the shared model %d", j, g, mr.NumGrafted())
				}
				t.Logf("layer %d: %d of %d neurons grafted, %d differ among ties at %v", j, mr.NumGrafted(), len(mr.Mask), diff, thr)
			}
		})
	}
}
