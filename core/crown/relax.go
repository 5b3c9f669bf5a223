package crown

import (
	"math"
	"sync"
)

// Neuron states of an activation layer under given pre-activation bounds.
const (
	inactive int8 = iota // u ≤ 0: y = 0
	active               // l ≥ 0: y = x
	unstable             // l < 0 < u: relaxed
	linear               // grafted: y = slope·x + bias exactly
)

// relaxation is the linear relaxation of one activation layer: for each unstable
// neuron the upper line dU·x+bU (the chord from (l,0) to (u,u)) and the default lower
// slope (CROWN's adaptive choice, 1 if u > −l else 0, as auto_LiRPA).
type relaxation struct {
	op     *actOp
	l, u   []float64
	state  []int8
	dU, bU []float64
	dL     []float64
	unst   []int // indices of the unstable neurons, increasing
	// col[i] is neuron i's column in the α matrices of this layer, or -1; α matrices
	// have acols columns. Columns are fixed when α-CROWN starts (bounds only tighten
	// afterwards, so the unstable set only shrinks).
	col   []int32
	acols int
	tab   relaxTable // the table RelaxRows reads, built on first use
	ld    liveSplit  // live, dead and work neurons, split on first use
	ln    relaxLines // the lines patchBackward applies without α, made on first use
}

func newRelaxation(o *actOp, l, u []float64) *relaxation {
	n := len(l)
	rx := &relaxation{op: o, l: l, u: u, state: make([]int8, n), dU: make([]float64, n),
		bU: make([]float64, n), dL: make([]float64, n), col: make([]int32, n)}
	for i := 0; i < n; i++ {
		rx.col[i] = -1
		rx.state[i], rx.dU[i], rx.bU[i], rx.dL[i] = relaxNeuron(o.linear != nil && o.linear[i], l[i], u[i])
		if rx.state[i] == unstable {
			rx.col[i] = int32(len(rx.unst))
			rx.unst = append(rx.unst, i)
		}
	}
	rx.acols = len(rx.unst)
	return rx
}

// relaxNeuron is CROWN's relaxation of one activation with input bounds [l, u]: its
// state and, for an unstable neuron, the chord above (slope dU, intercept bU) and the
// adaptive lower slope dL (1 when the chord is steeper than 1/2, else 0).
func relaxNeuron(grafted bool, l, u float64) (state int8, dU, bU, dL float64) {
	switch {
	case grafted:
		return linear, 0, 0, 0
	case u <= 0:
		return inactive, 0, 0, 0
	case l >= 0:
		return active, 0, 0, 0
	}
	d := u / (u - l)
	if d > 0.5 {
		dL = 1
	}
	return unstable, d, -l * d, dL
}

// withColumns maps the α columns onto the neurons cols (an earlier, larger unstable
// set of the same layer).
func (rx *relaxation) withColumns(cols []int) *relaxation {
	for i := range rx.col {
		rx.col[i] = -1
	}
	for c, i := range cols {
		if rx.state[i] == unstable {
			rx.col[i] = int32(c)
		}
	}
	rx.acols = len(cols)
	rx.tab = relaxTable{}
	return rx
}

// unstableCount counts l < 0 < u among the non-grafted neurons.
func (rx *relaxation) unstableCount() int { return len(rx.unst) }

// backward carries lower-bound rows over the activation's output to its input. alpha,
// when not nil, holds one lower slope per (row, unstable neuron), row-major.
func (rx *relaxation) backward(in *rows, alpha []float64) {
	nu := rx.acols
	if h := relaxKernel.Load(); h != nil && in.n*in.size >= h.minWork {
		RelaxRows(in.n, in.size, in.a, rx.table(), alpha, nu, in.bias, in.mag)
		return
	}
	_, dead, work := rx.split()
	lines := rx.lines()
	for r := 0; r < in.n; r++ {
		var al []float64
		if alpha != nil {
			al = alpha[r*nu : (r+1)*nu]
		}
		bias, mag := relaxListed(in.row(r), dead, work, lines, al, rx.col)
		in.bias[r] += bias
		in.mag[r] += mag
	}
}

// relaxLines is a relaxation's lines per neuron without α: the coefficient a row keeps
// (ge under a coefficient ≥ 0, lt under a negative one) and the constant per unit of
// coefficient (bge, blt), 0 where relaxRow adds none.
type relaxLines struct {
	once             sync.Once
	ge, lt, bge, blt []float64
	// Bit masks, all ones or zero: hasGE/hasLT where the ≥/< line has a constant,
	// keep where the coefficient survives (not inactive). Masking the products
	// instead of multiplying by 0 keeps relaxRow's values for infinite coefficients.
	hasGE, hasLT, keep []uint64
}

func (rx *relaxation) lines() *relaxLines {
	l := &rx.ln
	l.once.Do(func() {
		n := len(rx.state)
		l.ge, l.lt, l.bge, l.blt = make([]float64, n), make([]float64, n), make([]float64, n), make([]float64, n)
		l.hasGE, l.hasLT, l.keep = make([]uint64, n), make([]uint64, n), make([]uint64, n)
		for i, st := range rx.state {
			if st != inactive {
				l.keep[i] = ^uint64(0)
			}
			if st == linear || st == unstable {
				l.hasLT[i] = ^uint64(0)
			}
			switch st {
			case active:
				l.ge[i], l.lt[i] = 1, 1
			case linear:
				l.ge[i], l.lt[i] = rx.op.slope[i], rx.op.slope[i]
				l.bge[i], l.blt[i] = rx.op.bias[i], rx.op.bias[i]
				l.hasGE[i] = ^uint64(0)
			case unstable:
				l.ge[i], l.lt[i] = rx.dL[i], rx.dU[i]
				l.blt[i] = rx.bU[i]
			}
		}
	})
	return l
}

// signMask is all ones where v ≥ 0, zero elsewhere (v < 0 or NaN): the relaxations
// choose a neuron's line with it instead of a branch on the coefficient's sign, which
// mispredicted (unstable neurons take either sign).
func signMask(v float64) uint64 {
	if v >= 0 {
		return ^uint64(0)
	}
	return 0
}

// pick is a where the mask m (all ones or zero) is set, b elsewhere.
func pick(m uint64, a, b float64) float64 {
	return math.Float64frombits(math.Float64bits(a)&m | math.Float64bits(b)&^m)
}

// relaxListed is relaxRow driven by the neuron lists of rx.split: it zeroes the
// inactive coefficients, leaves the active ones and relaxes the rest as relaxRow does,
// summing the constant in the same (increasing) order, so the values are relaxRow's
// bit for bit.
// relaxRow's switch on each neuron's state mispredicts on layers whose inactive,
// active and unstable neurons interleave; it was a sixth of CROWN's time on
// mnist_cnn_a_adv.
func relaxListed(row []float64, dead, work []int, l *relaxLines, al []float64, col []int32) (bias, mag float64) {
	for _, i := range dead {
		if row[i] != 0 { // a zero keeps its sign, as in relaxRow and RelaxRows
			row[i] = 0
		}
	}
	for _, i := range work {
		v := row[i]
		if v == 0 {
			continue
		}
		g := l.ge[i]
		if al != nil {
			if c := col[i]; c >= 0 {
				g = al[c]
			}
		}
		// The constant is masked out (to +0, as RelaxRows does) where the chosen line
		// has none, so an infinite v adds no NaN.
		m := signMask(v)
		c := pick(m, g, l.lt[i])
		t := math.Float64frombits(math.Float64bits(v*pick(m, l.bge[i], l.blt[i])) & (l.hasGE[i]&m | l.hasLT[i]&^m))
		bias += t
		mag += math.Abs(t)
		row[i] = v * c
	}
	return bias, mag
}

// relaxRow relaxes one lower-bound row over an activation's output in place, turning
// it into a row over the activation's input, and returns the constant it adds (with
// its magnitude, for the rounding margin). Inactive neurons drop out, active ones pass,
// grafted ones apply slope·x + bias; an unstable neuron takes its chord (dU, bU) under
// a negative coefficient and its lower slope under a positive one: al[col[i]] when al
// is given and the neuron has a column, else dL[i]. Every bound pass that relaxes rows
// one at a time (CROWN, α-CROWN, β-CROWN's domains, the forward bounder) uses it.
func relaxRow(row []float64, state []int8, dL, dU, bU, slope, ibias, al []float64, col []int32) (bias, mag float64) {
	for i, v := range row {
		if v == 0 {
			continue
		}
		switch state[i] {
		case inactive:
			row[i] = 0
		case active:
		case linear:
			t := v * ibias[i]
			bias += t
			mag += math.Abs(t)
			row[i] = v * slope[i]
		case unstable:
			if v >= 0 {
				if al != nil && col[i] >= 0 {
					row[i] = v * al[col[i]]
				} else {
					row[i] = v * dL[i]
				}
			} else {
				t := v * bU[i]
				bias += t
				mag += math.Abs(t)
				row[i] = v * dU[i]
			}
		}
	}
	return bias, mag
}

// clamp returns x limited to [lo, hi] (NaN stays NaN). The optimisers project every
// α and β with it on each step. The builtins min and max would do, but on js/wasm
// they are calls into the runtime (runtime.fmax64: 9% of a browser α-CROWN run on
// mnist_conv_small), where comparisons are branches.
func clamp(x, lo, hi float64) float64 {
	if x < lo {
		return lo
	}
	if x > hi {
		return hi
	}
	return x
}
