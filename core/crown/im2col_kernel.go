package crown

import (
	"sync"
	"sync/atomic"
)

// Im2colKernel computes what Im2col does, for an environment where the copies are
// faster outside Go (the browser worker's WebAssembly SIMD module). It copies bits:
// any implementation gives the same columns. The slices cover what Im2col reads and
// writes; it must not retain them.
type Im2colKernel func(nr int, src []float64, srcStep int, cols []float64, w, ohw int, jobs []int32, stride int)

type im2colHook struct {
	f       Im2colKernel
	minWork int
}

var im2colKernel atomic.Pointer[im2colHook]

// SetIm2colKernel makes the convolutions of α-CROWN's adjoint passes lay out their
// column matrices with f, for chunks of at least minWork values. f = nil removes the
// hook. Concurrent computations see either the old or the new hook.
func SetIm2colKernel(f Im2colKernel, minWork int) {
	if f == nil {
		im2colKernel.Store(nil)
		return
	}
	im2colKernel.Store(&im2colHook{f: f, minWork: max(minWork, 1)})
}

// Im2col runs the copy jobs (tap, dst, src, n: four int32s each) for each of nr rows:
// row r's input starts at src[r·srcStep], its output block in tap row t of the column
// matrix at cols[t·w + r·ohw], and a job copies n values stride apart from the input,
// starting at src, into consecutive values of the block starting at dst. Values no job
// writes are left alone.
func Im2col(nr int, src []float64, srcStep int, cols []float64, w, ohw int, jobs []int32, stride int) {
	if h := im2colKernel.Load(); h != nil && nr > 0 && len(jobs) > 0 {
		h.f(nr, src, srcStep, cols, w, ohw, jobs, stride)
		return
	}
	for r := 0; r < nr; r++ {
		s := src[r*srcStep:]
		for j := 0; j+3 < len(jobs); j += 4 {
			t, d0, s0, n := int(jobs[j]), int(jobs[j+1]), int(jobs[j+2]), int(jobs[j+3])
			d := cols[t*w+r*ohw+d0:][:n]
			for i := range d {
				d[i] = s[s0+i*stride]
			}
		}
	}
}

// im2colPlan is convOp's im2col of one row as Im2col's jobs: one per input channel,
// kernel tap and output row, over the tap's valid output columns. full reports that
// the jobs write every value of a row's blocks (no padding reaches them); otherwise
// the columns must be cleared first.
type im2colPlan struct {
	jobs []int32
	full bool
}

// im2colCache builds a convOp's im2col plan on first use; the op is shared by the
// goroutines of one bound.
type im2colCache struct {
	once sync.Once
	plan *im2colPlan
}

func (o *convOp) im2colPlan() *im2colPlan {
	o.cols.once.Do(func() {
		c := o.c
		ihw := c.InH * c.InW
		taps := o.taps()
		p := &im2colPlan{full: true}
		for ic := 0; ic < c.InC; ic++ {
			for ky := 0; ky < c.KH; ky++ {
				for kx := 0; kx < c.KW; kx++ {
					tp := taps[ky*c.KW+kx]
					if tp.oyLo != 0 || tp.oyHi != c.OutH || tp.oxLo != 0 || tp.oxHi != c.OutW {
						p.full = false
					}
					if tp.oxLo >= tp.oxHi {
						continue
					}
					t := (ic*c.KH+ky)*c.KW + kx
					xoff := kx*c.DW - c.PL
					for oy := tp.oyLo; oy < tp.oyHi; oy++ {
						iy := oy*c.SH - c.PT + ky*c.DH
						p.jobs = append(p.jobs, int32(t), int32(oy*c.OutW+tp.oxLo), int32(ic*ihw+iy*c.InW+tp.oxLo*c.SW+xoff),
							int32(tp.oxHi-tp.oxLo))
					}
				}
			}
		}
		o.cols.plan = p
	})
	return o.cols.plan
}

// im2colHooked is im2col through the hook, when there is one for a chunk of this
// size: it reports whether it ran.
func (o *convOp) im2colHooked(g *rows, r0, nr int, cols []float64) bool {
	h := im2colKernel.Load()
	if h == nil || len(cols) < h.minWork || nr == 0 {
		return false
	}
	c := o.c
	p := o.im2colPlan()
	if !p.full {
		clear(cols)
	}
	ohw := c.OutH * c.OutW
	Im2col(nr, g.a[r0*g.size:(r0+nr)*g.size], g.size, cols, nr*ohw, ohw, p.jobs, c.SW)
	return true
}
