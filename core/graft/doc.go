// Package graft implements Linearity Grafting (Chen et al., ICML 2022): it scores every
// ReLU neuron of a network over a calibration set, selects the least significant ones
// and replaces them by a linear function a·x + b (nn.MaskedReLU, the paper's
// LinearMaskedRelu), which verifiers bound exactly. Pruning, a = b = 0, is the special
// case the paper compares against. Fine-tuning the grafted network is core/train's job
// (train.FineTune with train.DefaultFineTune).
package graft
