package nn

import (
	"fmt"
	"math"
)

// Layer is one operator of a sequential network. Setup is called once by New with the
// per-sample input shape; it validates the layer against it and returns the output
// shape. Forward maps a batch of n samples stored contiguously (n*InSize values) into
// out (n*OutSize values); in and out never alias.
type Layer interface {
	// Name is the ONNX node name (or a generated one); errors and reports use it.
	Name() string
	// Kind is the operator's short type name, e.g. "Dense" or "Conv2d".
	Kind() string
	Setup(in Shape) (Shape, error)
	Forward(in, out []float64, n int)
	// Params lists the layer's parameter tensors (weights first), for counting,
	// validation and training. Layers without parameters return nil.
	Params() [][]float64
}

// Activation is implemented by the piecewise-linear activation layers (ReLU and
// MaskedReLU): the neurons a verifier has to relax or split.
type Activation interface {
	Layer
	// Neurons is the number of activation units (the per-sample size).
	Neurons() int
}

func checkFinite(name string, what string, v []float64) error {
	for i, x := range v {
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return fmt.Errorf("node %q: %s[%d] is %v", name, what, i, x)
		}
	}
	return nil
}
