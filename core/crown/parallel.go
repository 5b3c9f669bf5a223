package crown

import "sync"

// Rows are independent, so a start node's rows can be bounded on several goroutines.
// Only the plain CROWN passes use this (no tape); α-CROWN and certification of many
// samples get their parallelism from running samples concurrently instead.

const minParallelRows = 64

// lowerBounds bounds the rows of start node k: splits them over e.threads goroutines.
func (e *engine) parallelIntermediate(k int, idx []int) []float64 {
	n := len(idx)
	parts := min(e.threads, max(1, 2*n/minParallelRows))
	if parts <= 1 {
		return e.intermediate(k, idx, nil, nil)
	}
	// Each part bounds both the lower and the upper rows of its neurons.
	out := make([]float64, 2*n)
	var wg sync.WaitGroup
	for p := 0; p < parts; p++ {
		a, b := p*n/parts, (p+1)*n/parts
		wg.Add(1)
		go func() {
			defer wg.Done()
			lb := e.intermediate(k, idx[a:b], nil, nil)
			m := b - a
			copy(out[a:b], lb[:m])
			copy(out[n+a:n+b], lb[m:])
		}()
	}
	wg.Wait()
	return out
}
