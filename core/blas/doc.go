// Package blas is the matrix product graftcert installs in gonum's blas64: Dgemm packed
// and register-blocked, with an AVX2/FMA kernel in assembly on amd64 and a pure-Go
// kernel elsewhere. Every other BLAS routine is gonum's. core/nn installs it (Install)
// in its init, so every command, test and the browser worker use it.
//
// gonum's pure-Go Dgemm (its assembly covers only axpy and dot) streams C through
// memory once per inner index; here op(A) and op(B) are cut into cache-sized blocks,
// packed into panels, and multiplied by a micro-kernel that keeps a whole tile of C in
// registers (6×8 with twelve YMM accumulators on amd64, 4×4 in Go), so each loaded
// value feeds several products. Without the assembly kernel (no AVX2/FMA, or the
// purego build tag) gonum's Dgemm runs, except on WebAssembly, where the pure-Go
// kernel beats it.
//
// Results are deterministic: every element of C sums its products over k in ascending
// order, in blocks of k that depend on k alone, by the same kernel wherever the element
// lies (edge tiles go through a zero-padded full tile), so they depend neither on how
// C is cut — over this package's goroutines, or by a caller that splits its rows or
// columns over several calls — nor on GOMAXPROCS. Results agree with gonum's to
// rounding, not bit for bit: the assembly kernel uses fused multiply-adds.
//
// SetBlockKernel lets an environment replace the pure-Go kernel for whole blocks of
// tiles (the browser worker installs a WebAssembly SIMD one). Such a kernel must sum
// exactly as the Go kernel does, so results stay bit-identical with it or without it.
package blas
