package crown

import (
	"math"
	"sync"
)

// Dense rows crossing a convolution between two activation layers are zero on the
// inactive neurons of the activation above it (its relaxation zeroed them), and what
// the transposed convolution writes on the inactive neurons of the activation below is
// zeroed by the next relaxation. On the CNN-A models 62–72% of the neurons above and
// 24–62% below are inactive, so the dense product (the largest in CROWN's pass of the
// first Dense layer's neurons) computes mostly values that are zero or thrown away.
// sparseConv is the product restricted to the live neurons on both sides: a sparse
// matrix, one row per live input neuron listing the live output neurons that reach
// it, applied to blocks of rows (and, where the pass ends in a chain of them, the
// chain of sparse_chain.go). It is used where it holds at most sparseMaxDensity of the dense
// product's multiplications.

// sparseConv is a convolution's transposed product between the live neurons of its
// output (in) and of its input (out). Entries ptr[j]..ptr[j+1] of src (positions in
// in) and w belong to out[j].
type sparseConv struct {
	above, below *relaxation // the relaxations it was built for
	in, out      []int32
	ptr, src     []int32
	w            []float64
	// lines is below's relaxLines for out, one record of 8 words per neuron (ge, lt,
	// bge, blt, and the masks hasGE, hasLT, keep as bits), made on first use.
	linesOnce sync.Once
	lines     []float64
}

// lineTable returns s.lines, making it on first use; s.below must not be nil.
func (s *sparseConv) lineTable() []float64 {
	s.linesOnce.Do(func() {
		l := s.below.lines()
		s.lines = make([]float64, 8*len(s.out))
		for k, j := range s.out {
			rec := s.lines[8*k : 8*k+8]
			rec[0], rec[1], rec[2], rec[3] = l.ge[j], l.lt[j], l.bge[j], l.blt[j]
			rec[4] = math.Float64frombits(l.hasGE[j])
			rec[5] = math.Float64frombits(l.hasLT[j])
			rec[6] = math.Float64frombits(l.keep[j])
		}
	})
	return s.lines
}

// sparseBlock is the number of rows the sparse product carries at once, one
// accumulator each.
const sparseBlock = 8

// sparseMaxDensity is the largest fraction of the dense product's multiplications for
// which the sparse product is used. The assembly loop costs about what the dense path
// costs per multiplication once the latter's transposes and gathers are counted: on 100
// samples of mnist_cnn_a_adv, one core, a cut at 1 took 1.01–1.06 s against 1.20–1.61 s
// at 0.5 (cifar_cnn_a_mix and _mix4: the same within noise). On WebAssembly (under
// node, CROWN and IBP per sample) the sparse path at 1 beats the dense one both with
// the SIMD module (mnist_conv_small 18.7 -> 15.9 ms, cifar_conv_small 33 -> 25,
// cifar_cnn_a_mix 53 -> 42) and in Go alone (37 -> 20, 100 -> 53, 157 -> 85), so the
// cut is the same everywhere, and bounds are the same with the module or without.
// Tests change it to exercise the sparse or the dense paths everywhere.
var sparseMaxDensity = 1.0

// newSparseConv builds the restricted product of o between the live neurons of above
// (the activation over o's output) and of below (over its input; nil: every input
// neuron), or returns nil when it would hold more than maxDensity of the dense
// product's multiplications.
func newSparseConv(o *convOp, above, below *relaxation, maxDensity float64) *sparseConv {
	c := o.c
	s := &sparseConv{above: above, below: below}
	ohw, kk := c.OutH*c.OutW, c.KH*c.KW
	// The live channels of every output position (position p's are lc[lp[p]:lp[p+1]])
	// and their positions in in.
	lp := make([]int32, ohw+1)
	for i, st := range above.state {
		if st != inactive {
			lp[i%ohw+1]++
		}
	}
	for p := 0; p < ohw; p++ {
		lp[p+1] += lp[p]
	}
	lc, lk := make([]int32, lp[ohw]), make([]int32, lp[ohw])
	s.in = make([]int32, 0, lp[ohw])
	fill := append([]int32(nil), lp[:ohw]...)
	for i, st := range above.state {
		if st != inactive {
			p := i % ohw
			lc[fill[p]], lk[fill[p]] = int32(i/ohw), int32(len(s.in))
			fill[p]++
			s.in = append(s.in, int32(i))
		}
	}
	// The taps (k, o) that reach input row iy (column ix): output row (column) o
	// through kernel row (column) k.
	type tap struct{ k, o int }
	taps := func(in, out, kern, stride, dil, pad int) [][]tap {
		t := make([][]tap, in)
		for i := range t {
			for k := 0; k < kern; k++ {
				n := i + pad - k*dil
				if n >= 0 && n%stride == 0 && n/stride < out {
					t[i] = append(t[i], tap{k, n / stride})
				}
			}
		}
		return t
	}
	rowTaps := taps(c.InH, c.OutH, c.KH, c.SH, c.DH, c.PT)
	colTaps := taps(c.InW, c.OutW, c.KW, c.SW, c.DW, c.PL)
	// Count the entries, so that they are allocated once.
	live := func(j int) bool { return below == nil || below.state[j] != inactive }
	nnz, nout := 0, 0
	for j := 0; j < c.InSize(); j++ {
		if !live(j) {
			continue
		}
		nout++
		iy, ix := (j/c.InW)%c.InH, j%c.InW
		for _, ty := range rowTaps[iy] {
			for _, tx := range colTaps[ix] {
				p := ty.o*c.OutW + tx.o
				nnz += int(lp[p+1] - lp[p])
			}
		}
	}
	dense := float64(c.OutSize()) * float64(c.InC*kk)
	// The entries are indexed by int32 (the assembly reads them so): a larger product
	// stays dense.
	if float64(nnz) > maxDensity*dense || nnz > math.MaxInt32 || c.OutSize() > math.MaxInt32 || c.InSize() > math.MaxInt32 {
		return nil
	}
	// lw[q] is the offset in W of live channel lc[q]'s kernel for input channel 0.
	lw := make([]int32, len(lc))
	for q, oc := range lc {
		lw[q] = oc * int32(c.InC*kk)
	}
	s.out, s.ptr = make([]int32, 0, nout), make([]int32, 1, nout+1)
	s.src, s.w = make([]int32, nnz), make([]float64, nnz)
	src, w := s.src, s.w
	e, j := 0, 0
	for ic := 0; ic < c.InC; ic++ {
		for iy := 0; iy < c.InH; iy++ {
			for ix := 0; ix < c.InW; ix, j = ix+1, j+1 {
				if !live(j) {
					continue
				}
				s.out = append(s.out, int32(j))
				for _, ty := range rowTaps[iy] {
					for _, tx := range colTaps[ix] {
						wk := c.W[ic*kk+ty.k*c.KW+tx.k:]
						p := ty.o*c.OutW + tx.o
						q0, q1 := lp[p], lp[p+1]
						d, dw := src[e:e+int(q1-q0)], w[e:e+int(q1-q0)]
						copy(d, lk[q0:q1])
						for q, off := range lw[q0:q1] {
							dw[q] = wk[off]
						}
						e += int(q1 - q0)
					}
				}
				s.ptr = append(s.ptr, int32(e))
			}
		}
	}
	return s
}

// backward is o.backward for rows that are zero on the inactive neurons above, except
// that it leaves the inactive neurons below at zero: the values the next relaxation
// turns them into. Each value sums its entries in a fixed order, whatever rows it is
// computed with.
// (Applying the relaxation below in the same pass, bit-identical to relaxListed, was
// no faster on cifar_cnn_a_mix and cifar_cnn_a_adv.)
func (s *sparseConv) backward(o *convOp, in *rows) *rows {
	c := o.c
	var out *rows
	if s.below != nil {
		out = pooledRows(in.n, c.InSize()) // zero on the inactive neurons
	} else {
		out = uninitRows(in.n, c.InSize()) // every value is written below
	}
	copy(out.bias, in.bias)
	copy(out.mag, in.mag)
	if c.B != nil {
		for r := 0; r < in.n; r++ {
			bsum, bmag := convBias(c, in.row(r))
			out.bias[r] += bsum
			out.mag[r] += bmag
		}
	}
	xp, yp := getScratch(len(s.in)*sparseBlock), getScratch(len(s.out)*sparseBlock)
	defer putScratch(xp)
	defer putScratch(yp)
	x, y := *xp, *yp
	for r0 := 0; r0 < in.n; r0 += sparseBlock {
		nb := min(sparseBlock, in.n-r0)
		s.gather(in, r0, nb, x)
		s.product(x, y)
		for j, oj := range s.out {
			for t := 0; t < nb; t++ {
				out.a[(r0+t)*out.size+int(oj)] = y[j*sparseBlock+t]
			}
		}
	}
	return out
}

// gather sets x to the block of nb rows of in from r0 on, over s's live neurons above:
// neuron-major, the block's rows last, the lanes past nb zero.
func (s *sparseConv) gather(in *rows, r0, nb int, x []float64) {
	clear(x)
	for t := 0; t < nb; t++ {
		a := in.row(r0 + t)
		for k, i := range s.in {
			x[k*sparseBlock+t] = a[i]
		}
	}
}

// product sets y (neuron-major, 8 values per live neuron below) to s's product of the
// block x: through the installed kernel when there is one, else neuron by neuron
// (sparseAcc8: the assembly where the CPU has it, SparseProduct's loop otherwise).
func (s *sparseConv) product(x, y []float64) {
	if sparseHooked(s, x, y) {
		return
	}
	var acc [sparseBlock]float64
	for k := range s.out {
		e0, e1 := s.ptr[k], s.ptr[k+1]
		sparseAcc8(s.src[e0:e1], s.w[e0:e1], x, &acc)
		copy(y[k*sparseBlock:(k+1)*sparseBlock], acc[:])
	}
}

// sparseConvs caches an engine's restricted products, one per convolution, for the
// relaxations they were built from.
type sparseConvs struct {
	mu sync.Mutex
	by map[int]sparseEntry
}

type sparseEntry struct {
	above, below *relaxation
	s            *sparseConv
}

// sparseConv returns the restricted product for the convolution at j in a backward
// pass from start, or nil where the dense product is used: the layer right above must
// be an activation whose relaxation the pass applies (the one below, when it is one,
// restricts the product further), and the restriction must save enough. α-CROWN makes
// new relaxations every iteration; where their inactive neurons are those of the
// product built last, its entries are reused.
func (e *engine) sparseConv(j, start int) *sparseConv {
	o, _ := e.ops[j].(*convOp)
	if j+1 >= start || o == nil {
		return nil
	}
	if _, ok := e.ops[j+1].(*actOp); !ok {
		return nil
	}
	above := e.relax[j+1]
	var below *relaxation
	if j-1 >= e.first {
		if _, ok := e.ops[j-1].(*actOp); ok {
			below = e.relax[j-1]
		}
	}
	if above == nil {
		return nil
	}
	e.sparse.mu.Lock()
	defer e.sparse.mu.Unlock()
	c, ok := e.sparse.by[j]
	if ok && c.above == above && c.below == below {
		return c.s
	}
	var s *sparseConv
	if p := c.s; ok && p != nil && (below == nil) == (p.below == nil) && sameLive(p.in, above) && (below == nil || sameLive(p.out, below)) {
		s = &sparseConv{above: above, below: below, in: p.in, out: p.out, ptr: p.ptr, src: p.src, w: p.w}
	} else {
		s = newSparseConv(o, above, below, sparseMaxDensity)
	}
	if e.sparse.by == nil {
		e.sparse.by = map[int]sparseEntry{}
	}
	e.sparse.by[j] = sparseEntry{above: above, below: below, s: s}
	return s
}

// sameLive reports whether list is exactly rx's neurons that are not inactive, in
// increasing order.
func sameLive(list []int32, rx *relaxation) bool {
	k := 0
	for i, st := range rx.state {
		if st == inactive {
			continue
		}
		if k >= len(list) || int(list[k]) != i {
			return false
		}
		k++
	}
	return k == len(list)
}
