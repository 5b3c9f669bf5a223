package crown

import "sync"

// Rows are independent, so a start node's rows can be bounded on several goroutines.
// Only the plain CROWN passes use this (no tape); α-CROWN and certification of many
// samples get their parallelism from running samples concurrently instead.

// A part gets at least minParallelWork row values of the widest layer its rows cross
// (and at least 8 rows): 64 rows, the earlier rule, left the 112 rows of the first
// Dense layer above cifar_cnn_a_adv's convolutions (the largest pass, rows 4096 wide)
// on one goroutine, and two threads bounded a sample no faster than one.
const minParallelWork = 1 << 15

// parallelIntermediate bounds the rows of start node k, split over e.threads goroutines.
func (e *engine) parallelIntermediate(k int, idx []int) []float64 {
	n := len(idx)
	w := 1
	for j := e.first; j <= k; j++ {
		w = max(w, len(e.boxLo[j]))
	}
	parts := min(e.threads, n/4, 2*n*w/minParallelWork)
	parts = max(parts, 1)
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
