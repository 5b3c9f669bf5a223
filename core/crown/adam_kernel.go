package crown

import (
	"math"
	"sync/atomic"
)

// AdamStep is one Adam ascent step's constants: the moment decays B1, B2 with
// C1 = 1 − B1 and C2 = 1 − B2 (exact constants, not recomputed in float64), Eps, the
// rate LR and the inverse bias corrections IC1 = 1/(1 − B1^t), IC2 = 1/(1 − B2^t).
type AdamStep struct {
	B1, C1, B2, C2, Eps, LR, IC1, IC2 float64
}

// AdamKernel computes what Adam does, for an environment where it is faster outside
// Go (the browser worker's WebAssembly SIMD module), bit for bit (NaN payloads
// aside): each element's operations are Adam's, in its order, each rounded. The
// slices have the same length; it must not retain them.
type AdamKernel func(a, g, m, v []float64, s AdamStep)

type adamHook struct {
	f       AdamKernel
	minWork int
}

var adamKernel atomic.Pointer[adamHook]

// SetAdamKernel makes α-CROWN's optimiser step every α matrix of at least minWork
// values with f. f = nil removes the hook. Concurrent computations see either the old
// or the new hook.
func SetAdamKernel(f AdamKernel, minWork int) {
	if f == nil {
		adamKernel.Store(nil)
		return
	}
	adamKernel.Store(&adamHook{f: f, minWork: max(minWork, 1)})
}

// Adam takes one ascent step on every a[i] with gradient g[i] and moments m[i], v[i]:
//
//	m ← B1·m + C1·g;  v ← B2·v + (C2·g)·g
//	a ← clamp(a + (LR·(m·IC1)) / (√(v·IC2) + Eps), 0, 1)
//
// clamp keeping a NaN. g, m and v must be at least as long as a.
func Adam(a, g, m, v []float64, s AdamStep) {
	g, m, v = g[:len(a)], m[:len(a)], v[:len(a)]
	if h := adamKernel.Load(); h != nil && len(a) >= h.minWork {
		h.f(a, g, m, v, s)
		return
	}
	for i := range a {
		gi := g[i]
		// The conversions keep every product rounded on the platforms with FMA.
		mi := float64(s.B1*m[i]) + float64(s.C1*gi)
		vi := float64(s.B2*v[i]) + float64(float64(s.C2*gi)*gi)
		m[i], v[i] = mi, vi
		a[i] = clamp(a[i]+float64(s.LR*float64(mi*s.IC1))/(math.Sqrt(float64(vi*s.IC2))+s.Eps), 0, 1)
	}
}
