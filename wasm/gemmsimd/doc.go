// Package gemmsimd is the browser worker's WebAssembly SIMD kernels: Module assembles
// a small wasm module (gen writes it to static/gemm.wasm) whose functions replace
// core's hottest Go loops on js/wasm, each bit-identical to the loop it replaces:
// block, the full 4×4 tiles of a packed block (core/blas's BlockKernel), pack, the
// packing of full panels (blas.PackKernel), and for core/crown concretize, relax, adam,
// im2col, gather and interleave (crown.ConcretizeKernel, RelaxKernel, AdamKernel,
// Im2colKernel, GatherKernel and InterleaveKernel). On GOOS=js, Install hands each to
// its package when the worker's JavaScript has instantiated the module on Go's memory
// and the function passes a self-check against the Go loop.
package gemmsimd
