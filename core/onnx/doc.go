// Package onnx converts between ONNX model files and graftcert's sequential
// nn.Network: Decode reads a ModelProto, Encode writes one.
//
// The protobuf is read field by field with google.golang.org/protobuf/encoding/protowire
// over only the messages the conversion needs (ModelProto, GraphProto, NodeProto,
// AttributeProto, TensorProto, ValueInfoProto/TypeProto, OperatorSetIdProto), so the
// package adds no generated code to the WebAssembly build.
//
// Supported, for opsets MinOpset to MaxOpset of the default domain: Gemm, MatMul (x·W,
// and W·x with a vector x), Add/Sub/Mul/Div by a constant (numpy broadcasting), Conv
// (2-D, group 1, any stride, padding, dilation, auto_pad), Relu, Flatten, Reshape,
// BatchNormalization (inference), Identity, Dropout, Constant, and the paper's
// customOp::LinearMaskedRelu. Weights may be float32, float64, int64 or int32, as
// raw_data or typed fields. Anything else is an error naming the node and the problem.
//
// Shapes: the first axis of a graph input of rank ≥ 2 is the batch axis (symbolic or
// 1) and is dropped from the per-sample shape; a rank-1 input [n] (VNN-COMP test_nano)
// has no batch axis and per-sample shape [n]. Reshape to (1, -1) keeps the leading axis
// as the batch axis, so it reads as a flatten.
//
// Encode writes float32 weights: weights are rounded to float32, and a network with
// float32 weights (any decoded one) survives Decode(Encode(net)) bit for bit.
//
// Inspect, EstimateBytes and NetworkBytes summarise a model and its memory needs, for
// shells that must refuse models too large for them.
package onnx
