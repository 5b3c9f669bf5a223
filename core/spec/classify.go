package spec

import (
	"errors"
	"fmt"
	"math"
)

// ErrArg means an argument is out of its domain (negative eps, label out of range, ...).
var ErrArg = errors.New("invalid argument")

// Box returns the perturbation set of sample x under an L∞ budget eps on the [0,1]
// pixel scale: lo = clamp(x−eps, 0, 1), hi = clamp(x+eps, 0, 1), elementwise. eps may
// be +Inf (the whole pixel range); a negative or NaN eps, or a non-finite x, is an error.
func Box(x []float64, eps float64) (lo, hi []float64, err error) {
	if math.IsNaN(eps) || eps < 0 {
		return nil, nil, fmt.Errorf("spec: %w: eps = %v, want eps ≥ 0", ErrArg, eps)
	}
	lo = make([]float64, len(x))
	hi = make([]float64, len(x))
	for i, v := range x {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return nil, nil, fmt.Errorf("spec: %w: x[%d] = %v", ErrArg, i, v)
		}
		lo[i] = min(max(v-eps, 0), 1)
		hi[i] = min(max(v+eps, 0), 1)
	}
	return lo, hi, nil
}

// Margin returns the margin specification of a classifier with the given label: a
// (classes−1)×classes matrix, row-major, whose rows are e_label − e_j for every
// j ≠ label in increasing j. The sample is robust when every row of C·f(x) is positive
// over the input set. classes must be at least 2 and label in [0, classes).
func Margin(label, classes int) ([]float64, error) {
	if classes < 2 {
		return nil, fmt.Errorf("spec: %w: %d classes, want at least 2", ErrArg, classes)
	}
	if label < 0 || label >= classes {
		return nil, fmt.Errorf("spec: %w: label %d outside [0, %d)", ErrArg, label, classes)
	}
	C := make([]float64, (classes-1)*classes)
	r := 0
	for j := 0; j < classes; j++ {
		if j == label {
			continue
		}
		C[r*classes+label] = 1
		C[r*classes+j] = -1
		r++
	}
	return C, nil
}
