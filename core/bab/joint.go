package bab

import (
	"math"
	"sort"
)

// jointBound bounds min over the box of max_r g_r(x), g_r(x) = A_r·x + b_r (R rows of
// n values), from below. Per row, min_x g_r is the best the rows give one at a time;
// jointly the minimax equals max over convex weights λ of h(λ) = min_x Σ_r λ_r g_r(x)
// (linear programming duality), which is positive when the rows' unsafe half-spaces do
// not meet in the box even though each meets it alone. h is concave and piecewise
// linear, its pieces cut by the hyperplanes Σ_r λ_r A_ri = 0; its maximum over the
// simplex is at a vertex of that arrangement, so small problems enumerate the vertices
// and larger ones take projected supergradient steps. Whatever λ is found, the bound is
// recomputed from it with a rounding margin, so it is sound. ok is false when R < 2.
func jointBound(A, b []float64, lo, hi []float64) (v float64, lam []float64, ok bool) {
	R, n := len(b), len(lo)
	if R < 2 {
		return 0, nil, false
	}
	var free []int
	for i := 0; i < n; i++ {
		if hi[i] > lo[i] {
			free = append(free, i)
		}
	}
	best := math.Inf(-1)
	try := func(l []float64) {
		if x := combinedMin(A, b, l, lo, hi); x > best {
			best = x
			lam = append(lam[:0], l...)
		}
	}
	for r := 0; r < R; r++ {
		e := make([]float64, R)
		e[r] = 1
		try(e)
	}
	// Constraints that can be active at a vertex: c_i(λ) = 0 (free i) and λ_r = 0.
	nc := len(free) + R
	if binom(nc, R-1) <= 4000 {
		idx := make([]int, R-1)
		M := make([]float64, R*R)
		rhs := make([]float64, R)
		l := make([]float64, R)
		var rec func(k, from int)
		rec = func(k, from int) {
			if k == R-1 {
				// Rows: Σλ = 1, then the chosen active constraints.
				for r := 0; r < R; r++ {
					M[r] = 1
				}
				rhs[0] = 1
				for t, c := range idx {
					row := M[(t+1)*R : (t+2)*R]
					clear(row)
					if c < len(free) {
						for r := 0; r < R; r++ {
							row[r] = A[r*n+free[c]]
						}
					} else {
						row[c-len(free)] = 1
					}
					rhs[t+1] = 0
				}
				if solveLinear(M, rhs, l, R) && feasible(l) {
					try(l)
				}
				return
			}
			for c := from; c < nc; c++ {
				idx[k] = c
				rec(k+1, c+1)
			}
		}
		rec(0, 0)
	} else {
		l := append([]float64(nil), lam...)
		for r := range l {
			l[r] = 1 / float64(R)
		}
		g := make([]float64, R)
		for it := 0; it < 200; it++ {
			try(l)
			// A supergradient of h at l: g_r evaluated at the box point minimising Σλg.
			for r := range g {
				g[r] = b[r]
			}
			for i := 0; i < n; i++ {
				ci := 0.0
				for r := range l {
					ci += l[r] * A[r*n+i]
				}
				x := lo[i]
				if ci < 0 {
					x = hi[i]
				}
				for r := range g {
					g[r] += A[r*n+i] * x
				}
			}
			step := 1 / math.Sqrt(float64(it+1))
			norm := 0.0
			for _, x := range g {
				norm += x * x
			}
			if norm == 0 {
				break
			}
			for r := range l {
				l[r] += step * g[r] / math.Sqrt(norm)
			}
			projectSimplex(l)
		}
	}
	return best, lam, true
}

func binom(n, k int) int {
	if k < 0 || k > n {
		return 0
	}
	c := 1
	for i := 0; i < k; i++ {
		c = c * (n - i) / (i + 1)
		if c > 1<<30 {
			return c
		}
	}
	return c
}

func feasible(l []float64) bool {
	s := 0.0
	for i, x := range l {
		if !(x >= -1e-12) {
			return false
		}
		l[i] = max(0, x)
		s += l[i]
	}
	if !(s > 0) {
		return false
	}
	for i := range l {
		l[i] /= s
	}
	return true
}

// solveLinear solves the R×R system M·x = rhs by Gaussian elimination with partial
// pivoting (M and rhs are overwritten); false when it is singular.
func solveLinear(M, rhs, x []float64, R int) bool {
	for c := 0; c < R; c++ {
		p := c
		for r := c + 1; r < R; r++ {
			if math.Abs(M[r*R+c]) > math.Abs(M[p*R+c]) {
				p = r
			}
		}
		if math.Abs(M[p*R+c]) < 1e-12 {
			return false
		}
		if p != c {
			for k := 0; k < R; k++ {
				M[c*R+k], M[p*R+k] = M[p*R+k], M[c*R+k]
			}
			rhs[c], rhs[p] = rhs[p], rhs[c]
		}
		for r := c + 1; r < R; r++ {
			f := M[r*R+c] / M[c*R+c]
			if f == 0 {
				continue
			}
			for k := c; k < R; k++ {
				M[r*R+k] -= f * M[c*R+k]
			}
			rhs[r] -= f * rhs[c]
		}
	}
	for r := R - 1; r >= 0; r-- {
		s := rhs[r]
		for k := r + 1; k < R; k++ {
			s -= M[r*R+k] * x[k]
		}
		x[r] = s / M[r*R+r]
	}
	return true
}

// projectSimplex projects l onto {λ ≥ 0, Σλ = 1}.
func projectSimplex(l []float64) {
	u := append([]float64(nil), l...)
	sort.Sort(sort.Reverse(sort.Float64Slice(u)))
	cum, theta := 0.0, 0.0
	for i, x := range u {
		cum += x
		if t := (cum - 1) / float64(i+1); x-t > 0 {
			theta = t
		}
	}
	for i := range l {
		l[i] = max(0, l[i]-theta)
	}
}

// combinedMin is a lower bound of min over the box of Σ_r λ_r (A_r·x + b_r), with a
// margin for the rounding of its own arithmetic.
func combinedMin(A, b, lam, lo, hi []float64) float64 {
	n := len(lo)
	v, mag := 0.0, 0.0
	for r, l := range lam {
		v += l * b[r]
		mag += math.Abs(l * b[r])
	}
	for i := 0; i < n; i++ {
		ci := 0.0
		for r, l := range lam {
			ci += l * A[r*n+i]
		}
		v += min(ci*lo[i], ci*hi[i])
		mag += math.Abs(ci) * max(math.Abs(lo[i]), math.Abs(hi[i]))
	}
	return v - 1e-12*mag
}
