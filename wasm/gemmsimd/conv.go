package gemmsimd

// The module's seventh and eighth functions, gather and interleave, are crown.Gather
// and crown.Interleave. gather checks each segment and its sources against the channel
// blocks (64-bit arithmetic; out of range traps), then writes the segment in passes of
// two values at a time: zeros, a copy of the first source, or the first two summed,
// then each further source added in order (f64x2.add, a last odd value as f64.add), so
// every value is summed as in Go. interleave checks the column map and the rows once,
// then copies value by value as 64-bit integers.

// Parameters and locals of gather, by index.
const (
	gInC = iota
	gIHW
	gKKW
	gNR
	gCols
	gG
	gSegs
	gNSegs
	gSrc
	gNSrc
	gColsLen
	gGLen
	// i32 locals
	gIC    // channel
	gCB    // the channel's columns
	gGB    // the channel's block of g
	gSP    // the current segment
	gSEnd  // the end of the segments
	gD     // the segment's destination
	gL     // its length in values (n·nr)
	gK     // its number of sources
	gFirst // its first source's index in src
	gJ     // source counter
	gPA    // pass operands
	gPB    //
	gI     // byte offset in a pass
	gEnd   // end of a pass's pairs
	gNRB   // 8·nr
	// i64 locals, for the checks
	gQ64   // a source (or the destination) position
	gN64   // the segment's n
	gNR64  // nr
	gKKW64 // kkw
	gIHW64 // ihw
	// v128 locals
	gZero
)

const (
	gNumI32  = gQ64 - gIC
	gNumI64  = gZero - gQ64
	gNumV128 = 1
)

// trapIf traps when the i32 condition on the stack is true.
func (c *code) trapIf() { c.op(opIf, blockVoid, opUnreachable, opEnd) }

// pass writes gL values at gD: mode 0 zeros, 1 a copy of gPA, 2 the sums gPA + gPB.
func (c *code) pass(mode int) {
	c.get(gL)
	c.i32(1)
	c.op(opI32ShrU)
	c.i32(4)
	c.op(opI32Shl)
	c.set(gEnd)
	c.i32(0)
	c.set(gI)
	c.op(opBlock, blockVoid)
	c.op(opLoop, blockVoid)
	{
		c.get(gI)
		c.get(gEnd)
		c.op(opI32GeS)
		c.op(opBrIf, 1)
		c.addr(gD, gI)
		switch mode {
		case 0:
			c.get(gZero)
		case 1:
			c.addr(gPA, gI)
			c.mem(v128Load, 0)
		case 2:
			c.addr(gPA, gI)
			c.mem(v128Load, 0)
			c.addr(gPB, gI)
			c.mem(v128Load, 0)
			c.simd(f64x2Add)
		}
		c.mem(v128Store, 0)
		c.addTo(gI, 16)
		c.op(opBr, 0)
	}
	c.op(opEnd, opEnd)
	// A last odd value.
	c.get(gL)
	c.i32(1)
	c.op(opI32And)
	c.op(opIf, blockVoid)
	{
		c.addr(gD, gI)
		switch mode {
		case 0:
			c.op(opI64Const, 0)
			c.i64mem(opI64Store, 0)
		case 1:
			c.addr(gPA, gI)
			c.i64mem(opI64Load, 0)
			c.i64mem(opI64Store, 0)
		case 2:
			c.addr(gPA, gI)
			c.f64mem(opF64Load, 0)
			c.addr(gPB, gI)
			c.f64mem(opF64Load, 0)
			c.op(opF64Add)
			c.f64mem(opF64Store, 0)
		}
	}
	c.op(opEnd)
}

// segField pushes field f (0–3) of the current segment.
func (c *code) segField(f uint32) {
	c.get(gSP)
	c.op(opI32Load)
	*c = append(*c, uleb(2)...)
	*c = append(*c, uleb(4*f)...)
}

// srcAt pushes the address of source j (an i32 local) of the segment in the channel's
// columns: gCB + 8·nr·src[first + j].
func (c *code) srcAt(j int) {
	c.get(gCB)
	c.get(gSrc)
	c.get(gFirst)
	c.get(j)
	c.op(opI32Add)
	c.i32(2)
	c.op(opI32Shl)
	c.op(opI32Add)
	c.op(opI32Load)
	*c = append(*c, uleb(2)...)
	*c = append(*c, uleb(0)...)
	c.get(gNRB)
	c.op(opI32Mul)
	c.op(opI32Add)
}

// gatherCode is the function body without its locals and final end.
func gatherCode() []byte {
	var c code
	c.get(gInC)
	c.i32(0)
	c.op(opI32LeS)
	c.get(gNSegs)
	c.i32(0)
	c.op(opI32LeS)
	c.op(opI32Or)
	c.get(gNR)
	c.i32(0)
	c.op(opI32LeS)
	c.op(opI32Or)
	c.op(opIf, blockVoid)
	c.op(opReturn)
	c.op(opEnd)
	// inC·kkw ≤ len(cols) and inC·ihw·nr ≤ len(g), in 64 bits.
	c.i64of(gNR64, func() { c.get(gNR) })
	c.i64of(gKKW64, func() { c.get(gKKW) })
	c.i64of(gIHW64, func() { c.get(gIHW) })
	c.get(gKKW)
	c.get(gIHW)
	c.op(opI32Or)
	c.i32(0)
	c.op(opI32LtS)
	c.get(gInC)
	c.op(opI64ExtendI32)
	c.get(gKKW64)
	c.op(opI64Mul)
	c.get(gColsLen)
	c.op(opI64ExtendI32)
	c.op(opI64GtS)
	c.op(opI32Or)
	c.get(gInC)
	c.op(opI64ExtendI32)
	c.get(gIHW64)
	c.op(opI64Mul)
	c.get(gNR64)
	c.op(opI64Mul)
	c.get(gGLen)
	c.op(opI64ExtendI32)
	c.op(opI64GtS)
	c.op(opI32Or)
	c.trapIf()

	c.byteScale(gNRB, gNR)
	c.get(gNSegs)
	c.i32(4)
	c.op(opI32Shl)
	c.get(gSegs)
	c.op(opI32Add)
	c.set(gSEnd)
	c.simd(v128Const)
	c.op(make([]byte, 16)...)
	c.set(gZero)
	c.get(gCols)
	c.set(gCB)
	c.get(gG)
	c.set(gGB)
	c.i32(0)
	c.set(gIC)

	c.op(opLoop, blockVoid) // channels
	{
		c.get(gSegs)
		c.set(gSP)
		c.op(opLoop, blockVoid) // segments
		{
			// dst, n, k, first ≥ 0; first + k ≤ nsrc; (dst + n)·nr ≤ ihw·nr.
			c.i64of(gQ64, func() { c.segField(0) })
			c.i64of(gN64, func() { c.segField(1) })
			c.segField(2)
			c.set(gK)
			c.segField(3)
			c.set(gFirst)
			c.get(gQ64)
			c.get(gN64)
			c.op(opI64Add)
			c.get(gIHW64)
			c.op(opI64GtS)
			for _, l := range []int{gQ64, gN64} {
				c.get(l)
				c.op(opI64Const, 0)
				c.op(opI64LtS)
				c.op(opI32Or)
			}
			c.get(gK)
			c.get(gFirst)
			c.op(opI32Or)
			c.i32(0)
			c.op(opI32LtS)
			c.op(opI32Or)
			c.get(gFirst)
			c.op(opI64ExtendI32)
			c.get(gK)
			c.op(opI64ExtendI32)
			c.op(opI64Add)
			c.get(gNSrc)
			c.op(opI64ExtendI32)
			c.op(opI64GtS)
			c.op(opI32Or)
			c.trapIf()
			// Every source: 0 ≤ q and (q + n)·nr ≤ kkw.
			c.i32(0)
			c.set(gJ)
			c.op(opBlock, blockVoid)
			c.op(opLoop, blockVoid)
			{
				c.get(gJ)
				c.get(gK)
				c.op(opI32GeS)
				c.op(opBrIf, 1)
				c.i64of(gQ64, func() {
					c.get(gSrc)
					c.get(gFirst)
					c.get(gJ)
					c.op(opI32Add)
					c.i32(2)
					c.op(opI32Shl)
					c.op(opI32Add)
					c.op(opI32Load)
					c.op(uleb(2)...)
					c.op(uleb(0)...)
				})
				c.get(gQ64)
				c.op(opI64Const, 0)
				c.op(opI64LtS)
				c.get(gQ64)
				c.get(gN64)
				c.op(opI64Add)
				c.get(gNR64)
				c.op(opI64Mul)
				c.get(gKKW64)
				c.op(opI64GtS)
				c.op(opI32Or)
				c.trapIf()
				c.addTo(gJ, 1)
				c.op(opBr, 0)
			}
			c.op(opEnd, opEnd)

			// d = gb + 8·nr·dst, L = n·nr
			c.get(gGB)
			c.segField(0)
			c.get(gNRB)
			c.op(opI32Mul)
			c.op(opI32Add)
			c.set(gD)
			c.segField(1)
			c.get(gNR)
			c.op(opI32Mul)
			c.set(gL)
			c.get(gK)
			c.op(0x45) // i32.eqz
			c.op(opIf, blockVoid)
			c.pass(0)
			c.op(opElse)
			{
				c.i32(0)
				c.set(gJ)
				c.srcAt(gJ)
				c.set(gPA)
				c.get(gK)
				c.i32(1)
				c.op(opI32Eq)
				c.op(opIf, blockVoid)
				c.pass(1)
				c.op(opElse)
				{
					c.i32(1)
					c.set(gJ)
					c.srcAt(gJ)
					c.set(gPB)
					c.pass(2)
					c.op(opBlock, blockVoid)
					c.op(opLoop, blockVoid) // the further sources: d += source j
					{
						c.addTo(gJ, 1)
						c.get(gJ)
						c.get(gK)
						c.op(opI32GeS)
						c.op(opBrIf, 1)
						c.get(gD)
						c.set(gPA)
						c.srcAt(gJ)
						c.set(gPB)
						c.pass(2)
						c.op(opBr, 0)
					}
					c.op(opEnd, opEnd)
				}
				c.op(opEnd)
			}
			c.op(opEnd)

			c.next(gSP, 16, gSEnd, opI32LtU)
		}
		c.op(opEnd)
		// Next channel: cb += 8·kkw, gb += 8·ihw·nr.
		c.get(gCB)
		c.get(gKKW)
		c.i32(3)
		c.op(opI32Shl)
		c.op(opI32Add)
		c.set(gCB)
		c.get(gGB)
		c.get(gIHW)
		c.get(gNRB)
		c.op(opI32Mul)
		c.op(opI32Add)
		c.set(gGB)
		c.next(gIC, 1, gInC, opI32LtS)
	}
	c.op(opEnd)
	return c
}

// Parameters and locals of interleave, by index.
const (
	iNY = iota
	iIW
	iNR
	iG
	iXmap
	iRS
	iNRS
	iOut
	iSize
	iGLen
	iOutLen
	// i32 locals
	iY   // input row
	iR   // row of the chunk
	iX   // position in the input row
	iGY  // g's block of input row y
	iDP  // destination row pointer
	iXP  // xmap pointer
	iNRB // 8·nr
	iGYB // 8·iw·nr: g's advance per input row
	// i64 locals, for the checks
	iT64
)

const (
	iNumI32 = iT64 - iY
	iNumI64 = 1
)

// interleaveCode is the function body without its locals and final end.
func interleaveCode() []byte {
	var c code
	c.get(iNY)
	c.i32(0)
	c.op(opI32LeS)
	c.get(iIW)
	c.i32(0)
	c.op(opI32LeS)
	c.op(opI32Or)
	c.get(iNRS)
	c.i32(0)
	c.op(opI32LeS)
	c.op(opI32Or)
	c.op(opIf, blockVoid)
	c.op(opReturn)
	c.op(opEnd)
	// nrs ≤ nr, size ≥ 0, ny·iw·nr ≤ len(g) (64 bits).
	c.get(iNRS)
	c.get(iNR)
	c.op(opI32GtS)
	c.get(iSize)
	c.i32(0)
	c.op(opI32LtS)
	c.op(opI32Or)
	c.get(iNY)
	c.op(opI64ExtendI32)
	c.get(iIW)
	c.op(opI64ExtendI32)
	c.op(opI64Mul)
	c.get(iNR)
	c.op(opI64ExtendI32)
	c.op(opI64Mul)
	c.get(iGLen)
	c.op(opI64ExtendI32)
	c.op(opI64GtS)
	c.op(opI32Or)
	c.trapIf()
	// Every xmap value in [0, iw).
	c.i32(0)
	c.set(iX)
	c.op(opLoop, blockVoid)
	{
		c.get(iXmap)
		c.get(iX)
		c.i32(2)
		c.op(opI32Shl)
		c.op(opI32Add)
		c.op(opI32Load)
		c.op(uleb(2)...)
		c.op(uleb(0)...)
		c.set(iXP) // the value, for the moment
		c.get(iXP)
		c.i32(0)
		c.op(opI32LtS)
		c.get(iXP)
		c.get(iIW)
		c.op(opI32GeS)
		c.op(opI32Or)
		c.trapIf()
		c.next(iX, 1, iIW, opI32LtS)
	}
	c.op(opEnd)
	// Every row: 0 ≤ ri and ri·size + ny·iw ≤ len(out).
	c.i32(0)
	c.set(iR)
	c.op(opLoop, blockVoid)
	{
		c.i64of(iT64, func() {
			c.get(iRS)
			c.get(iR)
			c.i32(2)
			c.op(opI32Shl)
			c.op(opI32Add)
			c.op(opI32Load)
			c.op(uleb(2)...)
			c.op(uleb(0)...)
		})
		c.get(iT64)
		c.op(opI64Const, 0)
		c.op(opI64LtS)
		c.get(iT64)
		c.get(iSize)
		c.op(opI64ExtendI32)
		c.op(opI64Mul)
		c.get(iNY)
		c.op(opI64ExtendI32)
		c.get(iIW)
		c.op(opI64ExtendI32)
		c.op(opI64Mul)
		c.op(opI64Add)
		c.get(iOutLen)
		c.op(opI64ExtendI32)
		c.op(opI64GtS)
		c.op(opI32Or)
		c.trapIf()
		c.next(iR, 1, iNRS, opI32LtS)
	}
	c.op(opEnd)

	c.byteScale(iNRB, iNR)
	c.get(iIW)
	c.get(iNRB)
	c.op(opI32Mul)
	c.set(iGYB)
	c.get(iG)
	c.set(iGY)
	c.i32(0)
	c.set(iY)
	c.op(opLoop, blockVoid) // input rows
	{
		c.i32(0)
		c.set(iR)
		c.op(opLoop, blockVoid) // rows of the chunk
		{
			// dp = out + 8·(rs[r]·size + y·iw)
			c.get(iRS)
			c.get(iR)
			c.i32(2)
			c.op(opI32Shl)
			c.op(opI32Add)
			c.op(opI32Load)
			c.op(uleb(2)...)
			c.op(uleb(0)...)
			c.get(iSize)
			c.op(opI32Mul)
			c.get(iY)
			c.get(iIW)
			c.op(opI32Mul)
			c.op(opI32Add)
			c.i32(3)
			c.op(opI32Shl)
			c.get(iOut)
			c.op(opI32Add)
			c.set(iDP)
			c.get(iXmap)
			c.set(iXP)
			c.i32(0)
			c.set(iX)
			c.op(opLoop, blockVoid) // positions
			{
				// *dp = g_y[8·(xmap[x]·nr + r)]
				c.get(iDP)
				c.get(iGY)
				c.get(iXP)
				c.op(opI32Load)
				c.op(uleb(2)...)
				c.op(uleb(0)...)
				c.get(iNR)
				c.op(opI32Mul)
				c.get(iR)
				c.op(opI32Add)
				c.i32(3)
				c.op(opI32Shl)
				c.op(opI32Add)
				c.i64mem(opI64Load, 0)
				c.i64mem(opI64Store, 0)
				c.addTo(iDP, 8)
				c.addTo(iXP, 4)
				c.next(iX, 1, iIW, opI32LtS)
			}
			c.op(opEnd)
			c.next(iR, 1, iNRS, opI32LtS)
		}
		c.op(opEnd)
		c.addLocal(iGY, iGYB)
		c.next(iY, 1, iNY, opI32LtS)
	}
	c.op(opEnd)
	return c
}
