package crown

import (
	"context"
	"math"
	"math/rand/v2"
	"path/filepath"
	"testing"

	"github.com/graftcert/graftcert/core/nn"
	"github.com/graftcert/graftcert/core/onnx"
	"github.com/graftcert/graftcert/internal/sharedtest"
)

// TestForwardToy checks the forward bounder on auto_LiRPA's toy network (one hidden
// layer: the forward relaxation reduces to CROWN, [-3, 3] from DESIGN.md) and on a
// hand-computed two-layer network where the forward functions beat intervals:
// x ∈ [-1, 1], h = relu([x, −x]) (both unstable, chords 0.5·(±x + 1), lower slope
// 0), z = h₁ + h₂. The upper functions add up to the constant 1, so z ≤ 1 where
// intervals give 2; z's lower function is 0.
func TestForwardToy(t *testing.T) {
	f, err := NewForwardBounder(toyNet(t))
	if err != nil {
		t.Fatal(err)
	}
	rs, _ := NewRowSet([]float64{1, -1}, []float64{0, 0}, 1)
	bb, err := f.Bound(context.Background(), []float64{-1, -2}, []float64{2, 1}, rs, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if math.Abs(bb.Lower[0]+3) > 1e-6 || math.Abs(bb.Lower[1]+3) > 1e-6 {
		t.Errorf("toy: lower bounds %v of ±y, want [-3 -3]", bb.Lower)
	}

	net, err := nn.New(nn.Shape{1}, []nn.Layer{
		&nn.Dense{NodeName: "fc1", In: 1, Out: 2, W: []float64{1, -1}},
		&nn.ReLU{NodeName: "r1"},
		&nn.Dense{NodeName: "fc2", In: 2, Out: 1, W: []float64{1, 1}},
		&nn.ReLU{NodeName: "r2"},
		&nn.Dense{NodeName: "fc3", In: 1, Out: 1, W: []float64{1}},
	})
	if err != nil {
		t.Fatal(err)
	}
	f, err = NewForwardBounder(net)
	if err != nil {
		t.Fatal(err)
	}
	bb, err = f.Bound(context.Background(), []float64{-1}, []float64{1}, rs, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if lo, hi := bb.preLo[1][0], bb.preHi[1][0]; math.Abs(lo) > 1e-8 || math.Abs(hi-1) > 1e-8 {
		t.Errorf("second layer bounds [%v, %v], want [0, 1]", lo, hi)
	}
	// The output equals z ∈ [0, 1] (exact range of |x|): the rows give −upper = −1.
	if math.Abs(bb.Lower[0]) > 1e-8 || math.Abs(bb.Lower[1]+1) > 1e-8 {
		t.Errorf("output row bounds %v, want [0 -1]", bb.Lower)
	}
}

// fwdNets builds random networks of every layer kind the forward bounder handles: an
// elementwise normalisation in front (one negative scale), a reshape, dense layers,
// ReLU and grafted MaskedReLU layers.
func fwdNets(rng *rand.Rand) []*nn.Network {
	var nets []*nn.Network
	for trial := 0; trial < 4; trial++ {
		n := randomMLP(rng, []int{5, 24, 24, 24, 4}, trial%2 == 1)
		if trial >= 2 {
			norm := &nn.Affine{NodeName: "norm", Scale: make([]float64, 5), Shift: make([]float64, 5)}
			for i := range norm.Scale {
				norm.Scale[i] = 0.5 + rng.Float64()
				norm.Shift[i] = rng.NormFloat64() * 0.2
			}
			norm.Scale[1] = -norm.Scale[1]
			layers := append([]nn.Layer{norm, &nn.Reshape{NodeName: "flat", To: nn.Shape{5}}}, n.Layers...)
			var err error
			if n, err = nn.New(nn.Shape{5}, layers); err != nil {
				panic(err)
			}
		}
		nets = append(nets, n)
	}
	return nets
}

// TestForwardSound bounds random sub-boxes with and without the parent's bounds and
// with and without Refine, and checks sampled points (corners, faces, interior): every
// pre-activation value inside its layer's bounds, every row value at least its lower
// bound and its linear function A·x + Bias; and the intermediate bounds never looser
// than interval arithmetic over the same box.
func TestForwardSound(t *testing.T) {
	rng := rand.New(rand.NewPCG(8, 8))
	C := []float64{1, -1, 0, 0, 0, 1, 0, -1, -1, 0, 0, 0}
	D := []float64{0.05, -0.1, 0.2}
	rs, err := NewRowSet(C, D, 4)
	if err != nil {
		t.Fatal(err)
	}
	for ni, net := range fwdNets(rng) {
		f, err := NewForwardBounder(net)
		if err != nil {
			t.Fatal(err)
		}
		acts := net.Activations()
		_, lo, hi := randomBox(rng, 5, 0.4)
		for _, refine := range []bool{false, true} {
			f.Refine = refine
			parent, err := f.Bound(context.Background(), lo, hi, rs, nil, nil)
			if err != nil {
				t.Fatal(err)
			}
			for k := 0; k < 8; k++ {
				l, h := make([]float64, 5), make([]float64, 5)
				for i := range l {
					a, c := lo[i]+(hi[i]-lo[i])*rng.Float64(), lo[i]+(hi[i]-lo[i])*rng.Float64()
					l[i], h[i] = min(a, c), max(a, c)
				}
				var bbs []*BoxBound
				for _, p := range []*BoxBound{nil, parent} {
					bb, err := f.Bound(context.Background(), l, h, rs, p, nil)
					if err != nil {
						t.Fatal(err)
					}
					bbs = append(bbs, bb)
				}
				checkIBP(t, net, l, h, bbs[0])
				x := make([]float64, 5)
				for s := 0; s < 400; s++ {
					for i := range x {
						switch {
						case s%3 == 0 || s%3 == 1 && rng.IntN(3) != 0:
							x[i] = []float64{l[i], h[i]}[rng.IntN(2)]
						default:
							x[i] = l[i] + (h[i]-l[i])*rng.Float64()
						}
					}
					tr := net.Trace(x)
					y := tr[len(tr)-1]
					for _, bb := range bbs {
						for a, li := range acts {
							for j, v := range tr[li] {
								if v < bb.preLo[a][j] || v > bb.preHi[a][j] {
									t.Fatalf("net %d refine %v: activation %d neuron %d: %v outside [%v, %v]", ni, refine, a, j, v, bb.preLo[a][j], bb.preHi[a][j])
								}
							}
						}
						for r := range D {
							v := -D[r]
							for j := 0; j < 4; j++ {
								v += C[r*4+j] * y[j]
							}
							lin := bb.Bias[r]
							for i := range x {
								lin += bb.A[r*5+i] * x[i]
							}
							if v < bb.Lower[r] || v < lin-1e-9 {
								t.Fatalf("net %d refine %v row %d: value %v below bound %v or linear bound %v", ni, refine, r, v, bb.Lower[r], lin)
							}
						}
					}
				}
			}
		}
	}
}

// checkIBP recomputes interval bounds layer by layer and checks the forward bounder's
// pre-activation bounds lie inside them (up to the rounding margin).
func checkIBP(t *testing.T, net *nn.Network, lo, hi []float64, bb *BoxBound) {
	t.Helper()
	l, h := append([]float64(nil), lo...), append([]float64(nil), hi...)
	a := 0
	for _, layer := range net.Layers {
		switch o := layer.(type) {
		case *nn.Dense:
			nl, nh := make([]float64, o.Out), make([]float64, o.Out)
			for j := 0; j < o.Out; j++ {
				nl[j], nh[j] = o.B[j], o.B[j]
				for k := 0; k < o.In; k++ {
					w := o.W[j*o.In+k]
					nl[j] += math.Min(w*l[k], w*h[k])
					nh[j] += math.Max(w*l[k], w*h[k])
				}
			}
			l, h = nl, nh
		case *nn.Affine:
			for i := range l {
				p, q := l[i]*o.Scale[i]+o.Shift[i], h[i]*o.Scale[i]+o.Shift[i]
				l[i], h[i] = math.Min(p, q), math.Max(p, q)
			}
		case *nn.ReLU, *nn.MaskedReLU:
			for j := range l {
				tol := 1e-8 * (1 + math.Abs(l[j]) + math.Abs(h[j]))
				if bb.preLo[a][j] < l[j]-tol || bb.preHi[a][j] > h[j]+tol {
					t.Fatalf("activation %d neuron %d: [%v, %v] looser than intervals [%v, %v]", a, j, bb.preLo[a][j], bb.preHi[a][j], l[j], h[j])
				}
				// Continue from the forward bounder's own (tighter, sound) bounds.
				l[j], h[j] = bb.preLo[a][j], bb.preHi[a][j]
				if m, ok := o.(*nn.MaskedReLU); ok && m.Grafted(j) {
					p, q := m.Slope[j]*l[j]+m.Bias[j], m.Slope[j]*h[j]+m.Bias[j]
					l[j], h[j] = math.Min(p, q), math.Max(p, q)
				} else {
					l[j], h[j] = math.Max(0, l[j]), math.Max(0, h[j])
				}
			}
			a++
		}
	}
}

// TestForwardACASXu compares the forward bounder with BoxBounder (backward CROWN for
// every layer) on sub-boxes of ACAS Xu property 2 for three shared networks: both are
// checked against sampled points; the refined forward bound must be as tight as
// CROWN's (the same relaxations, up to the adaptive slopes' choices: the mean over
// the boxes within 1%), while the plain forward bound may be looser on boxes 1/64 of
// the property's widths but not on boxes 1/1024 wide (again within 1%).
func TestForwardACASXu(t *testing.T) {
	dir := sharedtest.Path(t, "vnncomp", "acasxu")
	lo := []float64{0.6, -0.5, -0.5, 0.45, -0.5}
	hi := []float64{0.679857769, 0.5, 0.5, 0.5, -0.45}
	// Rows Y_i − Y_0 (i = 1..4): property 2 holds where one of them is positive.
	var C []float64
	for i := 1; i < 5; i++ {
		row := make([]float64, 5)
		row[0], row[i] = -1, 1
		C = append(C, row...)
	}
	rs, err := NewRowSet(C, make([]float64, 4), 5)
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(3, 9))
	for _, name := range []string{"ACASXU_run2a_3_3_batch_2000.onnx", "ACASXU_run2a_4_2_batch_2000.onnx", "ACASXU_run2a_5_3_batch_2000.onnx"} {
		net, err := onnx.DecodeFile(filepath.Join(dir, "onnx", name))
		if err != nil {
			t.Fatal(err)
		}
		bx, err := NewBoxBounder(net)
		if err != nil {
			t.Fatal(err)
		}
		f, err := NewForwardBounder(net)
		if err != nil {
			t.Fatal(err)
		}
		fr, _ := NewForwardBounder(net)
		fr.Refine = true
		for _, frac := range []float64{1.0 / 64, 1.0 / 1024} {
			var sumC, sumF, sumR float64
			const boxes = 40
			for k := 0; k < boxes; k++ {
				l, h := make([]float64, 5), make([]float64, 5)
				for i := range l {
					w := (hi[i] - lo[i]) * frac
					l[i] = lo[i] + (hi[i]-lo[i]-w)*rng.Float64()
					h[i] = l[i] + w
				}
				bc, err := bx.Bound(context.Background(), l, h, rs, nil)
				if err != nil {
					t.Fatal(err)
				}
				bf, err := f.Bound(context.Background(), l, h, rs, nil, nil)
				if err != nil {
					t.Fatal(err)
				}
				br, err := fr.Bound(context.Background(), l, h, rs, nil, nil)
				if err != nil {
					t.Fatal(err)
				}
				x := make([]float64, 5)
				for s := 0; s < 50; s++ {
					for i := range x {
						x[i] = l[i] + (h[i]-l[i])*rng.Float64()
						if s < 32 {
							x[i] = []float64{l[i], h[i]}[s>>i&1]
						}
					}
					y := net.Forward(x)
					for r := 0; r < 4; r++ {
						v := y[r+1] - y[0]
						for _, bb := range []*BoxBound{bc, bf, br} {
							if v < bb.Lower[r] {
								t.Fatalf("%s: row %d value %v below bound %v", name, r, v, bb.Lower[r])
							}
						}
					}
				}
				for r := 0; r < 4; r++ {
					sumC += bc.Lower[r]
					sumF += bf.Lower[r]
					sumR += br.Lower[r]
				}
			}
			n := float64(4 * boxes)
			t.Logf("%s 1/%g: mean row bound CROWN %.6g, forward %.6g, refined %.6g", name, 1/frac, sumC/n, sumF/n, sumR/n)
			if sumR < sumC-0.01*math.Abs(sumC) {
				t.Errorf("%s 1/%g: refined forward bounds (mean %v) looser than CROWN's (%v)", name, 1/frac, sumR/n, sumC/n)
			}
			if frac < 1.0/512 && sumF < sumC-0.01*math.Abs(sumC) {
				t.Errorf("%s 1/%g: forward bounds (mean %v) looser than CROWN's (%v) on tiny boxes", name, 1/frac, sumF/n, sumC/n)
			}
		}
	}
}

// TestForwardAlphaGradient checks the adjoint gradient of the rows' bounds with
// respect to their lower slopes against central finite differences, on random
// networks (grafted layers and a normalisation included) with the slopes set at
// random: wherever the bound is differentiable (left and right differences agree),
// the two must agree.
func TestForwardAlphaGradient(t *testing.T) {
	rng := rand.New(rand.NewPCG(21, 4))
	C := []float64{1, -1, 0, 0, 0, 1, 0, -1}
	D := []float64{0.1, -0.2}
	checked := 0
	for ni, net := range fwdNets(rng) {
		f, err := NewForwardBounder(net)
		if err != nil {
			t.Fatal(err)
		}
		_, lo, hi := randomBox(rng, 5, 0.3)
		rs, _ := NewRowSet(C, D, 4)
		base, err := f.Bound(context.Background(), lo, hi, rs, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		w := f.work()
		for i := 0; i < f.d; i++ {
			w.mid[i], w.rad[i] = (lo[i]+hi[i])/2, (hi[i]-lo[i])/2
			w.mx[i] = math.Max(math.Abs(lo[i]), math.Abs(hi[i]))
		}
		a := 0
		for k := range f.ops {
			if f.ops[k].kind == fAct {
				w.rx[a].set(&f.ops[k], base.preLo[a], base.preHi[a])
				a++
			}
		}
		nr := 2
		col := make([][]int32, len(w.rx))
		alpha := make([][]float64, len(w.rx))
		grad := make([][]float64, len(w.rx))
		V := make([][]float64, len(w.rx))
		for a := range w.rx {
			col[a] = make([]int32, len(w.rx[a].state))
			nu := 0
			for i, s := range w.rx[a].state {
				col[a][i] = -1
				if s == unstable {
					col[a][i] = int32(nu)
					nu++
				}
			}
			alpha[a] = make([]float64, nr*nu)
			for i := range alpha[a] {
				alpha[a][i] = 0.05 + 0.9*rng.Float64()
			}
			grad[a] = make([]float64, nr*nu)
			V[a] = make([]float64, nr*len(w.rx[a].state))
		}
		lb, lam, _ := f.backAlpha(w, C, D, nr, 4, alpha, col, V)
		f.alphaGrad(w, lam, nr, V, col, alpha, grad)
		const h = 1e-6
		for a := range alpha {
			nu := len(alpha[a]) / nr
			for r := 0; r < nr; r++ {
				for c := 0; c < nu; c++ {
					i := r*nu + c
					old := alpha[a][i]
					alpha[a][i] = old + h
					up, _, _ := f.backAlpha(w, C, D, nr, 4, alpha, col, V)
					alpha[a][i] = old - h
					dn, _, _ := f.backAlpha(w, C, D, nr, 4, alpha, col, V)
					alpha[a][i] = old
					right, left := (up[r]-lb[r])/h, (lb[r]-dn[r])/h
					if math.Abs(right-left) > 1e-4*(1+math.Abs(right)) {
						continue // a kink
					}
					if g := grad[a][i]; math.Abs(g-right) > 1e-4*(1+math.Abs(right)) {
						t.Errorf("net %d layer %d row %d neuron %d: adjoint %v, finite differences %v", ni, a, r, c, g, right)
					}
					checked++
				}
			}
		}
		f.pool.Put(w)
	}
	if checked < 20 {
		t.Fatalf("only %d slopes checked", checked)
	}
}

// TestForwardOptimize checks Optimize: on random networks, sampled points (corners,
// faces, interior) respect the optimised bounds and their linear functions, and no
// row is looser than the base bound; on a sub-box of ACAS Xu 3_3 property 2 that
// branch and bound met, CROWN's row Y_1 − Y_0 bound −0.0047 rises to the value of
// full α-CROWN (crown.Bound, 50 iterations), +0.001166, within 1e-5 of the minimum
// over 20 000 sampled points.
func TestForwardOptimize(t *testing.T) {
	rng := rand.New(rand.NewPCG(6, 6))
	C := []float64{1, -1, 0, 0, 0, 1, 0, -1, -1, 0, 0, 0}
	D := []float64{0.05, -0.1, 0.2}
	rs, _ := NewRowSet(C, D, 4)
	for ni, net := range fwdNets(rng) {
		f, err := NewForwardBounder(net)
		if err != nil {
			t.Fatal(err)
		}
		f.AlphaLR = 1
		bx, err := NewBoxBounder(net)
		if err != nil {
			t.Fatal(err)
		}
		for k := 0; k < 6; k++ {
			_, lo, hi := randomBox(rng, 5, 0.05+0.2*rng.Float64())
			base, err := bx.Bound(context.Background(), lo, hi, rs, nil)
			if err != nil {
				t.Fatal(err)
			}
			var extraRows int
			opt, err := f.Optimize(context.Background(), lo, hi, rs, base, 8, nil, func(bb *BoxBound) ([]float64, []float64) {
				extraRows = 1
				return []float64{0.5, -0.5, 0.5, -0.5}, []float64{0}
			})
			if err != nil {
				t.Fatal(err)
			}
			if len(opt.Extra) != extraRows {
				t.Fatalf("net %d: %d extra bounds", ni, len(opt.Extra))
			}
			for r := range D {
				if opt.Lower[r] < base.Lower[r] {
					t.Errorf("net %d box %d row %d: optimised %v below base %v", ni, k, r, opt.Lower[r], base.Lower[r])
				}
			}
			x := make([]float64, 5)
			for s := 0; s < 300; s++ {
				for i := range x {
					x[i] = lo[i] + (hi[i]-lo[i])*rng.Float64()
					if s%2 == 0 {
						x[i] = []float64{lo[i], hi[i]}[rng.IntN(2)]
					}
				}
				y := net.Forward(x)
				for r := range D {
					v := -D[r]
					for j := 0; j < 4; j++ {
						v += C[r*4+j] * y[j]
					}
					lin := opt.Bias[r]
					for i := range x {
						lin += opt.A[r*5+i] * x[i]
					}
					if v < opt.Lower[r] || v < lin-1e-9 {
						t.Fatalf("net %d box %d row %d: value %v below bound %v or linear bound %v", ni, k, r, v, opt.Lower[r], lin)
					}
				}
				if e := 0.5*(y[0]-y[1]+y[2]-y[3]) - opt.Extra[0]; e < 0 {
					t.Fatalf("net %d box %d: extra row below its bound by %v", ni, k, -e)
				}
			}
		}
	}

	dir := sharedtest.Path(t, "vnncomp", "acasxu")
	net, err := onnx.DecodeFile(filepath.Join(dir, "onnx", "ACASXU_run2a_3_3_batch_2000.onnx"))
	if err != nil {
		t.Fatal(err)
	}
	lo := []float64{0.6399288845, -0.0263671875, 0.2333984375, 0.46728515625, -0.471843560481265}
	hi := []float64{0.6798577689, -0.0253871875, 0.2338884375, 0.46730965625, -0.468743560481265}
	var CA []float64
	for i := 1; i < 5; i++ {
		row := make([]float64, 5)
		row[0], row[i] = -1, 1
		CA = append(CA, row...)
	}
	rsA, _ := NewRowSet(CA, make([]float64, 4), 5)
	bx, _ := NewBoxBounder(net)
	base, err := bx.Bound(context.Background(), lo, hi, rsA, nil)
	if err != nil {
		t.Fatal(err)
	}
	f, _ := NewForwardBounder(net)
	f.AlphaLR = 1
	opt, err := f.Optimize(context.Background(), lo, hi, rsA, base, 10, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	ref, err := Bound(context.Background(), net, lo, hi, CA, Options{Method: AlphaCROWN, Iterations: 50})
	if err != nil {
		t.Fatal(err)
	}
	minV := math.Inf(1)
	x := make([]float64, 5)
	for s := 0; s < 20000; s++ {
		for i := range x {
			x[i] = lo[i] + (hi[i]-lo[i])*rng.Float64()
			if s < 32 {
				x[i] = []float64{lo[i], hi[i]}[s>>i&1]
			}
		}
		y := net.Forward(x)
		minV = math.Min(minV, y[1]-y[0])
	}
	t.Logf("ACAS Xu box, row Y1−Y0: CROWN %.7f, optimised %.7f, α-CROWN %.7f, sampled minimum %.7f", base.Lower[0], opt.Lower[0], ref.Lower[0], minV)
	if base.Lower[0] > -0.004 || opt.Lower[0] < ref.Lower[0]-1e-6 || opt.Lower[0] > minV || minV-opt.Lower[0] > 1e-5 {
		t.Errorf("ACAS Xu box: CROWN %v, optimised %v, α-CROWN %v, sampled minimum %v", base.Lower[0], opt.Lower[0], ref.Lower[0], minV)
	}
}
