package crown

import "math"

// Rows of a patch start node that sit at the same window position read the same
// neurons' lines and the same input box entries. A window row is only a few elements
// long (4 on CNN-A's first convolution), so reading those per-neuron values through
// spans cost more than the arithmetic: the relaxation of patch rows took 2.1 µs per
// row of 256 values on cifar_cnn_a_mix. Instead, rows are visited grouped by window
// position, and each group first copies the values of its window into contiguous
// arrays in window order, which every row of the group then runs through in one loop.

// windowOrder returns the rows of p grouped by window position (y0, x0), in increasing
// row order within a group. The grouping survives patchBackward (every row's offset
// maps the same way), but it is cheap enough to recompute: a counting sort.
func (p *patchRows) windowOrder() []int {
	order := make([]int, p.n)
	if p.n == 0 {
		return order
	}
	ylo, yhi, xlo, xhi := p.y0[0], p.y0[0], p.x0[0], p.x0[0]
	for r := 1; r < p.n; r++ {
		ylo, yhi = min(ylo, p.y0[r]), max(yhi, p.y0[r])
		xlo, xhi = min(xlo, p.x0[r]), max(xhi, p.x0[r])
	}
	nx := xhi - xlo + 1
	keys := (yhi - ylo + 1) * nx
	if keys > 4*p.n+1024 { // sparse positions: a counting sort would not pay
		for r := range order {
			order[r] = r
		}
		return order
	}
	start := make([]int, keys+1)
	for r := 0; r < p.n; r++ {
		start[(p.y0[r]-ylo)*nx+p.x0[r]-xlo+1]++
	}
	for k := 1; k <= keys; k++ {
		start[k] += start[k-1]
	}
	for r := 0; r < p.n; r++ {
		k := (p.y0[r]-ylo)*nx + p.x0[r] - xlo
		order[start[k]] = r
		start[k]++
	}
	return order
}

// byWindow calls f for every row of p in windowOrder, first set on the first row of
// each window position: where the per-window copies are made.
func (p *patchRows) byWindow(f func(r int, first bool)) {
	y0, x0 := math.MinInt, math.MinInt
	for _, r := range p.windowOrder() {
		first := p.y0[r] != y0 || p.x0[r] != x0
		y0, x0 = p.y0[r], p.x0[r]
		f(r, first)
	}
}

// windowLines are a relaxation's lines (relaxLines) copied for one window, in window
// order. Elements off the map keep their coefficient and add nothing, as spans skips
// them.
type windowLines struct {
	ge, lt, bge, blt []float64
	hge, hlt, keep   []uint64
}

func newWindowLines(size int) *windowLines {
	f := make([]float64, 4*size)
	u := make([]uint64, 3*size)
	return &windowLines{ge: f[:size], lt: f[size : 2*size], bge: f[2*size : 3*size], blt: f[3*size:],
		hge: u[:size], hlt: u[size : 2*size], keep: u[2*size:]}
}

// gather copies the lines of the window of row r of p.
func (w *windowLines) gather(l *relaxLines, p *patchRows, r int) {
	for k := range w.ge {
		w.ge[k], w.lt[k], w.bge[k], w.blt[k] = 1, 1, 0, 0
		w.hge[k], w.hlt[k], w.keep[k] = 0, 0, ^uint64(0)
	}
	p.spans(r, func(k0, i0, n int) {
		copy(w.ge[k0:k0+n], l.ge[i0:i0+n])
		copy(w.lt[k0:k0+n], l.lt[i0:i0+n])
		copy(w.bge[k0:k0+n], l.bge[i0:i0+n])
		copy(w.blt[k0:k0+n], l.blt[i0:i0+n])
		copy(w.hge[k0:k0+n], l.hasGE[i0:i0+n])
		copy(w.hlt[k0:k0+n], l.hasLT[i0:i0+n])
		copy(w.keep[k0:k0+n], l.keep[i0:i0+n])
	})
}

// relax is patchBackwardLines' loop over one row a of the window: the same operations
// in the same order, so the same values bit for bit (an element off the map adds +0 to
// sums that start at +0, which changes none).
func (w *windowLines) relax(a []float64) (bias, mag float64) {
	ge, lt, bge, blt := w.ge[:len(a)], w.lt[:len(a)], w.bge[:len(a)], w.blt[:len(a)]
	hge, hlt, keep := w.hge[:len(a)], w.hlt[:len(a)], w.keep[:len(a)]
	for q, v := range a {
		if v == 0 {
			continue
		}
		m := signMask(v)
		c := pick(m, ge[q], lt[q])
		t := math.Float64frombits(math.Float64bits(v*pick(m, bge[q], blt[q])) & (hge[q]&m | hlt[q]&^m))
		bias += t
		mag += math.Abs(t)
		a[q] = math.Float64frombits(math.Float64bits(v*c) & keep[q])
	}
	return bias, mag
}

// windowBox is the concretisation box (mid, rad, mx) copied for one window, zero off
// the map, where patch rows are zero too (patchBackward clears them).
type windowBox struct{ mid, rad, mx []float64 }

func newWindowBox(size int) *windowBox {
	f := make([]float64, 3*size)
	return &windowBox{mid: f[:size], rad: f[size : 2*size], mx: f[2*size:]}
}

func (w *windowBox) gather(e *engine, p *patchRows, r int) {
	clear(w.mid)
	clear(w.rad)
	clear(w.mx)
	p.spans(r, func(k0, i0, n int) {
		copy(w.mid[k0:k0+n], e.mid[i0:i0+n])
		copy(w.rad[k0:k0+n], e.rad[i0:i0+n])
		copy(w.mx[k0:k0+n], e.mx[i0:i0+n])
	})
}

// lower is the lower bound of the row a with the constant bias (mag: its terms'
// magnitude) over the window's box, summed in window order as spans visits it.
func (w *windowBox) lower(a []float64, bias, mag float64) float64 {
	mid, rad, mx := w.mid[:len(a)], w.rad[:len(a)], w.mx[:len(a)]
	var c, s, m float64
	for k, v := range a {
		av := math.Abs(v)
		c += v * mid[k]
		s += av * rad[k]
		m += av * mx[k]
	}
	return bias + c - s - safety*(m+mag+math.Abs(bias))
}
