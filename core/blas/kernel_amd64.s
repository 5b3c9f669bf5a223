//go:build amd64 && !purego

#include "textflag.h"

// One step of the inner loop: B row (two YMM) at DI, six A values at SI+off; twelve
// FMAs into the accumulators Y4..Y15 (row r in Y(4+2r), Y(5+2r)).
#define STEP(off) \
	VMOVUPD (DI), Y0; \
	VMOVUPD 32(DI), Y1; \
	ADDQ R8, DI; \
	VBROADCASTSD (off)(SI), Y2; \
	VFMADD231PD Y0, Y2, Y4; \
	VFMADD231PD Y1, Y2, Y5; \
	VBROADCASTSD (off+8)(SI), Y3; \
	VFMADD231PD Y0, Y3, Y6; \
	VFMADD231PD Y1, Y3, Y7; \
	VBROADCASTSD (off+16)(SI), Y2; \
	VFMADD231PD Y0, Y2, Y8; \
	VFMADD231PD Y1, Y2, Y9; \
	VBROADCASTSD (off+24)(SI), Y3; \
	VFMADD231PD Y0, Y3, Y10; \
	VFMADD231PD Y1, Y3, Y11; \
	VBROADCASTSD (off+32)(SI), Y2; \
	VFMADD231PD Y0, Y2, Y12; \
	VFMADD231PD Y1, Y2, Y13; \
	VBROADCASTSD (off+40)(SI), Y3; \
	VFMADD231PD Y0, Y3, Y14; \
	VFMADD231PD Y1, Y3, Y15

// Row r of C (at DX): accumulate alpha·acc (Y0 = alpha) into it, next row.
#define ADDROW(lo, hi) \
	VFMADD213PD (DX), Y0, lo; \
	VFMADD213PD 32(DX), Y0, hi; \
	VMOVUPD lo, (DX); \
	VMOVUPD hi, 32(DX); \
	ADDQ R9, DX

// Row r of C: overwrite with alpha·acc.
#define SETROW(lo, hi) \
	VMULPD Y0, lo, lo; \
	VMULPD Y0, hi, hi; \
	VMOVUPD lo, (DX); \
	VMOVUPD hi, 32(DX); \
	ADDQ R9, DX

// func kern6x8(k int, a, b *float64, bstride int, c *float64, ldc int, alpha float64, accum int)
TEXT ·kern6x8(SB), NOSPLIT, $0-64
	MOVQ k+0(FP), CX
	MOVQ a+8(FP), SI
	MOVQ b+16(FP), DI
	MOVQ bstride+24(FP), R8
	SHLQ $3, R8
	VXORPD Y4, Y4, Y4
	VXORPD Y5, Y5, Y5
	VXORPD Y6, Y6, Y6
	VXORPD Y7, Y7, Y7
	VXORPD Y8, Y8, Y8
	VXORPD Y9, Y9, Y9
	VXORPD Y10, Y10, Y10
	VXORPD Y11, Y11, Y11
	VXORPD Y12, Y12, Y12
	VXORPD Y13, Y13, Y13
	VXORPD Y14, Y14, Y14
	VXORPD Y15, Y15, Y15
	MOVQ CX, BX
	SHRQ $2, BX
	JZ   tail

loop4:
	STEP(0)
	STEP(48)
	STEP(96)
	STEP(144)
	ADDQ $192, SI
	DECQ BX
	JNZ  loop4

tail:
	ANDQ $3, CX
	JZ   done

loop1:
	STEP(0)
	ADDQ $48, SI
	DECQ CX
	JNZ  loop1

done:
	MOVQ         c+32(FP), DX
	MOVQ         ldc+40(FP), R9
	SHLQ         $3, R9
	VBROADCASTSD alpha+48(FP), Y0
	MOVQ         accum+56(FP), AX
	TESTQ        AX, AX
	JZ           set
	ADDROW(Y4, Y5)
	ADDROW(Y6, Y7)
	ADDROW(Y8, Y9)
	ADDROW(Y10, Y11)
	ADDROW(Y12, Y13)
	ADDROW(Y14, Y15)
	VZEROUPPER
	RET

set:
	SETROW(Y4, Y5)
	SETROW(Y6, Y7)
	SETROW(Y8, Y9)
	SETROW(Y10, Y11)
	SETROW(Y12, Y13)
	SETROW(Y14, Y15)
	VZEROUPPER
	RET
