package onnx

import (
	"fmt"
	"sort"
)

// attrs gives typed, checked access to a node's attributes and remembers which were
// read, so that an attribute graftcert does not understand is an error instead of
// being silently ignored.
type attrs struct {
	m    map[string]*attribute
	used map[string]bool
}

func newAttrs(n *nodeProto) (*attrs, error) {
	a := &attrs{m: map[string]*attribute{}, used: map[string]bool{}}
	for _, at := range n.attrs {
		if _, dup := a.m[at.name]; dup {
			return nil, fmt.Errorf("attribute %q given twice: %w", at.name, ErrInvalid)
		}
		if at.hasGraph {
			return nil, fmt.Errorf("attribute %q holds a subgraph (control flow is %w)", at.name, ErrUnsupported)
		}
		a.m[at.name] = at
	}
	return a, nil
}

// kind returns the attribute's type, inferring it from the fields present when an old
// exporter left the type unset.
func (at *attribute) kind() int64 {
	if at.typ != 0 {
		return at.typ
	}
	switch {
	case at.set[fAttrT]:
		return attrTensor
	case at.set[fAttrFloats]:
		return attrFloats
	case at.set[fAttrInts]:
		return attrInts
	case at.set[fAttrS]:
		return attrString
	case at.set[fAttrF]:
		return attrFloat
	case at.set[fAttrI]:
		return attrInt
	}
	return 0
}

var attrKindNames = map[int64]string{attrFloat: "FLOAT", attrInt: "INT", attrString: "STRING",
	attrTensor: "TENSOR", attrGraph: "GRAPH", attrFloats: "FLOATS", attrInts: "INTS",
	attrStrings: "STRINGS", attrTensors: "TENSORS", attrGraphs: "GRAPHS"}

func kindName(k int64) string {
	if s, ok := attrKindNames[k]; ok {
		return s
	}
	return fmt.Sprintf("type %d", k)
}

func (a *attrs) get(name string, want int64) (*attribute, error) {
	at, ok := a.m[name]
	if !ok {
		return nil, nil
	}
	a.used[name] = true
	if k := at.kind(); k != want {
		return nil, fmt.Errorf("attribute %q has type %s, want %s: %w", name, kindName(k), kindName(want), ErrInvalid)
	}
	return at, nil
}

func (a *attrs) int(name string, def int64) (int64, error) {
	at, err := a.get(name, attrInt)
	if err != nil || at == nil {
		return def, err
	}
	return at.i, nil
}

func (a *attrs) float(name string, def float64) (float64, error) {
	at, err := a.get(name, attrFloat)
	if err != nil || at == nil {
		return def, err
	}
	return float64(at.f), nil
}

func (a *attrs) str(name, def string) (string, error) {
	at, err := a.get(name, attrString)
	if err != nil || at == nil {
		return def, err
	}
	return string(at.s), nil
}

// ints returns the list attribute, or nil if it is absent.
func (a *attrs) ints(name string) ([]int64, error) {
	at, err := a.get(name, attrInts)
	if err != nil || at == nil {
		return nil, err
	}
	return at.ints, nil
}

func (a *attrs) floats(name string) ([]float32, bool, error) {
	at, err := a.get(name, attrFloats)
	if err != nil || at == nil {
		return nil, false, err
	}
	return at.floats, true, nil
}

func (a *attrs) tensor(name string) (*tensorProto, error) {
	at, err := a.get(name, attrTensor)
	if err != nil || at == nil {
		return nil, err
	}
	if at.t == nil {
		return nil, fmt.Errorf("attribute %q has no tensor: %w", name, ErrInvalid)
	}
	return at.t, nil
}

// ignore marks attributes that have no effect on inference (Dropout's ratio, say).
func (a *attrs) ignore(names ...string) {
	for _, n := range names {
		a.used[n] = true
	}
}

// done reports the first attribute that the operator's handler did not read.
func (a *attrs) done() error {
	var left []string
	for name := range a.m {
		if !a.used[name] {
			left = append(left, name)
		}
	}
	if len(left) == 0 {
		return nil
	}
	sort.Strings(left)
	return fmt.Errorf("attribute %q is %w", left[0], ErrUnsupported)
}
