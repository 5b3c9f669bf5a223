package crown

import (
	"math"

	"github.com/graftcert/graftcert/core/nn"
)

// patchRows are rows over a C×H×W map that are zero outside a window of ph×pw
// positions (all channels) at a per-row offset — auto_LiRPA's "patches". A start node
// inside the convolutional part of a network has one row per neuron, and its rows stay
// within the receptive field of that neuron all the way down to the input, so storing
// only the window keeps the work proportional to the receptive field instead of the
// whole map. Window positions outside the map stand for padding: they are kept at zero
// and never contribute.
type patchRows struct {
	n       int
	c, h, w int // the map
	ph, pw  int
	y0, x0  []int
	a       []float64 // n × c × ph × pw
	bias    []float64
	mag     []float64
}

func (p *patchRows) size() int           { return p.c * p.ph * p.pw }
func (p *patchRows) row(r int) []float64 { return p.a[r*p.size() : (r+1)*p.size()] }

func (p *patchRows) clone() *patchRows {
	q := *p
	q.y0 = append([]int(nil), p.y0...)
	q.x0 = append([]int(nil), p.x0...)
	q.a = append([]float64(nil), p.a...)
	q.bias = append([]float64(nil), p.bias...)
	q.mag = append([]float64(nil), p.mag...)
	return &q
}

// each calls f(k, i) for every window element k of row r that lies on the map, i being
// its index in the flattened C×H×W map.
func (p *patchRows) each(r int, f func(k, i int)) {
	y0, x0 := p.y0[r], p.x0[r]
	for ch := 0; ch < p.c; ch++ {
		for py := 0; py < p.ph; py++ {
			y := y0 + py
			if y < 0 || y >= p.h {
				continue
			}
			for px := 0; px < p.pw; px++ {
				x := x0 + px
				if x < 0 || x >= p.w {
					continue
				}
				f((ch*p.ph+py)*p.pw+px, (ch*p.h+y)*p.w+x)
			}
		}
	}
}

// patchable reports whether the rows of start node k can stay patches down to the
// first layer: the start map is C×H×W and everything below it is a convolution, an
// activation or an elementwise op on the same map.
func (e *engine) patchable(k int) bool {
	if len(e.net.Shapes[k]) != 3 {
		return false
	}
	for j := k - 1; j >= e.first; j-- {
		switch e.ops[j].(type) {
		case *convOp, *actOp, *affineOp:
		case reshapeOp:
			if !e.net.Shapes[j].Equal(e.net.Shapes[j+1]) {
				return false
			}
		default:
			return false
		}
		if len(e.net.Shapes[j]) != 3 {
			return false
		}
	}
	return true
}

// identityPatches builds the rows +e_i then −e_i for the neurons idx of map s.
func identityPatches(idx []int, s nn.Shape) *patchRows {
	n := len(idx)
	c, h, w := s[0], s[1], s[2]
	p := &patchRows{n: 2 * n, c: c, h: h, w: w, ph: 1, pw: 1, y0: make([]int, 2*n), x0: make([]int, 2*n),
		a: make([]float64, 2*n*c), bias: make([]float64, 2*n), mag: make([]float64, 2*n)}
	for t, i := range idx {
		ch, y, x := i/(h*w), (i/w)%h, i%w
		for _, r := range []int{t, n + t} {
			p.y0[r], p.x0[r] = y, x
		}
		p.a[t*c+ch] = 1
		p.a[(n+t)*c+ch] = -1
	}
	return p
}

// convBackward maps patches over a convolution's output to patches over its input.
func (o *convOp) patchBackward(in *patchRows) *patchRows {
	c := o.c
	ph := (in.ph-1)*c.SH + (c.KH-1)*c.DH + 1
	pw := (in.pw-1)*c.SW + (c.KW-1)*c.DW + 1
	out := &patchRows{n: in.n, c: c.InC, h: c.InH, w: c.InW, ph: ph, pw: pw,
		y0: make([]int, in.n), x0: make([]int, in.n), a: make([]float64, in.n*c.InC*ph*pw),
		bias: append([]float64(nil), in.bias...), mag: append([]float64(nil), in.mag...)}
	kk := c.KH * c.KW
	for r := 0; r < in.n; r++ {
		out.y0[r] = in.y0[r]*c.SH - c.PT
		out.x0[r] = in.x0[r]*c.SW - c.PL
		a := in.row(r)
		dst := out.row(r)
		bsum, bmag := 0.0, 0.0
		for oc := 0; oc < in.c; oc++ {
			wo := c.W[oc*c.InC*kk : (oc+1)*c.InC*kk]
			for py := 0; py < in.ph; py++ {
				for px := 0; px < in.pw; px++ {
					v := a[(oc*in.ph+py)*in.pw+px]
					if v == 0 {
						continue
					}
					if c.B != nil {
						bsum += v * c.B[oc]
						bmag += math.Abs(v * c.B[oc])
					}
					for ic := 0; ic < c.InC; ic++ {
						wk := wo[ic*kk : (ic+1)*kk]
						base := ic * ph * pw
						for ky := 0; ky < c.KH; ky++ {
							drow := dst[base+(py*c.SH+ky*c.DH)*pw+px*c.SW:]
							for kx, wv := range wk[ky*c.KW : (ky+1)*c.KW] {
								drow[kx*c.DW] += v * wv
							}
						}
					}
				}
			}
		}
		out.bias[r] += bsum
		out.mag[r] += bmag
		// Window positions on the padding carry no input: clear them.
		out.clearOffMap(r)
	}
	return out
}

func (p *patchRows) clearOffMap(r int) {
	y0, x0 := p.y0[r], p.x0[r]
	if y0 >= 0 && x0 >= 0 && y0+p.ph <= p.h && x0+p.pw <= p.w {
		return
	}
	a := p.row(r)
	for ch := 0; ch < p.c; ch++ {
		for py := 0; py < p.ph; py++ {
			y := y0 + py
			for px := 0; px < p.pw; px++ {
				x := x0 + px
				if y < 0 || y >= p.h || x < 0 || x >= p.w {
					a[(ch*p.ph+py)*p.pw+px] = 0
				}
			}
		}
	}
}

func (o *affineOp) patchBackward(in *patchRows) *patchRows {
	out := in.clone()
	for r := 0; r < in.n; r++ {
		a := out.row(r)
		s, m := 0.0, 0.0
		out.each(r, func(k, i int) {
			if o.a.Shift != nil {
				s += a[k] * o.a.Shift[i]
				m += math.Abs(a[k] * o.a.Shift[i])
			}
			if o.a.Scale != nil {
				a[k] *= o.a.Scale[i]
			}
		})
		out.bias[r] += s
		out.mag[r] += m
	}
	return out
}

// patchBackward is relaxation.backward on patches.
func (rx *relaxation) patchBackward(in *patchRows, alpha []float64) {
	nu := rx.acols
	for r := 0; r < in.n; r++ {
		a := in.row(r)
		bias, mag := 0.0, 0.0
		in.each(r, func(k, i int) {
			v := a[k]
			if v == 0 {
				return
			}
			switch rx.state[i] {
			case inactive:
				a[k] = 0
			case active:
			case linear:
				t := v * rx.op.bias[i]
				bias += t
				mag += math.Abs(t)
				a[k] = v * rx.op.slope[i]
			case unstable:
				if v >= 0 {
					if alpha != nil && rx.col[i] >= 0 {
						a[k] = v * alpha[r*nu+int(rx.col[i])]
					} else {
						a[k] = v * rx.dL[i]
					}
				} else {
					t := v * rx.bU[i]
					bias += t
					mag += math.Abs(t)
					a[k] = v * rx.dU[i]
				}
			}
		})
		in.bias[r] += bias
		in.mag[r] += mag
	}
}

// backwardPatch is backward for patch rows.
func (e *engine) backwardPatch(start int, p *patchRows, alpha map[int][]float64, tp *tape) *patchRows {
	for j := start - 1; j >= e.first; j-- {
		switch o := e.ops[j].(type) {
		case *convOp:
			p = o.patchBackward(p)
		case *affineOp:
			p = o.patchBackward(p)
		case reshapeOp:
		case *actOp:
			if tp != nil {
				tp.ppre[j] = p.clone()
			}
			var al []float64
			if alpha != nil {
				al = alpha[j]
			}
			e.relax[j].patchBackward(p, al)
		}
	}
	return p
}

func (e *engine) concretizePatch(p *patchRows) []float64 {
	lb := make([]float64, p.n)
	for r := 0; r < p.n; r++ {
		a := p.row(r)
		var c, w, m float64
		p.each(r, func(k, i int) {
			v := a[k]
			av := math.Abs(v)
			c += v * e.mid[i]
			w += av * e.rad[i]
			m += av * e.mx[i]
		})
		lb[r] = p.bias[r] + c - w - safety*(m+p.mag[r]+math.Abs(p.bias[r]))
	}
	return lb
}

// patchAdjoint is the adjoint of patchBackward: a convolution forward pass restricted
// to the window, the bias scaled by each row's seed.
func (o *convOp) patchAdjoint(g *patchRows, seed []float64) *patchRows {
	c := o.c
	ph := (g.ph-1-(c.KH-1)*c.DH)/c.SH + 1
	pw := (g.pw-1-(c.KW-1)*c.DW)/c.SW + 1
	out := &patchRows{n: g.n, c: c.OutC, h: c.OutH, w: c.OutW, ph: ph, pw: pw,
		y0: make([]int, g.n), x0: make([]int, g.n), a: make([]float64, g.n*c.OutC*ph*pw)}
	kk := c.KH * c.KW
	for r := 0; r < g.n; r++ {
		out.y0[r] = (g.y0[r] + c.PT) / c.SH
		out.x0[r] = (g.x0[r] + c.PL) / c.SW
		src := g.row(r)
		dst := out.row(r)
		for oc := 0; oc < c.OutC; oc++ {
			wo := c.W[oc*c.InC*kk : (oc+1)*c.InC*kk]
			b := 0.0
			if c.B != nil {
				b = seed[r] * c.B[oc]
			}
			for py := 0; py < ph; py++ {
				for px := 0; px < pw; px++ {
					s := b
					for ic := 0; ic < c.InC; ic++ {
						wk := wo[ic*kk : (ic+1)*kk]
						base := ic * g.ph * g.pw
						for ky := 0; ky < c.KH; ky++ {
							srow := src[base+(py*c.SH+ky*c.DH)*g.pw+px*c.SW:]
							for kx, wv := range wk[ky*c.KW : (ky+1)*c.KW] {
								s += wv * srow[kx*c.DW]
							}
						}
					}
					dst[(oc*ph+py)*pw+px] = s
				}
			}
		}
		out.clearOffMap(r)
	}
	return out
}

func (o *affineOp) patchAdjoint(g *patchRows, seed []float64) *patchRows {
	out := g.clone()
	for r := 0; r < g.n; r++ {
		a := out.row(r)
		out.each(r, func(k, i int) {
			if o.a.Scale != nil {
				a[k] *= o.a.Scale[i]
			}
			if o.a.Shift != nil {
				a[k] += seed[r] * o.a.Shift[i]
			}
		})
	}
	return out
}

// adjointPatch is engine.adjoint for a start node whose rows were patches.
func (e *engine) adjointPatch(start int, final *patchRows, seed []float64, tp *tape, al, gal map[int][]float64, g *grads) {
	G := final.clone()
	for r := 0; r < G.n; r++ {
		s := seed[r]
		a := final.row(r)
		gr := G.row(r)
		clear(gr)
		if s == 0 {
			continue
		}
		G.each(r, func(k, i int) {
			if a[k] >= 0 {
				gr[k] = s * (e.mid[i] - e.rad[i])
			} else {
				gr[k] = s * (e.mid[i] + e.rad[i])
			}
		})
	}
	for j := e.first; j < start; j++ {
		switch o := e.ops[j].(type) {
		case *convOp:
			G = o.patchAdjoint(G, seed)
		case *affineOp:
			G = o.patchAdjoint(G, seed)
		case reshapeOp:
		case *actOp:
			G = e.patchAdjointAct(j, tp.ppre[j], G, seed, al[j], gal[j], g)
		}
	}
}

func (e *engine) patchAdjointAct(j int, aout, G *patchRows, seed []float64, al, gal []float64, g *grads) *patchRows {
	rx := e.relax[j]
	nu := rx.acols
	out := G.clone()
	gdU, gbU := g.dU[j], g.bU[j]
	for r := 0; r < G.n; r++ {
		gin := G.row(r)
		a := aout.row(r)
		go_ := out.row(r)
		clear(go_)
		s := seed[r]
		G.each(r, func(k, i int) {
			gi, v := gin[k], a[k]
			switch rx.state[i] {
			case inactive:
			case active:
				go_[k] = gi
			case linear:
				go_[k] = gi*rx.op.slope[i] + s*rx.op.bias[i]
			case unstable:
				if v >= 0 {
					c := rx.col[i]
					if al != nil && c >= 0 {
						go_[k] = gi * al[r*nu+int(c)]
						gal[r*nu+int(c)] += gi * v
					} else {
						go_[k] = gi * rx.dL[i]
					}
				} else {
					go_[k] = gi*rx.dU[i] + s*rx.bU[i]
					gdU[i] += gi * v
					gbU[i] += s * v
				}
			}
		})
	}
	return out
}
