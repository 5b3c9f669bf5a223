// Package train fits the parameters of an nn.Network: reverse-mode gradients for every
// layer type (Dense, Conv2d, ReLU, MaskedReLU, Affine, Reshape), cross-entropy, SGD with
// momentum, weight decay and a cosine schedule, and the adversarial training recipe of
// the Linearity Grafting paper — FGSM from a random start plus the GradAlign
// regulariser, differentiated exactly by double backpropagation.
//
// Training spreads each mini-batch over goroutines in fixed-size chunks whose gradients
// are summed in chunk order, so a seeded run gives bit-identical weights whatever the
// number of workers. The package also offers single-sample input gradients
// (InputGradient, ForwardGrad) for attacks such as PGD.
package train
