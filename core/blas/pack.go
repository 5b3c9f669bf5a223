package blas

import "sync/atomic"

// PackKernel copies the full 4-wide panels of a block into their packed layout, for an
// environment where the copy is faster outside Go (the browser worker's WebAssembly
// SIMD module). For panels q < np and steps p < kb, with dst[q·4·kb + p·4 + j] the
// panel's value j of step p, it sets
//
//	dst[q·4·kb + p·4 + j] = src[p·ld + 4q + j]      when trans is false (rows of src)
//	dst[q·4·kb + p·4 + j] = src[(4q + j)·ld + p]    when trans is true (columns)
//
// which is packB of a row-major op(B) and packA of a transposed op(A) (rows), and
// packA of a row-major op(A) and packB of a transposed op(B) (columns). It copies
// bits: any implementation gives the same block. src and dst cover exactly what it
// reads and writes; it must not retain them.
type PackKernel func(trans bool, np, kb int, src []float64, ld int, dst []float64)

type packHook struct {
	f       PackKernel
	minWork int
}

var packKernel atomic.Pointer[packHook]

// SetPackKernel makes Dgemm pack the full panels of each block with f, wherever it
// runs the pure-Go 4×4 kernel (on WebAssembly), when they hold at least minWork
// values: a call of f may cost more than packing a few values in Go. Partial panels
// stay with Go. f = nil removes the hook. Concurrent Dgemm calls see either the old
// or the new hook.
func SetPackKernel(f PackKernel, minWork int) {
	if f == nil {
		packKernel.Store(nil)
		return
	}
	packKernel.Store(&packHook{f: f, minWork: max(minWork, 1)})
}

// packFull packs the full panels of a block of w (panel width) with the hook when
// there is one for them, and returns how many values of the block's width it packed
// (0: none, the caller packs all).
func packFull(w, width, kb int, trans bool, src []float64, ld int, dst []float64) int {
	if w != 4 {
		return 0
	}
	h := packKernel.Load()
	full := width / 4 * 4
	if h == nil || full == 0 || full*kb < h.minWork {
		return 0
	}
	np := full / 4
	if trans {
		src = src[:(full-1)*ld+kb]
	} else {
		src = src[:(kb-1)*ld+full]
	}
	h.f(trans, np, kb, src, ld, dst[:full*kb])
	return full
}
