package onnx

import (
	"fmt"
	"math"
	"os"
	"sort"

	"github.com/graftcert/graftcert/core/nn"
)

// Opset range of the default ONNX domain that Decode accepts. The operators graftcert
// reads have kept their inference semantics over this range; opsets below 8 used
// attribute forms (Reshape's shape attribute, BatchNormalization's is_test) that are
// not implemented.
const (
	MinOpset = 8
	MaxOpset = 21
)

// CustomDomain is the operator domain of the paper's grafted activation
// (customOp::LinearMaskedRelu).
const CustomDomain = "customOp"

// MaxActivationElements bounds the per-sample size of every intermediate tensor.
// Decoding expands some constants to full activation size (nn.Affine, nn.MaskedReLU),
// so a corrupt or hostile shape must not turn a few bytes into gigabytes.
const MaxActivationElements = 1 << 24

// DecodeFile reads and decodes an ONNX file.
func DecodeFile(path string) (*nn.Network, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("onnx: %w", err)
	}
	net, err := Decode(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return net, nil
}

// Decode reads an ONNX ModelProto and returns it as a sequential nn.Network.
//
// The graph must be a chain: starting from the one graph input that is not an
// initializer, every node consumes the single live tensor plus constants
// (initializers, Constant nodes), and the graph output is the end of the chain.
// Nodes the output does not depend on are ignored; nodes are put in topological
// order first, so their order in the file does not matter.
//
// Batch axis: for an input of rank 2 or more the first dimension is the batch axis
// and must be symbolic or 1; the network's per-sample input shape is the rest. A rank-1
// input (VNN-COMP's test_nano, test_tiny: shape [n]) has no batch axis: its per-sample
// shape is [n]. Later reshapes keep the leading axis as the batch axis: Reshape to
// (1, -1) is a flatten.
//
// Folding: a bias-free MatMul followed by an Add of a constant becomes one nn.Dense; a
// BatchNormalization is folded into a directly preceding Conv or Gemm/MatMul (else it
// becomes an nn.Affine); a scale-only Affine followed by a shift-only one becomes one
// Affine (the same arithmetic); an Add or Sub of zeros disappears. Sub and Div by a
// constant become nn.Affine with Shift = -c and Scale = 1/c.
//
// Every error names the node (name and op_type) or tensor at fault and wraps
// ErrUnsupported, ErrInvalid or, for broken protobuf framing, a "malformed or
// truncated protobuf" error. Decode never panics on any input.
func Decode(b []byte) (net *nn.Network, err error) {
	defer func() {
		// The decoder is written not to panic; this is a last line of defence so a
		// bug shows up as an error in the browser rather than a dead worker.
		if r := recover(); r != nil {
			net, err = nil, fmt.Errorf("onnx: internal error decoding model: %v", r)
		}
	}()
	if len(b) == 0 {
		return nil, fmt.Errorf("onnx: empty input: %w", ErrInvalid)
	}
	m, err := parseModel(b)
	if err != nil {
		return nil, fmt.Errorf("onnx: %w", err)
	}
	net, err = convert(m)
	if err != nil {
		return nil, fmt.Errorf("onnx: %w", err)
	}
	return net, nil
}

func defaultOpset(m *modelProto) (int64, error) {
	var v int64 = -1
	for _, o := range m.opsets {
		if o.domain == "" || o.domain == "ai.onnx" {
			v = o.version
		}
	}
	if v < 0 {
		if m.graph == nil && len(m.opsets) == 0 {
			return 0, fmt.Errorf("no graph and no opset_import: not an ONNX model: %w", ErrInvalid)
		}
		return 0, fmt.Errorf("model has no opset_import for the default domain: %w", ErrInvalid)
	}
	if v < MinOpset || v > MaxOpset {
		return 0, fmt.Errorf("opset %d is %w (graftcert reads opsets %d to %d)", v, ErrUnsupported, MinOpset, MaxOpset)
	}
	return v, nil
}

// decoder holds the state of one conversion.
type decoder struct {
	opset   int64
	inits   map[string]*tensorProto
	consts  map[string]*constant // converted initializers and Constant outputs
	dynName string               // the live tensor of the chain
	uses    map[string]int
	b       builder
}

func convert(m *modelProto) (*nn.Network, error) {
	opset, err := defaultOpset(m)
	if err != nil {
		return nil, err
	}
	g := m.graph
	if g == nil {
		return nil, fmt.Errorf("model has no graph: %w", ErrInvalid)
	}
	if g.sparseInits > 0 {
		return nil, fmt.Errorf("sparse initializers are %w", ErrUnsupported)
	}
	d := &decoder{opset: opset, inits: map[string]*tensorProto{}, consts: map[string]*constant{}, uses: map[string]int{}}
	for _, t := range g.initializers {
		if t.name == "" {
			return nil, fmt.Errorf("initializer at offset %d has no name: %w", t.offset, ErrInvalid)
		}
		if _, dup := d.inits[t.name]; dup {
			return nil, fmt.Errorf("initializer %q defined twice: %w", t.name, ErrInvalid)
		}
		d.inits[t.name] = t
	}

	// The real input is the one graph input that is not also an initializer (old
	// exporters list every weight as an input too).
	var input *valueInfo
	var names []string
	for _, v := range g.inputs {
		if _, ok := d.inits[v.name]; ok {
			continue
		}
		names = append(names, v.name)
		input = v
	}
	if len(names) != 1 {
		return nil, fmt.Errorf("graph has %d inputs that are not initializers %q, want exactly 1: %w", len(names), names, ErrUnsupported)
	}
	if len(g.outputs) != 1 {
		return nil, fmt.Errorf("graph has %d outputs, want exactly 1: %w", len(g.outputs), ErrUnsupported)
	}
	output := g.outputs[0].name

	inShape, err := d.b.start(input)
	if err != nil {
		return nil, fmt.Errorf("graph input %q: %w", input.name, err)
	}
	d.dynName = input.name

	order, err := d.schedule(g.nodes, input.name, output)
	if err != nil {
		return nil, err
	}
	for _, n := range order {
		if err := d.node(n); err != nil {
			return nil, fmt.Errorf("node %s: %w", nodeLabel(n), err)
		}
	}
	if d.dynName != output {
		if _, ok := d.consts[output]; ok {
			return nil, fmt.Errorf("graph output %q does not depend on the input %q: %w", output, input.name, ErrUnsupported)
		}
		return nil, fmt.Errorf("graph output %q is not computed from the input %q: %w", output, input.name, ErrInvalid)
	}
	if len(d.b.layers) == 0 {
		return nil, fmt.Errorf("graph computes nothing (output %q is the input): %w", output, ErrUnsupported)
	}
	net, err := nn.New(inShape, d.b.layers)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", err, ErrInvalid)
	}
	return net, nil
}

func nodeLabel(n *nodeProto) string {
	op := n.opType
	if n.domain != "" && n.domain != "ai.onnx" {
		op = n.domain + "::" + op
	}
	return fmt.Sprintf("%q (%s)", n.name, op)
}

// schedule returns the nodes the output depends on, in a topological order (file
// order among ready nodes), and counts how often each value is used.
func (d *decoder) schedule(nodes []*nodeProto, input, output string) ([]*nodeProto, error) {
	producer := map[string]int{}
	for i, n := range nodes {
		if n.name == "" {
			n.name = fmt.Sprintf("%s_%d", n.opType, i)
		}
		for _, o := range n.outputs {
			if o == "" {
				continue
			}
			if o == input {
				return nil, fmt.Errorf("node %s overwrites the graph input %q: %w", nodeLabel(n), o, ErrInvalid)
			}
			if _, ok := d.inits[o]; ok {
				return nil, fmt.Errorf("node %s overwrites initializer %q: %w", nodeLabel(n), o, ErrInvalid)
			}
			if j, dup := producer[o]; dup {
				return nil, fmt.Errorf("value %q is produced by both node %s and node %s: %w", o, nodeLabel(nodes[j]), nodeLabel(n), ErrInvalid)
			}
			producer[o] = i
		}
	}
	// Walk back from the output.
	needed := make([]bool, len(nodes))
	stack := []string{output}
	seen := map[string]bool{output: true}
	for len(stack) > 0 {
		v := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		i, ok := producer[v]
		if !ok {
			if v == input || d.inits[v] != nil {
				continue
			}
			return nil, fmt.Errorf("value %q is not produced by any node, nor an input or initializer: %w", v, ErrInvalid)
		}
		if needed[i] {
			continue
		}
		needed[i] = true
		for _, in := range nodes[i].inputs {
			if in != "" && !seen[in] {
				seen[in] = true
				stack = append(stack, in)
			}
		}
	}
	// Kahn's algorithm over the needed nodes.
	indeg := make([]int, len(nodes))
	users := map[int][]int{}
	for i, n := range nodes {
		if !needed[i] {
			continue
		}
		for _, in := range n.inputs {
			if in == "" {
				continue
			}
			d.uses[in]++
			if j, ok := producer[in]; ok {
				indeg[i]++
				users[j] = append(users[j], i)
			}
		}
	}
	d.uses[output]++
	var ready []int
	for i := range nodes {
		if needed[i] && indeg[i] == 0 {
			ready = append(ready, i)
		}
	}
	var order []*nodeProto
	for len(ready) > 0 {
		sort.Ints(ready)
		i := ready[0]
		ready = ready[1:]
		order = append(order, nodes[i])
		for _, u := range users[i] {
			indeg[u]--
			if indeg[u] == 0 {
				ready = append(ready, u)
			}
		}
	}
	count := 0
	for _, nd := range needed {
		if nd {
			count++
		}
	}
	if len(order) != count {
		return nil, fmt.Errorf("graph has a cycle: %w", ErrInvalid)
	}
	return order, nil
}

// constOf returns the constant named v, converting an initializer on first use.
func (d *decoder) constOf(v string) (*constant, error) {
	if c, ok := d.consts[v]; ok {
		return c, nil
	}
	t, ok := d.inits[v]
	if !ok {
		return nil, nil
	}
	c, err := toConstant(t)
	if err != nil {
		return nil, err
	}
	d.consts[v] = c
	return c, nil
}

// param returns input i of n as a constant, which it must be.
func (d *decoder) param(n *nodeProto, i int, what string) (*constant, error) {
	if i >= len(n.inputs) || n.inputs[i] == "" {
		return nil, fmt.Errorf("missing input %d (%s): %w", i, what, ErrInvalid)
	}
	c, err := d.constOf(n.inputs[i])
	if err != nil {
		return nil, err
	}
	if c == nil {
		return nil, fmt.Errorf("input %d (%s) %q must be a constant (initializer or Constant node); a second data path makes the graph non-sequential: %w", i, what, n.inputs[i], ErrUnsupported)
	}
	return c, nil
}

// optParam is param for an optional input: nil when absent.
func (d *decoder) optParam(n *nodeProto, i int, what string) (*constant, error) {
	if i >= len(n.inputs) || n.inputs[i] == "" {
		return nil, nil
	}
	return d.param(n, i, what)
}

// finiteParam is param plus a NaN/Inf check.
func (d *decoder) finiteParam(n *nodeProto, i int, what string) (*constant, error) {
	c, err := d.param(n, i, what)
	if err != nil {
		return nil, err
	}
	if err := checkFinite(c); err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	return c, nil
}

func (d *decoder) node(n *nodeProto) error {
	a, err := newAttrs(n)
	if err != nil {
		return err
	}
	domain := n.domain
	if domain == "ai.onnx" {
		domain = ""
	}
	if domain != "" && domain != CustomDomain {
		return fmt.Errorf("operator domain %q is %w", n.domain, ErrUnsupported)
	}
	if domain == CustomDomain && n.opType != "LinearMaskedRelu" {
		return fmt.Errorf("custom operator %s::%s is %w (only LinearMaskedRelu)", n.domain, n.opType, ErrUnsupported)
	}
	if domain == "" && n.opType == "LinearMaskedRelu" {
		return fmt.Errorf("LinearMaskedRelu must be in domain %q, not the default domain: %w", CustomDomain, ErrUnsupported)
	}
	if _, ok := inputCounts[n.opType]; !ok && n.opType != "Constant" {
		return fmt.Errorf("operator %s is %w", n.opType, ErrUnsupported)
	}
	// Which inputs carry the chain's live tensor?
	dyn := -1
	for i, in := range n.inputs {
		if in == "" || in != d.dynName {
			continue
		}
		if dyn >= 0 {
			return fmt.Errorf("uses %q twice (a graph with branches is %w)", in, ErrUnsupported)
		}
		dyn = i
	}
	for i, in := range n.inputs {
		if in == "" || i == dyn {
			continue
		}
		if c, err := d.constOf(in); err != nil {
			return fmt.Errorf("input %d: %w", i, err)
		} else if c == nil {
			return fmt.Errorf("input %q is neither a constant nor the live tensor %q (a graph with branches is %w)", in, d.dynName, ErrUnsupported)
		}
	}
	if len(n.outputs) == 0 || n.outputs[0] == "" {
		return fmt.Errorf("node has no output: %w", ErrInvalid)
	}
	for _, o := range n.outputs[1:] {
		if o != "" && d.uses[o] > 0 {
			return fmt.Errorf("output %q is used, but only the first output of %s is %w", o, n.opType, ErrUnsupported)
		}
	}
	if dyn < 0 {
		return d.constNode(n, a)
	}
	if d.uses[d.dynName] > 1 {
		return fmt.Errorf("%q feeds %d nodes (a graph with branches or skip connections is %w)", d.dynName, d.uses[d.dynName], ErrUnsupported)
	}
	if r, ok := inputCounts[n.opType]; ok && (len(n.inputs) < r[0] || len(n.inputs) > r[1]) {
		return fmt.Errorf("has %d inputs, want %d to %d: %w", len(n.inputs), r[0], r[1], ErrInvalid)
	}
	name := n.name
	b := &d.b
	switch n.opType {
	case "Relu":
		if err := b.add(&nn.ReLU{NodeName: name}); err != nil {
			return err
		}
	case "Identity", "Dropout":
		if n.opType == "Dropout" {
			a.ignore("ratio", "seed", "is_test")
		}
	case "LinearMaskedRelu":
		err = d.maskedReLU(n, dyn)
	case "Gemm":
		err = d.gemm(n, a, dyn)
	case "MatMul":
		err = d.matmul(n, dyn)
	case "Conv":
		err = d.conv(n, a, dyn)
	case "Add", "Sub", "Mul", "Div":
		err = d.elementwise(n, dyn)
	case "Flatten":
		err = d.flatten(n, a, dyn)
	case "Reshape":
		err = d.reshape(n, a, dyn)
	case "BatchNormalization":
		err = d.batchNorm(n, a, dyn)
	default:
		return fmt.Errorf("operator %s is %w", n.opType, ErrUnsupported)
	}
	if err != nil {
		return err
	}
	if err := a.done(); err != nil {
		return err
	}
	if err := b.sync(name); err != nil {
		return err
	}
	d.dynName = n.outputs[0]
	return nil
}

// inputCounts is the number of inputs each operator takes (min, max).
var inputCounts = map[string][2]int{
	"Relu": {1, 1}, "Identity": {1, 1}, "Dropout": {1, 3}, "LinearMaskedRelu": {4, 4},
	"Gemm": {2, 3}, "MatMul": {2, 2}, "Conv": {2, 3}, "Add": {2, 2}, "Sub": {2, 2},
	"Mul": {2, 2}, "Div": {2, 2}, "Flatten": {1, 1}, "Reshape": {2, 2},
	"BatchNormalization": {5, 5},
}

// constNode evaluates a node whose inputs are all constants. Only the forms exporters
// use to build weights and shapes are implemented.
func (d *decoder) constNode(n *nodeProto, a *attrs) error {
	out := n.outputs[0]
	switch n.opType {
	case "Constant":
		if len(n.inputs) != 0 {
			return fmt.Errorf("Constant has inputs: %w", ErrInvalid)
		}
		t, err := a.tensor("value")
		if err != nil {
			return err
		}
		var c *constant
		switch {
		case t != nil:
			if c, err = toConstant(t); err != nil {
				return err
			}
		default:
			if v, ok := a.m["value_float"]; ok && v.kind() == attrFloat {
				a.used["value_float"] = true
				c = &constant{shape: []int{}, f: []float64{float64(v.f)}, dtype: dtFloat}
			} else if v, ok := a.m["value_int"]; ok && v.kind() == attrInt {
				a.used["value_int"] = true
				c = &constant{shape: []int{}, f: []float64{float64(v.i)}, ints: []int64{v.i}, dtype: dtInt64}
			} else if fs, ok, err := a.floats("value_floats"); err != nil {
				return err
			} else if ok {
				c = &constant{shape: []int{len(fs)}, dtype: dtFloat}
				for _, f := range fs {
					c.f = append(c.f, float64(f))
				}
			} else if is, err := a.ints("value_ints"); err != nil {
				return err
			} else if is != nil {
				c = &constant{shape: []int{len(is)}, ints: is, dtype: dtInt64}
				for _, v := range is {
					c.f = append(c.f, float64(v))
				}
			} else {
				return fmt.Errorf("Constant without a value, value_float(s) or value_int(s) attribute: %w", ErrUnsupported)
			}
		}
		c.name = out
		if err := a.done(); err != nil {
			return err
		}
		d.consts[out] = c
		return nil
	case "Identity", "Dropout":
		a.ignore("ratio", "seed", "is_test")
		if err := a.done(); err != nil {
			return err
		}
		c, err := d.param(n, 0, "input")
		if err != nil {
			return err
		}
		d.consts[out] = c
		return nil
	}
	return fmt.Errorf("operator %s on constants only is %w (no constant folding)", n.opType, ErrUnsupported)
}

func (d *decoder) maskedReLU(n *nodeProto, dyn int) error {
	if dyn != 0 || len(n.inputs) != 4 {
		return fmt.Errorf("want inputs (x, mask, slope, bias) with x the live tensor, have %d inputs with x at %d: %w", len(n.inputs), dyn, ErrInvalid)
	}
	var vals [3][]float64
	for i, what := range []string{"mask", "slope", "bias"} {
		c, err := d.finiteParam(n, i+1, what)
		if err != nil {
			return err
		}
		v, full, err := broadcastTo(c, d.b.full)
		if err != nil {
			return fmt.Errorf("%s %q: %w", what, c.name, err)
		}
		if !equalInts(full, d.b.full) {
			return fmt.Errorf("%s %q of shape %v does not match x of shape %v: %w", what, c.name, c.shape, d.b.full, ErrInvalid)
		}
		vals[i] = v
	}
	for i, m := range vals[0] {
		if m != 0 && m != 1 {
			return fmt.Errorf("mask[%d] = %v, want 0 or 1: %w", i, m, ErrInvalid)
		}
	}
	return d.b.add(&nn.MaskedReLU{NodeName: n.name, Mask: vals[0], Slope: vals[1], Bias: vals[2]})
}

func (d *decoder) gemm(n *nodeProto, a *attrs, dyn int) error {
	alpha, err := a.float("alpha", 1)
	if err != nil {
		return err
	}
	beta, err := a.float("beta", 1)
	if err != nil {
		return err
	}
	transA, err := a.int("transA", 0)
	if err != nil {
		return err
	}
	transB, err := a.int("transB", 0)
	if err != nil {
		return err
	}
	if dyn != 0 {
		return fmt.Errorf("the live tensor is operand %d; only A (operand 0) may be: %w", dyn, ErrUnsupported)
	}
	if transA != 0 {
		return fmt.Errorf("transA=%d is %w", transA, ErrUnsupported)
	}
	if transB != 0 && transB != 1 {
		return fmt.Errorf("transB=%d: %w", transB, ErrInvalid)
	}
	full := d.b.full
	if len(full) != 2 || full[0] != 1 {
		return fmt.Errorf("input A has shape %v, want [1, K] (Flatten first): %w", full, ErrUnsupported)
	}
	k := full[1]
	w, err := d.finiteParam(n, 1, "B")
	if err != nil {
		return err
	}
	if len(w.shape) != 2 {
		return fmt.Errorf("B %q has shape %v, want 2-D: %w", w.name, w.shape, ErrInvalid)
	}
	var out int
	dense := &nn.Dense{NodeName: n.name, In: k}
	if transB == 1 {
		if w.shape[1] != k {
			return fmt.Errorf("B %q has shape %v (transB=1), input has %d features: %w", w.name, w.shape, k, ErrInvalid)
		}
		out = w.shape[0]
		dense.W = w.f
		if alpha != 1 {
			dense.W = scaled(w.f, alpha)
		}
	} else {
		if w.shape[0] != k {
			return fmt.Errorf("B %q has shape %v (transB=0), input has %d features: %w", w.name, w.shape, k, ErrInvalid)
		}
		out = w.shape[1]
		dense.W = make([]float64, k*out)
		for i := 0; i < k; i++ {
			for o := 0; o < out; o++ {
				dense.W[o*k+i] = alpha * w.f[i*out+o]
			}
		}
	}
	if out == 0 {
		return fmt.Errorf("B %q has no outputs (shape %v): %w", w.name, w.shape, ErrInvalid)
	}
	dense.Out = out
	c, err := d.optParam(n, 2, "C")
	if err != nil {
		return err
	}
	if c != nil {
		if err := checkFinite(c); err != nil {
			return fmt.Errorf("C: %w", err)
		}
		v, shape, err := broadcastTo(c, []int{1, out})
		if err != nil || !equalInts(shape, []int{1, out}) {
			return fmt.Errorf("C %q of shape %v does not broadcast to [1, %d]: %w", c.name, c.shape, out, ErrInvalid)
		}
		if beta != 1 {
			v = scaled(v, beta)
		}
		dense.B = v
	}
	d.b.full = []int{1, out}
	return d.b.add(dense)
}

func (d *decoder) matmul(n *nodeProto, dyn int) error {
	if len(n.inputs) != 2 {
		return fmt.Errorf("has %d inputs, want 2: %w", len(n.inputs), ErrInvalid)
	}
	w, err := d.finiteParam(n, 1-dyn, "weight")
	if err != nil {
		return err
	}
	full := d.b.full
	if dyn == 0 {
		// x·W, numpy semantics: W is [K,N] (or [K], dropping the last axis).
		var k, out int
		switch len(w.shape) {
		case 1:
			k, out = w.shape[0], 1
		case 2:
			k, out = w.shape[0], w.shape[1]
		default:
			return fmt.Errorf("weight %q has shape %v; batched MatMul is %w", w.name, w.shape, ErrUnsupported)
		}
		if len(full) == 0 || full[len(full)-1] != k {
			return fmt.Errorf("input of shape %v cannot multiply weight %q of shape %v: %w", full, w.name, w.shape, ErrInvalid)
		}
		if prod(full[:len(full)-1]) != 1 {
			return fmt.Errorf("input of shape %v has more than one row; a row-wise MatMul is %w", full, ErrUnsupported)
		}
		if out == 0 {
			return fmt.Errorf("weight %q of shape %v has no outputs: %w", w.name, w.shape, ErrInvalid)
		}
		newFull := append([]int(nil), full[:len(full)-1]...)
		if len(w.shape) == 2 {
			newFull = append(newFull, out)
		}
		if len(newFull) == 0 {
			return fmt.Errorf("vector·vector MatMul gives a scalar, which is %w", ErrUnsupported)
		}
		dense := &nn.Dense{NodeName: n.name, In: k, Out: out, W: make([]float64, k*out)}
		for i := 0; i < k; i++ {
			for o := 0; o < out; o++ {
				dense.W[o*k+i] = w.f[i*out+o]
			}
		}
		d.b.full = newFull
		return d.b.addDense(dense)
	}
	// W·x with the weight first (VNN-COMP test_tiny, test_small): W is [M,K] and x a
	// vector [K] (or a column [K,1] without batch axis).
	if len(w.shape) != 2 {
		return fmt.Errorf("weight-first MatMul needs a 2-D weight, %q has shape %v: %w", w.name, w.shape, ErrUnsupported)
	}
	m, k := w.shape[0], w.shape[1]
	var newFull []int
	switch {
	case len(full) == 1 && full[0] == k:
		newFull = []int{m}
	case len(full) == 2 && !d.b.batch && full[0] == k && full[1] == 1:
		newFull = []int{m, 1}
	default:
		return fmt.Errorf("weight-first MatMul of %q %v with input %v (batch axis: %v) is %w; the input must be a vector [%d]", w.name, w.shape, full, d.b.batch, ErrUnsupported, k)
	}
	if m == 0 {
		return fmt.Errorf("weight %q of shape %v has no outputs: %w", w.name, w.shape, ErrInvalid)
	}
	d.b.full = newFull
	return d.b.addDense(&nn.Dense{NodeName: n.name, In: k, Out: m, W: w.f})
}

func (d *decoder) conv(n *nodeProto, a *attrs, dyn int) error {
	if dyn != 0 {
		return fmt.Errorf("the live tensor is input %d, want 0: %w", dyn, ErrUnsupported)
	}
	full := d.b.full
	if len(full) != 4 || !d.b.batch {
		return fmt.Errorf("input of shape %v: only 2-D convolution over [N,C,H,W] is %w", full, ErrUnsupported)
	}
	w, err := d.finiteParam(n, 1, "W")
	if err != nil {
		return err
	}
	if len(w.shape) != 4 {
		return fmt.Errorf("weight %q has shape %v, want [M,C,kH,kW]: %w", w.name, w.shape, ErrUnsupported)
	}
	group, err := a.int("group", 1)
	if err != nil {
		return err
	}
	if group != 1 {
		return fmt.Errorf("group=%d is %w (only group 1)", group, ErrUnsupported)
	}
	c := &nn.Conv2d{NodeName: n.name, OutC: w.shape[0], InC: w.shape[1], KH: w.shape[2], KW: w.shape[3], W: w.f}
	if c.InC != full[1] {
		return fmt.Errorf("weight %q of shape %v expects %d input channels, input %v has %d: %w", w.name, w.shape, c.InC, full, full[1], ErrInvalid)
	}
	if ks, err := a.ints("kernel_shape"); err != nil {
		return err
	} else if ks != nil && (len(ks) != 2 || ks[0] != int64(c.KH) || ks[1] != int64(c.KW)) {
		return fmt.Errorf("kernel_shape %v disagrees with weight shape %v: %w", ks, w.shape, ErrInvalid)
	}
	pair := func(name string, def int) (int, int, error) {
		v, err := a.ints(name)
		if err != nil || v == nil {
			return def, def, err
		}
		if len(v) != 2 || v[0] < 1 || v[1] < 1 || v[0] > 1<<16 || v[1] > 1<<16 {
			return 0, 0, fmt.Errorf("%s %v: want two values in [1, 65536]: %w", name, v, ErrInvalid)
		}
		return int(v[0]), int(v[1]), nil
	}
	if c.SH, c.SW, err = pair("strides", 1); err != nil {
		return err
	}
	if c.DH, c.DW, err = pair("dilations", 1); err != nil {
		return err
	}
	autoPad, err := a.str("auto_pad", "NOTSET")
	if err != nil {
		return err
	}
	pads, err := a.ints("pads")
	if err != nil {
		return err
	}
	switch autoPad {
	case "NOTSET", "":
		if pads != nil {
			if len(pads) != 4 {
				return fmt.Errorf("pads %v: want 4 values: %w", pads, ErrInvalid)
			}
			for _, p := range pads {
				if p < 0 || p > 1<<16 {
					return fmt.Errorf("pads %v: want values in [0, 65536]: %w", pads, ErrInvalid)
				}
			}
			c.PT, c.PL, c.PB, c.PR = int(pads[0]), int(pads[1]), int(pads[2]), int(pads[3])
		}
	case "VALID":
	case "SAME_UPPER", "SAME_LOWER":
		same := func(in, k, s, dl int) (lo, hi int) {
			out := (in + s - 1) / s
			total := (out-1)*s + (k-1)*dl + 1 - in
			if total < 0 {
				total = 0
			}
			if autoPad == "SAME_UPPER" {
				return total / 2, total - total/2
			}
			return total - total/2, total / 2
		}
		c.PT, c.PB = same(full[2], c.KH, c.SH, c.DH)
		c.PL, c.PR = same(full[3], c.KW, c.SW, c.DW)
	default:
		return fmt.Errorf("auto_pad %q: %w", autoPad, ErrInvalid)
	}
	if autoPad != "NOTSET" && autoPad != "" && pads != nil {
		for _, p := range pads {
			if p != 0 {
				return fmt.Errorf("both auto_pad %q and pads %v given: %w", autoPad, pads, ErrInvalid)
			}
		}
	}
	b, err := d.optParam(n, 2, "B")
	if err != nil {
		return err
	}
	if b != nil {
		if err := checkFinite(b); err != nil {
			return fmt.Errorf("B: %w", err)
		}
		if len(b.f) != c.OutC {
			return fmt.Errorf("bias %q has %d values, want %d: %w", b.name, len(b.f), c.OutC, ErrInvalid)
		}
		c.B = b.f
	}
	out, err := c.Setup(d.b.shape)
	if err != nil {
		return fmt.Errorf("%w: %w", err, ErrInvalid)
	}
	if int64(out.Size()) > MaxActivationElements {
		return fmt.Errorf("output %v has more than %d elements: %w", out, MaxActivationElements, ErrUnsupported)
	}
	d.b.full = append([]int{1}, out...)
	return d.b.add(c)
}

func (d *decoder) elementwise(n *nodeProto, dyn int) error {
	if len(n.inputs) != 2 {
		return fmt.Errorf("has %d inputs, want 2: %w", len(n.inputs), ErrInvalid)
	}
	c, err := d.finiteParam(n, 1-dyn, "constant")
	if err != nil {
		return err
	}
	v, full, err := broadcastTo(c, d.b.full)
	if err != nil {
		return fmt.Errorf("constant %q: %w", c.name, err)
	}
	aff := &nn.Affine{NodeName: n.name}
	switch {
	case n.opType == "Add":
		aff.Shift = v
	case n.opType == "Sub" && dyn == 0:
		for i := range v {
			v[i] = -v[i]
		}
		aff.Shift = v
	case n.opType == "Sub": // c - x
		aff.Scale = make([]float64, len(v))
		for i := range aff.Scale {
			aff.Scale[i] = -1
		}
		aff.Shift = v
	case n.opType == "Mul":
		aff.Scale = v
	case n.opType == "Div" && dyn == 0:
		for i, x := range v {
			if x == 0 {
				return fmt.Errorf("divisor %q has a zero at element %d: %w", c.name, i, ErrInvalid)
			}
			v[i] = 1 / x
			if math.IsInf(v[i], 0) {
				return fmt.Errorf("divisor %q element %d (%g) is too small: 1/x overflows: %w", c.name, i, x, ErrInvalid)
			}
		}
		aff.Scale = v
	default: // c / x
		return fmt.Errorf("dividing a constant by the input is nonlinear and %w", ErrUnsupported)
	}
	d.b.full = full
	return d.b.addAffine(aff)
}

func (d *decoder) flatten(n *nodeProto, a *attrs, dyn int) error {
	axis, err := a.int("axis", 1)
	if err != nil {
		return err
	}
	full := d.b.full
	r := int64(len(full))
	if axis < 0 {
		axis += r
	}
	if axis < 0 || axis > r {
		return fmt.Errorf("axis %d out of range for input of shape %v: %w", axis, full, ErrInvalid)
	}
	lead := prod(full[:axis])
	if d.b.batch && lead != 1 {
		return fmt.Errorf("axis %d on input %v folds per-sample axes into the batch axis: %w", axis, full, ErrUnsupported)
	}
	d.b.full = []int{lead, prod(full[axis:])}
	return nil
}

func (d *decoder) reshape(n *nodeProto, a *attrs, dyn int) error {
	if dyn != 0 {
		return fmt.Errorf("the shape, not the data, is the live tensor: %w", ErrUnsupported)
	}
	allowZero, err := a.int("allowzero", 0)
	if err != nil {
		return err
	}
	s, err := d.param(n, 1, "shape")
	if err != nil {
		return err
	}
	if s.ints == nil || len(s.shape) != 1 {
		return fmt.Errorf("shape %q must be a 1-D integer tensor, is %s of shape %v: %w", s.name, dtypeName(s.dtype), s.shape, ErrInvalid)
	}
	full := d.b.full
	total := prod(full)
	out := make([]int, len(s.ints))
	infer := -1
	known := 1
	for i, v := range s.ints {
		switch {
		case v == -1:
			if infer >= 0 {
				return fmt.Errorf("shape %v has more than one -1: %w", s.ints, ErrInvalid)
			}
			infer = i
			continue
		case v == 0 && allowZero == 0:
			if i >= len(full) {
				return fmt.Errorf("shape %v copies dimension %d, input %v has none: %w", s.ints, i, full, ErrInvalid)
			}
			out[i] = full[i]
		case v < 0 || v > MaxTensorElements:
			return fmt.Errorf("shape %v has invalid dimension %d: %w", s.ints, v, ErrInvalid)
		default:
			out[i] = int(v)
		}
		if out[i] == 0 || known > total {
			return fmt.Errorf("cannot reshape %v to %v: %w", full, s.ints, ErrInvalid)
		}
		known *= out[i]
	}
	if infer >= 0 {
		if known == 0 || total%known != 0 {
			return fmt.Errorf("cannot reshape %v (%d elements) to %v: %w", full, total, s.ints, ErrInvalid)
		}
		out[infer] = total / known
	}
	if prod(out) != total {
		return fmt.Errorf("cannot reshape %v (%d elements) to %v: %w", full, total, s.ints, ErrInvalid)
	}
	if d.b.batch {
		switch {
		case len(out) >= 2 && out[0] == 1:
			// The leading axis stays the batch axis: (1, -1) is a flatten.
		case len(out) == 1:
			// The batch axis (of size 1) is merged away; what is left is one sample.
			d.b.batch = false
		default:
			return fmt.Errorf("reshape of %v to %v moves per-sample data into the batch axis: %w", full, out, ErrUnsupported)
		}
	}
	d.b.full = out
	return nil
}

func (d *decoder) batchNorm(n *nodeProto, a *attrs, dyn int) error {
	if dyn != 0 || len(n.inputs) != 5 {
		return fmt.Errorf("want inputs (X, scale, B, mean, var) with X the live tensor: %w", ErrInvalid)
	}
	eps, err := a.float("epsilon", 1e-5)
	if err != nil {
		return err
	}
	spatial, err := a.int("spatial", 1)
	if err != nil {
		return err
	}
	training, err := a.int("training_mode", 0)
	if err != nil {
		return err
	}
	a.ignore("momentum")
	if training != 0 {
		return fmt.Errorf("training_mode=1 is %w (export the model in eval mode)", ErrUnsupported)
	}
	full := d.b.full
	if len(full) < 2 || !d.b.batch {
		return fmt.Errorf("input of shape %v has no channel axis: %w", full, ErrUnsupported)
	}
	ch := full[1]
	per := prod(full[2:])
	want := ch
	if spatial == 0 {
		want = ch * per
	}
	var p [4][]float64
	for i, what := range []string{"scale", "B", "mean", "var"} {
		c, err := d.finiteParam(n, i+1, what)
		if err != nil {
			return err
		}
		if len(c.f) != want {
			return fmt.Errorf("%s %q has %d values, want %d for input %v: %w", what, c.name, len(c.f), want, full, ErrInvalid)
		}
		p[i] = c.f
	}
	s := make([]float64, want)
	t := make([]float64, want)
	for i := range s {
		den := p[3][i] + eps
		if !(den > 0) {
			return fmt.Errorf("var + epsilon = %v at %d is not positive: %w", den, i, ErrInvalid)
		}
		s[i] = p[0][i] / math.Sqrt(den)
		t[i] = p[1][i] - p[2][i]*s[i]
	}
	if spatial == 0 {
		return d.b.addAffine(&nn.Affine{NodeName: n.name, Scale: s, Shift: t})
	}
	return d.b.addChannelAffine(n.name, s, t, ch, per)
}

// broadcastTo broadcasts constant c against a tensor of shape full (numpy rules) and
// returns c's values expanded to the result shape, and that shape. The result may
// only differ from full by leading axes of size 1: a constant must not enlarge the
// tensor it is applied to.
func broadcastTo(c *constant, full []int) ([]float64, []int, error) {
	r := max(len(full), len(c.shape))
	out := make([]int, r)
	for i := 0; i < r; i++ {
		a, b := 1, 1
		if j := i - (r - len(full)); j >= 0 {
			a = full[j]
		}
		if j := i - (r - len(c.shape)); j >= 0 {
			b = c.shape[j]
		}
		switch {
		case a == b || b == 1:
			out[i] = a
		case a == 1:
			out[i] = b
		default:
			return nil, nil, fmt.Errorf("shape %v does not broadcast against %v: %w", c.shape, full, ErrInvalid)
		}
	}
	if prod(out) != prod(full) {
		return nil, nil, fmt.Errorf("shape %v would broadcast the input %v up to %v: %w", c.shape, full, out, ErrUnsupported)
	}
	n := prod(out)
	if int64(n) > MaxActivationElements {
		return nil, nil, fmt.Errorf("shape %v has more than %d elements: %w", out, MaxActivationElements, ErrUnsupported)
	}
	// Strides of c aligned to out, 0 on broadcast axes.
	stride := make([]int, r)
	s := 1
	for i := len(c.shape) - 1; i >= 0; i-- {
		j := i + r - len(c.shape)
		if c.shape[i] != 1 {
			stride[j] = s
		}
		s *= c.shape[i]
	}
	v := make([]float64, n)
	idx := make([]int, r)
	for k := range v {
		off := 0
		for i, x := range idx {
			off += x * stride[i]
		}
		v[k] = c.f[off]
		for i := r - 1; i >= 0; i-- {
			idx[i]++
			if idx[i] < out[i] {
				break
			}
			idx[i] = 0
		}
	}
	return v, out, nil
}

func prod(s []int) int {
	n := 1
	for _, d := range s {
		n *= d
	}
	return n
}

func equalInts(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func scaled(v []float64, k float64) []float64 {
	out := make([]float64, len(v))
	for i, x := range v {
		out[i] = k * x
	}
	return out
}
