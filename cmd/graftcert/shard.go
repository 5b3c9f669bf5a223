package main

import (
	"flag"
	"fmt"
	"strconv"
	"strings"
)

// shardSpec is the value of --shard i/n: this process does shard i (0-based) of n.
//
// The split is round-robin over the positions of the work list the command would
// process unsharded (the samples start … start+count−1 for bounds and verify, the rows
// of instances.csv for vnncomp): the item at position k belongs to shard k mod n. Every
// item is in exactly one shard, shards differ in size by at most one, and neighbouring
// samples (often of similar difficulty) are spread over the shards. `graftcert merge`
// puts the shards' outputs back into the unsharded order.
//
// The zero value (no --shard) means one shard holding everything.
type shardSpec struct{ I, N int }

// String implements flag.Value.
func (s *shardSpec) String() string {
	if s == nil || s.N <= 1 {
		return ""
	}
	return fmt.Sprintf("%d/%d", s.I, s.N)
}

// Set implements flag.Value: "i/n" with 0 ≤ i < n.
func (s *shardSpec) Set(v string) error {
	a, b, ok := strings.Cut(v, "/")
	i, err1 := strconv.Atoi(strings.TrimSpace(a))
	n, err2 := strconv.Atoi(strings.TrimSpace(b))
	if !ok || err1 != nil || err2 != nil || n < 1 || i < 0 || i >= n {
		return fmt.Errorf("want i/n with 0 ≤ i < n, e.g. 0/4 (got %q)", v)
	}
	s.I, s.N = i, n
	return nil
}

// owns reports whether the item at position k of the unsharded work list is this
// shard's.
func (s shardSpec) owns(k int) bool { return s.N <= 1 || k%s.N == s.I }

// shardFlag registers --shard on fs. Commands call it beside their other flags and
// pass the list they would process unsharded through shardItems.
func shardFlag(fs *flag.FlagSet) *shardSpec {
	s := &shardSpec{}
	fs.Var(s, "shard", "process only shard `i/n` of the work (item k goes to shard k mod n); combine outputs with graftcert merge")
	return s
}

// shardItems returns the items this shard owns, in their original order.
func shardItems[T any](s shardSpec, items []T) []T {
	if s.N <= 1 {
		return items
	}
	out := make([]T, 0, (len(items)+s.N-1)/s.N)
	for k, it := range items {
		if s.owns(k) {
			out = append(out, it)
		}
	}
	return out
}
