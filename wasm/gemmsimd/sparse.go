package gemmsimd

// The module's function sparse is crown.SparseProduct: for each neuron, its entries'
// weights splatted to both lanes and multiplied by the four f64x2 vectors of the
// entry's eight block values, the entries of even and odd rank in two sets of four
// accumulators, added at the end; every product and sum rounded on its own
// (f64x2.mul then f64x2.add), so every value is the Go loop's bit for bit.
//
//	(func (export "sparse") (param $nout i32) (param $ptr i32) (param $src i32)
//	    (param $w i32) (param $x i32) (param $y i32) ...)

// Parameters and locals of sparse, by index.
const (
	sNout = iota
	sPtr
	sSrc
	sW
	sX
	sY
	// i32 locals
	sPP    // &ptr[k]
	sPEnd  // &ptr[nout]
	sPS    // the entry's index in src (address)
	sPSEnd // the neuron's last entry's end in src
	sPW    // the entry's weight (address)
	sXA    // the entry's eight block values (address)
	sYP    // &y[8k]
	// v128 locals
	sA0           // even entries' sums, lanes 0–1, 2–3, 4–5, 6–7
	sB0 = sA0 + 4 // odd entries' sums
	sWV = sB0 + 4 // the weight in both lanes
)

const (
	sNumI32  = sA0 - sPP
	sNumV128 = sWV + 1 - sA0
	opI32LeU = 0x4d
)

// i32load pushes the i32 at the address in local l plus off.
func (c *code) i32load(l int, off uint32) {
	c.get(l)
	c.op(opI32Load)
	*c = append(*c, uleb(2)...)
	*c = append(*c, uleb(off)...)
}

// sparseEntry adds the entry at src offset soff and weight offset woff (bytes from
// sPS, sPW) to the accumulators from acc on.
func (c *code) sparseEntry(soff, woff uint32, acc int) {
	c.get(sX)
	c.i32load(sPS, soff)
	c.i32(6)
	c.op(opI32Shl)
	c.op(opI32Add)
	c.set(sXA)
	c.get(sPW)
	c.mem(v128Load64Spl, woff)
	c.set(sWV)
	for h := 0; h < 4; h++ {
		c.get(acc + h)
		c.get(sWV)
		c.get(sXA)
		c.mem(v128Load, uint32(16*h))
		c.simd(f64x2Mul)
		c.simd(f64x2Add)
		c.set(acc + h)
	}
}

// sparseCode is the function body without its locals and final end.
func sparseCode() []byte {
	var c code
	c.get(sNout)
	c.i32(0)
	c.op(opI32LeS)
	c.op(opIf, blockVoid)
	c.op(opReturn)
	c.op(opEnd)

	c.get(sPtr)
	c.set(sPP)
	c.get(sPtr)
	c.get(sNout)
	c.i32(2)
	c.op(opI32Shl)
	c.op(opI32Add)
	c.set(sPEnd)
	c.get(sY)
	c.set(sYP)

	c.op(opLoop, blockVoid) // neurons
	{
		// sPS, sPSEnd, sPW from ptr[k] and ptr[k+1].
		c.get(sSrc)
		c.i32load(sPP, 0)
		c.i32(2)
		c.op(opI32Shl)
		c.op(opI32Add)
		c.set(sPS)
		c.get(sSrc)
		c.i32load(sPP, 4)
		c.i32(2)
		c.op(opI32Shl)
		c.op(opI32Add)
		c.set(sPSEnd)
		c.get(sW)
		c.i32load(sPP, 0)
		c.i32(3)
		c.op(opI32Shl)
		c.op(opI32Add)
		c.set(sPW)
		for v := sA0; v < sWV; v++ {
			c.simd(v128Const)
			c.op(make([]byte, 16)...) // +0, as the Go loop's sums start
			c.set(v)
		}
		// Pairs of entries while two remain.
		c.get(sPS)
		c.i32(8)
		c.op(opI32Add)
		c.get(sPSEnd)
		c.op(opI32LeU)
		c.op(opIf, blockVoid)
		c.op(opLoop, blockVoid)
		c.sparseEntry(0, 0, sA0)
		c.sparseEntry(4, 8, sB0)
		c.addTo(sPS, 8)
		c.addTo(sPW, 16)
		c.get(sPS)
		c.i32(8)
		c.op(opI32Add)
		c.get(sPSEnd)
		c.op(opI32LeU)
		c.op(opBrIf, 0)
		c.op(opEnd)
		c.op(opEnd)
		// A last entry of even rank.
		c.get(sPS)
		c.get(sPSEnd)
		c.op(opI32LtU)
		c.op(opIf, blockVoid)
		c.sparseEntry(0, 0, sA0)
		c.op(opEnd)
		// y[8k:8k+8] = even sums + odd sums.
		for h := 0; h < 4; h++ {
			c.get(sYP)
			c.get(sA0 + h)
			c.get(sB0 + h)
			c.simd(f64x2Add)
			c.mem(v128Store, uint32(16*h))
		}
		c.addTo(sYP, 64)
		c.next(sPP, 4, sPEnd, opI32LtU)
	}
	c.op(opEnd)
	return c
}
