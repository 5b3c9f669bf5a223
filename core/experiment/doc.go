// Package experiment runs the Linearity Grafting paper's comparison as a library, so that
// every shell (the graftcert CLI, tests) runs the same pipeline: train an adversarially
// trained baseline, score its neurons once, graft or prune the least significant fraction
// at each ratio, fine-tune, then measure every model — clean and PGD accuracy, verified
// accuracy under CROWN, α-CROWN and (when a complete verifier is plugged in) branch and
// bound, unstable neurons per layer, margin bounds and verification time — and render the
// result as a Markdown report with SVG figures.
//
// Every model is written as ONNX into the work directory as soon as it exists, with the
// evaluation of each model beside it as JSON, so an interrupted run resumes where it
// stopped (Config.Resume) and a finished one can be re-rendered without recomputation
// (Render).
package experiment
