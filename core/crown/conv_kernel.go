package crown

import (
	"sync"
	"sync/atomic"
)

// The transposed convolution's gather and interleave passes (conv_backward.go) as
// hooks, for an environment where they are faster outside Go (the browser worker's
// WebAssembly SIMD module).

// GatherKernel computes what Gather does, bit for bit (NaN payloads aside): each value
// is its sources summed in order, each sum rounded. The slices cover what Gather reads
// and writes; it must not retain them.
type GatherKernel func(inC, ihw, kkw, nr int, cols, g []float64, segs, src []int32)

// InterleaveKernel computes what Interleave does (it copies bits). The slices cover
// what Interleave reads and writes; it must not retain them.
type InterleaveKernel func(ny, iw, nr int, g []float64, xmap, rs []int32, out []float64, size int)

type convHooks struct {
	gather     GatherKernel
	interleave InterleaveKernel
	minWork    int
}

var convKernels atomic.Pointer[convHooks]

// SetConvKernels makes the transposed convolutions of CROWN's backward passes gather
// and interleave their chunks with gather and interleave, for chunks of at least
// minWork input values (rows × input size). nil, nil removes them. Concurrent
// computations see either the old or the new hooks.
func SetConvKernels(gather GatherKernel, interleave InterleaveKernel, minWork int) {
	if gather == nil || interleave == nil {
		convKernels.Store(nil)
		return
	}
	convKernels.Store(&convHooks{gather: gather, interleave: interleave, minWork: max(minWork, 1)})
}

// Gather writes, for each channel ic < inC and each segment (dst, n, k, first: four
// int32s) of segs, the n·nr values of g from g[(ic·ihw + dst)·nr]: zeros when k = 0,
// else value i is the sum, in order, of cols[ic·kkw + src[first+j]·nr + i] over
// j < k (the first source alone when k = 1).
func Gather(inC, ihw, kkw, nr int, cols, g []float64, segs, src []int32) {
	if h := convKernels.Load(); h != nil && inC > 0 && nr > 0 && len(segs) > 0 {
		h.gather(inC, ihw, kkw, nr, cols, g, segs, src)
		return
	}
	for ic := 0; ic < inC; ic++ {
		cb := cols[ic*kkw : (ic+1)*kkw]
		gb := g[ic*ihw*nr : (ic+1)*ihw*nr]
		for q := 0; q+3 < len(segs); q += 4 {
			dst, n, k, first := int(segs[q]), int(segs[q+1]), int(segs[q+2]), int(segs[q+3])
			d := gb[dst*nr:][:n*nr]
			if k == 0 {
				clear(d)
				continue
			}
			copy(d, cb[int(src[first])*nr:][:len(d)])
			for _, s := range src[first+1 : first+k] {
				a := cb[int(s)*nr:][:len(d)]
				for i := range d {
					d[i] += a[i]
				}
			}
		}
	}
}

// Interleave copies, for each y < ny and each row r of rs, value ix < iw of the row's
// input row y from g: out[rs[r]·size + y·iw + ix] = g[y·iw·nr + xmap[ix]·nr + r].
func Interleave(ny, iw, nr int, g []float64, xmap, rs []int32, out []float64, size int) {
	if h := convKernels.Load(); h != nil && ny > 0 && iw > 0 && len(rs) > 0 {
		h.interleave(ny, iw, nr, g, xmap, rs, out, size)
		return
	}
	for y := 0; y < ny; y++ {
		gy := g[y*iw*nr : (y+1)*iw*nr]
		for r, ri := range rs {
			d := out[int(ri)*size+y*iw:][:iw]
			for ix, q := range xmap[:iw] {
				d[ix] = gy[int(q)*nr+r]
			}
		}
	}
}

// gatherPlan32 is a gather plan's segments, sources and column map as int32s, for
// Gather and Interleave.
type gatherPlan32 struct {
	once            sync.Once
	segs, src, xmap []int32
}

func (p *gatherPlan) int32s() *gatherPlan32 {
	q := &p.p32
	q.once.Do(func() {
		for _, s := range p.segs {
			q.segs = append(q.segs, int32(s.dst), int32(s.n), int32(s.k), int32(s.first))
		}
		q.src = make([]int32, len(p.src))
		for i, v := range p.src {
			q.src[i] = int32(v)
		}
		q.xmap = make([]int32, len(p.xmap))
		for i, v := range p.xmap {
			q.xmap[i] = int32(v)
		}
	})
	return q
}

// convHooked runs a chunk's gather and interleave through the hooks when there are
// some for a chunk of this size, and reports whether it did.
func (o *convOp) convHooked(p *gatherPlan, cols []float64, rs []int, g []float64, out *rows) bool {
	h := convKernels.Load()
	c := o.c
	nr := len(rs)
	if h == nil || nr*c.InSize() < h.minWork {
		return false
	}
	q := p.int32s()
	kkw := c.KH * c.KW * c.OutH * c.OutW * nr
	Gather(c.InC, c.InH*c.InW, kkw, nr, cols, g[:c.InSize()*nr], q.segs, q.src)
	rs32 := make([]int32, nr)
	for i, r := range rs {
		rs32[i] = int32(r)
	}
	Interleave(c.InC*c.InH, c.InW, nr, g[:c.InSize()*nr], q.xmap, rs32, out.a, out.size)
	return true
}
