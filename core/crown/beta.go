package crown

import (
	"context"
	"fmt"
	"math"
	"sync"

	"github.com/graftcert/graftcert/core/nn"
)

// β-CROWN for branch and bound over ReLU splits (Wang et al., 2021). A subdomain of the
// input box is the set of inputs where chosen unstable neurons have a fixed sign. Its
// bound reuses the intermediate bounds computed once for the whole box (α-CROWN at the
// root: they stay sound on every subdomain), treats split neurons as stable, and adds
// every split constraint s·z ≥ 0 to the objective as a Lagrangian term −β·s·z with
// β ≥ 0, which can only lower the objective on the subdomain. The lower slopes α and
// the multipliers β are optimised together by Adam with exact gradients from an adjoint
// pass, per spec row, as alpha-beta-CROWN does with fixed intermediate bounds.

// RowSet is a set of output rows: row r is the function C_r·y − D_r of the network
// output y. A subdomain is proven for the set when some row is positive on all of it
// (the rows are a conjunction that describes the unsafe outputs: y is unsafe when
// every C_r·y ≤ D_r).
type RowSet struct {
	C    []float64 // N×M, row-major
	D    []float64 // N
	N, M int
}

// NewRowSet checks C (len(D) rows of m values) and D.
func NewRowSet(C, D []float64, m int) (*RowSet, error) {
	n := len(D)
	if m <= 0 || n == 0 || len(C) != n*m {
		return nil, fmt.Errorf("crown: row set has %d coefficients for %d rows of %d outputs", len(C), n, m)
	}
	for i, c := range C {
		if math.IsNaN(c) || math.IsInf(c, 0) {
			return nil, fmt.Errorf("crown: row set coefficient %d is %v", i, c)
		}
	}
	for i, d := range D {
		if math.IsNaN(d) || math.IsInf(d, 0) {
			return nil, fmt.Errorf("crown: row set offset %d is %v", i, d)
		}
	}
	return &RowSet{C: C, D: D, N: n, M: m}, nil
}

// rowsInto writes the lower-bound rows of the set into r starting at row off.
func (rs *RowSet) rowsInto(r *rows, off int) {
	for q := 0; q < rs.N; q++ {
		copy(r.row(off+q), rs.C[q*rs.M:(q+1)*rs.M])
		r.bias[off+q] = -rs.D[q]
		r.mag[off+q] = math.Abs(rs.D[q])
	}
}

// Split fixes the sign of one neuron: z ≥ 0 when Active, else z ≤ 0.
type Split struct {
	Layer  int // position among the activation layers, 0 = first
	Neuron int
	Active bool
}

// SplitSolver bounds subdomains of one input box under ReLU splits. It is safe for
// concurrent use by BoundDomains calls that do not share domains.
type SplitSolver struct {
	net    *nn.Network
	lo, hi []float64
	acts   []int         // layer index of every activation layer
	pos    map[int]int   // layer index → position
	rx     []*relaxation // root relaxation per activation position
	cols   [][]int       // per position: the root-unstable neurons (α columns)
	col    [][]int32     // per position: neuron → column, −1 if none
	preB   [][]float64   // per position: bias of the pre-activation (BaBSR score)
	ncols  int           // Σ len(cols[p])
	pool   chan *engine
	unst   []int
	// sparse holds the restricted convolution products between the root
	// relaxations (sparseAt), by layer.
	sparseMu sync.Mutex
	sparse   map[int]*sparseConv
}

// NewSplitSolver bounds the rows C (M = net.OutSize() columns) over [lo, hi] with
// opts.Method (CROWN or α-CROWN; α-CROWN also optimises the intermediate bounds that
// every subdomain will reuse) and keeps those intermediate bounds. The returned Result
// holds the root bounds of C.
func NewSplitSolver(ctx context.Context, net *nn.Network, lo, hi, C []float64, opts Options) (*SplitSolver, *Result, error) {
	if ctx == nil {
		ctx = context.Background()
	}
	m := net.OutSize()
	if len(C) == 0 || len(C)%m != 0 {
		return nil, nil, fmt.Errorf("crown: specification has %d values, not a multiple of the %d outputs", len(C), m)
	}
	e, err := newEngine(net, lo, hi)
	if err != nil {
		return nil, nil, err
	}
	e.threads = max(1, opts.Threads)
	if err := e.setKnown(opts); err != nil {
		return nil, nil, err
	}
	var res *Result
	switch opts.Method {
	case AlphaCROWN, "":
		res, err = e.alphaBound(ctx, C, opts)
		if err != nil {
			return nil, nil, err
		}
	case CROWN:
		if err := e.crownIntermediate(ctx); err != nil {
			return nil, nil, err
		}
		res = e.crownBound(C, opts.Upper)
	default:
		return nil, nil, fmt.Errorf("crown: split solver needs CROWN or α-CROWN root bounds, not %q", opts.Method)
	}
	s := splitView(e)
	e.keepTighter = false
	s.pool <- e
	return s, res, nil
}

// splitView builds a solver over the boxes engine e holds (its activation layers'
// input bounds), without putting e into the pool.
func splitView(e *engine) *SplitSolver {
	s := &SplitSolver{net: e.net, lo: e.lo, hi: e.hi, pos: map[int]int{}, pool: make(chan *engine, 64)}
	for k, o := range e.ops {
		act, ok := o.(*actOp)
		if !ok {
			continue
		}
		p := len(s.acts)
		s.acts = append(s.acts, k)
		s.pos[k] = p
		rx := newRelaxation(act, e.boxLo[k], e.boxHi[k])
		s.rx = append(s.rx, rx)
		cols := append([]int(nil), rx.unst...)
		col := make([]int32, act.n)
		for i := range col {
			col[i] = -1
		}
		for c, i := range cols {
			col[i] = int32(c)
		}
		s.cols = append(s.cols, cols)
		s.col = append(s.col, col)
		s.ncols += len(cols)
		s.unst = append(s.unst, len(cols))
		s.preB = append(s.preB, preBias(e, k, act.n))
	}
	return s
}

// preBias returns the constant term of the affine layer feeding activation layer k,
// per neuron (zero when there is none).
func preBias(e *engine, k, n int) []float64 {
	b := make([]float64, n)
	if k == 0 {
		return b
	}
	switch o := e.ops[k-1].(type) {
	case *denseOp:
		if o.d.B != nil {
			copy(b, o.d.B)
		}
	case *convOp:
		if c := o.c; c.B != nil {
			hw := c.OutH * c.OutW
			for oc, v := range c.B {
				for i := oc * hw; i < (oc+1)*hw && i < n; i++ {
					b[i] = v
				}
			}
		}
	case *affineOp:
		if o.a.Shift != nil {
			copy(b, o.a.Shift)
		}
	}
	return b
}

// Unstable returns, per activation layer, how many neurons the root bounds leave
// unstable (the neurons that can be split; grafted neurons are never among them).
func (s *SplitSolver) Unstable() []int { return append([]int(nil), s.unst...) }

// engine takes a per-worker engine from the pool (the ops are not shared between
// goroutines).
func (s *SplitSolver) engine() (*engine, error) {
	select {
	case e := <-s.pool:
		return e, nil
	default:
	}
	return newEngine(s.net, s.lo, s.hi)
}

func (s *SplitSolver) release(e *engine) {
	select {
	case s.pool <- e:
	default:
	}
}

// Domain is one subdomain: the input box intersected with its split constraints.
type Domain struct {
	Rows   *RowSet
	Splits []Split
	// Lower holds, per row, a sound lower bound of C_r·f(x) − D_r over the domain.
	Lower []float64
	// Depth is the number of splits.
	Depth int

	alpha [][]float64 // per activation position: Rows.N × len(cols), row-major
	beta  []float64   // len(Splits) × Rows.N
	next  Split       // branching decision made when the domain was bounded
	has   bool        // next is set
	est   [2][]float64
	leaf  bool
}

// Root returns the domain without splits for the rows, its lower bounds from lower
// (one per row, may be nil: −∞).
func (s *SplitSolver) Root(rows *RowSet, lower []float64) *Domain {
	d := &Domain{Rows: rows, Lower: make([]float64, rows.N)}
	for i := range d.Lower {
		d.Lower[i] = math.Inf(-1)
		if lower != nil {
			d.Lower[i] = lower[i]
		}
	}
	return d
}

// Value is the domain's bound on the conjunction: the largest row lower bound. The
// domain is safe when it is positive.
func (d *Domain) Value() float64 {
	v := math.Inf(-1)
	for _, l := range d.Lower {
		v = max(v, l)
	}
	return v
}

// Proven reports Value() > 0.
func (d *Domain) Proven() bool { return d.Value() > 0 }

// Leaf reports that every root-unstable neuron of the domain is split: the last bound
// found no neuron left to branch on.
func (d *Domain) Leaf() bool { return d.leaf }

// Decided reports whether the domain carries a branching decision.
func (d *Domain) Decided() bool { return d.has }

// Next returns the split the domain will branch on.
func (d *Domain) Next() Split { return d.next }

// Bytes estimates the memory the domain holds.
func (d *Domain) Bytes() int {
	n := 64 + 24*len(d.Splits) + 8*len(d.Lower) + 8*len(d.beta)
	for _, a := range d.alpha {
		n += 8 * len(a)
	}
	for _, e := range d.est {
		n += 8 * len(e)
	}
	return n
}

// Branch returns the two children of the domain on its decided split: first the one
// with the neuron inactive, then active. Each starts with the parent's α and β (the new
// split's β at 0) and with the larger of the parent's bound and the branching
// heuristic's estimate, both sound for the child.
func (d *Domain) Branch() (*Domain, *Domain, error) {
	if !d.has {
		return nil, nil, fmt.Errorf("crown: domain has no branching decision")
	}
	var ch [2]*Domain
	for side := 0; side < 2; side++ {
		sp := d.next
		sp.Active = side == 1
		c := &Domain{Rows: d.Rows, Depth: d.Depth + 1}
		c.Splits = append(append(make([]Split, 0, len(d.Splits)+1), d.Splits...), sp)
		c.Lower = append([]float64(nil), d.Lower...)
		if e := d.est[side]; e != nil {
			for i, v := range e {
				c.Lower[i] = max(c.Lower[i], v)
			}
		}
		if d.alpha != nil {
			c.alpha = make([][]float64, len(d.alpha))
			for p, a := range d.alpha {
				c.alpha[p] = append([]float64(nil), a...)
			}
		}
		c.beta = make([]float64, len(c.Splits)*d.Rows.N)
		copy(c.beta, d.beta)
		ch[side] = c
	}
	return ch[0], ch[1], nil
}
