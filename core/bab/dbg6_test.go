package bab

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/graftcert/graftcert/core/crown"
	"github.com/graftcert/graftcert/core/onnx"
	"github.com/graftcert/graftcert/core/spec"
)

func TestDbgMnist(t *testing.T) {
	if os.Getenv("GC_DBG") == "" {
		t.Skip("debug experiment")
	}
	dir := "/work/shared/testdata/vnncomp/mnist_fc/"
	net, _ := onnx.DecodeFile(dir + "onnx/mnist-net_" + os.Getenv("NET") + ".onnx")
	v, _ := spec.ParseVNNLIBFile(dir+"vnnlib/"+os.Getenv("PROP")+".vnnlib", 784, 10)
	last := time.Now()
	dbgRelu = func(q *queue[*crown.Domain]) {
		if time.Since(last) < 5*time.Second {
			return
		}
		last = time.Now()
		var w *crown.Domain
		hist := map[int]int{}
		for _, d := range q.items {
			hist[d.Depth]++
			if w == nil || d.Value() < w.Value() {
				w = d
			}
		}
		fmt.Printf("open %d worst %.4f depth %d splits %v\n depth hist %v\n", q.Len(), w.Value(), w.Depth, w.Splits, hist)
	}
	o := Options{Timeout: 40 * time.Second, AttackFirst: true}
	if c := os.Getenv("CANDS"); c != "" {
		fmt.Sscan(c, &o.Beta.Candidates)
	}
	if c := os.Getenv("ITERS"); c != "" {
		fmt.Sscan(c, &o.Beta.Iterations)
	}
	if c := os.Getenv("LRA"); c != "" {
		fmt.Sscan(c, &o.Beta.LRAlpha)
	}
	if c := os.Getenv("LRB"); c != "" {
		fmt.Sscan(c, &o.Beta.LRBeta)
	}
	rep, err := Verify(context.Background(), net, v, o)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Println(rep.Result, rep.Stats.Domains, rep.Stats.MaxDepth)
}
