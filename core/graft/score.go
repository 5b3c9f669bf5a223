package graft

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"sync"

	"github.com/graftcert/graftcert/core/nn"
	"github.com/graftcert/graftcert/core/train"
)

// Kind selects the significance score of a neuron.
type Kind int

const (
	// Magnitude is the mean |pre-activation| (the activation's input) over the
	// calibration set — the paper's default.
	Magnitude Kind = iota
	// Gradient is the mean |∂ℓ/∂pre-activation| of the per-sample cross-entropy ℓ.
	Gradient
)

func (k Kind) String() string {
	switch k {
	case Magnitude:
		return "magnitude"
	case Gradient:
		return "gradient"
	}
	return fmt.Sprintf("Kind(%d)", int(k))
}

// ParseKind reads "magnitude" or "gradient".
func ParseKind(s string) (Kind, error) {
	switch s {
	case "magnitude":
		return Magnitude, nil
	case "gradient":
		return Gradient, nil
	}
	return 0, fmt.Errorf("graft: unknown score %q (want magnitude or gradient)", s)
}

// Calibration returns n distinct sample indices out of total, drawn with seed — the
// paper scores on 1000 random training samples. n larger than total gives a permutation
// of all of them.
func Calibration(total, n int, seed uint64) []int {
	p := rand.New(rand.NewPCG(seed, 0xca1)).Perm(total)
	return p[:min(n, total)]
}

const scoreChunk = 100

// Scores returns, for every activation layer of net (ReLU or MaskedReLU, in the order of
// net.Activations()), one score per neuron averaged over the n samples in X (n·InSize
// values). Gradient needs labels (one per sample); Magnitude ignores them. Neurons that
// are already grafted are scored like the others. The samples are processed in chunks
// over GOMAXPROCS goroutines and summed in chunk order, so the scores do not depend on
// the number of cores.
func Scores(ctx context.Context, net *nn.Network, X []float64, n int, kind Kind, labels []int) ([][]float64, error) {
	if n <= 0 || len(X) != n*net.InSize() {
		return nil, fmt.Errorf("graft: scores: %d values for %d samples of %d", len(X), n, net.InSize())
	}
	if kind != Magnitude && kind != Gradient {
		return nil, fmt.Errorf("graft: scores: unknown kind %d", int(kind))
	}
	if kind == Gradient {
		if len(labels) != n {
			return nil, fmt.Errorf("graft: gradient scores need %d labels, got %d", n, len(labels))
		}
		for i, y := range labels {
			if y < 0 || y >= net.OutSize() {
				return nil, fmt.Errorf("graft: label %d of sample %d is outside [0,%d)", y, i, net.OutSize())
			}
		}
	}
	m, err := train.NewModel(net, true)
	if err != nil {
		return nil, fmt.Errorf("graft: %w", err)
	}
	acts := net.Activations()
	if len(acts) == 0 {
		return nil, fmt.Errorf("graft: network has no activation layer")
	}
	slot := make(map[int]int, len(acts)) // layer index → position in acts
	for j, i := range acts {
		slot[i] = j
	}
	in, k := net.InSize(), net.OutSize()
	nc := (n + scoreChunk - 1) / scoreChunk
	sums := make([][][]float64, nc) // per chunk, per activation layer
	errs := make([]error, nc)
	next := make(chan int, nc)
	for c := 0; c < nc; c++ {
		next <- c
	}
	close(next)
	var wg sync.WaitGroup
	for w := 0; w < min(runtime.GOMAXPROCS(0), nc); w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var tape train.Tape
			var dl []float64
			for c := range next {
				if err := ctx.Err(); err != nil {
					errs[c] = err
					continue
				}
				lo, hi := c*scoreChunk, min((c+1)*scoreChunk, n)
				cs := make([][]float64, len(acts))
				for j, i := range acts {
					cs[j] = make([]float64, net.Layers[i].(nn.Activation).Neurons())
				}
				sums[c] = cs
				m.Forward(X[lo*in:hi*in], hi-lo, &tape)
				if kind == Magnitude {
					for j, i := range acts {
						addAbs(cs[j], tape.Acts[i])
					}
					continue
				}
				if cap(dl) < (hi-lo)*k {
					dl = make([]float64, (hi-lo)*k)
				}
				dl = dl[:(hi-lo)*k]
				train.CrossEntropy(tape.Output(), labels[lo:hi], k, dl, 1)
				errs[c] = m.BackwardEach(&tape, dl, nil, func(layer int, dIn []float64) {
					if j, ok := slot[layer]; ok {
						addAbs(cs[j], dIn)
					}
				})
			}
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return nil, fmt.Errorf("graft: scores: %w", err)
		}
	}
	out := sums[0]
	for c := 1; c < nc; c++ {
		for j := range out {
			for i, v := range sums[c][j] {
				out[j][i] += v
			}
		}
	}
	for j := range out {
		for i := range out[j] {
			out[j][i] /= float64(n)
		}
	}
	return out, nil
}

// addAbs adds |v| of every sample (rows of len(dst)) into dst.
func addAbs(dst, v []float64) {
	w := len(dst)
	for s := 0; s+w <= len(v); s += w {
		for i, x := range v[s : s+w] {
			dst[i] += math.Abs(x)
		}
	}
}

// InstabilityAware is a documented extension of the paper's score: it lowers each
// neuron's score by how often the neuron is unstable under bound propagation, so that
// the neurons that make verification hard are grafted first:
//
//	s'ᵢ = sᵢ·(1 − β·uᵢ/count)
//
// where uᵢ is the number of the count calibration samples on which neuron i is unstable
// (lower bound < 0 < upper bound of its pre-activation, e.g. under CROWN at the
// verification radius) and β ∈ [0,1] the weight (β = 0: the plain score; β = 1: a neuron
// unstable on every sample scores 0). The scaling is multiplicative so that it keeps the
// relative scale of the layers, which the global ranking compares. unstable must have
// the shape of scores.
func InstabilityAware(scores, unstable [][]float64, count int, beta float64) ([][]float64, error) {
	if count <= 0 {
		return nil, fmt.Errorf("graft: instability: sample count %d", count)
	}
	if math.IsNaN(beta) || beta < 0 || beta > 1 {
		return nil, fmt.Errorf("graft: instability weight %v outside [0,1]", beta)
	}
	if len(unstable) != len(scores) {
		return nil, fmt.Errorf("graft: instability counts for %d layers, scores for %d", len(unstable), len(scores))
	}
	out := make([][]float64, len(scores))
	for l := range scores {
		if len(unstable[l]) != len(scores[l]) {
			return nil, fmt.Errorf("graft: activation layer %d: %d instability counts for %d neurons", l, len(unstable[l]), len(scores[l]))
		}
		out[l] = make([]float64, len(scores[l]))
		for i, s := range scores[l] {
			u := unstable[l][i]
			if math.IsNaN(u) || u < 0 || u > float64(count) {
				return nil, fmt.Errorf("graft: activation layer %d neuron %d: unstable count %v outside [0,%d]", l, i, u, count)
			}
			out[l][i] = s * (1 - beta*u/float64(count))
		}
	}
	return out, nil
}
