package onnx

import (
	"fmt"
	"sort"
	"strings"

	"github.com/graftcert/graftcert/core/nn"
)

// Info summarises an ONNX model without building the network: what a UI shows before
// (or instead of) decoding, and what EstimateBytes is computed from.
type Info struct {
	IRVersion    int64
	Producer     string           // producer_name and producer_version
	Opsets       map[string]int64 // domain ("" is the default ONNX domain) → version
	Input        string           // the graph input that is not an initializer
	InputShape   []int64          // its dims; -1 for a symbolic or unknown dim
	Output       string
	Nodes        int
	Ops          map[string]int // op type ("domain::op" outside the default domain) → count
	Initializers int
	// ParamElements counts the elements of every initializer and Constant tensor
	// (as declared by their dims).
	ParamElements int64
}

// String is a one-line summary, e.g. "pytorch 1.13.0, IR 7, opset 13: input (1,1,28,28), 16 nodes
// (Gemm 6, Relu 5, ...), 119910 weights".
func (in *Info) String() string {
	var ops []string
	for op := range in.Ops {
		ops = append(ops, op)
	}
	sort.Slice(ops, func(i, j int) bool {
		if in.Ops[ops[i]] != in.Ops[ops[j]] {
			return in.Ops[ops[i]] > in.Ops[ops[j]]
		}
		return ops[i] < ops[j]
	})
	for i, op := range ops {
		ops[i] = fmt.Sprintf("%s %d", op, in.Ops[op])
	}
	dims := make([]string, len(in.InputShape))
	for i, d := range in.InputShape {
		dims[i] = fmt.Sprint(d)
		if d < 0 {
			dims[i] = "?"
		}
	}
	return fmt.Sprintf("%s, IR %d, opset %d: input %q (%s), %d nodes (%s), %d weights",
		strings.TrimSpace(in.Producer), in.IRVersion, in.Opsets[""], in.Input, strings.Join(dims, ","),
		in.Nodes, strings.Join(ops, ", "), in.ParamElements)
}

// Inspect parses the model's framing and summarises it. It does not convert weights
// or check that the graph is supported: Decode does that.
func Inspect(b []byte) (*Info, error) {
	if len(b) == 0 {
		return nil, fmt.Errorf("onnx: empty input: %w", ErrInvalid)
	}
	m, err := parseModel(b)
	if err != nil {
		return nil, fmt.Errorf("onnx: %w", err)
	}
	if m.graph == nil {
		return nil, fmt.Errorf("onnx: model has no graph: %w", ErrInvalid)
	}
	in := &Info{
		IRVersion: m.irVersion,
		Producer:  strings.TrimSpace(m.producer + " " + m.producerVersion),
		Opsets:    map[string]int64{},
		Ops:       map[string]int{},
	}
	for _, o := range m.opsets {
		d := o.domain
		if d == "ai.onnx" {
			d = ""
		}
		in.Opsets[d] = o.version
	}
	g := m.graph
	isInit := map[string]bool{}
	add := func(t *tensorProto) {
		if n, err := shapeSize(t.dims, 1<<62); err == nil {
			in.ParamElements += int64(n)
		}
	}
	for _, t := range g.initializers {
		isInit[t.name] = true
		add(t)
	}
	in.Initializers = len(g.initializers)
	for _, v := range g.inputs {
		if isInit[v.name] {
			continue
		}
		in.Input = v.name
		in.InputShape = make([]int64, len(v.dims))
		for i, d := range v.dims {
			in.InputShape[i] = -1
			if d.hasValue && d.value > 0 {
				in.InputShape[i] = d.value
			}
		}
	}
	if len(g.outputs) > 0 {
		in.Output = g.outputs[0].name
	}
	in.Nodes = len(g.nodes)
	for _, n := range g.nodes {
		op := n.opType
		if n.domain != "" && n.domain != "ai.onnx" {
			op = n.domain + "::" + op
		}
		in.Ops[op]++
		for _, a := range n.attrs {
			if a.t != nil && n.opType == "Constant" {
				add(a.t)
			}
		}
	}
	return in, nil
}

// EstimateBytes estimates, from the file alone, the memory needed to hold the model
// and its decoded network: the file bytes plus 8 bytes (float64) per weight element.
// It is a lower bound for decoding: bound propagation (CROWN, α-CROWN, BaB) needs
// several times more, growing with neurons × specification rows. A caller such as
// the browser shell compares it with its budget before decoding.
func EstimateBytes(b []byte) (int64, error) {
	info, err := Inspect(b)
	if err != nil {
		return 0, err
	}
	return int64(len(b)) + 8*info.ParamElements, nil
}

// NetworkBytes is the memory of a decoded network and one forward pass over one
// sample: 8 bytes per parameter value of every layer (Affine and MaskedReLU arrays
// included) plus 8 bytes per activation value of every layer's input and output (the
// trace that nn.Network.Trace keeps).
func NetworkBytes(net *nn.Network) int64 {
	var n int64
	for _, l := range net.Layers {
		for _, p := range l.Params() {
			n += int64(len(p))
		}
		if m, ok := l.(*nn.MaskedReLU); ok {
			n += int64(len(m.Mask)) // Params omits the mask
		}
	}
	for _, s := range net.Shapes {
		n += int64(s.Size())
	}
	return 8 * n
}
