package train

import (
	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/blas64"
)

// gemm computes C = alpha·op(A)·op(B) + beta·C like blas64.Gemm, but always on the calling
// goroutine: gonum splits products of four or more 64×64 blocks of C over GOMAXPROCS
// goroutines, which costs allocations and goroutine switches on every call and
// oversubscribes the cores when the trainer's own workers already share them. Cutting C
// into 64×192 tiles keeps every call below gonum's threshold. Each element of C still
// sums its products in ascending order of the inner index, so the result is bit-identical
// to gonum's either way.
func gemm(tA, tB bool, alpha float64, a, b blas64.General, beta float64, c blas64.General) {
	const ti, tj = 64, 192
	if c.Rows <= ti && c.Cols <= tj {
		blas64.Gemm(tr(tA), tr(tB), alpha, a, b, beta, c)
		return
	}
	k := a.Cols
	if tA {
		k = a.Rows
	}
	for i := 0; i < c.Rows; i += ti {
		m := min(ti, c.Rows-i)
		var as blas64.General
		if tA { // A is k×m: columns i..i+m
			as = blas64.General{Rows: k, Cols: m, Stride: a.Stride, Data: a.Data[i:]}
		} else {
			as = blas64.General{Rows: m, Cols: k, Stride: a.Stride, Data: a.Data[i*a.Stride:]}
		}
		for j := 0; j < c.Cols; j += tj {
			n := min(tj, c.Cols-j)
			var bs blas64.General
			if tB { // B is n×k: rows j..j+n
				bs = blas64.General{Rows: n, Cols: k, Stride: b.Stride, Data: b.Data[j*b.Stride:]}
			} else {
				bs = blas64.General{Rows: k, Cols: n, Stride: b.Stride, Data: b.Data[j:]}
			}
			cs := blas64.General{Rows: m, Cols: n, Stride: c.Stride, Data: c.Data[i*c.Stride+j:]}
			blas64.Gemm(tr(tA), tr(tB), alpha, as, bs, beta, cs)
		}
	}
}

func tr(t bool) blas.Transpose {
	if t {
		return blas.Trans
	}
	return blas.NoTrans
}
