package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"

	"github.com/graftcert/graftcert/core/data"
)

func main() {
	dir := flag.String("dir", "static/demo/train", "output `directory`")
	n := flag.Int("n", 2000, "number of training images")
	flag.Parse()
	if err := write(*dir, *n); err != nil {
		fmt.Fprintln(os.Stderr, "mkdemo:", err)
		os.Exit(1)
	}
}

// write writes the first n training images and their labels into dir.
func write(dir string, n int) error {
	X, y, err := data.LoadMNIST("train")
	if err != nil {
		return err
	}
	if n <= 0 || n > len(y) {
		return fmt.Errorf("-n %d outside [1, %d]", n, len(y))
	}
	labels := make([]float64, n)
	for i := range labels {
		labels[i] = float64(y[i])
	}
	xa := &data.Array{Shape: []int{n, 1, data.MNISTRows, data.MNISTCols}, DType: "<f4", Data: X[:n*data.MNISTPixels]}
	ya := &data.Array{Shape: []int{n}, DType: "<i8", Data: labels}
	if err := data.WriteNPYFile(filepath.Join(dir, "mnist_train_X.npy"), xa); err != nil {
		return err
	}
	return data.WriteNPYFile(filepath.Join(dir, "mnist_train_y.npy"), ya)
}
