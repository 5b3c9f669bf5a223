package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"path/filepath"
	"strings"

	"github.com/graftcert/graftcert/core/data"
	"github.com/graftcert/graftcert/core/nn"
	"github.com/graftcert/graftcert/core/onnx"
)

// newFlags makes a flag set that reports errors instead of exiting.
func newFlags(name string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("graftcert "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	return fs
}

// parse parses flags, mapping -h and bad flags to errUsage (already printed).
func parse(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return errUsage
		}
		return errUsage
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	return nil
}

func loadModel(path string) (*nn.Network, error) {
	if path == "" {
		return nil, errors.New("--model is required")
	}
	return onnx.DecodeFile(path)
}

// loadData reads the samples and labels and checks them against the network.
func loadData(net *nn.Network, xPath, yPath string) ([]float64, []int, error) {
	if xPath == "" || yPath == "" {
		return nil, nil, errors.New("--data and --labels are required")
	}
	X, labels, err := data.LoadSamples(xPath, yPath)
	if err != nil {
		return nil, nil, err
	}
	if X.SampleSize() != net.InSize() {
		return nil, nil, fmt.Errorf("%s: samples have shape %v (%d values), the model's input %v has %d", xPath, X.Shape[1:], X.SampleSize(), net.Input, net.InSize())
	}
	if err := data.CheckLabels(labels, net.OutSize()); err != nil {
		return nil, nil, fmt.Errorf("%s: %w", yPath, err)
	}
	return X.Data, labels, nil
}

// sampleRange returns the indices start … start+count−1 clipped to n; count ≤ 0
// means to the end.
func sampleRange(start, count, n int) ([]int, error) {
	if start < 0 || start >= n {
		return nil, fmt.Errorf("--start %d out of range [0, %d)", start, n)
	}
	end := n
	if count > 0 {
		end = min(n, start+count)
	}
	idx := make([]int, 0, end-start)
	for i := start; i < end; i++ {
		idx = append(idx, i)
	}
	return idx, nil
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func modelName(path string) string {
	return strings.TrimSuffix(filepath.Base(path), filepath.Ext(path))
}

func checkEps(eps float64) error {
	if !(eps >= 0) || eps > 1e6 {
		return fmt.Errorf("--eps %v: must be a non-negative number", eps)
	}
	return nil
}
