// Command gen writes the SIMD block kernel module (gemmsimd.Module), e.g.
// `go run ./wasm/gemmsimd/gen -o static/gemm.wasm` (make web does).
package main

import (
	"flag"
	"fmt"
	"os"

	"github.com/graftcert/graftcert/wasm/gemmsimd"
)

func main() {
	out := flag.String("o", "gemm.wasm", "output `file`")
	flag.Parse()
	if err := os.WriteFile(*out, gemmsimd.Module(), 0o644); err != nil {
		fmt.Fprintln(os.Stderr, "gen:", err)
		os.Exit(1)
	}
}
