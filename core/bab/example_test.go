package bab_test

import (
	"context"
	"fmt"

	"github.com/graftcert/graftcert/core/bab"
	"github.com/graftcert/graftcert/core/nn"
	"github.com/graftcert/graftcert/core/spec"
)

// The toy network of auto_LiRPA, f(x) = relu(x0 − x1) − relu(2x0 − x1) over
// [−1, 2] × [−2, 1], takes values in exactly [−2, 1]: the output never drops to −2.5,
// but it does drop to −1.5.
func ExampleVerify() {
	net, err := nn.New(nn.Shape{2}, []nn.Layer{
		&nn.Dense{NodeName: "fc1", In: 2, Out: 2, W: []float64{1, -1, 2, -1}},
		&nn.ReLU{NodeName: "relu"},
		&nn.Dense{NodeName: "fc2", In: 2, Out: 1, W: []float64{1, -1}},
	})
	if err != nil {
		panic(err)
	}
	for _, bound := range []string{"-2.5", "-1.5"} {
		v, err := spec.ParseVNNLIBBytes([]byte(`
			(declare-const X_0 Real) (declare-const X_1 Real) (declare-const Y_0 Real)
			(assert (>= X_0 -1)) (assert (<= X_0 2)) (assert (>= X_1 -2)) (assert (<= X_1 1))
			(assert (<= Y_0 `+bound+`))`), 2, 1)
		if err != nil {
			panic(err)
		}
		rep, err := bab.Verify(context.Background(), net, v, bab.Options{Seed: 1})
		if err != nil {
			panic(err)
		}
		fmt.Printf("Y_0 ≤ %s: %s", bound, rep.Result)
		if c := rep.Counterexample; c != nil {
			fmt.Printf(", confirmed: %v", v.IsCounterexample(c.X, net.Forward(c.X), 0))
		}
		fmt.Println()
	}
	// Output:
	// Y_0 ≤ -2.5: unsat
	// Y_0 ≤ -1.5: sat, confirmed: true
}
