// Package bab is graftcert's complete verifier: it decides a VNNLIB property or the
// robustness of a classified sample, soundly, within a budget. It first searches for a
// counterexample with a projected-gradient attack, bounds the property with α-CROWN,
// and then runs branch and bound — over ReLU splits with β-CROWN bounds (core/crown's
// SplitSolver), or, for networks with few inputs, over input-box splits with CROWN
// (output slopes optimised on boxes CROWN leaves open, and short attacks inside the
// boxes whose sampled points come closest to a violation: deep, narrow counterexamples
// that a whole-box attack steps over) — until every subdomain is proven, a counterexample is confirmed, or the budget runs
// out. Grafted (linear) neurons are never split. Every counterexample is confirmed by
// the network's own forward pass before it is reported, and "unsat" is only returned
// when every leaf has a sound positive bound. Several runs (the browser's Web Workers)
// can share one hard problem's branch and bound through Options.Shard.
//
// With Options.Refine (the CLI's default), a ReLU-split problem that a short first
// branch and bound does not settle gets its intermediate bounds tightened before the
// real search: each activation layer after the first, in order, is bounded again on
// the truncated network, and every neuron left unstable gets a small branch and bound
// on its lower and on its upper bound (refine.go). This plays the part of
// α,β-CROWN's MIP refinement ("bab-refine"), with graftcert's own bounds instead of a
// MIP solver: a tighter, more stable set of intermediate bounds makes the output bound
// of every later subdomain tighter.
package bab
