package demo

import (
	"bytes"
	"os"
	"reflect"
	"testing"
)

func TestDatasets(t *testing.T) {
	if got := Datasets(); !reflect.DeepEqual(got, []string{"cifar", "mnist"}) {
		t.Errorf("Datasets() = %v", got)
	}
	x, y, err := Dataset("mnist")
	if err != nil {
		t.Fatal(err)
	}
	wx, _ := os.ReadFile("mnist_X.npy")
	wy, _ := os.ReadFile("mnist_y.npy")
	if !bytes.Equal(x, wx) || !bytes.Equal(y, wy) {
		t.Error("embedded mnist set differs from the files")
	}
	for _, bad := range []string{"", "mnist_X", "../demo/mnist", "mnist.npy", "svhn", "train/mnist_train"} {
		if _, _, err := Dataset(bad); err == nil {
			t.Errorf("Dataset(%q) succeeded", bad)
		}
	}
}
