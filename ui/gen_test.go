package main

import (
	"bytes"
	"go/format"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// genHeader is what `make web-gen` puts before vugugen's output: the generated code
// uses syscall/js through vugu, so it builds only for the browser.
const genHeader = "//go:build js && wasm\n\n"

// The committed *_gen.go files are what vugugen makes of the .vugu files now.
func TestGeneratedCodeIsCurrent(t *testing.T) {
	vugus, _ := filepath.Glob("*.vugu")
	if len(vugus) == 0 {
		t.Fatal("no .vugu files")
	}
	dir := t.TempDir()
	for _, f := range vugus {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		os.WriteFile(filepath.Join(dir, f), b, 0o644)
	}
	cmd := exec.Command("go", "tool", "vugugen", "-skip-go-mod", "-skip-main", dir)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("vugugen: %v\n%s", err, out)
	}
	for _, f := range vugus {
		name := strings.TrimSuffix(f, ".vugu") + "_gen.go"
		gen, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		want, err := format.Source(append([]byte(genHeader), gen...))
		if err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s is stale: run make web-gen", name)
		}
	}
}
