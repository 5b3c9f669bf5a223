package gemmsimd

// The module's fifth function, adam, is crown.Adam two elements at a time in f64x2
// lanes (a last odd element in lane 0 of a vector whose lane 1 is zero, of which
// only lane 0 is stored): every operation is the Go loop's, in its order, each
// rounded (f64x2.sqrt and f64x2.div are correctly rounded, as Go's are), and clamp's
// comparisons are bitselects on f64x2.lt and f64x2.gt, so NaNs and −0 pass as in Go.

// Parameters and locals of adam, by index.
const (
	dN = iota
	dA
	dG
	dM
	dV
	dB1
	dC1
	dB2
	dC2
	dEps
	dLR
	dIC1
	dIC2
	// i32 locals
	dO   // byte offset of the current pair
	dEnd // byte offset of the last full pair's end
	// v128 locals: the constants in both lanes, then temporaries
	dB1v
	dC1v
	dB2v
	dC2v
	dEpsv
	dLRv
	dIC1v
	dIC2v
	dZero
	dOne
	dGv
	dMv
	dVv
	dX
)

const (
	dNumI32  = dB1v - dO
	dNumV128 = dX + 1 - dB1v

	f64x2Lt   = 0x49
	f64x2Gt   = 0x4a
	f64x2Sqrt = 0xef
	f64x2Div  = 0xf3
)

// adamStep emits one step on the pair (or, with tail, the lone element) at byte
// offset dO.
func (c *code) adamStep(tail bool) {
	load := func(base int) {
		c.addr(base, dO)
		if tail {
			c.mem(v128Load64Zero, 0)
		} else {
			c.mem(v128Load, 0)
		}
	}
	store := func(base, v int) {
		c.addr(base, dO)
		c.get(v)
		if tail {
			c.mem(v128Store64Lane, 0)
			c.op(0)
		} else {
			c.mem(v128Store, 0)
		}
	}
	load(dG)
	c.set(dGv)
	// m = B1·m + C1·g
	c.get(dB1v)
	load(dM)
	c.simd(f64x2Mul)
	c.get(dC1v)
	c.get(dGv)
	c.simd(f64x2Mul)
	c.simd(f64x2Add)
	c.set(dMv)
	// v = B2·v + (C2·g)·g
	c.get(dB2v)
	load(dV)
	c.simd(f64x2Mul)
	c.get(dC2v)
	c.get(dGv)
	c.simd(f64x2Mul)
	c.get(dGv)
	c.simd(f64x2Mul)
	c.simd(f64x2Add)
	c.set(dVv)
	store(dM, dMv)
	store(dV, dVv)
	// x = a + (LR·(m·IC1)) / (√(v·IC2) + Eps)
	load(dA)
	c.get(dLRv)
	c.get(dMv)
	c.get(dIC1v)
	c.simd(f64x2Mul)
	c.simd(f64x2Mul)
	c.get(dVv)
	c.get(dIC2v)
	c.simd(f64x2Mul)
	c.simd(f64x2Sqrt)
	c.get(dEpsv)
	c.simd(f64x2Add)
	c.simd(f64x2Div)
	c.simd(f64x2Add)
	c.set(dX)
	// clamp(x, 0, 1): x < 0 → 0, then x > 1 → 1.
	c.get(dZero)
	c.get(dX)
	c.get(dX)
	c.get(dZero)
	c.simd(f64x2Lt)
	c.simd(v128Bitselect)
	c.set(dX)
	c.get(dOne)
	c.get(dX)
	c.get(dX)
	c.get(dOne)
	c.simd(f64x2Gt)
	c.simd(v128Bitselect)
	c.set(dX)
	store(dA, dX)
}

// adamCode is the function body without its locals and final end.
func adamCode() []byte {
	var c code
	for _, p := range [][2]int{{dB1, dB1v}, {dC1, dC1v}, {dB2, dB2v}, {dC2, dC2v}, {dEps, dEpsv}, {dLR, dLRv}, {dIC1, dIC1v}, {dIC2, dIC2v}} {
		c.get(p[0])
		c.simd(f64x2Splat)
		c.set(p[1])
	}
	c.simd(v128Const)
	c.op(make([]byte, 16)...)
	c.set(dZero)
	c.simd(v128Const)
	for l := 0; l < 2; l++ {
		c.op(0, 0, 0, 0, 0, 0, 0xf0, 0x3f) // 1.0, little-endian
	}
	c.set(dOne)
	// dEnd = 16·⌊n/2⌋
	c.get(dN)
	c.i32(1)
	c.op(opI32ShrU)
	c.i32(4)
	c.op(opI32Shl)
	c.set(dEnd)
	c.i32(0)
	c.set(dO)
	c.op(opBlock, blockVoid)
	c.op(opLoop, blockVoid)
	{
		c.get(dO)
		c.get(dEnd)
		c.op(opI32GeS)
		c.op(opBrIf, 1)
		c.adamStep(false)
		c.addTo(dO, 16)
		c.op(opBr, 0)
	}
	c.op(opEnd, opEnd)
	c.get(dN)
	c.i32(1)
	c.op(opI32And)
	c.op(opIf, blockVoid)
	c.adamStep(true)
	c.op(opEnd)
	return c
}
