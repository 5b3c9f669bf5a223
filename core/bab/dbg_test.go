package bab

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/graftcert/graftcert/core/onnx"
	"github.com/graftcert/graftcert/core/spec"
)

func TestDbgACAS(t *testing.T) {
	if os.Getenv("GC_DBG") == "" {
		t.Skip("debug experiment")
	}
	dir := "/work/shared/testdata/vnncomp/acasxu/"
	net, err := onnx.DecodeFile(dir + "onnx/ACASXU_run2a_" + os.Getenv("NET") + "_batch_2000.onnx")
	if err != nil {
		t.Fatal(err)
	}
	v, err := spec.ParseVNNLIBFile(dir+"vnnlib/"+os.Getenv("PROP")+".vnnlib", 5, 5)
	if err != nil {
		t.Fatal(err)
	}
	last := time.Now()
	dbgLook = func(depth int, it func(func(a, b *idom))) {
		if depth != 50 {
			return
		}
		it(func(a, b *idom) {
			for i := range a.lo {
				if a.lo[i] != b.lo[i] {
					fmt.Printf("dim %d: %.6f [%g %g] %.6f\n", i, a.value, a.lo[i], b.hi[i], b.value)
				}
			}
		})
	}
	dbgHook = func(q *queue[*idom]) {
		if time.Since(last) < 3*time.Second {
			return
		}
		last = time.Now()
		var w *idom
		for _, d := range q.items {
			if w == nil || d.value < w.value {
				w = d
			}
		}
		fmt.Printf("open %d worst %.5f depth %d open %v box:", q.Len(), w.value, w.depth, w.open)
		for i := range w.lo {
			fmt.Printf(" [%.6f %.6f]", w.lo[i], w.hi[i])
		}
		fmt.Printf(" lower %v\n", w.bb.Lower)
	}
	rep, err := Verify(context.Background(), net, v, Options{Timeout: 30 * time.Second, AttackFirst: true})
	if err != nil {
		t.Fatal(err)
	}
	fmt.Println(rep.Result, rep.Stats.Domains)
}
