package crown

import (
	"context"
	"fmt"
	"math"
	"sync"

	"github.com/graftcert/graftcert/core/nn"
)

// BoxBounder computes CROWN bounds of a row set over many input boxes of one network,
// as input-splitting branch and bound needs: each box's intermediate bounds are
// intersected with those of the box it was split from, which stay sound on any
// sub-box. It is safe for concurrent use.
type BoxBounder struct {
	net  *nn.Network
	pool sync.Pool // engines whose operators are reused box after box
}

// NewBoxBounder checks that every layer of net has a bound operator.
func NewBoxBounder(net *nn.Network) (*BoxBounder, error) {
	n := net.InSize()
	e, err := newEngine(net, make([]float64, n), make([]float64, n))
	if err != nil {
		return nil, err
	}
	b := &BoxBounder{net: net}
	b.pool.Put(e)
	return b, nil
}

// engineFor returns an engine for the box [lo, hi] that reuses a pooled engine's
// operators, set up as newEngine would.
func (b *BoxBounder) engineFor(lo, hi []float64) (*engine, error) {
	base, _ := b.pool.Get().(*engine)
	if base == nil {
		return newEngine(b.net, lo, hi)
	}
	if len(lo) != len(base.lo) || len(hi) != len(base.lo) {
		return nil, fmt.Errorf("crown: input box has %d/%d values, network input %v has %d", len(lo), len(hi), b.net.Input, len(base.lo))
	}
	for i := range lo {
		if math.IsNaN(lo[i]) || math.IsNaN(hi[i]) || lo[i] > hi[i] {
			return nil, fmt.Errorf("crown: input box element %d is [%v, %v]", i, lo[i], hi[i])
		}
	}
	e := &engine{net: b.net, ops: base.ops, lo: lo, hi: hi, relax: make([]*relaxation, len(base.ops)),
		boxLo: make([][]float64, len(base.ops)+1), boxHi: make([][]float64, len(base.ops)+1),
		first: base.first, threads: 1}
	e.boxLo[0], e.boxHi[0] = lo, hi
	e.ibpFrom(0, e.first)
	flo, fhi := e.boxLo[e.first], e.boxHi[e.first]
	e.mid, e.rad, e.mx = make([]float64, len(flo)), make([]float64, len(flo)), make([]float64, len(flo))
	for i := range flo {
		e.mid[i] = (flo[i] + fhi[i]) / 2
		e.rad[i] = (fhi[i] - flo[i]) / 2
		e.mx[i] = max(math.Abs(flo[i]), math.Abs(fhi[i]))
	}
	return e, nil
}

func (b *BoxBounder) release(e *engine) {
	e.relax, e.boxLo, e.boxHi = nil, nil, nil
	b.pool.Put(e)
}

// BoxBound is the result of bounding a row set over one box.
type BoxBound struct {
	// Lower holds, per row r, a sound lower bound of C_r·f(x) − D_r over the box.
	Lower []float64
	// A and Bias give, per row, a linear function A_r·x + Bias_r over the network input
	// whose minimum over the box is CROWN's lower bound (before the rounding margin):
	// branching scores and counterexample candidates come from it.
	A    []float64
	Bias []float64
	// Extra holds the lower bounds of the rows BoxBounder.Combine asked for.
	Extra []float64
	// preLo/preHi are the bounds of every activation layer's input, in order.
	preLo, preHi [][]float64
}

// Bound bounds rows over [lo, hi]. parent, when not nil, is the bound of a box that
// contains [lo, hi]; its intermediate bounds tighten this one's.
func (b *BoxBounder) Bound(ctx context.Context, lo, hi []float64, rs *RowSet, parent *BoxBound) (*BoxBound, error) {
	return b.bound(ctx, lo, hi, rs, parent, false, nil)
}

// BoundExtra is Bound followed by combine, which may return more rows (C, D as for a
// RowSet) from the result; they are bounded under the same relaxations and their lower
// bounds stored in BoxBound.Extra. Input-split branch and bound uses it for a convex
// combination of a conjunction's rows: bounding the combination directly lets CROWN
// choose its relaxation for it, which beats combining the rows' own bounds.
func (b *BoxBounder) BoundExtra(ctx context.Context, lo, hi []float64, rs *RowSet, parent *BoxBound, combine func(*BoxBound) (C, D []float64)) (*BoxBound, error) {
	return b.bound(ctx, lo, hi, rs, parent, false, combine)
}

// Quick is Bound without CROWN passes for the intermediate layers: their bounds are
// interval bounds intersected with the parent's, and only the rows themselves are
// propagated backwards. It is far cheaper and looser, for ranking candidate splits.
func (b *BoxBounder) Quick(ctx context.Context, lo, hi []float64, rs *RowSet, parent *BoxBound) (*BoxBound, error) {
	return b.bound(ctx, lo, hi, rs, parent, true, nil)
}

func (b *BoxBounder) bound(ctx context.Context, lo, hi []float64, rs *RowSet, parent *BoxBound, quick bool, combine func(*BoxBound) (C, D []float64)) (*BoxBound, error) {
	if ctx == nil {
		ctx = context.Background()
	}
	if rs.M != b.net.OutSize() {
		return nil, fmt.Errorf("crown: rows have %d outputs, network has %d", rs.M, b.net.OutSize())
	}
	e, err := b.engineFor(lo, hi)
	if err != nil {
		return nil, err
	}
	defer b.release(e)
	e.keepTighter = true
	out := &BoxBound{}
	last, a := 0, 0
	for k, o := range e.ops {
		act, ok := o.(*actOp)
		if !ok {
			continue
		}
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if k > last {
			e.ibpFrom(max(last, e.first), k)
		}
		if parent != nil && a < len(parent.preLo) {
			intersect(e.boxLo[k], e.boxHi[k], parent.preLo[a], parent.preHi[a])
		}
		if !quick && !e.exactByIBP(k) {
			if idx := e.candidates(k); len(idx) > 0 {
				e.tighten(k, idx, e.intermediate(k, idx, nil, nil))
			}
		}
		e.relax[k] = newRelaxation(act, e.boxLo[k], e.boxHi[k])
		out.preLo = append(out.preLo, e.boxLo[k])
		out.preHi = append(out.preHi, e.boxHi[k])
		last = k
		a++
	}
	r := newRows(rs.N, rs.M)
	rs.rowsInto(r, 0)
	r = e.backward(len(e.ops), r, nil, nil)
	out.Lower = e.concretize(r)
	r = e.toInput(r)
	out.A = r.a
	out.Bias = r.bias
	if combine != nil {
		if C, D := combine(out); len(D) > 0 {
			if extra, err := NewRowSet(C, D, rs.M); err == nil {
				x := newRows(extra.N, extra.M)
				extra.rowsInto(x, 0)
				x = e.backward(len(e.ops), x, nil, nil)
				out.Extra = e.concretize(x)
			}
		}
	}
	return out, nil
}

// Bytes estimates the memory the bound holds.
func (b *BoxBound) Bytes() int {
	n := 8 * (len(b.Lower) + len(b.A) + len(b.Bias))
	for i := range b.preLo {
		n += 8 * (len(b.preLo[i]) + len(b.preHi[i]))
	}
	return n
}
