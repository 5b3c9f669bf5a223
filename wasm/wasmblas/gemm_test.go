package wasmblas

import (
	"math"
	"math/rand/v2"
	"testing"

	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/gonum"
)

// Dgemm agrees with a plain triple loop on every transposition, odd sizes (edges of
// the 4×4 blocks), strides larger than the rows, and the alpha/beta special cases.
func TestDgemmMatchesNaive(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	fill := func(n int) []float64 {
		v := make([]float64, n)
		for i := range v {
			v[i] = rng.Float64()*2 - 1
		}
		return v
	}
	var im Implementation
	for _, sz := range [][3]int{{1, 1, 1}, {5, 7, 3}, {4, 4, 64}, {13, 9, 17}, {33, 65, 31}, {100, 784, 10}, {3, 200, 100}} {
		m, n, k := sz[0], sz[1], sz[2]
		for _, tA := range []blas.Transpose{blas.NoTrans, blas.Trans} {
			for _, tB := range []blas.Transpose{blas.NoTrans, blas.Trans} {
				for _, ab := range [][2]float64{{1, 0}, {1, 1}, {-0.5, 2}, {0, 0.5}} {
					alpha, beta := ab[0], ab[1]
					ra, ca := m, k
					if tA == blas.Trans {
						ra, ca = k, m
					}
					rb, cb := k, n
					if tB == blas.Trans {
						rb, cb = n, k
					}
					lda, ldb, ldc := ca+3, cb+1, n+2
					a, b, c := fill(ra*lda), fill(rb*ldb), fill(m*ldc)
					want := append([]float64(nil), c...)
					for i := 0; i < m; i++ {
						for j := 0; j < n; j++ {
							s := 0.0
							for p := 0; p < k; p++ {
								var av, bv float64
								if tA == blas.Trans {
									av = a[p*lda+i]
								} else {
									av = a[i*lda+p]
								}
								if tB == blas.Trans {
									bv = b[j*ldb+p]
								} else {
									bv = b[p*ldb+j]
								}
								s += av * bv
							}
							want[i*ldc+j] = alpha*s + beta*want[i*ldc+j]
						}
					}
					im.Dgemm(tA, tB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
					for i := 0; i < m; i++ {
						for j := 0; j < ldc; j++ {
							g, w := c[i*ldc+j], want[i*ldc+j]
							if j >= n {
								continue // padding: untouched by both
							}
							if math.Abs(g-w) > 1e-12*(1+math.Abs(w)) {
								t.Fatalf("%v %v %dx%dx%d alpha %v beta %v: C[%d,%d] = %v, want %v", tA, tB, m, n, k, alpha, beta, i, j, g, w)
							}
						}
					}
				}
			}
		}
	}
}

func benchGemm(b *testing.B, impl interface {
	Dgemm(blas.Transpose, blas.Transpose, int, int, int, float64, []float64, int, []float64, int, float64, []float64, int)
}, tA, tB blas.Transpose, m, n, k int) {
	x := make([]float64, m*k)
	y := make([]float64, k*n)
	z := make([]float64, m*n)
	for i := range x {
		x[i] = float64(i%7) - 3
	}
	for i := range y {
		y[i] = float64(i%5) - 2
	}
	lda, ldb := k, n
	if tA == blas.Trans {
		lda = m
	}
	if tB == blas.Trans {
		ldb = k
	}
	b.ResetTimer()
	for b.Loop() {
		impl.Dgemm(tA, tB, m, n, k, 1, x, lda, y, ldb, 0, z, n)
	}
}

// The shapes of CROWN's backward pass through mnist_6_100's first layer (rows × 100
// by 100 × 784) and a hidden layer.
func BenchmarkDgemm(b *testing.B) {
	for _, c := range []struct {
		name    string
		m, n, k int
	}{{"200x784x100", 200, 784, 100}, {"200x100x100", 200, 100, 100}} {
		b.Run("gonum/"+c.name, func(b *testing.B) { benchGemm(b, gonum.Implementation{}, blas.NoTrans, blas.NoTrans, c.m, c.n, c.k) })
		b.Run("wasmblas/"+c.name, func(b *testing.B) { benchGemm(b, Implementation{}, blas.NoTrans, blas.NoTrans, c.m, c.n, c.k) })
	}
}
