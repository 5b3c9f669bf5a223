package train

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"sync"

	"github.com/graftcert/graftcert/core/nn"
)

// Metrics summarises a network on a data set.
type Metrics struct {
	Loss     float64 // mean cross-entropy
	Accuracy float64 // fraction of samples whose first largest logit is the label
	Correct  int
	N        int
}

const evalChunk = 256

// parallelChunks runs f on chunks [lo, hi) of n samples over workers goroutines, each with
// its own workspace, stopping early when ctx is done. Results are stored per chunk so
// that callers reduce them in order.
func parallelChunks(ctx context.Context, n, chunk, workers int, f func(ws *workspace, c, lo, hi int) error) error {
	nc := (n + chunk - 1) / chunk
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	workers = max(1, min(workers, nc))
	next := make(chan int, nc)
	for c := 0; c < nc; c++ {
		next <- c
	}
	close(next)
	errs := make([]error, nc)
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ws := new(workspace)
			for c := range next {
				if err := ctx.Err(); err != nil {
					errs[c] = err
					continue
				}
				errs[c] = f(ws, c, c*chunk, min((c+1)*chunk, n))
			}
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// Evaluate computes the mean cross-entropy and accuracy of net on data using workers
// goroutines (0: GOMAXPROCS). The result does not depend on the worker count.
func Evaluate(ctx context.Context, net *nn.Network, data Data, workers int) (Metrics, error) {
	if err := data.check(net); err != nil {
		return Metrics{}, err
	}
	n, in, k := data.Len(), net.InSize(), net.OutSize()
	nc := (n + evalChunk - 1) / evalChunk
	loss := make([]float64, nc)
	corr := make([]int, nc)
	err := parallelChunks(ctx, n, evalChunk, workers, func(ws *workspace, c, lo, hi int) error {
		forward(net, &ws.t1, data.X[lo*in:hi*in], hi-lo)
		loss[c], corr[c] = CrossEntropy(ws.t1.Output(), data.Labels[lo:hi], k, nil, 0)
		return nil
	})
	if err != nil {
		return Metrics{}, fmt.Errorf("train: evaluate: %w", err)
	}
	var mt Metrics
	for c := range loss {
		mt.Loss += loss[c]
		mt.Correct += corr[c]
	}
	mt.N = n
	if n > 0 {
		mt.Loss /= float64(n)
		mt.Accuracy = float64(mt.Correct) / float64(n)
	}
	return mt, nil
}

// PGD configures an L∞ projected-gradient attack on the cross-entropy.
type PGD struct {
	Eps      float64
	Alpha    float64 // step; 0 means 2.5·Eps/Steps (the paper's test attack)
	Steps    int
	Restarts int    // random starts; at least 1
	Seed     uint64 // drives the random starts
	Lo, Hi   float64
	Workers  int
}

// PGDAccuracy returns the fraction of data that stays correctly classified under the
// attack: a sample counts as broken as soon as the clean input or any iterate of any
// restart is misclassified (every iterate is a valid point of the ε-ball). Only
// Accuracy, Correct and N are set. The result does not depend on the worker count.
func PGDAccuracy(ctx context.Context, net *nn.Network, data Data, a PGD) (Metrics, error) {
	if err := data.check(net); err != nil {
		return Metrics{}, err
	}
	if a.Eps < 0 || math.IsNaN(a.Eps) || a.Steps < 0 || a.Alpha < 0 || math.IsNaN(a.Alpha) {
		return Metrics{}, fmt.Errorf("train: PGD: bad eps %v, alpha %v or steps %d", a.Eps, a.Alpha, a.Steps)
	}
	lo, hi := a.Lo, a.Hi
	if lo == hi {
		lo, hi = 0, 1
	}
	alpha := a.Alpha
	if alpha == 0 && a.Steps > 0 {
		alpha = 2.5 * a.Eps / float64(a.Steps)
	}
	restarts := max(1, a.Restarts)
	n, d, k := data.Len(), net.InSize(), net.OutSize()
	p := planFor(net)
	nc := (n + evalChunk - 1) / evalChunk
	corr := make([]int, nc)
	err := parallelChunks(ctx, n, evalChunk, a.Workers, func(ws *workspace, c, l, h int) error {
		m := h - l
		x, y := data.X[l*d:h*d], data.Labels[l:h]
		ok := make([]bool, m)
		forward(net, &ws.t1, x, m)
		for s := range ok {
			ok[s] = argmax(ws.t1.Output()[s*k:(s+1)*k]) == y[s]
		}
		ws.xa = grow(ws.xa, m*d)
		ws.dl = grow(ws.dl, m*k)
		for r := 0; r < restarts; r++ {
			rng := chunkRNG(a.Seed, uint64(r), uint64(c))
			for j, v := range x {
				dj := (2*rng.Float64() - 1) * a.Eps
				ws.xa[j] = v + min(max(dj, lo-v), hi-v)
			}
			for it := 0; it <= a.Steps; it++ {
				forward(net, &ws.t1, ws.xa, m)
				out := ws.t1.Output()
				for s := range ok {
					if ok[s] && argmax(out[s*k:(s+1)*k]) != y[s] {
						ok[s] = false
					}
				}
				if it == a.Steps {
					break
				}
				CrossEntropy(out, y, k, ws.dl, 1)
				g, err := backward(p, &ws.t1, &ws.t1, ws.dl, pass{wantIn: 0})
				if err != nil {
					return err
				}
				for j, v := range x {
					z := ws.xa[j]
					switch {
					case g[j] > 0:
						z += alpha
					case g[j] < 0:
						z -= alpha
					}
					z = min(max(z, v-a.Eps), v+a.Eps)
					ws.xa[j] = min(max(z, lo), hi)
				}
			}
		}
		for _, o := range ok {
			if o {
				corr[c]++
			}
		}
		return nil
	})
	if err != nil {
		return Metrics{}, fmt.Errorf("train: PGD: %w", err)
	}
	mt := Metrics{N: n}
	for _, v := range corr {
		mt.Correct += v
	}
	if n > 0 {
		mt.Accuracy = float64(mt.Correct) / float64(n)
	}
	return mt, nil
}

func argmax(v []float64) int {
	b := 0
	for i, x := range v {
		if x > v[b] {
			b = i
		}
	}
	return b
}

// FGSMRS returns FGSM-from-a-random-start adversarial examples for the n = len(y)
// samples x, as training builds them: δ ~ U(−eps, eps) clipped so that x+δ ∈ [lo, hi],
// one signed step δ += alpha·sign(∇ₓℓ(x+δ)) on the cross-entropy, then projection onto
// the eps-ball and [lo, hi]. lo == hi means [0, 1]; alpha 0 means 1.25·eps.
func FGSMRS(net *nn.Network, x []float64, y []int, eps, alpha, lo, hi float64, seed uint64) ([]float64, error) {
	if err := (Data{X: x, Labels: y}).check(net); err != nil {
		return nil, err
	}
	if lo == hi {
		lo, hi = 0, 1
	}
	if alpha == 0 {
		alpha = 1.25 * eps
	}
	ws := new(workspace)
	adv, err := fgsmRS(ws, planFor(net), x, y, eps, alpha, lo, hi, chunkRNG(seed, 0, 0))
	if err != nil {
		return nil, err
	}
	return append([]float64(nil), adv...), nil
}

// fgsmRS builds the adversarial examples in ws.xa and returns it.
func fgsmRS(ws *workspace, p plan, x []float64, y []int, eps, alpha, lo, hi float64, rng *rand.Rand) ([]float64, error) {
	net := p.net
	n, d, k := len(y), net.InSize(), net.OutSize()
	ws.delta = grow(ws.delta, n*d)
	ws.xa = grow(ws.xa, n*d)
	ws.dl = grow(ws.dl, n*k)
	for j, v := range x[:n*d] {
		dj := (2*rng.Float64() - 1) * eps
		dj = min(max(dj, lo-v), hi-v)
		ws.delta[j] = dj
		ws.xa[j] = v + dj
	}
	forward(net, &ws.tAtk, ws.xa, n)
	CrossEntropy(ws.tAtk.Output(), y, k, ws.dl, 1)
	g, err := backward(p, &ws.tAtk, &ws.tAtk, ws.dl, pass{wantIn: 0})
	if err != nil {
		return nil, err
	}
	for j, v := range x[:n*d] {
		dj := ws.delta[j]
		switch {
		case g[j] > 0:
			dj += alpha
		case g[j] < 0:
			dj -= alpha
		}
		dj = min(max(dj, -eps), eps)
		dj = min(max(dj, lo-v), hi-v)
		ws.xa[j] = v + dj
	}
	return ws.xa, nil
}
