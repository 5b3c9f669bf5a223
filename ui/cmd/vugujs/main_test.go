package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// static/vugu-render.js is the helper of the vugu version go.mod pins, and begins
// the way static/app.js's eval guard expects.
func TestHelperIsCurrent(t *testing.T) {
	src, err := helperScript()
	if err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(filepath.Join("..", "..", "..", "static", "vugu-render.js"))
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != header+src+"\n" {
		t.Error("static/vugu-render.js is stale: run make web-gen")
	}
	const prefix = "(function(){if(window.vuguRender)return;"
	if !strings.HasPrefix(src, prefix) {
		t.Errorf("helper starts %q, static/app.js expects %q", src[:min(60, len(src))], prefix)
	}
	app, err := os.ReadFile(filepath.Join("..", "..", "..", "static", "app.js"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(app), `"`+prefix+`"`) {
		t.Error("static/app.js does not guard eval with the helper's prefix")
	}
}
