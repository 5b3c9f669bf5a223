// Package certify is the classification certification job that every shell (CLI,
// browser worker, edge service) runs: for each sample, the prediction, the eps box,
// the margin specification and its bounds by the chosen method, with the report
// structure that the CLI prints as JSON. Keeping it here keeps the three shells'
// answers identical.
package certify
