package crown_test

import (
	"context"
	"fmt"

	"github.com/graftcert/graftcert/core/crown"
	"github.com/graftcert/graftcert/core/nn"
)

// Bounds of auto_LiRPA's toy network (examples/simple/toy.py) over x ∈ [-1,2]×[-2,1];
// the exact range is [-2, 1].
func ExampleBound() {
	net, err := nn.New(nn.Shape{2}, []nn.Layer{
		&nn.Dense{NodeName: "fc1", In: 2, Out: 2, W: []float64{1, -1, 2, -1}},
		&nn.ReLU{NodeName: "relu"},
		&nn.Dense{NodeName: "fc2", In: 2, Out: 1, W: []float64{1, -1}},
	})
	if err != nil {
		panic(err)
	}
	lo, hi := []float64{-1, -2}, []float64{2, 1}
	for _, m := range []crown.Method{crown.IBP, crown.CROWN, crown.AlphaCROWN} {
		r, err := crown.Bound(context.Background(), net, lo, hi, nil, crown.Options{Method: m, Upper: true})
		if err != nil {
			panic(err)
		}
		fmt.Printf("%-11s [%.3f, %.3f]\n", m, r.Lower[0], r.Upper[0])
	}
	// Output:
	// ibp         [-6.000, 4.000]
	// crown       [-3.000, 3.000]
	// alpha-crown [-3.000, 2.000]
}
