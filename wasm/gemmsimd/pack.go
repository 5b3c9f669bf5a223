package gemmsimd

// The module's fourth function, pack, is blas.PackKernel: the rows form copies each
// step of a panel (4 values) as two v128 loads and stores; the columns form loads two
// steps of the panel's four source rows and interleaves them with i8x16.shuffle into
// four stores of two values each (a last odd step goes value by value). It copies
// bits, never through a float operation.

// Parameters and locals of pack, by index.
const (
	kTrans = iota
	kNP
	kKB
	kSrc
	kLD
	kDst
	// i32 locals
	kQ     // panel
	kS     // source pointer (rows form), or row 0 of the panel (columns form)
	kD     // destination pointer
	kP     // steps left
	kLDB   // 8·ld
	kR1    // rows 1–3 of the panel (columns form)
	kR2    //
	kR3    //
	kO     // byte offset of the step in the rows (columns form)
	kPanel // source byte advance per panel in the columns form: 32·ld
	// v128 locals
	kV0
	kV1
	kV2
	kV3
)

const (
	kNumI32  = kV0 - kQ
	kNumV128 = kV3 + 1 - kV0

	i8x16Shuffle = 0x0d
	opI64Store   = 0x37
)

// Lane patterns of i8x16.shuffle: the low doubles of two vectors, then the high ones.
var (
	lowLanes  = []byte{0, 1, 2, 3, 4, 5, 6, 7, 16, 17, 18, 19, 20, 21, 22, 23}
	highLanes = []byte{8, 9, 10, 11, 12, 13, 14, 15, 24, 25, 26, 27, 28, 29, 30, 31}
)

// i64mem is a 64-bit integer load or store with its alignment hint and offset.
func (c *code) i64mem(op byte, off uint32) {
	c.op(op)
	*c = append(*c, uleb(alignF64)...)
	*c = append(*c, uleb(off)...)
}

// packCode is the function body without its locals and final end.
func packCode() []byte {
	var c code
	c.get(kNP)
	c.i32(0)
	c.op(opI32LeS)
	c.get(kKB)
	c.i32(0)
	c.op(opI32LeS)
	c.op(opI32Or)
	c.op(opIf, blockVoid)
	c.op(opReturn)
	c.op(opEnd)

	c.get(kLD)
	c.i32(3)
	c.op(opI32Shl)
	c.set(kLDB)
	c.get(kDst)
	c.set(kD) // panels are consecutive in dst: kD runs through all of it
	c.i32(0)
	c.set(kQ)

	c.get(kTrans)
	c.op(opIf, blockVoid)
	{
		// Columns form: panel q reads rows 4q…4q+3 of src.
		c.get(kLDB)
		c.i32(2)
		c.op(opI32Shl)
		c.set(kPanel)
		c.op(opLoop, blockVoid) // panels
		{
			c.get(kQ)
			c.get(kPanel)
			c.op(opI32Mul)
			c.get(kSrc)
			c.op(opI32Add)
			c.set(kS)
			for _, r := range [][2]int{{kR1, kS}, {kR2, kR1}, {kR3, kR2}} {
				c.get(r[1]) // the row above
				c.get(kLDB)
				c.op(opI32Add)
				c.set(r[0])
			}
			c.i32(0)
			c.set(kO)
			c.get(kKB)
			c.set(kP)
			c.op(opBlock, blockVoid)
			c.op(opLoop, blockVoid) // two steps at a time
			{
				c.get(kP)
				c.i32(2)
				c.op(opI32LtS)
				c.op(opBrIf, 1)
				for j, r := range []int{kS, kR1, kR2, kR3} {
					c.addr(r, kO)
					c.mem(v128Load, 0)
					c.set(kV0 + j)
				}
				for t, sh := range []struct {
					a, b  int
					lanes []byte
				}{{kV0, kV1, lowLanes}, {kV2, kV3, lowLanes}, {kV0, kV1, highLanes}, {kV2, kV3, highLanes}} {
					c.get(kD)
					c.get(sh.a)
					c.get(sh.b)
					c.simd(i8x16Shuffle)
					c.op(sh.lanes...)
					c.mem(v128Store, uint32(16*t))
				}
				c.addTo(kO, 16)
				c.addTo(kD, 64)
				c.addTo(kP, -2)
				c.op(opBr, 0)
			}
			c.op(opEnd, opEnd)
			c.get(kP)
			c.op(opIf, blockVoid) // a last odd step
			{
				for j, r := range []int{kS, kR1, kR2, kR3} {
					c.get(kD)
					c.addr(r, kO)
					c.i64mem(opI64Load, 0)
					c.i64mem(opI64Store, uint32(8*j))
				}
				c.addTo(kD, 32)
			}
			c.op(opEnd)
			c.next(kQ, 1, kNP, opI32LtS)
		}
		c.op(opEnd)
	}
	c.op(opElse)
	{
		// Rows form: panel q reads columns 4q…4q+3 of each of the kb rows of src.
		c.op(opLoop, blockVoid) // panels
		{
			c.get(kQ)
			c.i32(5)
			c.op(opI32Shl)
			c.get(kSrc)
			c.op(opI32Add)
			c.set(kS)
			c.get(kKB)
			c.set(kP)
			c.op(opLoop, blockVoid) // steps
			{
				for h := uint32(0); h < 2; h++ {
					c.get(kD)
					c.get(kS)
					c.mem(v128Load, 16*h)
					c.mem(v128Store, 16*h)
				}
				c.addLocal(kS, kLDB)
				c.addTo(kD, 32)
				c.addTo(kP, -1)
				c.get(kP)
				c.op(opBrIf, 0)
			}
			c.op(opEnd)
			c.next(kQ, 1, kNP, opI32LtS)
		}
		c.op(opEnd)
	}
	c.op(opEnd)
	return c
}
