package blas

import (
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"runtime"
	"testing"

	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/blas64"
	"gonum.org/v1/gonum/blas/gonum"
)

// kernels runs f once per kernel this machine has: the assembly one (where the CPU has
// it) and the pure-Go one, each forced through the package switch.
func kernels(t *testing.T, f func(t *testing.T)) {
	t.Helper()
	if hasAsm {
		t.Run("asm", func(t *testing.T) { withKernel(&asmKernel, func() { f(t) }) })
	} else {
		t.Log("no assembly kernel on this machine/build: pure Go only")
	}
	t.Run("go", func(t *testing.T) { withKernel(&goKernel, func() { f(t) }) })
}

func withKernel(k *kernel, f func()) {
	defer func(old *kernel) { active = old }(active)
	active = k
	f()
}

// sentinel marks the padding of strided matrices: Dgemm must leave it alone.
const sentinel = 12345.678

// gemmCase is one product with its operands laid out with strides wider than the rows.
type gemmCase struct {
	tA, tB        blas.Transpose
	m, n, k       int
	alpha, beta   float64
	a, b, c       []float64
	lda, ldb, ldc int
}

func newCase(rng *rand.Rand, tA, tB blas.Transpose, m, n, k int, alpha, beta float64, pad int) *gemmCase {
	ra, ca := m, k
	if tA != blas.NoTrans {
		ra, ca = k, m
	}
	rb, cb := k, n
	if tB != blas.NoTrans {
		rb, cb = n, k
	}
	g := &gemmCase{tA: tA, tB: tB, m: m, n: n, k: k, alpha: alpha, beta: beta,
		lda: ca + pad, ldb: cb + 2*pad, ldc: n + 3*pad}
	// Exact lengths (no slack after the last row), so that reading or writing past the
	// end panics.
	g.a = fill(rng, ra, ca, g.lda)
	g.b = fill(rng, rb, cb, g.ldb)
	g.c = fill(rng, m, n, g.ldc)
	return g
}

func fill(rng *rand.Rand, rows, cols, ld int) []float64 {
	v := make([]float64, ld*(rows-1)+cols)
	for i := range v {
		if i%ld < cols {
			v[i] = rng.Float64()*2 - 1
		} else {
			v[i] = sentinel
		}
	}
	return v
}

// naive is C = alpha·op(A)·op(B) + beta·C by a triple loop, and the scale of every
// element (Σ|alpha·a·b| + |beta·c|) that bounds its rounding error.
func (g *gemmCase) naive() (want, scale []float64) {
	want = append([]float64(nil), g.c...)
	scale = make([]float64, len(g.c))
	for i := 0; i < g.m; i++ {
		for j := 0; j < g.n; j++ {
			s, sa := 0.0, 0.0
			for p := 0; p < g.k; p++ {
				var av, bv float64
				if g.tA != blas.NoTrans {
					av = g.a[p*g.lda+i]
				} else {
					av = g.a[i*g.lda+p]
				}
				if g.tB != blas.NoTrans {
					bv = g.b[j*g.ldb+p]
				} else {
					bv = g.b[p*g.ldb+j]
				}
				s += av * bv
				sa += math.Abs(av * bv)
			}
			x := &want[i*g.ldc+j]
			old := *x
			if g.beta == 0 {
				old = 0 // BLAS: beta = 0 overwrites, whatever C held
			}
			*x = g.alpha*s + g.beta*old
			scale[i*g.ldc+j] = math.Abs(g.alpha)*sa + math.Abs(g.beta*old)
		}
	}
	return want, scale
}

func (g *gemmCase) run(impl blas.Float64Level3) []float64 {
	c := append([]float64(nil), g.c...)
	impl.Dgemm(g.tA, g.tB, g.m, g.n, g.k, g.alpha, g.a, g.lda, g.b, g.ldb, g.beta, c, g.ldc)
	return c
}

func (g *gemmCase) String() string {
	return fmt.Sprintf("%s%s %dx%dx%d alpha %v beta %v", tn(g.tA), tn(g.tB), g.m, g.n, g.k, g.alpha, g.beta)
}

func tn(t blas.Transpose) string {
	if t == blas.NoTrans {
		return "N"
	}
	return "T"
}

// check compares got with want within 1e-12 of each element's scale, and the padding
// with the sentinel.
func (g *gemmCase) check(t *testing.T, what string, got, want, scale []float64) bool {
	t.Helper()
	for i := 0; i < g.m; i++ {
		for j := 0; j < g.ldc && i*g.ldc+j < len(got); j++ {
			x, w := got[i*g.ldc+j], want[i*g.ldc+j]
			if j >= g.n {
				if x != sentinel {
					t.Errorf("%v (%s): padding C[%d,%d] = %v, want it untouched", g, what, i, j, x)
					return false
				}
				continue
			}
			if !(math.Abs(x-w) <= 1e-12*scale[i*g.ldc+j]) {
				t.Errorf("%v (%s): C[%d,%d] = %v, want %v (scale %v)", g, what, i, j, x, w, scale[i*g.ldc+j])
				return false
			}
		}
	}
	return true
}

var (
	transposes = []blas.Transpose{blas.NoTrans, blas.Trans}
	alphaBetas = [][2]float64{{1, 0}, {1, 1}, {-0.5, 2}, {0.75, 0}, {2, -1}}
)

// Dgemm agrees with a triple loop, and with gonum, on every transposition, the
// alpha/beta cases, strides wider than the rows and sizes around every tile edge.
func TestDgemmMatchesNaive(t *testing.T) {
	kernels(t, func(t *testing.T) {
		rng := rand.New(rand.NewPCG(1, 2))
		var im Implementation
		ks := []int{1, 3, 4, 5, 8, 13, 37}
		step := 1
		if os.Getenv("GRAFTCERT_FULL") == "" {
			step = 2 // every other size, still both parities of both tile widths
		}
		q := 0
		for m := 1; m <= 37; m += step {
			for n := 1; n <= 37; n += step {
				q++
				k := ks[q%len(ks)]
				tA, tB := transposes[q%2], transposes[(q/2)%2]
				ab := alphaBetas[q%len(alphaBetas)]
				g := newCase(rng, tA, tB, m, n, k, ab[0], ab[1], 1+q%3)
				want, scale := g.naive()
				if !g.check(t, "naive", g.run(im), want, scale) {
					return
				}
			}
		}
		// Every transposition and alpha/beta case on shapes that cross the kc, mc and nc
		// blocks and leave edges in both directions.
		for _, sz := range [][3]int{{7, 9, 300}, {150, 19, 257}, {300, 517, 129}, {13, 2100, 5}, {149, 31, 520}} {
			for _, tA := range transposes {
				for _, tB := range transposes {
					for i, ab := range alphaBetas {
						if (sz[0]*sz[1]*sz[2] > 1e6 || os.Getenv("GRAFTCERT_FULL") == "") && i > 2 {
							continue
						}
						g := newCase(rng, tA, tB, sz[0], sz[1], sz[2], ab[0], ab[1], 3)
						want, scale := g.naive()
						got := g.run(im)
						if !g.check(t, "naive", got, want, scale) {
							return
						}
						if !g.check(t, "gonum", got, g.run(gonum.Implementation{}), scale) {
							return
						}
					}
				}
			}
		}
	})
}

// ConjTrans is Trans for real matrices.
func TestDgemmConjTrans(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	g := newCase(rng, blas.ConjTrans, blas.ConjTrans, 23, 17, 31, 1.5, 0.5, 2)
	want, scale := g.naive()
	g.check(t, "naive", g.run(Implementation{}), want, scale)
}

// beta = 0 overwrites C as BLAS specifies: NaN and Inf in it do not survive; alpha = 0
// only scales C.
func TestDgemmBetaZeroOverwrites(t *testing.T) {
	kernels(t, func(t *testing.T) {
		rng := rand.New(rand.NewPCG(5, 6))
		for _, sz := range [][3]int{{5, 7, 9}, {12, 16, 300}, {61, 45, 20}} {
			for _, alpha := range []float64{1, -3} {
				g := newCase(rng, blas.NoTrans, blas.Trans, sz[0], sz[1], sz[2], alpha, 0, 1)
				for i := range g.c {
					if i%g.ldc < g.n {
						g.c[i] = []float64{math.NaN(), math.Inf(1), math.Inf(-1)}[i%3]
					}
				}
				want, scale := g.naive()
				g.check(t, "naive", g.run(Implementation{}), want, scale)
			}
		}
	})
	// alpha = 0: C = beta·C, A and B unread (NaN in them does not matter).
	rng := rand.New(rand.NewPCG(7, 8))
	g := newCase(rng, blas.NoTrans, blas.NoTrans, 9, 11, 13, 0, 0.5, 1)
	for i := range g.a {
		g.a[i] = math.NaN()
	}
	got := g.run(Implementation{})
	for i := 0; i < g.m; i++ {
		for j := 0; j < g.n; j++ {
			if w := 0.5 * g.c[i*g.ldc+j]; got[i*g.ldc+j] != w {
				t.Fatalf("alpha 0 beta 0.5: C[%d,%d] = %v, want %v", i, j, got[i*g.ldc+j], w)
			}
		}
	}
}

// A hand-computed product: [1 2; 3 4]·[5 6 7; 8 9 10] = [21 24 27; 47 54 61], with
// alpha 2 and beta −1 on C = 1.
func TestDgemmHandComputed(t *testing.T) {
	kernels(t, func(t *testing.T) {
		// Repeat the inner index so that k = 8: A' = [A A A A], B' = [B; B; B; B]
		// gives 4·A·B.
		a := []float64{1, 2, 1, 2, 1, 2, 1, 2, 3, 4, 3, 4, 3, 4, 3, 4}
		b := make([]float64, 0, 24)
		for range 4 {
			b = append(b, 5, 6, 7, 8, 9, 10)
		}
		c := []float64{1, 1, 1, 1, 1, 1}
		Implementation{}.Dgemm(blas.NoTrans, blas.NoTrans, 2, 3, 8, 2, a, 8, b, 3, -1, c, 3)
		want := []float64{8*21 - 1, 8*24 - 1, 8*27 - 1, 8*47 - 1, 8*54 - 1, 8*61 - 1}
		for i := range want {
			if c[i] != want[i] {
				t.Fatalf("k = 8: C = %v, want %v", c, want)
			}
		}
		// k = 2 itself, with lda = 8 and ldb = 3.
		c = []float64{1, 1, 1, 1, 1, 1}
		Implementation{}.Dgemm(blas.NoTrans, blas.NoTrans, 2, 3, 2, 2, a, 8, b, 3, -1, c, 3)
		want = []float64{2*21 - 1, 2*24 - 1, 2*27 - 1, 2*47 - 1, 2*54 - 1, 2*61 - 1}
		for i := range want {
			if c[i] != want[i] {
				t.Fatalf("k = 2: C = %v, want %v", c, want)
			}
		}
	})
}

// Splitting C over goroutines changes no bit, nor does a caller computing a product's
// rows (or columns) in separate calls: each element is computed the same way.
func TestDgemmSplitBitIdentical(t *testing.T) {
	kernels(t, func(t *testing.T) {
		rng := rand.New(rand.NewPCG(9, 10))
		// Sizes whose parts take different paths (B packed or read in place, one
		// block of rows or several, several blocks of k); the last has a B stride
		// (8192) that keeps B from being read in place.
		for _, sz := range [][4]int{{301, 67, 300, 1}, {20, 517, 129, 1}, {7, 1000, 64, 1}, {150, 150, 600, 1}, {120, 300, 200, 2}, {30, 100, 20, 4046}} {
			for _, tA := range transposes {
				for _, tB := range transposes {
					g := newCase(rng, tA, tB, sz[0], sz[1], sz[2], 1.25, 0.5, sz[3])
					ref := runParts(g, 1)
					for _, parts := range []int{2, 3, 8} {
						if got := runParts(g, parts); !bitEqual(got, ref) {
							t.Fatalf("%v: %d goroutines differ from one", g, parts)
						}
					}
					// Caller-side split: rows 0..m1 and m1..m as two calls.
					m1 := g.m/3 + 1
					c := append([]float64(nil), g.c...)
					var im Implementation
					sub := func(i0, i1 int) {
						a := g.a[i0*g.lda:]
						if tA != blas.NoTrans {
							a = g.a[i0:]
						}
						im.Dgemm(tA, tB, i1-i0, g.n, g.k, g.alpha, a, g.lda, g.b, g.ldb, g.beta, c[i0*g.ldc:], g.ldc)
					}
					sub(0, m1)
					sub(m1, g.m)
					if !bitEqual(c, ref) {
						t.Fatalf("%v: rows in two calls differ from one call", g)
					}
				}
			}
		}
	})
}

// l2Lines counts the L2 sets a stride reaches: 8192 float64s = 64 KiB, one set (16
// lines); 14336 = 112 KiB, gcd(1792, 1024) = 256, four sets; 3584: gcd(448, 1024) = 64,
// sixteen sets; 9604 is not a whole number of lines, so every set.
func TestL2Lines(t *testing.T) {
	for _, c := range [][2]int{{8192, 16}, {16384, 16}, {14336, 64}, {3584, 256}, {9604, 16384}, {8, 16384}, {64, 2048}} {
		if got := l2Lines(c[0]); got != c[1] {
			t.Errorf("l2Lines(%d) = %d, want %d", c[0], got, c[1])
		}
	}
}

// Through Dgemm, GOMAXPROCS (and so the number of goroutines) changes no bit.
func TestDgemmGOMAXPROCSBitIdentical(t *testing.T) {
	kernels(t, func(t *testing.T) {
		rng := rand.New(rand.NewPCG(11, 12))
		g := newCase(rng, blas.Trans, blas.NoTrans, 300, 517, 129, 1, 0, 1)
		defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(0))
		runtime.GOMAXPROCS(1)
		ref := g.run(Implementation{})
		for _, procs := range []int{2, 4} {
			runtime.GOMAXPROCS(procs)
			if got := g.run(Implementation{}); !bitEqual(got, ref) {
				t.Fatalf("%v: GOMAXPROCS %d differs from 1", g, procs)
			}
		}
	})
}

// runParts computes g with C cut into (up to) parts blocks, whatever its size.
func runParts(g *gemmCase, parts int) []float64 {
	c := append([]float64(nil), g.c...)
	p := problem{ker: active, tA: g.tA != blas.NoTrans, tB: g.tB != blas.NoTrans,
		alpha: g.alpha, beta: g.beta, a: g.a, lda: g.lda, b: g.b, ldb: g.ldb, c: c, ldc: g.ldc}
	split(&p, g.m, g.n, g.k, parts)
	return c
}

func bitEqual(x, y []float64) bool {
	if len(x) != len(y) {
		return false
	}
	for i := range x {
		if math.Float64bits(x[i]) != math.Float64bits(y[i]) {
			return false
		}
	}
	return true
}

// Bad arguments panic as gonum's Dgemm does, instead of reading out of bounds.
func TestDgemmBadArgumentsPanic(t *testing.T) {
	a := make([]float64, 64)
	for _, tc := range []struct {
		name string
		f    func()
	}{
		{"lda < k", func() {
			Implementation{}.Dgemm(blas.NoTrans, blas.NoTrans, 8, 8, 8, 1, a, 7, a, 8, 0, make([]float64, 64), 8)
		}},
		{"short C", func() {
			Implementation{}.Dgemm(blas.NoTrans, blas.NoTrans, 8, 8, 8, 1, a, 8, a, 8, 0, make([]float64, 63), 8)
		}},
		{"short B", func() {
			Implementation{}.Dgemm(blas.NoTrans, blas.Trans, 8, 8, 8, 1, a, 8, a[:60], 8, 0, make([]float64, 64), 8)
		}},
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("%s: no panic", tc.name)
				}
			}()
			tc.f()
		}()
	}
}

// Install puts Implementation behind blas64.
func TestInstall(t *testing.T) {
	Install()
	if _, ok := blas64.Implementation().(Implementation); !ok {
		t.Fatalf("blas64 uses %T after Install", blas64.Implementation())
	}
}
