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
