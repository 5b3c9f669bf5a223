package crown

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/graftcert/graftcert/core/nn"
)

// TestAlphaGradient checks the adjoint gradient of the summed output lower bound with
// respect to every α against central finite differences.
func TestAlphaGradient(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 11))
	nets := map[string]*nn.Network{
		"mlp":     randomMLP(rng, []int{4, 7, 6, 5, 3}, false),
		"grafted": randomMLP(rng, []int{5, 10, 10, 9, 8, 3}, true),
		"cnn":     randomCNN(rng),
	}
	// The optimisation loop runs with keepTighter false; the refinement pass that keeps
	// the tighter of IBP and CROWN takes no gradient (there the interval bounds' own
	// dependence on α would be held constant).
	for _, key := range []string{"cnn", "grafted", "mlp"} {
		net := nets[key]
		for _, keep := range []bool{false} {
			name := fmt.Sprintf("%s/keepTighter=%v", key, keep)
			_, lo, hi := randomBox(rng, net.InSize(), 0.4)
			e, err := newEngine(net, lo, hi)
			if err != nil {
				t.Fatal(err)
			}
			e.keepTighter = keep // false: as the optimisation loop; true: as the refinement pass
			if err := e.crownIntermediate(context.Background()); err != nil {
				t.Fatal(err)
			}
			m := net.OutSize()
			C := make([]float64, 2*m)
			for i := range C {
				C[i] = rng.NormFloat64()
			}
			st := e.newAlphaState(specRows(C, m, true))
			baseLo, baseHi := e.boxLo, e.boxHi
			all := append([]*startNode{st.out}, st.nodes...)
			nalpha := 0
			for _, s := range all {
				for _, a := range s.alpha {
					for i := range a {
						a[i] = 0.15 + 0.7*rng.Float64()
					}
					nalpha += len(a)
				}
			}
			if nalpha == 0 || len(st.nodes) == 0 {
				t.Fatalf("%s: no α to check (nodes %d)", name, len(st.nodes))
			}
			loss := func() float64 {
				e.boxLo = make([][]float64, len(baseLo))
				e.boxHi = make([][]float64, len(baseHi))
				e.boxLo[0], e.boxHi[0] = e.lo, e.hi
				s := 0.0
				for _, v := range st.sweep(baseLo, baseHi) {
					s += v
				}
				return s
			}
			loss()
			st.backprop()
			const h = 1e-6
			checked, nonzero, nonzeroInter := 0, 0, 0
			for _, s := range all {
				for j, a := range s.alpha {
					for i := range a {
						if len(a) > 150 && rng.IntN(len(a)) >= 150 {
							continue // a random subset of the large matrices
						}
						old := a[i]
						a[i] = old + h
						fp := loss()
						a[i] = old - h
						fm := loss()
						a[i] = old
						fd := (fp - fm) / (2 * h)
						g := s.grad[j][i]
						if math.Abs(fd-g) > 1e-5*(1+math.Abs(fd)) {
							t.Errorf("%s: node %d layer %d α[%d]: adjoint %.8g, finite difference %.8g", name, s.layer, j, i, g, fd)
						}
						checked++
						if fd != 0 {
							nonzero++
							if s != st.out {
								nonzeroInter++
							}
						}
					}
				}
			}
			// Many α are unused (their row meets the neuron with a negative coefficient), but
			// enough must be live, including intermediate nodes' α whose gradient flows
			// through the bounds l, u of later layers.
			if nonzero < checked/10 || nonzeroInter < 5 {
				t.Errorf("%s: only %d of %d gradients nonzero (%d of intermediate nodes); the check is too weak", name, nonzero, checked, nonzeroInter)
			}
			t.Logf("%s: %d α checked, %d nonzero (%d intermediate), %d intermediate start nodes", name, checked, nonzero, nonzeroInter, len(st.nodes))
		}
	}
}

// TestSoundnessRandom samples points (corners included) in random boxes of random
// networks and checks they land inside IBP, CROWN and α-CROWN bounds, and that
// α-CROWN ≥ CROWN and CROWN ≥ IBP on the lower bound of every output.
func TestSoundnessRandom(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 5))
	for trial := 0; trial < 12; trial++ {
		var net *nn.Network
		switch trial % 3 {
		case 0:
			net = randomMLP(rng, []int{3, 8, 8, 8, 4}, false)
		case 1:
			net = randomMLP(rng, []int{4, 10, 9, 7, 3}, true)
		default:
			net = randomCNN(rng)
		}
		_, lo, hi := randomBox(rng, net.InSize(), 0.05+0.3*rng.Float64())
		res := map[Method]*Result{}
		for _, m := range []Method{IBP, CROWN, AlphaCROWN} {
			r, err := Bound(context.Background(), net, lo, hi, nil, Options{Method: m, Upper: true, Iterations: 10})
			if err != nil {
				t.Fatal(err)
			}
			res[m] = r
		}
		for i := range res[CROWN].Lower {
			if res[AlphaCROWN].Lower[i] < res[CROWN].Lower[i]-1e-9 {
				t.Errorf("trial %d: α-CROWN lower %v below CROWN %v", trial, res[AlphaCROWN].Lower[i], res[CROWN].Lower[i])
			}
		}
		x := make([]float64, len(lo))
		for s := 0; s < 3000; s++ {
			for i := range x {
				switch {
				case s < 500: // corners
					if rng.IntN(2) == 0 {
						x[i] = lo[i]
					} else {
						x[i] = hi[i]
					}
				default:
					x[i] = lo[i] + rng.Float64()*(hi[i]-lo[i])
				}
			}
			y := net.Forward(x)
			for m, r := range res {
				for i, v := range y {
					if v < r.Lower[i] || v > r.Upper[i] {
						t.Fatalf("trial %d %s: output %d = %v outside [%v, %v]", trial, m, i, v, r.Lower[i], r.Upper[i])
					}
				}
			}
		}
	}
}
