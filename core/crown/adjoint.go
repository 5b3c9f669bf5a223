package crown

import (
	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/blas64"
)

// The adjoint of the backward bound pass runs forwards: if the backward pass maps rows
// A over a layer's output to A·J over its input and adds A·c to the bias, the gradient
// G of the bound with respect to A·J maps back to G·Jᵀ + seed·c with respect to A — a
// forward pass of the layer on each gradient row with the bias scaled by the row's seed.

func (o *denseOp) adjoint(g *rows, seed []float64) *rows {
	d := o.d
	out := pooledRows(g.n, d.Out)
	blas64.Gemm(blas.NoTrans, blas.NoTrans, 1,
		blas64.General{Rows: g.n, Cols: d.In, Stride: d.In, Data: g.a},
		blas64.General{Rows: d.In, Cols: d.Out, Stride: d.Out, Data: o.transposed()},
		0, blas64.General{Rows: g.n, Cols: d.Out, Stride: d.Out, Data: out.a})
	if d.B != nil {
		for r := 0; r < g.n; r++ {
			row := out.row(r)
			for j, b := range d.B {
				row[j] += seed[r] * b
			}
		}
	}
	return out
}

func (o *convOp) adjoint(g *rows, seed []float64) *rows {
	c := o.c
	out := pooledRows(g.n, c.OutSize())
	o.gemmForward(g, out)
	if c.B != nil {
		hw := c.OutH * c.OutW
		for r := 0; r < g.n; r++ {
			row := out.row(r)
			for oc, b := range c.B {
				v := seed[r] * b
				for p := oc * hw; p < (oc+1)*hw; p++ {
					row[p] += v
				}
			}
		}
	}
	return out
}

// gemmForward is the convolution (no bias) of every row of g into out, as im2col and
// one matrix product per chunk of rows.
func (o *convOp) gemmForward(g, out *rows) {
	c := o.c
	ohw := c.OutH * c.OutW
	ckk := c.InC * c.KH * c.KW
	chunk := max(1, denseChunk/(ckk*ohw))
	cp := getScratch(ckk * min(chunk, g.n) * ohw)
	rp := getScratch(c.OutC * min(chunk, g.n) * ohw)
	defer putScratch(cp)
	defer putScratch(rp)
	cols, res := *cp, *rp
	for r0 := 0; r0 < g.n; r0 += chunk {
		nr := min(chunk, g.n-r0)
		w := nr * ohw
		o.im2col(g, r0, nr, cols[:ckk*w])
		gemmWide(false, c.W, c.OutC, ckk, cols[:ckk*w], res[:c.OutC*w], w)
		for r := 0; r < nr; r++ {
			dst := out.row(r0 + r)
			for oc := 0; oc < c.OutC; oc++ {
				copy(dst[oc*ohw:(oc+1)*ohw], res[oc*w+r*ohw:oc*w+(r+1)*ohw])
			}
		}
	}
}

// im2col lays the receptive fields of rows r0…r0+nr−1 out as columns: cols has one
// row per (input channel, ky, kx) and one column per (row, output position). Rows are
// the outer loop so that a row's input stays in cache over all kernel taps.
func (o *convOp) im2col(g *rows, r0, nr int, cols []float64) {
	if o.im2colHooked(g, r0, nr, cols) {
		return
	}
	c := o.c
	ohw := c.OutH * c.OutW
	ihw := c.InH * c.InW
	w := nr * ohw
	taps := o.taps()
	for r := 0; r < nr; r++ {
		src := g.row(r0 + r)
		for ic := 0; ic < c.InC; ic++ {
			sch := src[ic*ihw : (ic+1)*ihw]
			for ky := 0; ky < c.KH; ky++ {
				for kx := 0; kx < c.KW; kx++ {
					tp := taps[ky*c.KW+kx]
					dr := cols[((ic*c.KH+ky)*c.KW+kx)*w+r*ohw:][:ohw]
					if tp.oxLo >= tp.oxHi || tp.oyLo >= tp.oyHi {
						clear(dr)
						continue
					}
					clear(dr[:tp.oyLo*c.OutW])
					clear(dr[tp.oyHi*c.OutW:])
					xoff := kx*c.DW - c.PL
					sw := c.SW
					for oy := tp.oyLo; oy < tp.oyHi; oy++ {
						iy := oy*c.SH - c.PT + ky*c.DH
						srow := sch[iy*c.InW : (iy+1)*c.InW]
						drow := dr[oy*c.OutW : (oy+1)*c.OutW]
						// The rows are short (a few to a few tens of values): loops,
						// not clear and copy, which are calls on WebAssembly.
						for i := range drow[:tp.oxLo] {
							drow[i] = 0
						}
						for i := tp.oxHi; i < len(drow); i++ {
							drow[i] = 0
						}
						d := drow[tp.oxLo:tp.oxHi]
						s := srow[tp.oxLo*sw+xoff:]
						if sw == 1 {
							s = s[:len(d)]
							for i := range d {
								d[i] = s[i]
							}
							continue
						}
						for i := range d {
							d[i] = s[i*sw]
						}
					}
				}
			}
		}
	}
}

func (o *affineOp) adjoint(g *rows, seed []float64) *rows {
	out := g.clone()
	for r := 0; r < g.n; r++ {
		row := out.row(r)
		for i := range row {
			if o.a.Scale != nil {
				row[i] *= o.a.Scale[i]
			}
			if o.a.Shift != nil {
				row[i] += seed[r] * o.a.Shift[i]
			}
		}
	}
	return out
}

func (reshapeOp) adjoint(g *rows, seed []float64) *rows { return g }

// adjointOp is implemented by every linear operator.
type adjointOp interface {
	adjoint(g *rows, seed []float64) *rows
}

// grads accumulates gradients of the loss with respect to the quantities the backward
// passes depend on: α matrices and the upper-line parameters of every relaxation.
type grads struct {
	dU, bU map[int][]float64 // per activation layer, per neuron
}

// adjoint runs the adjoint of backward(start, …) recorded in tp, whose rows ended as
// final (over the network input), with per-row seeds ∂loss/∂lb. It adds into gal (the
// gradient of this start node's α matrices al) and into g.dU/g.bU (shared across start nodes).
func (e *engine) adjoint(start int, final *rows, seed []float64, tp *tape, al, gal map[int][]float64, g *grads) {
	G := e.concretizeGrad(final, seed)
	for j := e.first; j < start; j++ {
		if _, ok := e.ops[j].(*actOp); ok {
			G = recycle(G, e.adjointAct(j, tp.pre[j], G, seed, al[j], gal[j], g), nil)
			continue
		}
		var above *relaxation
		if j+1 < start {
			above = e.relax[j+1]
		}
		G = recycle(G, e.adjointLinear(j, G, seed, above), nil)
	}
	G.release()
}

// adjointLinear is the adjoint of linear layer j for the gradient rows G. above, when
// not nil, is the relaxation of the activation layer j+1 the backward pass went
// through: a Dense layer then computes only the columns of its live neurons.
func (e *engine) adjointLinear(j int, G *rows, seed []float64, above *relaxation) *rows {
	switch o := e.ops[j].(type) {
	case *denseOp:
		if above != nil {
			return o.adjointLive(G, seed, above.liveCols(G.n))
		}
		return o.adjoint(G, seed)
	default:
		return o.(adjointOp).adjoint(G, seed)
	}
}

// concretizeGrad is the gradient of the rows' concretised lower bounds, each scaled by
// its seed (rows with seed 0 get 0), with respect to their coefficients: s·(mid − rad)
// where a coefficient is ≥ 0, s·(mid + rad) elsewhere.
func (e *engine) concretizeGrad(final *rows, seed []float64) *rows {
	G := pooledRows(final.n, final.size)
	lo, hi := e.corners()
	for r := 0; r < final.n; r++ {
		s := seed[r]
		if s == 0 {
			continue
		}
		a := final.row(r)
		gr := G.row(r)[:len(a)]
		lo, hi := lo[:len(a)], hi[:len(a)]
		for i, v := range a {
			// The corner is chosen by a mask: a branch on the coefficients' signs
			// mispredicts about half the time (it was a seventh of α-CROWN's time
			// on mnist_6_100).
			gr[i] = s * pick(signMask(v), lo[i], hi[i])
		}
	}
	return G
}

// corners returns mid − rad and mid + rad, the box at the first layer's input, made
// once per engine (the box never changes).
func (e *engine) corners() (lo, hi []float64) {
	e.cornersOnce.Do(func() {
		e.cLo, e.cHi = make([]float64, len(e.mid)), make([]float64, len(e.mid))
		for i := range e.mid {
			e.cLo[i], e.cHi[i] = e.mid[i]-e.rad[i], e.mid[i]+e.rad[i]
		}
	})
	return e.cLo, e.cHi
}

// adjointAct maps the gradient with respect to the rows over activation j's input to
// the gradient with respect to the rows over its output (Aout, recorded on the tape),
// accumulating α and upper-line gradients on the way.
func (e *engine) adjointAct(j int, aout *rows, G *rows, seed []float64, al, gal []float64, g *grads) *rows {
	rx := e.relax[j]
	nu := rx.acols
	out := pooledRows(G.n, G.size)
	gdU, gbU := g.dU[j], g.bU[j]
	for r := 0; r < G.n; r++ {
		gin := G.row(r)
		a := aout.row(r)
		go_ := out.row(r)
		s := seed[r]
		for i, v := range a {
			gi := gin[i]
			switch rx.state[i] {
			case inactive:
			case active:
				go_[i] = gi
			case linear:
				go_[i] = gi*rx.op.slope[i] + s*rx.op.bias[i]
			case unstable:
				if v >= 0 {
					c := rx.col[i]
					if al != nil && c >= 0 {
						go_[i] = gi * al[r*nu+int(c)]
						gal[r*nu+int(c)] += gi * v
					} else {
						go_[i] = gi * rx.dL[i]
					}
				} else {
					go_[i] = gi*rx.dU[i] + s*rx.bU[i]
					gdU[i] += gi * v
					gbU[i] += s * v
				}
			}
		}
	}
	return out
}
