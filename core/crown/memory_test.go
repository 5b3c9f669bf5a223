package crown

import (
	"context"
	"errors"
	"testing"

	"github.com/graftcert/graftcert/core/nn"
)

// TestMemoryLimit: a network whose CROWN pass cannot fit in the limit is refused with
// an estimate instead of being run (and killed).
func TestMemoryLimit(t *testing.T) {
	c1 := &nn.Conv2d{NodeName: "c1", InC: 3, OutC: 64, KH: 3, KW: 3, SH: 1, SW: 1, DH: 1, DW: 1, PT: 1, PL: 1, PB: 1, PR: 1,
		W: make([]float64, 64*3*9)}
	c2 := &nn.Conv2d{NodeName: "c2", InC: 64, OutC: 64, KH: 3, KW: 3, SH: 1, SW: 1, DH: 1, DW: 1, PT: 1, PL: 1, PB: 1, PR: 1,
		W: make([]float64, 64*64*9)}
	n := 64 * 128 * 128
	d := &nn.Dense{NodeName: "fc", In: n, Out: 2, W: make([]float64, 2*n)}
	net, err := nn.New(nn.Shape{3, 128, 128}, []nn.Layer{c1, &nn.ReLU{NodeName: "r1"}, c2, &nn.ReLU{NodeName: "r2"},
		&nn.Reshape{NodeName: "flat", To: nn.Shape{n}}, d})
	if err != nil {
		t.Fatal(err)
	}
	need := EstimateMemory(net, CROWN, 1)
	if need < 8<<30 {
		t.Fatalf("estimate %d bytes; a 2M-row start node over 576-value patches needs far more", need)
	}
	lo := make([]float64, net.InSize())
	hi := make([]float64, net.InSize())
	for i := range hi {
		hi[i] = 1
	}
	_, err = Bound(context.Background(), net, lo, hi, []float64{1, -1}, Options{Method: CROWN, MaxMemory: 2 << 30})
	if !errors.Is(err, ErrTooLarge) {
		t.Fatalf("err = %v, want ErrTooLarge", err)
	}
	t.Log(err)
	// The shared models fit comfortably in 1 GB.
	toy := toyNet(t)
	if m := EstimateMemory(toy, AlphaCROWN, 1); m > 100<<20 {
		t.Errorf("toy network estimate %d bytes", m)
	}
}
