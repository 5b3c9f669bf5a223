package crown

import (
	"math/rand/v2"
	"sort"
	"testing"
)

// TestTopKMatchesStableSort checks the shortlist's partial ranking against a full
// stable sort, ties included (scores drawn from a few values).
func TestTopKMatchesStableSort(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for trial := 0; trial < 500; trial++ {
		n := rng.IntN(40)
		k := rng.IntN(6)
		cs := make([]candidate, n)
		for i := range cs {
			cs[i] = candidate{p: i % 3, i: i, score: float64(rng.IntN(7)) - 3}
		}
		for _, desc := range []bool{true, false} {
			before := func(a, b float64) bool { return a < b }
			if desc {
				before = func(a, b float64) bool { return a > b }
			}
			top := newTopK(k, before)
			for _, c := range cs {
				top.add(c)
			}
			want := append([]candidate(nil), cs...)
			sort.SliceStable(want, func(a, b int) bool { return before(want[a].score, want[b].score) })
			want = want[:min(k, len(want))]
			if len(top.items) != len(want) {
				t.Fatalf("trial %d: %d kept, want %d", trial, len(top.items), len(want))
			}
			for i := range want {
				if top.items[i] != want[i] {
					t.Fatalf("trial %d desc=%v: item %d is %+v, want %+v", trial, desc, i, top.items[i], want[i])
				}
			}
		}
	}
}
