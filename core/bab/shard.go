package bab

import (
	"cmp"
	"encoding/binary"
	"fmt"
	"hash/fnv"
	"slices"

	"github.com/graftcert/graftcert/core/crown"
)

// shardSpread·Count is the size of frontier a sharded ReLU-split run waits for before
// it shares the domains out. Hardness concentrates in few subtrees: with 4 domains
// per shard one shard got 96% of a sample's work (graft50 sample 9 at 0.026), with 16
// the largest share was about 60% on the samples measured; larger frontiers balance
// no better and make every shard repeat whole small trees (a conjunction whose tree
// never reaches the frontier is solved by every shard).
const shardSpread = 16

func (s Shard) validate() error {
	if s.Count <= 1 {
		if s.Index != 0 {
			return fmt.Errorf("bab: shard index %d without sharding (count %d)", s.Index, s.Count)
		}
		return nil
	}
	if s.Index < 0 || s.Index >= s.Count {
		return fmt.Errorf("bab: shard index %d outside [0, %d)", s.Index, s.Count)
	}
	return nil
}

// sharded reports whether this run is one shard of several.
func (r *runner) sharded() bool { return r.o.Shard.Count > 1 }

// frontierSize is the number of open ReLU-split domains at which the frontier is
// shared out; 0 means never.
func (r *runner) frontierSize() int {
	spread := shardSpread
	if r.o.testSpread > 0 {
		spread = r.o.testSpread
	}
	switch {
	case r.sharded():
		return spread * r.o.Shard.Count
	case r.o.onShare != nil && r.o.testFrontier > 1:
		return spread * r.o.testFrontier
	}
	return 0
}

// shareFrontier returns a queue holding this shard's share of q's domains, the
// common frontier. The domains are ordered by bound, lowest (hardest) first, ties in
// tree order (split sequences compared lexicographically), and dealt out like cards
// in a snake, 0 1 … n−1 n−1 … 1 0 0 1 …, so every shard gets hard and easy ones. Every
// shard computes the same bounds bit for bit (same code, same batches, no clock), so
// the order is common; the fingerprint hashes the frontier in this order, and shards
// that disagree show it.
func (r *runner) shareFrontier(q *queue[*crown.Domain]) *queue[*crown.Domain] {
	all := slices.Clone(q.items)
	slices.SortFunc(all, func(a, b *crown.Domain) int {
		if c := cmp.Compare(a.Value(), b.Value()); c != 0 {
			return c
		}
		return compareSplits(a.Splits, b.Splits)
	})
	var mine []*crown.Domain
	for i, d := range all {
		if dealTo(i, r.o.Shard.Count) == r.o.Shard.Index {
			mine = append(mine, d)
		}
	}
	out := newQueue(q.value, q.bytes)
	out.reverse = q.reverse
	for _, d := range mine {
		out.push(d)
	}
	r.noteShare(len(all), len(mine), func(h []byte) []byte {
		for _, d := range all {
			h = binary.AppendUvarint(h, uint64(len(d.Splits)))
			for _, s := range d.Splits {
				h = binary.AppendUvarint(h, uint64(s.Layer))
				h = binary.AppendUvarint(h, uint64(s.Neuron))
				if s.Active {
					h = append(h, 1)
				} else {
					h = append(h, 0)
				}
			}
		}
		return h
	})
	if r.o.onShare != nil {
		r.o.onShare(all, mine)
	}
	return out
}

// dealTo is the shard that gets the i-th domain of the ordered frontier.
func dealTo(i, count int) int {
	count = max(count, 1)
	k := i % (2 * count)
	if k >= count {
		k = 2*count - 1 - k
	}
	return k
}

// compareSplits orders split sequences lexicographically (layer, neuron, inactive
// before active), shorter prefixes first.
func compareSplits(a, b []crown.Split) int {
	for i := 0; i < min(len(a), len(b)); i++ {
		x, y := a[i], b[i]
		switch {
		case x.Layer != y.Layer:
			return x.Layer - y.Layer
		case x.Neuron != y.Neuron:
			return x.Neuron - y.Neuron
		case x.Active != y.Active:
			if y.Active {
				return -1
			}
			return 1
		}
	}
	return len(a) - len(b)
}

// inputShare returns this shard's piece of p's box: the widest side (the first of
// equal ones) cut into Count equal pieces. Neighbouring pieces share their cut, so the
// pieces cover the box.
func (r *runner) inputShare(p *problem) *problem {
	n, k := r.o.Shard.Count, r.o.Shard.Index
	dim := 0
	for i := range p.lo {
		if p.hi[i]-p.lo[i] > p.hi[dim]-p.lo[dim] {
			dim = i
		}
	}
	cut := func(j int) float64 {
		switch j {
		case 0:
			return p.lo[dim]
		case n:
			return p.hi[dim]
		}
		return p.lo[dim] + (p.hi[dim]-p.lo[dim])*float64(j)/float64(n)
	}
	lo, hi := slices.Clone(p.lo), slices.Clone(p.hi)
	lo[dim], hi[dim] = cut(k), cut(k+1)
	r.noteShare(n, 1, func(h []byte) []byte {
		h = binary.AppendUvarint(h, uint64(dim))
		return binary.AppendUvarint(h, uint64(n))
	})
	return &problem{lo: lo, hi: hi, disj: p.disj}
}

// noteShare counts a shared frontier in the statistics and folds its description
// (appended to a buffer by describe) into the fingerprint.
func (r *runner) noteShare(frontier, share int, describe func([]byte) []byte) {
	st := r.stats.Shard
	if st == nil {
		return
	}
	st.Frontiers++
	st.Frontier += frontier
	st.Share += share
	h := fnv.New64a()
	h.Write([]byte(st.Fingerprint))
	h.Write(describe(nil))
	st.Fingerprint = fmt.Sprintf("%016x", h.Sum64())
}
