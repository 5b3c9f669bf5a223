package main

import (
	"context"
	"fmt"
	"io"

	"github.com/graftcert/graftcert/core/certify"
)

func init() {
	register("eval", "run the model on samples: predictions, logits, accuracy", runEval)
}

func runEval(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("eval", stderr)
	model := fs.String("model", "", "ONNX model `file`")
	xPath := fs.String("data", "", "samples .npy `file`")
	yPath := fs.String("labels", "", "labels .npy `file`")
	start := fs.Int("start", 0, "first sample index")
	count := fs.Int("count", 0, "number of samples (0: to the end)")
	asJSON := fs.Bool("json", false, "print JSON")
	if err := parse(fs, args); err != nil {
		return err
	}
	net, err := loadModel(*model)
	if err != nil {
		return err
	}
	X, labels, err := loadData(net, *xPath, *yPath)
	if err != nil {
		return err
	}
	idx, err := sampleRange(*start, *count, len(labels))
	if err != nil {
		return err
	}
	rep, err := certify.Eval(net, X, labels, idx)
	if err != nil {
		return err
	}
	if *asJSON {
		return writeJSON(stdout, rep)
	}
	for _, s := range rep.Samples {
		fmt.Fprintf(stdout, "%d\tlabel %d\tpred %d\n", s.Index, s.Label, s.Pred)
	}
	fmt.Fprintf(stdout, "accuracy %.4f over %d samples\n", rep.Accuracy, len(rep.Samples))
	return nil
}
