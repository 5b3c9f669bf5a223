package crown

import (
	"math/bits"
	"sync"

	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/blas64"
)

// The convolution products multiply a small weight matrix by a very wide one (one
// column per row and output position, up to millions). gonum streams every row of the
// wide result once per inner index, so the result is read and written from memory
// dozens of times; cutting the wide side into blocks that stay in cache makes the same
// product several times faster.
const colBlock = 256

// gemmWide computes C = op(A)·B for B and C with w columns, block by block.
// A is ar×ac (row-major); op(A) is its transpose when trans is set.
func gemmWide(trans bool, A []float64, ar, ac int, B []float64, C []float64, w int) {
	ta := blas.NoTrans
	m, k := ar, ac
	if trans {
		ta = blas.Trans
		m, k = ac, ar
	}
	a := blas64.General{Rows: ar, Cols: ac, Stride: ac, Data: A}
	for c0 := 0; c0 < w; c0 += colBlock {
		n := min(colBlock, w-c0)
		blas64.Gemm(ta, blas.NoTrans, 1, a,
			blas64.General{Rows: k, Cols: n, Stride: w, Data: B[c0:]},
			0, blas64.General{Rows: m, Cols: n, Stride: w, Data: C[c0:]})
	}
}

// scratch hands out reusable float64 buffers (column matrices, the row matrices of
// backward and adjoint passes), so that large temporary buffers are neither zeroed nor
// garbage-collected on every call. Contents are unspecified. Buffers are pooled by
// size class (capacities 2^c), so that a request finds a buffer that fits instead of
// replacing a smaller one: one pool for every size dropped most buffers, the passes'
// sizes varying from layer to layer.
var scratch [48]sync.Pool

func scratchClass(n int) int { return bits.Len(uint(max(n, 1) - 1)) }

func getScratch(n int) *[]float64 {
	c := scratchClass(n)
	if c >= len(scratch) {
		b := make([]float64, n)
		return &b
	}
	p, _ := scratch[c].Get().(*[]float64)
	if p == nil {
		b := make([]float64, n, 1<<c)
		return &b
	}
	*p = (*p)[:n]
	return p
}

func putScratch(p *[]float64) {
	c := scratchClass(cap(*p))
	if c < len(scratch) && cap(*p) == 1<<c {
		scratch[c].Put(p)
	}
}
