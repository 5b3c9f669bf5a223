package crown

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

// The assembly accumulation must give the Go loop's values bit for bit, for every
// length (pairs and a last odd entry), with signed zeros and special values.
func TestSparseAccMatchesGo(t *testing.T) {
	rng := rand.New(rand.NewPCG(31, 32))
	sp := []float64{0, math.Copysign(0, -1), math.Inf(1), math.Inf(-1), 1e308, -1e-310}
	for trial := 0; trial < 300; trial++ {
		k := 1 + rng.IntN(40)
		x := make([]float64, k*sparseBlock)
		for i := range x {
			x[i] = rng.NormFloat64()
			if trial%4 == 0 && rng.IntN(8) == 0 {
				x[i] = sp[rng.IntN(len(sp))]
			}
		}
		n := trial % 37
		idx := make([]int32, n)
		w := make([]float64, n)
		for e := range idx {
			idx[e] = int32(rng.IntN(k))
			w[e] = rng.NormFloat64()
			if trial%5 == 0 && rng.IntN(6) == 0 {
				w[e] = sp[rng.IntN(len(sp))]
			}
		}
		var got, want [sparseBlock]float64
		for i := range got {
			got[i] = math.NaN() // must be overwritten
		}
		sparseAcc8(idx, w, x, &got)
		sparseAccGo(idx, w, x, &want)
		for i := range got {
			if math.Float64bits(got[i]) != math.Float64bits(want[i]) && !(math.IsNaN(got[i]) && math.IsNaN(want[i])) {
				t.Fatalf("trial %d (n=%d) lane %d: %v, Go %v", trial, n, i, got[i], want[i])
			}
		}
	}
}

// sparseConv.backward against the dense transposed convolution followed by what the
// relaxation below does to inactive neurons: equal to rounding on the live inputs,
// zero on the inactive ones, the same constants; and a row's values do not depend on
// the rows it is computed with.
func TestSparseConvMatchesDense(t *testing.T) {
	rng := rand.New(rand.NewPCG(33, 34))
	for ci, k := range patchConvCases {
		o := k.build(t, rng)
		c := o.c
		for _, withBelow := range []bool{true, false} {
			name := fmt.Sprintf("case%d/below=%v", ci, withBelow)
			above := randomRelaxation(rng, c.OutSize(), false)
			var below *relaxation
			if withBelow {
				below = randomRelaxation(rng, c.InSize(), false)
			}
			s := newSparseConv(o, above, below, math.Inf(1))
			n := 1 + rng.IntN(2*sparseBlock+3)
			in := newRows(n, c.OutSize())
			for r := 0; r < n; r++ {
				in.bias[r], in.mag[r] = rng.NormFloat64(), rng.Float64()
				for i, st := range above.state {
					if st != inactive { // rows are zero on the inactive neurons above
						in.row(r)[i] = rng.NormFloat64()
					}
				}
			}
			got := s.backward(o, in)
			want := o.backward(in)
			for r := 0; r < n; r++ {
				if got.bias[r] != want.bias[r] || got.mag[r] != want.mag[r] {
					t.Fatalf("%s row %d: constant %v/%v, dense %v/%v", name, r, got.bias[r], got.mag[r], want.bias[r], want.mag[r])
				}
				g, w := got.row(r), want.row(r)
				for i := range w {
					if below != nil && below.state[i] == inactive {
						if g[i] != 0 {
							t.Fatalf("%s row %d: inactive input %d is %v", name, r, i, g[i])
						}
						continue
					}
					if math.Abs(g[i]-w[i]) > 1e-12*(1+math.Abs(w[i])) {
						t.Fatalf("%s row %d input %d: sparse %v, dense %v", name, r, i, g[i], w[i])
					}
				}
			}
			for _, sel := range [][]int{{0}, {n - 1, 0}} {
				sub := newRows(len(sel), in.size)
				for q, r := range sel {
					copy(sub.row(q), in.row(r))
				}
				alone := s.backward(o, sub)
				for q, r := range sel {
					for i, v := range alone.row(q) {
						if math.Float64bits(v) != math.Float64bits(got.row(r)[i]) {
							t.Fatalf("%s: row %d computed with others differs at %d", name, r, i)
						}
					}
				}
			}
		}
	}
}

// The restriction is only built where it saves enough.
func TestSparseConvDensity(t *testing.T) {
	rng := rand.New(rand.NewPCG(35, 36))
	o := patchConvCases[1].build(t, rng)
	all := randomRelaxation(rng, o.c.OutSize(), false)
	for i := range all.state {
		all.state[i] = active
	}
	if s := newSparseConv(o, all, nil, 0.5); s != nil {
		t.Fatalf("built with every neuron live: %d of %d multiplications", len(s.w), o.c.OutSize()*o.c.InC*o.c.KH*o.c.KW)
	}
}

// The chain's assembly steps (relaxation, concretisation) must give their Go loops'
// values bit for bit, with signed zeros, infinities and NaNs among the values.
func TestChainStepsMatchGo(t *testing.T) {
	rng := rand.New(rand.NewPCG(37, 38))
	sp := []float64{0, math.Copysign(0, -1), math.Inf(1), math.Inf(-1), math.NaN()}
	same := func(a, b float64) bool {
		return math.Float64bits(a) == math.Float64bits(b) || math.IsNaN(a) && math.IsNaN(b)
	}
	for ci, k := range patchConvCases {
		o := k.build(t, rng)
		c := o.c
		for trial := 0; trial < 4; trial++ {
			above := randomRelaxation(rng, c.OutSize(), false)
			below := randomRelaxation(rng, c.InSize(), false)
			s := newSparseConv(o, above, below, math.Inf(1))
			x := make([]float64, len(s.in)*sparseBlock)
			for i := range x {
				x[i] = rng.NormFloat64()
				if trial%2 == 1 && rng.IntN(10) == 0 {
					x[i] = sp[rng.IntN(len(sp))]
				}
			}
			y, yGo := make([]float64, len(s.out)*sparseBlock), make([]float64, len(s.out)*sparseBlock)
			var rbm, rbmGo [2 * sparseBlock]float64
			for i := range rbm {
				rbm[i] = rng.NormFloat64()
				rbmGo[i] = rbm[i]
			}
			chainRelax(s, x, y, &rbm)
			chainRelaxGo(s, s.lineTable(), x, yGo, &rbmGo)
			for i := range y {
				if !same(y[i], yGo[i]) {
					t.Fatalf("case %d trial %d: relaxed value %d is %v, Go %v", ci, trial, i, y[i], yGo[i])
				}
			}
			for i := range rbm {
				if !same(rbm[i], rbmGo[i]) {
					t.Fatalf("case %d trial %d: constant %d is %v, Go %v", ci, trial, i, rbm[i], rbmGo[i])
				}
			}
			// The last product of a chain: every input neuron.
			s = newSparseConv(o, above, nil, math.Inf(1))
			mid, rad, mx := make([]float64, c.InSize()), make([]float64, c.InSize()), make([]float64, c.InSize())
			for i := range mid {
				mid[i], rad[i] = rng.NormFloat64(), rng.Float64()
				mx[i] = math.Abs(mid[i]) + rad[i]
			}
			var out, outGo [3 * sparseBlock]float64
			chainConc(s, x, mid, rad, mx, &out)
			chainConcGo(s, x, mid, rad, mx, &outGo)
			for i := range out {
				if !same(out[i], outGo[i]) {
					t.Fatalf("case %d trial %d: sum %d is %v, Go %v", ci, trial, i, out[i], outGo[i])
				}
			}
		}
	}
}

// α-CROWN makes new relaxations each iteration: the engine's product is reused when
// their inactive neurons are the same, and rebuilt (with the same values as a fresh
// build) when they are not.
func TestSparseConvReuse(t *testing.T) {
	rm := loadRef(t, "cifar_cnn_a_adv")
	s0 := rm.ref.Samples[0]
	lo, hi := box(rm.X.Sample(s0.Index), rm.ref.Eps)
	e, err := newEngine(rm.net, lo, hi)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.crownIntermediate(context.Background()); err != nil {
		t.Fatal(err)
	}
	j, start := -1, len(e.ops)
	for k := len(e.ops) - 1; k > e.first; k-- {
		if _, ok := e.ops[k].(*convOp); ok {
			j = k
			break
		}
	}
	first := e.sparseConv(j, start)
	if first == nil || first.below == nil {
		t.Fatalf("no sparse product with an activation below at layer %d", j)
	}
	// The same states in new relaxations: the entries are shared.
	renew := func(k int) *relaxation {
		rx := e.relax[k]
		return newRelaxation(rx.op, rx.l, rx.u)
	}
	e.relax[j+1], e.relax[j-1] = renew(j+1), renew(j-1)
	again := e.sparseConv(j, start)
	if again == first || again.above != e.relax[j+1] || &again.src[0] != &first.src[0] {
		t.Fatal("same inactive neurons: the product's entries were not reused")
	}
	// One more inactive neuron below: a new product, equal to a fresh build.
	rx := e.relax[j-1]
	l, u := append([]float64(nil), rx.l...), append([]float64(nil), rx.u...)
	for i, st := range rx.state {
		if st != inactive {
			l[i], u[i] = -1, -0.5
			break
		}
	}
	e.relax[j-1] = newRelaxation(rx.op, l, u)
	got := e.sparseConv(j, start)
	want := newSparseConv(e.ops[j].(*convOp), e.relax[j+1], e.relax[j-1], sparseMaxDensity)
	if &got.src[0] == &first.src[0] || len(got.out) != len(first.out)-1 || len(got.w) != len(want.w) {
		t.Fatalf("changed inactive neurons: %d live below (was %d), %d entries (a fresh build has %d)", len(got.out), len(first.out), len(got.w), len(want.w))
	}
	for i := range want.w {
		if got.w[i] != want.w[i] || got.src[i] != want.src[i] {
			t.Fatalf("entry %d differs from a fresh build", i)
		}
	}
}

// Branch and bound's passes (SplitSolver.backward) with the sparse products between
// the root relaxations give the dense products' rows, to rounding, for domains with
// splits of both signs and nonzero β (whose terms sit on root-unstable neurons).
func TestSplitSolverSparseMatchesDense(t *testing.T) {
	rng := rand.New(rand.NewPCG(43, 44))
	defer func(d float64) { sparseMaxDensity = d }(sparseMaxDensity)
	used := 0
	for trial := 0; trial < 4; trial++ {
		net := randomCNN(rng)
		_, lo, hi := randomBox(rng, net.InSize(), 0.4)
		m := net.OutSize()
		C := make([]float64, 2*m)
		for i := range C {
			C[i] = rng.NormFloat64()
		}
		run := func(cut float64) (*rows, int) {
			sparseMaxDensity = cut
			s, _, err := NewSplitSolver(context.Background(), net, lo, hi, C, Options{Method: CROWN})
			if err != nil {
				t.Fatal(err)
			}
			r := rand.New(rand.NewPCG(uint64(trial), 1)) // the same domain both times
			rs, _ := NewRowSet(C, []float64{0.1, -0.2}, m)
			d := s.Root(rs, nil)
			for p, cols := range s.cols {
				for _, i := range cols {
					if r.IntN(3) == 0 {
						d.Splits = append(d.Splits, Split{Layer: p, Neuron: i, Active: r.IntN(2) == 0})
					}
				}
			}
			s.ensureParams(d)
			for i := range d.beta {
				d.beta[i] = 0.1 + r.Float64()
			}
			e, _ := s.engine()
			it, err := s.newItem(d, nil)
			if err != nil {
				t.Fatal(err)
			}
			out := s.backward(e, []*bitem{it}, make([]*rows, len(s.acts)))
			n := 0
			for _, sp := range s.sparse {
				if sp != nil {
					n++
				}
			}
			return out, n
		}
		dense, nd := run(0) // no sparse product qualifies
		sparse, ns := run(math.Inf(1))
		if nd != 0 || ns == 0 {
			t.Fatalf("trial %d: %d sparse products with the cut off, %d with it on", trial, nd, ns)
		}
		used += ns
		for q := 0; q < dense.n; q++ {
			if math.Abs(sparse.bias[q]-dense.bias[q]) > 1e-12*(1+math.Abs(dense.bias[q])) {
				t.Fatalf("trial %d row %d: constant %v, dense %v", trial, q, sparse.bias[q], dense.bias[q])
			}
			for i, w := range dense.row(q) {
				if g := sparse.row(q)[i]; math.Abs(g-w) > 1e-12*(1+math.Abs(w)) {
					t.Fatalf("trial %d row %d input %d: sparse %v, dense %v", trial, q, i, g, w)
				}
			}
		}
	}
	t.Logf("%d sparse products used", used)
}
