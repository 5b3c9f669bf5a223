package gemmsimd

import "github.com/graftcert/graftcert/core/crown"

// The module's third function, relax, is crown.RelaxRows: two rows at a time, one
// per lane, so that each row's constant is summed in the Go loop's order (one lane
// follows one row through the neurons); a last odd row fills both lanes. The table
// entry of a neuron is splatted to both lanes, the ≥/< choice is a bitselect on
// f64x2.ge, and the masks are v128.and, so every value is the Go loop's bit for bit.

// Parameters and locals of relax, by index.
const (
	rN = iota
	rSize
	rA
	rTab
	rAlpha // 0: no α
	rNu
	rBias
	rMag
	// i32 locals
	rR        // the pair's first row
	rPA       // its first element
	rPB       // the second row's first element (= rPA for a last odd row)
	rQA       // the rows' α rows
	rQB       //
	rBA       // the rows' byte offsets in bias and mag
	rBB       //
	rE        // the current neuron's table entry
	rEnd      // the end of the table
	rO        // byte offset of the current neuron in a row
	rRowBytes // 8·size
	rAlBytes  // 8·nu
	rCol      // the neuron's α column
	// v128 locals
	rZero
	rV  // the two rows' coefficients of the neuron
	rGE // v ≥ 0
	rZ  // v = ±0
	rC  // the ≥ coefficient
	rS  // the rows' constants
	rM  // and their magnitudes
)

const (
	rNumI32    = rZero - rR
	rNumV128   = rM + 1 - rZero
	entryBytes = 8 * crown.RelaxSlots
)

// SIMD opcodes beyond the block kernel's.
const (
	f64x2Eq         = 0x47
	f64x2Ge         = 0x4c
	v128And         = 0x4e
	v128AndNot      = 0x4f
	v128Bitselect   = 0x52
	v128Load64Lane  = 0x57
	v128Store64Lane = 0x5b
	v128Load64Zero  = 0x5d
	opI64Load       = 0x29
	opI32WrapI64    = 0xa7
)

// splat pushes slot s of the current table entry in both lanes.
func (c *code) splat(s int) { c.get(rE); c.mem(v128Load64Spl, uint32(8*s)) }

// noOff is pairLoad's and pairStore's lo for no offset.
const noOff = -1

// at pushes base + off (locals), or base alone when off is noOff.
func (c *code) at(base, off int) {
	if off == noOff {
		c.get(base)
		return
	}
	c.addr(base, off)
}

// pairLoad pushes [lane 0 from address la + lo, lane 1 from lb + lo] (locals). It
// uses rC as a temporary.
func (c *code) pairLoad(la, lb, lo int) {
	c.at(la, lo)
	c.mem(v128Load64Zero, 0)
	c.set(rC)
	c.at(lb, lo)
	c.get(rC)
	c.mem(v128Load64Lane, 0)
	c.op(1)
}

// pairStore stores lane 0 of v at la + lo and lane 1 at lb + lo.
func (c *code) pairStore(v, la, lb, lo int) {
	for l, base := range []int{la, lb} {
		c.at(base, lo)
		c.get(v)
		c.mem(v128Store64Lane, 0)
		c.op(byte(l))
	}
}

// relaxCode is the function body without its locals and final end.
func relaxCode() []byte {
	var c code
	c.get(rN)
	c.i32(0)
	c.op(opI32LeS)
	c.op(opIf, blockVoid)
	c.op(opReturn)
	c.op(opEnd)

	c.get(rSize)
	c.i32(3)
	c.op(opI32Shl)
	c.set(rRowBytes)
	c.get(rNu)
	c.i32(3)
	c.op(opI32Shl)
	c.set(rAlBytes)
	c.get(rSize)
	c.i32(entryBytes)
	c.op(opI32Mul)
	c.get(rTab)
	c.op(opI32Add)
	c.set(rEnd)
	c.get(rA)
	c.set(rPA)
	c.get(rAlpha)
	c.set(rQA)
	c.i32(0)
	c.set(rBA)
	c.i32(0)
	c.set(rR)
	c.simd(v128Const)
	c.op(make([]byte, 16)...)
	c.set(rZero)

	c.op(opLoop, blockVoid) // pairs of rows
	{
		// The second row, or the first again when it is the last.
		c.get(rR)
		c.i32(1)
		c.op(opI32Add)
		c.get(rN)
		c.op(opI32LtS)
		c.op(opIf, blockVoid)
		{
			c.get(rPA)
			c.get(rRowBytes)
			c.op(opI32Add)
			c.set(rPB)
			c.get(rQA)
			c.get(rAlBytes)
			c.op(opI32Add)
			c.set(rQB)
			c.get(rBA)
			c.i32(8)
			c.op(opI32Add)
			c.set(rBB)
		}
		c.op(opElse)
		{
			c.get(rPA)
			c.set(rPB)
			c.get(rQA)
			c.set(rQB)
			c.get(rBA)
			c.set(rBB)
		}
		c.op(opEnd)
		c.get(rZero)
		c.set(rS)
		c.get(rZero)
		c.set(rM)
		c.get(rTab)
		c.set(rE)
		c.i32(0)
		c.set(rO)

		c.op(opBlock, blockVoid)
		c.op(opLoop, blockVoid) // neurons
		{
			c.get(rE)
			c.get(rEnd)
			c.op(opI32GeU) // addresses: unsigned
			c.op(opBrIf, 1)

			c.pairLoad(rPA, rPB, rO)
			c.set(rV)
			c.get(rV)
			c.get(rZero)
			c.simd(f64x2Ge)
			c.set(rGE)
			c.get(rV)
			c.get(rZero)
			c.simd(f64x2Eq)
			c.set(rZ)

			// The ≥ coefficient: the entry's, or the rows' α at its column.
			c.splat(crown.RelaxCoefGE)
			c.set(rC)
			c.get(rAlpha)
			c.op(opIf, blockVoid)
			{
				c.get(rE)
				c.op(opI64Load)
				c.op(uleb(alignF64)...)
				c.op(uleb(uint32(8 * crown.RelaxCol))...)
				c.op(opI32WrapI64)
				c.set(rCol)
				c.get(rCol)
				c.i32(0)
				c.op(opI32GeS)
				c.op(opIf, blockVoid)
				{
					c.get(rCol)
					c.i32(3)
					c.op(opI32Shl)
					c.set(rCol)
					c.pairLoad(rQA, rQB, rCol)
					c.set(rC)
				}
				c.op(opEnd)
			}
			c.op(opEnd)

			// v ← v = ±0 ? v : (v·(ge ? c : coefLT)) & keep
			c.get(rV) // bitselect's first operand
			c.get(rV)
			c.get(rC)
			c.splat(crown.RelaxCoefLT)
			c.get(rGE)
			c.simd(v128Bitselect)
			c.simd(f64x2Mul)
			c.splat(crown.RelaxKeep)
			c.simd(v128And)
			c.get(rZ)
			c.simd(v128Bitselect)
			c.set(rC) // the new coefficients
			c.pairStore(rC, rPA, rPB, rO)

			// t = (v·(ge ? biasGE : biasLT)) & (ge ? maskGE : maskLT) & ¬z
			c.get(rV)
			c.splat(crown.RelaxBiasGE)
			c.splat(crown.RelaxBiasLT)
			c.get(rGE)
			c.simd(v128Bitselect)
			c.simd(f64x2Mul)
			c.splat(crown.RelaxMaskGE)
			c.splat(crown.RelaxMaskLT)
			c.get(rGE)
			c.simd(v128Bitselect)
			c.get(rZ)
			c.simd(v128AndNot)
			c.simd(v128And)
			c.set(rV) // t
			c.get(rS)
			c.get(rV)
			c.simd(f64x2Add)
			c.set(rS)
			c.get(rM)
			c.get(rV)
			c.simd(f64x2Abs)
			c.simd(f64x2Add)
			c.set(rM)

			c.addTo(rE, entryBytes)
			c.addTo(rO, 8)
			c.op(opBr, 0)
		}
		c.op(opEnd, opEnd)

		// bias[r] += s, mag[r] += m, lane by lane.
		for _, t := range [][2]int{{rBias, rS}, {rMag, rM}} {
			c.get(t[0])
			c.get(rBA)
			c.op(opI32Add)
			c.set(rE) // the lane 0 address (rE is free after the neuron loop)
			c.get(t[0])
			c.get(rBB)
			c.op(opI32Add)
			c.set(rCol) // the lane 1 address
			c.pairLoad(rE, rCol, noOff)
			c.get(t[1])
			c.simd(f64x2Add)
			c.set(rV)
			c.pairStore(rV, rE, rCol, noOff)
		}

		// Next pair.
		c.get(rPB)
		c.get(rRowBytes)
		c.op(opI32Add)
		c.set(rPA)
		c.get(rQB)
		c.get(rAlBytes)
		c.op(opI32Add)
		c.set(rQA)
		c.get(rBB)
		c.i32(8)
		c.op(opI32Add)
		c.set(rBA)
		c.next(rR, 2, rN, opI32LtS)
	}
	c.op(opEnd)
	return c
}
