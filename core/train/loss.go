package train

import "math"

// CrossEntropy scores n = len(labels) rows of k logits against their labels with the
// softmax cross-entropy, computed through a max-shifted log-sum-exp so that large logits
// neither overflow nor lose the loss. It returns the sum of the per-sample losses and
// how many rows have their label as the first largest logit. If dLogits is non-nil it
// receives scale·(softmax(z) − onehot(label)), the gradient of scale·loss.
func CrossEntropy(logits []float64, labels []int, k int, dLogits []float64, scale float64) (sum float64, correct int) {
	for s, y := range labels {
		z := logits[s*k : (s+1)*k]
		m, arg := z[0], 0
		for j, v := range z {
			if v > m {
				m, arg = v, j
			}
		}
		if arg == y {
			correct++
		}
		e := 0.0
		for _, v := range z {
			e += math.Exp(v - m)
		}
		lse := m + math.Log(e)
		sum += lse - z[y]
		if dLogits != nil {
			d := dLogits[s*k : (s+1)*k]
			for j, v := range z {
				d[j] = scale * math.Exp(v-lse)
			}
			d[y] -= scale
		}
	}
	return sum, correct
}

// softmaxRows writes softmax(z) of each k-row into p.
func softmaxRows(z []float64, k int, p []float64) {
	for s := 0; s < len(z)/k; s++ {
		r := z[s*k : (s+1)*k]
		m := r[0]
		for _, v := range r {
			m = max(m, v)
		}
		e := 0.0
		for j, v := range r {
			p[s*k+j] = math.Exp(v - m)
			e += p[s*k+j]
		}
		for j := range r {
			p[s*k+j] /= e
		}
	}
}

// Accuracy is the fraction of rows whose first largest logit is the label.
func Accuracy(logits []float64, labels []int, k int) float64 {
	if len(labels) == 0 {
		return 0
	}
	c := 0
	for s, y := range labels {
		z := logits[s*k : (s+1)*k]
		arg := 0
		for j, v := range z {
			if v > z[arg] {
				arg = j
			}
		}
		if arg == y {
			c++
		}
	}
	return float64(c) / float64(len(labels))
}
