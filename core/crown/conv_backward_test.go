package crown

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"testing"

	"github.com/graftcert/graftcert/core/nn"
)

// refCol2imBackward is the dense-row transposed convolution that denseBackward
// replaced: the column matrix Wᵀ·rows, then col2im scattering every column entry into
// the input map.
func refCol2imBackward(o *convOp, in, out *rows) {
	c := o.c
	ohw := c.OutH * c.OutW
	ckk := c.InC * c.KH * c.KW
	chunk := max(1, denseChunk/(ckk*ohw))
	tp := getScratch(c.OutC * min(chunk, in.n) * ohw)
	cp := getScratch(ckk * min(chunk, in.n) * ohw)
	defer putScratch(tp)
	defer putScratch(cp)
	t, cols := *tp, *cp
	for r0 := 0; r0 < in.n; r0 += chunk {
		nr := min(chunk, in.n-r0)
		w := nr * ohw
		// t (OutC × nr·ohw): the chunk's coefficients, channel-major.
		for r := 0; r < nr; r++ {
			a := in.row(r0 + r)
			for oc := 0; oc < c.OutC; oc++ {
				copy(t[oc*w+r*ohw:oc*w+(r+1)*ohw], a[oc*ohw:(oc+1)*ohw])
			}
		}
		// cols (ckk × nr·ohw) = Wᵀ · t, W being OutC × ckk.
		gemmWide(true, c.W, c.OutC, ckk, t[:c.OutC*w], cols[:ckk*w], w)
		refCol2im(o, cols[:ckk*w], nr, out, r0)
	}
}

// refBackward is convOp.backward as it was before the gather: bias and the
// sparse-or-dense choice in single running sums, then refCol2imBackward.
func refBackward(o *convOp, in *rows) *rows {
	c := o.c
	out := newRows(in.n, c.InSize())
	copy(out.bias, in.bias)
	copy(out.mag, in.mag)
	if c.B != nil {
		ohw := c.OutH * c.OutW
		for r := 0; r < in.n; r++ {
			a := in.row(r)
			bsum, bmag := 0.0, 0.0
			for oc, b := range c.B {
				s := 0.0
				for _, v := range a[oc*ohw : (oc+1)*ohw] {
					s += v
				}
				bsum += s * b
				bmag += math.Abs(s * b)
			}
			out.bias[r] += bsum
			out.mag[r] += bmag
		}
	}
	nnz := 0
	for _, v := range in.a {
		if v != 0 {
			nnz++
		}
	}
	if nnz*8 < len(in.a) {
		for r := 0; r < in.n; r++ {
			o.scatter(in.row(r), out.row(r))
		}
		return out
	}
	refCol2imBackward(o, in, out)
	return out
}

// refCol2im is the col2im of refCol2imBackward.
func refCol2im(o *convOp, cols []float64, nr int, out *rows, r0 int) {
	c := o.c
	ohw := c.OutH * c.OutW
	ihw := c.InH * c.InW
	w := nr * ohw
	taps := o.taps()
	for r := 0; r < nr; r++ {
		dst := out.row(r0 + r)
		for ic := 0; ic < c.InC; ic++ {
			dch := dst[ic*ihw : (ic+1)*ihw]
			for ky := 0; ky < c.KH; ky++ {
				for kx := 0; kx < c.KW; kx++ {
					tp := taps[ky*c.KW+kx]
					if tp.oxLo >= tp.oxHi || tp.oyLo >= tp.oyHi {
						continue
					}
					xoff := kx*c.DW - c.PL
					sr := cols[((ic*c.KH+ky)*c.KW+kx)*w+r*ohw:][:ohw]
					for oy := tp.oyLo; oy < tp.oyHi; oy++ {
						iy := oy*c.SH - c.PT + ky*c.DH
						drow := dch[iy*c.InW : (iy+1)*c.InW]
						srow := sr[oy*c.OutW+tp.oxLo : oy*c.OutW+tp.oxHi]
						if c.SW == 1 {
							d := drow[tp.oxLo+xoff : tp.oxHi+xoff]
							d = d[:len(srow)]
							for i, v := range srow {
								d[i] += v
							}
							continue
						}
						d := drow[tp.oxLo*c.SW+xoff:]
						for i, v := range srow {
							d[i*c.SW] += v
						}
					}
				}
			}
		}
	}
}

// randomConvCase draws a convolution geometry: odd and even map sizes, strides 1–3,
// dilations 1–3, asymmetric padding 0–3 (wider than the kernel too), kernels 1–5,
// channels 1–7.
func randomConvCase(rng *rand.Rand) patchConvCase {
	for {
		k := patchConvCase{inC: 1 + rng.IntN(7), outC: 1 + rng.IntN(7), h: 1 + rng.IntN(13), w: 1 + rng.IntN(13),
			kh: 1 + rng.IntN(5), kw: 1 + rng.IntN(5), sh: 1 + rng.IntN(3), sw: 1 + rng.IntN(3),
			pt: rng.IntN(4), pl: rng.IntN(4), pb: rng.IntN(4), pr: rng.IntN(4), dh: 1 + rng.IntN(3), dw: 1 + rng.IntN(3),
			bias: rng.IntN(2) == 0}
		if k.h+k.pt+k.pb >= k.dh*(k.kh-1)+1 && k.w+k.pl+k.pr >= k.dw*(k.kw-1)+1 {
			return k
		}
	}
}

// randomRows draws n rows of the given size: mostly dense, some with 1 in 4 nonzero
// (still dense for backward), sparse ones (scattered), a zero row, and some with
// exact zeros of both signs.
func randomRows(rng *rand.Rand, n, size int) *rows {
	in := newRows(n, size)
	for r := 0; r < n; r++ {
		a := in.row(r)
		in.bias[r] = rng.NormFloat64()
		in.mag[r] = rng.Float64()
		switch r % 6 {
		case 0, 1, 2:
			for i := range a {
				a[i] = rng.NormFloat64()
			}
		case 3:
			for i := range a {
				if rng.IntN(4) == 0 {
					a[i] = rng.NormFloat64()
				}
			}
		case 4:
			a[rng.IntN(size)] = rng.NormFloat64()
		case 5:
			if r%12 == 11 {
				break // zero row
			}
			for i := range a {
				switch rng.IntN(3) {
				case 0:
					a[i] = math.Copysign(0, -1)
				case 1:
					a[i] = rng.NormFloat64()
				}
			}
		}
	}
	return in
}

// TestConvBackwardMatchesScalar checks the dense-row transposed convolution (the phase
// products) and backward as a whole against the coefficient-by-coefficient scatter on
// random convolutions, to 1e-12 of the sum of the magnitudes of the terms; then checks
// that a row's result is bit-identical whatever rows it is computed with (the thread
// split of the engine), and agrees with the column-matrix code it replaced.
func TestConvBackwardMatchesScalar(t *testing.T) {
	rng := rand.New(rand.NewPCG(17, 23))
	cases := append([]patchConvCase(nil), patchConvCases...)
	for range 300 {
		cases = append(cases, randomConvCase(rng))
	}
	for ci, k := range cases {
		name := fmt.Sprintf("case %d (%+v)", ci, k)
		o := k.build(t, rng)
		c := o.c
		absOp := &convOp{c: o.abs}
		n := 1 + rng.IntN(9)
		if ci < len(patchConvCases) {
			n = 37 // several chunks for the larger maps
		}
		in := randomRows(rng, n, c.OutSize())
		dense := newRows(n, c.InSize())
		o.gemmBackward(in, dense)
		got := o.backward(in)
		old := newRows(n, c.InSize())
		refCol2imBackward(o, in, old)
		ohw := c.OutH * c.OutW
		for r := 0; r < n; r++ {
			a := in.row(r)
			want := make([]float64, c.InSize())
			o.scatter(a, want)
			absA := make([]float64, len(a))
			for i, v := range a {
				absA[i] = math.Abs(v)
			}
			mag := make([]float64, c.InSize())
			absOp.scatter(absA, mag)
			for i, w := range want {
				tol := 1e-12 * mag[i]
				if d := dense.row(r)[i]; math.Abs(d-w) > tol || math.IsNaN(d) {
					t.Fatalf("%s row %d input %d: dense %v, scatter %v", name, r, i, d, w)
				}
				if g := got.row(r)[i]; math.Abs(g-w) > tol || math.IsNaN(g) {
					t.Fatalf("%s row %d input %d: backward %v, scatter %v", name, r, i, g, w)
				}
				if g := old.row(r)[i]; math.Abs(g-w) > tol {
					t.Fatalf("%s row %d input %d: col2im %v, scatter %v", name, r, i, g, w)
				}
				if mag[i] == 0 && dense.row(r)[i] != 0 {
					t.Fatalf("%s row %d input %d: %v where no term reaches", name, r, i, dense.row(r)[i])
				}
			}
			wantBias, wantMag := in.bias[r], in.mag[r]
			biasMag := 0.0
			if c.B != nil {
				for oc, b := range c.B {
					s, sm := 0.0, 0.0
					for _, v := range a[oc*ohw : (oc+1)*ohw] {
						s += v
						sm += math.Abs(v)
					}
					wantBias += s * b
					wantMag += math.Abs(s * b)
					biasMag += sm * math.Abs(b)
				}
			}
			if math.Abs(got.bias[r]-wantBias) > 1e-12*(biasMag+math.Abs(in.bias[r])) ||
				math.Abs(got.mag[r]-wantMag) > 1e-12*(biasMag+in.mag[r]) {
				t.Fatalf("%s row %d: bias/mag %v/%v, want %v/%v", name, r, got.bias[r], got.mag[r], wantBias, wantMag)
			}
		}
		// Row independence: subsets, in other orders and chunk positions.
		for _, sel := range [][]int{{n - 1}, {n / 2, 0}, reversed(n)} {
			sub := newRows(len(sel), in.size)
			for i, r := range sel {
				copy(sub.row(i), in.row(r))
				sub.bias[i], sub.mag[i] = in.bias[r], in.mag[r]
			}
			res := o.backward(sub)
			for i, r := range sel {
				for j, v := range res.row(i) {
					if math.Float64bits(v) != math.Float64bits(got.row(r)[j]) {
						t.Fatalf("%s: row %d computed with rows %v differs at %d: %v vs %v", name, r, sel, j, v, got.row(r)[j])
					}
				}
				if res.bias[i] != got.bias[r] || res.mag[i] != got.mag[r] {
					t.Fatalf("%s: row %d computed with rows %v: bias differs", name, r, sel)
				}
			}
		}
	}
}

func reversed(n int) []int {
	s := make([]int, n)
	for i := range s {
		s[i] = n - 1 - i
	}
	return s
}

// benchConvCases are the convolutions of the benchmark models (cifar_cnn_a's two,
// cifar_conv_small's two, a 3×3 stride-1 one as in oval_cifar_deep, mnist_conv_small's
// two).
var benchConvCases = []patchConvCase{
	{inC: 3, outC: 16, h: 32, w: 32, kh: 4, kw: 4, sh: 2, sw: 2, pt: 1, pl: 1, pb: 1, pr: 1, dh: 1, dw: 1, bias: true},
	{inC: 16, outC: 32, h: 16, w: 16, kh: 4, kw: 4, sh: 2, sw: 2, pt: 1, pl: 1, pb: 1, pr: 1, dh: 1, dw: 1, bias: true},
	{inC: 3, outC: 16, h: 32, w: 32, kh: 4, kw: 4, sh: 2, sw: 2, dh: 1, dw: 1, bias: true},
	{inC: 16, outC: 32, h: 15, w: 15, kh: 4, kw: 4, sh: 2, sw: 2, dh: 1, dw: 1, bias: true},
	{inC: 8, outC: 8, h: 16, w: 16, kh: 3, kw: 3, sh: 1, sw: 1, pt: 1, pl: 1, pb: 1, pr: 1, dh: 1, dw: 1, bias: true},
	{inC: 1, outC: 16, h: 28, w: 28, kh: 4, kw: 4, sh: 2, sw: 2, dh: 1, dw: 1, bias: true},
	{inC: 16, outC: 32, h: 13, w: 13, kh: 4, kw: 4, sh: 2, sw: 2, dh: 1, dw: 1, bias: true},
}

// benchConvOp is patchConvCase.build for a benchmark.
func benchConvOp(b *testing.B, k patchConvCase, rng *rand.Rand) *convOp {
	cv := &nn.Conv2d{NodeName: "conv", InC: k.inC, OutC: k.outC, KH: k.kh, KW: k.kw, SH: k.sh, SW: k.sw,
		PT: k.pt, PL: k.pl, PB: k.pb, PR: k.pr, DH: k.dh, DW: k.dw, W: make([]float64, k.outC*k.inC*k.kh*k.kw),
		B: make([]float64, k.outC)}
	for i := range cv.W {
		cv.W[i] = rng.NormFloat64()
	}
	for i := range cv.B {
		cv.B[i] = rng.NormFloat64()
	}
	if _, err := cv.Setup(nn.Shape{k.inC, k.h, k.w}); err != nil {
		b.Fatal(err)
	}
	o, err := newOp(cv)
	if err != nil {
		b.Fatal(err)
	}
	return o.(*convOp)
}

// BenchmarkConvBackward compares backward with the column-matrix code it replaced
// (refBackward) on 128 dense rows.
func BenchmarkConvBackward(b *testing.B) {
	for _, k := range benchConvCases {
		rng := rand.New(rand.NewPCG(1, 2))
		o := benchConvOp(b, k, rng)
		c := o.c
		in := newRows(128, c.OutSize())
		for i := range in.a {
			in.a[i] = rng.NormFloat64()
		}
		name := fmt.Sprintf("%dx%dx%d_k%d_s%d_p%d", k.inC, k.h, k.w, k.kh, k.sh, k.pt)
		b.Run(name+"/new", func(b *testing.B) {
			for b.Loop() {
				o.backward(in)
			}
		})
		b.Run(name+"/col2im", func(b *testing.B) {
			for b.Loop() {
				refBackward(o, in)
			}
		})
	}
}

// BenchmarkCROWNThreads_* are the CROWN benchmarks with Threads = GOMAXPROCS, as make
// bench runs them.
func benchModelThreads(b *testing.B, name string) {
	rm := loadRef(b, name)
	s := rm.ref.Samples[0]
	lo, hi := box(rm.X.Sample(s.Index), rm.ref.Eps)
	C := marginSpec(s.Label, rm.net.OutSize())
	opts := Options{Method: CROWN, Threads: runtime.GOMAXPROCS(0)}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := Bound(context.Background(), rm.net, lo, hi, C, opts); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkCROWNThreads_mnist_conv_small(b *testing.B) { benchModelThreads(b, "mnist_conv_small") }
func BenchmarkCROWNThreads_cifar_cnn_a_mix(b *testing.B)  { benchModelThreads(b, "cifar_cnn_a_mix") }
func BenchmarkCROWNThreads_cifar_conv_small(b *testing.B) { benchModelThreads(b, "cifar_conv_small") }
func BenchmarkCROWNThreads_oval_cifar_deep(b *testing.B)  { benchModelThreads(b, "oval_cifar_deep") }
