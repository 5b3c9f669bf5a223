// Package nn is graftcert's network model: a sequence of typed layers with float64
// weights, per-sample shapes (batch axis excluded, NCHW order) and a forward pass.
//
// Every layer a verifier needs to reason about is its own concrete type (Dense,
// Conv2d, ReLU, MaskedReLU, Affine, Reshape), so the bound engine in core/crown and
// the trainer in core/train dispatch on the type, and nn itself stays free of any
// verification logic. A Network is built once with New, which infers and checks every
// shape and rejects non-finite parameters; after that it is read-only and safe for
// concurrent use.
package nn
