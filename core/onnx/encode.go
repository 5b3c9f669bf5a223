package onnx

import (
	"encoding/binary"
	"fmt"
	"math"
	"os"

	"google.golang.org/protobuf/encoding/protowire"

	"github.com/graftcert/graftcert/core/nn"
)

// Versions written by Encode.
const (
	EncodeIRVersion = 8
	EncodeOpset     = 13
)

// EncodeFile writes Encode(net) to path.
func EncodeFile(path string, net *nn.Network) error {
	b, err := Encode(net)
	if err != nil {
		return err
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		return fmt.Errorf("onnx: %w", err)
	}
	return nil
}

// Encode writes net as an ONNX model (IR version 8, opset 13, plus opset 1 of the
// customOp domain when the network has grafted layers). The graph input is "input"
// of shape [1, net.Input...] and the output "output".
//
// Layers map to nodes as follows: Dense → Gemm (transB=1; a Flatten first when its
// input is not flat), Conv2d → Conv, ReLU → Relu, MaskedReLU → customOp::LinearMaskedRelu
// with inputs (x, mask, slope, bias), the last three initializers of x's per-sample
// shape (the layout of the shared *_graft50 models), Affine → Mul (or Div) and Add
// by constants of the per-sample shape, Reshape → Reshape to (1, To...).
//
// Weights are written as float32 raw_data, so they are rounded to float32. For a
// network whose weights are float32 values (any network decoded from a float32 ONNX
// file), Decode(Encode(net)) computes bit-identical outputs: an Affine scale that is
// the reciprocal of a float32 (from a Div) is written as that Div. A weight outside
// the float32 range is an error.
func Encode(net *nn.Network) ([]byte, error) {
	if net == nil || len(net.Layers) == 0 || len(net.Shapes) != len(net.Layers)+1 {
		return nil, fmt.Errorf("onnx: encode: network is empty or was not built with nn.New")
	}
	e := &encoder{cur: "input"}
	custom := false
	for i, l := range net.Layers {
		in, out := net.Shapes[i], net.Shapes[i+1]
		last := i == len(net.Layers)-1
		if err := e.layer(i, l, in, out, last); err != nil {
			return nil, fmt.Errorf("onnx: encode layer %d %q (%s): %w", i, l.Name(), l.Kind(), err)
		}
		if _, ok := l.(*nn.MaskedReLU); ok {
			custom = true
		}
	}
	var g []byte
	g = append(g, e.nodes...)
	g = protowire.AppendTag(g, fGraphName, protowire.BytesType)
	g = protowire.AppendString(g, "graftcert")
	g = append(g, e.inits...)
	g = appendMsg(g, fGraphInput, valueInfoBytes("input", append([]int{1}, net.Input...)))
	g = appendMsg(g, fGraphOutput, valueInfoBytes("output", append([]int{1}, net.Shapes[len(net.Shapes)-1]...)))

	var m []byte
	m = protowire.AppendTag(m, fModelIRVersion, protowire.VarintType)
	m = protowire.AppendVarint(m, EncodeIRVersion)
	m = protowire.AppendTag(m, fModelProducer, protowire.BytesType)
	m = protowire.AppendString(m, "graftcert")
	m = appendMsg(m, fModelOpsetImport, opsetBytes("", EncodeOpset))
	if custom {
		m = appendMsg(m, fModelOpsetImport, opsetBytes(CustomDomain, 1))
	}
	m = appendMsg(m, fModelGraph, g)
	return m, nil
}

type encoder struct {
	nodes []byte // serialized NodeProto fields of the graph
	inits []byte // serialized initializer fields of the graph
	cur   string // name of the live tensor
	tmp   int
}

// next returns the output name of the node being written.
func (e *encoder) next(last bool) string {
	if last {
		return "output"
	}
	e.tmp++
	return fmt.Sprintf("t%d", e.tmp)
}

func (e *encoder) layer(i int, l nn.Layer, in, out nn.Shape, last bool) error {
	name := l.Name()
	if name == "" {
		name = fmt.Sprintf("/%d/%s", i, l.Kind())
	}
	prefix := fmt.Sprintf("%d.", i)
	switch t := l.(type) {
	case *nn.Dense:
		if len(in) != 1 {
			flat := e.next(false)
			e.node(name+"/flatten", "", "Flatten", []string{e.cur}, flat, attrIntBytes("axis", 1))
			e.cur = flat
		}
		w, err := e.floatInit(prefix+"weight", []int{t.Out, t.In}, t.W)
		if err != nil {
			return err
		}
		ins := []string{e.cur, w}
		if t.B != nil {
			b, err := e.floatInit(prefix+"bias", []int{t.Out}, t.B)
			if err != nil {
				return err
			}
			ins = append(ins, b)
		}
		o := e.next(last)
		e.node(name, "", "Gemm", ins, o, attrFloatBytes("alpha", 1), attrFloatBytes("beta", 1), attrIntBytes("transB", 1))
		e.cur = o
	case *nn.Conv2d:
		w, err := e.floatInit(prefix+"weight", []int{t.OutC, t.InC, t.KH, t.KW}, t.W)
		if err != nil {
			return err
		}
		ins := []string{e.cur, w}
		if t.B != nil {
			b, err := e.floatInit(prefix+"bias", []int{t.OutC}, t.B)
			if err != nil {
				return err
			}
			ins = append(ins, b)
		}
		o := e.next(last)
		e.node(name, "", "Conv", ins, o,
			attrIntsBytes("dilations", t.DH, t.DW), attrIntBytes("group", 1),
			attrIntsBytes("kernel_shape", t.KH, t.KW), attrIntsBytes("pads", t.PT, t.PL, t.PB, t.PR),
			attrIntsBytes("strides", t.SH, t.SW))
		e.cur = o
	case *nn.ReLU:
		o := e.next(last)
		e.node(name, "", "Relu", []string{e.cur}, o)
		e.cur = o
	case *nn.MaskedReLU:
		ins := []string{e.cur}
		for _, p := range []struct {
			what string
			v    []float64
		}{{"mask", t.Mask}, {"slope", t.Slope}, {"bias", t.Bias}} {
			n, err := e.floatInit(prefix+p.what, in, p.v)
			if err != nil {
				return err
			}
			ins = append(ins, n)
		}
		o := e.next(last)
		e.node(name, CustomDomain, "LinearMaskedRelu", ins, o)
		e.cur = o
	case *nn.Affine:
		if t.Scale == nil && t.Shift == nil {
			o := e.next(last)
			e.node(name, "", "Identity", []string{e.cur}, o)
			e.cur = o
			return nil
		}
		nodeName := name
		if t.Scale != nil {
			op, vals := "Mul", t.Scale
			if !allFloat32(t.Scale) && reciprocalsFloat32(t.Scale) {
				op, vals = "Div", make([]float64, len(t.Scale))
				for i, s := range t.Scale {
					vals[i] = float64(float32(1 / s))
				}
			}
			c, err := e.floatInit(prefix+"scale", in, vals)
			if err != nil {
				return err
			}
			o := e.next(last && t.Shift == nil)
			e.node(nodeName, "", op, []string{e.cur, c}, o)
			e.cur = o
			nodeName = name + "/shift"
		}
		if t.Shift != nil {
			c, err := e.floatInit(prefix+"shift", in, t.Shift)
			if err != nil {
				return err
			}
			o := e.next(last)
			e.node(nodeName, "", "Add", []string{e.cur, c}, o)
			e.cur = o
		}
	case *nn.Reshape:
		shape := make([]int64, 0, len(t.To)+1)
		shape = append(shape, 1)
		for _, d := range t.To {
			shape = append(shape, int64(d))
		}
		s := prefix + "shape"
		e.inits = appendMsg(e.inits, fGraphInitializer, tensorBytes(s, []int{len(shape)}, dtInt64, int64sRaw(shape)))
		o := e.next(last)
		e.node(name, "", "Reshape", []string{e.cur, s}, o)
		e.cur = o
	default:
		return fmt.Errorf("layer type %T has no ONNX encoding", l)
	}
	return nil
}

func allFloat32(v []float64) bool {
	for _, x := range v {
		if float64(float32(x)) != x {
			return false
		}
	}
	return true
}

// reciprocalsFloat32 reports whether every x is exactly 1/f for a float32 f, as the
// decoder computes it for Div by f: then Div by f reproduces x bit for bit.
func reciprocalsFloat32(v []float64) bool {
	for _, x := range v {
		f := float32(1 / x)
		if f == 0 || math.IsInf(float64(f), 0) || 1/float64(f) != x {
			return false
		}
	}
	return true
}

func (e *encoder) node(name, domain, op string, inputs []string, output string, attrs ...[]byte) {
	var n []byte
	for _, in := range inputs {
		n = protowire.AppendTag(n, fNodeInput, protowire.BytesType)
		n = protowire.AppendString(n, in)
	}
	n = protowire.AppendTag(n, fNodeOutput, protowire.BytesType)
	n = protowire.AppendString(n, output)
	n = protowire.AppendTag(n, fNodeName, protowire.BytesType)
	n = protowire.AppendString(n, name)
	n = protowire.AppendTag(n, fNodeOpType, protowire.BytesType)
	n = protowire.AppendString(n, op)
	for _, a := range attrs {
		n = appendMsg(n, fNodeAttribute, a)
	}
	if domain != "" {
		n = protowire.AppendTag(n, fNodeDomain, protowire.BytesType)
		n = protowire.AppendString(n, domain)
	}
	e.nodes = appendMsg(e.nodes, fGraphNode, n)
}

// floatInit adds a float32 initializer and returns its name.
func (e *encoder) floatInit(name string, shape []int, v []float64) (string, error) {
	if prod(shape) != len(v) {
		return "", fmt.Errorf("%s has %d values, shape %v needs %d", name, len(v), shape, prod(shape))
	}
	raw := make([]byte, 4*len(v))
	for i, x := range v {
		f := float32(x)
		if math.IsInf(float64(f), 0) || math.IsNaN(x) {
			return "", fmt.Errorf("%s[%d] = %v is not a finite float32", name, i, x)
		}
		binary.LittleEndian.PutUint32(raw[4*i:], math.Float32bits(f))
	}
	e.inits = appendMsg(e.inits, fGraphInitializer, tensorBytes(name, shape, dtFloat, raw))
	return name, nil
}

func int64sRaw(v []int64) []byte {
	raw := make([]byte, 8*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint64(raw[8*i:], uint64(x))
	}
	return raw
}

func tensorBytes(name string, shape []int, dtype int64, raw []byte) []byte {
	var t []byte
	for _, d := range shape {
		t = protowire.AppendTag(t, fTensorDims, protowire.VarintType)
		t = protowire.AppendVarint(t, uint64(d))
	}
	t = protowire.AppendTag(t, fTensorDataType, protowire.VarintType)
	t = protowire.AppendVarint(t, uint64(dtype))
	t = protowire.AppendTag(t, fTensorName, protowire.BytesType)
	t = protowire.AppendString(t, name)
	t = protowire.AppendTag(t, fTensorRawData, protowire.BytesType)
	t = protowire.AppendBytes(t, raw)
	return t
}

func valueInfoBytes(name string, shape []int) []byte {
	var dims []byte
	for _, d := range shape {
		var dim []byte
		dim = protowire.AppendTag(dim, fDimValue, protowire.VarintType)
		dim = protowire.AppendVarint(dim, uint64(d))
		dims = appendMsg(dims, fShapeDim, dim)
	}
	var tt []byte
	tt = protowire.AppendTag(tt, fTensorElemType, protowire.VarintType)
	tt = protowire.AppendVarint(tt, dtFloat)
	tt = appendMsg(tt, fTensorShape, dims)
	var typ []byte
	typ = appendMsg(typ, fTypeTensor, tt)
	var v []byte
	v = protowire.AppendTag(v, fValueName, protowire.BytesType)
	v = protowire.AppendString(v, name)
	v = appendMsg(v, fValueType, typ)
	return v
}

func opsetBytes(domain string, version int64) []byte {
	var o []byte
	o = protowire.AppendTag(o, fOpsetDomain, protowire.BytesType)
	o = protowire.AppendString(o, domain)
	o = protowire.AppendTag(o, fOpsetVersion, protowire.VarintType)
	o = protowire.AppendVarint(o, uint64(version))
	return o
}

func attrHeader(name string, typ int64) []byte {
	var a []byte
	a = protowire.AppendTag(a, fAttrName, protowire.BytesType)
	a = protowire.AppendString(a, name)
	a = protowire.AppendTag(a, fAttrType, protowire.VarintType)
	a = protowire.AppendVarint(a, uint64(typ))
	return a
}

func attrIntBytes(name string, v int) []byte {
	a := attrHeader(name, attrInt)
	a = protowire.AppendTag(a, fAttrI, protowire.VarintType)
	return protowire.AppendVarint(a, uint64(int64(v)))
}

func attrFloatBytes(name string, v float32) []byte {
	a := attrHeader(name, attrFloat)
	a = protowire.AppendTag(a, fAttrF, protowire.Fixed32Type)
	return protowire.AppendFixed32(a, math.Float32bits(v))
}

func attrIntsBytes(name string, vs ...int) []byte {
	a := attrHeader(name, attrInts)
	for _, v := range vs {
		a = protowire.AppendTag(a, fAttrInts, protowire.VarintType)
		a = protowire.AppendVarint(a, uint64(int64(v)))
	}
	return a
}

func appendMsg(b []byte, num protowire.Number, msg []byte) []byte {
	b = protowire.AppendTag(b, num, protowire.BytesType)
	return protowire.AppendBytes(b, msg)
}
