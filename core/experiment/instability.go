package experiment

import (
	"context"
	"fmt"
	"runtime"
	"sync"

	"github.com/graftcert/graftcert/core/crown"
	"github.com/graftcert/graftcert/core/nn"
	"github.com/graftcert/graftcert/core/spec"
)

// unstableCounts returns, per activation layer and neuron, on how many of the n samples
// X (labels y) the neuron's CROWN pre-activation bounds over the eps-box straddle zero —
// the input graft.InstabilityAware needs. The bounds are those of the margin
// specification's intermediate layers, as verification computes them.
func unstableCounts(ctx context.Context, net *nn.Network, X []float64, y []int, eps float64, jobs int) ([][]float64, error) {
	in, k := net.InSize(), net.OutSize()
	n := len(y)
	acts := net.Activations()
	if jobs <= 0 {
		jobs = runtime.GOMAXPROCS(0)
	}
	jobs = max(1, min(jobs, n))
	// One tally per worker, summed at the end: integer counts, so the order of the sum
	// does not matter.
	tallies := make([][][]float64, jobs)
	errs := make([]error, jobs)
	var wg sync.WaitGroup
	for w := 0; w < jobs; w++ {
		tally := make([][]float64, len(acts))
		for l, i := range acts {
			tally[l] = make([]float64, net.Layers[i].(nn.Activation).Neurons())
		}
		tallies[w] = tally
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for s := w; s < n; s += jobs {
				lo, hi, err := spec.Box(X[s*in:(s+1)*in], eps)
				if err == nil {
					var C []float64
					if C, err = spec.Margin(y[s], k); err == nil {
						var res *crown.Result
						if res, err = crown.Bound(ctx, net, lo, hi, C, crown.Options{Method: crown.CROWN}); err == nil {
							for l := range res.PreLower {
								for i, lb := range res.PreLower[l] {
									if lb < 0 && res.PreUpper[l][i] > 0 {
										tallies[w][l][i]++
									}
								}
							}
						}
					}
				}
				if err != nil {
					errs[w] = fmt.Errorf("calibration sample %d: %w", s, err)
					return
				}
			}
		}(w)
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return nil, err
		}
	}
	total := tallies[0]
	for _, t := range tallies[1:] {
		for l := range t {
			for i, v := range t[l] {
				total[l][i] += v
			}
		}
	}
	return total, nil
}
