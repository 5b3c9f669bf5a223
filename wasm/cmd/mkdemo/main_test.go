package main

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// The committed training subset is exactly what mkdemo writes from MNIST.
func TestBundledSubsetIsCurrent(t *testing.T) {
	dir := t.TempDir()
	if err := write(dir, 2000); err != nil {
		t.Skipf("MNIST not available: %v", err)
	}
	for _, f := range []string{"mnist_train_X.npy", "mnist_train_y.npy"} {
		want, err := os.ReadFile(filepath.Join(dir, f))
		if err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(filepath.Join("..", "..", "..", "static", "demo", "train", f))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("static/demo/train/%s differs from mkdemo's output: run make web-demo", f)
		}
	}
}
