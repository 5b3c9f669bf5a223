package bab

import (
	"context"
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/graftcert/graftcert/core/crown"
	"github.com/graftcert/graftcert/core/data"
	"github.com/graftcert/graftcert/core/nn"
	"github.com/graftcert/graftcert/core/onnx"
	"github.com/graftcert/graftcert/core/spec"
	"github.com/graftcert/graftcert/internal/sharedtest"
)

// TestRefineBoundsExact checks refined intermediate bounds against the exact range of
// every pre-activation, found by enumerating activation patterns (exactMin) on tiny
// random networks: a refined bound may never cut into the exact range (soundness),
// never loosen the bound it started from, and, with enough subdomains per neuron,
// must come close to the exact range on most neurons (or the refinement does nothing).
func TestRefineBoundsExact(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 11))
	trials := 10
	if testing.Short() {
		trials = 4
	}
	var tight, total, improved int
	for trial := 0; trial < trials; trial++ {
		in := 2 + trial%2
		widths := [][]int{{4, 4}, {3, 3, 3}, {5, 4}}[trial%3]
		net := tinyNet(rng, in, widths, trial%4 == 3)
		lo, hi := make([]float64, in), make([]float64, in)
		for i := range lo {
			c := rng.NormFloat64()
			lo[i], hi[i] = c-1, c+1
		}
		C := []float64{1}
		_, res, err := crown.NewSplitSolver(context.Background(), net, lo, hi, C, crown.Options{Method: crown.AlphaCROWN})
		if err != nil {
			t.Fatal(err)
		}
		r := &runner{net: net, o: Options{RefineDomains: 400}.withDefaults()}
		preLo, preHi, err := r.refineBounds(context.Background(), lo, hi, res.PreLower, res.PreUpper, time.Now().Add(20*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		var acts []int
		for k, l := range net.Layers {
			switch l.(type) {
			case *nn.ReLU, *nn.MaskedReLU:
				acts = append(acts, k)
			}
		}
		for p, k := range acts {
			for i := range preLo[p] {
				if preLo[p][i] < res.PreLower[p][i] || preHi[p][i] > res.PreUpper[p][i] {
					t.Fatalf("trial %d layer %d neuron %d: refined [%v, %v] looser than the start [%v, %v]",
						trial, p, i, preLo[p][i], preHi[p][i], res.PreLower[p][i], res.PreUpper[p][i])
				}
				if p == 0 {
					continue
				}
				mn := exactMin(t, neuronNet(net, k, i, 1), lo, hi)
				mx := -exactMin(t, neuronNet(net, k, i, -1), lo, hi)
				tol := 1e-7 * (1 + math.Abs(mn) + math.Abs(mx))
				if preLo[p][i] > mn+tol || preHi[p][i] < mx-tol {
					t.Fatalf("trial %d layer %d neuron %d: refined [%v, %v] cuts into the exact range [%v, %v]",
						trial, p, i, preLo[p][i], preHi[p][i], mn, mx)
				}
				// Only neurons the root left unstable are refined.
				if res.PreLower[p][i] < 0 && res.PreUpper[p][i] > 0 {
					total++
					gap := (mn - res.PreLower[p][i]) + (res.PreUpper[p][i] - mx)
					left := (mn - preLo[p][i]) + (preHi[p][i] - mx)
					if left < gap-1e-9 {
						improved++
					}
					// The branch and bound gives up a side once the neuron's sign
					// is proven, so a bound counts as tight when it is close to
					// the exact one or has crossed zero with it.
					near := func(got, want float64) bool {
						return math.Abs(got-want) <= 1e-3*(1+math.Abs(want))
					}
					okLo := near(preLo[p][i], mn) || (mn > 0 && preLo[p][i] >= 0)
					okHi := near(preHi[p][i], mx) || (mx < 0 && preHi[p][i] <= 0)
					if !(okLo && okHi) {
						t.Logf("trial %d layer %d neuron %d: root [%.5g, %.5g] refined [%.5g, %.5g] exact [%.5g, %.5g]", trial, p, i, res.PreLower[p][i], res.PreUpper[p][i], preLo[p][i], preHi[p][i], mn, mx)
					}
					if okLo && okHi {
						tight++
					}
				}
			}
		}
	}
	t.Logf("%d root-unstable neurons refined: %d tightened, %d within 1e-3 of exact", total, improved, tight)
	if total == 0 || 10*tight < 8*total {
		t.Fatalf("refinement reached the exact range on only %d of %d neurons", tight, total)
	}
}

// neuronNet is net cut before layer k with a last Dense layer giving sign·z_i, the
// input of neuron i of activation layer k (layers are copied: building sets them up).
func neuronNet(net *nn.Network, k, i int, sign float64) *nn.Network {
	var layers []nn.Layer
	for _, l := range net.Layers[:k] {
		layers = append(layers, nn.CloneLayer(l))
	}
	n := net.Shapes[k].Size()
	d := &nn.Dense{NodeName: "pick", In: n, Out: 1, W: make([]float64, n), B: []float64{0}}
	d.W[i] = sign
	layers = append(layers, d)
	sub, err := nn.New(net.Input, layers)
	if err != nil {
		panic(err)
	}
	return sub
}

// TestRefineBoundsAttacked refines the intermediate bounds of mnist_6_100 around a
// test image and then attacks every tightened bound: random points, corners and PGD
// on the truncated network look for a pre-activation outside its refined bound. None
// may exist.
func TestRefineBoundsAttacked(t *testing.T) {
	net, err := onnx.DecodeFile(sharedtest.Path(t, "models", "mnist_6_100.onnx"))
	if err != nil {
		t.Fatal(err)
	}
	X, err := data.ReadNPYFile(sharedtest.Path(t, "data", "mnist_eran_X.npy"))
	if err != nil {
		t.Fatal(err)
	}
	x := X.Sample(5)
	const eps = 0.026
	lo, hi := make([]float64, len(x)), make([]float64, len(x))
	for i, v := range x {
		lo[i], hi[i] = max(0, v-eps), min(1, v+eps)
	}
	C := make([]float64, net.OutSize())
	C[0] = 1
	_, res, err := crown.NewSplitSolver(context.Background(), net, lo, hi, C, crown.Options{Method: crown.AlphaCROWN})
	if err != nil {
		t.Fatal(err)
	}
	r := &runner{net: net, o: Options{RefineDomains: 8}.withDefaults()}
	preLo, preHi, err := r.refineBounds(context.Background(), lo, hi, res.PreLower, res.PreUpper, time.Now().Add(6*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	var acts []int
	for k, l := range net.Layers {
		if _, ok := l.(*nn.ReLU); ok {
			acts = append(acts, k)
		}
	}
	tightened := 0
	rng := rand.New(rand.NewPCG(3, 9))
	for p := 1; p < len(acts); p++ {
		n := len(preLo[p])
		sub := neuronNet(net, acts[p], 0, 1)
		sub, err = nn.New(net.Input, sub.Layers[:len(sub.Layers)-1])
		if err != nil {
			t.Fatal(err)
		}
		// The unsafe set: some neuron below its refined lower bound or above its
		// refined upper bound (each a disjunct the attack works on).
		pr := &problem{lo: lo, hi: hi}
		for i := 0; i < n; i++ {
			if preLo[p][i] > res.PreLower[p][i] || preHi[p][i] < res.PreUpper[p][i] {
				tightened++
			}
			tol := 1e-7 * (1 + math.Abs(preLo[p][i]) + math.Abs(preHi[p][i]))
			up := make([]float64, n)
			up[i] = 1
			down := make([]float64, n)
			down[i] = -1
			pr.disj = append(pr.disj,
				[]spec.Row{{C: up, D: preLo[p][i] - tol}},
				[]spec.Row{{C: down, D: -preHi[p][i] - tol}})
		}
		obsLo, obsHi := make([]float64, n), make([]float64, n)
		for i := range obsLo {
			obsLo[i], obsHi[i] = math.Inf(1), math.Inf(-1)
		}
		for k := 0; k < 2000; k++ {
			pt := make([]float64, len(lo))
			for i := range pt {
				switch k % 3 {
				case 0:
					pt[i] = lo[i] + (hi[i]-lo[i])*rng.Float64()
				case 1:
					pt[i] = lo[i]
					if rng.IntN(2) == 1 {
						pt[i] = hi[i]
					}
				default: // near the centre, where the bounds were tightened around
					pt[i] = min(hi[i], max(lo[i], x[i]+eps*0.3*rng.NormFloat64()))
				}
			}
			y := sub.Forward(pt)
			if q := pr.violated(y); q >= 0 {
				t.Fatalf("layer %d: point %d breaks refined bound %d", p, k, q)
			}
			for i, v := range y {
				obsLo[i], obsHi[i] = min(obsLo[i], v), max(obsHi[i], v)
			}
		}
		cex, err := attack(context.Background(), sub, pr, AttackOptions{Restarts: 20, Steps: 100}, 2, 1)
		if err != nil {
			t.Fatal(err)
		}
		if cex != nil {
			t.Fatalf("layer %d: PGD found a pre-activation outside its refined bounds: %v", p, cex.Y)
		}
		// Control: the same attack against thresholds inside the range the sampled
		// points reached must find a point beyond one of them, or it proves nothing.
		for q, rows := range pr.disj {
			i := q / 2
			w := obsHi[i] - obsLo[i]
			if q%2 == 0 {
				rows[0].D = obsLo[i] + 0.25*w
			} else {
				rows[0].D = -(obsHi[i] - 0.25*w)
			}
		}
		cex, err = attack(context.Background(), sub, pr, AttackOptions{Restarts: 20, Steps: 100}, 2, 1)
		if err != nil {
			t.Fatal(err)
		}
		if cex == nil {
			t.Fatalf("layer %d: the attack found nothing beyond thresholds sampled points pass: it cannot check the bounds", p)
		}
	}
	t.Logf("%d neuron bounds tightened", tightened)
	if tightened == 0 {
		t.Fatal("refinement tightened no bound")
	}
}

// TestClockDeadline checks the sub-budget context: it expires by the clock alone
// (no timer needs to fire) and never outlives its parent.
func TestClockDeadline(t *testing.T) {
	parent, cancel := context.WithTimeout(context.Background(), time.Hour)
	defer cancel()
	c := WithClockDeadline(parent, time.Now().Add(30*time.Millisecond))
	if c.Err() != nil {
		t.Fatalf("expired at once: %v", c.Err())
	}
	time.Sleep(40 * time.Millisecond)
	if c.Err() != context.DeadlineExceeded {
		t.Fatalf("after its deadline: Err = %v", c.Err())
	}
	pd, _ := parent.Deadline()
	if d, _ := WithClockDeadline(parent, time.Now().Add(2*time.Hour)).Deadline(); !d.Equal(pd) {
		t.Fatalf("deadline %v outlives the parent's %v", d, pd)
	}
	cancel()
	if c := WithClockDeadline(parent, time.Now().Add(time.Hour)); c.Err() != context.Canceled {
		t.Fatalf("parent cancelled: Err = %v", c.Err())
	}
}
