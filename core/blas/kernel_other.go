//go:build !amd64 || purego

package blas

// hasAsm is false: there is no assembly kernel for this architecture or build.
const hasAsm = false

// asmKernel is never selected here; it names the pure-Go kernel so that the code
// that refers to it compiles.
var asmKernel = goKernel
