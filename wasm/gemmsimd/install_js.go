//go:build js && wasm

package gemmsimd

import (
	"math"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall/js"
	"unsafe"

	"github.com/graftcert/graftcert/core/blas"
	"github.com/graftcert/graftcert/core/crown"
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

// ConcretizeGlobal is the JavaScript global through which the worker hands over the
// module's concretize function (static/worker.js sets it beside Global).
const ConcretizeGlobal = "graftcertConcretize"

// MinConcretize is the smallest batch (rows × row length) sent to the module's
// concretize. Measured with TestConcretizeTiming under node (best of 7 rounds, whole
// crown.Concretize calls): the module loses at 128 elements (0.53×) and 256 (0.79×),
// wins from 512 (1.5× at 4×128, 2.1× at 1024, 3× at 8×784, 4× from 18×784 on, where
// it takes 0.6 ns an element against the Go loop's 2.4).
const MinConcretize = 512

// RelaxGlobal is the JavaScript global through which the worker hands over the
// module's relax function (static/worker.js sets it beside Global).
const RelaxGlobal = "graftcertRelax"

// MinRelax is the smallest batch (rows × row length) sent to the module's relax.
// Measured with TestRelaxTiming under node (best of 7 rounds, whole crown.RelaxRows
// calls, random tables): the module wins from the smallest batch tried (1.3× at 2×64,
// 2× at 2×128, 2.8× at 4×128, 4× at 20×100, 6× at 200×100, 2.5 ns an element).
const MinRelax = 128

// PackGlobal is the JavaScript global through which the worker hands over the
// module's pack function (static/worker.js sets it beside Global).
const PackGlobal = "graftcertPack"

// MinPack is the smallest run of full panels (values) the module packs. Measured with
// TestPackTiming under node (whole Dgemm calls with every run packed by the module,
// best of 7 rounds): products whose operands hold 64–256 values lose or break even
// (0.4–0.95× at 4×4×16, 8×8×8, 4×16×16), from 256 they gain (1.1× at 8×8×32 and
// 16×16×16, 1.2–1.3× at CROWN's 40×100×50 and 40×784×50, 1.3–1.4× at 16×2000×48).
const MinPack = 256

// AdamGlobal is the JavaScript global through which the worker hands over the
// module's adam function (static/worker.js sets it beside Global).
const AdamGlobal = "graftcertAdam"

// MinAdam is the smallest α matrix (values) the module steps. Measured with
// TestAdamTiming under node (best of 7 rounds): the module loses up to 64 values
// (0.16× at 8, 0.68× at 64: the call, with its 13 arguments, costs about 0.7 µs),
// breaks even at 128 (1.1×) and wins above (2.7× at 1024, 3.6× at 20000, 2.7 ns a
// value against Go's 9.5).
const MinAdam = 128

// Im2colGlobal is the JavaScript global through which the worker hands over the
// module's im2col function (static/worker.js sets it beside Global).
const Im2colGlobal = "graftcertIm2col"

// MinIm2col is the smallest column matrix (values) the module lays out. Measured with
// TestIm2colTiming under node (best of 7 rounds, against crown.Im2col's Go loop): the
// module loses at 64 values (0.7×), breaks even at 128 and wins from there (1.65× at
// 432, 2.2–2.8× on the shared models' second convolutions, 6400–73728 values).
const MinIm2col = 128

// GatherGlobal and InterleaveGlobal are the JavaScript globals through which the
// worker hands over the module's gather and interleave functions (static/worker.js
// sets them beside Global).
const (
	GatherGlobal     = "graftcertGather"
	InterleaveGlobal = "graftcertInterleave"
)

// MinConv is the smallest chunk (rows × input size) whose transposed convolution the
// module gathers and interleaves. Measured with TestConvTiming under node (best of 7
// rounds, gathers of random plans): the module loses at 8 and 32 values (0.3×, 0.6×),
// wins from 128 (1.8×; 4.6× at 12288, 6–7.5× at cifar_conv_small's 28800–115200).
const MinConv = 128

// SparseGlobal is the JavaScript global through which the worker hands over the
// module's sparse function (static/worker.js sets it beside Global).
const SparseGlobal = "graftcertSparse"

// MinSparse is the smallest sparse product (entries) sent to the module: one call per
// block of eight rows and layer, each of thousands of entries on the shared models
// (a call costs about what the Go loop takes for a dozen entries).
const MinSparse = 64

var calls, concretizeCalls, relaxCalls, packCalls, adamCalls, im2colCalls, convCalls, sparseCalls atomic.Int64

// installedSparse is the sparse kernel Install installed last (nil: none).
var installedSparse crown.SparseKernel

// SparseCalls is the number of sparse products the module has computed since the
// worker started.
func SparseCalls() int64 { return sparseCalls.Load() }

// installSparse hooks the module's sparse function into core/crown, or removes the
// hook when there is none or it fails the self-check.
func installSparse() {
	fn := js.Global().Get(SparseGlobal)
	installedSparse = nil
	crown.SetSparseKernel(nil, 0)
	if fn.Type() != js.TypeFunction {
		return
	}
	kernel := func(nout int, ptr, src []int32, w, x, y []float64) {
		// The module reads and writes through raw addresses: never past the slices.
		if nout < 1 || len(ptr) < nout+1 || len(y) < 8*nout || int(ptr[nout]) > len(src) || len(w) < len(src) || ptr[0] < 0 {
			panic("gemmsimd: sparse slices too short")
		}
		for k := 0; k < nout; k++ {
			if ptr[k+1] < ptr[k] {
				panic("gemmsimd: sparse entries out of order")
			}
		}
		sparseCheckIndices(src[:ptr[nout]], len(x)/8)
		s0, w0 := 0, 0
		if len(src) > 0 {
			s0, w0 = addr32(src), addr(w)
		}
		// As in installBlock's kernel: heap slices, which do not move, kept reachable.
		fn.Invoke(nout, addr32(ptr), s0, w0, addr(x), addr(y))
		runtime.KeepAlive(ptr)
		runtime.KeepAlive(src)
		runtime.KeepAlive(w)
		runtime.KeepAlive(x)
		runtime.KeepAlive(y)
		sparseCalls.Add(1)
	}
	if !sparseSelfCheck(kernel) {
		return
	}
	crown.SetSparseKernel(kernel, MinSparse)
	installedSparse = kernel
}

// ColRelaxGlobal and ColConcGlobal are the JavaScript globals through which the
// worker hands over the module's colrelax and colconc functions (static/worker.js sets
// them beside Global).
const (
	ColRelaxGlobal = "graftcertColRelax"
	ColConcGlobal  = "graftcertColConc"
)

var columnCalls atomic.Int64

// installedColRelax and installedColConc are the column kernels Install installed last
// (nil: none).
var (
	installedColRelax crown.ColumnRelaxKernel
	installedColConc  crown.ColumnConcretizeKernel
)

// ColumnCalls is the number of chain steps the module has run since the worker
// started.
func ColumnCalls() int64 { return columnCalls.Load() }

// installColumn hooks the module's colrelax and colconc functions into core/crown, or
// removes the hooks when either is missing or fails the self-check.
func installColumn() {
	fr, fc := js.Global().Get(ColRelaxGlobal), js.Global().Get(ColConcGlobal)
	installedColRelax, installedColConc = nil, nil
	crown.SetColumnKernels(nil, nil)
	if fr.Type() != js.TypeFunction || fc.Type() != js.TypeFunction {
		return
	}
	relax := func(nout int, lines, y, rbm []float64) {
		// The module reads and writes through raw addresses: never past the slices.
		if nout < 1 || len(lines) < 8*nout || len(y) < 8*nout || len(rbm) < 16 {
			panic("gemmsimd: colrelax slices too short")
		}
		fr.Invoke(nout, addr(lines), addr(y), addr(rbm))
		runtime.KeepAlive(lines)
		runtime.KeepAlive(y)
		runtime.KeepAlive(rbm)
		columnCalls.Add(1)
	}
	conc := func(nout int, y, mid, rad, mx, out []float64) {
		if nout < 1 || len(y) < 8*nout || len(mid) < nout || len(rad) < nout || len(mx) < nout || len(out) < 24 {
			panic("gemmsimd: colconc slices too short")
		}
		fc.Invoke(nout, addr(y), addr(mid), addr(rad), addr(mx), addr(out))
		runtime.KeepAlive(y)
		runtime.KeepAlive(mid)
		runtime.KeepAlive(rad)
		runtime.KeepAlive(mx)
		runtime.KeepAlive(out)
		columnCalls.Add(1)
	}
	if !columnSelfCheck(relax, conc) {
		return
	}
	crown.SetColumnKernels(relax, conc)
	installedColRelax, installedColConc = relax, conc
}

// columnSelfCheck runs both steps on three neurons (inactive, active, unstable) with
// a ±0, a negative and an infinite value among the eight rows, through the kernels and
// through core/crown's loops, bit for bit.
func columnSelfCheck(relax crown.ColumnRelaxKernel, conc crown.ColumnConcretizeKernel) (ok bool) {
	defer func() {
		if recover() != nil {
			ok = false
		}
	}()
	ones := math.Float64frombits(^uint64(0))
	lines := []float64{
		0, 0, 0, 0, 0, 0, 0, 0, // inactive
		1, 1, 0, 0, 0, 0, ones, 0, // active
		0, 0.4, 0, 1.3, 0, ones, ones, 0, // unstable
	}
	y := make([]float64, 24)
	for i := range y {
		y[i] = math.Sin(float64(i)*1.9) * 2
	}
	y[3], y[12], y[17] = math.Copysign(0, -1), 0, math.Inf(-1)
	mid, rad, mx := []float64{0.5, -1, 2}, []float64{0.1, 0.2, 0.3}, []float64{0.6, 1.2, 2.3}
	var wantR [16]float64
	var wantC [24]float64
	for i := range wantR {
		wantR[i] = float64(i) + 0.5
	}
	for i := range wantC {
		wantC[i] = float64(i) - 3.25
	}
	gotR, gotC := wantR, wantC
	yw, yg := append([]float64(nil), y...), append([]float64(nil), y...)
	crown.ColumnRelax(3, lines, yw, &wantR)
	relax(3, lines, yg, gotR[:])
	crown.ColumnConcretize(3, yw, mid, rad, mx, &wantC)
	conc(3, yg, mid, rad, mx, gotC[:])
	same := func(a, b []float64) bool {
		for i := range a {
			if math.Float64bits(a[i]) != math.Float64bits(b[i]) {
				return false
			}
		}
		return true
	}
	return same(yg, yw) && same(gotR[:], wantR[:]) && same(gotC[:], wantC[:])
}

// sparseChecked holds the index lists sparseCheckIndices last found in range, with
// the bound each was checked against: core/crown sends the same few lists (one per
// convolution of a bound) for every block of rows, thousands of entries each time, and
// checking them on every call cost as much as the module's product.
var sparseChecked struct {
	sync.Mutex
	lists [8]checkedIndices
	next  int
}

type checkedIndices struct {
	first *int32
	n     int
	limit int
}

// sparseCheckIndices panics unless every index is in [0, limit), skipping the check
// for a list it passed recently with an equal or larger limit. The lists are
// core/crown's own and are not written after they are built.
func sparseCheckIndices(src []int32, limit int) {
	if len(src) == 0 {
		return
	}
	c := &sparseChecked
	c.Lock()
	defer c.Unlock()
	for _, l := range c.lists {
		if l.first == &src[0] && l.n == len(src) && limit >= l.limit {
			return
		}
	}
	for _, i := range src {
		if i < 0 || int(i) >= limit {
			panic("gemmsimd: sparse index out of range")
		}
	}
	c.lists[c.next] = checkedIndices{first: &src[0], n: len(src), limit: limit}
	c.next = (c.next + 1) % len(c.lists)
}

// sparseSelfCheck compares a product of four neurons (no entry, one, an odd and an
// even number, a −0 sum among them) through f with crown.SparseProduct, bit for bit.
func sparseSelfCheck(f crown.SparseKernel) (ok bool) {
	defer func() {
		if recover() != nil {
			ok = false
		}
	}()
	ptr := []int32{0, 0, 1, 4, 8}
	src := []int32{2, 0, 1, 2, 1, 1, 0, 2}
	w := []float64{0.5, -1.25, 3, math.Copysign(0, -1), 2, -0.75, 1e-3, 7}
	x := make([]float64, 24)
	for i := range x {
		x[i] = math.Sin(float64(i)*1.3) * 4
	}
	x[3] = math.Copysign(0, -1)
	want, got := make([]float64, 32), make([]float64, 32)
	crown.SparseProduct(4, ptr, src, w, x, want)
	f(4, ptr, src, w, x, got)
	for i := range want {
		if math.Float64bits(got[i]) != math.Float64bits(want[i]) {
			return false
		}
	}
	return true
}

// installedGather and installedInterleave are the kernels Install installed last (nil:
// none).
var (
	installedGather     crown.GatherKernel
	installedInterleave crown.InterleaveKernel
)

// installedIm2col is the im2col kernel Install installed last (nil: none).
var installedIm2col crown.Im2colKernel

// installedAdam is the Adam kernel Install installed last (nil: none).
var installedAdam crown.AdamKernel

// installedPack is the pack kernel Install installed last (nil: none).
var installedPack blas.PackKernel

// installedRelax is the relax kernel Install installed last (nil: none).
var installedRelax crown.RelaxKernel

// installedConcretize is the concretize kernel Install installed last (nil: none).
var installedConcretize crown.ConcretizeKernel

// installed is the kernel Install installed last (nil: none), for the tests.
var installed blas.BlockKernel

// Calls is the number of blocks the module has computed since the worker started.
func Calls() int64 { return calls.Load() }

// ConcretizeCalls is the number of row batches the module has concretised since the
// worker started.
func ConcretizeCalls() int64 { return concretizeCalls.Load() }

// Install makes core/blas compute its blocks with the module's block function when
// globalThis.graftcertGemm is one, and returns the kernel now in use. It first
// checks the function on a small product against the Go kernel, bit for bit, and keeps
// the Go kernel if they differ or the call fails. Likewise, core/blas packs its panels
// with the module's pack function, and core/crown concretises and relaxes its row
// batches, steps α-CROWN's optimiser, lays out column matrices and gathers transposed
// convolutions with its concretize, relax, adam, im2col, gather and interleave
// functions, when the globals below are functions that agree with the Go loops bit for
// bit.
func Install() string {
	installConcretize()
	installRelax()
	installPack()
	installAdam()
	installIm2col()
	installConv()
	installSparse()
	installColumn()
	return installBlock()
}

// ConvCalls is the number of gathers and interleaves the module has run since the
// worker started.
func ConvCalls() int64 { return convCalls.Load() }

// addr32 is the linear-memory address of s[0].
func addr32(s []int32) int { return int(uintptr(unsafe.Pointer(&s[0]))) }

// Im2colCalls is the number of column matrices the module has laid out since the
// worker started.
func Im2colCalls() int64 { return im2colCalls.Load() }

// AdamCalls is the number of α matrices the module has stepped since the worker
// started.
func AdamCalls() int64 { return adamCalls.Load() }

// PackCalls is the number of panel runs the module has packed since the worker
// started.
func PackCalls() int64 { return packCalls.Load() }

// RelaxCalls is the number of row batches the module has relaxed since the worker
// started.
func RelaxCalls() int64 { return relaxCalls.Load() }

func installBlock() string {
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

// installConcretize hooks the module's concretize function into core/crown, or
// removes the hook when there is none or it fails the self-check.
func installConcretize() {
	fn := js.Global().Get(ConcretizeGlobal)
	installedConcretize = nil
	crown.SetConcretizeKernel(nil, 0)
	if fn.Type() != js.TypeFunction {
		return
	}
	kernel := func(n, size int, a, mid, rad, mx, bias, mag []float64, safety float64, lb []float64) {
		// The module reads and writes through raw addresses: never past the slices.
		if n < 1 || size < 1 || len(a) < n*size || len(mid) < size || len(rad) < size || len(mx) < size ||
			len(bias) < n || len(mag) < n || len(lb) < n {
			panic("gemmsimd: concretize slices too short")
		}
		// As in installBlock's kernel: heap slices, which do not move, kept reachable.
		fn.Invoke(n, size, addr(a), addr(mid), addr(rad), addr(mx), addr(bias), addr(mag), safety, addr(lb))
		runtime.KeepAlive(a)
		runtime.KeepAlive(mid)
		runtime.KeepAlive(rad)
		runtime.KeepAlive(mx)
		runtime.KeepAlive(bias)
		runtime.KeepAlive(mag)
		runtime.KeepAlive(lb)
		concretizeCalls.Add(1)
	}
	if !concretizeSelfCheck(kernel) {
		return
	}
	crown.SetConcretizeKernel(kernel, MinConcretize)
	installedConcretize = kernel
}

// concretizeSelfCheck compares 5 rows of 9 (pairs, the odd last element, signed
// zeros) through f with the Go loop's, bit for bit.
func concretizeSelfCheck(f crown.ConcretizeKernel) (ok bool) {
	defer func() {
		if recover() != nil {
			ok = false
		}
		crown.SetConcretizeKernel(nil, 0)
	}()
	const n, size = 5, 9
	vals := func(k int, f func(float64) float64) []float64 {
		v := make([]float64, k)
		for i := range v {
			v[i] = f(float64(i))
		}
		return v
	}
	a := vals(n*size, func(x float64) float64 { return math.Sin(x) * 3 })
	a[3], a[size] = math.Copysign(0, -1), 0
	mid := vals(size, func(x float64) float64 { return math.Cos(x) / 7 })
	rad := vals(size, func(x float64) float64 { return x / 11 })
	mx := vals(size, func(x float64) float64 { return 1 + x/5 })
	bias := vals(n, func(x float64) float64 { return math.Sin(x+0.5) * 2 })
	mag := vals(n, func(x float64) float64 { return x / 3 })
	run := func() []float64 {
		lb := make([]float64, n)
		crown.Concretize(n, size, a, mid, rad, mx, bias, mag, 1e-9, lb)
		return lb
	}
	crown.SetConcretizeKernel(nil, 0)
	want := run()
	before := concretizeCalls.Load()
	crown.SetConcretizeKernel(f, 1)
	got := run()
	if concretizeCalls.Load() == before {
		return false
	}
	for i := range want {
		if math.Float64bits(got[i]) != math.Float64bits(want[i]) {
			return false
		}
	}
	return true
}

// installRelax hooks the module's relax function into core/crown, or removes the hook
// when there is none or it fails the self-check.
func installRelax() {
	fn := js.Global().Get(RelaxGlobal)
	installedRelax = nil
	crown.SetRelaxKernel(nil, 0)
	if fn.Type() != js.TypeFunction {
		return
	}
	kernel := func(n, size int, a, tab, alpha []float64, nu int, bias, mag []float64) {
		// The module reads and writes through raw addresses: never past the slices.
		if n < 1 || size < 1 || len(a) < n*size || len(tab) < size*crown.RelaxSlots || len(bias) < n || len(mag) < n ||
			(alpha != nil && len(alpha) < n*nu) {
			panic("gemmsimd: relax slices too short")
		}
		al := 0 // no α
		if len(alpha) > 0 {
			al = addr(alpha)
		}
		// As in installBlock's kernel: heap slices, which do not move, kept reachable.
		fn.Invoke(n, size, addr(a), addr(tab), al, nu, addr(bias), addr(mag))
		runtime.KeepAlive(a)
		runtime.KeepAlive(tab)
		runtime.KeepAlive(alpha)
		runtime.KeepAlive(bias)
		runtime.KeepAlive(mag)
		relaxCalls.Add(1)
	}
	if !relaxSelfCheck(kernel) {
		return
	}
	crown.SetRelaxKernel(kernel, MinRelax)
	installedRelax = kernel
}

// relaxSelfCheck compares 3 rows (two lanes, then a last odd row) of 5 neurons, one of
// each kind and one with an α column, with and without α, through f with the Go loop,
// bit for bit.
func relaxSelfCheck(f crown.RelaxKernel) (ok bool) {
	defer func() {
		if recover() != nil {
			ok = false
		}
		crown.SetRelaxKernel(nil, 0)
	}()
	const n, size, nu = 3, 5, 2
	ones := math.Float64frombits(^uint64(0))
	noCol := math.Float64frombits(^uint64(0)) // int64 −1
	tab := []float64{
		// coef ≥, coef <, bias ≥, bias <, mask ≥, mask <, keep, col
		0, 0, 0, 0, 0, 0, 0, noCol, // inactive
		1, 1, 0, 0, 0, 0, ones, noCol, // active
		0.75, 0.75, -0.5, -0.5, ones, ones, ones, noCol, // grafted
		0, 0.4, 0, 1.3, 0, ones, ones, noCol, // unstable
		1, 0.6, 0, 0.7, 0, ones, ones, math.Float64frombits(1), // unstable, α column 1
	}
	a := make([]float64, n*size)
	for i := range a {
		a[i] = math.Sin(float64(i)*1.7) * 3
	}
	a[6] = math.Copysign(0, -1)
	alpha := []float64{0.1, 0.2, 0.3, 0.4, 0.5, 0.6}
	run := func(alpha []float64) []float64 {
		out := append([]float64(nil), a...)
		bias, mag := []float64{1, 2, 3}, []float64{0.5, 0.25, 0}
		crown.RelaxRows(n, size, out, tab, alpha, nu, bias, mag)
		return append(append(out, bias...), mag...)
	}
	for _, al := range [][]float64{nil, alpha} {
		crown.SetRelaxKernel(nil, 0)
		want := run(al)
		before := relaxCalls.Load()
		crown.SetRelaxKernel(f, 1)
		got := run(al)
		if relaxCalls.Load() == before {
			return false
		}
		for i := range want {
			if math.Float64bits(got[i]) != math.Float64bits(want[i]) {
				return false
			}
		}
	}
	return true
}

// installPack hooks the module's pack function into core/blas, or removes the hook
// when there is none or it fails the self-check.
func installPack() {
	fn := js.Global().Get(PackGlobal)
	installedPack = nil
	blas.SetPackKernel(nil, 0)
	if fn.Type() != js.TypeFunction {
		return
	}
	kernel := func(trans bool, np, kb int, src []float64, ld int, dst []float64) {
		// The module reads and writes through raw addresses: never past the slices.
		need := (kb-1)*ld + 4*np
		if trans {
			need = (4*np-1)*ld + kb
		}
		if np < 1 || kb < 1 || ld < 1 || len(src) < need || len(dst) < 4*np*kb {
			panic("gemmsimd: pack slices too short")
		}
		tr := 0
		if trans {
			tr = 1
		}
		// As in installBlock's kernel: heap slices, which do not move, kept reachable.
		fn.Invoke(tr, np, kb, addr(src), ld, addr(dst))
		runtime.KeepAlive(src)
		runtime.KeepAlive(dst)
		packCalls.Add(1)
	}
	if !packSelfCheck(kernel) {
		return
	}
	blas.SetPackKernel(kernel, MinPack)
	installedPack = kernel
}

// packSelfCheck compares products through f with the Go packing, bit for bit: 11×10
// by depth 7 (an odd number of steps, partial panels) in every transposition, which
// uses both of f's forms for both operands.
func packSelfCheck(f blas.PackKernel) (ok bool) {
	defer func() {
		if recover() != nil {
			ok = false
		}
		blas.SetPackKernel(nil, 0)
	}()
	const m, n, k = 11, 10, 7
	a, b := make([]float64, m*k), make([]float64, k*n)
	for i := range a {
		a[i] = math.Sin(float64(i)) * 3
	}
	for i := range b {
		b[i] = math.Cos(float64(i)) / 7
	}
	var im blas.Implementation
	for _, t := range [][2]gblas.Transpose{{gblas.NoTrans, gblas.NoTrans}, {gblas.Trans, gblas.Trans}} {
		lda, ldb := k, n
		if t[0] == gblas.Trans {
			lda = m
		}
		if t[1] == gblas.Trans {
			ldb = k
		}
		prod := func() []float64 {
			c := make([]float64, m*n)
			im.Dgemm(t[0], t[1], m, n, k, 0.75, a, lda, b, ldb, 0, c, n)
			return c
		}
		blas.SetPackKernel(nil, 0)
		want := prod()
		before := packCalls.Load()
		blas.SetPackKernel(f, 1)
		got := prod()
		if packCalls.Load()-before < 2 {
			return false
		}
		for i := range want {
			if math.Float64bits(got[i]) != math.Float64bits(want[i]) {
				return false
			}
		}
	}
	return true
}

// installAdam hooks the module's adam function into core/crown, or removes the hook
// when there is none or it fails the self-check.
func installAdam() {
	fn := js.Global().Get(AdamGlobal)
	installedAdam = nil
	crown.SetAdamKernel(nil, 0)
	if fn.Type() != js.TypeFunction {
		return
	}
	kernel := func(a, g, m, v []float64, s crown.AdamStep) {
		// The module reads and writes through raw addresses: never past the slices.
		n := len(a)
		if n < 1 || len(g) < n || len(m) < n || len(v) < n {
			panic("gemmsimd: adam slices too short")
		}
		// As in installBlock's kernel: heap slices, which do not move, kept reachable.
		fn.Invoke(n, addr(a), addr(g), addr(m), addr(v), s.B1, s.C1, s.B2, s.C2, s.Eps, s.LR, s.IC1, s.IC2)
		runtime.KeepAlive(a)
		runtime.KeepAlive(g)
		runtime.KeepAlive(m)
		runtime.KeepAlive(v)
		adamCalls.Add(1)
	}
	if !adamSelfCheck(kernel) {
		return
	}
	crown.SetAdamKernel(kernel, MinAdam)
	installedAdam = kernel
}

// adamSelfCheck compares 7 steps (pairs and a last odd value, values clamped at 0 and
// at 1) through f with the Go loop's, bit for bit.
func adamSelfCheck(f crown.AdamKernel) (ok bool) {
	defer func() {
		if recover() != nil {
			ok = false
		}
		crown.SetAdamKernel(nil, 0)
	}()
	const n = 7
	s := crown.AdamStep{B1: 0.9, C1: 0.1, B2: 0.999, C2: 0.001, Eps: 1e-8, LR: 0.5, IC1: 10, IC2: 1000}
	run := func() []float64 {
		a, g, m, v := make([]float64, n), make([]float64, n), make([]float64, n), make([]float64, n)
		for i := range a {
			a[i] = float64(i) / 6
			g[i] = math.Sin(float64(i)*2.3) * 4
			m[i] = math.Cos(float64(i)) / 5
			v[i] = float64(i) / 50
		}
		crown.Adam(a, g, m, v, s)
		return append(append(append(a, g...), m...), v...)
	}
	crown.SetAdamKernel(nil, 0)
	want := run()
	before := adamCalls.Load()
	crown.SetAdamKernel(f, 1)
	got := run()
	if adamCalls.Load() == before {
		return false
	}
	for i := range want {
		if math.Float64bits(got[i]) != math.Float64bits(want[i]) {
			return false
		}
	}
	return true
}

// installIm2col hooks the module's im2col function into core/crown, or removes the
// hook when there is none or it fails the self-check.
func installIm2col() {
	fn := js.Global().Get(Im2colGlobal)
	installedIm2col = nil
	crown.SetIm2colKernel(nil, 0)
	if fn.Type() != js.TypeFunction {
		return
	}
	kernel := func(nr int, src []float64, srcStep int, cols []float64, w, ohw int, jobs []int32, stride int) {
		// The module reads and writes through raw addresses: it checks every job
		// against len(src) and len(cols) (a job outside them traps, and Invoke
		// panics), given arguments that are what they say (i32s, nothing wraps).
		const maxI32 = 1<<31 - 1
		if nr < 1 || len(jobs) < 4 || len(jobs)%4 != 0 || stride < 1 || srcStep < 0 || w < 0 || ohw < 0 ||
			max(nr, stride, srcStep, w, ohw, len(jobs), len(src), len(cols)) > maxI32 {
			panic("gemmsimd: im2col arguments out of range")
		}
		// As in installBlock's kernel: heap slices, which do not move, kept reachable.
		fn.Invoke(nr, addr(src), srcStep, addr(cols), w, ohw, addr32(jobs), len(jobs)/4, stride,
			len(src), len(cols))
		runtime.KeepAlive(src)
		runtime.KeepAlive(cols)
		runtime.KeepAlive(jobs)
		im2colCalls.Add(1)
	}
	if !im2colSelfCheck(kernel) {
		return
	}
	crown.SetIm2colKernel(kernel, MinIm2col)
	installedIm2col = kernel
}

// im2colSelfCheck compares jobs of strides 1, 2 and 3, with runs of 1 to 6 values, on
// 3 rows, through f with the Go loop, bit for bit.
func im2colSelfCheck(f crown.Im2colKernel) (ok bool) {
	defer func() {
		if recover() != nil {
			ok = false
		}
		crown.SetIm2colKernel(nil, 0)
	}()
	const nr, srcStep, ohw = 3, 40, 12
	src := make([]float64, nr*srcStep)
	for i := range src {
		src[i] = math.Sin(float64(i)) * 5
	}
	jobs := []int32{0, 0, 1, 6, 1, 2, 5, 5, 2, 3, 0, 1, 0, 7, 2, 2}
	for _, stride := range []int{1, 2, 3} {
		w := nr * ohw
		run := func() []float64 {
			cols := make([]float64, 3*w)
			crown.Im2col(nr, src, srcStep, cols, w, ohw, jobs, stride)
			return cols
		}
		crown.SetIm2colKernel(nil, 0)
		want := run()
		before := im2colCalls.Load()
		crown.SetIm2colKernel(f, 1)
		got := run()
		if im2colCalls.Load() == before {
			return false
		}
		for i := range want {
			if math.Float64bits(got[i]) != math.Float64bits(want[i]) {
				return false
			}
		}
	}
	return true
}

// installConv hooks the module's gather and interleave functions into core/crown, or
// removes the hooks when either is missing or fails the self-check.
func installConv() {
	gfn, ifn := js.Global().Get(GatherGlobal), js.Global().Get(InterleaveGlobal)
	installedGather, installedInterleave = nil, nil
	crown.SetConvKernels(nil, nil, 0)
	if gfn.Type() != js.TypeFunction || ifn.Type() != js.TypeFunction {
		return
	}
	const maxI32 = 1<<31 - 1
	gather := func(inC, ihw, kkw, nr int, cols, g []float64, segs, src []int32) {
		// The module checks every segment and source against these (a bad one traps,
		// and Invoke panics), given arguments that are what they say (i32s).
		if inC < 1 || nr < 1 || ihw < 0 || kkw < 0 || len(segs) < 4 || len(segs)%4 != 0 || len(src) < 1 ||
			max(inC, ihw, kkw, nr, len(cols), len(g), len(segs), len(src)) > maxI32 {
			panic("gemmsimd: gather arguments out of range")
		}
		gfn.Invoke(inC, ihw, kkw, nr, addr(cols), addr(g), addr32(segs), len(segs)/4, addr32(src), len(src), len(cols), len(g))
		runtime.KeepAlive(cols)
		runtime.KeepAlive(g)
		runtime.KeepAlive(segs)
		runtime.KeepAlive(src)
		convCalls.Add(1)
	}
	interleave := func(ny, iw, nr int, g []float64, xmap, rs []int32, out []float64, size int) {
		if ny < 1 || iw < 1 || nr < 1 || len(rs) < 1 || len(xmap) < iw || size < 0 || len(g) < 1 || len(out) < 1 ||
			max(ny, iw, nr, size, len(g), len(out), len(rs)) > maxI32 {
			panic("gemmsimd: interleave arguments out of range")
		}
		ifn.Invoke(ny, iw, nr, addr(g), addr32(xmap), addr32(rs), len(rs), addr(out), size, len(g), len(out))
		runtime.KeepAlive(g)
		runtime.KeepAlive(xmap)
		runtime.KeepAlive(rs)
		runtime.KeepAlive(out)
		convCalls.Add(1)
	}
	if !convSelfCheck(gather, interleave) {
		return
	}
	crown.SetConvKernels(gather, interleave, MinConv)
	installedGather, installedInterleave = gather, interleave
}

// convSelfCheck compares a gather of segments with 0 to 5 sources and odd lengths, and
// an interleave of 3 rows with a permuted column map, through the module and the Go
// loops, bit for bit.
func convSelfCheck(gather crown.GatherKernel, interleave crown.InterleaveKernel) (ok bool) {
	defer func() {
		if recover() != nil {
			ok = false
		}
		crown.SetConvKernels(nil, nil, 0)
	}()
	const inC, ihw, nr, kkw = 2, 9, 3, 30
	cols := make([]float64, inC*kkw)
	for i := range cols {
		cols[i] = math.Sin(float64(i)) * 7
	}
	// (dst, n, k, first): every position once, sources 0–9 (q + n ≤ 10).
	segs := []int32{0, 1, 0, 0, 1, 3, 1, 0, 4, 1, 2, 1, 5, 2, 5, 3, 7, 2, 3, 8}
	src := []int32{2, 0, 7, 1, 3, 5, 8, 6, 4, 0, 2}
	xmap := []int32{2, 0, 1}
	rs := []int32{4, 0, 2}
	gs := make([][]float64, 2)
	outs := make([][]float64, 2)
	for v, hooked := range []bool{false, true} {
		before := convCalls.Load()
		if hooked {
			crown.SetConvKernels(gather, interleave, 1)
		} else {
			crown.SetConvKernels(nil, nil, 0)
		}
		g := make([]float64, inC*ihw*nr)
		crown.Gather(inC, ihw, kkw, nr, cols, g, segs, src)
		out := make([]float64, 5*20)
		crown.Interleave(inC*ihw/3, 3, nr, g, xmap, rs, out, 20)
		if hooked && convCalls.Load()-before != 2 {
			return false
		}
		gs[v], outs[v] = g, out
	}
	for _, pair := range [][2][]float64{{gs[0], gs[1]}, {outs[0], outs[1]}} {
		for i := range pair[0] {
			if math.Float64bits(pair[0][i]) != math.Float64bits(pair[1][i]) {
				return false
			}
		}
	}
	return true
}
