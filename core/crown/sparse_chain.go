package crown

import "math"

// A CROWN pass whose rows cross, from some convolution down to the first layer, only
// convolutions with sparse products and the activations between them (the CNN-A and
// OVAL models below their first Dense layer) need not write its rows out between
// layers: blocks of sparseBlock rows go down the chain in the products' own layout
// (live neurons, the block's rows last), each activation's relaxation applied as its
// products come out, and the last product concretised as it comes out. Between two
// products this saves a scatter into the rows, a pass of relaxListed over whole rows,
// the next product's gather, and at the end a pass over the rows of the input.
//
// The values are those of the row-by-row pass up to the order of some sums: the
// relaxation's constants are summed as relaxListed sums them, a convolution's bias
// terms per channel in neuron order (sum4 sums them in four lanes), and the bound's
// dot products in one lane per row (Concretize uses two).

// chainStep is one convolution of a chain with its sparse product; relax is the
// activation below it (nil for the last step, the first layer).
type chainStep struct {
	o     *convOp
	s     *sparseConv
	relax *relaxation
}

// sparseChain returns the chain of a backward pass from start that begins at the
// convolution j and ends at the first layer, or nil.
func (e *engine) sparseChain(j, start int) []chainStep {
	var steps []chainStep
	for {
		o, ok := e.ops[j].(*convOp)
		if !ok {
			return nil
		}
		s := e.sparseConv(j, start)
		if s == nil {
			return nil
		}
		if j == e.first {
			if s.below != nil {
				return nil
			}
			return append(steps, chainStep{o: o, s: s})
		}
		if s.below == nil || j-2 < e.first {
			return nil
		}
		// The next product reads what this one writes: its live outputs.
		if n, ok := e.ops[j-2].(*convOp); !ok || e.relax[j-1] != s.below || n == nil {
			return nil
		}
		steps = append(steps, chainStep{o: o, s: s, relax: s.below})
		j -= 2
	}
}

// chainBound returns the lower bounds of rows r, which are over the output of the
// chain's first convolution, over the box at the input of the first layer.
func (e *engine) chainBound(steps []chainStep, r *rows) []float64 {
	lb := make([]float64, r.n)
	// Each block's values over a step's live input neurons (neuron-major, rows last)
	// are in one buffer, and the step writes the next step's into the other.
	size := len(steps[0].s.in)
	for _, st := range steps {
		size = max(size, len(st.s.out))
	}
	bufA, bufB := getScratch(size*sparseBlock), getScratch(size*sparseBlock)
	defer putScratch(bufA)
	defer putScratch(bufB)
	first := steps[0]
	for r0 := 0; r0 < r.n; r0 += sparseBlock {
		nb := min(sparseBlock, r.n-r0)
		var bias, mag [sparseBlock]float64
		x, spare := (*bufA)[:len(first.s.in)*sparseBlock], *bufB
		first.s.gather(r, r0, nb, x)
		for t := 0; t < nb; t++ {
			bias[t], mag[t] = r.bias[r0+t], r.mag[r0+t]
			// The first convolution's bias, as sparseConv.backward adds it.
			if c := first.o.c; c.B != nil {
				bsum, bmag := convBias(c, r.row(r0+t))
				bias[t] += bsum
				mag[t] += bmag
			}
		}
		for i, st := range steps {
			if st.relax == nil {
				e.chainConcretize(st.s, x, nb, &bias, &mag, lb[r0:r0+nb])
				break
			}
			y := spare[:len(st.s.out)*sparseBlock]
			var rbm [2 * sparseBlock]float64
			chainRelax(st.s, x, y, &rbm)
			for t := 0; t < nb; t++ {
				bias[t] += rbm[t]
				mag[t] += rbm[sparseBlock+t]
			}
			// The next convolution's bias: its output channel of each live neuron.
			next := steps[i+1]
			if c := next.o.c; c.B != nil {
				ohw := c.OutH * c.OutW
				var bs, bm [sparseBlock]float64
				k := 0
				for oc, b := range c.B {
					var s [sparseBlock]float64
					for ; k < len(next.s.in) && int(next.s.in[k])/ohw == oc; k++ {
						yk := (*[sparseBlock]float64)(y[k*sparseBlock:])
						for t := range s {
							s[t] += yk[t]
						}
					}
					for t := range s {
						v := s[t] * b
						bs[t] += v
						bm[t] += math.Abs(v)
					}
				}
				for t := 0; t < nb; t++ {
					bias[t] += bs[t]
					mag[t] += bm[t]
				}
			}
			x, spare = y, x[:cap(x)]
		}
	}
	return lb
}

// chainConcretize finishes a block at the first layer: the last product, each of its
// values concretised against the box as it comes out.
func (e *engine) chainConcretize(s *sparseConv, x []float64, nb int, bias, mag *[sparseBlock]float64, lb []float64) {
	var sums [3 * sparseBlock]float64 // a·mid, |a|·rad, |a|·mx per row
	chainConc(s, x, e.mid, e.rad, e.mx, &sums)
	for t := 0; t < nb; t++ {
		b := bias[t]
		c, w, m := sums[t], sums[sparseBlock+t], sums[2*sparseBlock+t]
		lb[t] = b + c - w - safety*(m+mag[t]+math.Abs(b))
	}
}

// chainConcGo accumulates, for every input neuron k of the first layer (s.out[k] = k),
// its value v in each row of the block: out[t] += v·mid[k], out[8+t] += |v|·rad[k],
// out[16+t] += |v|·mx[k] (ColumnConcretize), through the installed kernels when there
// are some.
func chainConcGo(s *sparseConv, x, mid, rad, mx []float64, out *[3 * sparseBlock]float64) {
	n := len(s.out)
	yp := getScratch(n * sparseBlock)
	defer putScratch(yp)
	y := *yp
	s.product(x, y)
	if h := columnKernels.Load(); h != nil && n > 0 {
		h.conc(n, y[:n*sparseBlock], mid[:n], rad[:n], mx[:n], out[:])
		return
	}
	ColumnConcretize(n, y, mid, rad, mx, out)
}

// chainRelaxGo computes, for every live neuron k below s (s.out[k]), its value in each
// row of the block into y[8k:8k+8] and relaxes it there as relaxListed does, with the
// line record lt[8k:] (s.lineTable; ColumnRelax), through the installed kernels when
// there are some; the constants go into rbm[0:8], their magnitudes into rbm[8:16].
func chainRelaxGo(s *sparseConv, lt, x, y []float64, rbm *[2 * sparseBlock]float64) {
	n := len(s.out)
	s.product(x, y)
	if h := columnKernels.Load(); h != nil && n > 0 {
		h.relax(n, lt[:8*n], y[:n*sparseBlock], rbm[:])
		return
	}
	ColumnRelax(n, lt, y, rbm)
}
