package bab

import (
	"runtime"
	"time"

	"github.com/graftcert/graftcert/core/crown"
)

// Mode selects the branching variable.
type Mode int

const (
	// Auto splits the input box when the network has at most Options.InputSplitDims
	// inputs and ReLUs otherwise.
	Auto Mode = iota
	// InputSplit bisects the input box (CROWN bounds per box).
	InputSplit
	// ReLUSplit splits unstable neurons (β-CROWN bounds per subdomain).
	ReLUSplit
)

// AttackOptions configures the projected-gradient attack.
type AttackOptions struct {
	// Restarts per input box (default 50; the box centre and, for few inputs, its
	// corners are among the starting points, the rest are uniform random).
	Restarts int
	// Steps per restart (default 100); the step is 2.5·radius/Steps per coordinate.
	Steps int
	// Skip disables the attack.
	Skip bool

	// part of parts: a sharded run attacks with its contiguous part of the restarts.
	part, parts int
}

// Options configures a verification. The zero value takes every default.
type Options struct {
	// Timeout bounds the wall time (0: none beyond the context's deadline).
	Timeout time.Duration
	// MaxDomains stops branch and bound (verdict unknown) after that many bounded
	// subdomains (0: no limit).
	MaxDomains int
	// Seed drives every random choice (attack starts).
	Seed   uint64
	Attack AttackOptions
	// Mode picks input or ReLU splitting; InputSplitDims is Auto's threshold
	// (default 10).
	Mode           Mode
	InputSplitDims int
	// BatchSize is the number of subdomains branched per round (default 64 for ReLU
	// splits, 256 for input splits).
	BatchSize int
	// RootIterations of α-CROWN at the root (default 50).
	RootIterations int
	// Beta configures the β-CROWN optimisation and the branching heuristic.
	Beta crown.BetaOptions
	// Workers is the number of goroutines (default GOMAXPROCS).
	Workers int
	// MemoryLimit caps the bytes held by queued subdomains (default 2 GiB): past half
	// of it the queue is worked best-bound first to shrink it; past it the verdict is
	// unknown.
	MemoryLimit int64
	// AttackFirst runs the attack before the root bound (VNN-COMP's habit, where many
	// instances are sat); otherwise the root bound runs first and the attack only when
	// it does not prove the property.
	AttackFirst bool
	// GiveUpEarly ends a ReLU-split branch and bound (verdict unknown) once it is
	// hopeless: a quarter of its time is spent, no subdomain has been proven, and the
	// global lower bound has closed less than half of its gap. VerifySample sets it.
	GiveUpEarly bool
	// Refine is the share of the time budget (0 to 1; 0: off) spent, when the root
	// bound fails on a ReLU-split problem, tightening the intermediate bounds of every
	// activation layer after the first by a small branch and bound per unstable neuron
	// (see refine.go) before the main branch and bound starts. It needs a timeout.
	Refine float64
	// RefineDomains caps the subdomains of each neuron's branch and bound (default
	// 64).
	RefineDomains int
	// RefineAfter is the longest plain branch and bound run before refining (it gets
	// a tenth of the time budget up to this; default 5 s): problems it settles do not
	// pay for the refinement.
	RefineAfter time.Duration
	// Progress, when set, is called after every branching round.
	Progress func(Progress)
	// Shard makes this run one of Shard.Count runs that share the problem (the
	// browser's Web Workers on one hard sample); see Shard. The zero value, or a Count
	// of 1, runs the whole problem.
	Shard Shard

	// For tests: onShare sees every frontier shared out, all its domains in the
	// common order and this shard's share; with it, an unsharded run reports (and
	// keeps whole) the frontier a testFrontier-way sharded run would share.
	// testSpread replaces shardSpread, so that tiny trees get shared too.
	onShare      func(all, mine []*crown.Domain)
	testFrontier int
	testSpread   int
}

// Shard names one of Count runs of the same verification that split its branch and
// bound between them. Every run does the same deterministic work up to a common
// frontier of open subdomains (the ReLU-split tree grown until it has at least
// 16·Count open domains; for input splitting, the box cut into Count pieces along its
// widest side), keeps its deal of the domains (ordered by bound and dealt out in
// turn, see shareFrontier) and searches only those. Unsat then means "this share is
// proven", and the problem is proven when every shard's share is (and all report the
// same Stats.Shard.Fingerprint); Sat carries a confirmed counterexample and decides
// the problem alone. A problem decided before the frontier is reached gets the same
// whole answer from every shard. The attack's restarts are shared out too (each
// shard runs its part of the same starting points). All shards must run with the same
// options (Workers included: it decides how domains are batched).
type Shard struct {
	Index, Count int
}

func (o Options) withDefaults() Options {
	if o.Attack.Restarts <= 0 {
		o.Attack.Restarts = 50
	}
	if o.Attack.Steps <= 0 {
		o.Attack.Steps = 100
	}
	if o.InputSplitDims <= 0 {
		o.InputSplitDims = 10
	}
	if o.RootIterations <= 0 {
		o.RootIterations = 50
	}
	if o.Workers <= 0 {
		o.Workers = runtime.GOMAXPROCS(0)
	}
	if o.MemoryLimit <= 0 {
		o.MemoryLimit = 2 << 30
	}
	if o.RefineDomains <= 0 {
		o.RefineDomains = 64
	}
	if o.RefineAfter <= 0 {
		o.RefineAfter = 5 * time.Second
	}
	o.Beta.Workers = o.Workers
	return o
}
