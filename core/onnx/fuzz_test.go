package onnx

import (
	"os"
	"strings"
	"testing"

	"github.com/graftcert/graftcert/core/nn"
	"github.com/graftcert/graftcert/internal/sharedtest"
)

// FuzzDecode checks that no input makes Decode, Inspect or EstimateBytes panic (the
// decoder's recover turns a panic into an "internal error", which fails here), and
// that every network Decode accepts runs and survives Encode → Decode.
func FuzzDecode(f *testing.F) {
	f.Add(tinyModel().bytes())
	for _, p := range []string{"test_nano.onnx", "test_tiny.onnx", "test_small.onnx"} {
		if b, err := os.ReadFile(sharedtest.Path(f, "vnncomp", "test", "onnx", p)); err == nil {
			f.Add(b)
		}
	}
	conv := newTM(1, 1, 3, 3).f32("W", []int{1, 1, 2, 2}, 1, 1, 1, 1).f32("b", []int{1}, 0.5).
		f32("s", []int{1}, 3).f32("B", []int{1}, 0.5).f32("mu", []int{1}, 1).f32("v", []int{1}, 4).
		i64("shape", 1, -1).
		n("c", "Conv", []string{"x", "W", "b"}, "h", attrIntsBytes("pads", 1, 0, 0, 1)).
		n("bn", "BatchNormalization", []string{"h", "s", "B", "mu", "v"}, "h2").
		n("r", "Reshape", []string{"h2", "shape"}, "y")
	f.Add(conv.bytes())
	mask := newTM(1, 2).f32("m", []int{2}, 0, 1).f32("a", []int{2}, 0.5, 0.5).f32("c", []int{2}, 0, 1)
	mask.custom = true
	mask.node("g", CustomDomain, "LinearMaskedRelu", []string{"x", "m", "a", "c"}, "h")
	mask.n("sub", "Sub", []string{"c", "h"}, "y")
	f.Add(mask.bytes())
	if net, err := nn.New(nn.Shape{2}, []nn.Layer{
		&nn.Dense{NodeName: "fc", In: 2, Out: 2, W: []float64{1, -1, 2, -1}},
		&nn.ReLU{NodeName: "relu"},
		&nn.Affine{NodeName: "a", Scale: []float64{1 / float64(float32(3)), 2}, Shift: []float64{1, 0}},
	}); err == nil {
		if b, err := Encode(net); err == nil {
			f.Add(b)
		}
	}

	f.Fuzz(func(t *testing.T, b []byte) {
		if _, err := Inspect(b); err != nil && strings.Contains(err.Error(), "internal error") {
			t.Fatal(err)
		}
		_, _ = EstimateBytes(b)
		net, err := Decode(b)
		if err != nil {
			if strings.Contains(err.Error(), "internal error") {
				t.Fatal(err)
			}
			return
		}
		if net.InSize() <= 1<<16 {
			net.Forward(make([]float64, net.InSize()))
		}
		_ = NetworkBytes(net)
		enc, err := Encode(net)
		if err != nil {
			return // e.g. a folded weight beyond the float32 range
		}
		if _, err := Decode(enc); err != nil {
			t.Fatalf("re-decoding an encoded network failed: %v", err)
		}
	})
}
