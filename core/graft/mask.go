package graft

import (
	"fmt"
	"math"
	"sort"
)

// Mask selects the neurons to graft: the fraction ratio of all neurons with the lowest
// scores, ranked globally across layers (the paper's default) or, with perLayer, the
// fraction ratio of each layer. The number selected is round(ratio·N) (halves round up)
// of the N neurons ranked together; the paper's code keeps int((1−ratio)·N) neurons,
// which differs by at most one neuron. Ties are broken deterministically: equal scores
// are grafted in order of layer, then neuron index. mask[l][i] true means neuron i of
// activation layer l is grafted.
func Mask(scores [][]float64, ratio float64, perLayer bool) ([][]bool, error) {
	if math.IsNaN(ratio) || ratio < 0 || ratio > 1 {
		return nil, fmt.Errorf("graft: ratio %v outside [0,1]", ratio)
	}
	type ref struct {
		s    float64
		l, i int
	}
	masks := make([][]bool, len(scores))
	var all []ref
	for l, sc := range scores {
		masks[l] = make([]bool, len(sc))
		for i, s := range sc {
			if math.IsNaN(s) {
				return nil, fmt.Errorf("graft: score of activation layer %d neuron %d is NaN", l, i)
			}
			all = append(all, ref{s, l, i})
		}
	}
	pick := func(rs []ref) {
		// Stable sort on the score keeps (layer, index) order among equal scores.
		sort.SliceStable(rs, func(a, b int) bool { return rs[a].s < rs[b].s })
		k := int(math.Floor(ratio*float64(len(rs)) + 0.5))
		for _, r := range rs[:k] {
			masks[r.l][r.i] = true
		}
	}
	if perLayer {
		off := 0
		for _, sc := range scores {
			pick(all[off : off+len(sc)])
			off += len(sc)
		}
	} else {
		pick(all)
	}
	return masks, nil
}

// Count returns how many neurons masks grafts, and how many it covers.
func Count(masks [][]bool) (grafted, total int) {
	for _, m := range masks {
		for _, g := range m {
			if g {
				grafted++
			}
		}
		total += len(m)
	}
	return grafted, total
}
