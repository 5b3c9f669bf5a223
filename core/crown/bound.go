package crown

import (
	"context"
	"fmt"
	"math"

	"github.com/graftcert/graftcert/core/nn"
)

// Method names a bounding algorithm.
type Method string

const (
	IBP        Method = "ibp"
	CROWN      Method = "crown"
	AlphaCROWN Method = "alpha-crown"
)

// ParseMethod accepts the CLI spellings of a method.
func ParseMethod(s string) (Method, error) {
	switch s {
	case "ibp", "IBP":
		return IBP, nil
	case "crown", "CROWN", "backward":
		return CROWN, nil
	case "alpha-crown", "alpha", "alpha_crown", "CROWN-Optimized", "alpha-CROWN":
		return AlphaCROWN, nil
	}
	return "", fmt.Errorf("unknown bound method %q (want ibp, crown or alpha-crown)", s)
}

// Options configures Bound. The zero value means CROWN, lower bounds only.
type Options struct {
	Method Method
	// Upper also computes upper bounds of C·f(x).
	Upper bool
	// Iterations, LR and LRDecay configure α-CROWN's Adam optimiser; zero values take
	// auto_LiRPA's defaults (20, 0.1, 0.98).
	Iterations int
	LR         float64
	LRDecay    float64
	// Threads is how many goroutines one CROWN computation may use (its intermediate
	// start nodes' rows are split between them); ≤ 1 means one.
	Threads int
	// StopWhenPositive ends α-CROWN as soon as every lower bound is positive (the
	// property is verified; further iterations would only widen the margin).
	StopWhenPositive bool
	// MaxMemory, when positive, makes Bound refuse (with an error wrapping
	// ErrTooLarge) a computation whose EstimateMemory exceeds it, instead of running
	// out of memory.
	MaxMemory int64
	// PreLower and PreUpper, when set, hold sound bounds on the inputs of the
	// activation layers, one slice per activation layer in order (nil: none for that
	// layer), found by some stronger method (branch and bound on each neuron). Every
	// box the computation builds is intersected with them, and intermediate bounds are
	// then always the tighter of CROWN's and the known ones.
	PreLower, PreUpper [][]float64
}

// Result holds the bounds of C·f(x) over the box.
type Result struct {
	Lower []float64 // one per row of C
	Upper []float64 // nil unless Options.Upper
	// Unstable counts, per activation layer in order, the non-grafted neurons whose
	// pre-activation bounds straddle zero (l < 0 < u).
	Unstable []int
	// PreLower/PreUpper are the pre-activation bounds of every activation layer, in
	// order (grafted neurons included).
	PreLower, PreUpper [][]float64
}

// Bound computes bounds of C·f(x) for x in [lo, hi]. C is row-major with OutSize
// columns; nil means the identity (bounds of the outputs themselves).
func Bound(ctx context.Context, net *nn.Network, lo, hi, C []float64, opts Options) (*Result, error) {
	if ctx == nil {
		ctx = context.Background()
	}
	m := net.OutSize()
	if C == nil {
		C = make([]float64, m*m)
		for i := 0; i < m; i++ {
			C[i*m+i] = 1
		}
	}
	if len(C)%m != 0 || len(C) == 0 {
		return nil, fmt.Errorf("crown: specification has %d values, not a multiple of the %d outputs", len(C), m)
	}
	for i, c := range C {
		if math.IsNaN(c) || math.IsInf(c, 0) {
			return nil, fmt.Errorf("crown: specification value %d is %v", i, c)
		}
	}
	if err := checkMemory(net, opts, len(C)/m); err != nil {
		return nil, err
	}
	e, err := newEngine(net, lo, hi)
	if err != nil {
		return nil, err
	}
	e.threads = max(1, opts.Threads)
	if err := e.setKnown(opts); err != nil {
		return nil, err
	}
	switch opts.Method {
	case IBP:
		return e.ibpBound(C, opts.Upper), nil
	case CROWN, "":
		if err := e.crownIntermediate(ctx); err != nil {
			return nil, err
		}
		return e.crownBound(C, opts.Upper), nil
	case AlphaCROWN:
		return e.alphaBound(ctx, C, opts)
	}
	return nil, fmt.Errorf("crown: unknown method %q", opts.Method)
}

// specRows builds lower-bound rows for C (and −C when upper bounds are wanted).
func specRows(C []float64, m int, upper bool) *rows {
	n := len(C) / m
	total := n
	if upper {
		total = 2 * n
	}
	r := newRows(total, m)
	copy(r.a, C)
	if upper {
		for i, c := range C {
			r.a[n*m+i] = -c
		}
	}
	return r
}

func (e *engine) result(lb []float64, nspec int, upper bool) *Result {
	res := &Result{Lower: lb[:nspec]}
	if upper {
		res.Upper = make([]float64, nspec)
		for i := range res.Upper {
			res.Upper[i] = -lb[nspec+i]
		}
	}
	for k, rx := range e.relax {
		if rx == nil {
			continue
		}
		res.Unstable = append(res.Unstable, rx.unstableCount())
		res.PreLower = append(res.PreLower, e.boxLo[k])
		res.PreUpper = append(res.PreUpper, e.boxHi[k])
	}
	return res
}

func (e *engine) crownBound(C []float64, upper bool) *Result {
	m := e.net.OutSize()
	return e.result(e.lowerBounds(len(e.ops), specRows(C, m, upper)), len(C)/m, upper)
}

// ibpBound runs interval propagation. As auto_LiRPA does, C is folded into a final
// Dense layer so the last step bounds (C·W)h + C·b rather than C applied to a box.
func (e *engine) ibpBound(C []float64, upper bool) *Result {
	m := e.net.OutSize()
	nspec := len(C) / m
	e.boxLo[0], e.boxHi[0] = e.lo, e.hi
	last := len(e.ops) - 1
	for last >= 0 {
		if _, ok := e.ops[last].(reshapeOp); !ok {
			break
		}
		last--
	}
	var lb, ub []float64
	if d, ok := e.ops[last].(*denseOp); ok {
		e.ibpFrom(0, last)
		folded := foldSpec(d.d, C, nspec)
		fo, _ := newOp(folded)
		lb, ub = fo.interval(e.boxLo[last], e.boxHi[last])
	} else {
		e.ibpFrom(0, len(e.ops))
		lb, ub = specInterval(C, nspec, e.boxLo[len(e.ops)], e.boxHi[len(e.ops)])
	}
	// Relaxation states from the IBP boxes give the unstable counts.
	for k, o := range e.ops {
		if act, ok := o.(*actOp); ok {
			e.relax[k] = newRelaxation(act, e.boxLo[k], e.boxHi[k])
		}
	}
	res := e.result(lb, nspec, false)
	if upper {
		res.Upper = ub
	}
	return res
}

// foldSpec returns the Dense layer y ↦ C·(W·x + b).
func foldSpec(d *nn.Dense, C []float64, nspec int) *nn.Dense {
	W := make([]float64, nspec*d.In)
	B := make([]float64, nspec)
	for r := 0; r < nspec; r++ {
		c := C[r*d.Out : (r+1)*d.Out]
		w := W[r*d.In : (r+1)*d.In]
		for o, co := range c {
			if co == 0 {
				continue
			}
			row := d.W[o*d.In : (o+1)*d.In]
			for i := range w {
				w[i] += co * row[i]
			}
			if d.B != nil {
				B[r] += co * d.B[o]
			}
		}
	}
	f := &nn.Dense{NodeName: d.NodeName + "·C", In: d.In, Out: nspec, W: W, B: B}
	if _, err := f.Setup(nn.Shape{d.In}); err != nil {
		panic(err) // shapes are consistent by construction
	}
	return f
}

func specInterval(C []float64, nspec int, lo, hi []float64) ([]float64, []float64) {
	m := len(lo)
	lb := make([]float64, nspec)
	ub := make([]float64, nspec)
	for r := 0; r < nspec; r++ {
		var l, u, mag float64
		for j, c := range C[r*m : (r+1)*m] {
			if c >= 0 {
				l += c * lo[j]
				u += c * hi[j]
			} else {
				l += c * hi[j]
				u += c * lo[j]
			}
			mag += math.Abs(c) * max(math.Abs(lo[j]), math.Abs(hi[j]))
		}
		lb[r], ub[r] = l-safety*mag, u+safety*mag
	}
	return lb, ub
}
