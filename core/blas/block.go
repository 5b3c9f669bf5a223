package blas

import "sync/atomic"

// BlockKernel computes the full 4×4 tiles of one block of C from packed panels, for
// an environment where something faster than the pure-Go kernel exists outside Go
// (the browser worker's WebAssembly SIMD module). For every it < mt and jt < nt it
// sets the tile of C at row 4·it, column 4·jt (row stride ldc, c[0] is the block's
// corner) from A panel it (a[it·4·kb:], kb steps of 4 values, as packA writes them)
// and B panel jt (b[jt·4·kb:], kb steps of 4 values, as packB writes them), exactly
// as the pure-Go kernel does: each element starts at +0 and adds the products a·b
// over k in ascending order, each product rounded before the add (no fused
// multiply-add), then the tile is stored as alpha·s, or C + alpha·s when accum. An
// implementation that follows this gives results bit-identical to the pure-Go kernel,
// so the package's determinism holds with it.
//
// a, b and c cover exactly what it reads and writes: len(a) = 4·mt·kb,
// len(b) = 4·nt·kb and len(c) = (4·mt−1)·ldc + 4·nt. It must not retain them.
type BlockKernel func(kb, mt, nt int, a, b []float64, c []float64, ldc int, alpha float64, accum bool)

// blockHook is an installed BlockKernel and the smallest block it is used for.
type blockHook struct {
	f       BlockKernel
	minWork int
}

var blockKernel atomic.Pointer[blockHook]

// SetBlockKernel makes Dgemm compute, wherever it runs the pure-Go 4×4 kernel (on
// WebAssembly; never where the assembly kernel runs), the full tiles of each packed
// block with one call of f, when the block's mt·nt·kb (tiles times depth) is at least
// minWork: f may cost more per call than a tile (a call out of Go), and small blocks
// stay with the Go kernel. A partial last row of tiles and a partial last column go to
// f too, through a scratch C, when their nt·kb or mt·kb is at least minWork; the
// corner tile and smaller edges stay with the Go kernel. f = nil removes the hook. Install it before the
// products that should use it; concurrent Dgemm calls see either the old or the new
// hook.
func SetBlockKernel(f BlockKernel, minWork int) {
	if f == nil {
		blockKernel.Store(nil)
		return
	}
	blockKernel.Store(&blockHook{f: f, minWork: max(minWork, 1)})
}

// blockFor returns the hook to use for an mb×nb block of depth kb run by ker, or nil.
func blockFor(ker *kernel, mb, nb, kb int) *blockHook {
	if ker != &goKernel {
		return nil
	}
	h := blockKernel.Load()
	if h == nil {
		return nil
	}
	mt, nt := mb/goKernel.mr, nb/goKernel.nr
	if mt == 0 || nt == 0 || mt*nt*kb < h.minWork {
		return nil
	}
	return h
}

// block computes the rows ic..ic+mb, columns jc..jc+nb of C for one block of k from
// the packed A block ap and B block bp: the full tiles with the hook h, and the tiles
// of a partial last row and of a partial last column with it too, each through a
// scratch C (the packed panels are zero-padded: the rows and columns past the edge
// compute values that are dropped), when there are enough of them; the other edge
// tiles (at least the corner) one by one with the Go kernel.
func (p *problem) block(h *blockHook, tmp, ap, bp []float64, ic, jc, mb, nb, kb int, accum bool) {
	const mr, nr = 4, 4
	mt, nt := mb/mr, nb/nr
	c0 := ic*p.ldc + jc
	h.f(kb, mt, nt, ap[:mt*mr*kb], bp[:nt*nr*kb], p.c[c0:c0+(mt*mr-1)*p.ldc+nt*nr], p.ldc, p.alpha, accum)
	// The partial last row of tiles (full columns) and the partial last column (full
	// rows), each through a scratch C: rows × cols of C at (i, j) there.
	edge := func(rows, cols, i, j int, run func(s []float64, lds int)) {
		lds := roundUp(cols, nr)
		sp := getBuf(roundUp(rows, mr) * lds)
		s := (*sp)[:roundUp(rows, mr)*lds]
		clear(s)
		if accum {
			for r := 0; r < rows; r++ {
				copy(s[r*lds:r*lds+cols], p.c[(i+r)*p.ldc+j:])
			}
		}
		run(s, lds)
		for r := 0; r < rows; r++ {
			copy(p.c[(i+r)*p.ldc+j:(i+r)*p.ldc+j+cols], s[r*lds:r*lds+cols])
		}
		bufPool.Put(sp)
	}
	rowDone, colDone := false, false
	if rem := mb - mt*mr; rem > 0 && nt*kb >= h.minWork {
		edge(rem, nt*nr, ic+mt*mr, jc, func(s []float64, lds int) {
			h.f(kb, 1, nt, ap[mt*mr*kb:(mt+1)*mr*kb], bp[:nt*nr*kb], s, lds, p.alpha, accum)
		})
		rowDone = true
	}
	if rem := nb - nt*nr; rem > 0 && mt*kb >= h.minWork {
		edge(mt*mr, rem, ic, jc+nt*nr, func(s []float64, lds int) {
			h.f(kb, mt, 1, ap[:mt*mr*kb], bp[nt*nr*kb:(nt+1)*nr*kb], s, lds, p.alpha, accum)
		})
		colDone = true
	}
	for ir := 0; ir < mb; ir += mr {
		partialRow := ir >= mt*mr
		jr := nt * nr
		if partialRow && !rowDone {
			jr = 0
		}
		for ; jr < nb; jr += nr {
			if jr >= nt*nr && colDone && !partialRow {
				continue
			}
			p.tile(tmp, ap[ir*kb:], kb, bp[jr*kb:], nr, min(mr, mb-ir), min(nr, nb-jr), ic+ir, jc+jr, accum)
		}
	}
}
