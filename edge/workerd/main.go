// Command workerd builds the edge service and runs it locally under workerd,
// Cloudflare's open-source Workers runtime (the npm package pinned in
// edge/package.json), listening on a loopback address only:
//
//	go run ./edge/workerd [-addr 127.0.0.1:8787] [-out build/edge]
//
// It builds edge/ with GOOS=js GOARCH=wasm into OUT/app.wasm, copies the Go
// toolchain's wasm_exec.js and edge/worker/worker.mjs beside it, writes OUT/config.capnp
// (the worker, static/ as a read-only disk service bound as ASSETS, and the socket),
// and runs `workerd serve OUT/config.capnp`. `make edge` calls it.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"syscall"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:8787", "listen `address`; must be a loopback address")
	out := flag.String("out", "", "build `directory` (default: build/edge in the module root)")
	static := flag.String("static", "", "static assets `directory` (default: static/ in the module root)")
	bin := flag.String("workerd", "", "workerd `binary` (default: $GRAFTCERT_WORKERD, else edge/node_modules)")
	buildOnly := flag.Bool("build-only", false, "build and write the config, do not run")
	flag.Parse()
	if err := run(*addr, *out, *static, *bin, *buildOnly); err != nil {
		fmt.Fprintln(os.Stderr, "edge/workerd:", err)
		os.Exit(1)
	}
}

func run(addr, out, static, bin string, buildOnly bool) error {
	if err := checkLoopback(addr); err != nil {
		return err
	}
	root, err := moduleRoot()
	if err != nil {
		return err
	}
	if out == "" {
		out = root + "/build/edge"
	}
	if static == "" {
		static = root + "/static"
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	b, err := Build(ctx, BuildOptions{Root: root, Out: out, Static: static, Addr: addr})
	if err != nil {
		return err
	}
	fmt.Printf("built %s (%s, %s gzipped)\n", b.Wasm, mb(b.WasmBytes), mb(b.WasmGzipBytes))
	if buildOnly {
		fmt.Println("config:", b.Config)
		return nil
	}
	if bin == "" {
		if bin, err = FindWorkerd(root); err != nil {
			return err
		}
	}
	cmd := exec.CommandContext(ctx, bin, "serve", b.Config)
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	cmd.Cancel = func() error { return cmd.Process.Signal(os.Interrupt) }
	fmt.Printf("graftcert edge on http://%s/ (API: http://%s/api/health); Ctrl-C stops\n", addr, addr)
	if err := cmd.Run(); err != nil && ctx.Err() == nil {
		return fmt.Errorf("workerd: %w", err)
	}
	return nil
}

func mb(n int64) string { return fmt.Sprintf("%.2f MB", float64(n)/1e6) }
