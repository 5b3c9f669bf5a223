//go:build js && wasm

package gemmsimd

import (
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"testing"
	"time"

	"github.com/graftcert/graftcert/core/blas"
	gblas "gonum.org/v1/gonum/blas"
)

// These tests need the module installed: run them with run_node.js as the -exec
// program (make test-wasm). Under another runner they skip; under run_node.js a
// missing module fails them.
func requireModule(t *testing.T) {
	t.Helper()
	if os.Getenv("GRAFTCERT_GEMM_RUNNER") == "" {
		t.Skip("not run by wasm/gemmsimd/run_node.js: the SIMD module is not loaded")
	}
	if got := Install(); got != KernelSIMD {
		t.Fatalf("Install() = %q with the module loaded, want %q", got, KernelSIMD)
	}
}

const sentinel = 12345.678

// product is one Dgemm call with operands laid out with strides wider than the rows.
type product struct {
	tA, tB        gblas.Transpose
	m, n, k       int
	alpha, beta   float64
	a, b, c       []float64
	lda, ldb, ldc int
}

func newProduct(rng *rand.Rand, tA, tB gblas.Transpose, m, n, k int, alpha, beta float64, pad int) *product {
	ra, ca := m, k
	if tA != gblas.NoTrans {
		ra, ca = k, m
	}
	rb, cb := k, n
	if tB != gblas.NoTrans {
		rb, cb = n, k
	}
	p := &product{tA: tA, tB: tB, m: m, n: n, k: k, alpha: alpha, beta: beta, lda: ca + pad, ldb: cb + 2*pad, ldc: n + 3*pad}
	p.a, p.b, p.c = fill(rng, ra, ca, p.lda), fill(rng, rb, cb, p.ldb), fill(rng, m, n, p.ldc)
	return p
}

// fill makes a rows×cols matrix with row stride ld, exactly as long as it needs to be,
// its padding set to the sentinel.
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

func (p *product) String() string {
	return fmt.Sprintf("%v%v %d×%d×%d alpha %v beta %v lda %d ldb %d ldc %d", p.tA, p.tB, p.m, p.n, p.k, p.alpha, p.beta, p.lda, p.ldb, p.ldc)
}

// run computes the product with the block kernel f (nil: the pure-Go kernel alone),
// used for blocks of at least minWork.
func (p *product) run(f blas.BlockKernel, minWork int) []float64 {
	defer blas.SetBlockKernel(nil, 0)
	blas.SetBlockKernel(f, minWork)
	c := append([]float64(nil), p.c...)
	blas.Implementation{}.Dgemm(p.tA, p.tB, p.m, p.n, p.k, p.alpha, p.a, p.lda, p.b, p.ldb, p.beta, c, p.ldc)
	return c
}

// module is the block kernel Install installs, for products run with other
// thresholds.
func module(t *testing.T) blas.BlockKernel {
	t.Helper()
	requireModule(t)
	if installed == nil {
		t.Fatal("Install reported the module but kept no kernel")
	}
	return installed
}

// sameBits compares two results bit for bit, any NaN matching any NaN (WebAssembly
// leaves NaN payloads unspecified).
func sameBits(t *testing.T, p *product, got, want []float64) bool {
	t.Helper()
	for i := range want {
		g, w := got[i], want[i]
		if math.Float64bits(g) != math.Float64bits(w) && !(math.IsNaN(g) && math.IsNaN(w)) {
			t.Errorf("%v: C[%d,%d] = %v (%#x) with the SIMD kernel, %v (%#x) with the Go kernel", p, i/p.ldc, i%p.ldc,
				g, math.Float64bits(g), w, math.Float64bits(w))
			return false
		}
		if i%p.ldc >= p.n && g != sentinel {
			t.Errorf("%v: padding C[%d,%d] = %v, want it untouched", p, i/p.ldc, i%p.ldc, g)
			return false
		}
	}
	return true
}

// The SIMD kernel's Dgemm equals the pure-Go kernel's bit for bit: every size from 1
// to 37 in both directions, larger odd shapes that cross core/blas's k and row blocks,
// every transposition, the alpha/beta cases (beta 0 overwrites, 1 accumulates,
// anything else scales first), and strides wider than the rows.
func TestDgemmBitIdenticalToGo(t *testing.T) {
	f := module(t)
	rng := rand.New(rand.NewPCG(31, 32))
	trans := []gblas.Transpose{gblas.NoTrans, gblas.Trans, gblas.ConjTrans}
	alphaBetas := [][2]float64{{1, 0}, {1, 1}, {-0.5, 2}, {0.75, 0}, {2, -1}, {-1, 0.5}, {3.5, 1}}
	ks := []int{1, 2, 3, 4, 5, 8, 13, 37}
	before := Calls()
	q := 0
	for m := 1; m <= 37; m++ {
		for n := 1; n <= 37; n++ {
			q++
			ab := alphaBetas[q%len(alphaBetas)]
			p := newProduct(rng, trans[q%3], trans[(q/3)%3], m, n, ks[q%len(ks)], ab[0], ab[1], q%4)
			if !sameBits(t, p, p.run(f, 1), p.run(nil, 0)) {
				return
			}
		}
	}
	small := Calls() - before
	// 4..37 squared: 34·34 products have a full tile, in one block each.
	if small != 34*34 {
		t.Errorf("the module computed %d blocks of the small products, want %d", small, 34*34)
	}
	for _, sz := range [][3]int{{97, 131, 300}, {150, 19, 257}, {4, 4, 1}, {8, 4, 600}, {149, 37, 11}, {33, 2053, 3}} {
		for _, tA := range trans[:2] {
			for _, tB := range trans[:2] {
				for i, ab := range alphaBetas {
					if sz[0]*sz[1]*sz[2] > 1e6 && i > 2 {
						continue
					}
					p := newProduct(rng, tA, tB, sz[0], sz[1], sz[2], ab[0], ab[1], 1+i%3)
					c0 := Calls()
					got := p.run(f, 1)
					if Calls() == c0 {
						t.Fatalf("%v: the module was not called", p)
					}
					if !sameBits(t, p, got, p.run(nil, 0)) {
						return
					}
				}
			}
		}
	}
}

// Signed zeros, infinities and NaNs go through the same operations in both kernels:
// -0 products summed from +0 give +0, Inf·0 gives NaN, Inf−Inf NaN.
func TestDgemmSpecialValues(t *testing.T) {
	f := module(t)
	rng := rand.New(rand.NewPCG(33, 34))
	specials := []float64{0, math.Copysign(0, -1), math.Inf(1), math.Inf(-1), math.NaN(), 1e308, -1e-308, 5e-324}
	for trial := 0; trial < 20; trial++ {
		p := newProduct(rng, gblas.NoTrans, gblas.NoTrans, 9, 10, 6, []float64{1, -2, 0.5}[trial%3], []float64{0, 1, 3}[trial%3], 1)
		for _, s := range [][]float64{p.a, p.b, p.c} {
			for i := range s {
				if s[i] != sentinel && rng.IntN(3) == 0 {
					s[i] = specials[rng.IntN(len(specials))]
				}
			}
		}
		if !sameBits(t, p, p.run(f, 1), p.run(nil, 0)) {
			return
		}
	}
	// All products -0: the Go kernel's sums start at +0, and so must the module's.
	p := newProduct(rng, gblas.NoTrans, gblas.NoTrans, 4, 4, 3, 1, 0, 0)
	for i := range p.a {
		p.a[i] = math.Copysign(0, -1)
	}
	got := p.run(f, 1)
	if !sameBits(t, p, got, p.run(nil, 0)) || math.Signbit(got[0]) {
		t.Errorf("sum of -0 products: %v, want +0", got[0])
	}
}

// With the threshold Install sets, a product of CROWN's size goes to the module and
// a tiny one does not.
func TestInstallThreshold(t *testing.T) {
	requireModule(t)
	defer blas.SetBlockKernel(nil, 0)
	rng := rand.New(rand.NewPCG(35, 36))
	big := newProduct(rng, gblas.NoTrans, gblas.NoTrans, 100, 100, 100, 1, 0, 0)
	tiny := newProduct(rng, gblas.NoTrans, gblas.NoTrans, 4, 4, 1, 1, 0, 0)
	want := big.run(nil, 0)
	dgemm := func(p *product) []float64 {
		c := append([]float64(nil), p.c...)
		blas.Implementation{}.Dgemm(p.tA, p.tB, p.m, p.n, p.k, p.alpha, p.a, p.lda, p.b, p.ldb, p.beta, c, p.ldc)
		return c
	}
	Install()
	c0 := Calls()
	dgemm(tiny)
	if Calls() != c0 {
		t.Errorf("a 4×4×1 product (work 1 < MinWork %d) called the module", MinWork)
	}
	got := dgemm(big)
	if Calls() == c0 {
		t.Error("a 100×100×100 product did not call the module")
	}
	sameBits(t, big, got, want)
}

// Not a test: Go kernel against module for block sizes around MinWork, to pick it
// (make gemm-wasm, then GRAFTCERT_GEMM_TIMING=1 GOOS=js GOARCH=wasm go test
// -exec "node $PWD/wasm/gemmsimd/run_node.js" -run TestTiming -v ./wasm/gemmsimd). Each
// figure is the best of 7 rounds, Go and module alternating, as other work on the
// machine only ever slows a round down.
func TestTiming(t *testing.T) {
	if os.Getenv("GRAFTCERT_GEMM_TIMING") == "" {
		t.Skip("set GRAFTCERT_GEMM_TIMING=1")
	}
	f := module(t)
	rng := rand.New(rand.NewPCG(37, 38))
	for _, sz := range [][3]int{{4, 4, 4}, {4, 4, 16}, {8, 8, 8}, {4, 4, 64}, {8, 4, 32}, {8, 8, 32}, {4, 4, 256}, {16, 16, 16}, {32, 32, 32}, {100, 100, 100}, {128, 128, 256}} {
		p := newProduct(rng, gblas.NoTrans, gblas.NoTrans, sz[0], sz[1], sz[2], 1, 1, 0)
		n := 1 + 500_000/(sz[0]*sz[1]*sz[2])
		timeIt := func(f blas.BlockKernel) float64 {
			t0 := time.Now()
			for i := 0; i < n; i++ {
				p.run(f, 1)
			}
			return float64(time.Since(t0).Nanoseconds()) / float64(n)
		}
		goNs, simdNs := math.Inf(1), math.Inf(1)
		for round := 0; round < 7; round++ {
			goNs = min(goNs, timeIt(nil))
			simdNs = min(simdNs, timeIt(f))
		}
		flops := 2 * float64(sz[0]*sz[1]*sz[2])
		t.Logf("%4d×%4d×%4d work %7d: Go %9.0f ns (%.2f GFlop/s), SIMD %9.0f ns (%.2f GFlop/s), %.2f×", sz[0], sz[1], sz[2],
			sz[0]/4*sz[1]/4*sz[2], goNs, flops/goNs, simdNs, flops/simdNs, goNs/simdNs)
	}
}
