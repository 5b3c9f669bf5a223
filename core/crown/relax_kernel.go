package crown

import (
	"math"
	"sync"
	"sync/atomic"
)

// The relaxation of a batch of rows as table lookups and selections instead of
// relaxRow's branches, for a kernel outside Go (the browser worker's WebAssembly SIMD
// module) that relaxes a whole row matrix per call. Go itself keeps relaxRow: its
// branches beat the selections on a CPU.

// Slots of a neuron's entry in a relaxation table (RelaxSlots float64s per neuron).
// For a coefficient v of the neuron in a row, the "≥" slots apply when v ≥ 0 and the
// "<" slots otherwise (v < 0 or NaN); mask slots hold all-ones or all-zeros bits.
const (
	RelaxCoefGE = iota // the row's new coefficient is v·this (v ≥ 0) …
	RelaxCoefLT        // … or v·this (v < 0)
	RelaxBiasGE        // the row's constant gains t = v·this (v ≥ 0) …
	RelaxBiasLT        // … or v·this (v < 0)
	RelaxMaskGE        // t is masked with this (v ≥ 0) …
	RelaxMaskLT        // … or this (v < 0)
	RelaxKeep          // the new coefficient is masked with this
	RelaxCol           // α column (an int64's bits): α[row][col] replaces RelaxCoefGE when ≥ 0
	RelaxSlots
)

// RelaxKernel relaxes the n rows of a (n×size, row-major) in place through an
// activation layer described by tab (size entries of RelaxSlots values), as RelaxRows
// does, bit for bit (NaN payloads aside): each row's constant, summed over the
// neurons in ascending order from +0, is added to bias[r], the sum of its terms'
// magnitudes to mag[r]. alpha, when not nil, holds nu lower slopes per row. The slices
// are exactly as long as RelaxRows requires; it must not retain them.
type RelaxKernel func(n, size int, a, tab, alpha []float64, nu int, bias, mag []float64)

type relaxHook struct {
	f       RelaxKernel
	minWork int
}

var relaxKernel atomic.Pointer[relaxHook]

// SetRelaxKernel makes CROWN and α-CROWN relax the rows leaving an activation layer
// with f, one call per batch of at least minWork row elements (n·size). f = nil
// removes the hook. Concurrent computations see either the old or the new hook.
func SetRelaxKernel(f RelaxKernel, minWork int) {
	if f == nil {
		relaxKernel.Store(nil)
		return
	}
	relaxKernel.Store(&relaxHook{f: f, minWork: max(minWork, 1)})
}

// RelaxRows relaxes the n rows of a (n×size) in place through the layer tab (size
// entries of RelaxSlots values): for each coefficient v of row r at neuron i, with e
// the neuron's entry, the slots ≥ chosen when v ≥ 0 and < otherwise,
//
//	c = e[Coef], or alpha[r·nu + col] when v ≥ 0, alpha ≠ nil and col = e[RelaxCol] ≥ 0
//	t = bits(v·e[Bias]) & e[Mask]      (+0 when v = ±0)
//	v ← bits(v·c) & e[RelaxKeep]       (v itself when v = ±0)
//
// summing the t of the row in ascending order from +0 into s and their magnitudes into
// m, then bias[r] += s and mag[r] += m. It panics when a slice is shorter than that.
func RelaxRows(n, size int, a, tab, alpha []float64, nu int, bias, mag []float64) {
	if n <= 0 {
		return
	}
	a, tab, bias, mag = a[:n*size], tab[:size*RelaxSlots], bias[:n], mag[:n]
	if alpha != nil {
		alpha = alpha[:n*nu]
	}
	if h := relaxKernel.Load(); h != nil && size > 0 && n*size >= h.minWork {
		h.f(n, size, a, tab, alpha, nu, bias, mag)
		return
	}
	for r := 0; r < n; r++ {
		var al []float64
		if alpha != nil {
			al = alpha[r*nu : (r+1)*nu]
		}
		s, m := relaxTableRow(a[r*size:(r+1)*size], tab, al)
		bias[r] += s
		mag[r] += m
	}
}

func relaxTableRow(row, tab, al []float64) (s, m float64) {
	for i, v := range row {
		e := tab[i*RelaxSlots : (i+1)*RelaxSlots]
		var c, b, bm float64
		if v >= 0 {
			c, b, bm = e[RelaxCoefGE], e[RelaxBiasGE], e[RelaxMaskGE]
			if col := int64(math.Float64bits(e[RelaxCol])); al != nil && col >= 0 {
				c = al[col]
			}
		} else {
			c, b, bm = e[RelaxCoefLT], e[RelaxBiasLT], e[RelaxMaskLT]
		}
		if v == 0 {
			continue
		}
		t := math.Float64frombits(math.Float64bits(float64(v*b)) & math.Float64bits(bm))
		s += t
		m += math.Abs(t)
		row[i] = math.Float64frombits(math.Float64bits(float64(v*c)) & math.Float64bits(e[RelaxKeep]))
	}
	return s, m
}

// relaxTable is the table of a relaxation (built once: a relaxation does not change
// after withColumns, and the goroutines of one bound share it).
type relaxTable struct {
	once sync.Once
	tab  []float64
}

// table returns rx's relaxation table, in which RelaxRows does what relaxRow does
// for each row, bit for bit: an inactive neuron keeps nothing, an active one its
// coefficient (·1), a grafted one slope and bias under either sign, an unstable one
// its lower slope (dL or its α column) under v ≥ 0 and its chord under v < 0.
func (rx *relaxation) table() []float64 {
	rx.tab.once.Do(func() {
		ones := math.Float64frombits(^uint64(0))
		n := len(rx.state)
		tab := make([]float64, n*RelaxSlots)
		for i, st := range rx.state {
			e := tab[i*RelaxSlots : (i+1)*RelaxSlots]
			e[RelaxKeep] = ones
			e[RelaxCol] = math.Float64frombits(uint64(int64(rx.col[i])))
			switch st {
			case inactive:
				e[RelaxKeep] = 0
			case active:
				e[RelaxCoefGE], e[RelaxCoefLT] = 1, 1
			case linear:
				e[RelaxCoefGE], e[RelaxCoefLT] = rx.op.slope[i], rx.op.slope[i]
				e[RelaxBiasGE], e[RelaxBiasLT] = rx.op.bias[i], rx.op.bias[i]
				e[RelaxMaskGE], e[RelaxMaskLT] = ones, ones
			case unstable:
				e[RelaxCoefGE], e[RelaxCoefLT] = rx.dL[i], rx.dU[i]
				e[RelaxBiasLT] = rx.bU[i]
				e[RelaxMaskLT] = ones
			}
		}
		rx.tab.tab = tab
	})
	return rx.tab.tab
}
