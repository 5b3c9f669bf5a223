package train

import (
	"gonum.org/v1/gonum/blas/blas64"

	"github.com/graftcert/graftcert/core/nn"
)

// The convolutions run as matrix products over a patch matrix ("im2col") laid out
// K × (n·HW): row k = (ic, ky, kx) in the weight's own order, column s·HW + p for sample
// s and output position p. One product then covers the whole chunk of samples, and the
// weight gradient is a single product with the same matrix.

func convK(c *nn.Conv2d) int  { return c.InC * c.KH * c.KW }
func convHW(c *nn.Conv2d) int { return c.OutH * c.OutW }

// col2im adds the patch-matrix gradient dcols (K × n·HW) into dx (n inputs); dx must be
// zeroed by the caller.
func col2im(c *nn.Conv2d, dcols []float64, n int, dx []float64) {
	hw := convHW(c)
	ncol := n * hw
	inHW := c.InH * c.InW
	is := c.InC * inHW
	for ic := 0; ic < c.InC; ic++ {
		for ky := 0; ky < c.KH; ky++ {
			for kx := 0; kx < c.KW; kx++ {
				k := (ic*c.KH+ky)*c.KW + kx
				row := dcols[k*ncol : (k+1)*ncol]
				lo, hi := nn.ValidRange(c.OutW, c.SW, kx*c.DW-c.PL, c.InW)
				for s := 0; s < n; s++ {
					dst := dx[s*is+ic*inHW : s*is+(ic+1)*inHW]
					src := row[s*hw : (s+1)*hw]
					for oy := 0; oy < c.OutH; oy++ {
						iy := oy*c.SH - c.PT + ky*c.DH
						if iy < 0 || iy >= c.InH {
							continue
						}
						d := dst[iy*c.InW : (iy+1)*c.InW]
						srow := src[oy*c.OutW : (oy+1)*c.OutW]
						ix := lo*c.SW + kx*c.DW - c.PL
						for ox := lo; ox < hi; ox++ {
							d[ix] += srow[ox]
							ix += c.SW
						}
					}
				}
			}
		}
	}
}

// convForward computes n outputs of c from the patch matrix cols (filled here from in);
// tmp is scratch of OutC·n·HW values. With bias false the bias is left out (the tangent
// pass of GradAlign differentiates the linear part only).
func convForward(c *nn.Conv2d, in []float64, n int, out, cols, tmp []float64, bias bool) {
	hw, k := convHW(c), convK(c)
	ncol := n * hw
	c.Im2Col(in, n, cols)
	gemm(false, false, 1,
		blas64.General{Rows: c.OutC, Cols: k, Stride: k, Data: c.W},
		blas64.General{Rows: k, Cols: ncol, Stride: ncol, Data: cols},
		0, blas64.General{Rows: c.OutC, Cols: ncol, Stride: ncol, Data: tmp})
	os := c.OutC * hw
	for o := 0; o < c.OutC; o++ {
		b := 0.0
		if bias && c.B != nil {
			b = c.B[o]
		}
		src := tmp[o*ncol : (o+1)*ncol]
		for s := 0; s < n; s++ {
			dst := out[s*os+o*hw : s*os+(o+1)*hw]
			for p, v := range src[s*hw : (s+1)*hw] {
				dst[p] = v + b
			}
		}
	}
}

// convBackward accumulates the weight and bias gradients (gW, gB may be nil) and, when dx
// is non-nil, writes the input gradient. cols is the forward patch matrix of this pass's
// input; dyr (OutC·n·HW) and dcols (K·n·HW) are scratch.
func convBackward(c *nn.Conv2d, dy []float64, n int, cols, gW, gB, dx, dyr, dcols []float64) {
	hw, k := convHW(c), convK(c)
	ncol := n * hw
	os := c.OutC * hw
	for o := 0; o < c.OutC; o++ {
		dst := dyr[o*ncol : (o+1)*ncol]
		for s := 0; s < n; s++ {
			copy(dst[s*hw:(s+1)*hw], dy[s*os+o*hw:s*os+(o+1)*hw])
		}
	}
	dYr := blas64.General{Rows: c.OutC, Cols: ncol, Stride: ncol, Data: dyr}
	if gW != nil {
		gemm(false, true, 1, dYr,
			blas64.General{Rows: k, Cols: ncol, Stride: ncol, Data: cols},
			1, blas64.General{Rows: c.OutC, Cols: k, Stride: k, Data: gW})
	}
	if gB != nil {
		for o := 0; o < c.OutC; o++ {
			s := 0.0
			for _, v := range dyr[o*ncol : (o+1)*ncol] {
				s += v
			}
			gB[o] += s
		}
	}
	if dx != nil {
		gemm(true, false, 1,
			blas64.General{Rows: c.OutC, Cols: k, Stride: k, Data: c.W}, dYr,
			0, blas64.General{Rows: k, Cols: ncol, Stride: ncol, Data: dcols})
		clear(dx)
		col2im(c, dcols, n, dx)
	}
}
