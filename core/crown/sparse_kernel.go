package crown

import (
	"math"
	"sync/atomic"
)

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

// ColumnRelax is the relaxation step of CROWN's sparse chains on a block of products:
// for every k < nout, each of the eight values v = y[8k+t] that is not ±0 is relaxed
// as relaxListed relaxes a coefficient, with the line record lines[8k:8k+8] (ge, lt,
// bge, blt, then the masks hasGE, hasLT, keep as float64 bits): the constant
// t = (v·(v ≥ 0 ? bge : blt)) & (v ≥ 0 ? hasGE : hasLT) is added to rbm[t] and |t| to
// rbm[8+t], and y[8k+t] becomes (v·(v ≥ 0 ? ge : lt)) & keep. rbm must hold no −0
// (a kernel may add +0 where this loop adds nothing).
func ColumnRelax(nout int, lines, y []float64, rbm *[2 * sparseBlock]float64) {
	for k := 0; k < nout; k++ {
		rec := (*[8]float64)(lines[8*k:])
		ge, lt, bge, blt := rec[0], rec[1], rec[2], rec[3]
		hge, hlt, keep := math.Float64bits(rec[4]), math.Float64bits(rec[5]), math.Float64bits(rec[6])
		yk := (*[sparseBlock]float64)(y[k*sparseBlock:])
		for t, v := range yk {
			if v != 0 {
				m := signMask(v)
				tb := math.Float64frombits(math.Float64bits(v*pick(m, bge, blt)) & (hge&m | hlt&^m))
				rbm[t] += tb
				rbm[sparseBlock+t] += math.Abs(tb)
				yk[t] = math.Float64frombits(math.Float64bits(v*pick(m, ge, lt)) & keep)
			}
		}
	}
}

// ColumnConcretize is the last step of CROWN's sparse chains on a block of products:
// for every k < nout and each of the eight values v = y[8k+t], out[t] += v·mid[k],
// out[8+t] += |v|·rad[k], out[16+t] += |v|·mx[k], each product rounded before it is
// added.
func ColumnConcretize(nout int, y, mid, rad, mx []float64, out *[3 * sparseBlock]float64) {
	for k := 0; k < nout; k++ {
		md, rd, m := mid[k], rad[k], mx[k]
		for t, v := range (*[sparseBlock]float64)(y[k*sparseBlock:]) {
			av := math.Abs(v)
			out[t] += v * md
			out[sparseBlock+t] += av * rd
			out[2*sparseBlock+t] += av * m
		}
	}
}

// ColumnRelaxKernel and ColumnConcretizeKernel compute what ColumnRelax and
// ColumnConcretize do (rbm and out as slices of 16 and 24 values), bit for bit, for an
// environment with something faster than Go; the slices are exactly as long as those
// functions read, and they must not retain them.
type (
	ColumnRelaxKernel      func(nout int, lines, y, rbm []float64)
	ColumnConcretizeKernel func(nout int, y, mid, rad, mx, out []float64)
)

type columnHooks struct {
	relax ColumnRelaxKernel
	conc  ColumnConcretizeKernel
}

var columnKernels atomic.Pointer[columnHooks]

// SetColumnKernels makes the sparse chains' steps (where x86 assembly does not do
// them) call relax and conc; nil removes them (both, when either is nil).
func SetColumnKernels(relax ColumnRelaxKernel, conc ColumnConcretizeKernel) {
	if relax == nil || conc == nil {
		columnKernels.Store(nil)
		return
	}
	columnKernels.Store(&columnHooks{relax: relax, conc: conc})
}
