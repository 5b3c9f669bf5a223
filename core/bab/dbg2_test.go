package bab

import (
	"context"
	"math/rand/v2"
	"os"
	"testing"

	"github.com/graftcert/graftcert/core/crown"
	"github.com/graftcert/graftcert/core/onnx"
)

func TestDbgLinearValid(t *testing.T) {
	if os.Getenv("GC_DBG") == "" {
		t.Skip("debug experiment")
	}
	dir := "/work/shared/testdata/vnncomp/acasxu/"
	net, _ := onnx.DecodeFile(dir + "onnx/ACASXU_run2a_3_3_batch_2000.onnx")
	bb, _ := crown.NewBoxBounder(net)
	C := []float64{-1, 1, 0, 0, 0, -1, 0, 1, 0, 0}
	rs, _ := crown.NewRowSet(C, []float64{0, 0}, 5)
	rng := rand.New(rand.NewPCG(1, 2))
	lo := []float64{0.6, -0.5, -0.5, 0.45, -0.5}
	hi := []float64{0.679858, 0.5, 0.5, 0.5, -0.45}
	for trial := 0; trial < 50; trial++ {
		l, h := make([]float64, 5), make([]float64, 5)
		for i := range l {
			a, b := lo[i]+(hi[i]-lo[i])*rng.Float64(), lo[i]+(hi[i]-lo[i])*rng.Float64()
			if trial%2 == 0 {
				b = a + (b-a)*0.01
			}
			l[i], h[i] = min(a, b), max(a, b)
		}
		res, err := bb.Bound(context.Background(), l, h, rs, nil)
		if err != nil {
			t.Fatal(err)
		}
		for k := 0; k < 2000; k++ {
			x := make([]float64, 5)
			for i := range x {
				x[i] = l[i] + (h[i]-l[i])*rng.Float64()
			}
			y := net.Forward(x)
			for r := 0; r < 2; r++ {
				v := 0.0
				for j := 0; j < 5; j++ {
					v += C[r*5+j] * y[j]
				}
				lin := res.Bias[r]
				for i := range x {
					lin += res.A[r*5+i] * x[i]
				}
				if v < res.Lower[r]-1e-9 || v < lin-1e-7 {
					t.Fatalf("trial %d row %d: f %v lower %v linear %v", trial, r, v, res.Lower[r], lin)
				}
			}
		}
	}
}
