package onnx

import (
	"errors"
	"fmt"
	"math"

	"google.golang.org/protobuf/encoding/protowire"
)

// The wire-level half of the decoder: the handful of onnx.proto messages graftcert
// needs, parsed field by field with protowire. Unknown fields are skipped, as protobuf
// requires, so files from newer exporters still load. Byte slices (raw_data, names)
// alias the input buffer: nothing is copied until a tensor is converted to float64.

// Field numbers from onnx.proto (onnx/onnx, IR version 3 to 10).
const (
	// ModelProto
	fModelIRVersion   = 1
	fModelProducer    = 2
	fModelProducerVer = 3
	fModelGraph       = 7
	fModelOpsetImport = 8

	// OperatorSetIdProto
	fOpsetDomain  = 1
	fOpsetVersion = 2

	// GraphProto
	fGraphNode        = 1
	fGraphName        = 2
	fGraphInitializer = 5
	fGraphSparseInit  = 15
	fGraphInput       = 11
	fGraphOutput      = 12

	// NodeProto
	fNodeInput     = 1
	fNodeOutput    = 2
	fNodeName      = 3
	fNodeOpType    = 4
	fNodeAttribute = 5
	fNodeDomain    = 7

	// AttributeProto
	fAttrName    = 1
	fAttrF       = 2
	fAttrI       = 3
	fAttrS       = 4
	fAttrT       = 5
	fAttrG       = 6
	fAttrFloats  = 7
	fAttrInts    = 8
	fAttrStrings = 9
	fAttrTensors = 10
	fAttrGraphs  = 11
	fAttrType    = 20

	// TensorProto
	fTensorDims         = 1
	fTensorDataType     = 2
	fTensorSegment      = 3
	fTensorFloatData    = 4
	fTensorInt32Data    = 5
	fTensorInt64Data    = 7
	fTensorName         = 8
	fTensorRawData      = 9
	fTensorDoubleData   = 10
	fTensorExternalData = 13
	fTensorDataLocation = 14

	// ValueInfoProto
	fValueName = 1
	fValueType = 2

	// TypeProto and TypeProto.Tensor
	fTypeTensor     = 1
	fTensorElemType = 1
	fTensorShape    = 2

	// TensorShapeProto and its Dimension
	fShapeDim      = 1
	fDimValue      = 1
	fDimParam      = 2
	fDimDenotation = 3
)

// AttributeProto.AttributeType values.
const (
	attrFloat   = 1
	attrInt     = 2
	attrString  = 3
	attrTensor  = 4
	attrGraph   = 5
	attrFloats  = 6
	attrInts    = 7
	attrStrings = 8
	attrTensors = 9
	attrGraphs  = 10
)

type modelProto struct {
	irVersion       int64
	producer        string
	producerVersion string
	opsets          []opsetID
	graph           *graphProto
}

type opsetID struct {
	domain  string
	version int64
}

type graphProto struct {
	name         string
	nodes        []*nodeProto
	initializers []*tensorProto
	inputs       []*valueInfo
	outputs      []*valueInfo
	sparseInits  int
}

type nodeProto struct {
	inputs, outputs []string
	name, opType    string
	domain          string
	attrs           []*attribute
	offset          int
}

type attribute struct {
	name     string
	typ      int64
	f        float32
	i        int64
	s        []byte
	t        *tensorProto
	floats   []float32
	ints     []int64
	hasGraph bool // a subgraph (If, Loop, Scan): never supported
	set      map[protowire.Number]bool
}

type tensorProto struct {
	name         string
	dims         []int64
	dtype        int64
	raw          []byte
	rawOffset    int // absolute offset of raw in the file
	hasRaw       bool
	floats       []float32
	doubles      []float64
	int64s       []int64
	int32s       []int64 // int32_data, widened: varints are int64 on the wire anyway
	external     bool
	segment      bool
	dataLocation int64
	offset       int
}

type valueInfo struct {
	name     string
	hasType  bool
	hasShape bool
	elemType int64
	dims     []dimension
}

type dimension struct {
	value    int64
	hasValue bool
	param    string
}

// field is one decoded key/value pair of a message.
type field struct {
	num   protowire.Number
	typ   protowire.Type
	u     uint64 // varint, fixed32 and fixed64 values
	b     []byte // length-delimited values
	start int    // absolute offset of the value in the file
}

// errTruncated is wrapped by every error about malformed protobuf framing.
var errTruncated = errors.New("malformed or truncated protobuf")

// walk calls fn for every field of the message b, which starts at absolute offset base.
func walk(b []byte, base int, what string, fn func(f field) error) error {
	pos := 0
	for pos < len(b) {
		num, typ, n := protowire.ConsumeTag(b[pos:])
		if n < 0 {
			return fmt.Errorf("%s: bad field tag at offset %d: %v (%w)", what, base+pos, protowire.ParseError(n), errTruncated)
		}
		pos += n
		f := field{num: num, typ: typ, start: base + pos}
		switch typ {
		case protowire.VarintType:
			f.u, n = protowire.ConsumeVarint(b[pos:])
		case protowire.Fixed32Type:
			var v uint32
			v, n = protowire.ConsumeFixed32(b[pos:])
			f.u = uint64(v)
		case protowire.Fixed64Type:
			f.u, n = protowire.ConsumeFixed64(b[pos:])
		case protowire.BytesType:
			f.b, n = protowire.ConsumeBytes(b[pos:])
		case protowire.StartGroupType:
			_, n = protowire.ConsumeGroup(num, b[pos:])
		default:
			n = -1
			if typ == protowire.EndGroupType {
				n = protowire.ConsumeFieldValue(num, typ, b[pos:])
			}
		}
		if n < 0 {
			return fmt.Errorf("%s: field %d at offset %d: %v (%w)", what, num, base+pos, protowire.ParseError(n), errTruncated)
		}
		pos += n
		if typ == protowire.StartGroupType {
			continue // deprecated groups carry nothing graftcert reads
		}
		if err := fn(f); err != nil {
			return err
		}
	}
	return nil
}

func wantType(f field, what, name string, typ protowire.Type) error {
	if f.typ != typ {
		return fmt.Errorf("%s: field %s (%d) at offset %d has wire type %d, want %d (%w)", what, name, f.num, f.start, f.typ, typ, errTruncated)
	}
	return nil
}

// appendInts reads a repeated integer field, packed or not.
func appendInts(dst []int64, f field, what, name string) ([]int64, error) {
	switch f.typ {
	case protowire.VarintType:
		return append(dst, int64(f.u)), nil
	case protowire.BytesType:
		b := f.b
		for len(b) > 0 {
			v, n := protowire.ConsumeVarint(b)
			if n < 0 {
				return nil, fmt.Errorf("%s: packed %s at offset %d: %v (%w)", what, name, f.start, protowire.ParseError(n), errTruncated)
			}
			dst = append(dst, int64(v))
			b = b[n:]
		}
		return dst, nil
	}
	return nil, wantType(f, what, name, protowire.VarintType)
}

func appendFloats(dst []float32, f field, what, name string) ([]float32, error) {
	switch f.typ {
	case protowire.Fixed32Type:
		return append(dst, math.Float32frombits(uint32(f.u))), nil
	case protowire.BytesType:
		if len(f.b)%4 != 0 {
			return nil, fmt.Errorf("%s: packed %s at offset %d has %d bytes, not a multiple of 4 (%w)", what, name, f.start, len(f.b), errTruncated)
		}
		for i := 0; i+4 <= len(f.b); i += 4 {
			u := uint32(f.b[i]) | uint32(f.b[i+1])<<8 | uint32(f.b[i+2])<<16 | uint32(f.b[i+3])<<24
			dst = append(dst, math.Float32frombits(u))
		}
		return dst, nil
	}
	return nil, wantType(f, what, name, protowire.Fixed32Type)
}

func appendFixed64(dst []uint64, f field, what, name string) ([]uint64, error) {
	switch f.typ {
	case protowire.Fixed64Type:
		return append(dst, f.u), nil
	case protowire.BytesType:
		if len(f.b)%8 != 0 {
			return nil, fmt.Errorf("%s: packed %s at offset %d has %d bytes, not a multiple of 8 (%w)", what, name, f.start, len(f.b), errTruncated)
		}
		for i := 0; i+8 <= len(f.b); i += 8 {
			var u uint64
			for k := 7; k >= 0; k-- {
				u = u<<8 | uint64(f.b[i+k])
			}
			dst = append(dst, u)
		}
		return dst, nil
	}
	return nil, wantType(f, what, name, protowire.Fixed64Type)
}

func parseModel(b []byte) (*modelProto, error) {
	m := &modelProto{}
	err := walk(b, 0, "model", func(f field) error {
		switch f.num {
		case fModelIRVersion:
			if err := wantType(f, "model", "ir_version", protowire.VarintType); err != nil {
				return err
			}
			m.irVersion = int64(f.u)
		case fModelProducer:
			if err := wantType(f, "model", "producer_name", protowire.BytesType); err != nil {
				return err
			}
			m.producer = string(f.b)
		case fModelProducerVer:
			if err := wantType(f, "model", "producer_version", protowire.BytesType); err != nil {
				return err
			}
			m.producerVersion = string(f.b)
		case fModelOpsetImport:
			if err := wantType(f, "model", "opset_import", protowire.BytesType); err != nil {
				return err
			}
			var o opsetID
			err := walk(f.b, f.start, "model.opset_import", func(g field) error {
				switch g.num {
				case fOpsetDomain:
					if err := wantType(g, "opset_import", "domain", protowire.BytesType); err != nil {
						return err
					}
					o.domain = string(g.b)
				case fOpsetVersion:
					if err := wantType(g, "opset_import", "version", protowire.VarintType); err != nil {
						return err
					}
					o.version = int64(g.u)
				}
				return nil
			})
			if err != nil {
				return err
			}
			m.opsets = append(m.opsets, o)
		case fModelGraph:
			if err := wantType(f, "model", "graph", protowire.BytesType); err != nil {
				return err
			}
			if m.graph != nil {
				return fmt.Errorf("model: second graph field at offset %d", f.start)
			}
			g, err := parseGraph(f.b, f.start)
			if err != nil {
				return err
			}
			m.graph = g
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return m, nil
}

// parseGraph reads a GraphProto. Subgraphs (If, Loop, Scan bodies) are never parsed,
// only flagged, so nesting cannot recurse.
func parseGraph(b []byte, base int) (*graphProto, error) {
	g := &graphProto{}
	err := walk(b, base, "graph", func(f field) error {
		switch f.num {
		case fGraphNode, fGraphName, fGraphInitializer, fGraphInput, fGraphOutput, fGraphSparseInit:
			if err := wantType(f, "graph", fmt.Sprint("#", int(f.num)), protowire.BytesType); err != nil {
				return err
			}
		default:
			return nil
		}
		switch f.num {
		case fGraphNode:
			n, err := parseNode(f.b, f.start)
			if err != nil {
				return fmt.Errorf("graph.node[%d]: %w", len(g.nodes), err)
			}
			g.nodes = append(g.nodes, n)
		case fGraphName:
			g.name = string(f.b)
		case fGraphInitializer:
			t, err := parseTensor(f.b, f.start)
			if err != nil {
				return fmt.Errorf("graph.initializer[%d]: %w", len(g.initializers), err)
			}
			g.initializers = append(g.initializers, t)
		case fGraphSparseInit:
			g.sparseInits++
		case fGraphInput, fGraphOutput:
			v, err := parseValueInfo(f.b, f.start)
			if err != nil {
				return fmt.Errorf("graph input/output: %w", err)
			}
			if f.num == fGraphInput {
				g.inputs = append(g.inputs, v)
			} else {
				g.outputs = append(g.outputs, v)
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return g, nil
}

func parseNode(b []byte, base int) (*nodeProto, error) {
	n := &nodeProto{offset: base}
	err := walk(b, base, "node", func(f field) error {
		switch f.num {
		case fNodeInput, fNodeOutput, fNodeName, fNodeOpType, fNodeDomain, fNodeAttribute:
			if err := wantType(f, "node", fmt.Sprint("#", int(f.num)), protowire.BytesType); err != nil {
				return err
			}
		default:
			return nil
		}
		switch f.num {
		case fNodeInput:
			n.inputs = append(n.inputs, string(f.b))
		case fNodeOutput:
			n.outputs = append(n.outputs, string(f.b))
		case fNodeName:
			n.name = string(f.b)
		case fNodeOpType:
			n.opType = string(f.b)
		case fNodeDomain:
			n.domain = string(f.b)
		case fNodeAttribute:
			a, err := parseAttribute(f.b, f.start)
			if err != nil {
				return err
			}
			n.attrs = append(n.attrs, a)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return n, nil
}

func parseAttribute(b []byte, base int) (*attribute, error) {
	a := &attribute{set: map[protowire.Number]bool{}}
	const what = "attribute"
	err := walk(b, base, what, func(f field) error {
		var err error
		switch f.num {
		case fAttrName:
			err = wantType(f, what, "name", protowire.BytesType)
			a.name = string(f.b)
		case fAttrType:
			err = wantType(f, what, "type", protowire.VarintType)
			a.typ = int64(f.u)
		case fAttrF:
			err = wantType(f, what, "f", protowire.Fixed32Type)
			a.f = math.Float32frombits(uint32(f.u))
		case fAttrI:
			err = wantType(f, what, "i", protowire.VarintType)
			a.i = int64(f.u)
		case fAttrS:
			err = wantType(f, what, "s", protowire.BytesType)
			a.s = f.b
		case fAttrT:
			if err = wantType(f, what, "t", protowire.BytesType); err == nil {
				a.t, err = parseTensor(f.b, f.start)
			}
		case fAttrG, fAttrGraphs:
			err = wantType(f, what, "g", protowire.BytesType)
			a.hasGraph = true
		case fAttrFloats:
			a.floats, err = appendFloats(a.floats, f, what, "floats")
		case fAttrInts:
			a.ints, err = appendInts(a.ints, f, what, "ints")
		case fAttrStrings, fAttrTensors:
			// Lists of strings or tensors: no operator graftcert reads has them; the
			// attribute is recorded so that it is reported as unsupported.
		default:
			return nil
		}
		a.set[f.num] = true
		return err
	})
	if err != nil {
		if a.name != "" {
			return nil, fmt.Errorf("attribute %q: %w", a.name, err)
		}
		return nil, err
	}
	return a, nil
}

func parseTensor(b []byte, base int) (*tensorProto, error) {
	t := &tensorProto{offset: base}
	const what = "tensor"
	err := walk(b, base, what, func(f field) error {
		var err error
		switch f.num {
		case fTensorDims:
			t.dims, err = appendInts(t.dims, f, what, "dims")
		case fTensorDataType:
			err = wantType(f, what, "data_type", protowire.VarintType)
			t.dtype = int64(int32(f.u))
		case fTensorSegment:
			t.segment = true
		case fTensorFloatData:
			t.floats, err = appendFloats(t.floats, f, what, "float_data")
		case fTensorInt32Data:
			t.int32s, err = appendInts(t.int32s, f, what, "int32_data")
		case fTensorInt64Data:
			t.int64s, err = appendInts(t.int64s, f, what, "int64_data")
		case fTensorName:
			err = wantType(f, what, "name", protowire.BytesType)
			t.name = string(f.b)
		case fTensorRawData:
			err = wantType(f, what, "raw_data", protowire.BytesType)
			t.raw, t.hasRaw, t.rawOffset = f.b, true, f.start
		case fTensorDoubleData:
			var u []uint64
			u, err = appendFixed64(nil, f, what, "double_data")
			for _, v := range u {
				t.doubles = append(t.doubles, math.Float64frombits(v))
			}
		case fTensorExternalData:
			t.external = true
		case fTensorDataLocation:
			err = wantType(f, what, "data_location", protowire.VarintType)
			t.dataLocation = int64(f.u)
		}
		return err
	})
	if err != nil {
		if t.name != "" {
			return nil, fmt.Errorf("tensor %q: %w", t.name, err)
		}
		return nil, err
	}
	return t, nil
}

func parseValueInfo(b []byte, base int) (*valueInfo, error) {
	v := &valueInfo{}
	const what = "value_info"
	err := walk(b, base, what, func(f field) error {
		switch f.num {
		case fValueName:
			if err := wantType(f, what, "name", protowire.BytesType); err != nil {
				return err
			}
			v.name = string(f.b)
		case fValueType:
			if err := wantType(f, what, "type", protowire.BytesType); err != nil {
				return err
			}
			return walk(f.b, f.start, "type", func(g field) error {
				if g.num != fTypeTensor {
					return nil // sequence, map, optional: rejected later as "not a tensor"
				}
				if err := wantType(g, "type", "tensor_type", protowire.BytesType); err != nil {
					return err
				}
				v.hasType = true
				return walk(g.b, g.start, "tensor_type", func(h field) error {
					switch h.num {
					case fTensorElemType:
						if err := wantType(h, "tensor_type", "elem_type", protowire.VarintType); err != nil {
							return err
						}
						v.elemType = int64(int32(h.u))
					case fTensorShape:
						if err := wantType(h, "tensor_type", "shape", protowire.BytesType); err != nil {
							return err
						}
						v.hasShape = true
						return walk(h.b, h.start, "shape", func(d field) error {
							if d.num != fShapeDim {
								return nil
							}
							if err := wantType(d, "shape", "dim", protowire.BytesType); err != nil {
								return err
							}
							var dim dimension
							err := walk(d.b, d.start, "dim", func(e field) error {
								switch e.num {
								case fDimValue:
									if err := wantType(e, "dim", "dim_value", protowire.VarintType); err != nil {
										return err
									}
									dim.value, dim.hasValue = int64(e.u), true
								case fDimParam:
									if err := wantType(e, "dim", "dim_param", protowire.BytesType); err != nil {
										return err
									}
									dim.param = string(e.b)
								}
								return nil
							})
							v.dims = append(v.dims, dim)
							return err
						})
					}
					return nil
				})
			})
		}
		return nil
	})
	if err != nil {
		if v.name != "" {
			return nil, fmt.Errorf("value %q: %w", v.name, err)
		}
		return nil, err
	}
	return v, nil
}
