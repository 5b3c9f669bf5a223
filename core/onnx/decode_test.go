package onnx

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/graftcert/graftcert/core/nn"
	"github.com/graftcert/graftcert/internal/sharedtest"
)

// Every shared model decodes and reproduces auto_LiRPA's logits on samples 0–4.
func TestSharedModelsMatchReferenceLogits(t *testing.T) {
	data := map[string][]float64{}
	for _, model := range sharedtest.Models {
		t.Run(model, func(t *testing.T) {
			ref := sharedtest.LoadReference(t, model)
			net, err := DecodeFile(modelPath(t, model))
			if err != nil {
				t.Fatal(err)
			}
			x, ok := data[ref.Dataset]
			if !ok {
				_, x = readNpyF32(t, sharedtest.Path(t, "data", ref.Dataset+"_X.npy"))
				data[ref.Dataset] = x
			}
			in := net.InSize()
			if len(ref.Samples) < 5 {
				t.Fatalf("reference has %d samples", len(ref.Samples))
			}
			for _, s := range ref.Samples[:5] {
				y := net.Forward(x[s.Index*in : (s.Index+1)*in])
				if len(y) != len(s.Logits) {
					t.Fatalf("sample %d: %d logits, reference has %d", s.Index, len(y), len(s.Logits))
				}
				for j := range y {
					if !closeEnough(y[j], s.Logits[j], 1e-4) {
						t.Errorf("sample %d logit %d = %v, reference %v", s.Index, j, y[j], s.Logits[j])
					}
				}
				if p := nn.Argmax(y); p != s.Pred {
					t.Errorf("sample %d: argmax %d, reference pred %d", s.Index, p, s.Pred)
				}
			}
		})
	}
}

// The structure the README describes: layer kinds in order, per model family.
func TestSharedModelStructure(t *testing.T) {
	cases := map[string]string{
		"mnist_6_100":              "Affine Affine Reshape Dense ReLU Dense ReLU Dense ReLU Dense ReLU Dense ReLU Dense",
		"mnist_conv_small":         "Affine Affine Conv2d ReLU Conv2d ReLU Reshape Dense ReLU Dense",
		"oval_cifar_deep":          "Affine Affine Conv2d ReLU Conv2d ReLU Conv2d ReLU Conv2d ReLU Reshape Dense ReLU Dense",
		"mnist_6_100_graft50":      "Affine Affine Reshape Dense MaskedReLU Dense MaskedReLU Dense MaskedReLU Dense MaskedReLU Dense MaskedReLU Dense",
		"cifar_conv_small_graft50": "Affine Affine Conv2d MaskedReLU Conv2d MaskedReLU Reshape Dense MaskedReLU Dense",
	}
	for model, want := range cases {
		net, err := DecodeFile(modelPath(t, model))
		if err != nil {
			t.Fatal(err)
		}
		if got := kinds(net); got != want {
			t.Errorf("%s: layers %q, want %q", model, got, want)
		}
	}
	// Sub then Div: shift −mean, then scale 1/std, both per channel. cifar models
	// normalise with CIFAR-10 statistics; channel 0's mean is about 0.49.
	net, err := DecodeFile(modelPath(t, "cifar_conv_small"))
	if err != nil {
		t.Fatal(err)
	}
	sub, div := net.Layers[0].(*nn.Affine), net.Layers[1].(*nn.Affine)
	if sub.Scale != nil || len(sub.Shift) != 3*32*32 || div.Shift != nil || len(div.Scale) != 3*32*32 {
		t.Fatalf("normalisation layers: %+v %+v", sub, div)
	}
	if m := -sub.Shift[0]; m < 0.4 || m > 0.6 || sub.Shift[0] != sub.Shift[1023] || sub.Shift[1023] == sub.Shift[1024] {
		t.Errorf("channel means broadcast wrongly: %v %v %v", sub.Shift[0], sub.Shift[1023], sub.Shift[1024])
	}
	if !net.Input.Equal(nn.Shape{3, 32, 32}) {
		t.Errorf("input shape %v", net.Input)
	}
	c := net.Layers[2].(*nn.Conv2d)
	if c.OutC != 16 || c.KH != 4 || c.SH != 2 || c.PT != 0 || c.OutH != 15 {
		t.Errorf("first conv: %+v", c)
	}
}

func kinds(net *nn.Network) string {
	var k []string
	for _, l := range net.Layers {
		k = append(k, l.Kind())
	}
	return strings.Join(k, " ")
}

// Every VNN-COMP network decodes, and reproduces the Y of every witness of a sat
// instance from its X.
func TestVNNCOMPNetworks(t *testing.T) {
	nets := map[string]*nn.Network{}
	for _, f := range vnncompModels(t) {
		net, err := DecodeFile(f)
		if err != nil {
			t.Errorf("%v", err)
			continue
		}
		nets[f] = net
	}
	// Shapes the testdata README states.
	want := map[string]string{
		"test_nano.onnx":                   "(1) Dense ReLU",
		"test_tiny.onnx":                   "(1) Dense ReLU Dense",
		"test_small.onnx":                  "(1) Dense ReLU Dense ReLU Dense",
		"ACASXU_run2a_1_1_batch_2000.onnx": "(1,1,5) Reshape Dense ReLU Dense ReLU Dense ReLU Dense ReLU Dense ReLU Dense ReLU Dense",
		"mnist-net_256x2.onnx":             "(784,1) Reshape Dense ReLU Dense ReLU Dense",
		"cifar_base_kw.onnx":               "(3,32,32) Conv2d ReLU Conv2d ReLU Reshape Dense ReLU Dense",
	}
	for f, net := range nets {
		if w, ok := want[filepath.Base(f)]; ok {
			if got := net.Input.String() + " " + kinds(net); got != w {
				t.Errorf("%s: %q, want %q", filepath.Base(f), got, w)
			}
		}
	}
	rows := 0
	for _, bench := range []string{"test", "acasxu", "mnist_fc", "oval21"} {
		b, err := os.ReadFile(sharedtest.Path(t, "vnncomp", bench, "witness.csv"))
		if err != nil {
			t.Fatal(err)
		}
		for i, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
			if i == 0 {
				continue
			}
			f := strings.Split(line, ",")
			onnxPath := sharedtest.Path(t, "vnncomp", bench, f[0])
			net := nets[onnxPath]
			if net == nil {
				t.Errorf("%s: network %s not decoded", bench, f[0])
				continue
			}
			w := readWitness(t, sharedtest.Path(t, "vnncomp", bench, f[2]))
			if len(w.X) != net.InSize() || len(w.Y) != net.OutSize() {
				t.Errorf("%s: witness has %d X / %d Y, network %d / %d", f[2], len(w.X), len(w.Y), net.InSize(), net.OutSize())
				continue
			}
			y := net.Forward(w.X)
			for j := range y {
				if !closeEnough(y[j], w.Y[j], 1e-4) {
					t.Errorf("%s: Y_%d = %v, witness %v", f[2], j, y[j], w.Y[j])
				}
			}
			rows++
		}
	}
	if rows != 21 {
		t.Errorf("checked %d witnesses, the README lists 21 sat instances", rows)
	}
}

// test_nano is Relu(x·W) with W = 0.5, stored as one packed float_data value
// (bytes 22 04 00 00 00 3f in the file).
func TestTestNanoByHand(t *testing.T) {
	net, err := DecodeFile(sharedtest.Path(t, "vnncomp", "test", "onnx", "test_nano.onnx"))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range [][2]float64{{-2, 0}, {0.5, 0.25}, {3, 1.5}} {
		if y := net.Forward([]float64{c[0]}); y[0] != c[1] {
			t.Errorf("f(%v) = %v, want %v", c[0], y[0], c[1])
		}
	}
}

func BenchmarkDecode(b *testing.B) {
	for _, model := range []string{"mnist_9_200", "cifar_cnn_a_adv"} {
		raw, err := os.ReadFile(modelPath(b, model))
		if err != nil {
			b.Fatal(err)
		}
		b.Run(model, func(b *testing.B) {
			b.SetBytes(int64(len(raw)))
			for b.Loop() {
				if _, err := Decode(raw); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
