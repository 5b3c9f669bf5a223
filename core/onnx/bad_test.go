package onnx

import (
	"errors"
	"math"
	"math/rand/v2"
	"os"
	"strings"
	"testing"

	"google.golang.org/protobuf/encoding/protowire"

	"github.com/graftcert/graftcert/internal/sharedtest"
)

// tinyModel is a small valid model: Gemm 3→2 with bias, then Relu.
func tinyModel() *tm {
	return newTM(1, 3).f32("W", []int{2, 3}, 1, 2, 3, 4, 5, 6).f32("b", []int{2}, 0.5, -0.5).
		n("fc", "Gemm", []string{"x", "W", "b"}, "h", attrIntBytes("transB", 1)).
		n("relu", "Relu", []string{"h"}, "y")
}

func TestTinyModelByHand(t *testing.T) {
	// (1,0,-1): W·x = (1-3, 4-6) = (-2,-2) + b → relu → (0, 0); (1,1,1): (6.5, 14.5).
	net := tinyModel().decode(t)
	want(t, "tiny", net.Forward([]float64{1, 1, 1}), 6.5, 14.5)
	want(t, "tiny", net.Forward([]float64{1, 0, -1}), 0, 0)
}

func TestBadInputs(t *testing.T) {
	nan := math.NaN()
	cases := []struct {
		name  string
		model func() []byte
		subs  []string
	}{
		{"empty", func() []byte { return nil }, []string{"empty input"}},
		{"text", func() []byte { return []byte("hello, this is not a model\n") }, []string{"onnx:"}},
		{"no graph", func() []byte {
			return appendMsg(nil, fModelOpsetImport, opsetBytes("", 13))
		}, []string{"no graph"}},
		{"unsupported Softmax", func() []byte {
			return tinyModel().n("sm", "Softmax", []string{"y"}, "z").bytes2("z")
		}, []string{`node "sm" (Softmax)`, "operator Softmax", "unsupported"}},
		{"unsupported LSTM", func() []byte {
			return newTM(1, 3).n("lstm", "LSTM", []string{"x"}, "y").bytes()
		}, []string{`node "lstm" (LSTM)`, "unsupported"}},
		{"NaN weight", func() []byte {
			return newTM(1, 2).f32("W", []int{1, 2}, 1, nan).n("fc", "Gemm", []string{"x", "W"}, "y", attrIntBytes("transB", 1)).bytes()
		}, []string{`node "fc" (Gemm)`, `tensor "W"`, "NaN", "element 1"}},
		{"Inf bias", func() []byte {
			return newTM(1, 2).f32("W", []int{1, 2}, 1, 1).f32("b", []int{1}, math.Inf(1)).n("fc", "Gemm", []string{"x", "W", "b"}, "y", attrIntBytes("transB", 1)).bytes()
		}, []string{`node "fc" (Gemm)`, "+Inf"}},
		{"NaN in Sub constant", func() []byte {
			return newTM(1, 2).f32("m", []int{2}, nan, 0).n("sub", "Sub", []string{"x", "m"}, "y").bytes()
		}, []string{`node "sub" (Sub)`, "NaN"}},
		{"shape mismatch", func() []byte {
			return newTM(1, 4).f32("W", []int{2, 3}, 1, 2, 3, 4, 5, 6).n("fc", "Gemm", []string{"x", "W"}, "y", attrIntBytes("transB", 1)).bytes()
		}, []string{`node "fc" (Gemm)`, "input has 4 features"}},
		{"conv channels", func() []byte {
			return newTM(1, 2, 4, 4).f32("W", []int{1, 3, 1, 1}, 1, 1, 1).n("c", "Conv", []string{"x", "W"}, "y").bytes()
		}, []string{`node "c" (Conv)`, "input channels"}},
		{"conv group", func() []byte {
			return newTM(1, 2, 4, 4).f32("W", []int{2, 1, 1, 1}, 1, 1).n("c", "Conv", []string{"x", "W"}, "y", attrIntBytes("group", 2)).bytes()
		}, []string{`node "c" (Conv)`, "group=2", "unsupported"}},
		{"conv 1-D", func() []byte {
			return newTM(1, 2, 4).f32("W", []int{1, 2, 1}, 1, 1).n("c", "Conv", []string{"x", "W"}, "y").bytes()
		}, []string{`node "c" (Conv)`, "2-D convolution"}},
		{"transA", func() []byte {
			return newTM(1, 2).f32("W", []int{2, 2}, 1, 1, 1, 1).n("g", "Gemm", []string{"x", "W"}, "y", attrIntBytes("transA", 1)).bytes()
		}, []string{`node "g" (Gemm)`, "transA=1"}},
		{"unknown attribute", func() []byte {
			return newTM(1, 2).n("r", "Relu", []string{"x"}, "y", attrIntBytes("frobnicate", 1)).bytes()
		}, []string{`node "r" (Relu)`, `attribute "frobnicate"`, "unsupported"}},
		{"attribute type", func() []byte {
			return newTM(1, 2).f32("W", []int{2, 2}, 1, 1, 1, 1).n("g", "Gemm", []string{"x", "W"}, "y", attrFloatBytes("transB", 1)).bytes()
		}, []string{`node "g" (Gemm)`, `attribute "transB" has type FLOAT, want INT`}},
		{"unknown dtype INT8", func() []byte {
			return newTM(1, 2).init(tensorBytes("W8", []int{1, 2}, dtInt8, []byte{1, 2})).
				n("g", "Gemm", []string{"x", "W8"}, "y", attrIntBytes("transB", 1)).bytes()
		}, []string{`node "g" (Gemm)`, `tensor "W8"`, "INT8", "unsupported"}},
		{"dtype BFLOAT16", func() []byte {
			return newTM(1, 2).init(tensorBytes("Wb", []int{1, 2}, 16, []byte{1, 2, 3, 4})).
				n("g", "Gemm", []string{"x", "Wb"}, "y", attrIntBytes("transB", 1)).bytes()
		}, []string{`tensor "Wb"`, "BFLOAT16"}},
		{"raw_data too short", func() []byte {
			return newTM(1, 2).init(tensorBytes("W", []int{1, 2}, dtFloat, []byte{0, 0, 128, 63})).
				n("g", "Gemm", []string{"x", "W"}, "y", attrIntBytes("transB", 1)).bytes()
		}, []string{`tensor "W"`, "raw_data has 4 bytes", "need 8"}},
		{"absurd dims", func() []byte {
			return newTM(1, 2).init(tensorBytes("W", []int{1 << 20, 1 << 20}, dtFloat, []byte{0, 0, 128, 63})).
				n("g", "Gemm", []string{"x", "W"}, "y", attrIntBytes("transB", 1)).bytes()
		}, []string{`tensor "W"`, "more than 2147483648 elements"}},
		{"negative dim", func() []byte {
			var t []byte
			t = protowire.AppendTag(t, fTensorDims, protowire.VarintType)
			t = protowire.AppendVarint(t, uint64(1<<64-3))
			t = protowire.AppendTag(t, fTensorDataType, protowire.VarintType)
			t = protowire.AppendVarint(t, dtFloat)
			t = protowire.AppendTag(t, fTensorName, protowire.BytesType)
			t = protowire.AppendString(t, "W")
			return newTM(1, 2).init(t).n("m", "Mul", []string{"x", "W"}, "y").bytes()
		}, []string{`tensor "W"`, "negative dimension -3"}},
		{"external data", func() []byte {
			var t []byte
			t = protowire.AppendTag(t, fTensorDataType, protowire.VarintType)
			t = protowire.AppendVarint(t, dtFloat)
			t = protowire.AppendTag(t, fTensorName, protowire.BytesType)
			t = protowire.AppendString(t, "W")
			t = protowire.AppendTag(t, fTensorDataLocation, protowire.VarintType)
			t = protowire.AppendVarint(t, 1)
			return newTM(1, 2).init(t).n("m", "Mul", []string{"x", "W"}, "y").bytes()
		}, []string{`tensor "W"`, "external data"}},
		{"branching graph", func() []byte {
			return newTM(1, 2).n("r", "Relu", []string{"x"}, "h").n("add", "Add", []string{"h", "x"}, "y").bytes()
		}, []string{"branches"}},
		{"two real inputs", func() []byte {
			m := newTM(1, 2)
			m.ins = append(m.ins, valueInfoBytes("x2", []int{1, 2}))
			return m.n("r", "Relu", []string{"x"}, "y").bytes()
		}, []string{"2 inputs that are not initializers"}},
		{"opset 7", func() []byte {
			m := tinyModel()
			m.opset = 7
			return m.bytes()
		}, []string{"opset 7", "unsupported"}},
		{"opset 99", func() []byte {
			m := tinyModel()
			m.opset = 99
			return m.bytes()
		}, []string{"opset 99"}},
		{"unknown custom op", func() []byte {
			m := newTM(1, 2)
			m.custom = true
			m.node("g", CustomDomain, "Frobnicate", []string{"x"}, "y")
			return m.bytes()
		}, []string{`node "g" (customOp::Frobnicate)`, "unsupported"}},
		{"foreign domain", func() []byte {
			m := newTM(1, 2)
			m.node("z", "com.microsoft", "FusedGemm", []string{"x"}, "y")
			return m.bytes()
		}, []string{`node "z" (com.microsoft::FusedGemm)`, "domain"}},
		{"divide by zero", func() []byte {
			return newTM(1, 2).f32("s", []int{2}, 1, 0).n("div", "Div", []string{"x", "s"}, "y").bytes()
		}, []string{`node "div" (Div)`, "zero at element 1"}},
		{"broadcast grows tensor", func() []byte {
			return newTM(1, 2).f32("c", []int{3, 1}, 1, 2, 3).n("add", "Add", []string{"x", "c"}, "y").bytes()
		}, []string{`node "add" (Add)`, "broadcast"}},
		{"batch 4", func() []byte {
			m := tinyModel()
			m.ins[0] = valueInfoBytes("x", []int{4, 3})
			return m.bytes()
		}, []string{`graph input "x"`, "batch dimension is 4"}},
		{"missing value", func() []byte {
			return newTM(1, 2).n("r", "Relu", []string{"nowhere"}, "y").bytes()
		}, []string{`value "nowhere" is not produced`}},
		{"cycle", func() []byte {
			return newTM(1, 2).n("a", "Add", []string{"x", "b"}, "a").n("b", "Relu", []string{"a"}, "b").n("c", "Relu", []string{"b"}, "y").bytes()
		}, []string{"cycle"}},
		{"output is constant", func() []byte {
			return newTM(1, 2).f32("c", []int{1}, 1).n("id", "Identity", []string{"c"}, "y").bytes()
		}, []string{"does not depend on the input"}},
		{"weight from the input", func() []byte {
			return newTM(1, 2).n("mm", "MatMul", []string{"x", "x"}, "y").bytes()
		}, []string{`node "mm" (MatMul)`, "twice"}},
		{"reshape shape float", func() []byte {
			return newTM(1, 2).f32("s", []int{2}, 1, 2).n("r", "Reshape", []string{"x", "s"}, "y").bytes()
		}, []string{`node "r" (Reshape)`, "integer tensor"}},
		{"input without shape", func() []byte {
			m := newTM(1, 2)
			var v []byte
			v = protowire.AppendTag(v, fValueName, protowire.BytesType)
			v = protowire.AppendString(v, "x")
			m.ins[0] = v
			return m.n("r", "Relu", []string{"x"}, "y").bytes()
		}, []string{`graph input "x"`, "no tensor type"}},
		{"symbolic feature dim", func() []byte {
			var dims []byte
			dims = appendMsg(dims, fShapeDim, protowire.AppendVarint(protowire.AppendTag(nil, fDimValue, protowire.VarintType), 1))
			dims = appendMsg(dims, fShapeDim, protowire.AppendString(protowire.AppendTag(nil, fDimParam, protowire.BytesType), "features"))
			tt := appendMsg(protowire.AppendVarint(protowire.AppendTag(nil, fTensorElemType, protowire.VarintType), dtFloat), fTensorShape, dims)
			v := protowire.AppendString(protowire.AppendTag(nil, fValueName, protowire.BytesType), "x")
			v = appendMsg(v, fValueType, appendMsg(nil, fTypeTensor, tt))
			m := newTM(1, 2)
			m.ins[0] = v
			return m.n("r", "Relu", []string{"x"}, "y").bytes()
		}, []string{"symbolic (features)"}},
		{"huge activation", func() []byte {
			return newTM(1, 1<<22, 1<<10).f32("c", []int{1}, 2).n("m", "Mul", []string{"x", "c"}, "y").bytes()
		}, []string{"more than 16777216"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			expectErr(t, c.model(), c.subs...)
		})
	}
}

// bytes2 is bytes with another graph output name.
func (m *tm) bytes2(out string) []byte {
	m.out = out
	return m.bytes()
}

// Errors wrap the package's sentinel errors.
func TestErrorKinds(t *testing.T) {
	_, err := Decode(newTM(1, 3).n("lstm", "LSTM", []string{"x"}, "y").bytes())
	if !errors.Is(err, ErrUnsupported) {
		t.Errorf("LSTM: %v does not wrap ErrUnsupported", err)
	}
	_, err = Decode(newTM(1, 2).init(tensorBytes("W", []int{1, 2}, dtFloat, []byte{1})).n("m", "Mul", []string{"x", "W"}, "y").bytes())
	if !errors.Is(err, ErrInvalid) {
		t.Errorf("short raw_data: %v does not wrap ErrInvalid", err)
	}
	_, err = Decode([]byte{0x0a, 0x05, 0x01})
	if err == nil || !errors.Is(err, errTruncated) {
		t.Errorf("truncated bytes: %v", err)
	}
}

// Every proper prefix of a small model is an error, never a panic.
func TestTruncatedModels(t *testing.T) {
	b := tinyModel().bytes()
	if _, err := Decode(b); err != nil {
		t.Fatal(err)
	}
	for n := 0; n < len(b); n++ {
		_, err := Decode(b[:n])
		if err == nil {
			t.Fatalf("prefix of %d/%d bytes decoded without error", n, len(b))
		}
		if strings.Contains(err.Error(), "internal error") {
			t.Fatalf("prefix %d: %v", n, err)
		}
	}
	// Prefixes of a real model, at 300 seeded random lengths.
	full, err := os.ReadFile(sharedtest.Path(t, "models", "mnist_conv_small.onnx"))
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(5, 6))
	for k := 0; k < 300; k++ {
		n := rng.IntN(len(full))
		_, err := Decode(full[:n])
		if err == nil || strings.Contains(err.Error(), "internal error") {
			t.Fatalf("prefix of %d bytes: err = %v", n, err)
		}
	}
}

// Flipping any one bit of a small model gives a model or an error, never a panic.
func TestBitFlips(t *testing.T) {
	b := tinyModel().bytes()
	errs := 0
	for i := range b {
		for bit := 0; bit < 8; bit++ {
			c := append([]byte(nil), b...)
			c[i] ^= 1 << bit
			if _, err := Decode(c); err != nil {
				if strings.Contains(err.Error(), "internal error") {
					t.Fatalf("byte %d bit %d: %v", i, bit, err)
				}
				errs++
			}
		}
	}
	if errs == 0 {
		t.Fatal("no bit flip was detected as an error")
	}
	t.Logf("%d of %d single-bit flips rejected", errs, 8*len(b))
}

func TestInspectAndEstimate(t *testing.T) {
	b, err := os.ReadFile(sharedtest.Path(t, "models", "mnist_6_100.onnx"))
	if err != nil {
		t.Fatal(err)
	}
	info, err := Inspect(b)
	if err != nil {
		t.Fatal(err)
	}
	// The README: 119,910 parameters, plus the 2 normalisation constants and the
	// Reshape's 2-element shape.
	if info.ParamElements != 119910+2+2 || info.Ops["Gemm"] != 6 || info.Ops["Relu"] != 5 || info.Opsets[""] != 13 {
		t.Errorf("info %+v", info)
	}
	if info.Input != "input" || len(info.InputShape) != 4 || info.InputShape[2] != 28 {
		t.Errorf("input %q %v", info.Input, info.InputShape)
	}
	if !strings.Contains(info.String(), "Gemm 6") {
		t.Errorf("summary %q", info.String())
	}
	est, err := EstimateBytes(b)
	if err != nil {
		t.Fatal(err)
	}
	if want := int64(len(b)) + 8*(119910+4); est != want {
		t.Errorf("EstimateBytes = %d, want %d", est, want)
	}
	net, err := Decode(b)
	if err != nil {
		t.Fatal(err)
	}
	// Parameters 119,910 plus 2×784 normalisation values; activations: input 784,
	// after Sub, Div, Reshape 784 each, then 6 Gemm and 5 Relu of 100 (10 last).
	params := int64(119910 + 2*784)
	acts := int64(4*784 + 5*100*2 + 10)
	if got := NetworkBytes(net); got != 8*(params+acts) {
		t.Errorf("NetworkBytes = %d, want %d", got, 8*(params+acts))
	}
	// ACAS Xu lists initializers as inputs too: the real input is found.
	ab, err := os.ReadFile(sharedtest.Path(t, "vnncomp", "acasxu", "onnx", "ACASXU_run2a_1_1_batch_2000.onnx"))
	if err != nil {
		t.Fatal(err)
	}
	ai, err := Inspect(ab)
	if err != nil {
		t.Fatal(err)
	}
	if ai.Input != "input" || ai.Opsets[""] != 8 || ai.IRVersion != 3 {
		t.Errorf("acas info %+v", ai)
	}
	if _, err := Inspect(nil); err == nil {
		t.Error("Inspect(nil) gave no error")
	}
}

// Longer version of TestBitFlips and TestTruncatedModels on real files: every bit of
// the small VNN-COMP networks (of test_sat, ACAS Xu 1_7, the non-weight bytes and
// every 64th weight byte) and every prefix of test_sat. Runs with GRAFTCERT_FULL=1.
func TestBitFlipsFull(t *testing.T) {
	if os.Getenv("GRAFTCERT_FULL") == "" {
		t.Skip("set GRAFTCERT_FULL=1")
	}
	for _, name := range []string{"test_nano", "test_tiny", "test_small", "test_sat"} {
		b, err := os.ReadFile(sharedtest.Path(t, "vnncomp", "test", "onnx", name+".onnx"))
		if err != nil {
			t.Fatal(err)
		}
		raw := rawRanges(t, b)
		inRaw := func(i int) bool {
			for _, r := range raw {
				if i >= r[0] && i < r[1] {
					return true
				}
			}
			return false
		}
		for i := range b {
			if i%64 != 0 && inRaw(i) {
				continue
			}
			for bit := 0; bit < 8; bit++ {
				c := append([]byte(nil), b...)
				c[i] ^= 1 << bit
				if _, err := Decode(c); err != nil && strings.Contains(err.Error(), "internal error") {
					t.Fatalf("%s byte %d bit %d: %v", name, i, bit, err)
				}
			}
		}
		if name == "test_sat" {
			for n := 0; n < len(b); n++ {
				if _, err := Decode(b[:n]); err == nil || strings.Contains(err.Error(), "internal error") {
					t.Fatalf("%s prefix %d: err = %v", name, n, err)
				}
			}
		}
	}
}

// rawRanges lists the [start, end) byte ranges of the initializers' raw_data.
func rawRanges(t *testing.T, b []byte) [][2]int {
	m, err := parseModel(b)
	if err != nil {
		t.Fatal(err)
	}
	var r [][2]int
	for _, in := range m.graph.initializers {
		r = append(r, [2]int{in.rawOffset, in.rawOffset + len(in.raw)})
	}
	return r
}
