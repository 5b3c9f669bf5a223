package nn

import "fmt"

// Affine is the elementwise y = x·Scale + Shift with per-element Scale and Shift of the
// full per-sample size (ONNX Sub/Div/Mul/Add by a constant, input normalisation, a
// BatchNorm with nothing to fold into). Scale nil means 1; Shift nil means 0.
type Affine struct {
	NodeName     string
	Scale, Shift []float64
	N            int // set by Setup
}

func (a *Affine) Name() string        { return a.NodeName }
func (a *Affine) Kind() string        { return "Affine" }
func (a *Affine) Params() [][]float64 { return nonNil(a.Scale, a.Shift) }

func (a *Affine) Setup(in Shape) (Shape, error) {
	n := in.Size()
	if a.Scale != nil && len(a.Scale) != n {
		return nil, fmt.Errorf("node %q (Affine): scale has %d values, input %v has %d", a.NodeName, len(a.Scale), in, n)
	}
	if a.Shift != nil && len(a.Shift) != n {
		return nil, fmt.Errorf("node %q (Affine): shift has %d values, input %v has %d", a.NodeName, len(a.Shift), in, n)
	}
	if err := checkFinite(a.NodeName, "scale", a.Scale); err != nil {
		return nil, err
	}
	if err := checkFinite(a.NodeName, "shift", a.Shift); err != nil {
		return nil, err
	}
	a.N = n
	return in.Clone(), nil
}

func (a *Affine) Forward(in, out []float64, n int) {
	for s := 0; s < n; s++ {
		x := in[s*a.N : (s+1)*a.N]
		y := out[s*a.N : (s+1)*a.N]
		for i, v := range x {
			if a.Scale != nil {
				v *= a.Scale[i]
			}
			if a.Shift != nil {
				v += a.Shift[i]
			}
			y[i] = v
		}
	}
}

// Reshape changes the per-sample shape without touching the data (ONNX Reshape,
// Flatten). A reshape to (1,-1) in a batch-1 export is read as a flatten.
type Reshape struct {
	NodeName string
	To       Shape
}

func (r *Reshape) Name() string        { return r.NodeName }
func (r *Reshape) Kind() string        { return "Reshape" }
func (r *Reshape) Params() [][]float64 { return nil }

func (r *Reshape) Setup(in Shape) (Shape, error) {
	if r.To.Size() != in.Size() {
		return nil, fmt.Errorf("node %q (Reshape): cannot reshape %v (%d elements) to %v", r.NodeName, in, in.Size(), r.To)
	}
	return r.To.Clone(), nil
}

func (r *Reshape) Forward(in, out []float64, n int) { copy(out, in[:n*r.To.Size()]) }
