package crown

import (
	"context"
	"fmt"
	"math"

	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/blas64"
)

// alphaRows bounds the rows C·y − D (nr rows) like backRows, with the lower slopes of
// the unstable neurons optimised for each row by projected Adam ascent on the bound
// (gradients by the adjoint of the backward pass), keeping the best bound each row
// reached and the linear function it came from.
func (f *ForwardBounder) alphaRows(w *fwdWork, C, D []float64, nr, iters int, done func([]float64) bool) (lower, A, bias []float64) {
	m := f.net.OutSize()
	d := f.d
	nAct := len(w.rx)
	// Per activation layer: the unstable neurons, α (nr × len(unst), row-major) and
	// Adam's moments.
	unst := make([][]int, nAct)
	col := make([][]int32, nAct)
	alpha := make([][]float64, nAct)
	grad := make([][]float64, nAct)
	m1 := make([][]float64, nAct)
	m2 := make([][]float64, nAct)
	total := 0
	for a := range w.rx {
		rx := &w.rx[a]
		col[a] = make([]int32, len(rx.state))
		for i, s := range rx.state {
			col[a][i] = -1
			if s == unstable {
				col[a][i] = int32(len(unst[a]))
				unst[a] = append(unst[a], i)
			}
		}
		nu := len(unst[a])
		total += nu
		alpha[a] = make([]float64, nr*nu)
		for r := 0; r < nr; r++ {
			for c, i := range unst[a] {
				alpha[a][r*nu+c] = rx.dL[i]
			}
		}
		grad[a] = make([]float64, nr*nu)
		m1[a] = make([]float64, nr*nu)
		m2[a] = make([]float64, nr*nu)
	}
	lower = make([]float64, nr)
	A = make([]float64, nr*d)
	bias = make([]float64, nr)
	for r := range lower {
		lower[r] = math.Inf(-1)
	}
	if total == 0 {
		iters = 0
	}
	// V[a] records, per row, the coefficients over activation layer a's output.
	V := make([][]float64, nAct)
	for a, rx := range w.rx {
		V[a] = make([]float64, nr*len(rx.state))
	}
	const b1, b2, eps = 0.9, 0.999, 1e-8
	lr := f.AlphaLR
	if lr <= 0 {
		lr = 0.1
	}
	for it := 0; it <= iters; it++ {
		lb, lam, bs := f.backAlpha(w, C, D, nr, m, alpha, col, V)
		for r := 0; r < nr; r++ {
			if lb[r] > lower[r] {
				lower[r] = lb[r]
				copy(A[r*d:(r+1)*d], lam[r*d:(r+1)*d])
				bias[r] = bs[r]
			}
		}
		if it == iters || done != nil && done(lower) {
			break
		}
		f.alphaGrad(w, lam, nr, V, col, alpha, grad)
		c1 := 1 - math.Pow(b1, float64(it+1))
		c2 := 1 - math.Pow(b2, float64(it+1))
		step := lr * math.Pow(0.98, float64(it))
		for a := range alpha {
			al, g, mm, vv := alpha[a], grad[a], m1[a], m2[a]
			for i := range al {
				mm[i] = b1*mm[i] + (1-b1)*g[i]
				vv[i] = b2*vv[i] + (1-b2)*g[i]*g[i]
				al[i] += step * (mm[i] / c1) / (math.Sqrt(vv[i]/c2) + eps)
				al[i] = clamp(al[i], 0, 1)
			}
		}
	}
	return lower, A, bias
}

// backAlpha is backward for the rows C·y − D with lower slopes α (per activation
// layer, per row and unstable neuron), recording the coefficients entering every
// activation layer in V. It returns the lower bounds, the input coefficients (nr×d)
// and the constants.
func (f *ForwardBounder) backAlpha(w *fwdWork, C, D []float64, nr, m int, alpha [][]float64, col [][]int32, V [][]float64) (lb, lam, bias []float64) {
	bias = make([]float64, nr)
	mag := make([]float64, nr)
	for r := range bias {
		bias[r] = -D[r]
		mag[r] = math.Abs(D[r])
	}
	cur := append([]float64(nil), C[:nr*m]...)
	size := m
	a := len(w.rx)
	for k := len(f.ops) - 1; k >= 0; k-- {
		o := &f.ops[k]
		switch o.kind {
		case fReshape:
		case fAffine:
			for r := 0; r < nr; r++ {
				row := cur[r*size : (r+1)*size]
				for i, v := range row {
					if o.shift != nil {
						t := v * o.shift[i]
						bias[r] += t
						mag[r] += math.Abs(t)
					}
					if o.scale != nil {
						row[i] = v * o.scale[i]
					}
				}
			}
		case fDense:
			next := make([]float64, nr*o.in)
			blas64.Gemm(blas.NoTrans, blas.NoTrans, 1,
				blas64.General{Rows: nr, Cols: o.n, Stride: o.n, Data: cur},
				blas64.General{Rows: o.n, Cols: o.in, Stride: o.in, Data: o.w},
				0, blas64.General{Rows: nr, Cols: o.in, Stride: o.in, Data: next})
			if o.b != nil {
				for r := 0; r < nr; r++ {
					for j, v := range cur[r*size : (r+1)*size] {
						t := v * o.b[j]
						bias[r] += t
						mag[r] += math.Abs(t)
					}
				}
			}
			cur, size = next, o.in
		case fAct:
			a--
			rx := &w.rx[a]
			copy(V[a], cur)
			nu := 0
			if nr > 0 {
				nu = len(alpha[a]) / nr
			}
			for r := 0; r < nr; r++ {
				row := cur[r*size : (r+1)*size]
				al := alpha[a][r*nu : (r+1)*nu]
				for i, v := range row {
					if v == 0 {
						continue
					}
					switch rx.state[i] {
					case inactive:
						row[i] = 0
					case active:
					case linear:
						t := v * o.bias[i]
						bias[r] += t
						mag[r] += math.Abs(t)
						row[i] = v * o.slope[i]
					case unstable:
						if v >= 0 {
							row[i] = v * al[col[a][i]]
						} else {
							t := v * rx.bU[i]
							bias[r] += t
							mag[r] += math.Abs(t)
							row[i] = v * rx.dU[i]
						}
					}
				}
			}
		}
	}
	lb = make([]float64, nr)
	for r := 0; r < nr; r++ {
		row := cur[r*size : (r+1)*size]
		var c, wd, mg float64
		for j, v := range row {
			av := math.Abs(v)
			c += v * w.mid[j]
			wd += av * w.rad[j]
			mg += av * w.mx[j]
		}
		lb[r] = bias[r] + c - wd - safety*(mg+mag[r]+math.Abs(bias[r]))
	}
	return lb, cur, bias
}

// alphaGrad writes into grad the gradient of every row's bound with respect to its
// α, by the adjoint of backAlpha: the gradient with respect to the input coefficients
// (mid − sign·rad) carried forwards through the layers, for all rows at once, up to
// the last activation layer with an unstable neuron.
func (f *ForwardBounder) alphaGrad(w *fwdWork, lam []float64, nr int, V [][]float64, col [][]int32, alpha, grad [][]float64) {
	d := f.d
	lastAct := -1
	for a := range grad {
		clear(grad[a])
		if len(grad[a]) > 0 {
			lastAct = a
		}
	}
	if lastAct < 0 {
		return
	}
	G := make([]float64, nr*d)
	for r := 0; r < nr; r++ {
		for j, v := range lam[r*d : (r+1)*d] {
			switch {
			case v > 0:
				G[r*d+j] = w.mid[j] - w.rad[j]
			case v < 0:
				G[r*d+j] = w.mid[j] + w.rad[j]
			default:
				G[r*d+j] = w.mid[j]
			}
		}
	}
	size := d
	a := 0
	for k := range f.ops {
		o := &f.ops[k]
		switch o.kind {
		case fReshape:
		case fAffine:
			for r := 0; r < nr; r++ {
				row := G[r*size : (r+1)*size]
				for i := range row {
					if o.scale != nil {
						row[i] *= o.scale[i]
					}
					if o.shift != nil {
						row[i] += o.shift[i]
					}
				}
			}
		case fDense:
			next := make([]float64, nr*o.n)
			blas64.Gemm(blas.NoTrans, blas.Trans, 1,
				blas64.General{Rows: nr, Cols: o.in, Stride: o.in, Data: G},
				blas64.General{Rows: o.n, Cols: o.in, Stride: o.in, Data: o.w},
				0, blas64.General{Rows: nr, Cols: o.n, Stride: o.n, Data: next})
			if o.b != nil {
				for r := 0; r < nr; r++ {
					row := next[r*o.n : (r+1)*o.n]
					for j, b := range o.b {
						row[j] += b
					}
				}
			}
			G, size = next, o.n
		case fAct:
			rx := &w.rx[a]
			nu := len(grad[a]) / max(nr, 1)
			for r := 0; r < nr; r++ {
				cur := G[r*size : (r+1)*size]
				v := V[a][r*size : (r+1)*size]
				gr := grad[a][r*nu : (r+1)*nu]
				al := alpha[a][r*nu : (r+1)*nu]
				for i := range cur {
					switch rx.state[i] {
					case inactive:
						cur[i] = 0
					case active:
					case linear:
						cur[i] = o.slope[i]*cur[i] + o.bias[i]
					case unstable:
						if v[i] >= 0 {
							c := col[a][i]
							gr[c] = v[i] * cur[i]
							cur[i] *= al[c]
						} else {
							cur[i] = rx.dU[i]*cur[i] + rx.bU[i]
						}
					}
				}
			}
			if a == lastAct {
				return
			}
			a++
		}
	}
}

// Optimize tightens base, a bound of the rows rs over [lo, hi] from this network
// (BoxBounder's or this bounder's), by optimising the lower slopes of the unstable
// neurons for each row under base's intermediate bounds (α-CROWN on the output rows
// only; iters Adam steps). Each row keeps the better of base's bound and the
// optimised one, with the matching linear function. combine, when not nil, is called
// on the result and its rows are bounded the same way into Extra.
//
// With the intermediate bounds fixed the rows' bounds are cheap to optimise, and on
// small boxes with a few unstable neurons CROWN's adaptive slopes are often far from
// the best (on ACAS Xu 3_3 property 2 a box CROWN bounds at −0.0047 holds at
// +0.0012 with the optimal slopes, which bisection does not reach). done, when not
// nil, is asked after every step whether the rows' best bounds so far suffice.
func (f *ForwardBounder) Optimize(ctx context.Context, lo, hi []float64, rs *RowSet, base *BoxBound, iters int, done func(lower []float64) bool, combine func(*BoxBound) (C, D []float64)) (*BoxBound, error) {
	if ctx == nil {
		ctx = context.Background()
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if rs.M != f.net.OutSize() || len(base.Lower) != rs.N || len(base.preLo) != f.nAct || len(lo) != f.d || len(hi) != f.d {
		return nil, fmt.Errorf("crown: Optimize: %d rows, %d bounds, %d of %d activation layers, box of %d/%d values",
			rs.N, len(base.Lower), len(base.preLo), f.nAct, len(lo), len(hi))
	}
	w := f.work()
	defer f.pool.Put(w)
	for i := 0; i < f.d; i++ {
		w.mid[i] = (lo[i] + hi[i]) / 2
		w.rad[i] = (hi[i] - lo[i]) / 2
		w.mx[i] = max(math.Abs(lo[i]), math.Abs(hi[i]))
	}
	a := 0
	for k := range f.ops {
		if f.ops[k].kind == fAct {
			if len(base.preLo[a]) != f.ops[k].n {
				return nil, fmt.Errorf("crown: Optimize: activation layer %d has %d bounds, want %d", a, len(base.preLo[a]), f.ops[k].n)
			}
			w.rx[a].set(&f.ops[k], base.preLo[a], base.preHi[a])
			a++
		}
	}
	out := &BoxBound{preLo: base.preLo, preHi: base.preHi}
	lower, A, bias := f.alphaRows(w, rs.C, rs.D, rs.N, iters, done)
	out.Lower = make([]float64, rs.N)
	out.A = make([]float64, len(base.A))
	out.Bias = make([]float64, rs.N)
	d := f.d
	for r := range out.Lower {
		if lower[r] > base.Lower[r] {
			out.Lower[r] = lower[r]
			copy(out.A[r*d:(r+1)*d], A[r*d:(r+1)*d])
			out.Bias[r] = bias[r]
		} else {
			out.Lower[r] = base.Lower[r]
			copy(out.A[r*d:(r+1)*d], base.A[r*d:(r+1)*d])
			out.Bias[r] = base.Bias[r]
		}
	}
	if combine != nil {
		if C, D := combine(out); len(D) > 0 {
			if extra, err := NewRowSet(C, D, rs.M); err == nil {
				out.Extra, _, _ = f.alphaRows(w, extra.C, extra.D, extra.N, iters, allPositive)
			}
		}
	}
	return out, nil
}
