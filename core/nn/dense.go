package nn

import (
	"fmt"

	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/blas64"
)

// Dense is an affine map y = W·x + B on a flat input (ONNX Gemm, or MatMul + Add).
// W is row-major Out×In.
type Dense struct {
	NodeName string
	In, Out  int
	W        []float64
	B        []float64 // length Out; nil means zero
}

func (d *Dense) Name() string        { return d.NodeName }
func (d *Dense) Kind() string        { return "Dense" }
func (d *Dense) Params() [][]float64 { return nonNil(d.W, d.B) }

func (d *Dense) Setup(in Shape) (Shape, error) {
	if in.Size() != d.In {
		return nil, fmt.Errorf("node %q (Dense): input has %d elements %v, weights expect %d", d.NodeName, in.Size(), in, d.In)
	}
	if len(d.W) != d.In*d.Out {
		return nil, fmt.Errorf("node %q (Dense): weight has %d values, want %d×%d", d.NodeName, len(d.W), d.Out, d.In)
	}
	if d.B != nil && len(d.B) != d.Out {
		return nil, fmt.Errorf("node %q (Dense): bias has %d values, want %d", d.NodeName, len(d.B), d.Out)
	}
	if err := checkFinite(d.NodeName, "weight", d.W); err != nil {
		return nil, err
	}
	if err := checkFinite(d.NodeName, "bias", d.B); err != nil {
		return nil, err
	}
	return Shape{d.Out}, nil
}

func (d *Dense) Forward(in, out []float64, n int) {
	for s := 0; s < n; s++ {
		o := out[s*d.Out : (s+1)*d.Out]
		if d.B != nil {
			copy(o, d.B)
		} else {
			clear(o)
		}
	}
	// out (n×Out) += in (n×In) · Wᵀ
	blas64.Gemm(blas.NoTrans, blas.Trans, 1,
		blas64.General{Rows: n, Cols: d.In, Stride: d.In, Data: in[:n*d.In]},
		blas64.General{Rows: d.Out, Cols: d.In, Stride: d.In, Data: d.W},
		1, blas64.General{Rows: n, Cols: d.Out, Stride: d.Out, Data: out[:n*d.Out]})
}

func nonNil(vs ...[]float64) [][]float64 {
	var r [][]float64
	for _, v := range vs {
		if v != nil {
			r = append(r, v)
		}
	}
	return r
}
