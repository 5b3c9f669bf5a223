// Package demo embeds the bundled demo sample sets (the .npy files beside this file) so
// that shells without a file system, such as the edge service, can certify against
// them by name. The page serves the same files as static assets.
package demo

import (
	"embed"
	"fmt"
	"io/fs"
	"sort"
	"strings"
)

//go:embed *_X.npy *_y.npy
var files embed.FS

// Dataset returns the samples and labels .npy bytes of the bundled set name (e.g.
// "mnist" for mnist_X.npy and mnist_y.npy).
func Dataset(name string) (x, y []byte, err error) {
	if strings.ContainsAny(name, "/\\.") || name == "" {
		return nil, nil, fmt.Errorf("no bundled dataset %q (have %s)", name, strings.Join(Datasets(), ", "))
	}
	x, err = files.ReadFile(name + "_X.npy")
	if err == nil {
		y, err = files.ReadFile(name + "_y.npy")
	}
	if err != nil {
		return nil, nil, fmt.Errorf("no bundled dataset %q (have %s)", name, strings.Join(Datasets(), ", "))
	}
	return x, y, nil
}

// Datasets lists the bundled set names in order.
func Datasets() []string {
	m, _ := fs.Glob(files, "*_X.npy")
	var names []string
	for _, f := range m {
		names = append(names, strings.TrimSuffix(f, "_X.npy"))
	}
	sort.Strings(names)
	return names
}
