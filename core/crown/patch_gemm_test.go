package crown

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/graftcert/graftcert/core/nn"
)

// refPatchBackward is the scalar convOp.patchBackward that the batched product
// replaced: for every row and window value, a KW-long axpy per input channel and
// kernel row.
func refPatchBackward(o *convOp, in *patchRows) *patchRows {
	c := o.c
	ph := (in.ph-1)*c.SH + (c.KH-1)*c.DH + 1
	pw := (in.pw-1)*c.SW + (c.KW-1)*c.DW + 1
	out := &patchRows{n: in.n, c: c.InC, h: c.InH, w: c.InW, ph: ph, pw: pw,
		y0: make([]int, in.n), x0: make([]int, in.n), a: make([]float64, in.n*c.InC*ph*pw),
		bias: append([]float64(nil), in.bias...), mag: append([]float64(nil), in.mag...)}
	kk := c.KH * c.KW
	for r := 0; r < in.n; r++ {
		out.y0[r] = in.y0[r]*c.SH - c.PT
		out.x0[r] = in.x0[r]*c.SW - c.PL
		a := in.row(r)
		dst := out.row(r)
		bsum, bmag := 0.0, 0.0
		for oc := 0; oc < in.c; oc++ {
			wo := c.W[oc*c.InC*kk : (oc+1)*c.InC*kk]
			for py := 0; py < in.ph; py++ {
				for px := 0; px < in.pw; px++ {
					v := a[(oc*in.ph+py)*in.pw+px]
					if v == 0 {
						continue
					}
					if c.B != nil {
						bsum += v * c.B[oc]
						bmag += math.Abs(v * c.B[oc])
					}
					for ic := 0; ic < c.InC; ic++ {
						wk := wo[ic*kk : (ic+1)*kk]
						base := ic * ph * pw
						for ky := 0; ky < c.KH; ky++ {
							drow := dst[base+(py*c.SH+ky*c.DH)*pw+px*c.SW:]
							for kx, wv := range wk[ky*c.KW : (ky+1)*c.KW] {
								drow[kx*c.DW] += v * wv
							}
						}
					}
				}
			}
		}
		out.bias[r] += bsum
		out.mag[r] += bmag
		out.clearOffMap(r)
	}
	return out
}

// refPatchAdjoint is the scalar convOp.patchAdjoint that the batched product replaced.
func refPatchAdjoint(o *convOp, g *patchRows, seed []float64) *patchRows {
	c := o.c
	ph := (g.ph-1-(c.KH-1)*c.DH)/c.SH + 1
	pw := (g.pw-1-(c.KW-1)*c.DW)/c.SW + 1
	out := &patchRows{n: g.n, c: c.OutC, h: c.OutH, w: c.OutW, ph: ph, pw: pw,
		y0: make([]int, g.n), x0: make([]int, g.n), a: make([]float64, g.n*c.OutC*ph*pw)}
	kk := c.KH * c.KW
	for r := 0; r < g.n; r++ {
		out.y0[r] = (g.y0[r] + c.PT) / c.SH
		out.x0[r] = (g.x0[r] + c.PL) / c.SW
		src := g.row(r)
		dst := out.row(r)
		for oc := 0; oc < c.OutC; oc++ {
			wo := c.W[oc*c.InC*kk : (oc+1)*c.InC*kk]
			b := 0.0
			if c.B != nil {
				b = seed[r] * c.B[oc]
			}
			for py := 0; py < ph; py++ {
				for px := 0; px < pw; px++ {
					s := b
					for ic := 0; ic < c.InC; ic++ {
						wk := wo[ic*kk : (ic+1)*kk]
						base := ic * g.ph * g.pw
						for ky := 0; ky < c.KH; ky++ {
							srow := src[base+(py*c.SH+ky*c.DH)*g.pw+px*c.SW:]
							for kx, wv := range wk[ky*c.KW : (ky+1)*c.KW] {
								s += wv * srow[kx*c.DW]
							}
						}
					}
					dst[(oc*ph+py)*pw+px] = s
				}
			}
		}
		out.clearOffMap(r)
	}
	return out
}

type patchConvCase struct {
	inC, outC, h, w, kh, kw, sh, sw, pt, pl, pb, pr, dh, dw int
	bias                                                    bool
}

func (k patchConvCase) build(t *testing.T, rng *rand.Rand) *convOp {
	t.Helper()
	cv := &nn.Conv2d{NodeName: "conv", InC: k.inC, OutC: k.outC, KH: k.kh, KW: k.kw, SH: k.sh, SW: k.sw,
		PT: k.pt, PL: k.pl, PB: k.pb, PR: k.pr, DH: k.dh, DW: k.dw, W: make([]float64, k.outC*k.inC*k.kh*k.kw)}
	for i := range cv.W {
		cv.W[i] = rng.NormFloat64()
	}
	if k.bias {
		cv.B = make([]float64, k.outC)
		for i := range cv.B {
			cv.B[i] = rng.NormFloat64()
		}
	}
	if _, err := cv.Setup(nn.Shape{k.inC, k.h, k.w}); err != nil {
		t.Fatal(err)
	}
	o, err := newOp(cv)
	if err != nil {
		t.Fatal(err)
	}
	return o.(*convOp)
}

var patchConvCases = []patchConvCase{
	{inC: 3, outC: 16, h: 32, w: 32, kh: 4, kw: 4, sh: 2, sw: 2, pt: 1, pl: 1, pb: 1, pr: 1, dh: 1, dw: 1, bias: true},
	{inC: 16, outC: 32, h: 16, w: 16, kh: 4, kw: 4, sh: 2, sw: 2, pt: 1, pl: 1, pb: 1, pr: 1, dh: 1, dw: 1, bias: true},
	{inC: 2, outC: 5, h: 7, w: 9, kh: 3, kw: 3, sh: 1, sw: 1, pt: 1, pl: 1, pb: 1, pr: 1, dh: 1, dw: 1, bias: true},
	{inC: 3, outC: 4, h: 9, w: 8, kh: 3, kw: 2, sh: 2, sw: 1, pt: 2, pl: 0, pb: 1, pr: 1, dh: 1, dw: 2},
	{inC: 1, outC: 3, h: 11, w: 10, kh: 2, kw: 3, sh: 1, sw: 2, pt: 0, pl: 2, pb: 2, pr: 0, dh: 2, dw: 1, bias: true},
	{inC: 4, outC: 2, h: 5, w: 5, kh: 5, kw: 5, sh: 3, sw: 2, pt: 2, pl: 2, pb: 2, pr: 2, dh: 1, dw: 1, bias: true},
	{inC: 2, outC: 3, h: 6, w: 7, kh: 1, kw: 1, sh: 1, sw: 1, dh: 1, dw: 1},
	{inC: 3, outC: 3, h: 13, w: 12, kh: 3, kw: 3, sh: 2, sw: 2, pt: 3, pl: 1, pb: 0, pr: 3, dh: 3, dw: 2, bias: true},
}

// randomPatches builds n rows of windows ph×pw over a c×h×w map at offsets that
// include windows hanging over every border, with a mix of dense rows, rows with a
// single nonzero (identity rows), sparse rows and zero rows. Half the rows are zero
// off the map, as the engine's rows always are.
func randomPatches(rng *rand.Rand, n, c, h, w, ph, pw int) *patchRows {
	p := &patchRows{n: n, c: c, h: h, w: w, ph: ph, pw: pw, y0: make([]int, n), x0: make([]int, n),
		a: make([]float64, n*c*ph*pw), bias: make([]float64, n), mag: make([]float64, n)}
	for r := 0; r < n; r++ {
		p.y0[r] = rng.IntN(h+ph+2) - ph - 1
		p.x0[r] = rng.IntN(w+pw+2) - pw - 1
		p.bias[r] = rng.NormFloat64()
		p.mag[r] = rng.Float64()
		a := p.row(r)
		switch r % 5 {
		case 0, 1:
			for k := range a {
				a[k] = rng.NormFloat64()
			}
		case 2:
			a[rng.IntN(len(a))] = rng.NormFloat64()
		case 3:
			for k := range a {
				if rng.IntN(10) == 0 {
					a[k] = rng.NormFloat64()
				}
			}
		case 4:
			if r%10 == 4 {
				break // zero row
			}
			for k := range a {
				if rng.IntN(3) == 0 {
					a[k] = rng.NormFloat64()
				}
			}
		}
		if rng.IntN(2) == 0 {
			p.clearOffMap(r)
		}
	}
	return p
}

func comparePatches(t *testing.T, what string, got, want *patchRows) {
	t.Helper()
	if got.n != want.n || got.c != want.c || got.h != want.h || got.w != want.w || got.ph != want.ph || got.pw != want.pw {
		t.Fatalf("%s: geometry %d×%d×%d×%d window %d×%d, want %d×%d×%d×%d window %d×%d", what,
			got.n, got.c, got.h, got.w, got.ph, got.pw, want.n, want.c, want.h, want.w, want.ph, want.pw)
	}
	for r := 0; r < got.n; r++ {
		if got.y0[r] != want.y0[r] || got.x0[r] != want.x0[r] {
			t.Fatalf("%s: row %d at (%d,%d), want (%d,%d)", what, r, got.y0[r], got.x0[r], want.y0[r], want.x0[r])
		}
	}
	for k := range want.a {
		if d := math.Abs(got.a[k] - want.a[k]); d > 1e-12*(1+math.Abs(want.a[k])) || math.IsNaN(got.a[k]) {
			t.Fatalf("%s: coefficient %d (row %d) = %v, want %v", what, k, k/want.size(), got.a[k], want.a[k])
		}
	}
	for r := range want.bias {
		if got.bias[r] != want.bias[r] || got.mag[r] != want.mag[r] {
			t.Fatalf("%s: row %d bias/mag %v/%v, want %v/%v", what, r, got.bias[r], got.mag[r], want.bias[r], want.mag[r])
		}
	}
}

// TestPatchConvMatchesScalar checks the batched patch products against the scalar
// loops they replaced, and that a row's result does not depend on the rows it is
// computed with (thread-count independence).
func TestPatchConvMatchesScalar(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 11))
	for ci, k := range patchConvCases {
		o := k.build(t, rng)
		c := o.c
		for _, win := range [][2]int{{1, 1}, {2, 3}, {4, 4}, {3, 1}} {
			name := fmt.Sprintf("case%d/win%dx%d", ci, win[0], win[1])
			in := randomPatches(rng, 41, c.OutC, c.OutH, c.OutW, win[0], win[1])
			got := o.patchBackward(in.clone())
			want := refPatchBackward(o, in)
			comparePatches(t, name+"/backward", got, want)
			checkRowIndependent(t, name+"/backward", got, func(sub *patchRows) *patchRows { return o.patchBackward(subPatches(in, sub)) })

			// The adjoint runs on windows shaped like patchBackward's output.
			g := randomPatches(rng, 41, c.InC, c.InH, c.InW, got.ph, got.pw)
			for r := range g.n {
				g.y0[r] = in.y0[r]*c.SH - c.PT
				g.x0[r] = in.x0[r]*c.SW - c.PL
			}
			seed := make([]float64, g.n)
			for r := range seed {
				if r%7 != 3 {
					seed[r] = rng.NormFloat64()
				}
			}
			gotA := o.patchAdjoint(g.clone(), seed)
			wantA := refPatchAdjoint(o, g, seed)
			gotA.bias, gotA.mag, wantA.bias, wantA.mag = nil, nil, nil, nil
			comparePatches(t, name+"/adjoint", gotA, wantA)
			if gotA.ph != win[0] || gotA.pw != win[1] {
				t.Fatalf("%s/adjoint: window %d×%d, want %d×%d", name, gotA.ph, gotA.pw, win[0], win[1])
			}
			checkRowIndependent(t, name+"/adjoint", gotA, func(sub *patchRows) *patchRows {
				gs := subPatches(g, sub)
				ss := make([]float64, gs.n)
				for i, r := range sub.y0 {
					ss[i] = seed[r]
				}
				return o.patchAdjoint(gs, ss)
			})
		}
	}
}

// subPatches returns the rows of p listed in sel.y0 (used as a list of row indices).
func subPatches(p, sel *patchRows) *patchRows {
	q := &patchRows{n: len(sel.y0), c: p.c, h: p.h, w: p.w, ph: p.ph, pw: p.pw}
	for _, r := range sel.y0 {
		q.y0 = append(q.y0, p.y0[r])
		q.x0 = append(q.x0, p.x0[r])
		q.a = append(q.a, p.row(r)...)
		if p.bias != nil {
			q.bias = append(q.bias, p.bias[r])
			q.mag = append(q.mag, p.mag[r])
		}
	}
	return q
}

// checkRowIndependent recomputes a few subsets of the rows and requires bit-identical
// results.
func checkRowIndependent(t *testing.T, what string, full *patchRows, f func(sel *patchRows) *patchRows) {
	t.Helper()
	for _, sel := range [][]int{{0}, {3, 2}, {40, 1, 7, 12, 5}} {
		got := f(&patchRows{y0: sel})
		for i, r := range sel {
			a, b := got.row(i), full.row(r)
			for k := range a {
				if math.Float64bits(a[k]) != math.Float64bits(b[k]) {
					t.Fatalf("%s: row %d computed alone differs at %d: %v vs %v", what, r, k, a[k], b[k])
				}
			}
		}
	}
}

// TestPatchBackwardMatchesDense checks patchBackward against the dense-row transposed
// convolution on the same functions expanded over the whole map.
func TestPatchBackwardMatchesDense(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 5))
	for ci, k := range patchConvCases {
		o := k.build(t, rng)
		c := o.c
		in := randomPatches(rng, 30, c.OutC, c.OutH, c.OutW, 2, 3)
		for r := range in.n {
			in.clearOffMap(r)
		}
		got := o.patchBackward(in.clone())
		dense := newRows(in.n, c.OutSize())
		for r := range in.n {
			row := dense.row(r)
			ar := in.row(r)
			in.each(r, func(k, i int) { row[i] = ar[k] })
			dense.bias[r], dense.mag[r] = in.bias[r], in.mag[r]
		}
		want := o.backward(dense)
		for r := range in.n {
			exp := make([]float64, c.InSize())
			gr := got.row(r)
			got.each(r, func(k, i int) { exp[i] = gr[k] })
			for i, w := range want.row(r) {
				if math.Abs(exp[i]-w) > 1e-12*(1+math.Abs(w)) {
					t.Fatalf("case %d row %d input %d: patch %v, dense %v", ci, r, i, exp[i], w)
				}
			}
			if math.Abs(got.bias[r]-want.bias[r]) > 1e-12*(1+math.Abs(want.bias[r])) {
				t.Fatalf("case %d row %d: bias %v, dense %v", ci, r, got.bias[r], want.bias[r])
			}
		}
	}
}

// TestConvDenseRows checks the dense-row paths (im2col/col2im around the matrix
// product) against independent computations: the backward product against the
// coefficient-by-coefficient scatter, the adjoint against the layer's own forward pass.
func TestConvDenseRows(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 9))
	for ci, k := range patchConvCases {
		o := k.build(t, rng)
		c := o.c
		n := 13
		in := newRows(n, c.OutSize())
		for i := range in.a {
			in.a[i] = rng.NormFloat64()
		}
		got := newRows(n, c.InSize())
		o.gemmBackward(in, got)
		for r := 0; r < n; r++ {
			want := make([]float64, c.InSize())
			o.scatter(in.row(r), want)
			for i, w := range want {
				if g := got.row(r)[i]; math.Abs(g-w) > 1e-12*(1+math.Abs(w)) {
					t.Fatalf("case %d row %d input %d: col2im %v, scatter %v", ci, r, i, g, w)
				}
			}
		}
		g := newRows(n, c.InSize())
		for i := range g.a {
			g.a[i] = rng.NormFloat64()
		}
		seed := make([]float64, n)
		for r := range seed {
			seed[r] = 1
		}
		gotA := o.adjoint(g, seed)
		for r := 0; r < n; r++ {
			want := make([]float64, c.OutSize())
			c.Forward(g.row(r), want, 1)
			for i, w := range want {
				if v := gotA.row(r)[i]; math.Abs(v-w) > 1e-12*(1+math.Abs(w)) {
					t.Fatalf("case %d row %d output %d: im2col %v, forward %v", ci, r, i, v, w)
				}
			}
		}
	}
}

// TestPatchSpans checks that spans visits exactly the elements each visits, in the
// same order.
func TestPatchSpans(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	p := randomPatches(rng, 200, 2, 5, 6, 4, 3)
	for r := range p.n {
		var want, got [][2]int
		p.each(r, func(k, i int) { want = append(want, [2]int{k, i}) })
		p.spans(r, func(k, i, n int) {
			for q := range n {
				got = append(got, [2]int{k + q, i + q})
			}
		})
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("row %d at (%d,%d): spans visit %v, each %v", r, p.y0[r], p.x0[r], got, want)
		}
	}
}
