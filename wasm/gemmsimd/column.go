package gemmsimd

// The module's functions colrelax and colconc are crown.ColumnRelax and
// crown.ColumnConcretize: the steps of CROWN's sparse chains on a block's products,
// eight rows per neuron in four f64x2 vectors. colrelax chooses each lane's line with
// bitselect on f64x2.ge and masks with v128.and, as relax does; colconc's three sums
// are f64x2.mul then f64x2.add, so every value is the Go loop's bit for bit.
//
//	(func (export "colrelax") (param $nout i32) (param $lines i32) (param $y i32) (param $rbm i32) ...)
//	(func (export "colconc") (param $nout i32) (param $y i32) (param $mid i32) (param $rad i32)
//	    (param $mx i32) (param $out i32) ...)

// Parameters and locals of colrelax, by index.
const (
	xN = iota
	xLines
	xY
	xRbm
	// i32 locals
	xEnd // the end of the line records
	// v128 locals
	xZero
	xRB               // the constants' sums, four vectors
	xRM     = xRB + 4 // their magnitudes' sums
	xV      = xRM + 4 // two rows' values of the neuron
	xGE     = xV + 1  // v ≥ 0
	xZ      = xGE + 1 // v = ±0
	xT      = xZ + 1  // the constant, then the new value
	xLine   = xT + 1  // the record's ge, lt, bge, blt, hasGE, hasLT, keep splatted
	xLast   = xLine + 7
	xNumI32 = xZero - xEnd
	xNumV   = xLast - xZero
)

// colrelaxCode is the function body without its locals and final end.
func colrelaxCode() []byte {
	var c code
	c.get(xN)
	c.i32(0)
	c.op(opI32LeS)
	c.op(opIf, blockVoid)
	c.op(opReturn)
	c.op(opEnd)

	c.get(xN)
	c.i32(6)
	c.op(opI32Shl)
	c.get(xLines)
	c.op(opI32Add)
	c.set(xEnd)
	c.simd(v128Const)
	c.op(make([]byte, 16)...)
	c.set(xZero)
	for h := 0; h < 4; h++ {
		c.get(xRbm)
		c.mem(v128Load, uint32(16*h))
		c.set(xRB + h)
		c.get(xRbm)
		c.mem(v128Load, uint32(64+16*h))
		c.set(xRM + h)
	}

	c.op(opLoop, blockVoid) // neurons
	{
		for f := 0; f < 7; f++ {
			c.get(xLines)
			c.mem(v128Load64Spl, uint32(8*f))
			c.set(xLine + f)
		}
		for h := 0; h < 4; h++ {
			c.get(xY)
			c.mem(v128Load, uint32(16*h))
			c.set(xV)
			c.get(xV)
			c.get(xZero)
			c.simd(f64x2Ge)
			c.set(xGE)
			c.get(xV)
			c.get(xZero)
			c.simd(f64x2Eq)
			c.set(xZ)

			// t = (v·(ge ? bge : blt)) & (ge ? hasGE : hasLT) & ¬z
			c.get(xV)
			c.get(xLine + 2)
			c.get(xLine + 3)
			c.get(xGE)
			c.simd(v128Bitselect)
			c.simd(f64x2Mul)
			c.get(xLine + 4)
			c.get(xLine + 5)
			c.get(xGE)
			c.simd(v128Bitselect)
			c.get(xZ)
			c.simd(v128AndNot)
			c.simd(v128And)
			c.set(xT)
			c.get(xRB + h)
			c.get(xT)
			c.simd(f64x2Add)
			c.set(xRB + h)
			c.get(xRM + h)
			c.get(xT)
			c.simd(f64x2Abs)
			c.simd(f64x2Add)
			c.set(xRM + h)

			// v ← v = ±0 ? v : (v·(ge ? ge : lt)) & keep
			c.get(xY) // the store's address
			c.get(xV) // bitselect's first operand
			c.get(xV)
			c.get(xLine + 0)
			c.get(xLine + 1)
			c.get(xGE)
			c.simd(v128Bitselect)
			c.simd(f64x2Mul)
			c.get(xLine + 6)
			c.simd(v128And)
			c.get(xZ)
			c.simd(v128Bitselect)
			c.mem(v128Store, uint32(16*h))
		}
		c.addTo(xY, 64)
		c.next(xLines, 64, xEnd, opI32LtU)
	}
	c.op(opEnd)
	for h := 0; h < 4; h++ {
		c.get(xRbm)
		c.get(xRB + h)
		c.mem(v128Store, uint32(16*h))
		c.get(xRbm)
		c.get(xRM + h)
		c.mem(v128Store, uint32(64+16*h))
	}
	return c
}

// Parameters and locals of colconc, by index.
const (
	qN = iota
	qY
	qMid
	qRad
	qMx
	qOut
	// i32 locals
	qEnd // the end of the values
	// v128 locals
	qSum                // a·mid, |a|·rad, |a|·mx: four vectors each
	qMidV   = qSum + 12 // the neuron's mid, rad, mx splatted
	qV      = qMidV + 3 // two rows' values, then their magnitudes
	qLast   = qV + 1
	qNumI32 = qSum - qEnd
	qNumV   = qLast - qSum
)

// colconcCode is the function body without its locals and final end.
func colconcCode() []byte {
	var c code
	c.get(qN)
	c.i32(0)
	c.op(opI32LeS)
	c.op(opIf, blockVoid)
	c.op(opReturn)
	c.op(opEnd)

	c.get(qN)
	c.i32(6)
	c.op(opI32Shl)
	c.get(qY)
	c.op(opI32Add)
	c.set(qEnd)
	for i := 0; i < 12; i++ {
		c.get(qOut)
		c.mem(v128Load, uint32(16*i))
		c.set(qSum + i)
	}

	c.op(opLoop, blockVoid) // neurons
	{
		for f, p := range []int{qMid, qRad, qMx} {
			c.get(p)
			c.mem(v128Load64Spl, 0)
			c.set(qMidV + f)
		}
		for h := 0; h < 4; h++ {
			c.get(qY)
			c.mem(v128Load, uint32(16*h))
			c.set(qV)
			// a·mid
			c.get(qSum + h)
			c.get(qV)
			c.get(qMidV)
			c.simd(f64x2Mul)
			c.simd(f64x2Add)
			c.set(qSum + h)
			c.get(qV)
			c.simd(f64x2Abs)
			c.set(qV)
			for f := 1; f < 3; f++ {
				s := qSum + 4*f + h
				c.get(s)
				c.get(qV)
				c.get(qMidV + f)
				c.simd(f64x2Mul)
				c.simd(f64x2Add)
				c.set(s)
			}
		}
		c.addTo(qMid, 8)
		c.addTo(qRad, 8)
		c.addTo(qMx, 8)
		c.next(qY, 64, qEnd, opI32LtU)
	}
	c.op(opEnd)
	for i := 0; i < 12; i++ {
		c.get(qOut)
		c.get(qSum + i)
		c.mem(v128Store, uint32(16*i))
	}
	return c
}
