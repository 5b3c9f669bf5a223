package nn

import "fmt"

// ReLU is the elementwise max(x, 0).
type ReLU struct {
	NodeName string
	N        int // set by Setup
}

func (r *ReLU) Name() string        { return r.NodeName }
func (r *ReLU) Kind() string        { return "ReLU" }
func (r *ReLU) Params() [][]float64 { return nil }
func (r *ReLU) Neurons() int        { return r.N }

func (r *ReLU) Setup(in Shape) (Shape, error) {
	r.N = in.Size()
	return in.Clone(), nil
}

func (r *ReLU) Forward(in, out []float64, n int) {
	for i, x := range in[:n*r.N] {
		if x > 0 {
			out[i] = x
		} else {
			out[i] = 0
		}
	}
}

// MaskedReLU is the paper's grafted activation (ONNX customOp::LinearMaskedRelu):
// per neuron, y = (1-m)·relu(x) + m·(slope·x + bias) with m ∈ {0,1}. Neurons with
// m = 1 are linear ("grafted"); pruning is slope = bias = 0.
type MaskedReLU struct {
	NodeName          string
	Mask, Slope, Bias []float64 // one value per neuron
	N                 int       // set by Setup
}

func (r *MaskedReLU) Name() string        { return r.NodeName }
func (r *MaskedReLU) Kind() string        { return "MaskedReLU" }
func (r *MaskedReLU) Params() [][]float64 { return [][]float64{r.Slope, r.Bias} }
func (r *MaskedReLU) Neurons() int        { return r.N }

// Grafted reports whether neuron i is linear.
func (r *MaskedReLU) Grafted(i int) bool { return r.Mask[i] != 0 }

// NumGrafted counts the linear neurons.
func (r *MaskedReLU) NumGrafted() int {
	k := 0
	for _, m := range r.Mask {
		if m != 0 {
			k++
		}
	}
	return k
}

func (r *MaskedReLU) Setup(in Shape) (Shape, error) {
	n := in.Size()
	for _, p := range []struct {
		what string
		v    []float64
	}{{"mask", r.Mask}, {"slope", r.Slope}, {"bias", r.Bias}} {
		if len(p.v) != n {
			return nil, fmt.Errorf("node %q (LinearMaskedRelu): %s has %d values, input %v has %d", r.NodeName, p.what, len(p.v), in, n)
		}
		if err := checkFinite(r.NodeName, p.what, p.v); err != nil {
			return nil, err
		}
	}
	for i, m := range r.Mask {
		if m != 0 && m != 1 {
			return nil, fmt.Errorf("node %q (LinearMaskedRelu): mask[%d] = %v, want 0 or 1", r.NodeName, i, m)
		}
	}
	r.N = n
	return in.Clone(), nil
}

func (r *MaskedReLU) Forward(in, out []float64, n int) {
	for s := 0; s < n; s++ {
		x := in[s*r.N : (s+1)*r.N]
		y := out[s*r.N : (s+1)*r.N]
		for i, v := range x {
			switch {
			case r.Mask[i] != 0:
				y[i] = r.Slope[i]*v + r.Bias[i]
			case v > 0:
				y[i] = v
			default:
				y[i] = 0
			}
		}
	}
}
