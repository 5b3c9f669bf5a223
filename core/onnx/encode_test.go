package onnx

import (
	"bytes"
	"math/rand/v2"
	"os"
	"testing"

	"github.com/graftcert/graftcert/core/nn"
	"github.com/graftcert/graftcert/internal/sharedtest"
)

// sameBits compares two outputs exactly (== on every value, so -0 equals +0).
func sameOutputs(t *testing.T, what string, a, b []float64) {
	t.Helper()
	if len(a) != len(b) {
		t.Fatalf("%s: %d vs %d outputs", what, len(a), len(b))
	}
	for i := range a {
		if a[i] != b[i] {
			t.Fatalf("%s: output %d differs: %v vs %v (diff %g)", what, i, a[i], b[i], a[i]-b[i])
		}
	}
}

// import → export → import: bit-identical outputs on samples 0–4 for every shared
// model, and exporting again gives the same bytes.
func TestRoundTripSharedModels(t *testing.T) {
	data := map[string][]float64{}
	for _, model := range sharedtest.Models {
		t.Run(model, func(t *testing.T) {
			ref := sharedtest.LoadReference(t, model)
			net1, err := DecodeFile(modelPath(t, model))
			if err != nil {
				t.Fatal(err)
			}
			b1, err := Encode(net1)
			if err != nil {
				t.Fatal(err)
			}
			net2, err := Decode(b1)
			if err != nil {
				t.Fatal(err)
			}
			if kinds(net1) != kinds(net2) || !net1.Input.Equal(net2.Input) {
				t.Errorf("structure changed: %s %s → %s %s", net1.Input, kinds(net1), net2.Input, kinds(net2))
			}
			x, ok := data[ref.Dataset]
			if !ok {
				_, x = readNpyF32(t, sharedtest.Path(t, "data", ref.Dataset+"_X.npy"))
				data[ref.Dataset] = x
			}
			in := net1.InSize()
			for s := 0; s < 5; s++ {
				xs := x[s*in : (s+1)*in]
				sameOutputs(t, model, net1.Forward(xs), net2.Forward(xs))
			}
			b2, err := Encode(net2)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(b1, b2) {
				t.Errorf("second export differs from the first (%d vs %d bytes)", len(b1), len(b2))
			}
		})
	}
}

// The VNN-COMP networks survive the round trip too (ACAS Xu's MatMul+Add, the
// weight-first MatMul and the batch-free input of test_*).
func TestRoundTripVNNCOMP(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, f := range vnncompModels(t) {
		net1, err := DecodeFile(f)
		if err != nil {
			t.Fatal(err)
		}
		b, err := Encode(net1)
		if err != nil {
			t.Fatal(f, err)
		}
		net2, err := Decode(b)
		if err != nil {
			t.Fatal(f, err)
		}
		for k := 0; k < 3; k++ {
			x := make([]float64, net1.InSize())
			for i := range x {
				x[i] = rng.Float64()*2 - 1
			}
			sameOutputs(t, f, net1.Forward(x), net2.Forward(x))
		}
	}
}

// A network with every layer type, hand-built with float32 weights.
func allLayersNet(t *testing.T) *nn.Network {
	t.Helper()
	rng := rand.New(rand.NewPCG(7, 8))
	r := func(n int) []float64 {
		v := make([]float64, n)
		for i := range v {
			v[i] = float64(float32(rng.NormFloat64() * 0.5))
		}
		return v
	}
	mask := make([]float64, 2*6*6)
	for i := range mask {
		mask[i] = float64(i % 2)
	}
	third := make([]float64, 5)
	for i := range third {
		third[i] = 1 / float64(float32(3+i)) // a Div by 3, 4, ...: not float32 itself
	}
	net, err := nn.New(nn.Shape{1, 6, 6}, []nn.Layer{
		&nn.Affine{NodeName: "norm", Scale: r(36), Shift: r(36)},
		&nn.Conv2d{NodeName: "conv1", InC: 1, OutC: 2, KH: 3, KW: 3, SH: 1, SW: 1, DH: 1, DW: 1, PT: 1, PL: 1, PB: 1, PR: 1, W: r(18), B: r(2)},
		&nn.ReLU{NodeName: "relu1"},
		&nn.Conv2d{NodeName: "conv2", InC: 2, OutC: 2, KH: 2, KW: 2, SH: 2, SW: 1, DH: 1, DW: 2, PT: 0, PL: 1, PB: 1, PR: 0, W: r(16)},
		&nn.MaskedReLU{NodeName: "graft", Mask: mask[:2*3*5], Slope: r(30), Bias: r(30)},
		&nn.Dense{NodeName: "fc1", In: 30, Out: 5, W: r(150), B: r(5)}, // straight after a conv: Flatten inserted
		&nn.Affine{NodeName: "div", Scale: third},
		&nn.ReLU{NodeName: "relu2"},
		&nn.Dense{NodeName: "fc2", In: 5, Out: 4, W: r(20)},
		&nn.Affine{NodeName: "shift", Shift: r(4)},
		&nn.Reshape{NodeName: "reshape", To: nn.Shape{2, 2}},
		&nn.Reshape{NodeName: "flat", To: nn.Shape{4}},
		&nn.Dense{NodeName: "fc3", In: 4, Out: 3, W: r(12), B: r(3)},
	})
	if err != nil {
		t.Fatal(err)
	}
	return net
}

func TestEncodeEveryLayerType(t *testing.T) {
	net := allLayersNet(t)
	b, err := Encode(net)
	if err != nil {
		t.Fatal(err)
	}
	back, err := Decode(b)
	if err != nil {
		t.Fatal(err)
	}
	// The Flatten before fc1 comes back as a Reshape; the reshapes (4)→(2,2)→(4)
	// cancel out.
	want := "Affine Conv2d ReLU Conv2d MaskedReLU Reshape Dense Affine ReLU Dense Affine Dense"
	if got := kinds(back); got != want {
		t.Errorf("decoded layers %q, want %q", got, want)
	}
	if d := back.Layers[7].(*nn.Affine); d.Shift != nil || d.Scale[0] != 1/float64(float32(3)) {
		t.Errorf("Div layer decoded as %+v", d)
	}
	rng := rand.New(rand.NewPCG(3, 4))
	for k := 0; k < 20; k++ {
		x := make([]float64, 36)
		for i := range x {
			x[i] = rng.Float64()*4 - 2
		}
		sameOutputs(t, "every layer type", net.Forward(x), back.Forward(x))
	}
	// The operators written, in order.
	m, err := parseModel(b)
	if err != nil {
		t.Fatal(err)
	}
	var ops []string
	for _, n := range m.graph.nodes {
		ops = append(ops, n.opType)
	}
	wantOps := "Mul Add Conv Relu Conv LinearMaskedRelu Flatten Gemm Div Relu Gemm Add Reshape Reshape Gemm"
	if got := join(ops); got != wantOps {
		t.Errorf("nodes %q, want %q", got, wantOps)
	}
	if m.irVersion != EncodeIRVersion || len(m.opsets) != 2 || m.opsets[0].version != 13 || m.opsets[1].domain != "customOp" {
		t.Errorf("header: ir %d, opsets %v", m.irVersion, m.opsets)
	}
	g := m.graph
	if g.inputs[0].name != "input" || g.outputs[0].name != "output" || len(g.inputs[0].dims) != 4 || g.inputs[0].dims[0].value != 1 {
		t.Errorf("graph input/output: %+v %+v", g.inputs[0], g.outputs[0])
	}
}

func join(s []string) string {
	out := ""
	for i, x := range s {
		if i > 0 {
			out += " "
		}
		out += x
	}
	return out
}

// The grafted layers are written exactly as the shared *_graft50 files lay them out:
// node customOp::LinearMaskedRelu with inputs (x, mask, slope, bias), the last three
// float initializers of x's per-sample shape.
func TestEncodeGraftLayout(t *testing.T) {
	for _, model := range []string{"mnist_6_100_graft50", "cifar_conv_small_graft50"} {
		orig, err := os.ReadFile(modelPath(t, model))
		if err != nil {
			t.Fatal(err)
		}
		net, err := Decode(orig)
		if err != nil {
			t.Fatal(err)
		}
		b, err := Encode(net)
		if err != nil {
			t.Fatal(err)
		}
		layout := func(b []byte) [][]int64 {
			m, err := parseModel(b)
			if err != nil {
				t.Fatal(err)
			}
			dims := map[string]*tensorProto{}
			for _, in := range m.graph.initializers {
				dims[in.name] = in
			}
			var out [][]int64
			for _, n := range m.graph.nodes {
				if n.opType != "LinearMaskedRelu" {
					continue
				}
				if n.domain != "customOp" || len(n.inputs) != 4 || len(n.attrs) != 0 {
					t.Fatalf("%s: node %+v", model, n)
				}
				for _, in := range n.inputs[1:] {
					tp := dims[in]
					if tp == nil || tp.dtype != dtFloat {
						t.Fatalf("%s: input %q is not a float initializer", model, in)
					}
					out = append(out, tp.dims)
				}
			}
			return out
		}
		a, c := layout(orig), layout(b)
		if len(a) == 0 || len(a) != len(c) {
			t.Fatalf("%s: %d grafted params in the original, %d exported", model, len(a), len(c))
		}
		for i := range a {
			if !equalInts(int64sToInts(a[i]), int64sToInts(c[i])) {
				t.Errorf("%s: parameter %d has dims %v, original %v", model, i, c[i], a[i])
			}
		}
	}
}

func int64sToInts(v []int64) []int {
	out := make([]int, len(v))
	for i, x := range v {
		out[i] = int(x)
	}
	return out
}

// A hand-checked value: toy network of auto_LiRPA, exported and read back.
func TestEncodeToy(t *testing.T) {
	net, err := nn.New(nn.Shape{2}, []nn.Layer{
		&nn.Dense{NodeName: "fc1", In: 2, Out: 2, W: []float64{1, -1, 2, -1}},
		&nn.ReLU{NodeName: "relu"},
		&nn.Dense{NodeName: "fc2", In: 2, Out: 1, W: []float64{1, -1}, B: []float64{0.5}},
	})
	if err != nil {
		t.Fatal(err)
	}
	b, err := Encode(net)
	if err != nil {
		t.Fatal(err)
	}
	back, err := Decode(b)
	if err != nil {
		t.Fatal(err)
	}
	// x = (2, -2): h = relu(4, 6), y = 4 - 6 + 0.5.
	if y := back.Forward([]float64{2, -2}); y[0] != -1.5 {
		t.Errorf("f(2,-2) = %v, want -1.5", y[0])
	}
}

// Weights are rounded to float32; values outside its range are an error.
func TestEncodeRoundsToFloat32(t *testing.T) {
	net, err := nn.New(nn.Shape{1}, []nn.Layer{&nn.Dense{NodeName: "d", In: 1, Out: 1, W: []float64{0.1}}})
	if err != nil {
		t.Fatal(err)
	}
	b, err := Encode(net)
	if err != nil {
		t.Fatal(err)
	}
	back, err := Decode(b)
	if err != nil {
		t.Fatal(err)
	}
	if w := back.Layers[0].(*nn.Dense).W[0]; w != float64(float32(0.1)) || w == 0.1 {
		t.Errorf("weight read back as %v, want float32(0.1) = %v", w, float64(float32(0.1)))
	}
	big, err := nn.New(nn.Shape{1}, []nn.Layer{&nn.Dense{NodeName: "d", In: 1, Out: 1, W: []float64{1e300}}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Encode(big); err == nil || !contains(err, `"d"`, "not a finite float32") {
		t.Errorf("1e300 weight: err = %v", err)
	}
	if _, err := Encode(nil); err == nil {
		t.Error("nil network encoded")
	}
}
