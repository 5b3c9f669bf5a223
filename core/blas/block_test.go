package blas

import (
	"math/rand/v2"
	"testing"

	"gonum.org/v1/gonum/blas"
)

// tileBlock is a BlockKernel made of the Go kernel, tile by tile; it checks that the
// panels it gets are exactly as long as documented and counts its calls and tiles.
func tileBlock(t *testing.T, calls, tiles *int) BlockKernel {
	return func(kb, mt, nt int, a, b, c []float64, ldc int, alpha float64, accum bool) {
		if len(a) != 4*mt*kb || len(b) != 4*nt*kb || len(c) != (4*mt-1)*ldc+4*nt || mt < 1 || nt < 1 || kb < 1 {
			t.Fatalf("block(kb %d, mt %d, nt %d): len(a) %d, len(b) %d, len(c) %d with ldc %d", kb, mt, nt, len(a), len(b), len(c), ldc)
		}
		*calls++
		*tiles += mt * nt
		for jt := 0; jt < nt; jt++ {
			for it := 0; it < mt; it++ {
				kernGo(kb, a[it*4*kb:], b[jt*4*kb:], 4, c[4*it*ldc+4*jt:], ldc, alpha, accum)
			}
		}
	}
}

func withBlock(f BlockKernel, minWork int, run func()) {
	defer SetBlockKernel(nil, 0)
	SetBlockKernel(f, minWork)
	run()
}

// With a block kernel that sums as the Go kernel does, Dgemm's results are the Go
// kernel's bit for bit: the hook gets the right panels and corner of C, and the edge
// tiles it leaves are all computed. (A hook that skipped its tiles, wrote them at the
// wrong place or got the wrong panels would change C.)
func TestBlockKernelBitIdentical(t *testing.T) {
	withKernel(&goKernel, func() {
		rng := rand.New(rand.NewPCG(21, 22))
		var calls, tiles int
		hook := tileBlock(t, &calls, &tiles)
		sizes := [][3]int{{4, 4, 1}, {5, 4, 3}, {4, 7, 2}, {8, 8, 8}, {13, 17, 19}, {37, 36, 37}, {97, 131, 300}, {150, 19, 257}, {149, 2053, 7}}
		q := 0
		for _, sz := range sizes {
			for _, tA := range transposes {
				for _, tB := range transposes {
					q++
					ab := alphaBetas[q%len(alphaBetas)]
					g := newCase(rng, tA, tB, sz[0], sz[1], sz[2], ab[0], ab[1], 1+q%3)
					want := g.run(Implementation{})
					before := calls
					var got []float64
					withBlock(hook, 1, func() { got = g.run(Implementation{}) })
					if !bitEqual(got, want) {
						t.Fatalf("%v: with the block kernel C differs from the Go kernel's", g)
					}
					if calls == before {
						t.Fatalf("%v: the block kernel was not called", g)
					}
				}
			}
		}
		// 97×131×300: k in two blocks of 150, 24 full rows of tiles × 32 columns.
		if tiles < 2*24*32 {
			t.Errorf("the block kernel computed %d tiles in all", tiles)
		}
	})
}

// The control: a block kernel that leaves C alone is caught by the comparison above.
func TestBlockKernelNoOpDiffers(t *testing.T) {
	withKernel(&goKernel, func() {
		rng := rand.New(rand.NewPCG(23, 24))
		g := newCase(rng, blas.NoTrans, blas.Trans, 9, 10, 11, 1, 0, 1)
		want := g.run(Implementation{})
		var got []float64
		withBlock(func(int, int, int, []float64, []float64, []float64, int, float64, bool) {}, 1, func() { got = g.run(Implementation{}) })
		if bitEqual(got, want) {
			t.Fatal("a no-op block kernel left C as the Go kernel computes it")
		}
		// Everything but the corner tile was left to the hook (the partial last row's
		// and last column's tiles through scratch): only the corner is computed by the
		// Go kernel.
		for i := 0; i < g.m; i++ {
			for j := 0; j < g.n; j++ {
				x, w := got[i*g.ldc+j], want[i*g.ldc+j]
				if edge := i >= 8 && j >= 8; edge != (x == w) {
					t.Fatalf("C[%d,%d] = %v, Go kernel %v (edge %v)", i, j, x, w, edge)
				}
			}
		}
	})
}

// Blocks below minWork, and products run by another kernel, do not call the hook.
func TestBlockKernelThreshold(t *testing.T) {
	rng := rand.New(rand.NewPCG(25, 26))
	var calls, tiles int
	hook := tileBlock(t, &calls, &tiles)
	g := newCase(rng, blas.NoTrans, blas.NoTrans, 8, 12, 10, 1, 0, 1) // 2·3 tiles × 10
	withKernel(&goKernel, func() {
		withBlock(hook, 61, func() { g.run(Implementation{}) })
		if calls != 0 {
			t.Errorf("work 60 < minWork 61: %d calls", calls)
		}
		withBlock(hook, 60, func() { g.run(Implementation{}) })
		if calls != 1 || tiles != 6 {
			t.Errorf("work 60 = minWork: %d calls, %d tiles, want 1 and 6", calls, tiles)
		}
	})
	if hasAsm {
		calls = 0
		withKernel(&asmKernel, func() {
			withBlock(hook, 1, func() { g.run(Implementation{}) })
		})
		if calls != 0 {
			t.Errorf("the assembly kernel's products called the block kernel %d times", calls)
		}
	}
	if blockKernel.Load() != nil {
		t.Error("SetBlockKernel(nil, 0) left a hook")
	}
}
