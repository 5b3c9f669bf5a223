//go:build amd64 && !purego

package blas

import "golang.org/x/sys/cpu"

// hasAsm reports that the CPU (and the OS, for the YMM state) supports the AVX2/FMA
// kernel.
var hasAsm = cpu.X86.HasAVX2 && cpu.X86.HasFMA

// asmKernel is the AVX2/FMA kernel: a 6×8 tile of C in twelve YMM registers; each step
// loads two vectors of B, broadcasts six values of A and issues twelve FMAs.
var asmKernel = kernel{mr: 6, nr: 8, direct: true, run: kernAsm}

// kernAsm checks the panels cover what kern6x8 reads, then calls it.
func kernAsm(k int, a, b []float64, bstride int, c []float64, ldc int, alpha float64, accum bool) {
	if k <= 0 || bstride < 8 || ldc < 8 || len(a) < 6*k || len(b) < (k-1)*bstride+8 || len(c) < 5*ldc+8 {
		panic("blas: kern6x8 panels too short")
	}
	acc := 0
	if accum {
		acc = 1
	}
	kern6x8(k, &a[0], &b[0], bstride, &c[0], ldc, alpha, acc)
}

// kern6x8 sets the 6×8 tile at c (row stride ldc) to alpha·Σ_p a[6p:6p+6]⊗b[p·bstride:p·bstride+8],
// plus its old value when accum is 1. Each element sums its products in order of p with
// fused multiply-adds.
//
//go:noescape
func kern6x8(k int, a, b *float64, bstride int, c *float64, ldc int, alpha float64, accum int)
