package bab

import (
	"context"
	"fmt"
	"os"
	"testing"

	"github.com/graftcert/graftcert/core/crown"
	"github.com/graftcert/graftcert/core/onnx"
	"github.com/graftcert/graftcert/core/spec"
)

func TestDbgRootBeta(t *testing.T) {
	if os.Getenv("GC_DBG") == "" {
		t.Skip("debug experiment")
	}
	dir := "/work/shared/testdata/vnncomp/mnist_fc/"
	net, _ := onnx.DecodeFile(dir + "onnx/mnist-net_256x4.onnx")
	v, _ := spec.ParseVNNLIBFile(dir+"vnnlib/prop_0_0.05.vnnlib", 784, 10)
	g := v.Groups()[0]
	var C, D []float64
	for _, rows := range g.Out {
		C = append(C, rows[0].C...)
		D = append(D, rows[0].D)
	}
	s, _, _ := crown.NewSplitSolver(context.Background(), net, g.Lo, g.Hi, C, crown.Options{Method: crown.AlphaCROWN, Iterations: 50})
	k := 5
	rs, _ := crown.NewRowSet(C[k*10:(k+1)*10], D[k:k+1], 10)
	d := s.Root(rs, nil)
	s.BoundDomains(context.Background(), []*crown.Domain{d}, crown.BetaOptions{Iterations: 100})
	fmt.Printf("root %.4f next %v\n", d.Lower[0], d.Next())
	level := []*crown.Domain{d}
	for depth := 0; depth < 40; depth++ {
		var kids []*crown.Domain
		for _, p := range level {
			a, b, _ := p.Branch()
			kids = append(kids, a, b)
		}
		pre := []float64{}
		for _, c := range kids {
			pre = append(pre, c.Lower[0])
		}
		s.BoundDomains(context.Background(), kids, crown.BetaOptions{Iterations: 20})
		fmt.Printf("depth %d:", depth+1)
		for i, c := range kids {
			fmt.Printf(" %.3f→%.3f", pre[i], c.Lower[0])
		}
		fmt.Println()
		level = nil
		for _, c := range kids {
			if !c.Proven() && c.Decided() {
				level = append(level, c)
			}
		}
		// follow the worst
		if len(level) > 0 {
			w := level[0]
			for _, c := range level {
				if c.Value() < w.Value() {
					w = c
				}
			}
			level = []*crown.Domain{w}
			fmt.Println("   next", w.Next(), "depth", w.Depth)
		}
	}
}
