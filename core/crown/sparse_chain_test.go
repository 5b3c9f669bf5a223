package crown

import (
	"context"
	"math"
	"math/rand/v2"
	"testing"
)

// chainBound against the layer-by-layer pass (backward, then Concretize) on the
// convolutional models, for rows that are zero on the inactive neurons above the
// chain (as every pass's rows are), including a last block of fewer than
// sparseBlock rows: equal to rounding, and a row's bound the same whatever rows it is
// computed with.
func TestChainBoundMatchesRows(t *testing.T) {
	rng := rand.New(rand.NewPCG(41, 42))
	defer func(d float64) { sparseMaxDensity = d }(sparseMaxDensity)
	sparseMaxDensity = math.Inf(1) // every chain, also where the dense product is used
	chains := 0
	for _, name := range []string{"cifar_cnn_a_adv", "mnist_conv_small", "oval_cifar_deep", "cifar_conv_small_graft50"} {
		rm := loadRef(t, name)
		s := rm.ref.Samples[0]
		lo, hi := box(rm.X.Sample(s.Index), rm.ref.Eps)
		e, err := newEngine(rm.net, lo, hi)
		if err != nil {
			t.Fatal(err)
		}
		if err := e.crownIntermediate(context.Background()); err != nil {
			t.Fatal(err)
		}
		start := len(e.ops)
		for j := e.first; j < start; j++ {
			// Only the highest chain start that has one matters to the passes, but
			// every one must be right.
			steps := e.sparseChain(j, start)
			if steps == nil {
				continue
			}
			chains++
			above := e.relax[j+1]
			n := 2*sparseBlock + 3
			r := newRows(n, len(above.state))
			for q := 0; q < n; q++ {
				r.bias[q], r.mag[q] = rng.NormFloat64(), rng.Float64()
				for i, st := range above.state {
					if st != inactive {
						r.row(q)[i] = rng.NormFloat64()
					}
				}
			}
			got := e.chainBound(steps, r)
			want := e.concretize(e.backwardTo(j+1, e.first-1, r.clone(), nil, nil))
			for q := range want {
				if math.Abs(got[q]-want[q]) > 1e-11*(1+math.Abs(want[q])) {
					t.Fatalf("%s chain at %d row %d: %v, layer by layer %v", name, j, q, got[q], want[q])
				}
			}
			sub := newRows(2, r.size)
			for q, from := range []int{n - 1, 3} {
				copy(sub.row(q), r.row(from))
				sub.bias[q], sub.mag[q] = r.bias[from], r.mag[from]
			}
			alone := e.chainBound(steps, sub)
			if math.Float64bits(alone[0]) != math.Float64bits(got[n-1]) || math.Float64bits(alone[1]) != math.Float64bits(got[3]) {
				t.Fatalf("%s chain at %d: rows bounded apart differ", name, j)
			}
		}
	}
	if chains < 4 {
		t.Fatalf("only %d chains on the conv models", chains)
	}
}
