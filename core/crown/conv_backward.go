package crown

import "sync"

// The transposed convolution of dense rows: the column matrix Wᵀ·rows (one row per
// input channel and kernel tap, one column per output position and row), then a gather
// that writes every input value once as the sum of the column entries that reach it.
// (A col2im scatter, adding every column entry into its input value in loops OutW
// long, cost about as much as the product itself.)
//
// Input position (iy, ix) receives from output position (oy, ox) through tap (ky, kx)
// when iy = oy·SH + ky·DH − PT and ix = ox·SW + kx·DW − PL. Along an input row iy the
// taps that reach ix = φ + SW·m (φ = ix mod SW) read output columns
// ox = (ix + PL − kx·DW)/SW = m + const(kx), so over a run of m with the same set of
// valid taps every source moves one output column per step. The runs ("segments") depend on the geometry alone; they are built
// once per operator and cover every input position of a channel exactly once
// (positions no tap reaches are segments without sources, written as zeros).
//
// The chunk's rows are the fastest-moving index of the column matrix (column p·nr + r
// is output position p of row r), so a segment of n positions is one loop over n·nr
// contiguous values of each of its sources, written contiguously into g, the chunk's
// input maps with the phases of each input row apart (position φ + SW·m of row iy at
// iy·InW + start(φ) + m) and the rows last; a final pass interleaves the phases into
// each row's map. Every value sums its taps in a fixed order (ky, then kx), the same
// in any chunk, so a row's result does not depend on the rows it is computed with.

// gatherSeg is one run of n input positions of a channel, at dst in g's position
// order (see above). Position i of the run is the sum over its k sources j of the
// column-matrix entry at position src[first+j] + i (in units of positions of one
// channel's rows of the column matrix: tap·OutH·OutW + oy·OutW + ox).
type gatherSeg struct {
	dst, n   int
	k, first int
}

// gatherPlan is the segments of one channel and the sources they read; xmap[ix] is
// the position of input column ix within its row in g.
type gatherPlan struct {
	segs []gatherSeg
	src  []int
	xmap []int
	p32  gatherPlan32 // the same as int32s, for the hooks (built on first use)
}

// convPlanCache builds a convOp's gather plan on first use; the op is shared by the
// goroutines of one bound.
type convPlanCache struct {
	once sync.Once
	plan *gatherPlan
}

func (o *convOp) gatherPlan() *gatherPlan {
	o.back.once.Do(func() { o.back.plan = newGatherPlan(o) })
	return o.back.plan
}

func newGatherPlan(o *convOp) *gatherPlan {
	c := o.c
	ohw := c.OutH * c.OutW
	p := &gatherPlan{xmap: make([]int, c.InW)}
	start := 0 // start(φ): the positions of the phases before φ
	var cur []int
	for ph := 0; ph < min(c.SW, c.InW); ph++ {
		for ix := ph; ix < c.InW; ix += c.SW {
			p.xmap[ix] = start + (ix-ph)/c.SW
		}
		for iy := 0; iy < c.InH; iy++ {
			first := len(p.segs)
			for ix := ph; ix < c.InW; ix += c.SW {
				cur = cur[:0]
				for ky := 0; ky < c.KH; ky++ {
					ny := iy + c.PT - ky*c.DH
					if ny < 0 || ny%c.SH != 0 || ny/c.SH >= c.OutH {
						continue
					}
					oy := ny / c.SH
					for kx := 0; kx < c.KW; kx++ {
						nx := ix + c.PL - kx*c.DW
						if nx < 0 || nx%c.SW != 0 || nx/c.SW >= c.OutW {
							continue
						}
						cur = append(cur, (ky*c.KW+kx)*ohw+oy*c.OutW+nx/c.SW)
					}
				}
				// Extend the open segment when its sources, moved one position on,
				// are exactly these.
				if len(p.segs) > first {
					s := &p.segs[len(p.segs)-1]
					same := s.k == len(cur)
					for j := 0; same && j < s.k; j++ {
						q := p.src[s.first+j]
						same = q+s.n == cur[j] && q/ohw == cur[j]/ohw // same tap, next column
					}
					if same {
						s.n++
						continue
					}
				}
				p.segs = append(p.segs, gatherSeg{dst: iy*c.InW + p.xmap[ix], n: 1, k: len(cur), first: len(p.src)})
				p.src = append(p.src, cur...)
			}
		}
		start += (c.InW - ph + c.SW - 1) / c.SW
	}
	return p
}

// gemmBackward sets out to the transposed convolution (no bias) of every row of in.
func (o *convOp) gemmBackward(in, out *rows) {
	idx := make([]int, in.n)
	for r := range idx {
		idx[r] = r
	}
	o.denseBackward(in, idx, out)
}

// denseBackward sets the listed rows of out to the transposed convolution (no bias) of
// the same rows of in, in chunks that keep the column matrix near denseChunk values.
func (o *convOp) denseBackward(in *rows, idx []int, out *rows) {
	if len(idx) == 0 {
		return
	}
	c := o.c
	p := o.gatherPlan()
	ohw := c.OutH * c.OutW
	ckk := c.InC * c.KH * c.KW
	chunk := max(1, denseChunk/(ckk*ohw))
	nmax := min(chunk, len(idx))
	tp := getScratch(c.OutC * ohw * nmax)
	cp := getScratch(ckk * ohw * nmax)
	gp := getScratch(c.InSize() * nmax)
	defer putScratch(tp)
	defer putScratch(cp)
	defer putScratch(gp)
	t, cols, g := *tp, *cp, *gp
	for i0 := 0; i0 < len(idx); i0 += chunk {
		rs := idx[i0:min(i0+chunk, len(idx))]
		nr := len(rs)
		w := ohw * nr
		// t (OutC × ohw·nr): the chunk's coefficients, channel-major, rows last.
		for r, ri := range rs {
			a := in.row(ri)
			for oc := 0; oc < c.OutC; oc++ {
				d := t[oc*w+r : (oc+1)*w]
				j := 0
				for _, v := range a[oc*ohw : (oc+1)*ohw] {
					d[j] = v
					j += nr
				}
			}
		}
		// cols (ckk × ohw·nr) = Wᵀ · t, W being OutC × ckk.
		gemmWide(true, c.W, c.OutC, ckk, t[:c.OutC*w], cols[:ckk*w], w)
		if o.convHooked(p, cols[:ckk*w], rs, g, out) {
			continue
		}
		o.gather(p, cols[:ckk*w], nr, g[:c.InSize()*nr])
		o.interleave(p, g, rs, out)
	}
}

// gather writes g, the input maps of a chunk of nr rows (see above), from the column
// matrix cols.
func (o *convOp) gather(p *gatherPlan, cols []float64, nr int, g []float64) {
	c := o.c
	ihw := c.InH * c.InW
	kkw := c.KH * c.KW * c.OutH * c.OutW * nr // one input channel's rows of cols
	for ic := 0; ic < c.InC; ic++ {
		cb := cols[ic*kkw : (ic+1)*kkw]
		gb := g[ic*ihw*nr : (ic+1)*ihw*nr]
		for _, s := range p.segs {
			d := gb[s.dst*nr:][:s.n*nr]
			so := p.src[s.first : s.first+s.k]
			// Reslicing every source to len(d) lets the compiler drop the bounds
			// checks in the loops.
			switch len(so) {
			case 0:
				clear(d)
			case 1:
				copy(d, cb[so[0]*nr:])
			case 2:
				a := cb[so[0]*nr:][:len(d)]
				b := cb[so[1]*nr:][:len(d)]
				for i := range d {
					d[i] = a[i] + b[i]
				}
			case 3:
				a := cb[so[0]*nr:][:len(d)]
				b := cb[so[1]*nr:][:len(d)]
				e := cb[so[2]*nr:][:len(d)]
				for i := range d {
					d[i] = a[i] + b[i] + e[i]
				}
			case 4:
				a := cb[so[0]*nr:][:len(d)]
				b := cb[so[1]*nr:][:len(d)]
				e := cb[so[2]*nr:][:len(d)]
				f := cb[so[3]*nr:][:len(d)]
				for i := range d {
					d[i] = a[i] + b[i] + e[i] + f[i]
				}
			default:
				copy(d, cb[so[0]*nr:])
				for _, q := range so[1:] {
					a := cb[q*nr:][:len(d)]
					for i := range d {
						d[i] += a[i]
					}
				}
			}
		}
	}
}

// interleave copies the maps in g (positions in phase order, rows last) into the rows
// rs of out, one input row of all the chunk's rows at a time (its values in g are
// contiguous).
func (o *convOp) interleave(p *gatherPlan, g []float64, rs []int, out *rows) {
	c := o.c
	nr := len(rs)
	iw := c.InW
	h := (iw + 1) / 2 // values of phase 0 when SW = 2
	for y := 0; y < c.InC*c.InH; y++ {
		gy := g[y*iw*nr : (y+1)*iw*nr]
		for r, ri := range rs {
			d := out.a[ri*out.size+y*iw:][:iw]
			if c.SW == 2 {
				j0, j1 := r, r+h*nr
				for m := 0; m+1 < len(d); m += 2 {
					d[m] = gy[j0]
					d[m+1] = gy[j1]
					j0 += nr
					j1 += nr
				}
				if iw%2 == 1 {
					d[iw-1] = gy[j0]
				}
				continue
			}
			if c.SW == 1 {
				j := r
				for ix := range d {
					d[ix] = gy[j]
					j += nr
				}
				continue
			}
			for ix, q := range p.xmap[:len(d)] {
				d[ix] = gy[q*nr+r]
			}
		}
	}
}
