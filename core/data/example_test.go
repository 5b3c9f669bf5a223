package data_test

import (
	"bytes"
	"fmt"

	"github.com/graftcert/graftcert/core/data"
)

func ExampleWriteNPY() {
	labels := &data.Array{Shape: []int{3}, DType: "<i8", Data: []float64{7, 2, 1}}
	var buf bytes.Buffer
	if err := data.WriteNPY(&buf, labels); err != nil {
		fmt.Println(err)
		return
	}
	a, err := data.ReadNPY(&buf)
	if err != nil {
		fmt.Println(err)
		return
	}
	y, _ := a.Ints()
	fmt.Println(a.DType, a.Shape, y)
	// Output: <i8 [3] [7 2 1]
}
