package train

import (
	gblas "github.com/graftcert/graftcert/core/blas"
	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/blas64"
)

// gemm computes C = alpha·op(A)·op(B) + beta·C like blas64.Gemm, but always on the calling
// goroutine (core/blas's Serial): a parallel product would oversubscribe the cores that
// the trainer's own workers already share, and cost goroutine switches on every call.
// Values are bit-identical to the parallel product's.
func gemm(tA, tB bool, alpha float64, a, b blas64.General, beta float64, c blas64.General) {
	k := a.Cols
	if tA {
		k = a.Rows
	}
	serial.Dgemm(tr(tA), tr(tB), c.Rows, c.Cols, k, alpha, a.Data, a.Stride, b.Data, b.Stride, beta, c.Data, c.Stride)
}

var serial gblas.Serial

func tr(t bool) blas.Transpose {
	if t {
		return blas.Trans
	}
	return blas.NoTrans
}
