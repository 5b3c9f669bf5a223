package onnx

import (
	"encoding/binary"
	"math"
	"strings"
	"testing"

	"google.golang.org/protobuf/encoding/protowire"

	"github.com/graftcert/graftcert/core/nn"
)

// tm builds ONNX models by hand for the tests, byte by byte.
type tm struct {
	encoder
	opset  int64
	custom bool
	ins    [][]byte // graph inputs (ValueInfoProto)
	out    string
}

func newTM(inShape ...int) *tm {
	m := &tm{opset: 13, out: "y"}
	m.ins = append(m.ins, valueInfoBytes("x", inShape))
	return m
}

func (m *tm) f32(name string, dims []int, v ...float64) *tm {
	raw := make([]byte, 4*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint32(raw[4*i:], math.Float32bits(float32(x)))
	}
	m.inits = appendMsg(m.inits, fGraphInitializer, tensorBytes(name, dims, dtFloat, raw))
	return m
}

func (m *tm) i64(name string, v ...int64) *tm {
	m.inits = appendMsg(m.inits, fGraphInitializer, tensorBytes(name, []int{len(v)}, dtInt64, int64sRaw(v)))
	return m
}

func (m *tm) init(t []byte) *tm {
	m.inits = appendMsg(m.inits, fGraphInitializer, t)
	return m
}

func (m *tm) n(name, op string, ins []string, out string, attrs ...[]byte) *tm {
	m.node(name, "", op, ins, out, attrs...)
	return m
}

func (m *tm) bytes() []byte {
	var g []byte
	g = append(g, m.nodes...)
	g = append(g, m.inits...)
	for _, in := range m.ins {
		g = appendMsg(g, fGraphInput, in)
	}
	var out []byte
	out = protowire.AppendTag(out, fValueName, protowire.BytesType)
	out = protowire.AppendString(out, m.out)
	g = appendMsg(g, fGraphOutput, out)
	var b []byte
	b = protowire.AppendTag(b, fModelIRVersion, protowire.VarintType)
	b = protowire.AppendVarint(b, 8)
	b = appendMsg(b, fModelOpsetImport, opsetBytes("", m.opset))
	if m.custom {
		b = appendMsg(b, fModelOpsetImport, opsetBytes(CustomDomain, 1))
	}
	return appendMsg(b, fModelGraph, g)
}

func (m *tm) decode(t *testing.T) *nn.Network {
	t.Helper()
	net, err := Decode(m.bytes())
	if err != nil {
		t.Fatal(err)
	}
	return net
}

func want(t *testing.T, what string, got []float64, want ...float64) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s = %v, want %v", what, got, want)
	}
	for i := range got {
		if math.Abs(got[i]-want[i]) > 1e-12 {
			t.Fatalf("%s = %v, want %v", what, got, want)
		}
	}
}

func TestGemmAttributes(t *testing.T) {
	// y = 2·x·B + 0.5·C with B = [[1,2,3],[4,5,6]] (transB=0), C = [[10,20,30]].
	m := newTM(1, 2).f32("B", []int{2, 3}, 1, 2, 3, 4, 5, 6).f32("C", []int{1, 3}, 10, 20, 30).
		n("g", "Gemm", []string{"x", "B", "C"}, "y", attrFloatBytes("alpha", 2), attrFloatBytes("beta", 0.5))
	net := m.decode(t)
	// x = (1,-1): x·B = (-3,-3,-3).
	want(t, "gemm", net.Forward([]float64{1, -1}), -1, 4, 9)
}

func TestConvBatchNormFolds(t *testing.T) {
	// Conv 1×1 weight 2, bias 1; BN scale 3, B 0.5, mean 1, var 3.99, eps 0.01:
	// s = 3/2, t = 0.5 - 1.5 → z = 1.5(2x+1) - 1 = 3x + 0.5.
	m := newTM(1, 1, 2, 2).f32("W", []int{1, 1, 1, 1}, 2).f32("b", []int{1}, 1).
		f32("s", []int{1}, 3).f32("B", []int{1}, 0.5).f32("mu", []int{1}, 1).f32("v", []int{1}, 3.99).
		n("c", "Conv", []string{"x", "W", "b"}, "h").
		n("bn", "BatchNormalization", []string{"h", "s", "B", "mu", "v"}, "y", attrFloatBytes("epsilon", 0.01), attrFloatBytes("momentum", 0.9))
	net := m.decode(t)
	if kinds(net) != "Conv2d" {
		t.Errorf("layers %q, want the BN folded into the Conv", kinds(net))
	}
	got := net.Forward([]float64{0, 1, 2, -1})
	for i, w := range []float64{0.5, 3.5, 6.5, -2.5} {
		if math.Abs(got[i]-w) > 1e-6 { // float32 3.99+0.01 is not exactly 4
			t.Fatalf("conv+bn = %v, want [0.5 3.5 6.5 -2.5]", got)
		}
	}
	// Without a Conv or Dense before it, the BN is an Affine: x[1,2] channels.
	m2 := newTM(1, 2).f32("s", []int{2}, 2, 1).f32("B", []int{2}, 1, 0).f32("mu", []int{2}, 0, 1).f32("v", []int{2}, 1, 4).
		n("bn", "BatchNormalization", []string{"x", "s", "B", "mu", "v"}, "y", attrFloatBytes("epsilon", 0))
	net2 := m2.decode(t)
	if kinds(net2) != "Affine" {
		t.Errorf("layers %q", kinds(net2))
	}
	want(t, "bn", net2.Forward([]float64{3, 5}), 7, 2) // 2·3+1, (5-1)/2
}

func TestElementwiseWithConstants(t *testing.T) {
	// c - x with c = (1,2,3), then Relu.
	m := newTM(1, 3).f32("c", []int{3}, 1, 2, 3).
		n("sub", "Sub", []string{"c", "x"}, "h").n("r", "Relu", []string{"h"}, "y")
	want(t, "c-x", m.decode(t).Forward([]float64{0.5, 3, -1}), 0.5, 0, 4)

	// (x·2 + 1) / 4 - (-1), Mul with the constant first; Constant node for the shift.
	m = newTM(1, 2).f32("two", []int{1}, 2).f32("one", []int{1, 1}, 1).f32("four", []int{}, 4)
	m.n("k", "Constant", nil, "m1", attrFloatsBytes("value_floats", -1, -1))
	m.n("mul", "Mul", []string{"two", "x"}, "a").n("add", "Add", []string{"a", "one"}, "b").
		n("div", "Div", []string{"b", "four"}, "c").n("sub", "Sub", []string{"c", "m1"}, "y")
	net := m.decode(t)
	want(t, "affine chain", net.Forward([]float64{1.5, -0.5}), 2, 1)
	// Mul then Add merge into one Affine (x·s then +t), and so do Div then Sub.
	if kinds(net) != "Affine Affine" {
		t.Errorf("layers %q", kinds(net))
	}

	// Constant divided by the input is not linear.
	m = newTM(1, 2).f32("c", []int{2}, 1, 1).n("d", "Div", []string{"c", "x"}, "y")
	expectErr(t, m.bytes(), `"d" (Div)`, "nonlinear", "unsupported")
}

func attrFloatsBytes(name string, vs ...float32) []byte {
	a := attrHeader(name, attrFloats)
	for _, v := range vs {
		a = protowire.AppendTag(a, fAttrFloats, protowire.Fixed32Type)
		a = protowire.AppendFixed32(a, math.Float32bits(v))
	}
	return a
}

func attrStringBytes(name, s string) []byte {
	a := attrHeader(name, attrString)
	a = protowire.AppendTag(a, fAttrS, protowire.BytesType)
	return protowire.AppendString(a, s)
}

func TestConvAutoPad(t *testing.T) {
	x := []float64{1, 2, 3, 4, 5, 6, 7, 8, 9}
	for _, c := range []struct {
		pad  string
		want []float64
	}{
		{"SAME_UPPER", []float64{12, 16, 9, 24, 28, 15, 15, 17, 9}},
		{"SAME_LOWER", []float64{1, 3, 5, 5, 12, 16, 11, 24, 28}},
		{"VALID", []float64{12, 16, 24, 28}},
	} {
		m := newTM(1, 1, 3, 3).f32("W", []int{1, 1, 2, 2}, 1, 1, 1, 1).
			n("c", "Conv", []string{"x", "W"}, "y", attrStringBytes("auto_pad", c.pad), attrIntsBytes("kernel_shape", 2, 2))
		want(t, c.pad, m.decode(t).Forward(x), c.want...)
	}
}

// Weights in the typed fields instead of raw_data, nodes out of order, a dead branch.
func TestTypedFieldsAndOrder(t *testing.T) {
	// float_data, unpacked (one fixed32 per element), as old exporters write it.
	var w []byte
	for _, d := range []int{2, 2} {
		w = protowire.AppendTag(w, fTensorDims, protowire.VarintType)
		w = protowire.AppendVarint(w, uint64(d))
	}
	w = protowire.AppendTag(w, fTensorDataType, protowire.VarintType)
	w = protowire.AppendVarint(w, dtFloat)
	for _, v := range []float32{1, 2, 3, 4} {
		w = protowire.AppendTag(w, fTensorFloatData, protowire.Fixed32Type)
		w = protowire.AppendFixed32(w, math.Float32bits(v))
	}
	w = protowire.AppendTag(w, fTensorName, protowire.BytesType)
	w = protowire.AppendString(w, "W")
	// double_data, packed.
	var b []byte
	b = protowire.AppendTag(b, fTensorDims, protowire.VarintType)
	b = protowire.AppendVarint(b, 2)
	b = protowire.AppendTag(b, fTensorDataType, protowire.VarintType)
	b = protowire.AppendVarint(b, dtDouble)
	var packed []byte
	for _, v := range []float64{0.25, -0.5} {
		packed = protowire.AppendFixed64(packed, math.Float64bits(v))
	}
	b = protowire.AppendTag(b, fTensorDoubleData, protowire.BytesType)
	b = protowire.AppendBytes(b, packed)
	b = protowire.AppendTag(b, fTensorName, protowire.BytesType)
	b = protowire.AppendString(b, "B")
	// Reshape shape in int32_data (packed) and int64_data (unpacked).
	var s32 []byte
	s32 = protowire.AppendTag(s32, fTensorDims, protowire.VarintType)
	s32 = protowire.AppendVarint(s32, 2)
	s32 = protowire.AppendTag(s32, fTensorDataType, protowire.VarintType)
	s32 = protowire.AppendVarint(s32, dtInt32)
	s32 = protowire.AppendTag(s32, fTensorInt32Data, protowire.BytesType)
	s32 = protowire.AppendBytes(s32, protowire.AppendVarint(protowire.AppendVarint(nil, 1), uint64(0xFFFFFFFFFFFFFFFF))) // 1, -1
	s32 = protowire.AppendTag(s32, fTensorName, protowire.BytesType)
	s32 = protowire.AppendString(s32, "s32")
	var s64 []byte
	s64 = protowire.AppendTag(s64, fTensorDims, protowire.VarintType)
	s64 = protowire.AppendVarint(s64, 3)
	s64 = protowire.AppendTag(s64, fTensorDataType, protowire.VarintType)
	s64 = protowire.AppendVarint(s64, dtInt64)
	for _, v := range []int64{0, 2, 1} {
		s64 = protowire.AppendTag(s64, fTensorInt64Data, protowire.VarintType)
		s64 = protowire.AppendVarint(s64, uint64(v))
	}
	s64 = protowire.AppendTag(s64, fTensorName, protowire.BytesType)
	s64 = protowire.AppendString(s64, "s64")

	// y = relu(W·x + B) with x reshaped (1,1,2) → (1,-1) → (0,2,1) → (1,-1); nodes
	// listed backwards and a dead Softmax that nothing uses.
	m := newTM(1, 1, 2).init(w).init(b).init(s32).init(s64)
	m.n("r", "Relu", []string{"h"}, "y").
		n("dead", "Softmax", []string{"h"}, "unused").
		n("add", "Add", []string{"mm", "B"}, "h").
		n("mm", "MatMul", []string{"f2", "Wt"}, "mm").
		n("t", "Identity", []string{"W"}, "Wt").
		n("f2", "Reshape", []string{"c", "s32"}, "f2").
		n("c", "Reshape", []string{"f", "s64"}, "c").
		n("f", "Reshape", []string{"x", "s32"}, "f")
	net := m.decode(t)
	// x·W with W = [[1,2],[3,4]]: x = (1, 1) → (4, 6) + (0.25, -0.5).
	want(t, "typed", net.Forward([]float64{1, 1}), 4.25, 5.5)
	want(t, "typed", net.Forward([]float64{-1, 0}), 0, 0)
	if kinds(net) != "Reshape Dense ReLU" {
		t.Errorf("layers %q (MatMul+Add should be one Dense)", kinds(net))
	}
}

func TestFlattenAndReshapeShapes(t *testing.T) {
	m := newTM(1, 1, 2, 3).n("f", "Flatten", []string{"x"}, "y", attrIntBytes("axis", 2))
	net := m.decode(t)
	if !net.Shapes[1].Equal(nn.Shape{6}) {
		t.Errorf("Flatten(axis 2) of (1,1,2,3) gives %v, want (6)", net.Shapes[1])
	}
	m = newTM(1, 2, 3).n("f", "Flatten", []string{"x"}, "y", attrIntBytes("axis", 2))
	expectErr(t, m.bytes(), `"f" (Flatten)`, "batch axis")
	m = newTM(1, 2, 3).i64("s", 2, -1).n("r", "Reshape", []string{"x", "s"}, "y")
	expectErr(t, m.bytes(), `"r" (Reshape)`, "batch axis")
	m = newTM(1, 2, 3).i64("s", 1, 4).n("r", "Reshape", []string{"x", "s"}, "y")
	expectErr(t, m.bytes(), `"r" (Reshape)`, "cannot reshape")
	// A dropout (inference) and identity are nothing.
	m = newTM(1, 4).n("d", "Dropout", []string{"x"}, "h", attrFloatBytes("ratio", 0.5)).n("r", "Relu", []string{"h"}, "i").
		n("id", "Identity", []string{"i"}, "y")
	if got := kinds(m.decode(t)); got != "ReLU" {
		t.Errorf("layers %q", got)
	}
}

func TestMaskedReLUDecode(t *testing.T) {
	m := newTM(1, 3).f32("m", []int{3}, 0, 1, 1).f32("a", []int{3}, 9, 0.5, 0).f32("b", []int{1, 3}, 9, 0.25, 0)
	m.custom = true
	m.node("g", CustomDomain, "LinearMaskedRelu", []string{"x", "m", "a", "b"}, "y")
	// (1-m)·relu(x) + m·(a·x+b): relu(-2)=0; 0.5·(-2)+0.25; 0.
	want(t, "masked relu", m.decode(t).Forward([]float64{-2, -2, 5}), 0, -0.75, 0)

	m = newTM(1, 3).f32("m", []int{3}, 0, 0.5, 1).f32("a", []int{3}, 0, 0, 0).f32("b", []int{3}, 0, 0, 0)
	m.custom = true
	m.node("g", CustomDomain, "LinearMaskedRelu", []string{"x", "m", "a", "b"}, "y")
	expectErr(t, m.bytes(), `"g" (customOp::LinearMaskedRelu)`, "want 0 or 1")

	m = newTM(1, 3).f32("m", []int{4}, 0, 0, 1, 1).f32("a", []int{3}, 0, 0, 0).f32("b", []int{3}, 0, 0, 0)
	m.custom = true
	m.node("g", CustomDomain, "LinearMaskedRelu", []string{"x", "m", "a", "b"}, "y")
	expectErr(t, m.bytes(), `"g" (customOp::LinearMaskedRelu)`, `mask "m"`)
}

func contains(err error, subs ...string) bool {
	if err == nil {
		return false
	}
	for _, s := range subs {
		if !strings.Contains(err.Error(), s) {
			return false
		}
	}
	return true
}

func expectErr(t *testing.T, b []byte, subs ...string) {
	t.Helper()
	_, err := Decode(b)
	if err == nil {
		t.Fatalf("decoded without error, want an error containing %q", subs)
	}
	if !contains(err, subs...) {
		t.Fatalf("error %q does not contain all of %q", err, subs)
	}
	if strings.Contains(err.Error(), "internal error") {
		t.Fatalf("decoder panicked: %v", err)
	}
}
