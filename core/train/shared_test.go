package train

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/graftcert/graftcert/core/data"
	"github.com/graftcert/graftcert/core/nn"
	"github.com/graftcert/graftcert/core/onnx"
	"github.com/graftcert/graftcert/internal/sharedtest"
)

func loadShared(t *testing.T, model string) (*nn.Network, *data.Array) {
	t.Helper()
	net, err := onnx.DecodeFile(sharedtest.Path(t, "models", model+".onnx"))
	if err != nil {
		t.Fatal(err)
	}
	ref := sharedtest.LoadReference(t, model)
	X, _, err := data.LoadSamples(sharedtest.Path(t, "data", ref.Dataset+"_X.npy"), sharedtest.Path(t, "data", ref.Dataset+"_y.npy"))
	if err != nil {
		t.Fatal(err)
	}
	return net, X
}

// On every shared model (real strides, paddings, normalisation, grafted layers): the
// trainer's batched forward pass equals nn's, and input gradients agree with central
// finite differences of nn's forward pass.
func TestSharedModelsForwardAndInputGradient(t *testing.T) {
	for _, model := range sharedtest.Models {
		t.Run(model, func(t *testing.T) {
			net, X := loadShared(t, model)
			m, err := NewModel(net, false)
			if err != nil {
				t.Fatal(err)
			}
			const n = 3
			x := make([]float64, 0, n*net.InSize())
			for s := 0; s < n; s++ {
				x = append(x, X.Sample(s)...)
			}
			tape := m.Forward(x, n, nil)
			want := net.ForwardBatch(x, n)
			for i, v := range want {
				if math.Abs(tape.Output()[i]-v) > 1e-9*math.Max(1, math.Abs(v)) {
					t.Fatalf("output %d: tape %v, nn %v", i, tape.Output()[i], v)
				}
			}
			rng := rand.New(rand.NewPCG(1, uint64(len(model))))
			c := randVec(rng, net.OutSize(), -1, 1)
			x0 := x[:net.InSize()]
			g := InputGradient(net, x0, c)
			f := func() float64 { return dot(c, net.Forward(x0)) }
			for k := 0; k < 20; k++ {
				j := rng.IntN(len(x0))
				old := x0[j]
				x0[j] = old + 1e-6
				fp := f()
				x0[j] = old - 1e-6
				fm := f()
				x0[j] = old
				if fd := (fp - fm) / 2e-6; !closeTo(g[j], fd, 1e-5) {
					t.Fatalf("input %d: gradient %v, finite difference %v", j, g[j], fd)
				}
			}
		})
	}
}
