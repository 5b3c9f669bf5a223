package bab

import (
	"time"
)

// Status is a verdict. Its string is the VNN-COMP result word.
type Status string

// Verdicts: Sat means a counterexample was found and confirmed (the property is
// violated), Unsat that the property was proven, Unknown that the verifier gave up
// (node or memory limit, an unprovable leaf), Timeout that the time budget ran out.
const (
	Sat     Status = "sat"
	Unsat   Status = "unsat"
	Unknown Status = "unknown"
	Timeout Status = "timeout"
)

// Counterexample is an input and the network's output at it.
type Counterexample struct {
	X []float64 `json:"x"`
	Y []float64 `json:"y"`
}

// Stats describes how a verdict was reached.
type Stats struct {
	// Domains counts the subdomains bounded by branch and bound (roots included).
	Domains int `json:"domains"`
	// MaxDepth is the largest number of splits of a bounded subdomain.
	MaxDepth int `json:"max_depth"`
	// Mode is "input-split", "relu-split" or "none" (decided before branching).
	Mode string `json:"mode"`
	// Groups and Disjuncts count the input boxes and the conjunctions over all boxes;
	// ProvenAtRoot how many conjunctions the root bound proved.
	Groups       int `json:"groups"`
	Disjuncts    int `json:"disjuncts"`
	ProvenAtRoot int `json:"proven_at_root"`
	// Found says which stage found the counterexample ("attack", "bab").
	Found string `json:"found,omitempty"`
	// Reason explains an unknown verdict.
	Reason string `json:"reason,omitempty"`
	// BoxAttacks counts the sub-boxes an input-split branch and bound attacked.
	BoxAttacks int `json:"box_attacks,omitempty"`
	// AttackSeconds and BoundSeconds split the run time.
	AttackSeconds float64 `json:"attack_seconds"`
	BoundSeconds  float64 `json:"bound_seconds"`
	// GlobalLower is the smallest bound over the open subdomains when the run ended
	// (positive when proven; absent when no bound was computed).
	GlobalLower *float64 `json:"global_lower,omitempty"`
	// RefineDomains counts the subdomains bounded while refining intermediate bounds
	// (Options.Refine), RefineSeconds the time that took, and RefineStable the neurons
	// it made stable.
	RefineDomains int     `json:"refine_domains,omitempty"`
	RefineSeconds float64 `json:"refine_seconds,omitempty"`
	RefineStable  int     `json:"refine_stable,omitempty"`
	// Shard describes this run's part of a sharded verification (absent unsharded).
	Shard *ShardStats `json:"shard,omitempty"`
}

// ShardStats is what a sharded run (Options.Shard) did with the common frontiers.
type ShardStats struct {
	Index int `json:"index"`
	Count int `json:"count"`
	// Frontiers counts the frontiers shared out (one per input box or conjunction that
	// reached branch and bound; 0: the whole answer was found before any). Frontier is
	// the number of domains in them, Share those this shard kept.
	Frontiers int `json:"frontiers"`
	Frontier  int `json:"frontier"`
	Share     int `json:"share"`
	// Fingerprint hashes the frontiers (every domain's constraints, in order). Shards
	// of one run must report the same value: their shares then partition the same
	// frontiers, and their unsat answers combine into a proof.
	Fingerprint string `json:"fingerprint"`
}

// Report is the result of verifying a VNNLIB property; its JSON is the
// `graftcert verify --vnnlib` contract.
type Report struct {
	Result         Status          `json:"result"`
	Seconds        float64         `json:"seconds"`
	Counterexample *Counterexample `json:"counterexample"`
	Stats          Stats           `json:"stats"`
}

// Sample verdicts of the classification mode.
const (
	Verified      = "verified"
	Falsified     = "falsified"
	Undecided     = "unknown"
	Misclassified = "misclassified"
)

// SampleReport is one sample of a classification run; its JSON is part of the
// `graftcert verify --data` contract.
type SampleReport struct {
	Index          int       `json:"index"`
	Label          int       `json:"label"`
	Pred           int       `json:"pred"`
	Result         string    `json:"result"`
	Seconds        float64   `json:"seconds"`
	Counterexample []float64 `json:"counterexample"`
	// RootVerified reports that the root bound (α-CROWN) alone proved the sample.
	RootVerified bool `json:"-"`
	// Stats of the underlying run (not part of the JSON contract).
	Stats Stats `json:"-"`
}

// ClassReport is a classification run over several samples; verified / total is the
// verified accuracy.
type ClassReport struct {
	Verified      int            `json:"verified"`
	Falsified     int            `json:"falsified"`
	Unknown       int            `json:"unknown"`
	Misclassified int            `json:"misclassified"`
	Total         int            `json:"total"`
	Seconds       float64        `json:"seconds"`
	Samples       []SampleReport `json:"samples"`
}

// Progress is what the progress callback receives during branch and bound.
type Progress struct {
	// Domains is the number of open subdomains in the queue.
	Domains int
	// Bounded counts the subdomains bounded so far.
	Bounded int
	// Lower is the smallest bound over the open subdomains (the global lower bound of
	// the conjunction being proven; positive means proven).
	Lower float64
	// Elapsed is the time since the run started.
	Elapsed time.Duration
}
