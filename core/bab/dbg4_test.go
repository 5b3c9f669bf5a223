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

func TestDbgAttack(t *testing.T) {
	if os.Getenv("GC_DBG") == "" {
		t.Skip("debug experiment")
	}
	dir := "/work/shared/testdata/vnncomp/acasxu/"
	for _, np := range [][2]string{{"5_3", "prop_2"}, {"1_9", "prop_7"}, {"1_2", "prop_2"}, {"1_9", "prop_3"}, {"2_9", "prop_8"}} {
		net, _ := onnx.DecodeFile(dir + "onnx/ACASXU_run2a_" + np[0] + "_batch_2000.onnx")
		v, _ := spec.ParseVNNLIBFile(dir+"vnnlib/"+np[1]+".vnnlib", 5, 5)
		found := 0
		start := time.Now()
		for seed := uint64(0); seed < 10; seed++ {
			for _, g := range v.Groups() {
				p := &problem{lo: g.Lo, hi: g.Hi, disj: g.Out}
				c, _ := attack(context.Background(), net, p, AttackOptions{Restarts: 50, Steps: 100}, 2, seed)
				if c != nil {
					found++
					break
				}
			}
		}
		fmt.Println(np, "found", found, "of 10 in", time.Since(start), os.Getenv("X"))
	}
}
