package train

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"sync"
	"time"

	"github.com/graftcert/graftcert/core/nn"
)

// Data is a labelled data set: X holds the samples contiguously (each the network's
// per-sample input size, e.g. raw pixels in [0,1]), Labels one class index per sample.
type Data struct {
	X      []float64
	Labels []int
}

// Len is the number of samples.
func (d Data) Len() int { return len(d.Labels) }

func (d Data) check(net *nn.Network) error {
	in, k := net.InSize(), net.OutSize()
	if len(d.X) != len(d.Labels)*in {
		return fmt.Errorf("train: data has %d values for %d labels, want %d (%d per sample)", len(d.X), len(d.Labels), len(d.Labels)*in, in)
	}
	for i, y := range d.Labels {
		if y < 0 || y >= k {
			return fmt.Errorf("train: label %d of sample %d is outside [0,%d)", y, i, k)
		}
	}
	for i, v := range d.X {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return fmt.Errorf("train: sample %d holds %v at offset %d", i/in, v, i%in)
		}
	}
	return nil
}

// Options configures Train and FineTune. Start from DefaultFineTune or DefaultTrain.
type Options struct {
	Epochs    int
	BatchSize int    // samples per SGD step (the last batch of an epoch may be smaller)
	Seed      uint64 // drives shuffling and every random perturbation
	// Workers is the number of goroutines sharing a batch; 0 means GOMAXPROCS. The
	// result does not depend on it.
	Workers int
	// Chunk is the number of samples a worker processes at a time (default 32). Chunk
	// gradients are summed in chunk order, so the result depends on Chunk but not on
	// Workers; memory grows with BatchSize/Chunk copies of the gradient.
	Chunk int

	// Eps is the L∞ radius of FGSM-RS adversarial training on the input scale; 0 trains
	// on clean inputs.
	Eps float64
	// Alpha is the FGSM step; 0 means 1.25·Eps (FGSM-RS, Wong et al. 2020).
	Alpha float64
	// GradAlign is the weight λ of the GradAlign regulariser λ·(1 − cos(∇ₓℓ(x), ∇ₓℓ(x+η)))
	// with η uniform in the Eps-ball (0 disables it; it needs Eps > 0).
	GradAlign float64
	// Lo and Hi bound valid inputs (adversarial examples are clipped to them); Lo == Hi
	// means [0, 1], pixels.
	Lo, Hi float64

	Momentum float64
	// Per-group learning rate and weight decay: Dense/Conv weights and biases, grafted
	// slopes and intercepts.
	Weights, Biases, Slopes, Intercepts Hyper
	Schedule                            Schedule
	// FreezeActivations keeps MaskedReLU slopes and intercepts fixed (pruning: a = b = 0).
	FreezeActivations bool

	// OnBatch, if set, is called after every SGD step (from the calling goroutine).
	OnBatch func(Batch)
}

// DefaultFineTune returns the paper's fine-tuning recipe at radius eps: batch 128, SGD
// momentum 0.9, cosine schedule, lr 0.01 without weight decay for slopes and intercepts,
// lr 1e-3 with weight decay 5e-4 for weights and biases, FGSM-RS with step 1.25·eps and
// GradAlign λ = 0.2. The paper runs 100 epochs; Epochs is set to 10.
func DefaultFineTune(eps float64) Options {
	w := Hyper{LR: 1e-3, WeightDecay: 5e-4}
	a := Hyper{LR: 0.01}
	return Options{Epochs: 10, BatchSize: 128, Seed: 1, Chunk: 32, Eps: eps, GradAlign: 0.2,
		Momentum: 0.9, Weights: w, Biases: w, Slopes: a, Intercepts: a, Schedule: Cosine}
}

// DefaultTrain returns the baseline adversarial training recipe of the paper's code at
// radius eps (SGD lr 0.1, momentum 0.9, weight decay 5e-4, batch 128, FGSM-RS with step
// 1.25·eps and GradAlign λ = 0.2), with a cosine schedule in place of its step decay.
func DefaultTrain(eps float64) Options {
	w := Hyper{LR: 0.1, WeightDecay: 5e-4}
	a := Hyper{LR: 0.01}
	return Options{Epochs: 10, BatchSize: 128, Seed: 1, Chunk: 32, Eps: eps, GradAlign: 0.2,
		Momentum: 0.9, Weights: w, Biases: w, Slopes: a, Intercepts: a, Schedule: Cosine}
}

func (o *Options) group(k ParamKind) Hyper {
	switch k {
	case Bias:
		return o.Biases
	case Slope:
		return o.Slopes
	case Intercept:
		return o.Intercepts
	}
	return o.Weights
}

func (o *Options) check() error {
	bad := func(what string, v float64) error { return fmt.Errorf("train: option %s = %v", what, v) }
	switch {
	case o.Epochs < 0:
		return fmt.Errorf("train: option Epochs = %d, want ≥ 0", o.Epochs)
	case o.BatchSize <= 0:
		return fmt.Errorf("train: option BatchSize = %d, want > 0", o.BatchSize)
	case o.Workers < 0:
		return fmt.Errorf("train: option Workers = %d, want ≥ 0", o.Workers)
	case o.Chunk < 0:
		return fmt.Errorf("train: option Chunk = %d, want ≥ 0", o.Chunk)
	}
	for _, f := range []struct {
		what string
		v    float64
	}{{"Eps", o.Eps}, {"Alpha", o.Alpha}, {"GradAlign", o.GradAlign}, {"Momentum", o.Momentum},
		{"Weights.LR", o.Weights.LR}, {"Weights.WeightDecay", o.Weights.WeightDecay},
		{"Biases.LR", o.Biases.LR}, {"Biases.WeightDecay", o.Biases.WeightDecay},
		{"Slopes.LR", o.Slopes.LR}, {"Slopes.WeightDecay", o.Slopes.WeightDecay},
		{"Intercepts.LR", o.Intercepts.LR}, {"Intercepts.WeightDecay", o.Intercepts.WeightDecay}} {
		if math.IsNaN(f.v) || math.IsInf(f.v, 0) || f.v < 0 {
			return bad(f.what, f.v)
		}
	}
	if math.IsNaN(o.Lo) || math.IsNaN(o.Hi) || o.Lo > o.Hi {
		return fmt.Errorf("train: option input range [%v, %v] is empty", o.Lo, o.Hi)
	}
	if o.GradAlign > 0 && o.Eps == 0 {
		return errors.New("train: GradAlign needs Eps > 0 (its noise is drawn from the Eps-ball)")
	}
	return nil
}

// Epoch reports one finished epoch.
type Epoch struct {
	Epoch, Epochs int     // 1-based index and total
	Loss          float64 // mean training objective: cross-entropy on the training inputs (adversarial if Eps > 0) plus the GradAlign term
	CE            float64 // mean cross-entropy part
	Reg           float64 // mean GradAlign term
	Accuracy      float64 // on the training inputs the loss was computed on
	LR            float64 // weight learning rate at the epoch's last step
	Samples       int
	Seconds       float64
}

// Batch reports one SGD step.
type Batch struct {
	Epoch, Step, Steps int // Step counts from 1 within the epoch
	Loss, CE, Reg      float64
	Accuracy           float64
	Samples            int
}

// FineTune fine-tunes a grafted (or any) network in place with opts — the paper's second
// stage; DefaultFineTune holds its recipe. See Train for the mechanics.
func FineTune(ctx context.Context, net *nn.Network, data Data, opts Options, progress func(Epoch)) ([]Epoch, error) {
	return run(ctx, net, data, opts, progress)
}

// Train trains net in place on data with opts (DefaultTrain holds the baseline recipe)
// and returns one report per finished epoch, also passed to progress if it is non-nil.
// Each step draws a shuffled mini-batch, builds its FGSM-RS adversarial examples,
// computes the cross-entropy (and GradAlign) gradient on Workers goroutines and applies
// SGD. Cancelling ctx stops the run between two steps: the network then holds the
// weights after the last full step and the error wraps ctx.Err().
func Train(ctx context.Context, net *nn.Network, data Data, opts Options, progress func(Epoch)) ([]Epoch, error) {
	return run(ctx, net, data, opts, progress)
}

type trainer struct {
	m      *Model
	o      Options
	alpha  float64
	lo, hi float64
	batch  int // size of the current batch (its CE is a mean over it)
}

// chunkStats is what one chunk reports back for the step's reduction.
type chunkStats struct {
	ce      float64
	correct int
	cosSum  float64
	m       int // samples entering the GradAlign mean (both gradients non-zero)
	err     error
}

func run(ctx context.Context, net *nn.Network, data Data, opts Options, progress func(Epoch)) ([]Epoch, error) {
	if err := opts.check(); err != nil {
		return nil, err
	}
	m, err := NewModel(net, opts.FreezeActivations)
	if err != nil {
		return nil, err
	}
	if err := data.check(net); err != nil {
		return nil, err
	}
	N := data.Len()
	if N == 0 {
		return nil, errors.New("train: empty data set")
	}
	tr := &trainer{m: m, o: opts, alpha: opts.Alpha, lo: opts.Lo, hi: opts.Hi}
	if tr.alpha == 0 {
		tr.alpha = 1.25 * opts.Eps
	}
	if tr.lo == tr.hi {
		tr.lo, tr.hi = 0, 1
	}
	C := opts.Chunk
	if C == 0 {
		C = 32
	}
	B := min(opts.BatchSize, N)
	maxChunks := (B + C - 1) / C
	W := opts.Workers
	if W == 0 {
		W = runtime.GOMAXPROCS(0)
	}
	W = min(W, maxChunks)
	ceG := make([]*Grad, maxChunks)
	regG := make([]*Grad, maxChunks)
	for c := range ceG {
		ceG[c] = m.NewGrad()
		if opts.GradAlign > 0 {
			regG[c] = m.NewGrad()
		}
	}
	total := m.NewGrad()
	wss := make([]*workspace, W)
	for w := range wss {
		wss[w] = new(workspace)
	}
	sgd := &SGD{Momentum: opts.Momentum, Group: opts.group}
	steps := (N + B - 1) / B
	totalSteps := steps * opts.Epochs
	stats := make([]chunkStats, maxChunks)
	var hist []Epoch
	step := 0
	in := net.InSize()
	for e := 0; e < opts.Epochs; e++ {
		start := time.Now()
		perm := rand.New(rand.NewPCG(opts.Seed, 0x5eed5eed^uint64(e))).Perm(N)
		var ep Epoch
		ep.Epoch, ep.Epochs = e+1, opts.Epochs
		for b := 0; b < steps; b++ {
			if err := ctx.Err(); err != nil {
				return hist, fmt.Errorf("train: stopped at epoch %d, step %d of %d: %w", e+1, b+1, steps, err)
			}
			idx := perm[b*B : min((b+1)*B, N)]
			nb := len(idx)
			tr.batch = nb
			nc := (nb + C - 1) / C
			var wg sync.WaitGroup
			next := make(chan int, nc)
			for c := 0; c < nc; c++ {
				next <- c
			}
			close(next)
			for w := 0; w < min(W, nc); w++ {
				wg.Add(1)
				go func(ws *workspace) {
					defer wg.Done()
					for c := range next {
						rows := idx[c*C : min((c+1)*C, nb)]
						ws.x = grow(ws.x, len(rows)*in)
						ws.y = ws.y[:0]
						for r, j := range rows {
							copy(ws.x[r*in:(r+1)*in], data.X[j*in:(j+1)*in])
							ws.y = append(ws.y, data.Labels[j])
						}
						ceG[c].Zero()
						if regG[c] != nil {
							regG[c].Zero()
						}
						stats[c] = tr.chunk(ws, ws.x, ws.y, uint64(step), uint64(c), ceG[c], regG[c])
					}
				}(wss[w])
			}
			wg.Wait()
			var bs Batch
			mAll := 0
			cosSum := 0.0
			total.Zero()
			for c := 0; c < nc; c++ {
				if stats[c].err != nil {
					return hist, stats[c].err
				}
				total.AddScaled(ceG[c], 1)
				bs.CE += stats[c].ce
				bs.Accuracy += float64(stats[c].correct)
				mAll += stats[c].m
				cosSum += stats[c].cosSum
			}
			if opts.GradAlign > 0 && mAll > 0 {
				for c := 0; c < nc; c++ {
					total.AddScaled(regG[c], 1/float64(mAll))
				}
				bs.Reg = opts.GradAlign * (1 - cosSum/float64(mAll))
			}
			lrScale := opts.Schedule.scale(step, totalSteps)
			sgd.Step(m, total, lrScale)
			step++
			bs.CE /= float64(nb)
			bs.Accuracy /= float64(nb)
			bs.Loss = bs.CE + bs.Reg
			bs.Epoch, bs.Step, bs.Steps, bs.Samples = e+1, b+1, steps, nb
			if opts.OnBatch != nil {
				opts.OnBatch(bs)
			}
			ep.CE += bs.CE * float64(nb)
			ep.Reg += bs.Reg * float64(nb)
			ep.Accuracy += bs.Accuracy * float64(nb)
			ep.Samples += nb
			ep.LR = opts.Weights.LR * lrScale
		}
		ep.CE /= float64(ep.Samples)
		ep.Reg /= float64(ep.Samples)
		ep.Accuracy /= float64(ep.Samples)
		ep.Loss = ep.CE + ep.Reg
		ep.Seconds = time.Since(start).Seconds()
		hist = append(hist, ep)
		if progress != nil {
			progress(ep)
		}
	}
	return hist, nil
}

// workspace is one worker's scratch, reused across chunks and steps.
type workspace struct {
	tAtk, tAdv, t1, t2, tTan      Tape
	x, xa, delta, g1, g2, u, prob []float64
	dl, dl2, seed                 []float64
	y                             []int
}

// chunkRNG gives every (seed, step, chunk) its own stream, so the perturbations do not
// depend on which worker runs the chunk.
func chunkRNG(seed, step, chunk uint64) *rand.Rand {
	return rand.New(rand.NewPCG(seed, step<<20^chunk^0x9e3779b97f4a7c15))
}

// chunk computes the gradient contribution of n samples: the cross-entropy part into
// ce (already divided by the batch size), and the GradAlign part into reg as a sum over
// the chunk's samples (the caller divides by the number of samples in the batch mean).
func (tr *trainer) chunk(ws *workspace, x []float64, y []int, step, c uint64, ce, reg *Grad) chunkStats {
	m, o := tr.m, &tr.o
	net := m.Net
	p := m.plan()
	L := len(net.Layers)
	n := len(y)
	k := net.OutSize()
	rng := chunkRNG(o.Seed, step, c)
	ws.dl = grow(ws.dl, n*k)
	xadv := x
	if o.Eps > 0 {
		var err error
		if xadv, err = fgsmRS(ws, p, x, y, o.Eps, tr.alpha, tr.lo, tr.hi, rng); err != nil {
			return chunkStats{err: err}
		}
	}
	forward(net, &ws.tAdv, xadv, n)
	var st chunkStats
	st.ce, st.correct = CrossEntropy(ws.tAdv.Output(), y, k, ws.dl, 1/float64(tr.batch))
	if _, err := backward(p, &ws.tAdv, &ws.tAdv, ws.dl, pass{grad: ce, wantIn: L}); err != nil {
		return chunkStats{err: err}
	}
	if o.GradAlign > 0 {
		if err := tr.gradAlign(ws, p, x, y, rng, reg, &st); err != nil {
			return chunkStats{err: err}
		}
	}
	return st
}
