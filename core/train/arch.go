package train

import (
	"fmt"
	"math"
	"math/rand/v2"

	"github.com/graftcert/graftcert/core/nn"
)

// MNIST normalisation built into the architectures (the networks take raw pixels in
// [0,1], as the shared models do).
const (
	MNISTMean = 0.1307
	MNISTStd  = 0.3081
)

// Architectures lists the names Architecture knows: the shapes of the shared models
// mnist_6_100, mnist_6_200, mnist_conv_small and mnist_cnn_a_adv.
var Architectures = []string{"mlp-6x100", "mlp-6x200", "cnn-small", "cnn-a"}

// Architecture builds an untrained MNIST network (1×28×28 raw pixels → 10 logits) of the
// named shape, with the input normalisation (x − mean)/std as its first layer and
// weights drawn by Init(net, seed).
func Architecture(name string, seed uint64) (*nn.Network, error) {
	norm := func() nn.Layer {
		n := 28 * 28
		sc, sh := make([]float64, n), make([]float64, n)
		for i := range sc {
			sc[i] = 1 / MNISTStd
			sh[i] = -MNISTMean / MNISTStd
		}
		return &nn.Affine{NodeName: "normalize", Scale: sc, Shift: sh}
	}
	dense := func(name string, in, out int) nn.Layer {
		return &nn.Dense{NodeName: name, In: in, Out: out, W: make([]float64, in*out), B: make([]float64, out)}
	}
	conv := func(name string, inC, outC, k, s, p int) nn.Layer {
		return &nn.Conv2d{NodeName: name, InC: inC, OutC: outC, KH: k, KW: k, SH: s, SW: s, DH: 1, DW: 1,
			PT: p, PL: p, PB: p, PR: p, W: make([]float64, outC*inC*k*k), B: make([]float64, outC)}
	}
	relu := func(name string) nn.Layer { return &nn.ReLU{NodeName: name} }
	var layers []nn.Layer
	switch name {
	case "mlp-6x100", "mlp-6x200":
		w := 100
		if name == "mlp-6x200" {
			w = 200
		}
		layers = []nn.Layer{norm(), &nn.Reshape{NodeName: "flatten", To: nn.Shape{784}}, dense("fc1", 784, w)}
		for i := 2; i <= 5; i++ {
			layers = append(layers, relu(fmt.Sprintf("relu%d", i-1)), dense(fmt.Sprintf("fc%d", i), w, w))
		}
		layers = append(layers, relu("relu5"), dense("fc6", w, 10))
	case "cnn-small", "cnn-a":
		p, flat := 0, 32*5*5
		if name == "cnn-a" {
			p, flat = 1, 32*7*7
		}
		layers = []nn.Layer{norm(), conv("conv1", 1, 16, 4, 2, p), relu("relu1"), conv("conv2", 16, 32, 4, 2, p), relu("relu2"),
			&nn.Reshape{NodeName: "flatten", To: nn.Shape{flat}}, dense("fc1", flat, 100), relu("relu3"), dense("fc2", 100, 10)}
	default:
		return nil, fmt.Errorf("train: unknown architecture %q (known: %v)", name, Architectures)
	}
	net, err := nn.New(nn.Shape{1, 28, 28}, layers)
	if err != nil {
		return nil, err
	}
	Init(net, seed)
	return net, nil
}

// Init draws every Dense and Conv2d weight from He (Kaiming) uniform initialisation,
// U(±√(6/fan_in)), and sets the biases to 0. He scaling keeps the activations of deep
// ReLU networks from shrinking layer by layer; with PyTorch's default (±1/√fan_in) a
// 6-layer MLP trains markedly slower.
func Init(net *nn.Network, seed uint64) {
	rng := rand.New(rand.NewPCG(seed, 0x1417))
	fill := func(w, b []float64, fanIn int) {
		r := math.Sqrt(6 / float64(fanIn))
		for i := range w {
			w[i] = (2*rng.Float64() - 1) * r
		}
		clear(b)
	}
	for _, l := range net.Layers {
		switch t := l.(type) {
		case *nn.Dense:
			fill(t.W, t.B, t.In)
		case *nn.Conv2d:
			fill(t.W, t.B, t.InC*t.KH*t.KW)
		}
	}
}
