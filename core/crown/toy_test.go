package crown

import (
	"context"
	"math"
	"testing"

	"github.com/graftcert/graftcert/core/nn"
)

// auto_LiRPA's examples/simple/toy.py, with the values in DESIGN.md.
func toyNet(t testing.TB) *nn.Network {
	net, err := nn.New(nn.Shape{2}, []nn.Layer{
		&nn.Dense{NodeName: "fc1", In: 2, Out: 2, W: []float64{1, -1, 2, -1}},
		&nn.ReLU{NodeName: "relu"},
		&nn.Dense{NodeName: "fc2", In: 2, Out: 1, W: []float64{1, -1}},
	})
	if err != nil {
		t.Fatal(err)
	}
	return net
}

func TestToy(t *testing.T) {
	net := toyNet(t)
	lo, hi := []float64{-1, -2}, []float64{2, 1}
	for _, c := range []struct {
		m      Method
		lb, ub float64
	}{{IBP, -6, 4}, {CROWN, -3, 3}, {AlphaCROWN, -3, 2}} {
		res, err := Bound(context.Background(), net, lo, hi, nil, Options{Method: c.m, Upper: true})
		if err != nil {
			t.Fatal(err)
		}
		if math.Abs(res.Lower[0]-c.lb) > 1e-6 || math.Abs(res.Upper[0]-c.ub) > 1e-6 {
			t.Errorf("%s: [%v, %v], want [%v, %v]", c.m, res.Lower[0], res.Upper[0], c.lb, c.ub)
		}
		if res.Lower[0] > -2 || res.Upper[0] < 1 {
			t.Errorf("%s: [%v, %v] excludes the exact range [-2, 1]", c.m, res.Lower[0], res.Upper[0])
		}
	}
}
