// Package worker is the browser worker's protocol and request handler, in plain Go
// so that it is tested natively: versioned JSON messages (Request, Response) that load
// a model and samples, bound samples (IBP, CROWN, α-CROWN) with one progress message
// each, evaluate, verify one sample completely (core/bab, optionally a share of its
// margin rows) and graft a model. Errors, including panics, come back as messages.
// The js/wasm entry (package main in wasm/) only moves bytes between JavaScript and
// Handle.
package worker
