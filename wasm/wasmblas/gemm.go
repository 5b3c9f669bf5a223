package wasmblas

import (
	"sync"

	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/gonum"
)

// Implementation is gonum's BLAS with Dgemm replaced.
type Implementation struct {
	gonum.Implementation
}

// small is the size (m·n·k) under which packing does not pay and gonum's Dgemm runs.
const small = 4 * 4 * 16

var pool = sync.Pool{New: func() any { return new([]float64) }}

func buffer(n int) *[]float64 {
	p := pool.Get().(*[]float64)
	if cap(*p) < n {
		*p = make([]float64, n)
	}
	*p = (*p)[:n]
	return p
}

// Dgemm computes C = alpha·op(A)·op(B) + beta·C for row-major matrices, op(A) m×k and
// op(B) k×n, as blas.Float64Level3 specifies (gonum checks the arguments).
func (im Implementation) Dgemm(tA, tB blas.Transpose, m, n, k int, alpha float64, a []float64, lda int, b []float64, ldb int, beta float64, c []float64, ldc int) {
	if m*n*k < small || m <= 0 || n <= 0 || k <= 0 || alpha == 0 ||
		(tA != blas.NoTrans && tA != blas.Trans && tA != blas.ConjTrans) ||
		(tB != blas.NoTrans && tB != blas.Trans && tB != blas.ConjTrans) {
		im.Implementation.Dgemm(tA, tB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
		return
	}
	// Argument checks as gonum does them (it panics on bad input); run them on a
	// zero-sized problem would skip them, so check the slice lengths here.
	rowsA, colsA := m, k
	if tA != blas.NoTrans {
		rowsA, colsA = k, m
	}
	rowsB, colsB := k, n
	if tB != blas.NoTrans {
		rowsB, colsB = n, k
	}
	if lda < max(1, colsA) || ldb < max(1, colsB) || ldc < max(1, n) ||
		len(a) < lda*(rowsA-1)+colsA || len(b) < ldb*(rowsB-1)+colsB || len(c) < ldc*(m-1)+n {
		im.Implementation.Dgemm(tA, tB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
		return
	}
	// C = beta·C.
	for i := 0; i < m; i++ {
		row := c[i*ldc : i*ldc+n]
		switch beta {
		case 1:
		case 0:
			clear(row)
		default:
			for j := range row {
				row[j] *= beta
			}
		}
	}
	// Pack op(B) into panels of 4 columns: bp[(jb·k + p)·4 + jj] = op(B)[p, 4·jb+jj].
	nb := (n + 3) / 4
	bpp := buffer(nb * 4 * k)
	bp := *bpp
	for jb := 0; jb < nb; jb++ {
		panel := bp[jb*4*k : (jb+1)*4*k]
		for jj := 0; jj < 4; jj++ {
			j := 4*jb + jj
			if j >= n {
				for p := 0; p < k; p++ {
					panel[4*p+jj] = 0
				}
				continue
			}
			if tB == blas.NoTrans {
				for p := 0; p < k; p++ {
					panel[4*p+jj] = b[p*ldb+j]
				}
			} else {
				row := b[j*ldb : j*ldb+k]
				for p, v := range row {
					panel[4*p+jj] = v
				}
			}
		}
	}
	app := buffer(4 * k)
	ap := *app
	for i := 0; i < m; i += 4 {
		// Pack rows i..i+3 of op(A): ap[p·4 + ii] = op(A)[i+ii, p].
		for ii := 0; ii < 4; ii++ {
			r := i + ii
			if r >= m {
				for p := 0; p < k; p++ {
					ap[4*p+ii] = 0
				}
				continue
			}
			if tA == blas.NoTrans {
				row := a[r*lda : r*lda+k]
				for p, v := range row {
					ap[4*p+ii] = v
				}
			} else {
				for p := 0; p < k; p++ {
					ap[4*p+ii] = a[p*lda+r]
				}
			}
		}
		for jb := 0; jb < nb; jb++ {
			var acc [16]float64
			kernel(&acc, ap, bp[jb*4*k:(jb+1)*4*k], k)
			for ii := 0; ii < 4 && i+ii < m; ii++ {
				crow := c[(i+ii)*ldc:]
				for jj := 0; jj < 4 && 4*jb+jj < n; jj++ {
					crow[4*jb+jj] += alpha * acc[4*ii+jj]
				}
			}
		}
	}
	pool.Put(app)
	pool.Put(bpp)
}

// kernel accumulates the 4×4 block Σ_p ap[p,·] ⊗ bp[p,·] into acc (row-major 4×4).
func kernel(acc *[16]float64, ap, bp []float64, k int) {
	ap = ap[:4*k]
	bp = bp[:4*k]
	var c00, c01, c02, c03, c10, c11, c12, c13, c20, c21, c22, c23, c30, c31, c32, c33 float64
	for q := 0; q+3 < len(ap) && q+3 < len(bp); q += 4 {
		a0, a1, a2, a3 := ap[q], ap[q+1], ap[q+2], ap[q+3]
		b0, b1, b2, b3 := bp[q], bp[q+1], bp[q+2], bp[q+3]
		c00 += a0 * b0
		c01 += a0 * b1
		c02 += a0 * b2
		c03 += a0 * b3
		c10 += a1 * b0
		c11 += a1 * b1
		c12 += a1 * b2
		c13 += a1 * b3
		c20 += a2 * b0
		c21 += a2 * b1
		c22 += a2 * b2
		c23 += a2 * b3
		c30 += a3 * b0
		c31 += a3 * b1
		c32 += a3 * b2
		c33 += a3 * b3
	}
	*acc = [16]float64{c00, c01, c02, c03, c10, c11, c12, c13, c20, c21, c22, c23, c30, c31, c32, c33}
}
