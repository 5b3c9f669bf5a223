//go:build amd64 && !purego

#include "textflag.h"

// One entry into the accumulators A, B (rows 0–3, 4–7): broadcast w at DI+woff, the
// entry's eight values at DX + 64·idx (idx at SI+ioff), rounded products added.
#define ENTRY(ioff, woff, A, B) \
	MOVLQSX ioff(SI), BX; \
	SHLQ $6, BX; \
	VBROADCASTSD woff(DI), Y4; \
	VMULPD (DX)(BX*1), Y4, Y5; \
	VMULPD 32(DX)(BX*1), Y4, Y6; \
	VADDPD Y5, A, A; \
	VADDPD Y6, B, B

// func sparseAcc8AVX2(n int, idx *int32, w, x, acc *float64)
// Even entries go to Y0/Y1, odd ones to Y2/Y3; the two are added at the end.
TEXT ·sparseAcc8AVX2(SB), NOSPLIT, $0-40
	MOVQ n+0(FP), CX
	MOVQ idx+8(FP), SI
	MOVQ w+16(FP), DI
	MOVQ x+24(FP), DX
	MOVQ acc+32(FP), AX
	VXORPD Y0, Y0, Y0
	VXORPD Y1, Y1, Y1
	VXORPD Y2, Y2, Y2
	VXORPD Y3, Y3, Y3
	CMPQ CX, $2
	JLT tail

pair:
	ENTRY(0, 0, Y0, Y1)
	ENTRY(4, 8, Y2, Y3)
	ADDQ $8, SI
	ADDQ $16, DI
	SUBQ $2, CX
	CMPQ CX, $2
	JGE pair

tail:
	TESTQ CX, CX
	JE done
	ENTRY(0, 0, Y0, Y1)

done:
	VADDPD Y2, Y0, Y0
	VADDPD Y3, Y1, Y1
	VMOVUPD Y0, (AX)
	VMOVUPD Y1, 32(AX)
	VZEROUPPER
	RET

// Entries e0..e1 of neuron R8 (ptr at R10): CX = count, SI = &src[e0], DI = &w[e0]
// (src at R11, w at R12).
#define ENTRIES \
	MOVLQSX (R10)(R8*4), CX; \
	MOVLQSX 4(R10)(R8*4), BX; \
	LEAQ (R11)(CX*4), SI; \
	LEAQ (R12)(CX*8), DI; \
	SUBQ CX, BX; \
	MOVQ BX, CX

// func chainConcAVX2(nout int, ptr, src *int32, w, x, mid, rad, mx, out *float64)
// For every neuron k < nout: v = its accumulated entries; out[0:8] += v·mid[k],
// out[8:16] += |v|·rad[k], out[16:24] += |v|·mx[k], lane by lane, products rounded.
TEXT ·chainConcAVX2(SB), NOSPLIT, $0-72
	MOVQ nout+0(FP), R9
	MOVQ ptr+8(FP), R10
	MOVQ src+16(FP), R11
	MOVQ w+24(FP), R12
	MOVQ x+32(FP), DX
	MOVQ mid+40(FP), R13
	MOVQ rad+48(FP), R14
	MOVQ mx+56(FP), R15
	MOVQ out+64(FP), AX
	VMOVUPD (AX), Y8
	VMOVUPD 32(AX), Y9
	VMOVUPD 64(AX), Y10
	VMOVUPD 96(AX), Y11
	VMOVUPD 128(AX), Y12
	VMOVUPD 160(AX), Y13
	VPCMPEQQ Y15, Y15, Y15
	VPSRLQ $1, Y15, Y15
	XORQ R8, R8

concNeuron:
	CMPQ R8, R9
	JGE concEnd
	ENTRIES
	VXORPD Y0, Y0, Y0
	VXORPD Y1, Y1, Y1
	VXORPD Y2, Y2, Y2
	VXORPD Y3, Y3, Y3
	CMPQ CX, $2
	JLT concTail

concPair:
	ENTRY(0, 0, Y0, Y1)
	ENTRY(4, 8, Y2, Y3)
	ADDQ $8, SI
	ADDQ $16, DI
	SUBQ $2, CX
	CMPQ CX, $2
	JGE concPair

concTail:
	TESTQ CX, CX
	JE concSum
	ENTRY(0, 0, Y0, Y1)

concSum:
	// As sparseAcc8AVX2: the even and odd entries' sums added.
	VADDPD Y2, Y0, Y0
	VADDPD Y3, Y1, Y1
	VBROADCASTSD (R13)(R8*8), Y4
	VMULPD Y4, Y0, Y5
	VADDPD Y5, Y8, Y8
	VMULPD Y4, Y1, Y5
	VADDPD Y5, Y9, Y9
	VANDPD Y15, Y0, Y0
	VANDPD Y15, Y1, Y1
	VBROADCASTSD (R14)(R8*8), Y4
	VMULPD Y4, Y0, Y5
	VADDPD Y5, Y10, Y10
	VMULPD Y4, Y1, Y5
	VADDPD Y5, Y11, Y11
	VBROADCASTSD (R15)(R8*8), Y4
	VMULPD Y4, Y0, Y5
	VADDPD Y5, Y12, Y12
	VMULPD Y4, Y1, Y5
	VADDPD Y5, Y13, Y13
	INCQ R8
	JMP concNeuron

concEnd:
	VMOVUPD Y8, (AX)
	VMOVUPD Y9, 32(AX)
	VMOVUPD Y10, 64(AX)
	VMOVUPD Y11, 96(AX)
	VMOVUPD Y12, 128(AX)
	VMOVUPD Y13, 160(AX)
	VZEROUPPER
	RET

// relaxListed's step on the four lanes V against the line record at BX (ge, lt, bge,
// blt, hasGE, hasLT, keep): the constant into RB (its magnitude into RM), the result
// to off(R15). Y14 is zero, Y15 the magnitude mask; uses Y2–Y6.
#define RELAXHALF(V, RB, RM, off) \
	VCMPPD $0x1d, Y14, V, Y2; \
	VCMPPD $0x04, Y14, V, Y3; \
	VBROADCASTSD 16(BX), Y4; \
	VBROADCASTSD 24(BX), Y5; \
	VANDPD Y2, Y4, Y4; \
	VANDNPD Y5, Y2, Y5; \
	VORPD Y4, Y5, Y4; \
	VMULPD Y4, V, Y4; \
	VBROADCASTSD 32(BX), Y5; \
	VBROADCASTSD 40(BX), Y6; \
	VANDPD Y2, Y5, Y5; \
	VANDNPD Y6, Y2, Y6; \
	VORPD Y5, Y6, Y5; \
	VANDPD Y5, Y4, Y4; \
	VANDPD Y3, Y4, Y4; \
	VADDPD Y4, RB, RB; \
	VANDPD Y15, Y4, Y4; \
	VADDPD Y4, RM, RM; \
	VBROADCASTSD (BX), Y4; \
	VBROADCASTSD 8(BX), Y5; \
	VANDPD Y2, Y4, Y4; \
	VANDNPD Y5, Y2, Y5; \
	VORPD Y4, Y5, Y4; \
	VMULPD Y4, V, Y4; \
	VBROADCASTSD 48(BX), Y5; \
	VANDPD Y5, Y4, Y4; \
	VANDPD Y3, Y4, Y4; \
	VANDNPD V, Y3, Y5; \
	VORPD Y5, Y4, Y4; \
	VMOVUPD Y4, off(R15)

// func chainRelaxAVX2(nout int, ptr, src *int32, w, x, lines, y, rbm *float64)
// For every neuron k < nout: v = its accumulated entries, relaxed by the line record
// lines[8k:8k+8] into y[8k:8k+8]; the constants are added into rbm[0:8] and their
// magnitudes into rbm[8:16].
TEXT ·chainRelaxAVX2(SB), NOSPLIT, $0-64
	MOVQ nout+0(FP), R9
	MOVQ ptr+8(FP), R10
	MOVQ src+16(FP), R11
	MOVQ w+24(FP), R12
	MOVQ x+32(FP), DX
	MOVQ lines+40(FP), R13
	MOVQ y+48(FP), R15
	MOVQ rbm+56(FP), AX
	VMOVUPD (AX), Y10
	VMOVUPD 32(AX), Y11
	VMOVUPD 64(AX), Y12
	VMOVUPD 96(AX), Y13
	VXORPD Y14, Y14, Y14
	VPCMPEQQ Y15, Y15, Y15
	VPSRLQ $1, Y15, Y15
	XORQ R8, R8

relaxNeuron:
	CMPQ R8, R9
	JGE relaxEnd
	ENTRIES
	VXORPD Y0, Y0, Y0
	VXORPD Y1, Y1, Y1
	VXORPD Y2, Y2, Y2
	VXORPD Y3, Y3, Y3
	CMPQ CX, $2
	JLT relaxTail

relaxPair:
	ENTRY(0, 0, Y0, Y1)
	ENTRY(4, 8, Y2, Y3)
	ADDQ $8, SI
	ADDQ $16, DI
	SUBQ $2, CX
	CMPQ CX, $2
	JGE relaxPair

relaxTail:
	TESTQ CX, CX
	JE relaxSum
	ENTRY(0, 0, Y0, Y1)

relaxSum:
	// As sparseAcc8AVX2: the even and odd entries' sums added.
	VADDPD Y2, Y0, Y0
	VADDPD Y3, Y1, Y1
	MOVQ R8, BX
	SHLQ $6, BX
	ADDQ R13, BX
	RELAXHALF(Y0, Y10, Y12, 0)
	RELAXHALF(Y1, Y11, Y13, 32)
	ADDQ $64, R15
	INCQ R8
	JMP relaxNeuron

relaxEnd:
	VMOVUPD Y10, (AX)
	VMOVUPD Y11, 32(AX)
	VMOVUPD Y12, 64(AX)
	VMOVUPD Y13, 96(AX)
	VZEROUPPER
	RET
