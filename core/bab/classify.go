package bab

import (
	"context"
	"fmt"
	"time"

	"github.com/graftcert/graftcert/core/nn"
	"github.com/graftcert/graftcert/core/spec"
)

// VerifySample decides the robustness of one classified sample x with label under the
// L∞ box spec.Box(x, eps): "verified" when no input of the box is classified
// otherwise (every margin y_label − y_j is proven positive), "falsified" with a
// confirmed input of the box whose margin is ≤ 0 for some j, "misclassified" when x
// itself is not classified as label (nothing is verified then), "unknown" otherwise.
// index is the sample's row in its data file. opts.Timeout applies to this sample.
func VerifySample(ctx context.Context, net *nn.Network, x []float64, label, index int, eps float64, opts Options) (SampleReport, error) {
	start := time.Now()
	rep := SampleReport{Index: index, Label: label}
	if err := opts.Shard.validate(); err != nil {
		return rep, fmt.Errorf("sample %d: %w", index, err)
	}
	classes := net.OutSize()
	if len(x) != net.InSize() {
		return rep, fmt.Errorf("sample %d: %d values, the network takes %d", index, len(x), net.InSize())
	}
	C, err := spec.Margin(label, classes)
	if err != nil {
		return rep, fmt.Errorf("sample %d: %w", index, err)
	}
	lo, hi, err := spec.Box(x, eps)
	if err != nil {
		return rep, fmt.Errorf("sample %d: %w", index, err)
	}
	rep.Pred = nn.Argmax(net.Forward(x))
	if rep.Pred != label {
		rep.Result = Misclassified
		rep.Seconds = time.Since(start).Seconds()
		return rep, nil
	}
	// Unsafe: some j ≠ label with y_label − y_j ≤ 0, one conjunction per j.
	p := &problem{lo: lo, hi: hi}
	for r := 0; r < classes-1; r++ {
		p.disj = append(p.disj, []spec.Row{{C: C[r*classes : (r+1)*classes], D: 0}})
	}
	opts.GiveUpEarly = true
	res, err := solve(ctx, net, []*problem{p}, opts)
	if err != nil {
		return rep, fmt.Errorf("sample %d: %w", index, err)
	}
	rep.Stats = res.Stats
	rep.RootVerified = res.Result == Unsat && res.Stats.ProvenAtRoot == res.Stats.Disjuncts
	switch res.Result {
	case Unsat:
		rep.Result = Verified
	case Sat:
		rep.Result = Falsified
		rep.Counterexample = res.Counterexample.X
	default:
		rep.Result = Undecided
	}
	rep.Seconds = time.Since(start).Seconds()
	return rep, nil
}

// SampleProgress is called after each sample of VerifySamples.
type SampleProgress func(done, total int, last SampleReport)

// VerifySamples runs VerifySample on the samples idx of X (rows of net.InSize()
// values) one after the other, each with its own opts.Timeout, and tallies the
// verdicts.
func VerifySamples(ctx context.Context, net *nn.Network, X []float64, labels, idx []int, eps float64, opts Options, progress SampleProgress) (*ClassReport, error) {
	start := time.Now()
	n := net.InSize()
	if len(X)%n != 0 || len(X)/n != len(labels) {
		return nil, fmt.Errorf("data has %d values for %d labels and input size %d", len(X), len(labels), n)
	}
	rep := &ClassReport{Total: len(idx), Samples: make([]SampleReport, 0, len(idx))}
	for k, i := range idx {
		if i < 0 || i >= len(labels) {
			return nil, fmt.Errorf("sample index %d out of range [0, %d)", i, len(labels))
		}
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		s, err := VerifySample(ctx, net, X[i*n:(i+1)*n], labels[i], i, eps, opts)
		if err != nil {
			return nil, err
		}
		switch s.Result {
		case Verified:
			rep.Verified++
		case Falsified:
			rep.Falsified++
		case Misclassified:
			rep.Misclassified++
		default:
			rep.Unknown++
		}
		rep.Samples = append(rep.Samples, s)
		if progress != nil {
			progress(k+1, len(idx), s)
		}
	}
	rep.Seconds = time.Since(start).Seconds()
	return rep, nil
}
