package gemmsimd

// The module's sixth function, im2col, is crown.Im2col: for each row, each job is first
// checked against len(src) and len(cols) in 64-bit arithmetic (a job outside them
// traps), then its run is copied two values at a time, with a v128 load and store under stride 1 and two
// v128 loads whose even values an i8x16.shuffle joins under stride 2 (never reading
// past the run's last value), then value by value (any stride) as 64-bit integers.
// It copies bits, never through a float operation.

// Parameters and locals of im2col, by index.
const (
	mNR = iota
	mSrc
	mSrcStep
	mCols
	mW
	mOHW
	mJobs
	mNJobs
	mStride
	mSrcLen  // len(src), len(cols): every job is checked against them
	mColsLen //
	// i32 locals
	mR    // row
	mS    // the row's input
	mD    // the row's block in tap row 0
	mJP   // the current job
	mJEnd // the end of the jobs
	mDP   // destination pointer
	mSP   // source pointer
	mN    // values left in the run
	mWB   // 8·w
	mStrB // 8·stride
	mSrcB // 8·srcStep
	mBlkB // 8·ohw
	// i64 locals, for the checks (no product overflows in 64 bits)
	mT      // the job's tap, dst, src and n
	mDst    //
	mSrcOff //
	mCount  //
	mW64    // w
	mStr64  // stride
	mRO     // r·ohw
	mRS     // r·srcStep
	// v128 locals
	mV
)

const (
	mNumI32  = mT - mR
	mNumI64  = mV - mT
	mNumV128 = 1
)

// More opcodes: 64-bit integers for the job checks, and unreachable (a trap).
const (
	opUnreachable  = 0x00
	opI64ExtendI32 = 0xac // signed
	opI64Add       = 0x7c
	opI64Sub       = 0x7d
	opI64Mul       = 0x7e
	opI64LtS       = 0x53
	opI64GtS       = 0x55
	opI64GeS       = 0x59
	opI64Const     = 0x42
	tI64           = 0x7e
)

// i64of sets the i64 local dst to the i32 value pushed by push, sign-extended.
func (c *code) i64of(dst int, push func()) { push(); c.op(opI64ExtendI32); c.set(dst) }

// jobField pushes field f (0–3) of the current job.
func (c *code) jobField(f uint32) {
	c.get(mJP)
	c.op(opI32Load)
	*c = append(*c, uleb(2)...) // 4-byte aligned
	*c = append(*c, uleb(4*f)...)
}

// byteScale sets dst = 8·src (locals).
func (c *code) byteScale(dst, src int) { c.get(src); c.i32(3); c.op(opI32Shl); c.set(dst) }

// im2colCode is the function body without its locals and final end.
func im2colCode() []byte {
	var c code
	c.get(mNR)
	c.i32(0)
	c.op(opI32LeS)
	c.get(mNJobs)
	c.i32(0)
	c.op(opI32LeS)
	c.op(opI32Or)
	c.op(opIf, blockVoid)
	c.op(opReturn)
	c.op(opEnd)

	c.i64of(mW64, func() { c.get(mW) })
	c.i64of(mStr64, func() { c.get(mStride) })
	c.op(opI64Const, 0)
	c.set(mRO)
	c.op(opI64Const, 0)
	c.set(mRS)
	c.byteScale(mWB, mW)
	c.byteScale(mStrB, mStride)
	c.byteScale(mSrcB, mSrcStep)
	c.byteScale(mBlkB, mOHW)
	c.get(mNJobs)
	c.i32(4)
	c.op(opI32Shl)
	c.get(mJobs)
	c.op(opI32Add)
	c.set(mJEnd)
	c.get(mSrc)
	c.set(mS)
	c.get(mCols)
	c.set(mD)
	c.i32(0)
	c.set(mR)

	c.op(opLoop, blockVoid) // rows
	{
		c.get(mJobs)
		c.set(mJP)
		c.op(opLoop, blockVoid) // jobs
		{
			// The job must stay inside cols and src: trap otherwise (js.Value.Invoke
			// then panics in Go).
			for f, l := range []int{mT, mDst, mSrcOff, mCount} {
				c.i64of(l, func() { c.jobField(uint32(f)) })
			}
			for _, l := range []int{mT, mDst, mSrcOff} {
				c.get(l)
				c.op(opI64Const, 0)
				c.op(opI64LtS)
			}
			c.op(opI32Or, opI32Or)
			c.get(mCount)
			c.op(opI64Const, 1)
			c.op(opI64LtS)
			c.op(opI32Or)
			// t·w + r·ohw + dst + n > len(cols)
			c.get(mT)
			c.get(mW64)
			c.op(opI64Mul)
			c.get(mRO)
			c.op(opI64Add)
			c.get(mDst)
			c.op(opI64Add)
			c.get(mCount)
			c.op(opI64Add)
			c.get(mColsLen)
			c.op(opI64ExtendI32)
			c.op(opI64GtS)
			c.op(opI32Or)
			// r·srcStep + src + (n−1)·stride ≥ len(src)
			c.get(mRS)
			c.get(mSrcOff)
			c.op(opI64Add)
			c.get(mCount)
			c.op(opI64Const, 1)
			c.op(opI64Sub)
			c.get(mStr64)
			c.op(opI64Mul)
			c.op(opI64Add)
			c.get(mSrcLen)
			c.op(opI64ExtendI32)
			c.op(opI64GeS)
			c.op(opI32Or)
			c.op(opIf, blockVoid)
			c.op(opUnreachable)
			c.op(opEnd)

			// dp = d + 8·w·tap + 8·dst, sp = s + 8·src, n
			c.get(mD)
			c.jobField(0)
			c.get(mWB)
			c.op(opI32Mul)
			c.op(opI32Add)
			c.jobField(1)
			c.i32(3)
			c.op(opI32Shl)
			c.op(opI32Add)
			c.set(mDP)
			c.get(mS)
			c.jobField(2)
			c.i32(3)
			c.op(opI32Shl)
			c.op(opI32Add)
			c.set(mSP)
			c.jobField(3)
			c.set(mN)

			// Pairs: stride 2 while at least 3 values remain (the second load's
			// last value is then inside the run), stride 1 while 2 remain.
			for _, st := range []struct {
				stride, min int32
			}{{2, 3}, {1, 2}} {
				c.get(mStride)
				c.i32(st.stride)
				c.op(opI32Eq)
				c.op(opIf, blockVoid)
				c.op(opBlock, blockVoid)
				c.op(opLoop, blockVoid)
				{
					c.get(mN)
					c.i32(st.min)
					c.op(opI32LtS)
					c.op(opBrIf, 1)
					c.get(mDP)
					c.get(mSP)
					c.mem(v128Load, 0)
					if st.stride == 2 {
						c.get(mSP)
						c.mem(v128Load, 16)
						c.simd(i8x16Shuffle)
						c.op(lowLanes...)
					}
					c.mem(v128Store, 0)
					c.addTo(mSP, 16*st.stride)
					c.addTo(mDP, 16)
					c.addTo(mN, -2)
					c.op(opBr, 0)
				}
				c.op(opEnd, opEnd, opEnd)
			}
			// The rest, value by value.
			c.op(opBlock, blockVoid)
			c.op(opLoop, blockVoid)
			{
				c.get(mN)
				c.i32(1)
				c.op(opI32LtS)
				c.op(opBrIf, 1)
				c.get(mDP)
				c.get(mSP)
				c.i64mem(opI64Load, 0)
				c.i64mem(opI64Store, 0)
				c.addLocal(mSP, mStrB)
				c.addTo(mDP, 8)
				c.addTo(mN, -1)
				c.op(opBr, 0)
			}
			c.op(opEnd, opEnd)

			c.next(mJP, 16, mJEnd, opI32LtU) // addresses: unsigned
		}
		c.op(opEnd)
		c.addLocal(mS, mSrcB)
		c.addLocal(mD, mBlkB)
		for _, t := range [][2]int{{mRO, mOHW}, {mRS, mSrcStep}} {
			c.get(t[0])
			c.get(t[1])
			c.op(opI64ExtendI32)
			c.op(opI64Add)
			c.set(t[0])
		}
		c.next(mR, 1, mNR, opI32LtS)
	}
	c.op(opEnd)
	return c
}
