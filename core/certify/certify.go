package certify

import (
	"context"
	"fmt"
	"runtime"
	"sync"
	"time"

	"github.com/graftcert/graftcert/core/crown"
	"github.com/graftcert/graftcert/core/nn"
	"github.com/graftcert/graftcert/core/spec"
)

// Options configures a bounds run.
type Options struct {
	Eps    float64
	Bound  crown.Options
	Logits bool // also bound the logits themselves (C = identity)
	Jobs   int  // samples bounded concurrently; ≤ 0 means runtime.GOMAXPROCS(0)
}

// SampleReport is one sample's result; its JSON is the CLI contract.
type SampleReport struct {
	Index    int       `json:"index"`
	Label    int       `json:"label"`
	Pred     int       `json:"pred"`
	MarginLB []float64 `json:"margin_lb"`
	Unstable []int     `json:"unstable"`
	Verified bool      `json:"verified"`
	Seconds  float64   `json:"seconds"`
	LogitLB  []float64 `json:"logit_lb,omitempty"`
	LogitUB  []float64 `json:"logit_ub,omitempty"`
}

// Report is a bounds run over several samples.
type Report struct {
	Model    string         `json:"model"`
	Method   string         `json:"method"`
	Eps      float64        `json:"eps"`
	Verified int            `json:"verified"`
	Total    int            `json:"total"`
	Seconds  float64        `json:"seconds"`
	Samples  []SampleReport `json:"samples"`
}

// Sample bounds one sample: x is the input, label its class, index its row in the
// data file.
func Sample(ctx context.Context, net *nn.Network, x []float64, label, index int, opts Options) (SampleReport, error) {
	start := time.Now()
	classes := net.OutSize()
	rep := SampleReport{Index: index, Label: label}
	if label < 0 || label >= classes {
		return rep, fmt.Errorf("sample %d: label %d out of range [0, %d)", index, label, classes)
	}
	rep.Pred = nn.Argmax(net.Forward(x))
	lo, hi, err := spec.Box(x, opts.Eps)
	if err != nil {
		return rep, fmt.Errorf("sample %d: %w", index, err)
	}
	C, err := spec.Margin(label, classes)
	if err != nil {
		return rep, fmt.Errorf("sample %d: %w", index, err)
	}
	res, err := crown.Bound(ctx, net, lo, hi, C, opts.Bound)
	if err != nil {
		return rep, fmt.Errorf("sample %d: %w", index, err)
	}
	rep.MarginLB = res.Lower
	rep.Unstable = res.Unstable
	if rep.Unstable == nil {
		rep.Unstable = []int{}
	}
	rep.Verified = rep.Pred == label
	for _, v := range res.Lower {
		if !(v > 0) {
			rep.Verified = false
		}
	}
	if opts.Logits {
		lopts := opts.Bound
		lopts.Upper = true
		lr, err := crown.Bound(ctx, net, lo, hi, nil, lopts)
		if err != nil {
			return rep, fmt.Errorf("sample %d: %w", index, err)
		}
		rep.LogitLB, rep.LogitUB = lr.Lower, lr.Upper
	}
	rep.Seconds = time.Since(start).Seconds()
	return rep, nil
}

// Progress is called after each finished sample with the count done and the total.
type Progress func(done, total int)

// Run bounds the samples idx of X (rows of net.InSize() values) on opts.Jobs
// goroutines. The report lists samples in the order of idx whatever the concurrency.
func Run(ctx context.Context, net *nn.Network, model string, X []float64, labels []int, idx []int, opts Options, progress Progress) (*Report, error) {
	start := time.Now()
	n := net.InSize()
	if len(X)%n != 0 {
		return nil, fmt.Errorf("data has %d values, not a multiple of the model's input size %d", len(X), n)
	}
	rows := len(X) / n
	if rows != len(labels) {
		return nil, fmt.Errorf("data has %d samples but labels has %d", rows, len(labels))
	}
	for _, i := range idx {
		if i < 0 || i >= rows {
			return nil, fmt.Errorf("sample index %d out of range [0, %d)", i, rows)
		}
	}
	method := opts.Bound.Method
	if method == "" {
		method = crown.CROWN
	}
	rep := &Report{Model: model, Method: string(method), Eps: opts.Eps, Total: len(idx), Samples: make([]SampleReport, len(idx))}
	jobs := opts.Jobs
	if jobs <= 0 {
		jobs = runtime.GOMAXPROCS(0)
	}
	jobs = min(jobs, max(1, len(idx)))
	if opts.Bound.Threads <= 0 {
		// Cores not used by concurrent samples go to each sample's own passes.
		opts.Bound.Threads = max(1, runtime.GOMAXPROCS(0)/jobs)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		mu       sync.Mutex
		firstErr error
		done     int
		wg       sync.WaitGroup
		next     = make(chan int)
	)
	for w := 0; w < jobs; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := range next {
				i := idx[k]
				r, err := Sample(ctx, net, X[i*n:(i+1)*n], labels[i], i, opts)
				mu.Lock()
				if err != nil && firstErr == nil {
					firstErr = err
					cancel()
				}
				rep.Samples[k] = r
				done++
				d := done
				mu.Unlock()
				if progress != nil && err == nil {
					progress(d, len(idx))
				}
			}
		}()
	}
feed:
	for k := range idx {
		select {
		case next <- k:
		case <-ctx.Done():
			break feed
		}
	}
	close(next)
	wg.Wait()
	if firstErr != nil {
		return nil, firstErr
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	for _, s := range rep.Samples {
		if s.Verified {
			rep.Verified++
		}
	}
	rep.Seconds = time.Since(start).Seconds()
	return rep, nil
}

// EvalSample is one sample of an evaluation; its JSON is the CLI contract.
type EvalSample struct {
	Index  int       `json:"index"`
	Label  int       `json:"label"`
	Pred   int       `json:"pred"`
	Logits []float64 `json:"logits"`
}

// EvalReport is the clean accuracy over the evaluated samples.
type EvalReport struct {
	Accuracy float64      `json:"accuracy"`
	Samples  []EvalSample `json:"samples"`
}

// Eval runs the forward pass on the samples idx.
func Eval(net *nn.Network, X []float64, labels []int, idx []int) (*EvalReport, error) {
	n := net.InSize()
	if len(X)%n != 0 || len(X)/n != len(labels) {
		return nil, fmt.Errorf("data has %d values for %d labels and input size %d", len(X), len(labels), n)
	}
	rep := &EvalReport{Samples: make([]EvalSample, 0, len(idx))}
	correct := 0
	for _, i := range idx {
		if i < 0 || i >= len(labels) {
			return nil, fmt.Errorf("sample index %d out of range [0, %d)", i, len(labels))
		}
		if labels[i] < 0 || labels[i] >= net.OutSize() {
			return nil, fmt.Errorf("sample %d: label %d out of range [0, %d)", i, labels[i], net.OutSize())
		}
		y := net.Forward(X[i*n : (i+1)*n])
		p := nn.Argmax(y)
		if p == labels[i] {
			correct++
		}
		rep.Samples = append(rep.Samples, EvalSample{Index: i, Label: labels[i], Pred: p, Logits: y})
	}
	if len(idx) > 0 {
		rep.Accuracy = float64(correct) / float64(len(idx))
	}
	return rep, nil
}
