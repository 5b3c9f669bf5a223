package onnx_test

import (
	"fmt"

	"github.com/graftcert/graftcert/core/nn"
	"github.com/graftcert/graftcert/core/onnx"
)

// Export auto_LiRPA's toy network and read it back.
func ExampleEncode() {
	net, err := nn.New(nn.Shape{2}, []nn.Layer{
		&nn.Dense{NodeName: "fc1", In: 2, Out: 2, W: []float64{1, -1, 2, -1}},
		&nn.ReLU{NodeName: "relu"},
		&nn.Dense{NodeName: "fc2", In: 2, Out: 1, W: []float64{1, -1}},
	})
	if err != nil {
		panic(err)
	}
	b, err := onnx.Encode(net)
	if err != nil {
		panic(err)
	}
	back, err := onnx.Decode(b)
	if err != nil {
		panic(err)
	}
	info, _ := onnx.Inspect(b)
	fmt.Println(info.Ops["Gemm"], "Gemm,", info.Ops["Relu"], "Relu")
	fmt.Println(back.Forward([]float64{2, -2}))
	// Output:
	// 2 Gemm, 1 Relu
	// [-2]
}

// Decode names the node it cannot handle.
func ExampleDecode_error() {
	_, err := onnx.Decode([]byte("not an onnx file"))
	fmt.Println(err != nil)
	// Output: true
}
