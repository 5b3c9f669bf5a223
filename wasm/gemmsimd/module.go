package gemmsimd

// The module is assembled here byte by byte (no WebAssembly assembler is needed to
// build it). In the text format it is:
//
//	(module
//	  (import "env" "mem" (memory 1))
//	  (func (export "block") (param $kb i32) (param $mt i32) (param $nt i32) (param $a i32)
//	      (param $b i32) (param $c i32) (param $ldc i32) (param $alpha f64) (param $accum i32)
//	    ;; for jt < nt, for it < mt: one 4×4 tile in eight f64x2 accumulators
//	    ...)
//	  (func (export "concretize") (param $n i32) (param $size i32) (param $a i32)
//	      (param $mid i32) (param $rad i32) (param $mx i32) (param $bias i32) (param $mag i32)
//	      (param $safety f64) (param $lb i32)
//	    ;; for each row: three dot products in f64x2 lanes, then lb[i] (concretize.go)
//	    ...)
//	  (func (export "relax") (param $n i32) (param $size i32) (param $a i32) (param $tab i32)
//	      (param $alpha i32) (param $nu i32) (param $bias i32) (param $mag i32)
//	    ;; for each pair of rows, one per lane: relax every neuron (relax.go)
//	    ...)
//	  (func (export "pack") (param $trans i32) (param $np i32) (param $kb i32) (param $src i32)
//	      (param $ld i32) (param $dst i32)
//	    ;; copy full 4-wide panels into their packed layout (pack.go)
//	    ...)
//	  (func (export "adam") (param $n i32) (param $a i32) (param $g i32) (param $m i32)
//	      (param $v i32) (param $b1 f64) (param $c1 f64) (param $b2 f64) (param $c2 f64)
//	      (param $eps f64) (param $lr f64) (param $ic1 f64) (param $ic2 f64)
//	    ;; one Adam step on n values, two at a time (adam.go)
//	    ...)
//	  (func (export "im2col") (param $nr i32) (param $src i32) (param $srcStep i32)
//	      (param $cols i32) (param $w i32) (param $ohw i32) (param $jobs i32) (param $njobs i32)
//	      (param $stride i32) (param $srcLen i32) (param $colsLen i32)
//	    ;; each row's copy jobs, checked, then two values at a time (im2col.go)
//	    ...)
//	  (func (export "gather") (param $inC i32) (param $ihw i32) (param $kkw i32) (param $nr i32)
//	      (param $cols i32) (param $g i32) (param $segs i32) (param $nsegs i32) (param $src i32)
//	      (param $nsrc i32) (param $colsLen i32) (param $gLen i32)
//	    ;; the transposed convolution's sums of column entries (conv.go)
//	    ...)
//	  (func (export "interleave") (param $ny i32) (param $iw i32) (param $nr i32) (param $g i32)
//	      (param $xmap i32) (param $rs i32) (param $nrs i32) (param $out i32) (param $size i32)
//	      (param $gLen i32) (param $outLen i32)
//	    ;; the gathered maps into the rows (conv.go)
//	    ...)
//	  (func (export "sparse") (param $nout i32) (param $ptr i32) (param $src i32) (param $w i32)
//	      (param $x i32) (param $y i32)
//	    ;; CROWN's sparse transposed convolutions, eight rows in four f64x2 vectors (sparse.go)
//	    ...))
//
// Each k step loads the B step as two vectors (columns 0–1 and 2–3), broadcasts the
// four A values in turn, and adds each product to its accumulator: a separate
// f64x2.mul and f64x2.add, never relaxed SIMD's multiply-add (fused or not depending
// on the hardware), so that every element is the pure-Go kernel's bit for bit.
// Addresses are byte offsets into Go's memory, which is below 4 GiB on js/wasm.

// Parameters and locals of block, by index.
const (
	pKB = iota
	pMT
	pNT
	pA
	pB
	pC
	pLDC
	pAlpha
	pAccum
	// i32 locals
	lJT
	lIT
	lK
	lAP    // A step pointer
	lBP    // B step pointer
	lBPan  // B panel pointer of column jt
	lCCol  // C at row 0, column 4·jt
	lCP    // C at the current tile's first row
	lRow   // C row stride in bytes
	lPanel // panel size in bytes (32·kb)
	lRP    // C row pointer while storing
	// v128 locals
	lAcc // eight accumulators: row r, columns 0–1 at lAcc+2r, 2–3 at lAcc+2r+1
	lB01 = lAcc + 8
	lB23 = lB01 + 1
	lAV  = lB23 + 1
	lAlV = lAV + 1
)

const (
	numI32Locals  = lAcc - lJT
	numV128Locals = lAlV + 1 - lAcc
)

// Value types and opcodes (WebAssembly core spec 1.0 and the fixed-width SIMD
// proposal, standard since 2021).
const (
	tI32  = 0x7f
	tF64  = 0x7c
	tV128 = 0x7b

	opBlock    = 0x02
	opLoop     = 0x03
	opIf       = 0x04
	opElse     = 0x05
	opEnd      = 0x0b
	opBr       = 0x0c
	opBrIf     = 0x0d
	opReturn   = 0x0f
	opLocalGet = 0x20
	opLocalSet = 0x21
	opI32Const = 0x41
	opI32LtS   = 0x48
	opI32LeS   = 0x4c
	opI32Add   = 0x6a
	opI32Mul   = 0x6c
	opI32Or    = 0x72
	opI32Shl   = 0x74
	opI32ShrU  = 0x76
	opI32And   = 0x71
	opI32GeS   = 0x4e
	opI32GtS   = 0x4a
	opI32LtU   = 0x49
	opI32GeU   = 0x4f
	opI32Eq    = 0x46
	opI32Load  = 0x28
	opF64Load  = 0x2b
	opF64Store = 0x39
	opF64Abs   = 0x99
	opF64Add   = 0xa0
	opF64Sub   = 0xa1
	opF64Mul   = 0xa2
	blockVoid  = 0x40

	simd          = 0xfd // prefix of the SIMD instructions, whose number follows in LEB128
	v128Load      = 0x00
	v128Load64Spl = 0x0a
	v128Store     = 0x0b
	v128Const     = 0x0c
	f64x2Splat    = 0x14
	f64x2Extract  = 0x21
	f64x2Abs      = 0xec
	f64x2Add      = 0xf0
	f64x2Mul      = 0xf2
	alignF64      = 3 // log2 of the alignment hint: Go's float64s are 8-byte aligned
)

// Layout of the packed panels and of a tile.
const (
	stepBytes = 32 // one k step of a panel: 4 float64s
	// unrolledSteps is the k loop's unrolling. Not unrolled, V8's TurboFan keeps the
	// eight accumulators, two B vectors and four A values in registers; unrolled twice,
	// it hoists the second step's loads above the first step's products and spills
	// (measured with TestTiming: 1.3–1.5× faster not unrolled, 128×128×256 in 437–533 µs
	// against 680–702).
	unrolledSteps = 1
	tileRows      = 4
	tileBytes     = 32 // a tile row: 4 float64s
	accumulators  = 8
)

// Module returns the WebAssembly binary of the SIMD kernels. It is the same byte for
// byte on every call and every platform.
func Module() []byte {
	funcs := []struct {
		name   string
		params []byte
		locals []byte // the locals' declarations: a vector of (count, type)
		code   []byte
	}{
		{"block", []byte{tI32, tI32, tI32, tI32, tI32, tI32, tI32, tF64, tI32},
			vec(2, concat(uleb(numI32Locals), []byte{tI32}, uleb(numV128Locals), []byte{tV128})), blockCode()},
		{"concretize", []byte{tI32, tI32, tI32, tI32, tI32, tI32, tI32, tI32, tF64, tI32},
			vec(3, concat(uleb(cNumI32), []byte{tI32}, uleb(cNumF64), []byte{tF64}, uleb(cNumV128), []byte{tV128})), concretizeCode()},
		{"relax", []byte{tI32, tI32, tI32, tI32, tI32, tI32, tI32, tI32},
			vec(2, concat(uleb(rNumI32), []byte{tI32}, uleb(rNumV128), []byte{tV128})), relaxCode()},
		{"pack", []byte{tI32, tI32, tI32, tI32, tI32, tI32},
			vec(2, concat(uleb(kNumI32), []byte{tI32}, uleb(kNumV128), []byte{tV128})), packCode()},
		{"adam", []byte{tI32, tI32, tI32, tI32, tI32, tF64, tF64, tF64, tF64, tF64, tF64, tF64, tF64},
			vec(2, concat(uleb(dNumI32), []byte{tI32}, uleb(dNumV128), []byte{tV128})), adamCode()},
		{"im2col", []byte{tI32, tI32, tI32, tI32, tI32, tI32, tI32, tI32, tI32, tI32, tI32},
			vec(3, concat(uleb(mNumI32), []byte{tI32}, uleb(mNumI64), []byte{tI64}, uleb(mNumV128), []byte{tV128})), im2colCode()},
		{"gather", []byte{tI32, tI32, tI32, tI32, tI32, tI32, tI32, tI32, tI32, tI32, tI32, tI32},
			vec(3, concat(uleb(gNumI32), []byte{tI32}, uleb(gNumI64), []byte{tI64}, uleb(gNumV128), []byte{tV128})), gatherCode()},
		{"interleave", []byte{tI32, tI32, tI32, tI32, tI32, tI32, tI32, tI32, tI32, tI32, tI32},
			vec(2, concat(uleb(iNumI32), []byte{tI32}, uleb(iNumI64), []byte{tI64})), interleaveCode()},
		{"sparse", []byte{tI32, tI32, tI32, tI32, tI32, tI32},
			vec(2, concat(uleb(sNumI32), []byte{tI32}, uleb(sNumV128), []byte{tV128})), sparseCode()},
		{"colrelax", []byte{tI32, tI32, tI32, tI32},
			vec(2, concat(uleb(xNumI32), []byte{tI32}, uleb(xNumV), []byte{tV128})), colrelaxCode()},
		{"colconc", []byte{tI32, tI32, tI32, tI32, tI32, tI32},
			vec(2, concat(uleb(qNumI32), []byte{tI32}, uleb(qNumV), []byte{tV128})), colconcCode()},
	}
	var types, fnIdx, exports, bodies, names []byte
	for i, f := range funcs {
		// Function i has type i, no results.
		types = append(types, concat([]byte{0x60}, vec(len(f.params), f.params), vec(0, nil))...)
		fnIdx = append(fnIdx, uleb(uint32(i))...)
		exports = append(exports, concat(name(f.name), []byte{0x00}, uleb(uint32(i)))...)
		body := concat(f.locals, f.code, []byte{opEnd})
		bodies = append(bodies, concat(uleb(uint32(len(body))), body)...)
		names = append(names, concat(uleb(uint32(i)), name(f.name))...)
	}
	n := len(funcs)
	var m []byte
	m = append(m, 0x00, 'a', 's', 'm', 0x01, 0x00, 0x00, 0x00)
	m = section(m, 1, vec(n, types))
	// Import section: env.mem, a memory of at least one page and no maximum, which
	// Go's exported memory satisfies.
	m = section(m, 2, vec(1, concat(name("env"), name("mem"), []byte{0x02, 0x00, 0x01})))
	m = section(m, 3, vec(n, fnIdx))
	m = section(m, 7, vec(n, exports))
	m = section(m, 10, vec(n, bodies))
	// Name section: profilers then show "block", not wasm-function[0].
	funcNames := vec(n, names)
	m = section(m, 0, concat(name("name"), []byte{0x01}, uleb(uint32(len(funcNames))), funcNames))
	return m
}

// code is a function body being written.
type code []byte

func (c *code) op(b ...byte)   { *c = append(*c, b...) }
func (c *code) get(l int)      { c.op(opLocalGet); *c = append(*c, uleb(uint32(l))...) }
func (c *code) set(l int)      { c.op(opLocalSet); *c = append(*c, uleb(uint32(l))...) }
func (c *code) i32(v int32)    { c.op(opI32Const); *c = append(*c, sleb(v)...) }
func (c *code) simd(op uint32) { c.op(simd); *c = append(*c, uleb(op)...) }
func (c *code) mem(op, off uint32) {
	c.simd(op)
	*c = append(*c, uleb(alignF64)...)
	*c = append(*c, uleb(off)...)
}
func (c *code) addTo(l int, v int32) { c.get(l); c.i32(v); c.op(opI32Add); c.set(l) }

// addLocal sets l = l + r.
// next ends a do-while loop over counter i: i += step, and branch back to the loop
// start while i < end (lt: opI32LtS for counts, opI32LtU for addresses).
func (c *code) next(i int, step int32, end int, lt byte) {
	c.addTo(i, step)
	c.get(i)
	c.get(end)
	c.op(lt)
	c.op(opBrIf, 0)
}

func (c *code) addLocal(l, r int) { c.get(l); c.get(r); c.op(opI32Add); c.set(l) }

// step adds one k step's products to the accumulators; off is the step's byte offset
// from the A and B step pointers.
func (c *code) step(off uint32) {
	c.get(lBP)
	c.mem(v128Load, off)
	c.set(lB01)
	c.get(lBP)
	c.mem(v128Load, off+16)
	c.set(lB23)
	for r := 0; r < 4; r++ {
		c.get(lAP)
		c.mem(v128Load64Spl, off+8*uint32(r))
		c.set(lAV)
		for h, bv := range []int{lB01, lB23} {
			acc := lAcc + 2*r + h
			// acc = acc + av·bv, rounded after the multiply and after the add.
			c.get(acc)
			c.get(lAV)
			c.get(bv)
			c.simd(f64x2Mul)
			c.simd(f64x2Add)
			c.set(acc)
		}
	}
}

// blockCode is the function body without its locals and final end.
func blockCode() []byte {
	var c code
	// Nothing to do for an empty block (the caller never asks for one).
	c.get(pMT)
	c.i32(0)
	c.op(opI32LeS)
	c.get(pNT)
	c.i32(0)
	c.op(opI32LeS)
	c.op(opI32Or)
	c.op(opIf, blockVoid)
	c.op(opReturn)
	c.op(opEnd)

	c.get(pLDC)
	c.i32(3)
	c.op(opI32Shl)
	c.set(lRow)
	c.get(pKB)
	c.i32(5)
	c.op(opI32Shl)
	c.set(lPanel)
	c.get(pAlpha)
	c.simd(f64x2Splat)
	c.set(lAlV)
	c.get(pB)
	c.set(lBPan)
	c.get(pC)
	c.set(lCCol)
	c.i32(0)
	c.set(lJT)

	c.op(opLoop, blockVoid) // columns of tiles
	{
		c.get(pA)
		c.set(lAP)
		c.get(lCCol)
		c.set(lCP)
		c.i32(0)
		c.set(lIT)
		c.op(opLoop, blockVoid) // rows of tiles
		{
			for i := 0; i < accumulators; i++ {
				c.simd(v128Const)
				c.op(make([]byte, 16)...) // +0, as the Go kernel's sums start
				c.set(lAcc + i)
			}
			c.get(lBPan)
			c.set(lBP)
			c.get(pKB)
			c.set(lK)
			// unrolledSteps steps at a time while that many remain, then the rest.
			c.op(opBlock, blockVoid)
			c.op(opLoop, blockVoid)
			{
				c.get(lK)
				c.i32(unrolledSteps)
				c.op(opI32LtS)
				c.op(opBrIf, 1)
				for u := 0; u < unrolledSteps; u++ {
					c.step(uint32(u * stepBytes))
				}
				c.addTo(lAP, unrolledSteps*stepBytes)
				c.addTo(lBP, unrolledSteps*stepBytes)
				c.addTo(lK, -unrolledSteps)
				c.op(opBr, 0)
			}
			c.op(opEnd, opEnd)
			if unrolledSteps == 2 {
				c.get(lK)
				c.op(opIf, blockVoid)
				{
					c.step(0)
					c.addTo(lAP, stepBytes)
				}
				c.op(opEnd)
			}
			// Store: C = alpha·s, or C + alpha·s when accum.
			c.get(lCP)
			c.set(lRP)
			for r := 0; r < 4; r++ {
				for h := 0; h < 2; h++ {
					acc := lAcc + 2*r + h
					off := uint32(16 * h)
					c.get(lRP) // the store's address
					c.get(pAccum)
					c.op(opIf, tV128)
					{
						c.get(lRP)
						c.mem(v128Load, off)
						c.get(lAlV)
						c.get(acc)
						c.simd(f64x2Mul)
						c.simd(f64x2Add)
					}
					c.op(opElse)
					{
						c.get(lAlV)
						c.get(acc)
						c.simd(f64x2Mul)
					}
					c.op(opEnd)
					c.mem(v128Store, off)
				}
				if r < 3 {
					c.addLocal(lRP, lRow)
				}
			}
			// Next row of tiles: lAP is already at the next A panel.
			c.get(lRow)
			c.i32(tileRows)
			c.op(opI32Mul)
			c.get(lCP)
			c.op(opI32Add)
			c.set(lCP)
			c.next(lIT, 1, pMT, opI32LtS)
		}
		c.op(opEnd)
		c.addLocal(lBPan, lPanel)
		c.addTo(lCCol, tileBytes)
		c.next(lJT, 1, pNT, opI32LtS)
	}
	c.op(opEnd)
	return c
}

func section(m []byte, id byte, content []byte) []byte {
	m = append(m, id)
	m = append(m, uleb(uint32(len(content)))...)
	return append(m, content...)
}

// vec is a vector of n items already encoded one after the other.
func vec(n int, items []byte) []byte { return concat(uleb(uint32(n)), items) }

func name(s string) []byte { return concat(uleb(uint32(len(s))), []byte(s)) }

func concat(parts ...[]byte) []byte {
	var out []byte
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

// uleb is v in unsigned LEB128.
func uleb(v uint32) []byte {
	var out []byte
	for {
		b := byte(v & 0x7f)
		v >>= 7
		if v == 0 {
			return append(out, b)
		}
		out = append(out, b|0x80)
	}
}

// sleb is v in signed LEB128.
func sleb(v int32) []byte {
	var out []byte
	for {
		b := byte(v & 0x7f)
		v >>= 7
		if (v == 0 && b&0x40 == 0) || (v == -1 && b&0x40 != 0) {
			return append(out, b)
		}
		out = append(out, b|0x80)
	}
}
