package blas

import (
	"runtime"
	"sync"

	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/blas64"
	"gonum.org/v1/gonum/blas/gonum"
)

// Implementation is gonum's BLAS with Dgemm replaced.
type Implementation struct {
	gonum.Implementation
}

var installOnce sync.Once

// Install makes Implementation the BLAS behind gonum's blas64 (blas64.Use). Later calls
// do nothing.
func Install() {
	installOnce.Do(func() { blas64.Use(Implementation{}) })
}

// Cache blocking. A kc×nr panel of B (16 KiB for the 8-column kernel) stays in L1
// while the kernel sweeps an mc×kc block of A (about 300 KiB) held in L2; nc bounds the
// packed kc×nc block of B. mc is a multiple of both kernels' row counts.
const (
	kc = 256
	mc = 144
	nc = 2048
)

// parallelWork is the size m·n·k from which a product is split over goroutines; below
// it, starting them costs more than they save.
const parallelWork = 1 << 21

// directRows is the number of rows of tiles up to which B is read in place (see
// serial).
const directRows = 8

// active is the kernel Dgemm uses; nil means gonum's Dgemm throughout. Tests switch it
// to exercise each kernel.
var active = defaultKernel()

// defaultKernel picks the assembly kernel when the CPU has it. Without it, the pure-Go
// kernel pays only on WebAssembly, where gonum has no assembly at all (2–3× faster
// there); on amd64 (purego build, or no AVX2/FMA) and arm64 gonum's Dgemm over its
// assembly axpy and dot is the faster one.
func defaultKernel() *kernel {
	switch {
	case hasAsm:
		return &asmKernel
	case runtime.GOARCH == "wasm":
		return &goKernel
	}
	return nil
}

// kernel computes a full mr×nr tile: C = alpha·Σ_p a[p]⊗b[p] (+ C when accum), over k
// steps of a packed A panel (mr values per step) and a B panel whose steps are bstride
// apart (nr when packed).
type kernel struct {
	mr, nr int
	// direct reports that B panels may be read in place from a row-major op(B).
	direct bool
	run    func(k int, a, b []float64, bstride int, c []float64, ldc int, alpha float64, accum bool)
}

var bufPool = sync.Pool{New: func() any { return new([]float64) }}

func getBuf(n int) *[]float64 {
	p := bufPool.Get().(*[]float64)
	if cap(*p) < n {
		*p = make([]float64, n)
	}
	*p = (*p)[:n]
	return p
}

// Dgemm computes C = alpha·op(A)·op(B) + beta·C for row-major matrices, op(A) m×k and
// op(B) k×n, as blas.Float64Level3 specifies. Bad arguments panic as in gonum (gonum
// checks them). With beta = 0, C is overwritten (NaNs in it do not survive); with
// alpha = 0 or k = 0, A and B are not read, as in the reference BLAS.
func (im Implementation) Dgemm(tA, tB blas.Transpose, m, n, k int, alpha float64, a []float64, lda int, b []float64, ldb int, beta float64, c []float64, ldc int) {
	im.dgemm(runtime.GOMAXPROCS(0), tA, tB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
}

// Serial is Implementation with every product computed on the calling goroutine, for
// callers whose own workers already keep the cores busy (the trainer). Its values are
// bit-identical to Implementation's.
type Serial struct{ Implementation }

// Dgemm is Implementation.Dgemm on the calling goroutine.
func (s Serial) Dgemm(tA, tB blas.Transpose, m, n, k int, alpha float64, a []float64, lda int, b []float64, ldb int, beta float64, c []float64, ldc int) {
	s.dgemm(1, tA, tB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
}

func (im Implementation) dgemm(procs int, tA, tB blas.Transpose, m, n, k int, alpha float64, a []float64, lda int, b []float64, ldb int, beta float64, c []float64, ldc int) {
	if m <= 0 || n <= 0 || k < 0 || !validTrans(tA) || !validTrans(tB) {
		im.Implementation.Dgemm(tA, tB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
		return
	}
	rowsA, colsA := m, k
	if tA != blas.NoTrans {
		rowsA, colsA = k, m
	}
	rowsB, colsB := k, n
	if tB != blas.NoTrans {
		rowsB, colsB = n, k
	}
	if lda < max(1, colsA) || ldb < max(1, colsB) || ldc < max(1, n) ||
		len(a) < lda*(rowsA-1)+colsA || len(b) < ldb*(rowsB-1)+colsB || len(c) < ldc*(m-1)+n {
		// Let gonum raise its panic.
		im.Implementation.Dgemm(tA, tB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
		return
	}
	if alpha == 0 || k == 0 {
		// A and B are not read (gonum multiplies anyway, so NaNs in them would spread).
		if beta != 1 {
			for i := 0; i < m; i++ {
				scale(c[i*ldc:i*ldc+n], beta)
			}
		}
		return
	}
	// No size rule sends small products to gonum: this Dgemm was faster on every shape
	// measured, down to k = 1 (1.3–10× on 200×200×k, 9×784×k and 48×256×k), and a
	// rule on m or n would let a caller that splits its rows over calls get other
	// values than one call.
	ker := active
	if ker == nil {
		im.Implementation.Dgemm(tA, tB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
		return
	}
	p := problem{ker: ker, tA: tA != blas.NoTrans, tB: tB != blas.NoTrans,
		alpha: alpha, beta: beta, a: a, lda: lda, b: b, ldb: ldb, c: c, ldc: ldc}
	parallel(&p, m, n, k, procs)
}

func validTrans(t blas.Transpose) bool {
	return t == blas.NoTrans || t == blas.Trans || t == blas.ConjTrans
}

// problem is one product; its sub-blocks are given as offsets into C.
type problem struct {
	ker           *kernel
	tA, tB        bool
	alpha, beta   float64
	a, b, c       []float64
	lda, ldb, ldc int
}

// parallel splits a large product into at most procs blocks of whole tiles of C, rows
// first (each block then packs all of op(B), which is small beside its share of the
// work), and runs them concurrently. Every element is computed the same way in any block, so the
// split changes no value.
func parallel(p *problem, m, n, k, procs int) {
	// Each part gets at least half of parallelWork.
	parts := 1
	if work := float64(m) * float64(n) * float64(k); procs > 1 && work >= parallelWork {
		parts = int(min(float64(procs), 2*work/parallelWork))
	}
	split(p, m, n, k, parts)
}

// split computes C in at most parts blocks, concurrently.
func split(p *problem, m, n, k, parts int) {
	mr, nr := p.ker.mr, p.ker.nr
	rowTiles, colTiles := (m+mr-1)/mr, (n+nr-1)/nr
	byRows := rowTiles >= colTiles || rowTiles >= 2*parts
	tiles := colTiles
	if byRows {
		tiles = rowTiles
	}
	parts = min(parts, tiles)
	if parts <= 1 {
		p.serial(0, m, 0, n, k)
		return
	}
	var wg sync.WaitGroup
	shared := *p // p itself stays on the caller's stack
	for q := 0; q < parts; q++ {
		t0, t1 := q*tiles/parts, (q+1)*tiles/parts
		wg.Add(1)
		go func() {
			defer wg.Done()
			if byRows {
				shared.serial(t0*mr, min(t1*mr, m), 0, n, k)
			} else {
				shared.serial(0, m, t0*nr, min(t1*nr, n), k)
			}
		}()
	}
	wg.Wait()
}

// serial computes rows i0..i1 and columns j0..j1 of C on the calling goroutine.
func (p *problem) serial(i0, i1, j0, j1, k int) {
	ker := p.ker
	mr, nr := ker.mr, ker.nr
	m, n := i1-i0, j1-j0
	if p.beta != 0 && p.beta != 1 {
		for i := i0; i < i1; i++ {
			scale(p.c[i*p.ldc+j0:i*p.ldc+j1], p.beta)
		}
	}
	// k is cut into nk near-equal blocks of at most kc (784 = 4·196, not 3·256 + 16,
	// whose last block would cost a pass over C for little work). The cut depends on
	// k alone, so every element sums over the same blocks.
	nk := (k + kc - 1) / kc
	kcb := (k + nk - 1) / nk
	// With few rows of tiles, each B panel serves only those few tiles: it is read in
	// place rather than packed (the caller's B is often a block of a matrix much wider
	// than the cache, read once), unless its rows fall into too few sets of L2 to stay
	// there between the tiles.
	direct := ker.direct && !p.tB && m <= directRows*mr && kcb <= l2Lines(p.ldb)
	mcb := min(mc, roundUp(m, mr))
	ap := getBuf(mcb*kcb + 8*8)
	defer bufPool.Put(ap)
	// tmp holds an edge tile. (A local array would escape to the heap through the
	// kernel's function value, one allocation per edge tile.)
	tmp := (*ap)[len(*ap)-8*8:]
	var bp *[]float64
	if direct {
		bp = getBuf(nr * kcb)
	} else {
		bp = getBuf(roundUp(min(nc, n), nr) * kcb)
	}
	defer bufPool.Put(bp)
	for jc := j0; jc < j1; jc += nc {
		nb := min(nc, j1-jc)
		for q := 0; q < nk; q++ {
			pc := q * k / nk
			kb := (q+1)*k/nk - pc
			accum := pc > 0 || p.beta != 0
			if direct {
				p.packA(*ap, i0, pc, m, kb, mr)
				for jr := 0; jr < nb; jr += nr {
					nrv := min(nr, nb-jr)
					bpanel, bstride := p.b[pc*p.ldb+jc+jr:], p.ldb
					if nrv < nr {
						p.packB(*bp, pc, jc+jr, kb, nrv, nr)
						bpanel, bstride = *bp, nr
					}
					for ir := 0; ir < m; ir += mr {
						p.tile(tmp, (*ap)[ir*kb:], kb, bpanel, bstride, min(mr, m-ir), nrv, i0+ir, jc+jr, accum)
					}
				}
				continue
			}
			p.packB(*bp, pc, jc, kb, nb, nr)
			// A packed B block that fits in L2 is swept once per row of tiles, so C is
			// written a few rows at a time, in order (it streams from memory when the
			// caller's C is wide); a larger one is swept once in all, each panel held
			// in L1 while the block of A in L2 passes over it.
			rowsOuter := kb*nb <= 1<<16
			for ic := i0; ic < i1; ic += mc {
				mb := min(mc, i1-ic)
				p.packA(*ap, ic, pc, mb, kb, mr)
				if h := blockFor(ker, mb, nb, kb); h != nil {
					p.block(h, tmp, *ap, *bp, ic, jc, mb, nb, kb, accum)
					continue
				}
				if rowsOuter {
					for ir := 0; ir < mb; ir += mr {
						for jr := 0; jr < nb; jr += nr {
							p.tile(tmp, (*ap)[ir*kb:], kb, (*bp)[jr*kb:], nr, min(mr, mb-ir), min(nr, nb-jr), ic+ir, jc+jr, accum)
						}
					}
					continue
				}
				for jr := 0; jr < nb; jr += nr {
					for ir := 0; ir < mb; ir += mr {
						p.tile(tmp, (*ap)[ir*kb:], kb, (*bp)[jr*kb:], nr, min(mr, mb-ir), min(nr, nb-jr), ic+ir, jc+jr, accum)
					}
				}
			}
		}
	}
}

// tile runs the kernel on the tile of C at row i, column j, mrv×nrv of it in range;
// tmp is scratch for an edge tile.
func (p *problem) tile(tmp, apanel []float64, kb int, bpanel []float64, bstride, mrv, nrv, i, j int, accum bool) {
	ker := p.ker
	mr, nr := ker.mr, ker.nr
	ci := i*p.ldc + j
	if mrv == mr && nrv == nr {
		ker.run(kb, apanel, bpanel, bstride, p.c[ci:], p.ldc, p.alpha, accum)
		return
	}
	// An edge tile goes through a full one, so that its elements are computed exactly
	// as anywhere else.
	t := tmp[:mr*nr]
	clear(t)
	if accum {
		for r := 0; r < mrv; r++ {
			copy(t[r*nr:r*nr+nrv], p.c[ci+r*p.ldc:ci+r*p.ldc+nrv])
		}
	}
	ker.run(kb, apanel, bpanel, bstride, t, nr, p.alpha, accum)
	for r := 0; r < mrv; r++ {
		copy(p.c[ci+r*p.ldc:ci+r*p.ldc+nrv], t[r*nr:r*nr+nrv])
	}
}

// l2Lines is how many rows of a panel read in place with row stride ld (in float64s)
// an L2 of 1024 sets × 16 ways of 64-byte lines can hold: strides that are multiples
// of a large power of two map every row to a few sets.
func l2Lines(ld int) int {
	const sets, ways = 1024, 16
	if ld%8 != 0 {
		return sets * ways // rows are not line-aligned: they spread over the sets
	}
	g, x := sets, (ld/8)%sets
	for x != 0 {
		g, x = x, g%x
	}
	return sets / g * ways
}

// scale sets x = beta·x; beta = 0 clears x (NaNs included), as BLAS does.
func scale(x []float64, beta float64) {
	if beta == 0 {
		clear(x)
		return
	}
	for i := range x {
		x[i] *= beta
	}
}

func roundUp(x, q int) int { return (x + q - 1) / q * q }

// packA packs rows ic..ic+mb, columns pc..pc+kb of op(A) into panels of mr rows:
// dst[ir·kb + p·mr + r] = op(A)[ic+ir+r, pc+p], rows past mb zero.
func (pr *problem) packA(dst []float64, ic, pc, mb, kb, mr int) {
	a, lda := pr.a, pr.lda
	var done int // rows already packed by a PackKernel
	if pr.tA {
		done = packFull(mr, mb, kb, false, a[pc*lda+ic:], lda, dst)
	} else {
		done = packFull(mr, mb, kb, true, a[ic*lda+pc:], lda, dst)
	}
	for ir := done; ir < mb; ir += mr {
		panel := dst[ir*kb : (ir+mr)*kb]
		mrv := min(mr, mb-ir)
		if pr.tA {
			// op(A)[i, p] = a[p·lda + i]: each step is a contiguous run.
			off := pc*lda + ic + ir
			switch {
			case mrv == 6 && mr == 6:
				for p := 0; p < kb; p++ {
					d, s := (*[6]float64)(panel[p*6:]), (*[6]float64)(a[off+p*lda:])
					d[0], d[1], d[2], d[3], d[4], d[5] = s[0], s[1], s[2], s[3], s[4], s[5]
				}
			case mrv == 4 && mr == 4:
				for p := 0; p < kb; p++ {
					d, s := (*[4]float64)(panel[p*4:]), (*[4]float64)(a[off+p*lda:])
					d[0], d[1], d[2], d[3] = s[0], s[1], s[2], s[3]
				}
			default:
				for p := 0; p < kb; p++ {
					d := panel[p*mr : (p+1)*mr]
					copy(d, a[off+p*lda:off+p*lda+mrv])
					clear(d[mrv:])
				}
			}
			continue
		}
		for r := 0; r < mrv; r++ {
			row := a[(ic+ir+r)*lda+pc:]
			row = row[:kb]
			for p, v := range row {
				panel[p*mr+r] = v
			}
		}
		for r := mrv; r < mr; r++ {
			for p := 0; p < kb; p++ {
				panel[p*mr+r] = 0
			}
		}
	}
}

// packB packs rows pc..pc+kb, columns jc..jc+nb of op(B) into panels of nr columns:
// dst[jr·kb + p·nr + j] = op(B)[pc+p, jc+jr+j], columns past nb zero.
func (pr *problem) packB(dst []float64, pc, jc, kb, nb, nr int) {
	b, ldb := pr.b, pr.ldb
	full := nb / nr * nr
	if !pr.tB {
		done := packFull(nr, nb, kb, false, b[pc*ldb+jc:], ldb, dst) // columns packed by a PackKernel
		// Row by row, so that each row of B is read once and in order.
		for p := 0; p < kb; p++ {
			row := b[(pc+p)*ldb+jc:]
			row = row[:nb]
			switch nr {
			case 8:
				for jr := done; jr < full; jr += 8 {
					// Element by element: an array copy between slices becomes a
					// memmove call.
					d, s := (*[8]float64)(dst[jr*kb+p*8:]), (*[8]float64)(row[jr:])
					d[0], d[1], d[2], d[3], d[4], d[5], d[6], d[7] = s[0], s[1], s[2], s[3], s[4], s[5], s[6], s[7]
				}
			case 4:
				for jr := done; jr < full; jr += 4 {
					d, s := (*[4]float64)(dst[jr*kb+p*4:]), (*[4]float64)(row[jr:])
					d[0], d[1], d[2], d[3] = s[0], s[1], s[2], s[3]
				}
			default:
				for jr := done; jr < full; jr += nr {
					copy(dst[jr*kb+p*nr:jr*kb+(p+1)*nr], row[jr:jr+nr])
				}
			}
			if full < nb {
				d := dst[full*kb+p*nr : full*kb+(p+1)*nr]
				copy(d, row[full:])
				clear(d[nb-full:])
			}
		}
		return
	}
	// op(B)[p, j] = b[j·ldb + p].
	for jr := packFull(nr, nb, kb, true, b[jc*ldb+pc:], ldb, dst); jr < nb; jr += nr {
		panel := dst[jr*kb : (jr+nr)*kb]
		nrv := min(nr, nb-jr)
		for j := 0; j < nrv; j++ {
			col := b[(jc+jr+j)*ldb+pc:]
			col = col[:kb]
			for p, v := range col {
				panel[p*nr+j] = v
			}
		}
		for j := nrv; j < nr; j++ {
			for p := 0; p < kb; p++ {
				panel[p*nr+j] = 0
			}
		}
	}
}
