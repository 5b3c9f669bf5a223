package crown

import (
	"fmt"
	"math"
	"sync"

	"github.com/graftcert/graftcert/core/nn"
	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/blas64"
)

// op is the bound operator of one layer.
type op interface {
	// interval maps a box over the layer's input to a box over its output.
	interval(lo, hi []float64) (olo, ohi []float64)
}

// linearOp is an affine layer: y = J·x + c. backward maps rows over y to rows over x:
// A ↦ A·J, bias += A·c.
type linearOp interface {
	op
	backward(r *rows) *rows
	// mixing reports whether an output depends on more than one input element; a chain
	// with one mixing op is bounded exactly by IBP.
	mixing() bool
}

// actOp is a piecewise-linear activation, relaxed by the engine.
type actOp struct {
	layer nn.Layer
	n     int
	// linear[i] is true for grafted neurons: y = slope[i]·x + bias[i] exactly.
	linear      []bool
	slope, bias []float64
}

func newOp(l nn.Layer) (op, error) {
	switch t := l.(type) {
	case *nn.Dense:
		return &denseOp{d: t}, nil
	case *nn.Conv2d:
		abs := *t
		abs.W = make([]float64, len(t.W))
		for i, w := range t.W {
			abs.W[i] = math.Abs(w)
		}
		abs.B = nil
		return &convOp{c: t, abs: &abs}, nil
	case *nn.Affine:
		return &affineOp{a: t}, nil
	case *nn.Reshape:
		return reshapeOp{}, nil
	case *nn.ReLU:
		return &actOp{layer: t, n: t.N}, nil
	case *nn.MaskedReLU:
		o := &actOp{layer: t, n: t.N, linear: make([]bool, t.N), slope: t.Slope, bias: t.Bias}
		for i := range o.linear {
			o.linear[i] = t.Grafted(i)
		}
		return o, nil
	}
	return nil, fmt.Errorf("crown: layer %q: no bound operator for %s", l.Name(), l.Kind())
}

// ---- Dense ----

type denseOp struct {
	d *nn.Dense

	// wt is Wᵀ (In×Out, row-major), made on the first adjoint pass: the adjoint's
	// product G·Wᵀ then reads its right operand row by row (the order the matrix
	// product packs fastest, or reads in place for few rows) instead of gathering
	// columns of W, which was the largest cost of branch and bound's adjoint passes.
	wtOnce sync.Once
	wt     []float64
}

// transposed returns Wᵀ.
func (o *denseOp) transposed() []float64 {
	o.wtOnce.Do(func() {
		d := o.d
		wt := make([]float64, len(d.W))
		for j := 0; j < d.Out; j++ {
			for i, w := range d.W[j*d.In : (j+1)*d.In] {
				wt[i*d.Out+j] = w
			}
		}
		o.wt = wt
	})
	return o.wt
}

func (o *denseOp) mixing() bool { return true }

func (o *denseOp) interval(lo, hi []float64) ([]float64, []float64) {
	d := o.d
	mid, rad := midRad(lo, hi)
	c := make([]float64, d.Out)
	r := make([]float64, d.Out)
	blas64.Gemv(blas.NoTrans, 1, blas64.General{Rows: d.Out, Cols: d.In, Stride: d.In, Data: d.W}, blas64.Vector{N: d.In, Inc: 1, Data: mid}, 0, blas64.Vector{N: d.Out, Inc: 1, Data: c})
	for j := range r {
		r[j] = absDot(d.W[j*d.In:(j+1)*d.In], rad)
	}
	if d.B != nil {
		for i := range c {
			c[i] += d.B[i]
		}
	}
	return fromMidRad(c, r)
}

func (o *denseOp) backward(in *rows) *rows {
	d := o.d
	out := pooledRows(in.n, d.In)
	blas64.Gemm(blas.NoTrans, blas.NoTrans, 1,
		blas64.General{Rows: in.n, Cols: d.Out, Stride: d.Out, Data: in.a},
		blas64.General{Rows: d.Out, Cols: d.In, Stride: d.In, Data: d.W},
		0, blas64.General{Rows: in.n, Cols: d.In, Stride: d.In, Data: out.a})
	copy(out.bias, in.bias)
	copy(out.mag, in.mag)
	if d.B != nil {
		for r := 0; r < in.n; r++ {
			s, m := 0.0, 0.0
			for j, a := range in.row(r) {
				s += a * d.B[j]
				m += math.Abs(a * d.B[j])
			}
			out.bias[r] += s
			out.mag[r] += m
		}
	}
	return out
}

// absDot is Σ|w_i|·x_i. Taking |w| on the fly spares every bound a copy of |W|, a
// matrix the size of W (megabytes for the first Dense layer above a convolution,
// allocated, zeroed and filled per sample).
func absDot(w, x []float64) float64 {
	x = x[:len(w)]
	var s0, s1, s2, s3 float64
	i := 0
	for ; i+4 <= len(w); i += 4 {
		s0 += math.Abs(w[i]) * x[i]
		s1 += math.Abs(w[i+1]) * x[i+1]
		s2 += math.Abs(w[i+2]) * x[i+2]
		s3 += math.Abs(w[i+3]) * x[i+3]
	}
	for ; i < len(w); i++ {
		s0 += math.Abs(w[i]) * x[i]
	}
	return (s0 + s1) + (s2 + s3)
}

// ---- Conv2d ----

type convOp struct {
	c    *nn.Conv2d
	abs  *nn.Conv2d // |W|, no bias
	back convPlanCache
	cols im2colCache
}

func (o *convOp) mixing() bool { return true }

func (o *convOp) interval(lo, hi []float64) ([]float64, []float64) {
	mid, rad := midRad(lo, hi)
	c := make([]float64, o.c.OutSize())
	r := make([]float64, o.c.OutSize())
	o.c.Forward(mid, c, 1)
	o.abs.Forward(rad, r, 1)
	return fromMidRad(c, r)
}

// backward is the transposed convolution of every row. Rows that start from single
// neurons are sparse and are scattered coefficient by coefficient; dense rows go
// through matrix products per chunk of rows (denseBackward). The choice is per row, so
// a row's result does not depend on the rows it is bounded with.
func (o *convOp) backward(in *rows) *rows {
	c := o.c
	// Sparse rows are cleared before their scatter; denseBackward writes every
	// value of the others.
	out := uninitRows(in.n, c.InSize())
	copy(out.bias, in.bias)
	copy(out.mag, in.mag)
	var dense []int
	for r := 0; r < in.n; r++ {
		a := in.row(r)
		if c.B != nil {
			bsum, bmag := convBias(c, a)
			out.bias[r] += bsum
			out.mag[r] += bmag
		}
		if sparseRow(a) {
			clear(out.row(r))
			o.scatter(a, out.row(r))
		} else {
			dense = append(dense, r)
		}
	}
	o.denseBackward(in, dense, out)
	return out
}

// convBias is the constant a row a over a convolution's output adds when it crosses the
// convolution, Σ_oc B[oc]·(the row's sum over channel oc), and its terms' magnitude.
func convBias(c *nn.Conv2d, a []float64) (bsum, bmag float64) {
	ohw := c.OutH * c.OutW
	for oc, b := range c.B {
		t := sum4(a[oc*ohw:(oc+1)*ohw]) * b
		bsum += t
		bmag += math.Abs(t)
	}
	return bsum, bmag
}

// sum4 is the sum of a, in four interleaved partial sums (a single running sum is
// bound by the latency of one addition per element).
func sum4(a []float64) float64 {
	var s0, s1, s2, s3 float64
	i := 0
	for ; i+3 < len(a); i += 4 {
		s0 += a[i]
		s1 += a[i+1]
		s2 += a[i+2]
		s3 += a[i+3]
	}
	for ; i < len(a); i++ {
		s0 += a[i]
	}
	return (s0 + s1) + (s2 + s3)
}

// sparseRow reports whether fewer than one in eight coefficients of a are nonzero, so
// that scattering them one by one beats the matrix product. It stops counting as soon
// as the answer is known.
func sparseRow(a []float64) bool {
	need := (len(a) + 7) / 8 // nonzeros that make the row dense
	nnz := 0
	for _, v := range a {
		if v != 0 {
			nnz++
			if nnz >= need {
				return false
			}
		}
	}
	return true
}

// scatter adds the transposed convolution of one sparse row a into dst.
func (o *convOp) scatter(a, dst []float64) {
	c := o.c
	ohw := c.OutH * c.OutW
	ihw := c.InH * c.InW
	kk := c.KH * c.KW
	for oc := 0; oc < c.OutC; oc++ {
		ach := a[oc*ohw : (oc+1)*ohw]
		wo := c.W[oc*c.InC*kk : (oc+1)*c.InC*kk]
		for p, v := range ach {
			if v == 0 {
				continue
			}
			oy, ox := p/c.OutW, p%c.OutW
			y0 := oy*c.SH - c.PT
			x0 := ox*c.SW - c.PL
			for ic := 0; ic < c.InC; ic++ {
				wk := wo[ic*kk : (ic+1)*kk]
				dch := dst[ic*ihw : (ic+1)*ihw]
				for ky := 0; ky < c.KH; ky++ {
					iy := y0 + ky*c.DH
					if iy < 0 || iy >= c.InH {
						continue
					}
					drow := dch[iy*c.InW:]
					for kx, w := range wk[ky*c.KW : (ky+1)*c.KW] {
						ix := x0 + kx*c.DW
						if ix < 0 || ix >= c.InW {
							continue
						}
						drow[ix] += v * w
					}
				}
			}
		}
	}
}

// denseChunk is the number of column-matrix values the dense-row products work on at
// a time: small enough that the column block written by the product is still in cache
// when the gather reads it (or, forwards, when the product reads what im2col wrote).
const denseChunk = 1 << 16

// convTap is the part of the output map one kernel tap reads from the map (the rest
// reads padding): output rows [oyLo, oyHi) and columns [oxLo, oxHi).
type convTap struct {
	oyLo, oyHi, oxLo, oxHi int
}

func (o *convOp) taps() []convTap {
	c := o.c
	t := make([]convTap, c.KH*c.KW)
	for ky := 0; ky < c.KH; ky++ {
		oyLo, oyHi := validRange(c.OutH, c.SH, c.PT-ky*c.DH, c.InH)
		for kx := 0; kx < c.KW; kx++ {
			oxLo, oxHi := validRange(c.OutW, c.SW, c.PL-kx*c.DW, c.InW)
			t[ky*c.KW+kx] = convTap{oyLo, oyHi, oxLo, oxHi}
		}
	}
	return t
}

// validRange gives the output positions [lo, hi) of one kernel tap whose input
// position o·stride − shift falls inside [0, size).
func validRange(outN, stride, shift, size int) (lo, hi int) {
	// o·stride ≥ shift and o·stride ≤ size − 1 + shift.
	lo = 0
	if shift > 0 {
		lo = (shift + stride - 1) / stride
	}
	top := size - 1 + shift
	if top < 0 {
		return 0, 0
	}
	hi = min(outN, top/stride+1)
	if lo > hi {
		lo = hi
	}
	return lo, hi
}

// ---- Affine (elementwise) ----

type affineOp struct{ a *nn.Affine }

func (o *affineOp) mixing() bool { return false }

func (o *affineOp) interval(lo, hi []float64) ([]float64, []float64) {
	olo := make([]float64, len(lo))
	ohi := make([]float64, len(hi))
	for i := range lo {
		l, h := lo[i], hi[i]
		if o.a.Scale != nil {
			l, h = l*o.a.Scale[i], h*o.a.Scale[i]
			if l > h {
				l, h = h, l
			}
		}
		if o.a.Shift != nil {
			l += o.a.Shift[i]
			h += o.a.Shift[i]
		}
		m := safety * max(math.Abs(l), math.Abs(h))
		olo[i], ohi[i] = l-m, h+m
	}
	return olo, ohi
}

func (o *affineOp) backward(in *rows) *rows {
	out := in.clone()
	for r := 0; r < in.n; r++ {
		a := out.row(r)
		s, m := 0.0, 0.0
		for i := range a {
			if o.a.Shift != nil {
				s += a[i] * o.a.Shift[i]
				m += math.Abs(a[i] * o.a.Shift[i])
			}
			if o.a.Scale != nil {
				a[i] *= o.a.Scale[i]
			}
		}
		out.bias[r] += s
		out.mag[r] += m
	}
	return out
}

// ---- Reshape ----

type reshapeOp struct{}

func (reshapeOp) mixing() bool                                     { return false }
func (reshapeOp) interval(lo, hi []float64) ([]float64, []float64) { return lo, hi }
func (reshapeOp) backward(in *rows) *rows                          { return in }

// ---- activation interval ----

func (o *actOp) interval(lo, hi []float64) ([]float64, []float64) {
	olo := make([]float64, len(lo))
	ohi := make([]float64, len(hi))
	for i := range lo {
		if o.linear != nil && o.linear[i] {
			a, b := o.slope[i], o.bias[i]
			l, h := a*lo[i]+b, a*hi[i]+b
			if l > h {
				l, h = h, l
			}
			olo[i], ohi[i] = l, h
			continue
		}
		olo[i], ohi[i] = max(lo[i], 0), max(hi[i], 0)
	}
	return olo, ohi
}

func midRad(lo, hi []float64) (mid, rad []float64) {
	mid = make([]float64, len(lo))
	rad = make([]float64, len(lo))
	for i := range lo {
		mid[i] = (lo[i] + hi[i]) / 2
		rad[i] = (hi[i] - lo[i]) / 2
	}
	return
}

// fromMidRad turns centre ± radius into a box, widened by the rounding margin.
func fromMidRad(c, r []float64) ([]float64, []float64) {
	lo := make([]float64, len(c))
	hi := make([]float64, len(c))
	for i := range c {
		m := safety * (math.Abs(c[i]) + r[i])
		lo[i] = c[i] - r[i] - m
		hi[i] = c[i] + r[i] + m
	}
	return lo, hi
}
