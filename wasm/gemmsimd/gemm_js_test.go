//go:build js && wasm

package gemmsimd

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"testing"
	"time"

	"github.com/graftcert/graftcert/core/blas"
	"github.com/graftcert/graftcert/core/crown"
	"github.com/graftcert/graftcert/core/data"
	"github.com/graftcert/graftcert/core/onnx"
	"github.com/graftcert/graftcert/internal/sharedtest"
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
	if installedConcretize == nil {
		t.Fatal("Install() kept the Go concretize loop with the module loaded")
	}
	if installedRelax == nil {
		t.Fatal("Install() kept the Go relax loop with the module loaded")
	}
	if installedPack == nil {
		t.Fatal("Install() kept the Go packing with the module loaded")
	}
	if installedAdam == nil {
		t.Fatal("Install() kept the Go Adam loop with the module loaded")
	}
	if installedIm2col == nil {
		t.Fatal("Install() kept the Go im2col loop with the module loaded")
	}
	if installedGather == nil || installedInterleave == nil {
		t.Fatal("Install() kept the Go gather and interleave loops with the module loaded")
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
	// 4..37 squared: 34·34 products have a full tile, in one block each; the 25·34 of
	// them with a partial last row of tiles make another call for it, and the 25·34
	// with a partial last column another.
	if want := 34*34 + 2*25*34; small != int64(want) {
		t.Errorf("the module computed %d blocks of the small products, want %d", small, want)
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

// batch is one crown.Concretize call's operands.
type batch struct {
	n, size                    int
	a, mid, rad, mx, bias, mag []float64
	safety                     float64
}

func newBatch(rng *rand.Rand, n, size int) *batch {
	v := func(k int, scale float64) []float64 {
		x := make([]float64, k)
		for i := range x {
			x[i] = rng.NormFloat64() * scale
		}
		return x
	}
	b := &batch{n: n, size: size, a: v(n*size, 1), mid: v(size, 0.5), rad: v(size, 0.1), bias: v(n, 3), mag: v(n, 1), safety: 1e-9}
	for i := range b.rad {
		b.rad[i] = math.Abs(b.rad[i])
	}
	b.mx = make([]float64, size)
	for i := range b.mx {
		b.mx[i] = math.Abs(b.mid[i]) + b.rad[i]
	}
	for i := range b.mag {
		b.mag[i] = math.Abs(b.mag[i])
	}
	return b
}

// run concretises the batch with the kernel f (nil: the Go loop alone), used for
// batches of at least minWork elements; lb starts as sentinels, and one more sentinel
// after the n bounds must stay.
func (b *batch) run(f crown.ConcretizeKernel, minWork int) []float64 {
	defer crown.SetConcretizeKernel(nil, 0)
	crown.SetConcretizeKernel(f, minWork)
	lb := make([]float64, b.n+1)
	for i := range lb {
		lb[i] = sentinel
	}
	crown.Concretize(b.n, b.size, b.a, b.mid, b.rad, b.mx, b.bias, b.mag, b.safety, lb[:b.n])
	return lb
}

func sameBounds(t *testing.T, b *batch, got, want []float64) bool {
	t.Helper()
	for i := range want {
		g, w := got[i], want[i]
		if math.Float64bits(g) != math.Float64bits(w) && !(math.IsNaN(g) && math.IsNaN(w)) {
			t.Errorf("%d rows of %d: lb[%d] = %v (%#x) with the module, %v (%#x) with the Go loop", b.n, b.size, i,
				g, math.Float64bits(g), w, math.Float64bits(w))
			return false
		}
	}
	if got[b.n] != sentinel {
		t.Errorf("%d rows of %d: the module wrote past lb", b.n, b.size)
		return false
	}
	return true
}

// The module's concretize equals the Go loop bit for bit: every row length from 1 to
// 41 (odd and even, below and above the unrolled step) with 1 to 5 rows, CROWN's
// sizes (784 and 3072 inputs), and rows with signed zeros, infinities and NaNs.
func TestConcretizeBitIdenticalToGo(t *testing.T) {
	requireModule(t)
	f := installedConcretize
	rng := rand.New(rand.NewPCG(51, 52))
	before := ConcretizeCalls()
	calls := 0
	for size := 1; size <= 41; size++ {
		for n := 1; n <= 5; n++ {
			b := newBatch(rng, n, size)
			calls++
			if !sameBounds(t, b, b.run(f, 1), b.run(nil, 0)) {
				return
			}
		}
	}
	for _, sz := range [][2]int{{18, 784}, {200, 100}, {3, 3072}, {7, 3073}} {
		b := newBatch(rng, sz[0], sz[1])
		calls++
		if !sameBounds(t, b, b.run(f, 1), b.run(nil, 0)) {
			return
		}
	}
	if got := ConcretizeCalls() - before; got != int64(calls) {
		t.Errorf("the module concretised %d batches, want %d", got, calls)
	}
	specials := []float64{0, math.Copysign(0, -1), math.Inf(1), math.Inf(-1), math.NaN(), 1e308, -1e-308, 5e-324}
	for trial := 0; trial < 40; trial++ {
		b := newBatch(rng, 1+trial%4, 1+trial%11)
		for _, s := range [][]float64{b.a, b.mid, b.rad, b.mx, b.bias, b.mag} {
			for i := range s {
				if rng.IntN(3) == 0 {
					s[i] = specials[rng.IntN(len(specials))]
				}
			}
		}
		if !sameBounds(t, b, b.run(f, 1), b.run(nil, 0)) {
			return
		}
	}
	// Rows of -0 products: the sums start at +0 in both, so a zero bias gives +0.
	b := newBatch(rng, 2, 5)
	for i := range b.a {
		b.a[i] = math.Copysign(0, -1)
	}
	for i := range b.mid {
		b.mid[i] = math.Abs(b.mid[i])
	}
	b.bias[0], b.mag[0] = 0, 0
	got := b.run(f, 1)
	if !sameBounds(t, b, got, b.run(nil, 0)) || math.Signbit(got[0]) {
		t.Errorf("a row of -0 products: lb = %v, want +0", got[0])
	}
}

// With the threshold Install sets, a batch of CROWN's size goes to the module and a
// small one does not.
func TestConcretizeThreshold(t *testing.T) {
	requireModule(t)
	defer crown.SetConcretizeKernel(nil, 0)
	rng := rand.New(rand.NewPCG(53, 54))
	big, small := newBatch(rng, 20, 784), newBatch(rng, 2, 7)
	want := big.run(nil, 0)
	run := func(b *batch) []float64 {
		lb := make([]float64, b.n+1)
		lb[b.n] = sentinel
		crown.Concretize(b.n, b.size, b.a, b.mid, b.rad, b.mx, b.bias, b.mag, b.safety, lb[:b.n])
		return lb
	}
	Install()
	c0 := ConcretizeCalls()
	run(small)
	if ConcretizeCalls() != c0 {
		t.Errorf("a 2×7 batch (below MinConcretize %d) called the module", MinConcretize)
	}
	got := run(big)
	if ConcretizeCalls() == c0 {
		t.Error("a 20×784 batch did not call the module")
	}
	sameBounds(t, big, got, want)
}

// Not a test: Go loop against module for batch sizes around MinConcretize (as
// TestTiming: GRAFTCERT_GEMM_TIMING=1 ... -run TestConcretizeTiming -v).
func TestConcretizeTiming(t *testing.T) {
	if os.Getenv("GRAFTCERT_GEMM_TIMING") == "" {
		t.Skip("set GRAFTCERT_GEMM_TIMING=1")
	}
	requireModule(t)
	f := installedConcretize
	rng := rand.New(rand.NewPCG(55, 56))
	for _, sz := range [][2]int{{2, 64}, {2, 128}, {4, 128}, {2, 512}, {4, 256}, {8, 128}, {2, 784}, {8, 784}, {18, 784}, {200, 784}, {200, 100}, {20, 3072}} {
		b := newBatch(rng, sz[0], sz[1])
		n := 1 + 2_000_000/(sz[0]*sz[1])
		timeIt := func(f crown.ConcretizeKernel) float64 {
			crown.SetConcretizeKernel(f, 1)
			defer crown.SetConcretizeKernel(nil, 0)
			lb := make([]float64, b.n)
			t0 := time.Now()
			for i := 0; i < n; i++ {
				crown.Concretize(b.n, b.size, b.a, b.mid, b.rad, b.mx, b.bias, b.mag, b.safety, lb)
			}
			return float64(time.Since(t0).Nanoseconds()) / float64(n)
		}
		goNs, simdNs := math.Inf(1), math.Inf(1)
		for round := 0; round < 7; round++ {
			goNs = min(goNs, timeIt(nil))
			simdNs = min(simdNs, timeIt(f))
		}
		t.Logf("%4d×%5d (%7d elements): Go %9.0f ns (%.2f ns/element), SIMD %9.0f ns (%.2f ns/element), %.2f×", sz[0], sz[1], sz[0]*sz[1],
			goNs, goNs/float64(sz[0]*sz[1]), simdNs, simdNs/float64(sz[0]*sz[1]), goNs/simdNs)
	}
}

// relaxBatch is one crown.RelaxRows call's operands.
type relaxBatch struct {
	n, size, nu              int
	a, tab, alpha, bias, mag []float64
}

// newRelaxBatch makes n rows over size neurons of every kind (as the relaxation
// tables core/crown builds: inactive, active, grafted, unstable with and without an α
// column) and, with garbage, entries of random values and masks; with specials, rows
// holding signed zeros, infinities and NaNs.
func newRelaxBatch(rng *rand.Rand, n, size, nu int, withAlpha, garbage, specials bool) *relaxBatch {
	ones := math.Float64frombits(^uint64(0))
	col := func(c int) float64 { return math.Float64frombits(uint64(int64(c))) }
	b := &relaxBatch{n: n, size: size, nu: nu, a: make([]float64, n*size), tab: make([]float64, size*crown.RelaxSlots),
		bias: make([]float64, n), mag: make([]float64, n)}
	for i := 0; i < size; i++ {
		e := b.tab[i*crown.RelaxSlots : (i+1)*crown.RelaxSlots]
		e[crown.RelaxCol] = col(-1)
		e[crown.RelaxKeep] = ones
		switch k := rng.IntN(6); {
		case garbage && k == 5:
			for s := range e {
				e[s] = rng.NormFloat64()
			}
			for _, s := range []int{crown.RelaxMaskGE, crown.RelaxMaskLT, crown.RelaxKeep} {
				e[s] = []float64{0, ones}[rng.IntN(2)]
			}
			e[crown.RelaxCol] = col(rng.IntN(nu+1) - 1)
		case k == 0:
			e[crown.RelaxKeep] = 0
		case k == 1:
			e[crown.RelaxCoefGE], e[crown.RelaxCoefLT] = 1, 1
		case k == 2:
			sl, bi := rng.NormFloat64(), rng.NormFloat64()
			e[crown.RelaxCoefGE], e[crown.RelaxCoefLT], e[crown.RelaxBiasGE], e[crown.RelaxBiasLT] = sl, sl, bi, bi
			e[crown.RelaxMaskGE], e[crown.RelaxMaskLT] = ones, ones
		default:
			d := rng.Float64()
			e[crown.RelaxCoefGE], e[crown.RelaxCoefLT] = float64(rng.IntN(2)), d
			e[crown.RelaxBiasLT], e[crown.RelaxMaskLT] = rng.Float64()*2, ones
			if nu > 0 && k == 4 {
				e[crown.RelaxCol] = col(rng.IntN(nu))
			}
		}
	}
	special := []float64{0, math.Copysign(0, -1), math.Inf(1), math.Inf(-1), math.NaN(), 1e-320, -1e308}
	for i := range b.a {
		switch {
		case rng.IntN(8) == 0:
			b.a[i] = []float64{0, math.Copysign(0, -1)}[rng.IntN(2)]
		case specials && rng.IntN(4) == 0:
			b.a[i] = special[rng.IntN(len(special))]
		default:
			b.a[i] = rng.NormFloat64()
		}
	}
	for i := range b.bias {
		b.bias[i], b.mag[i] = rng.NormFloat64(), rng.Float64()
	}
	if withAlpha {
		b.alpha = make([]float64, n*nu)
		for i := range b.alpha {
			b.alpha[i] = rng.Float64()
		}
	}
	return b
}

// run relaxes a copy of the batch with the kernel f (nil: the Go loop alone), used
// for batches of at least minWork elements, and returns the rows, bias and mag, then
// a sentinel that must stay.
func (b *relaxBatch) run(f crown.RelaxKernel, minWork int) []float64 {
	defer crown.SetRelaxKernel(nil, 0)
	crown.SetRelaxKernel(f, minWork)
	buf := make([]float64, 0, b.n*b.size+2*b.n+3)
	buf = append(append(append(buf, b.a...), sentinel), b.bias...)
	buf = append(append(buf, sentinel), b.mag...)
	buf = append(buf, sentinel)
	a := buf[:b.n*b.size]
	bias := buf[b.n*b.size+1:][:b.n]
	mag := buf[b.n*b.size+b.n+2:][:b.n]
	crown.RelaxRows(b.n, b.size, a, b.tab, b.alpha, b.nu, bias, mag)
	return buf
}

func sameRelaxed(t *testing.T, b *relaxBatch, got, want []float64) bool {
	t.Helper()
	for i := range want {
		g, w := got[i], want[i]
		if math.Float64bits(g) != math.Float64bits(w) && !(math.IsNaN(g) && math.IsNaN(w)) {
			what := fmt.Sprintf("a[%d]", i)
			if j := i - b.n*b.size - 1; j >= 0 && j < b.n {
				what = fmt.Sprintf("bias[%d]", j)
			} else if j := i - b.n*b.size - b.n - 2; j >= 0 {
				what = fmt.Sprintf("mag[%d]", j)
			}
			t.Errorf("%d rows of %d (α %v): %s = %v (%#x) with the module, %v (%#x) with the Go loop", b.n, b.size, b.alpha != nil,
				what, g, math.Float64bits(g), w, math.Float64bits(w))
			return false
		}
	}
	return true
}

// The module's relax equals the Go loop bit for bit: 1 to 7 rows (pairs of lanes and
// a last odd row) of 1 to 37 neurons of every kind, with and without α, tables with
// arbitrary entries, rows with special values, and CROWN's sizes.
func TestRelaxBitIdenticalToGo(t *testing.T) {
	requireModule(t)
	f := installedRelax
	rng := rand.New(rand.NewPCG(61, 62))
	before := RelaxCalls()
	calls := 0
	for size := 1; size <= 37; size++ {
		for n := 1; n <= 7; n++ {
			q := size*7 + n
			b := newRelaxBatch(rng, n, size, 1+q%5, q%2 == 0, q%3 == 0, q%5 == 0)
			calls++
			if !sameRelaxed(t, b, b.run(f, 1), b.run(nil, 0)) {
				return
			}
		}
	}
	for _, sz := range [][2]int{{200, 100}, {37, 100}, {19, 1024}} {
		for _, al := range []bool{false, true} {
			b := newRelaxBatch(rng, sz[0], sz[1], 60, al, false, false)
			calls++
			if !sameRelaxed(t, b, b.run(f, 1), b.run(nil, 0)) {
				return
			}
		}
	}
	if got := RelaxCalls() - before; got != int64(calls) {
		t.Errorf("the module relaxed %d batches, want %d", got, calls)
	}
}

// With the threshold Install sets, a batch of CROWN's size goes to the module and a
// small one does not.
func TestRelaxThreshold(t *testing.T) {
	requireModule(t)
	defer crown.SetRelaxKernel(nil, 0)
	rng := rand.New(rand.NewPCG(63, 64))
	big, small := newRelaxBatch(rng, 20, 100, 10, true, false, false), newRelaxBatch(rng, 2, 7, 3, false, false, false)
	want := big.run(nil, 0)
	run := func(b *relaxBatch) []float64 {
		out := append([]float64(nil), b.a...)
		bias, mag := append([]float64(nil), b.bias...), append([]float64(nil), b.mag...)
		crown.RelaxRows(b.n, b.size, out, b.tab, b.alpha, b.nu, bias, mag)
		return append(append(append(append(append(out, sentinel), bias...), sentinel), mag...), sentinel)
	}
	Install()
	c0 := RelaxCalls()
	run(small)
	if RelaxCalls() != c0 {
		t.Errorf("a 2×7 batch (below MinRelax %d) called the module", MinRelax)
	}
	got := run(big)
	if RelaxCalls() == c0 {
		t.Error("a 20×100 batch did not call the module")
	}
	sameRelaxed(t, big, got, want)
}

// Not a test: RelaxRows's Go loop against the module for batch sizes around MinRelax
// (as TestTiming: GRAFTCERT_GEMM_TIMING=1 ... -run TestRelaxTiming -v). core/crown
// itself relaxes with relaxRow, about as fast on js/wasm as that loop.
func TestRelaxTiming(t *testing.T) {
	if os.Getenv("GRAFTCERT_GEMM_TIMING") == "" {
		t.Skip("set GRAFTCERT_GEMM_TIMING=1")
	}
	requireModule(t)
	f := installedRelax
	rng := rand.New(rand.NewPCG(65, 66))
	for _, sz := range [][2]int{{2, 64}, {2, 128}, {4, 128}, {2, 512}, {8, 128}, {20, 100}, {200, 100}, {50, 1024}} {
		for _, al := range []bool{false, true} {
			b := newRelaxBatch(rng, sz[0], sz[1], sz[1]/4, al, false, false)
			n := 1 + 1_000_000/(sz[0]*sz[1])
			work := append([]float64(nil), b.a...)
			bias, mag := append([]float64(nil), b.bias...), append([]float64(nil), b.mag...)
			timeIt := func(f crown.RelaxKernel) float64 {
				crown.SetRelaxKernel(f, 1)
				defer crown.SetRelaxKernel(nil, 0)
				var d time.Duration
				for i := 0; i < n; i++ {
					copy(work, b.a) // the rows are relaxed in place
					t0 := time.Now()
					crown.RelaxRows(b.n, b.size, work, b.tab, b.alpha, b.nu, bias, mag)
					d += time.Since(t0)
				}
				return float64(d.Nanoseconds()) / float64(n)
			}
			goNs, simdNs := math.Inf(1), math.Inf(1)
			for round := 0; round < 7; round++ {
				goNs = min(goNs, timeIt(nil))
				simdNs = min(simdNs, timeIt(f))
			}
			el := float64(sz[0] * sz[1])
			t.Logf("%4d×%5d α %-5v: Go %9.0f ns (%.2f ns/element), SIMD %9.0f ns (%.2f ns/element), %.2f×", sz[0], sz[1], al,
				goNs, goNs/el, simdNs, simdNs/el, goNs/simdNs)
		}
	}
}

// Whole bounds are the same bit for bit with the module's functions installed
// as with core's Go loops alone, and the functions are used: CROWN and α-CROWN on a
// dense network and on its grafted version (linear neurons), CROWN and α-CROWN on
// convolutional ones, on the first reference sample of each.
func TestBoundsSameWithKernels(t *testing.T) {
	requireModule(t)
	defer Install()
	for _, c := range []struct {
		model  string
		method crown.Method
	}{
		{"mnist_6_100", crown.CROWN}, {"mnist_6_100", crown.AlphaCROWN},
		{"mnist_6_100_graft50", crown.CROWN}, {"mnist_6_100_graft50", crown.AlphaCROWN},
		{"cifar_conv_small", crown.CROWN}, {"mnist_conv_small", crown.AlphaCROWN},
	} {
		net, err := onnx.DecodeFile(sharedtest.Path(t, "models", c.model+".onnx"))
		if err != nil {
			t.Fatal(err)
		}
		ref := sharedtest.LoadReference(t, c.model)
		X, err := data.ReadNPYFile(sharedtest.Path(t, "data", ref.Dataset+"_X.npy"))
		if err != nil {
			t.Fatal(err)
		}
		smp := ref.Samples[0]
		x := X.Sample(smp.Index)
		lo, hi := make([]float64, len(x)), make([]float64, len(x))
		for i, v := range x {
			lo[i], hi[i] = min(1, max(0, v-ref.Eps)), min(1, max(0, v+ref.Eps))
		}
		var C []float64
		for j := 0; j < net.OutSize(); j++ {
			if j != smp.Label {
				row := make([]float64, net.OutSize())
				row[smp.Label], row[j] = 1, -1
				C = append(C, row...)
			}
		}
		bound := func() []float64 {
			res, err := crown.Bound(context.Background(), net, lo, hi, C, crown.Options{Method: c.method, Upper: true})
			if err != nil {
				t.Fatal(err)
			}
			return append(res.Lower, res.Upper...)
		}
		blas.SetBlockKernel(nil, 0)
		blas.SetPackKernel(nil, 0)
		crown.SetConcretizeKernel(nil, 0)
		crown.SetRelaxKernel(nil, 0)
		crown.SetAdamKernel(nil, 0)
		crown.SetIm2colKernel(nil, 0)
		crown.SetConvKernels(nil, nil, 0)
		crown.SetSparseKernel(nil, 0)
		crown.SetColumnKernels(nil, nil)
		want := bound()
		Install()
		b0, c0, r0, p0, a0, i0, g0, s0 := Calls(), ConcretizeCalls(), RelaxCalls(), PackCalls(), AdamCalls(), Im2colCalls(), ConvCalls(), SparseCalls()
		got := bound()
		conv := c.model == "mnist_conv_small" || c.model == "cifar_conv_small"
		convAlpha := conv && c.method == crown.AlphaCROWN
		// Rows crossing these networks' convolutions go through the sparse products
		// (every convolution has a ReLU above it), and CROWN's concretise on their own;
		// α-CROWN's adjoint lays out column matrices (im2col). The dense products'
		// gather and interleave serve convolutions without an activation above, which
		// these networks lack (TestConvExact checks them).
		if Calls() == b0 || (ConcretizeCalls() == c0) != (conv && !convAlpha) || RelaxCalls() == r0 || PackCalls() == p0 ||
			(c.method == crown.AlphaCROWN) != (AdamCalls() > a0) || convAlpha != (Im2colCalls() > i0) ||
			ConvCalls() != g0 || conv != (SparseCalls() > s0) {
			t.Errorf("%s %s: module calls: %d blocks, %d concretize, %d relax, %d pack, %d adam, %d im2col, %d gather/interleave, %d sparse; "+
				"want blocks, relax and pack > 0, concretize > 0 but for CROWN on a convolutional network, adam with α only, "+
				"im2col with α on a convolutional network only, no gather/interleave, sparse on a convolutional network only",
				c.model, c.method, Calls()-b0, ConcretizeCalls()-c0, RelaxCalls()-r0, PackCalls()-p0, AdamCalls()-a0, Im2colCalls()-i0,
				ConvCalls()-g0, SparseCalls()-s0)
		}
		for i := range want {
			if math.Float64bits(got[i]) != math.Float64bits(want[i]) {
				t.Errorf("%s %s: bound %d is %v with the module, %v with Go alone", c.model, c.method, i, got[i], want[i])
				break
			}
		}
	}
}

// The module's pack copies exactly what blas.PackKernel documents, bits included
// (NaN payloads, signed zeros), writing nothing past dst: both forms, 1 to 5 panels,
// even and odd depths, source strides wider than the panels.
func TestPackExact(t *testing.T) {
	requireModule(t)
	f := installedPack
	rng := rand.New(rand.NewPCG(81, 82))
	before := PackCalls()
	calls := 0
	for _, trans := range []bool{false, true} {
		for np := 1; np <= 5; np++ {
			for kb := 1; kb <= 9; kb++ {
				ld := 4*np + rng.IntN(5)
				need := (kb-1)*ld + 4*np
				if trans {
					ld = kb + rng.IntN(5)
					need = (4*np-1)*ld + kb
				}
				src := make([]float64, need)
				for i := range src {
					src[i] = math.Float64frombits(rng.Uint64()) // any bits: NaNs with payloads too
				}
				dst := make([]float64, 4*np*kb+1)
				dst[4*np*kb] = sentinel
				f(trans, np, kb, src, ld, dst[:4*np*kb])
				calls++
				for q := 0; q < np; q++ {
					for p := 0; p < kb; p++ {
						for j := 0; j < 4; j++ {
							var want float64
							if trans {
								want = src[(4*q+j)*ld+p]
							} else {
								want = src[p*ld+4*q+j]
							}
							if got := dst[q*4*kb+p*4+j]; math.Float64bits(got) != math.Float64bits(want) {
								t.Fatalf("trans %v, %d panels, depth %d, ld %d: panel %d step %d value %d is %#x, want %#x", trans, np, kb, ld,
									q, p, j, math.Float64bits(got), math.Float64bits(want))
							}
						}
					}
				}
				if dst[4*np*kb] != sentinel {
					t.Fatalf("trans %v, %d panels, depth %d: the module wrote past dst", trans, np, kb)
				}
			}
		}
	}
	if got := PackCalls() - before; got != int64(calls) {
		t.Errorf("the module packed %d times, want %d", got, calls)
	}
}

// Dgemm with the module packing equals Dgemm with Go packing bit for bit, every
// transposition, sizes with partial panels, several blocks of k and of rows.
func TestPackDgemm(t *testing.T) {
	requireModule(t)
	defer blas.SetPackKernel(nil, 0)
	rng := rand.New(rand.NewPCG(83, 84))
	before := PackCalls()
	for _, sz := range [][3]int{{4, 4, 1}, {13, 17, 19}, {97, 131, 300}, {150, 19, 257}, {33, 613, 3}} {
		for _, tA := range []gblas.Transpose{gblas.NoTrans, gblas.Trans} {
			for _, tB := range []gblas.Transpose{gblas.NoTrans, gblas.Trans} {
				p := newProduct(rng, tA, tB, sz[0], sz[1], sz[2], 1.5, 1, 1)
				blas.SetPackKernel(nil, 0)
				want := p.run(installed, 1)
				blas.SetPackKernel(installedPack, 1)
				if !sameBits(t, p, p.run(installed, 1), want) {
					return
				}
			}
		}
	}
	if PackCalls() == before {
		t.Error("the module packed nothing")
	}
}

// Not a test: Go packing against the module's for panel runs around MinPack (as
// TestTiming: GRAFTCERT_GEMM_TIMING=1 ... -run TestPackTiming -v): whole Dgemm calls
// with the pure-Go kernel, so that the packing's share shows.
func TestPackTiming(t *testing.T) {
	if os.Getenv("GRAFTCERT_GEMM_TIMING") == "" {
		t.Skip("set GRAFTCERT_GEMM_TIMING=1")
	}
	requireModule(t)
	defer blas.SetPackKernel(nil, 0)
	rng := rand.New(rand.NewPCG(85, 86))
	for _, sz := range [][3]int{{4, 4, 16}, {8, 8, 8}, {4, 16, 16}, {8, 8, 32}, {16, 16, 16}, {40, 100, 50}, {40, 784, 50}, {16, 2000, 48}} {
		for _, tA := range []gblas.Transpose{gblas.NoTrans, gblas.Trans} {
			p := newProduct(rng, tA, gblas.NoTrans, sz[0], sz[1], sz[2], 1, 0, 0)
			n := 1 + 300_000/(sz[0]*sz[1]*sz[2])
			timeIt := func(f blas.PackKernel) float64 {
				blas.SetPackKernel(f, 1)
				t0 := time.Now()
				for i := 0; i < n; i++ {
					p.run(installed, MinWork)
				}
				return float64(time.Since(t0).Nanoseconds()) / float64(n)
			}
			goNs, simdNs := math.Inf(1), math.Inf(1)
			for round := 0; round < 7; round++ {
				goNs = min(goNs, timeIt(nil))
				simdNs = min(simdNs, timeIt(installedPack))
			}
			t.Logf("%c %4d×%4d×%4d: Go packing %9.0f ns, SIMD packing %9.0f ns, %.2f×", tA, sz[0], sz[1], sz[2], goNs, simdNs, goNs/simdNs)
		}
	}
}

// adamCase is one crown.Adam call's operands.
type adamCase struct {
	a, g, m, v []float64
	s          crown.AdamStep
}

func newAdamCase(rng *rand.Rand, n int, specials bool) *adamCase {
	c := &adamCase{a: make([]float64, n), g: make([]float64, n), m: make([]float64, n), v: make([]float64, n)}
	step := 1 + rng.IntN(20)
	c.s = crown.AdamStep{B1: 0.9, C1: 0.1, B2: 0.999, C2: 0.001, Eps: 1e-8, LR: rng.Float64(),
		IC1: 1 / (1 - math.Pow(0.9, float64(step))), IC2: 1 / (1 - math.Pow(0.999, float64(step)))}
	sp := []float64{0, math.Copysign(0, -1), math.Inf(1), math.Inf(-1), math.NaN(), 1e300, 5e-324}
	for i := 0; i < n; i++ {
		c.a[i] = rng.Float64()*1.4 - 0.2 // some outside [0, 1], to be clamped
		c.g[i] = rng.NormFloat64() * 3
		c.m[i] = rng.NormFloat64()
		c.v[i] = rng.Float64() * 2
		if specials && rng.IntN(3) == 0 {
			x := []*float64{&c.a[i], &c.g[i], &c.m[i], &c.v[i]}[rng.IntN(4)]
			*x = sp[rng.IntN(len(sp))]
		}
	}
	return c
}

// run steps a copy with the kernel f (nil: the Go loop), used from minWork values,
// and returns a, g, m and v one after the other.
func (c *adamCase) run(f crown.AdamKernel, minWork int) []float64 {
	defer crown.SetAdamKernel(nil, 0)
	crown.SetAdamKernel(f, minWork)
	cp := func(x []float64) []float64 { return append([]float64(nil), x...) }
	a, g, m, v := cp(c.a), cp(c.g), cp(c.m), cp(c.v)
	crown.Adam(a, g, m, v, c.s)
	return append(append(append(a, g...), m...), v...)
}

// The module's adam equals the Go loop bit for bit (any NaN for a NaN): 1 to 40 values
// (pairs and a last odd one), α clamped at both ends, special values anywhere.
func TestAdamBitIdenticalToGo(t *testing.T) {
	requireModule(t)
	f := installedAdam
	rng := rand.New(rand.NewPCG(91, 92))
	before := AdamCalls()
	calls := 0
	for n := 1; n <= 40; n++ {
		for _, sp := range []bool{false, true} {
			c := newAdamCase(rng, n, sp)
			got, want := c.run(f, 1), c.run(nil, 0)
			calls++
			for i := range want {
				if g, w := got[i], want[i]; math.Float64bits(g) != math.Float64bits(w) && !(math.IsNaN(g) && math.IsNaN(w)) {
					t.Fatalf("%d values (specials %v): %s[%d] = %v (%#x) with the module, %v (%#x) with Go", n, sp,
						[]string{"a", "g", "m", "v"}[i/n], i%n, g, math.Float64bits(g), w, math.Float64bits(w))
				}
			}
		}
	}
	if got := AdamCalls() - before; got != int64(calls) {
		t.Errorf("the module stepped %d times, want %d", got, calls)
	}
}

// Not a test: the Go loop against the module around MinAdam (as TestTiming:
// GRAFTCERT_GEMM_TIMING=1 ... -run TestAdamTiming -v).
func TestAdamTiming(t *testing.T) {
	if os.Getenv("GRAFTCERT_GEMM_TIMING") == "" {
		t.Skip("set GRAFTCERT_GEMM_TIMING=1")
	}
	requireModule(t)
	defer crown.SetAdamKernel(nil, 0)
	rng := rand.New(rand.NewPCG(93, 94))
	for _, n := range []int{8, 16, 32, 64, 128, 1024, 20000} {
		c := newAdamCase(rng, n, false)
		reps := 1 + 1_000_000/n
		timeIt := func(f crown.AdamKernel) float64 {
			crown.SetAdamKernel(f, 1)
			t0 := time.Now()
			for i := 0; i < reps; i++ {
				crown.Adam(c.a, c.g, c.m, c.v, c.s)
			}
			return float64(time.Since(t0).Nanoseconds()) / float64(reps)
		}
		goNs, simdNs := math.Inf(1), math.Inf(1)
		for round := 0; round < 7; round++ {
			goNs = min(goNs, timeIt(nil))
			simdNs = min(simdNs, timeIt(installedAdam))
		}
		t.Logf("%6d values: Go %9.0f ns (%.2f ns/value), SIMD %9.0f ns (%.2f ns/value), %.2f×", n, goNs, goNs/float64(n),
			simdNs, simdNs/float64(n), goNs/simdNs)
	}
}

// The module's im2col copies what crown.Im2col's Go loop does, bits included, and
// nothing else: strides 1 to 3, runs of 1 to 9 values, 1 to 4 rows, columns holding a
// sentinel that only the jobs' values replace.
func TestIm2colExact(t *testing.T) {
	requireModule(t)
	f := installedIm2col
	rng := rand.New(rand.NewPCG(111, 112))
	before := Im2colCalls()
	calls := 0
	for trial := 0; trial < 300; trial++ {
		stride, nr, ohw, taps := 1+trial%3, 1+rng.IntN(4), 4+rng.IntN(20), 1+rng.IntN(5)
		srcStep := 10 + rng.IntN(60)
		var jobs []int32
		for j := 0; j < 1+rng.IntN(8); j++ {
			n := 1 + rng.IntN(min(9, ohw))
			if (n-1)*stride >= srcStep {
				continue
			}
			jobs = append(jobs, int32(rng.IntN(taps)), int32(rng.IntN(ohw-n+1)), int32(rng.IntN(srcStep-(n-1)*stride)), int32(n))
		}
		if len(jobs) == 0 {
			continue
		}
		src := make([]float64, nr*srcStep)
		for i := range src {
			src[i] = math.Float64frombits(rng.Uint64())
		}
		w := nr * ohw
		run := func(k crown.Im2colKernel) []float64 {
			defer crown.SetIm2colKernel(nil, 0)
			crown.SetIm2colKernel(k, 1)
			cols := make([]float64, taps*w+1)
			for i := range cols {
				cols[i] = sentinel
			}
			crown.Im2col(nr, src, srcStep, cols[:taps*w], w, ohw, jobs, stride)
			return cols
		}
		got, want := run(f), run(nil)
		calls++
		for i := range want {
			if math.Float64bits(got[i]) != math.Float64bits(want[i]) {
				t.Fatalf("trial %d (stride %d, %d rows, jobs %v): cols[%d] = %#x with the module, %#x with Go", trial, stride, nr, jobs,
					i, math.Float64bits(got[i]), math.Float64bits(want[i]))
			}
		}
	}
	if got := Im2colCalls() - before; got != int64(calls) {
		t.Errorf("the module ran %d times, want %d", got, calls)
	}
}

// Not a test: Go's im2col loop against the module on the shared convolutions' column
// matrices (as TestTiming: GRAFTCERT_GEMM_TIMING=1 ... -run TestIm2colTiming -v).
func TestIm2colTiming(t *testing.T) {
	if os.Getenv("GRAFTCERT_GEMM_TIMING") == "" {
		t.Skip("set GRAFTCERT_GEMM_TIMING=1")
	}
	requireModule(t)
	defer crown.SetIm2colKernel(nil, 0)
	// (input channels, size, output size, rows): cifar_conv_small's and mnist_conv_small's
	// second convolutions (kernel 4, stride 2), then small maps.
	for _, g := range [][4]int{{16, 15, 6, 1}, {16, 15, 6, 8}, {16, 13, 5, 1}, {16, 13, 5, 8}, {1, 6, 2, 1}, {2, 6, 2, 1}, {3, 8, 3, 1}} {
		inC, in, out, nr := g[0], g[1], g[2], g[3]
		var jobs []int32
		for ic := 0; ic < inC; ic++ {
			for ky := 0; ky < 4; ky++ {
				for kx := 0; kx < 4; kx++ {
					for oy := 0; oy < out; oy++ {
						jobs = append(jobs, int32((ic*4+ky)*4+kx), int32(oy*out), int32(ic*in*in+(2*oy+ky)*in+kx), int32(out))
					}
				}
			}
		}
		src := make([]float64, nr*inC*in*in)
		cols := make([]float64, inC*16*nr*out*out)
		reps := 1 + 2_000_000/len(cols)
		timeIt := func(f crown.Im2colKernel) float64 {
			crown.SetIm2colKernel(f, 1)
			t0 := time.Now()
			for i := 0; i < reps; i++ {
				crown.Im2col(nr, src, inC*in*in, cols, nr*out*out, out*out, jobs, 2)
			}
			return float64(time.Since(t0).Nanoseconds()) / float64(reps)
		}
		goNs, simdNs := math.Inf(1), math.Inf(1)
		for round := 0; round < 7; round++ {
			goNs = min(goNs, timeIt(nil))
			simdNs = min(simdNs, timeIt(installedIm2col))
		}
		t.Logf("%2d×%2d×%2d → %2d×%2d, %d rows (%6d values): Go %9.0f ns, SIMD %9.0f ns, %.2f×", inC, in, in, out, out, nr, len(cols),
			goNs, simdNs, goNs/simdNs)
	}
}

// A job that would read or write outside src or cols makes the module trap (the
// kernel panics) before it copies anything: past the end of cols (the last row's
// block), past the end of src (the last row's run with its stride), and negative
// fields.
func TestIm2colRejectsBadJobs(t *testing.T) {
	requireModule(t)
	f := installedIm2col
	const nr, srcStep, ohw, taps = 2, 10, 4, 2
	src, cols := make([]float64, nr*srcStep), make([]float64, taps*nr*ohw)
	for _, c := range []struct {
		what   string
		job    []int32
		stride int
	}{
		{"in range", []int32{1, 0, 0, 4}, 2},
		{"past cols", []int32{1, 1, 0, 4}, 1},
		{"past src", []int32{0, 0, 5, 4}, 2},
		{"negative tap", []int32{-1, 0, 0, 1}, 1},
		{"negative dst", []int32{0, -2, 0, 1}, 1},
		{"negative src", []int32{0, 0, -1, 1}, 1},
		{"empty run", []int32{0, 0, 0, 0}, 1},
	} {
		panicked := func() (p bool) {
			defer func() { p = recover() != nil }()
			f(nr, src, srcStep, cols, nr*ohw, ohw, c.job, c.stride)
			return false
		}()
		if panicked != (c.what != "in range") {
			t.Errorf("%s (job %v, stride %d): panicked %v", c.what, c.job, c.stride, panicked)
		}
	}
}

// randomGather draws a gather plan over inC channels of ihw positions: segments that
// tile the positions, each with 0 to 6 sources among ns, and columns of any bits.
func randomGather(rng *rand.Rand, inC, ihw, ns, nr int) (segs, src []int32, cols []float64, kkw int) {
	for dst := 0; dst < ihw; {
		n := 1 + rng.IntN(min(4, ihw-dst))
		k := rng.IntN(7)
		segs = append(segs, int32(dst), int32(n), int32(k), int32(len(src)))
		for j := 0; j < k; j++ {
			src = append(src, int32(rng.IntN(ns-n+1)))
		}
		dst += n
	}
	if len(src) == 0 {
		src = []int32{0}
	}
	kkw = ns * nr
	cols = make([]float64, inC*kkw)
	for i := range cols {
		cols[i] = rng.NormFloat64()
		if rng.IntN(20) == 0 {
			cols[i] = []float64{math.Inf(1), math.Inf(-1), math.NaN(), math.Copysign(0, -1)}[rng.IntN(4)]
		}
	}
	return segs, src, cols, kkw
}

// The module's gather and interleave equal the Go loops bit for bit (any NaN for a
// NaN) and write nothing else: random plans of 1 to 3 channels, 1 to 5 rows, odd and
// even segment lengths, 0 to 6 sources, special values; interleaves of random
// column maps into rows at random places.
func TestConvExact(t *testing.T) {
	requireModule(t)
	rng := rand.New(rand.NewPCG(131, 132))
	before := ConvCalls()
	calls := 0
	for trial := 0; trial < 200; trial++ {
		inC, ihw, nr := 1+rng.IntN(3), 1+rng.IntN(30), 1+rng.IntN(5)
		segs, src, cols, kkw := randomGather(rng, inC, ihw, 4+rng.IntN(10), nr)
		run := func(hooked bool) []float64 {
			defer crown.SetConvKernels(nil, nil, 0)
			if hooked {
				crown.SetConvKernels(installedGather, installedInterleave, 1)
			}
			g := make([]float64, inC*ihw*nr+1)
			for i := range g {
				g[i] = sentinel
			}
			crown.Gather(inC, ihw, kkw, nr, cols, g[:inC*ihw*nr], segs, src)
			return g
		}
		got, want := run(true), run(false)
		calls++
		for i := range want {
			if g, w := got[i], want[i]; math.Float64bits(g) != math.Float64bits(w) && !(math.IsNaN(g) && math.IsNaN(w)) {
				t.Fatalf("gather trial %d: g[%d] = %v (%#x) with the module, %v (%#x) with Go", trial, i, g, math.Float64bits(g), w, math.Float64bits(w))
			}
		}
		// Interleave g (as ny input rows of iw positions) into rows of size positions.
		iw := []int{1, 2, 3, 5}[rng.IntN(4)]
		ny := inC * ihw / iw
		if ny == 0 {
			continue
		}
		xmap := make([]int32, iw)
		for i, p := range rng.Perm(iw) {
			xmap[i] = int32(p)
		}
		size := ny*iw + rng.IntN(3)
		rs := make([]int32, nr)
		for i, p := range rng.Perm(nr + 2)[:nr] {
			rs[i] = int32(p)
		}
		inter := func(hooked bool) []float64 {
			defer crown.SetConvKernels(nil, nil, 0)
			if hooked {
				crown.SetConvKernels(installedGather, installedInterleave, 1)
			}
			out := make([]float64, (nr+2)*size+1)
			for i := range out {
				out[i] = sentinel
			}
			crown.Interleave(ny, iw, nr, want[:ny*iw*nr], xmap, rs, out[:(nr+2)*size], size)
			return out
		}
		gotI, wantI := inter(true), inter(false)
		calls++
		for i := range wantI {
			if math.Float64bits(gotI[i]) != math.Float64bits(wantI[i]) {
				t.Fatalf("interleave trial %d: out[%d] = %#x with the module, %#x with Go", trial, i, math.Float64bits(gotI[i]), math.Float64bits(wantI[i]))
			}
		}
	}
	if got := ConvCalls() - before; got != int64(calls) {
		t.Errorf("the module ran %d times, want %d", got, calls)
	}
}

// A segment, source or row outside the slices makes the module trap (the kernel
// panics) before it writes anything.
func TestConvRejectsBad(t *testing.T) {
	requireModule(t)
	const inC, ihw, nr, kkw = 1, 4, 2, 8 // 4 sources of 2 rows
	cols, g := make([]float64, inC*kkw), make([]float64, inC*ihw*nr)
	for _, c := range []struct {
		what      string
		segs, src []int32
	}{
		{"in range", []int32{0, 2, 2, 0, 2, 2, 0, 0}, []int32{1, 2}},
		{"segment past the map", []int32{3, 2, 0, 0}, []int32{0}},
		{"source past the columns", []int32{0, 2, 1, 0}, []int32{3}},
		{"sources past src", []int32{0, 1, 2, 0}, []int32{0}},
		{"negative source", []int32{0, 1, 1, 0}, []int32{-1}},
		{"negative count", []int32{0, 1, -1, 0}, []int32{0}},
	} {
		panicked := func() (p bool) {
			defer func() { p = recover() != nil }()
			installedGather(inC, ihw, kkw, nr, cols, g, c.segs, c.src)
			return false
		}()
		if panicked != (c.what != "in range") {
			t.Errorf("gather, %s: panicked %v", c.what, panicked)
		}
	}
	out := make([]float64, 3*4)
	for _, c := range []struct {
		what     string
		xmap, rs []int32
	}{
		{"in range", []int32{1, 0}, []int32{2, 0}},
		{"column map past the row", []int32{2, 0}, []int32{0, 1}},
		{"row past out", []int32{0, 1}, []int32{3, 0}},
		{"negative row", []int32{0, 1}, []int32{-1, 0}},
	} {
		panicked := func() (p bool) {
			defer func() { p = recover() != nil }()
			installedInterleave(2, 2, nr, g, c.xmap, c.rs, out, 4)
			return false
		}()
		if panicked != (c.what != "in range") {
			t.Errorf("interleave, %s: panicked %v", c.what, panicked)
		}
	}
}

// Not a test: a transposed convolution's gather and interleave, Go against the module,
// on cifar_conv_small's convolutions (as TestTiming: GRAFTCERT_GEMM_TIMING=1 ... -run
// TestConvTiming -v). The chunk goes through crown's own plan via a whole CROWN bound.
func TestConvTiming(t *testing.T) {
	if os.Getenv("GRAFTCERT_GEMM_TIMING") == "" {
		t.Skip("set GRAFTCERT_GEMM_TIMING=1")
	}
	requireModule(t)
	defer crown.SetConvKernels(nil, nil, 0)
	rng := rand.New(rand.NewPCG(133, 134))
	for _, sz := range [][3]int{{1, 8, 1}, {1, 16, 2}, {1, 64, 2}, {3, 1024, 4}, {16, 225, 8}, {16, 225, 32}} {
		inC, ihw, nr := sz[0], sz[1], sz[2]
		segs, src, cols, kkw := randomGather(rng, inC, ihw, 16, nr)
		g := make([]float64, inC*ihw*nr)
		reps := 1 + 1_000_000/len(g)
		timeIt := func(hooked bool) float64 {
			crown.SetConvKernels(nil, nil, 0)
			if hooked {
				crown.SetConvKernels(installedGather, installedInterleave, 1)
			}
			t0 := time.Now()
			for i := 0; i < reps; i++ {
				crown.Gather(inC, ihw, kkw, nr, cols, g, segs, src)
			}
			return float64(time.Since(t0).Nanoseconds()) / float64(reps)
		}
		goNs, simdNs := math.Inf(1), math.Inf(1)
		for round := 0; round < 7; round++ {
			goNs = min(goNs, timeIt(false))
			simdNs = min(simdNs, timeIt(true))
		}
		t.Logf("gather %2d×%4d, %2d rows (%6d values): Go %9.0f ns, SIMD %9.0f ns, %.2f×", inC, ihw, nr, len(g), goNs, simdNs, goNs/simdNs)
	}
}

// The module's sparse products against crown.SparseProduct, bit for bit: neurons with
// no entry, one, odd and even counts, zeros of both signs, infinities and NaNs among
// the values and weights, and a product of a shared model's size.
func TestSparseBitIdenticalToGo(t *testing.T) {
	requireModule(t)
	f := installedSparse
	if f == nil {
		t.Fatal("no sparse kernel installed")
	}
	rng := rand.New(rand.NewPCG(71, 72))
	sp := []float64{0, math.Copysign(0, -1), math.Inf(1), math.Inf(-1), math.NaN()}
	before := SparseCalls()
	calls := 0
	for trial := 0; trial < 60; trial++ {
		nout, nin := 1+rng.IntN(40), 1+rng.IntN(30)
		if trial == 59 {
			nout, nin = 1540, 764 // cifar_cnn_a_mix's second convolution
		}
		ptr := []int32{0}
		var src []int32
		var w []float64
		for k := 0; k < nout; k++ {
			for e := rng.IntN(9); e > 0; e-- {
				src = append(src, int32(rng.IntN(nin)))
				v := rng.NormFloat64()
				if trial%3 == 0 && rng.IntN(8) == 0 {
					v = sp[rng.IntN(len(sp))]
				}
				w = append(w, v)
			}
			ptr = append(ptr, int32(len(src)))
		}
		x := make([]float64, 8*nin)
		for i := range x {
			x[i] = rng.NormFloat64()
			if trial%2 == 0 && rng.IntN(10) == 0 {
				x[i] = sp[rng.IntN(len(sp))]
			}
		}
		want, got := make([]float64, 8*nout), make([]float64, 8*nout)
		crown.SparseProduct(nout, ptr, src, w, x, want)
		f(nout, ptr, src, w, x, got)
		calls++
		for i := range want {
			g, wv := got[i], want[i]
			if math.Float64bits(g) != math.Float64bits(wv) && !(math.IsNaN(g) && math.IsNaN(wv)) {
				t.Fatalf("trial %d value %d: module %v (%#x), Go %v (%#x)", trial, i, g, math.Float64bits(g), wv, math.Float64bits(wv))
			}
		}
	}
	if got := SparseCalls() - before; got != int64(calls) {
		t.Errorf("the module computed %d products, want %d", got, calls)
	}
}

// The module's chain steps against crown.ColumnRelax and crown.ColumnConcretize, bit
// for bit: random line records of every kind, values with zeros of both signs,
// infinities and NaNs, one neuron to a shared model's layer.
func TestColumnBitIdenticalToGo(t *testing.T) {
	requireModule(t)
	relaxK, concK := installedColRelax, installedColConc
	if relaxK == nil || concK == nil {
		t.Fatal("no column kernels installed")
	}
	rng := rand.New(rand.NewPCG(73, 74))
	sp := []float64{0, math.Copysign(0, -1), math.Inf(1), math.Inf(-1), math.NaN()}
	ones := math.Float64frombits(^uint64(0))
	same := func(a, b []float64) bool {
		for i := range a {
			if math.Float64bits(a[i]) != math.Float64bits(b[i]) && !(math.IsNaN(a[i]) && math.IsNaN(b[i])) {
				return false
			}
		}
		return true
	}
	for trial, n := range []int{1, 2, 3, 7, 40, 1540, 3072} {
		lines := make([]float64, 8*n)
		for k := 0; k < n; k++ {
			r := lines[8*k : 8*k+8]
			switch rng.IntN(4) {
			case 0: // inactive: all zero
			case 1: // active
				r[0], r[1], r[6] = 1, 1, ones
			case 2: // grafted
				sl, b := rng.NormFloat64(), rng.NormFloat64()
				r[0], r[1], r[2], r[3], r[4], r[5], r[6] = sl, sl, b, b, ones, ones, ones
			default: // unstable
				d := rng.Float64()
				r[0], r[1], r[3], r[5], r[6] = float64(rng.IntN(2)), d, rng.Float64(), ones, ones
			}
		}
		y := make([]float64, 8*n)
		mid, rad, mx := make([]float64, n), make([]float64, n), make([]float64, n)
		for i := range y {
			y[i] = rng.NormFloat64()
			if rng.IntN(6) == 0 {
				y[i] = sp[rng.IntN(len(sp))]
			}
		}
		for k := range mid {
			mid[k], rad[k] = rng.NormFloat64(), rng.Float64()
			mx[k] = math.Abs(mid[k]) + rad[k]
		}
		var wantR, gotR [16]float64
		var wantC, gotC [24]float64
		for i := range wantR {
			wantR[i] = rng.NormFloat64()
		}
		for i := range wantC {
			wantC[i] = rng.NormFloat64()
		}
		gotR, gotC = wantR, wantC
		yw, yg := append([]float64(nil), y...), append([]float64(nil), y...)
		crown.ColumnRelax(n, lines, yw, &wantR)
		crown.ColumnConcretize(n, yw, mid, rad, mx, &wantC)
		before := ColumnCalls()
		relaxK(n, lines, yg, gotR[:])
		concK(n, yg, mid, rad, mx, gotC[:])
		if ColumnCalls()-before != 2 {
			t.Fatalf("trial %d: the module ran %d steps, want 2", trial, ColumnCalls()-before)
		}
		if !same(yg, yw) || !same(gotR[:], wantR[:]) || !same(gotC[:], wantC[:]) {
			t.Fatalf("trial %d (%d neurons): the module's steps differ from Go's", trial, n)
		}
	}
}
