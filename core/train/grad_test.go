package train

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/graftcert/graftcert/core/nn"
)

// testNet builds a small network with every layer type: normalisation, two convolutions
// (stride, asymmetric padding, dilation), ReLU, MaskedReLU with grafted and plain
// neurons, a reshape, dense layers. Values are random but fixed by seed.
func testNet(t testing.TB, seed uint64) *nn.Network {
	t.Helper()
	rng := rand.New(rand.NewPCG(seed, 7))
	u := func(n int, s float64) []float64 {
		v := make([]float64, n)
		for i := range v {
			v[i] = (2*rng.Float64() - 1) * s
		}
		return v
	}
	mask := func(n int) []float64 {
		v := make([]float64, n)
		for i := range v {
			if rng.IntN(2) == 1 {
				v[i] = 1
			}
		}
		return v
	}
	in := nn.Shape{2, 6, 5}
	scale := u(in.Size(), 1)
	for i := range scale {
		scale[i] += 1.5
	}
	c1 := &nn.Conv2d{NodeName: "c1", InC: 2, OutC: 3, KH: 3, KW: 2, SH: 2, SW: 1, DH: 1, DW: 1,
		PT: 1, PL: 0, PB: 0, PR: 1, W: u(3*2*3*2, 0.7), B: u(3, 0.3)}
	// c1 output 3×3×5
	c2 := &nn.Conv2d{NodeName: "c2", InC: 3, OutC: 2, KH: 2, KW: 2, SH: 1, SW: 2, DH: 2, DW: 1,
		PT: 1, PL: 1, PB: 0, PR: 1, W: u(2*3*2*2, 0.7), B: u(2, 0.3)}
	// c2 output: H = (3+1+0-2-1)/1+1 = 2, W = (5+1+1-1-1)/2+1 = 3 → 2×2×3 = 12
	layers := []nn.Layer{
		&nn.Affine{NodeName: "norm", Scale: scale, Shift: u(in.Size(), 0.5)},
		c1,
		&nn.ReLU{NodeName: "r1"},
		c2,
		&nn.MaskedReLU{NodeName: "m2", Mask: mask(12), Slope: u(12, 1), Bias: u(12, 0.5)},
		&nn.Reshape{NodeName: "flat", To: nn.Shape{12}},
		&nn.Dense{NodeName: "d1", In: 12, Out: 7, W: u(84, 0.8), B: u(7, 0.3)},
		&nn.MaskedReLU{NodeName: "m3", Mask: mask(7), Slope: u(7, 1), Bias: u(7, 0.5)},
		&nn.Dense{NodeName: "d2", In: 7, Out: 4, W: u(28, 0.8), B: u(4, 0.3)},
	}
	net, err := nn.New(in, layers)
	if err != nil {
		t.Fatal(err)
	}
	return net
}

func randVec(rng *rand.Rand, n int, lo, hi float64) []float64 {
	v := make([]float64, n)
	for i := range v {
		v[i] = lo + (hi-lo)*rng.Float64()
	}
	return v
}

func dot(a, b []float64) float64 {
	s := 0.0
	for i := range a {
		s += a[i] * b[i]
	}
	return s
}

// close reports whether a numerical derivative fd agrees with the analytic g.
func closeTo(g, fd, tol float64) bool {
	return math.Abs(g-fd) <= tol*math.Max(1, math.Abs(fd))
}

// fdCheck compares every entry of every parameter's analytic gradient with the central
// difference of obj.
func fdCheck(t *testing.T, m *Model, g *Grad, obj func() float64, h, tol float64) {
	t.Helper()
	checked := 0
	for pi, p := range m.Params {
		for j := range p.Value {
			old := p.Value[j]
			p.Value[j] = old + h
			fp := obj()
			p.Value[j] = old - h
			fm := obj()
			p.Value[j] = old
			fd := (fp - fm) / (2 * h)
			if p.Mask != nil && p.Mask[j] == 0 {
				if g.G[pi][j] != 0 || fd != 0 {
					t.Errorf("layer %d %v[%d] of an ungrafted neuron: grad %v, fd %v, want 0", p.Layer, p.Kind, j, g.G[pi][j], fd)
				}
				continue
			}
			if !closeTo(g.G[pi][j], fd, tol) {
				t.Errorf("layer %d %v[%d]: grad %.10g, finite difference %.10g", p.Layer, p.Kind, j, g.G[pi][j], fd)
			}
			checked++
		}
	}
	if checked < 100 {
		t.Fatalf("only %d parameters checked", checked)
	}
}

func TestBackwardMatchesFiniteDifferences(t *testing.T) {
	net := testNet(t, 1)
	m, err := NewModel(net, false)
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(2, 2))
	const n = 3
	x := randVec(rng, n*net.InSize(), 0, 1)
	c := randVec(rng, n*net.OutSize(), -1, 1)
	// Objective: c · f(x) over the batch, evaluated with nn's own forward pass.
	obj := func() float64 { return dot(c, net.ForwardBatch(x, n)) }
	tape := m.Forward(x, n, nil)
	for i, v := range net.ForwardBatch(x, n) {
		if math.Abs(v-tape.Output()[i]) > 1e-12 {
			t.Fatalf("tape output %d = %v, nn forward %v", i, tape.Output()[i], v)
		}
	}
	g := m.NewGrad()
	dx, err := m.Backward(tape, c, g)
	if err != nil {
		t.Fatal(err)
	}
	fdCheck(t, m, g, obj, 1e-6, 1e-6)

	// Input gradient.
	for j := range x {
		old := x[j]
		x[j] = old + 1e-6
		fp := obj()
		x[j] = old - 1e-6
		fm := obj()
		x[j] = old
		if fd := (fp - fm) / 2e-6; !closeTo(dx[j], fd, 1e-6) {
			t.Errorf("input %d: grad %v, fd %v", j, dx[j], fd)
		}
	}

	// Single-sample input gradients agree with the batch.
	in, k := net.InSize(), net.OutSize()
	for s := 0; s < n; s++ {
		gi := InputGradient(net, x[s*in:(s+1)*in], c[s*k:(s+1)*k])
		for j := range gi {
			if math.Abs(gi[j]-dx[s*in+j]) > 1e-12 {
				t.Fatalf("sample %d input %d: InputGradient %v, batch %v", s, j, gi[j], dx[s*in+j])
			}
		}
	}
}

func TestFrozenMaskedReLUHasNoSlopeParams(t *testing.T) {
	net := testNet(t, 3)
	m, err := NewModel(net, true)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range m.Params {
		if p.Kind == Slope || p.Kind == Intercept {
			t.Fatalf("frozen model lists %v of layer %d", p.Kind, p.Layer)
		}
	}
	if len(m.Params) != 8 { // 4 weight layers × (W, B)
		t.Fatalf("frozen model has %d params, want 8", len(m.Params))
	}
	rng := rand.New(rand.NewPCG(4, 4))
	x := randVec(rng, 2*net.InSize(), 0, 1)
	c := randVec(rng, 2*net.OutSize(), -1, 1)
	g := m.NewGrad()
	if _, err := m.Backward(m.Forward(x, 2, nil), c, g); err != nil {
		t.Fatal(err)
	}
	fdCheck(t, m, g, func() float64 { return dot(c, net.ForwardBatch(x, 2)) }, 1e-6, 1e-6)
}

func TestCrossEntropyByHand(t *testing.T) {
	d := make([]float64, 3)
	loss, correct := CrossEntropy([]float64{1, 2, 3}, []int{2}, 3, d, 1)
	want := math.Log(1 + math.Exp(-1) + math.Exp(-2)) // log Σ e^z − z_2
	if math.Abs(loss-want) > 1e-15 || correct != 1 {
		t.Fatalf("loss %v correct %d, want %v 1", loss, correct, want)
	}
	e := math.Exp(1) + math.Exp(2) + math.Exp(3)
	wantD := []float64{math.Exp(1) / e, math.Exp(2) / e, math.Exp(3)/e - 1}
	for i := range d {
		if math.Abs(d[i]-wantD[i]) > 1e-15 {
			t.Fatalf("dLogits %v, want %v", d, wantD)
		}
	}
	// Huge logits: no overflow, loss exact.
	loss, correct = CrossEntropy([]float64{1000, 0}, []int{1}, 2, d[:2], 0.5)
	if loss != 1000 || correct != 0 || d[0] != 0.5 || d[1] != -0.5 {
		t.Fatalf("large logits: loss %v correct %d d %v, want 1000 0 [0.5 -0.5]", loss, correct, d[:2])
	}
	if a := Accuracy([]float64{1, 0, 0, 1, 5, 5}, []int{0, 0, 0}, 2); a != 2.0/3 {
		t.Fatalf("accuracy %v, want 2/3 (ties go to the first class)", a)
	}
}

func TestCrossEntropyGradientFiniteDifferences(t *testing.T) {
	net := testNet(t, 5)
	m, _ := NewModel(net, false)
	rng := rand.New(rand.NewPCG(6, 6))
	const n = 4
	x := randVec(rng, n*net.InSize(), 0, 1)
	y := []int{0, 3, 1, 2}
	k := net.OutSize()
	obj := func() float64 {
		l, _ := CrossEntropy(net.ForwardBatch(x, n), y, k, nil, 0)
		return l / n
	}
	tape := m.Forward(x, n, nil)
	dl := make([]float64, n*k)
	CrossEntropy(tape.Output(), y, k, dl, 1.0/n)
	g := m.NewGrad()
	if _, err := m.Backward(tape, dl, g); err != nil {
		t.Fatal(err)
	}
	fdCheck(t, m, g, obj, 1e-6, 1e-6)
}

// inputGrads returns the per-sample input gradients of the cross-entropy at x (plus eta
// if non-nil), computed by ForwardGrad.
func inputGrads(net *nn.Network, x, eta []float64, y []int) [][]float64 {
	d := net.InSize()
	var gs [][]float64
	for s, label := range y {
		xs := append([]float64(nil), x[s*d:(s+1)*d]...)
		if eta != nil {
			for j := range xs {
				xs[j] += eta[s*d+j]
			}
		}
		_, g, _ := ForwardGrad(net, xs, func(out, dOut []float64) { CrossEntropy(out, []int{label}, len(out), dOut, 1) })
		gs = append(gs, g)
	}
	return gs
}

// gradAlignRef evaluates the regulariser from its definition, with g1 given (it is a
// constant of the objective, as in the paper's code) and g2 computed by ForwardGrad.
func gradAlignRef(net *nn.Network, g1 [][]float64, x, eta []float64, y []int, lambda float64) float64 {
	g2 := inputGrads(net, x, eta, y)
	sum, cnt := 0.0, 0
	for s := range y {
		n1, n2 := math.Sqrt(dot(g1[s], g1[s])), math.Sqrt(dot(g2[s], g2[s]))
		if n1 == 0 || n2 == 0 {
			continue
		}
		sum += dot(g1[s], g2[s]) / (n1 * n2)
		cnt++
	}
	return lambda * (1 - sum/float64(cnt))
}

func TestGradAlignMatchesFiniteDifferences(t *testing.T) {
	net := testNet(t, 8)
	m, _ := NewModel(net, false)
	rng := rand.New(rand.NewPCG(9, 9))
	const n = 3
	d := net.InSize()
	x := randVec(rng, n*d, 0, 1)
	eta := randVec(rng, n*d, -0.3, 0.3)
	y := []int{1, 0, 3}
	g := m.NewGrad()
	r, err := m.GradAlign(x, eta, y, 0.7, g)
	if err != nil {
		t.Fatal(err)
	}
	g1 := inputGrads(net, x, nil, y)
	ref := gradAlignRef(net, g1, x, eta, y, 0.7)
	if math.Abs(r-ref) > 1e-12 || r <= 1e-3 {
		t.Fatalf("GradAlign value %v, reference %v (want equal and non-trivial)", r, ref)
	}
	nonzero := 0
	for _, v := range g.G {
		for _, e := range v {
			if e != 0 {
				nonzero++
			}
		}
	}
	if nonzero < 100 {
		t.Fatalf("only %d non-zero regulariser gradients", nonzero)
	}
	fdCheck(t, m, g, func() float64 { return gradAlignRef(net, g1, x, eta, y, 0.7) }, 1e-6, 2e-6)
}

func TestInputGradientDoesNotAllocate(t *testing.T) {
	net := testNet(t, 10)
	rng := rand.New(rand.NewPCG(11, 11))
	x := randVec(rng, net.InSize(), 0, 1)
	c := randVec(rng, net.OutSize(), -1, 1)
	dst := make([]float64, net.InSize())
	if err := InputGradientTo(dst, net, x, c); err != nil {
		t.Fatal(err)
	}
	if a := testing.AllocsPerRun(100, func() { _ = InputGradientTo(dst, net, x, c) }); a > 0 && !raceEnabled {
		t.Fatalf("InputGradientTo allocates %v times per call", a)
	}
	if err := InputGradientTo(dst, net, x, c[:1]); err == nil {
		t.Fatal("short dOut accepted")
	}
}
