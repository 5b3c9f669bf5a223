package gemmsimd

// The module's second function, concretize, is crown.Concretize for whole row
// matrices: the even and odd lanes of the Go loop's three sums are the two lanes of
// three f64x2 accumulators, a last odd element goes to lane 0 as scalar operations,
// and the lanes and the bound are combined as scalars in the Go loop's order. Each
// product and each sum is rounded on its own (f64x2.mul then f64x2.add), so every
// bound is the Go loop's bit for bit.

// Parameters and locals of concretize, by index.
const (
	cN = iota
	cSize
	cA
	cMid
	cRad
	cMx
	cBias
	cMag
	cSafety
	cLB
	// i32 locals
	cRow      // the current row's first element
	cO        // byte offset within the row (and into mid, rad, mx)
	cPairs    // bytes of the row's pairs: 16·⌊size/2⌋
	cRowBytes // 8·size
	cBP       // byte offset of the row in bias, mag, lb
	cEnd      // 8·n
	// f64 locals
	cSC // the sums' lane 0, then the sums
	cSW
	cSM
	cV // an odd row's last element, then the bias
	cAV
	// v128 locals
	cVC // accumulators of a·mid, |a|·rad, |a|·mx
	cVW
	cVM
	cVV // two elements of the row
	cVA // their absolute values
)

const (
	cNumI32  = cSC - cRow
	cNumF64  = cVC - cSC
	cNumV128 = cVA + 1 - cVC
	// pairsPerStep is the loop's unrolling: pairs of elements per iteration.
	pairsPerStep = 2
)

// addr pushes base + offset (both locals).
func (c *code) addr(base, off int) { c.get(base); c.get(off); c.op(opI32Add) }

// f64mem is a scalar load or store with its alignment hint and offset.
func (c *code) f64mem(op byte, off uint32) {
	c.op(op)
	*c = append(*c, uleb(alignF64)...)
	*c = append(*c, uleb(off)...)
}

// lane pushes lane l of the f64x2 local v.
func (c *code) lane(v int, l byte) { c.get(v); c.simd(f64x2Extract); c.op(l) }

// concretizePair adds the pair of row elements at byte offset o+off to the
// accumulators.
func (c *code) concretizePair(off uint32) {
	c.addr(cRow, cO)
	c.mem(v128Load, off)
	c.set(cVV)
	c.get(cVV)
	c.simd(f64x2Abs)
	c.set(cVA)
	for _, t := range [][3]int{{cVC, cVV, cMid}, {cVW, cVA, cRad}, {cVM, cVA, cMx}} {
		c.get(t[0])
		c.get(t[1])
		c.addr(t[2], cO)
		c.mem(v128Load, off)
		c.simd(f64x2Mul)
		c.simd(f64x2Add)
		c.set(t[0])
	}
}

// concretizeCode is the function body without its locals and final end.
func concretizeCode() []byte {
	var c code
	c.get(cN)
	c.i32(0)
	c.op(opI32LeS)
	c.op(opIf, blockVoid)
	c.op(opReturn)
	c.op(opEnd)

	c.get(cSize)
	c.i32(1)
	c.op(opI32ShrU)
	c.i32(4)
	c.op(opI32Shl)
	c.set(cPairs)
	c.get(cSize)
	c.i32(3)
	c.op(opI32Shl)
	c.set(cRowBytes)
	c.get(cN)
	c.i32(3)
	c.op(opI32Shl)
	c.set(cEnd)
	c.get(cA)
	c.set(cRow)
	c.i32(0)
	c.set(cBP)

	c.op(opLoop, blockVoid) // rows
	{
		for _, v := range []int{cVC, cVW, cVM} {
			c.simd(v128Const)
			c.op(make([]byte, 16)...) // +0, as the Go loop's sums start
			c.set(v)
		}
		c.i32(0)
		c.set(cO)
		// pairsPerStep pairs at a time while that many remain, then one at a time.
		c.op(opBlock, blockVoid)
		c.op(opLoop, blockVoid)
		{
			c.get(cO)
			c.i32(16 * pairsPerStep)
			c.op(opI32Add)
			c.get(cPairs)
			c.op(opI32GtS)
			c.op(opBrIf, 1)
			for u := 0; u < pairsPerStep; u++ {
				c.concretizePair(uint32(16 * u))
			}
			c.addTo(cO, 16*pairsPerStep)
			c.op(opBr, 0)
		}
		c.op(opEnd, opEnd)
		c.op(opBlock, blockVoid)
		c.op(opLoop, blockVoid)
		{
			c.get(cO)
			c.get(cPairs)
			c.op(opI32GeS)
			c.op(opBrIf, 1)
			c.concretizePair(0)
			c.addTo(cO, 16)
			c.op(opBr, 0)
		}
		c.op(opEnd, opEnd)
		c.lane(cVC, 0)
		c.set(cSC)
		c.lane(cVW, 0)
		c.set(cSW)
		c.lane(cVM, 0)
		c.set(cSM)
		// An odd row's last element, in lane 0: cO is at it.
		c.get(cSize)
		c.i32(1)
		c.op(opI32And)
		c.op(opIf, blockVoid)
		{
			c.addr(cRow, cO)
			c.f64mem(opF64Load, 0)
			c.set(cV)
			c.get(cV)
			c.op(opF64Abs)
			c.set(cAV)
			for _, t := range [][3]int{{cSC, cV, cMid}, {cSW, cAV, cRad}, {cSM, cAV, cMx}} {
				c.get(t[0])
				c.get(t[1])
				c.addr(t[2], cO)
				c.f64mem(opF64Load, 0)
				c.op(opF64Mul)
				c.op(opF64Add)
				c.set(t[0])
			}
		}
		c.op(opEnd)
		// Lane 0 + lane 1.
		for _, t := range [][2]int{{cSC, cVC}, {cSW, cVW}, {cSM, cVM}} {
			c.get(t[0])
			c.lane(t[1], 1)
			c.op(opF64Add)
			c.set(t[0])
		}
		// lb = ((bias + c) − w) − safety·((m + mag) + |bias|)
		c.addr(cBias, cBP)
		c.f64mem(opF64Load, 0)
		c.set(cV)
		c.addr(cLB, cBP) // the store's address
		c.get(cV)
		c.get(cSC)
		c.op(opF64Add)
		c.get(cSW)
		c.op(opF64Sub)
		c.get(cSafety)
		c.get(cSM)
		c.addr(cMag, cBP)
		c.f64mem(opF64Load, 0)
		c.op(opF64Add)
		c.get(cV)
		c.op(opF64Abs)
		c.op(opF64Add)
		c.op(opF64Mul)
		c.op(opF64Sub)
		c.f64mem(opF64Store, 0)

		c.addLocal(cRow, cRowBytes)
		c.next(cBP, 8, cEnd, opI32LtS)
	}
	c.op(opEnd)
	return c
}
