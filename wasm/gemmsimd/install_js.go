//go:build js && wasm

package gemmsimd

import (
	"math"
	"runtime"
	"sync/atomic"
	"syscall/js"
	"unsafe"

	"github.com/graftcert/graftcert/core/blas"
	gblas "gonum.org/v1/gonum/blas"
)

// Kernel names, as Install returns them and the worker reports them.
const (
	KernelSIMD = "wasm-simd128" // the module's block function
	KernelGo   = "go"           // core/blas's pure-Go kernel
)

// Global is the JavaScript global through which the worker hands over the module's
// block function, instantiated on Go's memory (static/worker.js sets it before Go
// starts).
const Global = "graftcertGemm"

// MinWork is the smallest block (tiles × depth) sent to the module. A call out of Go
// through syscall/js costs 1–2 µs, about what the Go kernel takes for a hundred tile
// steps. Measured with TestTiming under node (best of 7 rounds, whole Dgemm calls):
// the module loses below work 64 (0.5× at 4×4×4, 0.85× at 8×8×8), breaks even at
// 64, wins from about 128 (1.2× at 8×8×32 and 4×4×256, 1.5× at 16×16×16, 2.7× at
// 32×32×32, 3.7× at 100×100×100).
const MinWork = 128

var calls atomic.Int64

// installed is the kernel Install installed last (nil: none), for the tests.
var installed blas.BlockKernel

// Calls is the number of blocks the module has computed since the worker started.
func Calls() int64 { return calls.Load() }

// Install makes core/blas compute its blocks with the module's block function when
// globalThis.graftcertGemm is one, and returns the kernel now in use. It first
// checks the function on a small product against the Go kernel, bit for bit, and keeps
// the Go kernel if they differ or the call fails.
func Install() string {
	fn := js.Global().Get(Global)
	installed = nil
	if fn.Type() != js.TypeFunction {
		blas.SetBlockKernel(nil, 0)
		return KernelGo
	}
	kernel := func(kb, mt, nt int, a, b, c []float64, ldc int, alpha float64, accum bool) {
		// The module writes through raw addresses: never past what the slices cover.
		if kb < 1 || mt < 1 || nt < 1 || ldc < 4*nt || len(a) < 4*mt*kb || len(b) < 4*nt*kb || len(c) < (4*mt-1)*ldc+4*nt {
			panic("gemmsimd: block panels too short")
		}
		acc := 0
		if accum {
			acc = 1
		}
		// Go's garbage collector does not move heap objects, and these slices are on
		// the heap: core/blas passes them through a function value, which makes the
		// compiler allocate them there (a stack, which can move when it grows, never
		// holds them). KeepAlive keeps them reachable until the call returns; the
		// module calls nothing back, so no Go code runs meanwhile.
		fn.Invoke(kb, mt, nt, addr(a), addr(b), addr(c), ldc, alpha, acc)
		runtime.KeepAlive(a)
		runtime.KeepAlive(b)
		runtime.KeepAlive(c)
		calls.Add(1)
	}
	if !selfCheck(kernel) {
		blas.SetBlockKernel(nil, 0)
		return KernelGo
	}
	blas.SetBlockKernel(kernel, MinWork)
	installed = kernel
	return KernelSIMD
}

// addr is the linear-memory address of s[0], which is what a pointer is on js/wasm.
func addr(s []float64) int { return int(uintptr(unsafe.Pointer(&s[0]))) }

// selfCheck compares one product through f with the Go kernel's, bit for bit: 11×10
// by depth 7 with C accumulated, so full tiles, edge tiles and the accum store are
// all exercised.
func selfCheck(f blas.BlockKernel) (ok bool) {
	defer func() {
		if recover() != nil {
			ok = false
		}
		blas.SetBlockKernel(nil, 0)
	}()
	const m, n, k = 11, 10, 7
	a, b, c := make([]float64, m*k), make([]float64, k*n), make([]float64, m*n)
	for i := range a {
		a[i] = math.Sin(float64(i)) * 3
	}
	for i := range b {
		b[i] = math.Cos(float64(i)) / 7
	}
	for i := range c {
		c[i] = float64(i) / 13
	}
	var im blas.Implementation
	prod := func() []float64 {
		out := append([]float64(nil), c...)
		im.Dgemm(gblas.NoTrans, gblas.Trans, m, n, k, 0.75, a, k, b, k, 1.5, out, n)
		return out
	}
	blas.SetBlockKernel(nil, 0)
	want := prod()
	before := calls.Load()
	blas.SetBlockKernel(f, 1)
	got := prod()
	if calls.Load() == before {
		return false
	}
	for i := range want {
		if math.Float64bits(got[i]) != math.Float64bits(want[i]) {
			return false
		}
	}
	return true
}
