package crown

// rows is a batch of linear functions over one layer's values: function r is
// x ↦ A[r]·x + Bias[r]. The backward pass transforms rows from a layer's output to its
// input, one operator at a time; each row only ever means "a lower bound of the start
// node's row r".
type rows struct {
	n, size int
	a       []float64  // n×size, row-major
	bias    []float64  // n
	mag     []float64  // n: Σ|bias increments|, feeds the rounding margin
	buf     *[]float64 // a's scratch buffer when pooled (see pooledRows)
}

// pooledRows is newRows with the coefficient matrix taken from the scratch pool (and
// cleared). A backward pass makes one such matrix per linear layer, megabytes for the
// rows of a Dense layer above a convolution; fresh ones cost a tenth of CROWN's time in
// the allocator's zeroing and page faults, recycled ones stay in cache. release hands
// the matrix back once nothing reads the rows.
func pooledRows(n, size int) *rows {
	r := uninitRows(n, size)
	clear(r.a)
	return r
}

// uninitRows is pooledRows without the clearing, for a caller that writes every row.
func uninitRows(n, size int) *rows {
	p := getScratch(n * size)
	return &rows{n: n, size: size, a: *p, buf: p, bias: make([]float64, n), mag: make([]float64, n)}
}

// recycle returns next, first handing cur's matrix back to the pool unless cur is
// keep (the caller's own rows) or next itself (a layer that passed its rows through).
// The backward and adjoint passes step from layer to layer with it.
func recycle[T interface {
	comparable
	release()
}](cur, next, keep T) T {
	if cur != keep && cur != next {
		cur.release()
	}
	return next
}

// release returns a pooled matrix to the pool; r must not be used afterwards.
func (r *rows) release() {
	if r.buf != nil {
		putScratch(r.buf)
		r.buf, r.a = nil, nil
	}
}

func newRows(n, size int) *rows {
	return &rows{n: n, size: size, a: make([]float64, n*size), bias: make([]float64, n), mag: make([]float64, n)}
}

func (r *rows) row(i int) []float64 { return r.a[i*r.size : (i+1)*r.size] }

func (r *rows) clone() *rows {
	return &rows{n: r.n, size: r.size, a: append([]float64(nil), r.a...),
		bias: append([]float64(nil), r.bias...), mag: append([]float64(nil), r.mag...)}
}
