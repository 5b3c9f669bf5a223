//go:build !(js && wasm)

package main

import (
	"fmt"
	"os"
)

func main() {
	fmt.Fprintln(os.Stderr, "this is the browser page: build it with GOOS=js GOARCH=wasm (make web)")
	os.Exit(2)
}
