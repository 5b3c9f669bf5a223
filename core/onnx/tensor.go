package onnx

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
)

// TensorProto.DataType values graftcert reads or names in errors.
const (
	dtFloat  = 1
	dtUint8  = 2
	dtInt8   = 3
	dtInt32  = 6
	dtInt64  = 7
	dtDouble = 11
)

var dtypeNames = map[int64]string{
	0: "UNDEFINED", 1: "FLOAT", 2: "UINT8", 3: "INT8", 4: "UINT16", 5: "INT16", 6: "INT32",
	7: "INT64", 8: "STRING", 9: "BOOL", 10: "FLOAT16", 11: "DOUBLE", 12: "UINT32",
	13: "UINT64", 14: "COMPLEX64", 15: "COMPLEX128", 16: "BFLOAT16", 17: "FLOAT8E4M3FN",
	18: "FLOAT8E4M3FNUZ", 19: "FLOAT8E5M2", 20: "FLOAT8E5M2FNUZ", 21: "UINT4", 22: "INT4",
}

func dtypeName(dt int64) string {
	if s, ok := dtypeNames[dt]; ok {
		return s
	}
	return fmt.Sprintf("dtype %d", dt)
}

// MaxTensorElements is the largest element count a tensor may declare. A larger
// product of dims is treated as corrupt rather than attempted.
const MaxTensorElements = 1 << 31

// ErrUnsupported is wrapped by every error about a well-formed model that uses
// something graftcert does not implement (an operator, a data type, an attribute,
// a graph that is not a chain).
var ErrUnsupported = errors.New("unsupported")

// ErrInvalid is wrapped by errors about a model that is inconsistent in itself: sizes
// that do not match the data, missing tensors, impossible shapes.
var ErrInvalid = errors.New("invalid model")

// constant is a tensor with known values, converted to float64 (integer tensors also
// keep their exact int64 values, for shapes and axes).
type constant struct {
	name  string
	shape []int
	f     []float64
	ints  []int64 // set for integer dtypes
	dtype int64
}

func (c *constant) size() int { return len(c.f) }

// shapeSize multiplies dims, rejecting negative dims and products above limit.
func shapeSize(dims []int64, limit int64) (int, error) {
	n := int64(1)
	for _, d := range dims {
		if d < 0 {
			return 0, fmt.Errorf("negative dimension %d in %v", d, dims)
		}
		if d != 0 && n > limit/d {
			return 0, fmt.Errorf("dims %v have more than %d elements", dims, limit)
		}
		n *= d
	}
	if n > limit {
		return 0, fmt.Errorf("dims %v have more than %d elements", dims, limit)
	}
	return int(n), nil
}

// toConstant converts a TensorProto to float64 values, checking that the declared
// dims agree with the amount of data.
func toConstant(t *tensorProto) (*constant, error) {
	where := fmt.Sprintf("tensor %q (offset %d)", t.name, t.offset)
	if t.external || t.dataLocation == 1 {
		return nil, fmt.Errorf("%s: external data is %w (save the model with the weights inside)", where, ErrUnsupported)
	}
	if t.segment {
		return nil, fmt.Errorf("%s: segmented tensors are %w", where, ErrUnsupported)
	}
	n, err := shapeSize(t.dims, MaxTensorElements)
	if err != nil {
		return nil, fmt.Errorf("%s: %v: %w", where, err, ErrInvalid)
	}
	c := &constant{name: t.name, dtype: t.dtype, shape: make([]int, len(t.dims))}
	for i, d := range t.dims {
		c.shape[i] = int(d)
	}
	var width int
	switch t.dtype {
	case dtFloat, dtInt32:
		width = 4
	case dtDouble, dtInt64:
		width = 8
	default:
		return nil, fmt.Errorf("%s: data type %s is %w (want FLOAT, DOUBLE, INT64 or INT32)", where, dtypeName(t.dtype), ErrUnsupported)
	}
	count := func(have int, field string) error {
		if have != n {
			return fmt.Errorf("%s: %s holds %d values, dims %v need %d: %w", where, field, have, t.dims, n, ErrInvalid)
		}
		return nil
	}
	if t.hasRaw {
		if int64(len(t.raw)) != int64(n)*int64(width) {
			return nil, fmt.Errorf("%s: raw_data has %d bytes, dims %v of %s need %d: %w", where, len(t.raw), t.dims, dtypeName(t.dtype), int64(n)*int64(width), ErrInvalid)
		}
		c.f = make([]float64, n)
		r := t.raw
		switch t.dtype {
		case dtFloat:
			for i := range c.f {
				c.f[i] = float64(math.Float32frombits(binary.LittleEndian.Uint32(r[4*i:])))
			}
		case dtDouble:
			for i := range c.f {
				c.f[i] = math.Float64frombits(binary.LittleEndian.Uint64(r[8*i:]))
			}
		case dtInt32:
			c.ints = make([]int64, n)
			for i := range c.f {
				c.ints[i] = int64(int32(binary.LittleEndian.Uint32(r[4*i:])))
				c.f[i] = float64(c.ints[i])
			}
		case dtInt64:
			c.ints = make([]int64, n)
			for i := range c.f {
				c.ints[i] = int64(binary.LittleEndian.Uint64(r[8*i:]))
				c.f[i] = float64(c.ints[i])
			}
		}
		return c, nil
	}
	switch t.dtype {
	case dtFloat:
		if err := count(len(t.floats), "float_data"); err != nil {
			return nil, err
		}
		c.f = make([]float64, n)
		for i, v := range t.floats {
			c.f[i] = float64(v)
		}
	case dtDouble:
		if err := count(len(t.doubles), "double_data"); err != nil {
			return nil, err
		}
		c.f = append([]float64(nil), t.doubles...)
	case dtInt32, dtInt64:
		src, field := t.int64s, "int64_data"
		if t.dtype == dtInt32 {
			src, field = t.int32s, "int32_data"
		}
		if err := count(len(src), field); err != nil {
			return nil, err
		}
		c.f = make([]float64, n)
		c.ints = make([]int64, n)
		for i, v := range src {
			if t.dtype == dtInt32 {
				v = int64(int32(v))
			}
			c.ints[i] = v
			c.f[i] = float64(v)
		}
	}
	return c, nil
}

// checkFinite rejects NaN and ±Inf in a parameter tensor.
func checkFinite(c *constant) error {
	for i, v := range c.f {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return fmt.Errorf("tensor %q has %v at element %d: %w", c.name, v, i, ErrInvalid)
		}
	}
	return nil
}
