package train

import (
	"fmt"
	"math"
	"math/rand/v2"
)

// GradAlign (Andriushchenko & Flammarion, 2020) penalises the misalignment of the input
// gradients of the loss at x and at a random point x+η of the ε-ball:
//
//	R(θ) = λ·(1 − mean_i cos(g1_i, g2_i)),  g1 = ∇ₓℓ(x), g2 = ∇ₓℓ(x+η),
//
// the mean running over the samples whose two gradients are both non-zero (the term is 0
// when there are none; PyTorch's mean of nothing would be NaN). As in the
// paper's code, g1 is a constant (detached) and only g2 is differentiated, and x+η is not
// clipped to the input range.
//
// Differentiating g2 with respect to the weights is double backpropagation. For these
// piecewise-linear networks it has a closed form: with u_i = ∂R/∂g2_i fixed, ∇θ R =
// ∇θ Σ u_iᵀ g2_i = ∇θ Σ s_iᵀ J_i u_i, where J_i is the network's Jacobian at x_i+η_i and
// s_i = softmax(z_i) − onehot(y_i) the loss gradient at the logits z_i. The activation
// pattern is locally constant, so J_i u_i is a forward-mode tangent pass (every layer's
// linear part, activations frozen at their pattern, grafted neurons by their slope) and
// the objective s(z)ᵀ ż is differentiated by two backward passes sharing that pattern:
//   - the primal pass at x+η, seeded with ∂/∂z = (diag(p) − ppᵀ)·ż (the softmax Hessian
//     applied to the tangent), with bias and intercept gradients;
//   - the tangent pass, seeded with s, whose layer inputs are the tangent activations,
//     without bias terms (the tangent does not see biases; a grafted neuron's tangent is
//     its slope times the incoming tangent, so the slope collects gradient from both).
//
// The only approximation is the one autograd makes too: the derivative of the ReLU's
// derivative is taken as 0 (exact away from the measure-zero set of kinks).

// GradAlign computes the regulariser R for the n samples x (labels y) with the given
// noise eta (n·InSize values, x+eta is where g2 is taken), adds ∇θR to g (if non-nil)
// and returns R. It is the exact gradient that training uses, exposed for tests and
// analysis.
func (m *Model) GradAlign(x, eta []float64, y []int, lambda float64, g *Grad) (float64, error) {
	n, d := len(y), m.Net.InSize()
	if len(x) != n*d || len(eta) != n*d {
		return 0, fmt.Errorf("train: GradAlign: x has %d and eta %d values, want %d", len(x), len(eta), n*d)
	}
	x2 := make([]float64, n*d)
	for j := range x2 {
		x2[j] = x[j] + eta[j]
	}
	ws := new(workspace)
	cosSum, cnt, err := gradAlign(ws, m.plan(), x, x2, y, lambda, true, g)
	if err != nil || cnt == 0 {
		return 0, err
	}
	return lambda * (1 - cosSum/float64(cnt)), nil
}

// gradAlign draws η for the chunk and adds the chunk's share of ∇θR (a sum over its
// samples, before the division by the batch's count) to reg.
func (tr *trainer) gradAlign(ws *workspace, p plan, x []float64, y []int, rng *rand.Rand, reg *Grad, st *chunkStats) error {
	n, d := len(y), p.net.InSize()
	ws.xa = grow(ws.xa, n*d)
	for j, v := range x[:n*d] {
		ws.xa[j] = v + (2*rng.Float64()-1)*tr.o.Eps
	}
	cosSum, cnt, err := gradAlign(ws, p, x, ws.xa, y, tr.o.GradAlign, false, reg)
	st.cosSum, st.m = cosSum, cnt
	return err
}

// gradAlign computes g1 at x and g2 at x2, the cosine terms, and, if reg is non-nil,
// the weight gradient of −λ·Σ cos_i (divided by the count when mean is set).
func gradAlign(ws *workspace, p plan, x, x2 []float64, y []int, lambda float64, mean bool, reg *Grad) (cosSum float64, cnt int, err error) {
	net := p.net
	L := len(net.Layers)
	n, d, k := len(y), net.InSize(), net.OutSize()
	ws.dl2 = grow(ws.dl2, n*k)
	forward(net, &ws.t1, x, n)
	CrossEntropy(ws.t1.Output(), y, k, ws.dl2, 1)
	g, err := backward(p, &ws.t1, &ws.t1, ws.dl2, pass{wantIn: 0})
	if err != nil {
		return 0, 0, err
	}
	ws.g1 = grow(ws.g1, n*d)
	copy(ws.g1, g)
	forward(net, &ws.t2, x2, n)
	CrossEntropy(ws.t2.Output(), y, k, ws.dl2, 1)
	if g, err = backward(p, &ws.t2, &ws.t2, ws.dl2, pass{wantIn: 0}); err != nil {
		return 0, 0, err
	}
	ws.g2 = grow(ws.g2, n*d)
	copy(ws.g2, g)

	ws.u = grow(ws.u, n*d)
	for s := 0; s < n; s++ {
		a, b, u := ws.g1[s*d:(s+1)*d], ws.g2[s*d:(s+1)*d], ws.u[s*d:(s+1)*d]
		var aa, bb, ab float64
		for j := range a {
			aa += a[j] * a[j]
			bb += b[j] * b[j]
			ab += a[j] * b[j]
		}
		if aa == 0 || bb == 0 {
			clear(u)
			continue
		}
		n1, n2 := math.Sqrt(aa), math.Sqrt(bb)
		cos := ab / (n1 * n2)
		cosSum += cos
		cnt++
		// u = ∂(−λ·cos)/∂g2 = −λ·(g1/(|g1||g2|) − cos·g2/|g2|²)
		ca, cb := -lambda/(n1*n2), lambda*cos/bb
		for j := range u {
			u[j] = ca*a[j] + cb*b[j]
		}
	}
	if cnt == 0 || reg == nil {
		return cosSum, cnt, nil
	}
	if mean {
		for j := range ws.u {
			ws.u[j] /= float64(cnt)
		}
	}
	if err := tangentForward(net, &ws.t2, &ws.tTan, ws.u); err != nil {
		return 0, 0, err
	}
	zd := ws.tTan.Output()
	ws.prob = grow(ws.prob, n*k)
	softmaxRows(ws.t2.Output(), k, ws.prob)
	ws.seed = grow(ws.seed, n*k)
	for s := 0; s < n; s++ {
		pr, z, sd := ws.prob[s*k:(s+1)*k], zd[s*k:(s+1)*k], ws.seed[s*k:(s+1)*k]
		pz := 0.0
		for j := range pr {
			pz += pr[j] * z[j]
		}
		for j := range pr {
			sd[j] = pr[j] * (z[j] - pz)
		}
	}
	if _, err := backward(p, &ws.t2, &ws.t2, ws.seed, pass{grad: reg, wantIn: L}); err != nil {
		return 0, 0, err
	}
	if _, err := backward(p, &ws.tTan, &ws.t2, ws.dl2, pass{grad: reg, noBias: true, wantIn: L}); err != nil {
		return 0, 0, err
	}
	return cosSum, cnt, nil
}
