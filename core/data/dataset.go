package data

import (
	"fmt"
	"math"
)

// LoadSamples reads a data set stored as two .npy files: xPath with N samples along
// the leading axis (e.g. N×C×H×W float32 pixels) and yPath with N integer labels (shape
// (N,) or (N, 1)). It checks that the counts agree, that every sample value is finite
// and every label an integer ≥ 0; whether the labels are below the model's class count
// is for the caller to check with CheckLabels.
func LoadSamples(xPath, yPath string) (X *Array, labels []int, err error) {
	X, err = ReadNPYFile(xPath)
	if err != nil {
		return nil, nil, err
	}
	Y, err := ReadNPYFile(yPath)
	if err != nil {
		return nil, nil, err
	}
	labels, err = checkSamples(X, Y)
	if err != nil {
		return nil, nil, fmt.Errorf("%s, %s: %w", xPath, yPath, err)
	}
	return X, labels, nil
}

// LoadSamplesBytes is LoadSamples over .npy files held in memory (the browser and edge
// builds receive them as uploads).
func LoadSamplesBytes(x, y []byte) (X *Array, labels []int, err error) {
	X, err = ReadNPYBytes(x)
	if err != nil {
		return nil, nil, fmt.Errorf("samples: %w", err)
	}
	Y, err := ReadNPYBytes(y)
	if err != nil {
		return nil, nil, fmt.Errorf("labels: %w", err)
	}
	if labels, err = checkSamples(X, Y); err != nil {
		return nil, nil, err
	}
	return X, labels, nil
}

func checkSamples(X, Y *Array) ([]int, error) {
	if len(X.Shape) == 0 {
		return nil, fmt.Errorf("data: %w: samples are a 0-d array, want a leading sample axis", ErrShape)
	}
	if !(len(Y.Shape) == 1 || (len(Y.Shape) == 2 && Y.Shape[1] == 1)) {
		return nil, fmt.Errorf("data: %w: labels have shape %v, want (N,) or (N, 1)", ErrShape, Y.Shape)
	}
	if X.Shape[0] != Y.Shape[0] {
		return nil, fmt.Errorf("data: %w: %d samples but %d labels", ErrShape, X.Shape[0], Y.Shape[0])
	}
	for i, v := range X.Data {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			s := X.SampleSize()
			return nil, fmt.Errorf("data: %w: sample %d element %d is %v", ErrValue, i/s, i%s, v)
		}
	}
	labels, err := Y.Ints()
	if err != nil {
		return nil, fmt.Errorf("labels: %w", err)
	}
	for i, l := range labels {
		if l < 0 {
			return nil, fmt.Errorf("data: %w: label %d is negative (%d)", ErrValue, i, l)
		}
	}
	return labels, nil
}

// CheckLabels reports the first label outside [0, classes).
func CheckLabels(labels []int, classes int) error {
	if classes < 1 {
		return fmt.Errorf("data: %w: %d classes", ErrValue, classes)
	}
	for i, l := range labels {
		if l < 0 || l >= classes {
			return fmt.Errorf("data: %w: label %d is %d, outside [0, %d)", ErrValue, i, l, classes)
		}
	}
	return nil
}
