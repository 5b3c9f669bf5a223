// Package spec says what is to be verified: an input set and an output property, in the
// two forms graftcert meets.
//
//   - Classification robustness (the paper's setting): the L∞ box around a sample,
//     clipped to the pixel range, and the margin matrix C whose rows e_label − e_j must
//     all be positive on f(x) (Box, Margin).
//   - VNN-COMP specifications in VNNLIB: parsed and normalised into a disjunction of
//     cases, each an input box and a conjunction of linear output rows Σ C_j·Y_j ≤ D
//     that together describe the unsafe set (ParseVNNLIB), plus the competition's
//     counterexample format (FormatCounterexample, ParseCounterexample).
//
// The package only describes properties; core/crown and core/bab decide them.
package spec
