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
	buf     *[]float64 // a's scratch buffer when pooled (as pooledRows)
}

// release returns a pooled matrix to the pool; p must not be used afterwards.
func (p *patchRows) release() {
	if p.buf != nil {
		putScratch(p.buf)
		p.buf, p.a = nil, nil
	}
}

func (p *patchRows) size() int           { return p.c * p.ph * p.pw }
func (p *patchRows) row(r int) []float64 { return p.a[r*p.size() : (r+1)*p.size()] }

func (p *patchRows) clone() *patchRows {
	q := *p
	q.buf = nil
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

// spans calls f(k, i, n) for every run of n window elements of row r that lie on the
// map, k and i being the first one's index in the window and in the flattened C×H×W
// map; the elements of a run are consecutive in both. The runs come in the order each
// visits the elements, one call per window row instead of one per element.
func (p *patchRows) spans(r int, f func(k, i, n int)) {
	y0, x0 := p.y0[r], p.x0[r]
	pxLo, pxHi := max(0, -x0), min(p.pw, p.w-x0)
	pyLo, pyHi := max(0, -y0), min(p.ph, p.h-y0)
	if pxLo >= pxHi || pyLo >= pyHi {
		return
	}
	for ch := 0; ch < p.c; ch++ {
		for py := pyLo; py < pyHi; py++ {
			f((ch*p.ph+py)*p.pw+pxLo, (ch*p.h+y0+py)*p.w+x0+pxLo, pxHi-pxLo)
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

// patchBackward maps patches over a convolution's output to patches over its input:
// per row, the transposed convolution of the window. Dense rows go through one matrix
// product for a chunk of rows (Wᵀ times the rows' windows laid out channel-major) and
// a scatter into the wider windows; sparse rows (a start node's identity rows, one
// coefficient each) are scattered coefficient by coefficient. The choice is per row, so
// a row's result does not depend on the other rows it is bounded with.
func (o *convOp) patchBackward(in *patchRows) *patchRows {
	c := o.c
	ph := (in.ph-1)*c.SH + (c.KH-1)*c.DH + 1
	pw := (in.pw-1)*c.SW + (c.KW-1)*c.DW + 1
	buf := getScratch(in.n * c.InC * ph * pw)
	clear(*buf)
	out := &patchRows{n: in.n, c: c.InC, h: c.InH, w: c.InW, ph: ph, pw: pw,
		y0: make([]int, in.n), x0: make([]int, in.n), a: *buf, buf: buf,
		bias: append([]float64(nil), in.bias...), mag: append([]float64(nil), in.mag...)}
	pp := in.ph * in.pw
	var dense []int
	for r := 0; r < in.n; r++ {
		out.y0[r] = in.y0[r]*c.SH - c.PT
		out.x0[r] = in.x0[r]*c.SW - c.PL
		a := in.row(r)
		if c.B != nil {
			// Zero coefficients add ±0 (b is finite) to sums that start at +0, which
			// changes nothing: no branch on them.
			bsum, bmag := 0.0, 0.0
			for oc, b := range c.B {
				for _, v := range a[oc*pp : (oc+1)*pp] {
					t := v * b
					bsum += t
					bmag += math.Abs(t)
				}
			}
			out.bias[r] += bsum
			out.mag[r] += bmag
		}
		if patchDense(a) {
			dense = append(dense, r)
		} else {
			o.patchScatter(in, r, out.row(r), ph, pw)
		}
	}
	o.patchGemmBackward(in, dense, out)
	// Window positions on the padding carry no input: clear them.
	for r := 0; r < in.n; r++ {
		out.clearOffMap(r)
	}
	return out
}

// patchChunk is the number of column-matrix values the patch products work on at a
// time: the column block is written by the product and read back by the scatter, so it
// should stay in cache between the two.
const patchChunk = 1 << 16

// patchDense reports whether a row has enough nonzeros for the matrix product to beat
// scattering its coefficients one by one.
func patchDense(a []float64) bool {
	nnz := 0
	for _, v := range a {
		// 1 unless v is ±0, without a branch (rows mix zeros and nonzeros).
		x := math.Float64bits(v) << 1
		nnz += int((x | -x) >> 63)
	}
	return nnz*8 >= len(a)
}

// patchScatter adds the transposed convolution of the sparse window of row r of in
// into dst, a window of ph×pw over the input.
func (o *convOp) patchScatter(in *patchRows, r int, dst []float64, ph, pw int) {
	c := o.c
	kk := c.KH * c.KW
	a := in.row(r)
	if in.ph == 1 && in.pw == 1 && c.DH == 1 && c.DW == 1 {
		// One position (a start node's identity rows): the output window is the
		// kernel's own InC×KH×KW layout, so each coefficient adds its kernel.
		dst = dst[:c.InC*kk]
		for oc, v := range a {
			if v == 0 {
				continue
			}
			for j, wv := range c.W[oc*c.InC*kk : (oc+1)*c.InC*kk] {
				dst[j] += v * wv
			}
		}
		return
	}
	for oc := 0; oc < in.c; oc++ {
		wo := c.W[oc*c.InC*kk : (oc+1)*c.InC*kk]
		for py := 0; py < in.ph; py++ {
			for px := 0; px < in.pw; px++ {
				v := a[(oc*in.ph+py)*in.pw+px]
				if v == 0 {
					continue
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
}

// windowTaps maps the taps of a convolution between a ph×pw window over its output
// and the wph×wpw window over its input that it reads: entry (ic·KH·KW + ky·KW + kx)·ph·pw
// + py·pw + px is the index in the input window (all channels) of tap (ic, ky, kx) of
// output position (py, px), at (py·SH + ky·DH, px·SW + kx·DW) of channel ic.
func (o *convOp) windowTaps(ph, pw, wph, wpw int) []int32 {
	c := o.c
	idx := make([]int32, 0, c.InC*c.KH*c.KW*ph*pw)
	for ic := 0; ic < c.InC; ic++ {
		for ky := 0; ky < c.KH; ky++ {
			for kx := 0; kx < c.KW; kx++ {
				for py := 0; py < ph; py++ {
					for px := 0; px < pw; px++ {
						idx = append(idx, int32((ic*wph+py*c.SH+ky*c.DH)*wpw+px*c.SW+kx*c.DW))
					}
				}
			}
		}
	}
	return idx
}

// patchGemmBackward adds the transposed convolution of the listed rows of in into out.
func (o *convOp) patchGemmBackward(in *patchRows, rows []int, out *patchRows) {
	if len(rows) == 0 {
		return
	}
	c := o.c
	pp := in.ph * in.pw
	ckk := c.InC * c.KH * c.KW
	chunk := max(1, patchChunk/(ckk*pp))
	nmax := min(chunk, len(rows))
	tp := getScratch(c.OutC * nmax * pp)
	cp := getScratch(ckk * nmax * pp)
	defer putScratch(tp)
	defer putScratch(cp)
	t, cols := *tp, *cp
	tidx := o.windowTaps(in.ph, in.pw, out.ph, out.pw)
	for i0 := 0; i0 < len(rows); i0 += chunk {
		rs := rows[i0:min(i0+chunk, len(rows))]
		w := len(rs) * pp
		// t (OutC × rows·ph·pw): the windows, channel-major.
		for j, r := range rs {
			a := in.row(r)
			for oc := 0; oc < c.OutC; oc++ {
				copy(t[oc*w+j*pp:oc*w+(j+1)*pp], a[oc*pp:(oc+1)*pp])
			}
		}
		// cols (InC·KH·KW × rows·ph·pw) = Wᵀ · t, W being OutC × InC·KH·KW.
		gemmWide(true, c.W, c.OutC, ckk, t[:c.OutC*w], cols[:ckk*w], w)
		// col2im: tap (ic, ky, kx) of window position (py, px) lands on the output
		// window at (py·SH + ky·DH, px·SW + kx·DW) of channel ic; no bounds to check,
		// the output window holds every tap.
		for j, r := range rs {
			dst := out.row(r)
			for k := 0; k < ckk; k++ {
				src := cols[k*w+j*pp:][:pp]
				for p, q := range tidx[k*pp : (k+1)*pp] {
					dst[q] += src[p]
				}
			}
		}
	}
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
		out.spans(r, func(k0, i0, n int) {
			for q := 0; q < n; q++ {
				k, i := k0+q, i0+q
				if o.a.Shift != nil {
					s += a[k] * o.a.Shift[i]
					m += math.Abs(a[k] * o.a.Shift[i])
				}
				if o.a.Scale != nil {
					a[k] *= o.a.Scale[i]
				}
			}
		})
		out.bias[r] += s
		out.mag[r] += m
	}
	return out
}

// patchBackward is relaxation.backward on patches.
func (rx *relaxation) patchBackward(in *patchRows, alpha []float64) {
	if alpha == nil {
		rx.patchBackwardLines(in)
		return
	}
	nu := rx.acols
	for r := 0; r < in.n; r++ {
		a := in.row(r)
		bias, mag := 0.0, 0.0
		in.spans(r, func(k0, i0, n int) {
			for q := 0; q < n; q++ {
				k, i := k0+q, i0+q
				v := a[k]
				if v == 0 {
					continue
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
			}
		})
		in.bias[r] += bias
		in.mag[r] += mag
	}
}

// patchBackwardLines is patchBackward without α, choosing each neuron's line by a mask
// instead of a switch on its state and sign: a window mixes inactive, active and
// unstable neurons, and the switch mispredicted on most of them. Rows go by window
// position (see windowLines).
func (rx *relaxation) patchBackwardLines(in *patchRows) {
	l := rx.lines()
	w := newWindowLines(in.size())
	in.byWindow(func(r int, first bool) {
		if first {
			w.gather(l, in, r)
		}
		bias, mag := w.relax(in.row(r))
		in.bias[r] += bias
		in.mag[r] += mag
	})
}

// backwardPatch is backward for patch rows.
func (e *engine) backwardPatch(start int, p *patchRows, alpha map[int][]float64, tp *tape) *patchRows {
	in := p
	next := func(np *patchRows) { p = recycle(p, np, in) }
	for j := start - 1; j >= e.first; j-- {
		switch o := e.ops[j].(type) {
		case *convOp:
			next(o.patchBackward(p))
		case *affineOp:
			next(o.patchBackward(p))
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
	w := newWindowBox(p.size())
	p.byWindow(func(r int, first bool) {
		if first {
			w.gather(e, p, r)
		}
		lb[r] = w.lower(p.row(r), p.bias[r], p.mag[r])
	})
	return lb
}

// patchAdjoint is the adjoint of patchBackward: a convolution forward pass restricted
// to the window, the bias scaled by each row's seed. Rows with a nonzero window or bias
// go through im2col and one matrix product per chunk of rows; the others stay zero.
func (o *convOp) patchAdjoint(g *patchRows, seed []float64) *patchRows {
	c := o.c
	ph := (g.ph-1-(c.KH-1)*c.DH)/c.SH + 1
	pw := (g.pw-1-(c.KW-1)*c.DW)/c.SW + 1
	out := &patchRows{n: g.n, c: c.OutC, h: c.OutH, w: c.OutW, ph: ph, pw: pw,
		y0: make([]int, g.n), x0: make([]int, g.n), a: make([]float64, g.n*c.OutC*ph*pw)}
	var live []int
	for r := 0; r < g.n; r++ {
		out.y0[r] = (g.y0[r] + c.PT) / c.SH
		out.x0[r] = (g.x0[r] + c.PL) / c.SW
		if (c.B != nil && seed[r] != 0) || !allZero(g.row(r)) {
			live = append(live, r)
		}
	}
	if len(live) > 0 {
		o.patchGemmForward(g, live, seed, out)
	}
	for r := 0; r < g.n; r++ {
		out.clearOffMap(r)
	}
	return out
}

func allZero(a []float64) bool {
	for _, v := range a {
		if v != 0 {
			return false
		}
	}
	return true
}

// patchGemmForward sets the listed rows of out to the convolution of the windows of g
// plus seed·bias.
func (o *convOp) patchGemmForward(g *patchRows, rows []int, seed []float64, out *patchRows) {
	c := o.c
	pp := out.ph * out.pw
	ckk := c.InC * c.KH * c.KW
	chunk := max(1, patchChunk/(ckk*pp))
	nmax := min(chunk, len(rows))
	cp := getScratch(ckk * nmax * pp)
	rp := getScratch(c.OutC * nmax * pp)
	defer putScratch(cp)
	defer putScratch(rp)
	cols, res := *cp, *rp
	tidx := o.windowTaps(out.ph, out.pw, g.ph, g.pw)
	for i0 := 0; i0 < len(rows); i0 += chunk {
		rs := rows[i0:min(i0+chunk, len(rows))]
		w := len(rs) * pp
		// im2col: column (row, py, px) of tap (ic, ky, kx) reads the window at
		// (py·SH + ky·DH, px·SW + kx·DW) of channel ic.
		for j, r := range rs {
			src := g.row(r)
			for k := 0; k < ckk; k++ {
				dst := cols[k*w+j*pp:][:pp]
				for p, q := range tidx[k*pp : (k+1)*pp] {
					dst[p] = src[q]
				}
			}
		}
		// res (OutC × rows·ph·pw) = W · cols.
		gemmWide(false, c.W, c.OutC, ckk, cols[:ckk*w], res[:c.OutC*w], w)
		for j, r := range rs {
			dst := out.row(r)
			for oc := 0; oc < c.OutC; oc++ {
				b := 0.0
				if c.B != nil {
					b = seed[r] * c.B[oc]
				}
				d := dst[oc*pp : (oc+1)*pp]
				for i, v := range res[oc*w+j*pp : oc*w+(j+1)*pp] {
					d[i] = v + b
				}
			}
		}
	}
}

func (o *affineOp) patchAdjoint(g *patchRows, seed []float64) *patchRows {
	out := g.clone()
	for r := 0; r < g.n; r++ {
		a := out.row(r)
		out.spans(r, func(k0, i0, n int) {
			for q := 0; q < n; q++ {
				k, i := k0+q, i0+q
				if o.a.Scale != nil {
					a[k] *= o.a.Scale[i]
				}
				if o.a.Shift != nil {
					a[k] += seed[r] * o.a.Shift[i]
				}
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
		G.spans(r, func(k0, i0, n int) {
			for q := 0; q < n; q++ {
				k, i := k0+q, i0+q
				if a[k] >= 0 {
					gr[k] = s * (e.mid[i] - e.rad[i])
				} else {
					gr[k] = s * (e.mid[i] + e.rad[i])
				}
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
		G.spans(r, func(k0, i0, n int) {
			for q := 0; q < n; q++ {
				k, i := k0+q, i0+q
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
			}
		})
	}
	return out
}
