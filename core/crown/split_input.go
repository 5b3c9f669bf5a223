package crown

import (
	"context"
	"fmt"

	"github.com/graftcert/graftcert/core/nn"
)

// BoxBounder computes CROWN bounds of a row set over many input boxes of one network,
// as input-splitting branch and bound needs: each box's intermediate bounds are
// intersected with those of the box it was split from, which stay sound on any
// sub-box. A BoxBounder is not safe for concurrent use; make one per goroutine.
type BoxBounder struct {
	net *nn.Network
	e   *engine
}

// NewBoxBounder prepares the bound operators of net.
func NewBoxBounder(net *nn.Network) (*BoxBounder, error) {
	n := net.InSize()
	e, err := newEngine(net, make([]float64, n), make([]float64, n))
	if err != nil {
		return nil, err
	}
	return &BoxBounder{net: net, e: e}, nil
}

// BoxBound is the result of bounding a row set over one box.
type BoxBound struct {
	// Lower holds, per row r, a sound lower bound of C_r·f(x) − D_r over the box.
	Lower []float64
	// A and Bias give, per row, the linear function A_r·x + Bias_r over the input that
	// CROWN's lower bound concretises (before the rounding margin): branching scores and
	// counterexample candidates come from it.
	A    []float64
	Bias []float64
	// preLo/preHi are the bounds of every activation layer's input, in order.
	preLo, preHi [][]float64
}

// Bound bounds rows over [lo, hi]. parent, when not nil, is the bound of a box that
// contains [lo, hi]; its intermediate bounds tighten this one's.
func (b *BoxBounder) Bound(ctx context.Context, lo, hi []float64, rs *RowSet, parent *BoxBound) (*BoxBound, error) {
	if ctx == nil {
		ctx = context.Background()
	}
	e := b.e
	n := b.net.InSize()
	if len(lo) != n || len(hi) != n {
		return nil, fmt.Errorf("crown: box has %d/%d values, network input has %d", len(lo), len(hi), n)
	}
	for i := range lo {
		if !(lo[i] <= hi[i]) {
			return nil, fmt.Errorf("crown: input box element %d is [%v, %v]", i, lo[i], hi[i])
		}
	}
	if rs.M != b.net.OutSize() {
		return nil, fmt.Errorf("crown: rows have %d outputs, network has %d", rs.M, b.net.OutSize())
	}
	e.lo, e.hi = lo, hi
	e.keepTighter = true
	e.boxLo = make([][]float64, len(e.ops)+1)
	e.boxHi = make([][]float64, len(e.ops)+1)
	e.boxLo[0], e.boxHi[0] = lo, hi
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
		e.ibpFrom(last, k)
		if parent != nil && a < len(parent.preLo) {
			intersect(e.boxLo[k], e.boxHi[k], parent.preLo[a], parent.preHi[a])
		}
		if !e.exactByIBP(k) {
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
	out.A = r.a
	out.Bias = r.bias
	return out, nil
}
