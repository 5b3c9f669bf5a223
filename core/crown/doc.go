// Package crown computes sound bounds on a linear specification C·f(x) of a network's
// output over an input box: interval bound propagation (IBP), CROWN (backward linear
// relaxation, every intermediate layer bounded by CROWN too) and α-CROWN (CROWN with
// the lower slopes of unstable ReLUs optimised by gradient ascent, the gradients
// computed by an adjoint pass through the backward bound computation).
//
// The design follows auto_LiRPA: one operator type per layer kind (ops.go) knows its
// interval propagation and how to carry a linear bound backwards through itself; the
// engine only orders and dispatches. Grafted neurons of an nn.MaskedReLU are linear and
// bounded exactly by slope·x+bias, never relaxed.
//
// Every bound is a lower bound in disguise: an upper bound of a·y is minus the lower
// bound of (−a)·y, so the backward pass only ever propagates "lower-bound rows", and
// lower and upper bounds of a layer are one batch of rows.
//
// Soundness against floating point: every concretised bound is widened by a relative
// margin (see safety) that dominates the rounding error of float64 accumulation over
// the network sizes graftcert accepts; the models themselves are float32, so the
// verified statement is about the real-valued network with those float32 weights.
package crown
