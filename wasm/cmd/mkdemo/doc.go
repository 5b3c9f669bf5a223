// Command mkdemo writes the MNIST training subset that the page's Graft panel
// fine-tunes on: the first N (default 2000) images of the MNIST training set, read
// with core/data from the GoMNIST module's bundled IDX files, as
// static/demo/train/mnist_train_X.npy (float32, N×1×28×28, pixels in [0,1]) and
// static/demo/train/mnist_train_y.npy (int64 labels). The files are committed; `make
// web-demo` regenerates them, and the package test checks they are what this program
// writes.
package main
