package onnx

import (
	"fmt"

	"github.com/graftcert/graftcert/core/nn"
)

// builder accumulates the nn layers of the chain while tracking two shapes of the
// live tensor: the ONNX shape (full, batch axis included when batch is set) and the
// per-sample shape the nn layers produce. After each node they are brought back in
// line by an nn.Reshape (sync), so nn shapes always mirror the ONNX graph.
type builder struct {
	layers []nn.Layer
	ins    []nn.Shape // ins[i] is the input shape of layers[i]
	absorb []bool     // layers[i] is a bias-free Dense from MatMul that may take an Add
	shape  nn.Shape
	full   []int
	batch  bool
}

// start reads the graph input's type and sets up the shapes.
func (b *builder) start(in *valueInfo) (nn.Shape, error) {
	if !in.hasType {
		return nil, fmt.Errorf("has no tensor type: %w", ErrUnsupported)
	}
	switch in.elemType {
	case dtFloat, dtDouble, 0:
	default:
		return nil, fmt.Errorf("element type %s is %w (want FLOAT or DOUBLE)", dtypeName(in.elemType), ErrUnsupported)
	}
	if !in.hasShape || len(in.dims) == 0 {
		return nil, fmt.Errorf("has no shape (a fixed per-sample shape is needed): %w", ErrUnsupported)
	}
	full := make([]int, len(in.dims))
	for i, d := range in.dims {
		if i == 0 && len(in.dims) >= 2 {
			// Batch axis: symbolic, unset or 1.
			if d.hasValue && d.value != 1 && d.value != 0 {
				return nil, fmt.Errorf("batch dimension is %d, want 1 or symbolic: %w", d.value, ErrUnsupported)
			}
			full[0] = 1
			continue
		}
		if !d.hasValue || d.value <= 0 {
			what := "unknown"
			if d.param != "" {
				what = "symbolic (" + d.param + ")"
			} else if d.hasValue {
				what = fmt.Sprint(d.value)
			}
			return nil, fmt.Errorf("dimension %d is %s; a fixed per-sample shape is needed: %w", i, what, ErrUnsupported)
		}
		if d.value > MaxActivationElements {
			return nil, fmt.Errorf("dimension %d is %d, more than %d: %w", i, d.value, MaxActivationElements, ErrUnsupported)
		}
		full[i] = int(d.value)
	}
	if n, err := shapeSize(toInt64s(full), MaxActivationElements); err != nil {
		return nil, fmt.Errorf("shape %v: %v: %w", full, err, ErrUnsupported)
	} else if n == 0 {
		return nil, fmt.Errorf("shape %v is empty: %w", full, ErrInvalid)
	}
	b.full = full
	b.batch = len(full) >= 2
	b.shape = b.perSample()
	return b.shape.Clone(), nil
}

func toInt64s(v []int) []int64 {
	out := make([]int64, len(v))
	for i, x := range v {
		out[i] = int64(x)
	}
	return out
}

// perSample is the ONNX shape without the batch axis.
func (b *builder) perSample() nn.Shape {
	if b.batch {
		return nn.Shape(append([]int(nil), b.full[1:]...))
	}
	return nn.Shape(append([]int(nil), b.full...))
}

func (b *builder) add(l nn.Layer) error {
	out, err := l.Setup(b.shape)
	if err != nil {
		return fmt.Errorf("%w: %w", err, ErrInvalid)
	}
	b.layers = append(b.layers, l)
	b.ins = append(b.ins, b.shape)
	b.absorb = append(b.absorb, false)
	b.shape = out
	return nil
}

// addDense appends a Dense from a bias-free MatMul, which a following Add may fill in.
func (b *builder) addDense(d *nn.Dense) error {
	if b.batch && len(b.full) < 2 {
		// x[1,K]·w[K] left only the size-1 batch axis: that is the one sample's value.
		b.batch = false
	}
	if err := b.add(d); err != nil {
		return err
	}
	b.absorb[len(b.absorb)-1] = d.B == nil
	return nil
}

// lastCore is the index of the last layer that is not a Reshape, or -1. Affine layers
// act elementwise in flat order, so they commute with reshapes.
func (b *builder) lastCore() int {
	for i := len(b.layers) - 1; i >= 0; i-- {
		if _, ok := b.layers[i].(*nn.Reshape); !ok {
			return i
		}
	}
	return -1
}

func isIdentity(a *nn.Affine) bool {
	for _, s := range a.Scale {
		if s != 1 {
			return false
		}
	}
	for _, t := range a.Shift {
		if t != 0 {
			return false
		}
	}
	return true
}

// addAffine appends an elementwise affine map, merging it where that changes no
// arithmetic: into the bias of a bias-free MatMul, or as the shift of a scale-only
// Affine (x·s then +t is exactly what one Affine computes).
func (b *builder) addAffine(a *nn.Affine) error {
	if isIdentity(a) {
		return nil
	}
	if j := b.lastCore(); j >= 0 && a.Scale == nil {
		if b.absorb[j] {
			d := b.layers[j].(*nn.Dense)
			if len(a.Shift) != d.Out {
				return fmt.Errorf("bias has %d values, the MatMul gives %d: %w", len(a.Shift), d.Out, ErrInvalid)
			}
			d.B = a.Shift
			b.absorb[j] = false
			return nil
		}
		if prev, ok := b.layers[j].(*nn.Affine); ok && prev.Shift == nil && len(prev.Scale) == len(a.Shift) {
			prev.Shift = a.Shift
			return nil
		}
	}
	return b.add(a)
}

// addChannelAffine applies y = x·s[c] + t[c] per channel (a BatchNormalization),
// folding it into a directly preceding Conv or Dense when there is one.
func (b *builder) addChannelAffine(name string, s, t []float64, ch, per int) error {
	if n := len(b.layers); n > 0 {
		switch l := b.layers[n-1].(type) {
		case *nn.Conv2d:
			if l.OutC == ch {
				k := len(l.W) / ch
				w := make([]float64, len(l.W))
				bias := make([]float64, ch)
				for o := 0; o < ch; o++ {
					for i := 0; i < k; i++ {
						w[o*k+i] = l.W[o*k+i] * s[o]
					}
					if l.B != nil {
						bias[o] = l.B[o] * s[o]
					}
					bias[o] += t[o]
				}
				l.W, l.B = w, bias
				return nil
			}
		case *nn.Dense:
			if l.Out == ch && per == 1 {
				w := make([]float64, len(l.W))
				bias := make([]float64, ch)
				for o := 0; o < ch; o++ {
					for i := 0; i < l.In; i++ {
						w[o*l.In+i] = l.W[o*l.In+i] * s[o]
					}
					if l.B != nil {
						bias[o] = l.B[o] * s[o]
					}
					bias[o] += t[o]
				}
				l.W, l.B = w, bias
				b.absorb[n-1] = false
				return nil
			}
		}
	}
	scale := make([]float64, ch*per)
	shift := make([]float64, ch*per)
	for c := 0; c < ch; c++ {
		for i := 0; i < per; i++ {
			scale[c*per+i], shift[c*per+i] = s[c], t[c]
		}
	}
	return b.addAffine(&nn.Affine{NodeName: name, Scale: scale, Shift: shift})
}

// sync appends (or adjusts) a Reshape so that the nn shape equals the ONNX per-sample
// shape of the live tensor.
func (b *builder) sync(name string) error {
	if int64(prod(b.full)) > MaxActivationElements {
		return fmt.Errorf("tensor of shape %v is larger than %d elements: %w", b.full, MaxActivationElements, ErrUnsupported)
	}
	ps := b.perSample()
	if b.shape.Equal(ps) {
		return nil
	}
	if n := len(b.layers); n > 0 {
		if r, ok := b.layers[n-1].(*nn.Reshape); ok {
			if b.ins[n-1].Equal(ps) {
				b.layers, b.ins, b.absorb = b.layers[:n-1], b.ins[:n-1], b.absorb[:n-1]
				b.shape = ps
				return nil
			}
			r.To = ps
			b.shape = ps
			return nil
		}
	}
	return b.add(&nn.Reshape{NodeName: name, To: ps})
}
