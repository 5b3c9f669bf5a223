package blas

// goKernel is the pure-Go kernel: 4×4, sixteen accumulators, which the Go compiler
// keeps in registers on amd64 and in locals on wasm.
var goKernel = kernel{mr: 4, nr: 4, run: kernGo}

// kernGo computes one 4×4 tile from packed panels (bstride must be 4).
func kernGo(k int, a, b []float64, bstride int, c []float64, ldc int, alpha float64, accum bool) {
	if bstride != 4 {
		panic("blas: kernGo needs packed B panels")
	}
	a = a[:4*k]
	b = b[:4*k]
	c = c[:3*ldc+4]
	var c00, c01, c02, c03, c10, c11, c12, c13, c20, c21, c22, c23, c30, c31, c32, c33 float64
	for q := 0; q+3 < len(a) && q+3 < len(b); q += 4 {
		a0, a1, a2, a3 := a[q], a[q+1], a[q+2], a[q+3]
		b0, b1, b2, b3 := b[q], b[q+1], b[q+2], b[q+3]
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
	store4(c[0:4], c00, c01, c02, c03, alpha, accum)
	store4(c[ldc:ldc+4], c10, c11, c12, c13, alpha, accum)
	store4(c[2*ldc:2*ldc+4], c20, c21, c22, c23, alpha, accum)
	store4(c[3*ldc:3*ldc+4], c30, c31, c32, c33, alpha, accum)
}

func store4(c []float64, v0, v1, v2, v3, alpha float64, accum bool) {
	c = c[:4]
	if accum {
		c[0] += alpha * v0
		c[1] += alpha * v1
		c[2] += alpha * v2
		c[3] += alpha * v3
		return
	}
	c[0] = alpha * v0
	c[1] = alpha * v1
	c[2] = alpha * v2
	c[3] = alpha * v3
}
