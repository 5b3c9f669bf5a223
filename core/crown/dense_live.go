package crown

import (
	"math"
	"sync"

	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/blas64"
)

// A ReLU relaxes its inactive neurons (upper bound ≤ 0) to 0, so every row leaving it
// backwards is zero in their columns: 30–60% of the columns on the shared models. The
// Dense layer before it then multiplies only the live columns by the matching rows of
// W. Which columns are skipped depends on the relaxation alone, never on the rows, so
// a start node's rows give the same values however they are split over goroutines.

// liveSplit is a relaxation's neurons split into those that are not inactive (live)
// and those that are (dead), and among the live ones those whose coefficients the
// relaxation changes (work: unstable and grafted), all increasing.
type liveSplit struct {
	once             sync.Once
	live, dead, work []int
}

// split returns rx's live, dead and work neurons, computed once: the states never
// change.
func (rx *relaxation) split() (live, dead, work []int) {
	rx.ld.once.Do(func() {
		for i, s := range rx.state {
			if s == inactive {
				rx.ld.dead = append(rx.ld.dead, i)
				continue
			}
			rx.ld.live = append(rx.ld.live, i)
			if s == unstable || s == linear {
				rx.ld.work = append(rx.ld.work, i)
			}
		}
	})
	return rx.ld.live, rx.ld.dead, rx.ld.work
}

// skip returns rx's live and dead neurons, or nil, nil when there are too few dead
// ones for skipping them to pay for the gathering.
func (rx *relaxation) skip(rows int) (live, dead []int) {
	live, dead, _ = rx.split()
	n := len(rx.state)
	// Gathering costs a pass over the live rows of W; skipping saves rows·dead of
	// them. Below a few rows, or with few dead columns, the plain product is faster.
	if len(dead) == 0 || rows*len(dead) < 4*len(live) || 8*len(dead) < n {
		return nil, nil
	}
	return live, dead
}

// liveCols is skip's live neurons (nil when skipping does not pay).
func (rx *relaxation) liveCols(rows int) []int {
	live, _ := rx.skip(rows)
	return live
}

// backwardLive is backward for rows that are zero outside the columns live (in the
// columns dead, the rest; rx.skip gives both). It checks that they are (falling back to the full product if not: never wrong, only
// slower) and multiplies the live columns by the live rows of W. The products of the
// skipped columns are exact zeros, so the values are those of the full product up
// to the grouping of the sums.
func (o *denseOp) backwardLive(in *rows, live, dead []int) *rows {
	d := o.d
	if live == nil || in.size != d.Out || !zeroIn(in, dead) {
		return o.backward(in)
	}
	nl := len(live)
	out := pooledRows(in.n, d.In)
	copy(out.bias, in.bias)
	copy(out.mag, in.mag)
	if nl == 0 {
		return out
	}
	ab := getScratch(in.n * nl)
	wb := getScratch(nl * d.In)
	defer putScratch(ab)
	defer putScratch(wb)
	A, W := *ab, *wb
	for r := 0; r < in.n; r++ {
		row := in.row(r)
		dst := A[r*nl : (r+1)*nl]
		for t, i := range live {
			dst[t] = row[i]
		}
	}
	for t, i := range live {
		copy(W[t*d.In:(t+1)*d.In], d.W[i*d.In:(i+1)*d.In])
	}
	blas64.Gemm(blas.NoTrans, blas.NoTrans, 1,
		blas64.General{Rows: in.n, Cols: nl, Stride: nl, Data: A},
		blas64.General{Rows: nl, Cols: d.In, Stride: d.In, Data: W},
		0, blas64.General{Rows: in.n, Cols: d.In, Stride: d.In, Data: out.a})
	if d.B != nil {
		for r := 0; r < in.n; r++ {
			s, m := 0.0, 0.0
			a := A[r*nl : (r+1)*nl]
			for t, i := range live {
				p := a[t] * d.B[i]
				s += p
				m += math.Abs(p)
			}
			out.bias[r] += s
			out.mag[r] += m
		}
	}
	return out
}

// zeroIn reports whether every row of r is zero in the columns dead. It ORs their
// bits without the sign (a nonzero or a NaN leaves some set): no branch per value,
// which matters on WebAssembly.
func zeroIn(r *rows, dead []int) bool {
	for q := 0; q < r.n; q++ {
		row := r.row(q)
		var acc uint64
		for _, i := range dead {
			acc |= math.Float64bits(row[i]) << 1
		}
		if acc != 0 {
			return false
		}
	}
	return true
}

// adjointLive is adjoint for a Dense layer followed by a ReLU whose neurons outside
// live are inactive: the ReLU's adjoint ignores the gradient of those, so only the
// live columns are computed (the others are left 0). The live columns' values are the
// full product's exactly: each still sums over all of the layer's inputs.
func (o *denseOp) adjointLive(g *rows, seed []float64, live []int) *rows {
	d := o.d
	if live == nil || g.size != d.In {
		return o.adjoint(g, seed)
	}
	nl := len(live)
	out := pooledRows(g.n, d.Out)
	if nl == 0 {
		return out
	}
	wt := o.transposed()
	wb := getScratch(d.In * nl)
	cb := getScratch(g.n * nl)
	defer putScratch(wb)
	defer putScratch(cb)
	WL, C := *wb, *cb
	for i := 0; i < d.In; i++ {
		src := wt[i*d.Out : (i+1)*d.Out]
		dst := WL[i*nl : (i+1)*nl]
		for t, j := range live {
			dst[t] = src[j]
		}
	}
	blas64.Gemm(blas.NoTrans, blas.NoTrans, 1,
		blas64.General{Rows: g.n, Cols: d.In, Stride: d.In, Data: g.a},
		blas64.General{Rows: d.In, Cols: nl, Stride: nl, Data: WL},
		0, blas64.General{Rows: g.n, Cols: nl, Stride: nl, Data: C})
	for r := 0; r < g.n; r++ {
		row := out.row(r)
		c := C[r*nl : (r+1)*nl]
		for t, j := range live {
			v := c[t]
			if d.B != nil {
				v += seed[r] * d.B[j]
			}
			row[j] = v
		}
	}
	return out
}
