package crown

import "sync/atomic"

// SparseKernel computes what SparseProduct does, for an environment where something
// faster than Go exists outside it (the browser worker's WebAssembly SIMD module). It
// must sum as SparseProduct does, each product and each sum rounded (no fused
// multiply-add), so that its results are bit-identical to the Go loop's. The slices
// are exactly as long as SparseProduct requires, and every src value is below
// len(x)/8; it must not retain them.
type SparseKernel func(nout int, ptr, src []int32, w, x, y []float64)

type sparseHook struct {
	f       SparseKernel
	minWork int
}

var sparseKernel atomic.Pointer[sparseHook]

// SetSparseKernel makes the sparse transposed convolutions of CROWN's passes (where
// x86 assembly does not do them) call f for products of at least minWork entries.
// f = nil removes the hook. Concurrent computations see either the old or the new
// hook.
func SetSparseKernel(f SparseKernel, minWork int) {
	if f == nil {
		sparseKernel.Store(nil)
		return
	}
	sparseKernel.Store(&sparseHook{f: f, minWork: max(minWork, 1)})
}

// SparseProduct sets, for every k < nout, the eight values y[8k:8k+8] to
//
//	y[8k+t] = Σ_e w[e]·x[8·src[e]+t],  e from ptr[k] to ptr[k+1]−1,
//
// the entries of even e − ptr[k] summed apart from those of odd e − ptr[k], each sum
// starting at +0 with every product rounded before it is added, and the two sums added
// at the end. It panics if a slice is too short or an index out of range.
func SparseProduct(nout int, ptr, src []int32, w, x, y []float64) {
	var acc [sparseBlock]float64
	for k := 0; k < nout; k++ {
		e0, e1 := ptr[k], ptr[k+1]
		sparseAccGo(src[e0:e1], w[e0:e1], x, &acc)
		copy(y[k*sparseBlock:(k+1)*sparseBlock], acc[:])
	}
}

// sparseHooked runs s's product on the block x into y through the installed kernel,
// if there is one and the product is large enough; it reports whether it did.
func sparseHooked(s *sparseConv, x, y []float64) bool {
	h := sparseKernel.Load()
	n := len(s.out)
	if h == nil || n == 0 || int(s.ptr[n]) < h.minWork {
		return false
	}
	h.f(n, s.ptr[:n+1], s.src[:s.ptr[n]], s.w[:s.ptr[n]], x[:len(s.in)*sparseBlock], y[:n*sparseBlock])
	return true
}
