package blas

import (
	"math/rand/v2"
	"testing"

	"gonum.org/v1/gonum/blas"
)

// refPack is PackKernel's documented copy, written out; it checks that src and dst
// are exactly as long as documented and counts its calls and both forms.
func refPack(t *testing.T, calls *[2]int) PackKernel {
	return func(trans bool, np, kb int, src []float64, ld int, dst []float64) {
		wantSrc := (kb-1)*ld + 4*np
		form := 0
		if trans {
			wantSrc, form = (4*np-1)*ld+kb, 1
		}
		if np < 1 || kb < 1 || len(src) != wantSrc || len(dst) != 4*np*kb {
			t.Fatalf("pack(trans %v, np %d, kb %d, ld %d): len(src) %d, want %d; len(dst) %d", trans, np, kb, ld, len(src), wantSrc, len(dst))
		}
		calls[form]++
		for q := 0; q < np; q++ {
			for p := 0; p < kb; p++ {
				for j := 0; j < 4; j++ {
					if trans {
						dst[q*4*kb+p*4+j] = src[(4*q+j)*ld+p]
					} else {
						dst[q*4*kb+p*4+j] = src[p*ld+4*q+j]
					}
				}
			}
		}
	}
}

// With a pack kernel that copies as documented, Dgemm's results are the Go kernel's
// bit for bit, for every transposition (both forms, each for A and for B), sizes with
// partial panels and several blocks of k and of rows; with one that writes nothing,
// they are not.
func TestPackKernel(t *testing.T) {
	withKernel(&goKernel, func() {
		defer SetPackKernel(nil, 0)
		rng := rand.New(rand.NewPCG(27, 28))
		var calls [2]int
		hook := refPack(t, &calls)
		sizes := [][3]int{{4, 4, 1}, {5, 4, 3}, {4, 7, 2}, {13, 17, 19}, {37, 36, 37}, {97, 131, 300}, {150, 19, 257}, {149, 613, 7}}
		q := 0
		for _, sz := range sizes {
			for _, tA := range transposes {
				for _, tB := range transposes {
					q++
					ab := alphaBetas[q%len(alphaBetas)]
					g := newCase(rng, tA, tB, sz[0], sz[1], sz[2], ab[0], ab[1], 1+q%3)
					SetPackKernel(nil, 0)
					want := g.run(Implementation{})
					// The packing buffers are pooled: leave other values in them, so
					// that panels the hook failed to write would not hold g's.
					newCase(rng, tA, tB, sz[0], sz[1], sz[2], 1, 0, 0).run(Implementation{})
					before := calls
					SetPackKernel(hook, 1)
					got := g.run(Implementation{})
					if !bitEqual(got, want) {
						t.Fatalf("%v: with the pack kernel C differs from the Go kernel's", g)
					}
					if calls == before {
						t.Fatalf("%v: the pack kernel was not called", g)
					}
				}
			}
		}
		if calls[0] == 0 || calls[1] == 0 {
			t.Errorf("pack kernel calls by form: %v, want both used", calls)
		}
		g := newCase(rng, blas.NoTrans, blas.NoTrans, 9, 10, 11, 1, 0, 1)
		SetPackKernel(nil, 0)
		want := g.run(Implementation{})
		newCase(rng, blas.NoTrans, blas.NoTrans, 9, 10, 11, 1, 0, 1).run(Implementation{})
		SetPackKernel(func(bool, int, int, []float64, int, []float64) {}, 1)
		if bitEqual(g.run(Implementation{}), want) {
			t.Error("a pack kernel that writes nothing left C as the Go kernel computes it")
		}
		// Below minWork (a 4×11 panel block holds 44 values) the hook is not called.
		calls = [2]int{}
		SetPackKernel(hook, 45)
		newCase(rng, blas.NoTrans, blas.NoTrans, 4, 4, 11, 1, 0, 0).run(Implementation{})
		if calls != [2]int{} {
			t.Errorf("blocks of 44 values with minWork 45: %v calls", calls)
		}
	})
	if hasAsm {
		var calls [2]int
		SetPackKernel(refPack(t, &calls), 1)
		withKernel(&asmKernel, func() {
			newCase(rand.New(rand.NewPCG(29, 30)), blas.NoTrans, blas.NoTrans, 37, 36, 37, 1, 0, 1).run(Implementation{})
		})
		SetPackKernel(nil, 0)
		if calls != [2]int{} {
			t.Errorf("the assembly kernel's products called the pack kernel %v times", calls)
		}
	}
}
