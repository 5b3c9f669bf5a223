package crown

// rows is a batch of linear functions over one layer's values: function r is
// x ↦ A[r]·x + Bias[r]. The backward pass transforms rows from a layer's output to its
// input, one operator at a time; each row only ever means "a lower bound of the start
// node's row r".
type rows struct {
	n, size int
	a       []float64 // n×size, row-major
	bias    []float64 // n
	mag     []float64 // n: Σ|bias increments|, feeds the rounding margin
}

func newRows(n, size int) *rows {
	return &rows{n: n, size: size, a: make([]float64, n*size), bias: make([]float64, n), mag: make([]float64, n)}
}

func (r *rows) row(i int) []float64 { return r.a[i*r.size : (i+1)*r.size] }

func (r *rows) clone() *rows {
	return &rows{n: r.n, size: r.size, a: append([]float64(nil), r.a...),
		bias: append([]float64(nil), r.bias...), mag: append([]float64(nil), r.mag...)}
}
