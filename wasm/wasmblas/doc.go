// Package wasmblas is the matrix product the browser worker installs in place of
// gonum's (blas64.Use): gonum's pure-Go Dgemm, which WebAssembly builds get for want of
// assembly, calls an axpy kernel per row and streams C through memory k times. Here
// op(A) and op(B) are packed into 4-row and 4-column panels and multiplied by a 4×4
// register-blocked kernel, so each loaded value feeds four products. Every other BLAS
// routine is gonum's. Sums run over k in order, so results are deterministic (and agree
// with gonum's to rounding).
package wasmblas
