// Package gemmsimd is the browser worker's WebAssembly SIMD matrix kernel: Module
// assembles a small wasm module (gen writes it to static/gemm.wasm) whose one function,
// block, computes the full 4×4 tiles of a packed block as core/blas's BlockKernel
// describes, bit-identical to the pure-Go kernel; on GOOS=js, Install hands it to
// core/blas when the worker's JavaScript has instantiated it on Go's memory.
package gemmsimd
