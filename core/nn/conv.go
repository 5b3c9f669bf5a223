package nn

import (
	"fmt"
	"sync"

	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/blas64"
)

// Conv2d is a 2-D convolution over a C×H×W input (ONNX Conv, group 1).
// W has shape OutC×InC×KH×KW; padding is top, left, bottom, right.
type Conv2d struct {
	NodeName       string
	InC, OutC      int
	KH, KW         int
	SH, SW         int // strides
	PT, PL, PB, PR int // pads
	DH, DW         int // dilations
	W, B           []float64

	// Set by Setup.
	InH, InW, OutH, OutW int
}

func (c *Conv2d) Name() string        { return c.NodeName }
func (c *Conv2d) Kind() string        { return "Conv2d" }
func (c *Conv2d) Params() [][]float64 { return nonNil(c.W, c.B) }

func (c *Conv2d) Setup(in Shape) (Shape, error) {
	if len(in) != 3 {
		return nil, fmt.Errorf("node %q (Conv): input shape %v is not C×H×W", c.NodeName, in)
	}
	if in[0] != c.InC {
		return nil, fmt.Errorf("node %q (Conv): input has %d channels, weights expect %d", c.NodeName, in[0], c.InC)
	}
	if c.SH <= 0 || c.SW <= 0 || c.DH <= 0 || c.DW <= 0 || c.KH <= 0 || c.KW <= 0 {
		return nil, fmt.Errorf("node %q (Conv): non-positive kernel, stride or dilation", c.NodeName)
	}
	if c.PT < 0 || c.PL < 0 || c.PB < 0 || c.PR < 0 {
		return nil, fmt.Errorf("node %q (Conv): negative padding", c.NodeName)
	}
	if len(c.W) != c.OutC*c.InC*c.KH*c.KW {
		return nil, fmt.Errorf("node %q (Conv): weight has %d values, want %d×%d×%d×%d", c.NodeName, len(c.W), c.OutC, c.InC, c.KH, c.KW)
	}
	if c.B != nil && len(c.B) != c.OutC {
		return nil, fmt.Errorf("node %q (Conv): bias has %d values, want %d", c.NodeName, len(c.B), c.OutC)
	}
	c.InH, c.InW = in[1], in[2]
	c.OutH = (c.InH+c.PT+c.PB-c.DH*(c.KH-1)-1)/c.SH + 1
	c.OutW = (c.InW+c.PL+c.PR-c.DW*(c.KW-1)-1)/c.SW + 1
	if c.OutH <= 0 || c.OutW <= 0 {
		return nil, fmt.Errorf("node %q (Conv): kernel larger than padded input %v", c.NodeName, in)
	}
	if err := checkFinite(c.NodeName, "weight", c.W); err != nil {
		return nil, err
	}
	if err := checkFinite(c.NodeName, "bias", c.B); err != nil {
		return nil, err
	}
	return Shape{c.OutC, c.OutH, c.OutW}, nil
}

// InSize and OutSize are the per-sample element counts (valid after Setup).
func (c *Conv2d) InSize() int  { return c.InC * c.InH * c.InW }
func (c *Conv2d) OutSize() int { return c.OutC * c.OutH * c.OutW }

func (c *Conv2d) Forward(in, out []float64, n int) {
	is, os := c.InSize(), c.OutSize()
	if c.OutC*c.OutH*c.OutW*c.InC*c.KH*c.KW < gemmConvWork {
		for s := 0; s < n; s++ {
			c.forward1(in[s*is:(s+1)*is], out[s*os:(s+1)*os])
		}
		return
	}
	k := c.InC * c.KH * c.KW
	hw := c.OutH * c.OutW
	buf := getCols(k * hw)
	defer colsPool.Put(buf)
	cols := *buf
	for s := 0; s < n; s++ {
		o := out[s*os : (s+1)*os]
		c.Im2Col(in[s*is:(s+1)*is], 1, cols)
		blas64.Gemm(blas.NoTrans, blas.NoTrans, 1,
			blas64.General{Rows: c.OutC, Cols: k, Stride: k, Data: c.W},
			blas64.General{Rows: k, Cols: hw, Stride: hw, Data: cols},
			0, blas64.General{Rows: c.OutC, Cols: hw, Stride: hw, Data: o})
		if c.B != nil {
			for oc, b := range c.B {
				oo := o[oc*hw : (oc+1)*hw]
				for i := range oo {
					oo[i] += b
				}
			}
		}
	}
}

// gemmConvWork is the size (multiply-adds per sample) from which Forward lays the
// input out as columns and multiplies by the weight matrix: the direct loops below
// run over one output row per kernel tap, a few values each, and their overhead
// dominates on all but the smallest convolutions.
const gemmConvWork = 1 << 14

var colsPool = sync.Pool{New: func() any { return new([]float64) }}

func getCols(n int) *[]float64 {
	p := colsPool.Get().(*[]float64)
	if cap(*p) < n {
		*p = make([]float64, n)
	}
	*p = (*p)[:n]
	return p
}

// Im2Col fills cols (K × n·HW, K = InC·KH·KW, HW = OutH·OutW) with the patches of n
// inputs: row k = (ic, ky, kx) in the weight's own order, column s·HW + p for sample s
// and output position p, 0 where the kernel tap falls in the padding. Forward and the
// trainer multiply the weight matrix by it.
func (c *Conv2d) Im2Col(in []float64, n int, cols []float64) {
	hw := c.OutH * c.OutW
	ncol := n * hw
	inHW := c.InH * c.InW
	is := c.InC * inHW
	for ic := 0; ic < c.InC; ic++ {
		for ky := 0; ky < c.KH; ky++ {
			for kx := 0; kx < c.KW; kx++ {
				k := (ic*c.KH+ky)*c.KW + kx
				row := cols[k*ncol : (k+1)*ncol]
				lo, hi := ValidRange(c.OutW, c.SW, kx*c.DW-c.PL, c.InW)
				for s := 0; s < n; s++ {
					src := in[s*is+ic*inHW : s*is+(ic+1)*inHW]
					dst := row[s*hw : (s+1)*hw]
					for oy := 0; oy < c.OutH; oy++ {
						d := dst[oy*c.OutW : (oy+1)*c.OutW]
						iy := oy*c.SH - c.PT + ky*c.DH
						if iy < 0 || iy >= c.InH {
							clear(d)
							continue
						}
						srow := src[iy*c.InW : (iy+1)*c.InW]
						clear(d[:lo])
						ix := lo*c.SW + kx*c.DW - c.PL
						for ox := lo; ox < hi; ox++ {
							d[ox] = srow[ix]
							ix += c.SW
						}
						clear(d[hi:])
					}
				}
			}
		}
	}
}

// ValidRange returns the outputs o in [lo, hi) of a row of out whose input index
// o·stride + off falls inside [0, size).
func ValidRange(out, stride, off, size int) (lo, hi int) {
	lo, hi = 0, out
	for lo < out && lo*stride+off < 0 {
		lo++
	}
	for hi > lo && (hi-1)*stride+off >= size {
		hi--
	}
	return lo, hi
}

func (c *Conv2d) forward1(in, out []float64) {
	hw := c.OutH * c.OutW
	for o := 0; o < c.OutC; o++ {
		b := 0.0
		if c.B != nil {
			b = c.B[o]
		}
		oo := out[o*hw : (o+1)*hw]
		for i := range oo {
			oo[i] = b
		}
		for ic := 0; ic < c.InC; ic++ {
			src := in[ic*c.InH*c.InW : (ic+1)*c.InH*c.InW]
			for ky := 0; ky < c.KH; ky++ {
				for kx := 0; kx < c.KW; kx++ {
					w := c.W[((o*c.InC+ic)*c.KH+ky)*c.KW+kx]
					if w == 0 {
						continue
					}
					for oy := 0; oy < c.OutH; oy++ {
						iy := oy*c.SH - c.PT + ky*c.DH
						if iy < 0 || iy >= c.InH {
							continue
						}
						row := src[iy*c.InW:]
						dst := oo[oy*c.OutW:]
						for ox := 0; ox < c.OutW; ox++ {
							ix := ox*c.SW - c.PL + kx*c.DW
							if ix < 0 || ix >= c.InW {
								continue
							}
							dst[ox] += w * row[ix]
						}
					}
				}
			}
		}
	}
}
