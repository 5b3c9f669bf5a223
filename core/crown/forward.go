package crown

import (
	"context"
	"fmt"
	"math"
	"sync"

	"github.com/graftcert/graftcert/core/nn"
)

// ForwardBounder bounds row sets over small input boxes of a dense network with few
// inputs (input-splitting branch and bound), in two ways.
//
// Bound uses the forward linear relaxation for the intermediate layers (auto_LiRPA's
// method "forward", the symbolic intervals of DeepPoly and Neurify): every neuron
// carries a lower and an upper linear function of the d network inputs, pushed
// forwards through each affine layer and each activation's relaxation, so a layer of
// width w costs O(w²·d) instead of the O(w³·depth) of backward CROWN passes. Their
// concrete bounds are intersected with the interval bounds and with the parent box's
// (sound on any sub-box); with Refine, the neurons still unstable then get a backward
// CROWN pass too. Only the rows themselves are propagated backwards, under the
// relaxations those bounds give. On ACAS Xu it costs about a quarter of BoxBounder's
// CROWN bound and equals it on boxes 1/1000 of the property's widths, but it is far
// looser on wide boxes; as a replacement for, a filter before, or a ranking for
// BoxBounder in branch and bound it lost time on every instance measured.
//
// Optimize takes a bound from either bounder and optimises each row's lower slopes
// under its intermediate bounds (α-CROWN on the rows only), which branch and bound
// does use.
//
// The loops are written for small widths and skip the neurons a box makes inactive.
// Dense, elementwise Affine, Reshape, ReLU and LinearMaskedRelu layers are supported.
// It is safe for concurrent use; set the exported fields before the first call.
type ForwardBounder struct {
	net *nn.Network
	d   int
	ops []fop
	// Refine runs backward CROWN passes for the neurons the forward bounds leave
	// unstable (tighter, and dearer on wide boxes).
	Refine bool
	// Alpha is the number of projected gradient steps that optimise the lower
	// slopes of the unstable neurons for each row (α-CROWN with the intermediate
	// bounds held fixed); 0 keeps CROWN's adaptive slopes.
	Alpha int
	// AlphaLR is the Adam step size of that optimisation and of Optimize's (default
	// 0.1; α lives in [0, 1] and Adam's steps are about AlphaLR long, so 1 moves
	// fastest).
	AlphaLR float64
	maxW    int
	nAct    int
	pool    sync.Pool // *fwdWork
}

type fopKind int8

const (
	fDense fopKind = iota
	fAffine
	fReshape
	fAct
)

// fop is one layer as the forward bounder sees it.
type fop struct {
	kind   fopKind
	in, n  int // input and output sizes
	w, b   []float64
	absW   []float64
	scale  []float64 // Affine (nil: 1)
	shift  []float64 // Affine (nil: 0)
	linear []bool    // activation: grafted neurons
	slope  []float64
	bias   []float64
}

// NewForwardBounder checks that every layer of net is one the forward relaxation
// handles.
func NewForwardBounder(net *nn.Network) (*ForwardBounder, error) {
	f := &ForwardBounder{net: net, d: net.InSize(), maxW: net.InSize()}
	size := net.InSize()
	for _, l := range net.Layers {
		var o fop
		switch t := l.(type) {
		case *nn.Dense:
			o = fop{kind: fDense, in: t.In, n: t.Out, w: t.W, b: t.B, absW: make([]float64, len(t.W))}
			for i, v := range t.W {
				o.absW[i] = math.Abs(v)
			}
		case *nn.Affine:
			o = fop{kind: fAffine, in: size, n: size, scale: t.Scale, shift: t.Shift}
		case *nn.Reshape:
			o = fop{kind: fReshape, in: size, n: size}
		case *nn.ReLU:
			o = fop{kind: fAct, in: size, n: size}
			f.nAct++
		case *nn.MaskedReLU:
			o = fop{kind: fAct, in: size, n: size, linear: make([]bool, size), slope: t.Slope, bias: t.Bias}
			for i := range o.linear {
				o.linear[i] = t.Grafted(i)
			}
			f.nAct++
		default:
			return nil, fmt.Errorf("crown: layer %q: the forward relaxation has no rule for %s", l.Name(), l.Kind())
		}
		if o.in != size {
			return nil, fmt.Errorf("crown: layer %q takes %d values, its input has %d", l.Name(), o.in, size)
		}
		size = o.n
		f.maxW = max(f.maxW, size)
		f.ops = append(f.ops, o)
	}
	return f, nil
}

// fwdWork holds one goroutine's buffers.
type fwdWork struct {
	fn, fn2   []float64 // stacked lower/upper functions: 2·width rows of d+1
	mag, mag2 []float64
	lo, hi    []float64 // value box of the current layer
	lo2, hi2  []float64
	live      []int
	mid, rad  []float64 // input box
	mx        []float64
	rx        []fwdRelax // per activation layer
}

// fwdRelax is the relaxation of one activation layer (as relaxation, compactly).
type fwdRelax struct {
	state      []int8
	dU, bU, dL []float64
	slope, b   []float64 // grafted neurons
}

// stride is the length of one function in memory: d coefficients and the constant,
// padded to 8 when that fits so the hot loop can be unrolled.
func (f *ForwardBounder) stride() int {
	if f.d+1 <= 8 {
		return 8
	}
	return f.d + 1
}

func (f *ForwardBounder) work() *fwdWork {
	if w, ok := f.pool.Get().(*fwdWork); ok {
		return w
	}
	W := f.maxW
	dw := f.stride()
	w := &fwdWork{fn: make([]float64, 2*W*dw), fn2: make([]float64, 2*W*dw), mag: make([]float64, W),
		mag2: make([]float64, W), lo: make([]float64, W), hi: make([]float64, W), lo2: make([]float64, W),
		hi2: make([]float64, W), live: make([]int, 0, W), mid: make([]float64, f.d), rad: make([]float64, f.d),
		mx: make([]float64, f.d)}
	for _, o := range f.ops {
		if o.kind == fAct {
			w.rx = append(w.rx, fwdRelax{state: make([]int8, o.n), dU: make([]float64, o.n), bU: make([]float64, o.n), dL: make([]float64, o.n)})
		}
	}
	return w
}

// Bound bounds rows over [lo, hi]; parent, when not nil, is the bound of a box that
// contains [lo, hi] (from this bounder or a BoxBounder of the same network) and its
// intermediate bounds tighten this one's. combine, when not nil, is called as for
// BoxBounder.BoundExtra.
func (f *ForwardBounder) Bound(ctx context.Context, lo, hi []float64, rs *RowSet, parent *BoxBound, combine func(*BoxBound) (C, D []float64)) (*BoxBound, error) {
	if ctx == nil {
		ctx = context.Background()
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if rs.M != f.net.OutSize() {
		return nil, fmt.Errorf("crown: rows have %d outputs, network has %d", rs.M, f.net.OutSize())
	}
	if len(lo) != f.d || len(hi) != f.d {
		return nil, fmt.Errorf("crown: input box has %d/%d values, network input %v has %d", len(lo), len(hi), f.net.Input, f.d)
	}
	for i := range lo {
		if math.IsNaN(lo[i]) || math.IsNaN(hi[i]) || lo[i] > hi[i] {
			return nil, fmt.Errorf("crown: input box element %d is [%v, %v]", i, lo[i], hi[i])
		}
	}
	w := f.work()
	defer f.pool.Put(w)
	d, dw := f.d, f.stride()
	for i := 0; i < d; i++ {
		w.mid[i] = (lo[i] + hi[i]) / 2
		w.rad[i] = (hi[i] - lo[i]) / 2
		w.mx[i] = max(math.Abs(lo[i]), math.Abs(hi[i]))
	}
	// Identity functions of the input.
	n := d
	fn, mag := w.fn[:2*n*dw], w.mag[:n]
	clear(fn)
	for i := 0; i < d; i++ {
		fn[i*dw+i] = 1
		fn[(n+i)*dw+i] = 1
		mag[i] = w.mx[i]
	}
	blo, bhi := w.lo[:n], w.hi[:n]
	copy(blo, lo)
	copy(bhi, hi)
	out := &BoxBound{}
	a := 0
	for _, o := range f.ops {
		switch o.kind {
		case fReshape:
		case fAffine:
			affineFuncs(&o, fn, mag, n, d, dw)
			affineBox(&o, blo, bhi)
		case fDense:
			m := o.n
			fn2, mag2 := w.fn2[:2*m*dw], w.mag2[:m]
			denseFuncs(&o, fn, mag, fn2, mag2, n, d, dw, &w.live)
			lo2, hi2 := w.lo2[:m], w.hi2[:m]
			denseBox(&o, blo, bhi, lo2, hi2)
			w.fn, w.fn2 = w.fn2, w.fn
			w.mag, w.mag2 = w.mag2, w.mag
			w.lo, w.lo2 = w.lo2, w.lo
			w.hi, w.hi2 = w.hi2, w.hi
			fn, mag, blo, bhi, n = fn2, mag2, lo2, hi2, m
		case fAct:
			if err := ctx.Err(); err != nil {
				return nil, err
			}
			plo, phi := make([]float64, n), make([]float64, n)
			copy(plo, blo)
			copy(phi, bhi)
			tightenFuncs(fn, mag, n, d, dw, w.mid, w.rad, plo, phi)
			if parent != nil && a < len(parent.preLo) && len(parent.preLo[a]) == n {
				intersect(plo, phi, parent.preLo[a], parent.preHi[a])
			}
			if f.Refine {
				f.refine(w, a, plo, phi)
			}
			rx := &w.rx[a]
			rx.set(&o, plo, phi)
			rx.funcs(fn, mag, n, d, dw)
			rx.box(plo, phi, blo, bhi)
			out.preLo = append(out.preLo, plo)
			out.preHi = append(out.preHi, phi)
			a++
		}
	}
	if f.Alpha > 0 {
		out.Lower, out.A, out.Bias = f.alphaRows(w, rs.C, rs.D, rs.N, f.Alpha, allPositive)
	} else {
		C := make([]float64, rs.N*rs.M)
		copy(C, rs.C)
		out.Lower, out.A, out.Bias = f.backRows(w, a, C, rs.D, rs.N, true)
	}
	if combine != nil {
		if C, D := combine(out); len(D) > 0 {
			if extra, err := NewRowSet(C, D, rs.M); err == nil {
				if f.Alpha > 0 {
					out.Extra, _, _ = f.alphaRows(w, extra.C, extra.D, extra.N, f.Alpha, allPositive)
				} else {
					c := append([]float64(nil), extra.C...)
					out.Extra, _, _ = f.backRows(w, a, c, extra.D, extra.N, false)
				}
			}
		}
	}
	return out, nil
}

// refine tightens the bounds [lo, hi] of activation layer a's unstable neurons with
// backward CROWN passes through the relaxations of the layers below.
func (f *ForwardBounder) refine(w *fwdWork, a int, lo, hi []float64) {
	// The op producing this activation's input.
	k := f.actOp(a) - 1
	var idx []int
	for i := range lo {
		if lo[i] < 0 && hi[i] > 0 && !(f.ops[k+1].linear != nil && f.ops[k+1].linear[i]) {
			idx = append(idx, i)
		}
	}
	if len(idx) == 0 {
		return
	}
	n := f.ops[k].n
	nr := 2 * len(idx)
	A := make([]float64, nr*n)
	for t, i := range idx {
		A[t*n+i] = 1
		A[(len(idx)+t)*n+i] = -1
	}
	lb := f.backward(w, k+1, a, A, nil, nr, n, nil, nil)
	for t, i := range idx {
		if l := lb[t]; l > lo[i] {
			lo[i] = l
		}
		if u := -lb[len(idx)+t]; u < hi[i] {
			hi[i] = u
		}
		if lo[i] > hi[i] {
			lo[i], hi[i] = hi[i], lo[i]
		}
	}
}

// actOp returns the index of the op of activation layer a.
func (f *ForwardBounder) actOp(a int) int {
	for k, o := range f.ops {
		if o.kind == fAct {
			if a == 0 {
				return k
			}
			a--
		}
	}
	return -1
}

// backRows bounds the rows C·y − D over the output (C is overwritten): lower bounds,
// and, when lin is set, the linear functions A·x + Bias over the input they come from.
func (f *ForwardBounder) backRows(w *fwdWork, nAct int, C, D []float64, nr int, lin bool) (lower, A, bias []float64) {
	m := f.net.OutSize()
	b := make([]float64, nr)
	mg := make([]float64, nr)
	for r := range b {
		b[r] = -D[r]
		mg[r] = math.Abs(D[r])
	}
	var coef []float64
	if lin {
		coef = make([]float64, 0)
	}
	lower = f.backward(w, len(f.ops), nAct, C, b, nr, m, mg, &coef)
	if lin {
		return lower, coef, b
	}
	return lower, nil, nil
}

// backward carries nr rows A (nr×size over the input of op start; bias and mag may be
// nil: zero) down to the network input through ops start−1 … 0, activation layers
// nAct−1 … 0 relaxed as set in w, and returns their lower bounds over the input box.
// When coef is not nil it receives the rows' input coefficients (bias holds their
// constants).
func (f *ForwardBounder) backward(w *fwdWork, start, nAct int, A, bias []float64, nr, size int, mag []float64, coef *[]float64) []float64 {
	if bias == nil {
		bias = make([]float64, nr)
	}
	if mag == nil {
		mag = make([]float64, nr)
	}
	a := nAct
	cur := A
	for k := start - 1; k >= 0; k-- {
		o := &f.ops[k]
		switch o.kind {
		case fReshape:
		case fAffine:
			for r := 0; r < nr; r++ {
				row := cur[r*size : (r+1)*size]
				s, mg := 0.0, 0.0
				for i, v := range row {
					if v == 0 {
						continue
					}
					if o.shift != nil {
						t := v * o.shift[i]
						s += t
						mg += math.Abs(t)
					}
					if o.scale != nil {
						row[i] = v * o.scale[i]
					}
				}
				bias[r] += s
				mag[r] += mg
			}
		case fDense:
			next := make([]float64, nr*o.in)
			for r := 0; r < nr; r++ {
				row := cur[r*size : (r+1)*size]
				dst := next[r*o.in : (r+1)*o.in]
				s, mg := 0.0, 0.0
				for j, v := range row {
					if v == 0 {
						continue
					}
					wr := o.w[j*o.in : (j+1)*o.in]
					wr = wr[:len(dst)]
					for i, x := range wr {
						dst[i] += v * x
					}
					if o.b != nil {
						t := v * o.b[j]
						s += t
						mg += math.Abs(t)
					}
				}
				bias[r] += s
				mag[r] += mg
			}
			cur, size = next, o.in
		case fAct:
			a--
			rx := &w.rx[a]
			for r := 0; r < nr; r++ {
				s, mg := relaxRow(cur[r*size:(r+1)*size], rx.state, rx.dL, rx.dU, rx.bU, o.slope, o.bias, nil, nil)
				bias[r] += s
				mag[r] += mg
			}
		}
	}
	lb := make([]float64, nr)
	for r := 0; r < nr; r++ {
		row := cur[r*size : (r+1)*size]
		var c, wd, m float64
		for j, v := range row {
			av := math.Abs(v)
			c += v * w.mid[j]
			wd += av * w.rad[j]
			m += av * w.mx[j]
		}
		lb[r] = bias[r] + c - wd - safety*(m+mag[r]+math.Abs(bias[r]))
	}
	if coef != nil {
		*coef = cur
	}
	return lb
}

// denseFuncs maps the functions of a dense layer's input (n values) to those of its
// output, skipping inputs whose functions are zero.
func denseFuncs(o *fop, fn, mag, out, omag []float64, n, d, dw int, live *[]int) {
	m := o.n
	lv := (*live)[:0]
	for k := 0; k < n; k++ {
		if mag[k] != 0 {
			lv = append(lv, k)
		}
	}
	*live = lv
	clear(out)
	for j := 0; j < m; j++ {
		L := out[j*dw : (j+1)*dw]
		U := out[(m+j)*dw : (m+j+1)*dw]
		wr := o.w[j*n : (j+1)*n]
		aw := o.absW[j*n : (j+1)*n]
		mg := 0.0
		if dw == 8 {
			// Unrolled: the common case of at most 7 inputs.
			l8, u8 := (*[8]float64)(L), (*[8]float64)(U)
			for _, k := range lv {
				v := wr[k]
				if v == 0 {
					continue
				}
				mg += aw[k] * mag[k]
				a := (*[8]float64)(fn[k*8 : k*8+8])
				b := (*[8]float64)(fn[(n+k)*8 : (n+k)*8+8])
				if v < 0 {
					a, b = b, a
				}
				l8[0] += v * a[0]
				l8[1] += v * a[1]
				l8[2] += v * a[2]
				l8[3] += v * a[3]
				l8[4] += v * a[4]
				l8[5] += v * a[5]
				l8[6] += v * a[6]
				l8[7] += v * a[7]
				u8[0] += v * b[0]
				u8[1] += v * b[1]
				u8[2] += v * b[2]
				u8[3] += v * b[3]
				u8[4] += v * b[4]
				u8[5] += v * b[5]
				u8[6] += v * b[6]
				u8[7] += v * b[7]
			}
		} else {
			U = U[:len(L)]
			for _, k := range lv {
				v := wr[k]
				if v == 0 {
					continue
				}
				mg += aw[k] * mag[k]
				Lk := fn[k*dw : (k+1)*dw]
				Uk := fn[(n+k)*dw : (n+k+1)*dw]
				if v < 0 {
					Lk, Uk = Uk, Lk
				}
				Lk, Uk = Lk[:len(L)], Uk[:len(L)]
				for t := range L {
					L[t] += v * Lk[t]
					U[t] += v * Uk[t]
				}
			}
		}
		if o.b != nil {
			L[d] += o.b[j]
			U[d] += o.b[j]
			mg += math.Abs(o.b[j])
		}
		omag[j] = mg
	}
}

// denseBox is the interval image of [lo, hi] (widened by the rounding margin).
func denseBox(o *fop, lo, hi, olo, ohi []float64) {
	n := o.in
	for j := 0; j < o.n; j++ {
		wr := o.w[j*n : (j+1)*n]
		aw := o.absW[j*n : (j+1)*n]
		c, r := 0.0, 0.0
		for k, v := range wr {
			if lo[k] == 0 && hi[k] == 0 {
				continue
			}
			c += v * (lo[k] + hi[k]) / 2
			r += aw[k] * (hi[k] - lo[k]) / 2
		}
		if o.b != nil {
			c += o.b[j]
		}
		m := safety * (math.Abs(c) + r)
		olo[j], ohi[j] = c-r-m, c+r+m
	}
}

func affineFuncs(o *fop, fn, mag []float64, n, d, dw int) {
	for j := 0; j < n; j++ {
		L, U := fn[j*dw:(j+1)*dw], fn[(n+j)*dw:(n+j+1)*dw]
		if o.scale != nil {
			scaleFuncs(L, U, o.scale[j])
			mag[j] *= math.Abs(o.scale[j])
		}
		if o.shift != nil {
			L[d] += o.shift[j]
			U[d] += o.shift[j]
			mag[j] += math.Abs(o.shift[j])
		}
	}
}

// scaleFuncs multiplies a neuron's lower and upper linear functions by s; a negative
// s turns the upper one into the lower one.
func scaleFuncs(L, U []float64, s float64) {
	for i := range L {
		L[i] *= s
		U[i] *= s
	}
	if s < 0 {
		for i := range L {
			L[i], U[i] = U[i], L[i]
		}
	}
}

func affineBox(o *fop, lo, hi []float64) {
	for i := range lo {
		l, h := lo[i], hi[i]
		if o.scale != nil {
			l, h = l*o.scale[i], h*o.scale[i]
			if l > h {
				l, h = h, l
			}
		}
		if o.shift != nil {
			l += o.shift[i]
			h += o.shift[i]
		}
		m := safety * max(math.Abs(l), math.Abs(h))
		lo[i], hi[i] = l-m, h+m
	}
}

// tightenFuncs intersects [lo, hi] (in place) with the concrete bounds of the
// functions over the input box mid ± rad, widened by the rounding margin.
func tightenFuncs(fn, mag []float64, n, d, dw int, mid, rad, lo, hi []float64) {
	for j := 0; j < n; j++ {
		L, U := fn[j*dw:(j+1)*dw], fn[(n+j)*dw:(n+j+1)*dw]
		l, u := L[d], U[d]
		for i := 0; i < d; i++ {
			l += L[i]*mid[i] - math.Abs(L[i])*rad[i]
			u += U[i]*mid[i] + math.Abs(U[i])*rad[i]
		}
		m := safety * mag[j]
		l, u = l-m, u+m
		if l > lo[j] {
			lo[j] = l
		}
		if u < hi[j] {
			hi[j] = u
		}
		if lo[j] > hi[j] { // only through rounding at a degenerate box
			lo[j], hi[j] = hi[j], lo[j]
		}
	}
}

// set builds the relaxation of activation o for input bounds [l, u]: the chord above
// an unstable neuron and CROWN's adaptive lower slope, as newRelaxation.
func (rx *fwdRelax) set(o *fop, l, u []float64) {
	for i := range l {
		rx.state[i], rx.dU[i], rx.bU[i], rx.dL[i] = relaxNeuron(o.linear != nil && o.linear[i], l[i], u[i])
	}
	rx.slope, rx.b = o.slope, o.bias
}

// funcs maps the functions of the activation's input to those of its output.
func (rx *fwdRelax) funcs(fn, mag []float64, n, d, dw int) {
	for j := 0; j < n; j++ {
		L, U := fn[j*dw:(j+1)*dw], fn[(n+j)*dw:(n+j+1)*dw]
		switch rx.state[j] {
		case inactive:
			clear(L)
			clear(U)
			mag[j] = 0
		case active:
		case linear:
			s, t := rx.slope[j], rx.b[j]
			scaleFuncs(L, U, s)
			L[d] += t
			U[d] += t
			mag[j] = math.Abs(s)*mag[j] + math.Abs(t)
		case unstable:
			s := rx.dU[j]
			for i := range U {
				U[i] *= s
			}
			U[d] += rx.bU[j]
			if rx.dL[j] == 0 {
				clear(L)
			}
			mag[j] += math.Abs(rx.bU[j])
		}
	}
}

// box sets [olo, ohi] to the activation's output range over input bounds [l, u].
func (rx *fwdRelax) box(l, u, olo, ohi []float64) {
	for i := range l {
		switch rx.state[i] {
		case inactive:
			olo[i], ohi[i] = 0, 0
		case active:
			olo[i], ohi[i] = l[i], u[i]
		case unstable:
			olo[i], ohi[i] = 0, u[i]
		case linear:
			a, b := rx.slope[i]*l[i]+rx.b[i], rx.slope[i]*u[i]+rx.b[i]
			if a > b {
				a, b = b, a
			}
			m := safety * max(math.Abs(a), math.Abs(b))
			olo[i], ohi[i] = a-m, b+m
		}
	}
}

// Unstable counts the neurons whose bounds straddle zero, over every activation layer.
func (b *BoxBound) Unstable() int {
	n := 0
	for a := range b.preLo {
		for j, l := range b.preLo[a] {
			if l < 0 && b.preHi[a][j] > 0 {
				n++
			}
		}
	}
	return n
}
