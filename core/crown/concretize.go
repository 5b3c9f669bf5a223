package crown

import (
	"math"
	"sync/atomic"
)

// ConcretizeKernel computes what Concretize does, for an environment where something
// faster than Go exists outside it (the browser worker's WebAssembly SIMD module). It
// must follow Concretize's operations in their order, each product and sum rounded
// (no fused multiply-add), so that its results are bit-identical to the Go loop's and
// bounds stay the same on every platform. The slices are exactly as long as
// Concretize requires; it must not retain them.
type ConcretizeKernel func(n, size int, a, mid, rad, mx, bias, mag []float64, safety float64, lb []float64)

type concretizeHook struct {
	f       ConcretizeKernel
	minWork int
}

var concretizeKernel atomic.Pointer[concretizeHook]

// SetConcretizeKernel makes Concretize (and so every CROWN bound over a dense layer's
// rows) call f for batches of at least minWork row elements (n·size): a call out of Go
// may cost more than a small batch. f = nil removes the hook. Concurrent computations
// see either the old or the new hook.
func SetConcretizeKernel(f ConcretizeKernel, minWork int) {
	if f == nil {
		concretizeKernel.Store(nil)
		return
	}
	concretizeKernel.Store(&concretizeHook{f: f, minWork: max(minWork, 1)})
}

// Concretize sets, for each of the n rows a_i = a[i·size:(i+1)·size],
//
//	lb[i] = bias[i] + a_i·mid − |a_i|·rad − safety·(|a_i|·mx + mag[i] + |bias[i]|)
//
// the lower bound of the linear function a_i·x + bias[i] over the box mid ± rad, with
// the rounding margin of a bound whose terms sum to at most |a_i|·mx + mag[i]. Each of
// the three dot products is summed in two lanes, the even and the odd indices apart
// from +0 (a last odd index goes to the even lane), and the lanes added at the end:
// two independent add chains per sum, which a SIMD unit computes as one f64x2 chain
// and a scalar CPU overlaps. It panics if a slice is shorter than that.
func Concretize(n, size int, a, mid, rad, mx, bias, mag []float64, safety float64, lb []float64) {
	if n <= 0 {
		return
	}
	a, mid, rad, mx = a[:n*size], mid[:size], rad[:size], mx[:size]
	bias, mag, lb = bias[:n], mag[:n], lb[:n]
	if h := concretizeKernel.Load(); h != nil && size > 0 && n*size >= h.minWork {
		h.f(n, size, a, mid, rad, mx, bias, mag, safety, lb)
		return
	}
	for i := range lb {
		lb[i] = concretizeRow(a[i*size:(i+1)*size], mid, rad, mx, bias[i], mag[i], safety)
	}
}

// concretizeRow is Concretize for one row a (len(mid), len(rad), len(mx) ≥ len(a)).
func concretizeRow(a, mid, rad, mx []float64, bias, mag, safety float64) float64 {
	mid, rad, mx = mid[:len(a)], rad[:len(a)], mx[:len(a)]
	var c0, c1, w0, w1, m0, m1 float64
	for j := 0; j < len(a)-1; j += 2 {
		v0, v1 := a[j], a[j+1]
		a0, a1 := math.Abs(v0), math.Abs(v1)
		// The conversions keep every product rounded on the platforms with FMA.
		c0 += float64(v0 * mid[j])
		c1 += float64(v1 * mid[j+1])
		w0 += float64(a0 * rad[j])
		w1 += float64(a1 * rad[j+1])
		m0 += float64(a0 * mx[j])
		m1 += float64(a1 * mx[j+1])
	}
	if len(a)%2 == 1 {
		k := len(a) - 1
		v := a[k]
		av := math.Abs(v)
		c0 += float64(v * mid[k])
		w0 += float64(av * rad[k])
		m0 += float64(av * mx[k])
	}
	c, w, m := c0+c1, w0+w1, m0+m1
	return bias + c - w - float64(safety*(m+mag+math.Abs(bias)))
}
