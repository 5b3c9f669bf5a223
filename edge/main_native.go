//go:build !js

package main

import (
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"

	"github.com/graftcert/graftcert/edge/api"
)

// The native build serves the same handler on a loopback address: a development
// server and a stand-in endpoint for `graftcert bounds --remote`.
func main() {
	addr := flag.String("addr", "127.0.0.1:8787", "listen `address` (keep it on loopback)")
	static := flag.String("static", "", "serve this `directory` outside /api/ (the page)")
	flag.Parse()
	opts := api.Options{Limits: api.DefaultLimits}
	if *static != "" {
		opts.Static = http.FileServer(http.Dir(*static))
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		fmt.Fprintln(os.Stderr, "edge:", err)
		os.Exit(1)
	}
	fmt.Printf("graftcert edge API on http://%s/api/health\n", ln.Addr())
	if err := http.Serve(ln, api.New(opts)); err != nil {
		fmt.Fprintln(os.Stderr, "edge:", err)
		os.Exit(1)
	}
}
