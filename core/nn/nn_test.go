package nn

import (
	"math"
	"testing"
)

// The toy network of auto_LiRPA's examples/simple/toy.py.
func toy(t *testing.T) *Network {
	t.Helper()
	net, err := New(Shape{2}, []Layer{
		&Dense{NodeName: "fc1", In: 2, Out: 2, W: []float64{1, -1, 2, -1}},
		&ReLU{NodeName: "relu"},
		&Dense{NodeName: "fc2", In: 2, Out: 1, W: []float64{1, -1}},
	})
	if err != nil {
		t.Fatal(err)
	}
	return net
}

func TestToyForward(t *testing.T) {
	net := toy(t)
	// x = (2, -2): h = relu(4, 6) = (4, 6), y = -2.
	if y := net.Forward([]float64{2, -2}); y[0] != -2 {
		t.Fatalf("toy(2,-2) = %v, want -2", y[0])
	}
	ys := net.ForwardBatch([]float64{2, -2, -1, 1}, 2)
	if ys[0] != -2 || ys[1] != 0 {
		t.Fatalf("batch = %v, want [-2 0]", ys)
	}
}

func TestConvForwardByHand(t *testing.T) {
	// 1×3×3 input, one 2×2 kernel of ones, stride 1, pad 0 → sums of 2×2 windows.
	c := &Conv2d{NodeName: "c", InC: 1, OutC: 1, KH: 2, KW: 2, SH: 1, SW: 1, DH: 1, DW: 1,
		W: []float64{1, 1, 1, 1}, B: []float64{0.5}}
	net, err := New(Shape{1, 3, 3}, []Layer{c})
	if err != nil {
		t.Fatal(err)
	}
	y := net.Forward([]float64{1, 2, 3, 4, 5, 6, 7, 8, 9})
	want := []float64{12.5, 16.5, 24.5, 28.5}
	for i := range want {
		if y[i] != want[i] {
			t.Fatalf("conv = %v, want %v", y, want)
		}
	}
	// Padding 1, stride 2: output 2×2, corners see one, two or four inputs.
	c2 := &Conv2d{NodeName: "c2", InC: 1, OutC: 1, KH: 2, KW: 2, SH: 2, SW: 2, DH: 1, DW: 1,
		PT: 1, PL: 1, PB: 1, PR: 1, W: []float64{1, 1, 1, 1}}
	net2, err := New(Shape{1, 3, 3}, []Layer{c2})
	if err != nil {
		t.Fatal(err)
	}
	y2 := net2.Forward([]float64{1, 2, 3, 4, 5, 6, 7, 8, 9})
	want2 := []float64{1, 5, 11, 28}
	for i := range want2 {
		if y2[i] != want2[i] {
			t.Fatalf("padded conv = %v, want %v", y2, want2)
		}
	}
}

func TestMaskedReLU(t *testing.T) {
	m := &MaskedReLU{NodeName: "g", Mask: []float64{0, 1, 1}, Slope: []float64{9, 0.4, 0}, Bias: []float64{9, 0.1, 0}}
	net, err := New(Shape{3}, []Layer{m})
	if err != nil {
		t.Fatal(err)
	}
	y := net.Forward([]float64{-2, -2, 5})
	want := []float64{0, -0.7, 0}
	for i := range want {
		if math.Abs(y[i]-want[i]) > 1e-15 {
			t.Fatalf("masked relu = %v, want %v", y, want)
		}
	}
}

func TestBadNetworks(t *testing.T) {
	cases := map[string][]Layer{
		"nan weight":    {&Dense{NodeName: "d", In: 2, Out: 1, W: []float64{math.NaN(), 1}}},
		"inf bias":      {&Dense{NodeName: "d", In: 2, Out: 1, W: []float64{1, 1}, B: []float64{math.Inf(1)}}},
		"shape":         {&Dense{NodeName: "d", In: 3, Out: 1, W: []float64{1, 1, 1}}},
		"mask value":    {&MaskedReLU{NodeName: "g", Mask: []float64{0.5, 0}, Slope: []float64{0, 0}, Bias: []float64{0, 0}}},
		"reshape":       {&Reshape{NodeName: "r", To: Shape{3}}},
		"conv on flat":  {&Conv2d{NodeName: "c", InC: 1, OutC: 1, KH: 1, KW: 1, SH: 1, SW: 1, DH: 1, DW: 1, W: []float64{1}}},
		"weight length": {&Dense{NodeName: "d", In: 2, Out: 2, W: []float64{1, 1}}},
	}
	for name, layers := range cases {
		if _, err := New(Shape{2}, layers); err == nil {
			t.Errorf("%s: expected an error", name)
		}
	}
}

func TestClone(t *testing.T) {
	net := toy(t)
	c := net.Clone()
	c.Layers[0].(*Dense).W[0] = 100
	if net.Layers[0].(*Dense).W[0] != 1 {
		t.Fatal("clone shares weights")
	}
}
