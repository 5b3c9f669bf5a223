package crown

import (
	"context"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/graftcert/graftcert/core/nn"
)

// TestBetaToyExact splits both ReLUs of auto_LiRPA's toy network. Each of the four
// subdomains is linear, so optimised β reaches the exact minimum of f = relu(x1−x2) −
// relu(2x1−x2) over it (hand-computed: −2 with both active, 0 with only the first, −1
// with only the second, 0 with none), and never goes above it.
func TestBetaToyExact(t *testing.T) {
	net := toyNet(t)
	lo, hi := []float64{-1, -2}, []float64{2, 1}
	s, res, err := NewSplitSolver(context.Background(), net, lo, hi, []float64{1}, Options{Method: CROWN})
	if err != nil {
		t.Fatal(err)
	}
	if math.Abs(res.Lower[0]-(-3)) > 1e-6 {
		t.Fatalf("root CROWN lower bound %v, want -3", res.Lower[0])
	}
	if u := s.Unstable(); len(u) != 1 || u[0] != 2 {
		t.Fatalf("unstable %v, want [2]", u)
	}
	rs, err := NewRowSet([]float64{1}, []float64{0}, 1)
	if err != nil {
		t.Fatal(err)
	}
	want := map[[2]bool]float64{{true, true}: -2, {true, false}: 0, {false, true}: -1, {false, false}: 0}
	var doms []*Domain
	var keys [][2]bool
	for k := range want {
		d := s.Root(rs, nil)
		d.Splits = []Split{{Layer: 0, Neuron: 0, Active: k[0]}, {Layer: 0, Neuron: 1, Active: k[1]}}
		doms = append(doms, d)
		keys = append(keys, k)
	}
	if _, err := s.BoundDomains(context.Background(), doms, BetaOptions{Iterations: 400, LRBeta: 0.1, Workers: 2}); err != nil {
		t.Fatal(err)
	}
	for i, d := range doms {
		w := want[keys[i]]
		if d.Lower[0] > w+1e-9 || d.Lower[0] < w-0.02 {
			t.Errorf("split %v: lower bound %v, exact minimum %v", keys[i], d.Lower[0], w)
		}
		if !d.Leaf() && !d.Proven() {
			t.Errorf("split %v: fully split domain not marked leaf", keys[i])
		}
	}
}

// TestBetaGradient checks the adjoint gradient of the summed lower bounds with respect
// to α and β against central finite differences, on domains with splits.
func TestBetaGradient(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 5))
	nets := map[string]*nn.Network{
		"mlp":     randomMLP(rng, []int{4, 9, 8, 7, 3}, false),
		"grafted": randomMLP(rng, []int{5, 10, 10, 9, 3}, true),
		"cnn":     randomCNN(rng),
	}
	for _, name := range []string{"cnn", "grafted", "mlp"} {
		net := nets[name]
		_, lo, hi := randomBox(rng, net.InSize(), 0.4)
		m := net.OutSize()
		C := make([]float64, 2*m)
		for i := range C {
			C[i] = rng.NormFloat64()
		}
		s, _, err := NewSplitSolver(context.Background(), net, lo, hi, C, Options{Method: CROWN})
		if err != nil {
			t.Fatal(err)
		}
		rs, _ := NewRowSet(C, []float64{0.1, -0.2}, m)
		d := s.Root(rs, nil)
		for p, cols := range s.cols {
			for k, i := range cols {
				if k%3 == 0 {
					d.Splits = append(d.Splits, Split{Layer: p, Neuron: i, Active: rng.IntN(2) == 0})
				}
			}
		}
		if len(d.Splits) == 0 {
			t.Fatalf("%s: no unstable neurons to split", name)
		}
		s.ensureParams(d)
		for _, a := range d.alpha {
			for i := range a {
				a[i] = 0.15 + 0.7*rng.Float64()
			}
		}
		for i := range d.beta {
			d.beta[i] = 0.1 + rng.Float64()
		}
		e, _ := s.engine()
		it, err := s.newItem(d, nil)
		if err != nil {
			t.Fatal(err)
		}
		loss := func() float64 {
			v := 0.0
			for _, x := range e.concretize(s.backward(e, []*bitem{it}, nil)) {
				v += x
			}
			return v
		}
		tape := make([]*rows, len(s.acts))
		final := s.backward(e, []*bitem{it}, tape)
		it.zeroGrad(s)
		s.adjoint(e, []*bitem{it}, final, tape)
		const h = 1e-6
		check := func(what string, x []float64, g []float64) (int, int) {
			n, nz := 0, 0
			for i := range x {
				old := x[i]
				x[i] = old + h
				fp := loss()
				x[i] = old - h
				fm := loss()
				x[i] = old
				fd := (fp - fm) / (2 * h)
				if math.Abs(fd-g[i]) > 1e-5*(1+math.Abs(fd)) {
					t.Errorf("%s %s[%d]: adjoint %v, finite difference %v", name, what, i, g[i], fd)
				}
				n++
				if g[i] != 0 {
					nz++
				}
			}
			return n, nz
		}
		na, za := 0, 0
		for p, a := range d.alpha {
			n, z := check("alpha", a, it.ga[p])
			na += n
			za += z
		}
		nb, zb := check("beta", d.beta, it.gb)
		if za == 0 || zb == 0 {
			t.Errorf("%s: no nonzero gradient (α %d/%d, β %d/%d)", name, za, na, zb, nb)
		}
	}
}

// TestBetaSound bounds random split subdomains and checks the bounds against sampled
// points of each subdomain (inputs whose pre-activations have the split signs).
func TestBetaSound(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 2))
	for trial := 0; trial < 6; trial++ {
		var net *nn.Network
		switch trial % 3 {
		case 0:
			net = randomMLP(rng, []int{3, 8, 8, 2}, false)
		case 1:
			net = randomMLP(rng, []int{3, 8, 8, 8, 2}, true)
		default:
			net = randomCNN(rng)
		}
		x0, lo, hi := randomBox(rng, net.InSize(), 0.5)
		_ = x0
		m := net.OutSize()
		C := []float64{1, -1}
		if m > 2 {
			C = make([]float64, m)
			C[0], C[1] = 1, -1
		}
		s, _, err := NewSplitSolver(context.Background(), net, lo, hi, C, Options{Method: AlphaCROWN, Iterations: 5})
		if err != nil {
			t.Fatal(err)
		}
		rs, _ := NewRowSet(C, []float64{0}, m)
		var doms []*Domain
		for k := 0; k < 4; k++ {
			d := s.Root(rs, nil)
			for p, cols := range s.cols {
				for _, i := range cols {
					if rng.IntN(4) == 0 {
						d.Splits = append(d.Splits, Split{Layer: p, Neuron: i, Active: rng.IntN(2) == 0})
					}
				}
			}
			doms = append(doms, d)
		}
		if _, err := s.BoundDomains(context.Background(), doms, BetaOptions{Iterations: 30}); err != nil {
			t.Fatal(err)
		}
		acts := net.Activations()
		hits := make([]int, len(doms))
		x := make([]float64, net.InSize())
		for n := 0; n < 20000; n++ {
			for i := range x {
				x[i] = lo[i] + (hi[i]-lo[i])*rng.Float64()
			}
			tr := net.Trace(x)
			y := tr[len(tr)-1]
			v := 0.0
			for j, c := range C {
				v += c * y[j]
			}
		doms:
			for k, d := range doms {
				for _, sp := range d.Splits {
					z := tr[acts[sp.Layer]][sp.Neuron]
					if sp.Active && z < 0 || !sp.Active && z > 0 {
						continue doms
					}
				}
				hits[k]++
				if v < d.Lower[0]-1e-9 {
					t.Fatalf("trial %d domain %d: f = %v below the lower bound %v", trial, k, v, d.Lower[0])
				}
			}
		}
		t.Logf("trial %d: samples per domain %v, lower %v %v %v %v", trial, hits, doms[0].Lower, doms[1].Lower, doms[2].Lower, doms[3].Lower)
	}
}

// TestBranchChildren checks that branching on the FSB decision yields children with
// the split appended, α copied, β extended by a zero and bounds no lower than the
// parent's.
func TestBranchChildren(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 1))
	net := randomMLP(rng, []int{4, 10, 10, 3}, false)
	_, lo, hi := randomBox(rng, net.InSize(), 0.5)
	C := []float64{1, -1, 0}
	s, _, err := NewSplitSolver(context.Background(), net, lo, hi, C, Options{Method: CROWN})
	if err != nil {
		t.Fatal(err)
	}
	rs, _ := NewRowSet(C, []float64{0}, 3)
	d := s.Root(rs, nil)
	if _, err := s.BoundDomains(context.Background(), []*Domain{d}, BetaOptions{}); err != nil {
		t.Fatal(err)
	}
	if d.Proven() {
		t.Skip("root already proven")
	}
	if !d.Decided() {
		t.Fatal("no branching decision")
	}
	a, b, err := d.Branch()
	if err != nil {
		t.Fatal(err)
	}
	for k, c := range []*Domain{a, b} {
		if len(c.Splits) != 1 || c.Splits[0].Active != (k == 1) || c.Splits[0].Neuron != d.Next().Neuron {
			t.Errorf("child %d splits %v", k, c.Splits)
		}
		if c.Lower[0] < d.Lower[0] {
			t.Errorf("child %d bound %v below parent %v", k, c.Lower[0], d.Lower[0])
		}
		if len(c.beta) != 1 || c.beta[0] != 0 {
			t.Errorf("child %d β %v", k, c.beta)
		}
	}
}
