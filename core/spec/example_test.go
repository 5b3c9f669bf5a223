package spec_test

import (
	"fmt"
	"strings"

	"github.com/graftcert/graftcert/core/spec"
)

// The classification spec of a 3-class model for a sample labelled 1.
func ExampleMargin() {
	lo, hi, _ := spec.Box([]float64{0.1, 0.5, 0.95}, 0.1)
	C, _ := spec.Margin(1, 3)
	fmt.Println(lo, hi)
	fmt.Println(C[0:3], C[3:6])
	// Output:
	// [0 0.4 0.85] [0.2 0.6 1]
	// [-1 1 0] [0 1 -1]
}

// A property with a disjunction over two input boxes, as in ACAS Xu property 6.
func ExampleParseVNNLIB() {
	src := `
(declare-const X_0 Real)
(declare-const Y_0 Real)
(declare-const Y_1 Real)
(assert (or (and (>= X_0 -1) (<= X_0 0))
            (and (>= X_0 1) (<= X_0 2))))
(assert (or (<= Y_0 Y_1) (>= Y_0 10)))`
	v, err := spec.ParseVNNLIB(strings.NewReader(src), 1, 2)
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, g := range v.Groups() {
		fmt.Printf("X_0 in [%g, %g]:", g.Lo[0], g.Hi[0])
		for _, rows := range g.Out {
			fmt.Printf(" %v", rows)
		}
		fmt.Println()
	}
	fmt.Print(spec.FormatCounterexample([]float64{1.5}, []float64{11, 3}))
	// Output:
	// X_0 in [-1, 0]: [{[1 -1] 0}] [{[-1 0] -10}]
	// X_0 in [1, 2]: [{[1 -1] 0}] [{[-1 0] -10}]
	// ((X_0 1.5)
	//  (Y_0 11)
	//  (Y_1 3))
}
