//go:build amd64 && !purego

#include "textflag.h"

DATA escConsts<>+0(SB)/8, $0x2020202020202020
DATA escConsts<>+8(SB)/8, $0x2020202020202020
DATA escConsts<>+16(SB)/8, $0x2222222222222222
DATA escConsts<>+24(SB)/8, $0x2222222222222222
DATA escConsts<>+32(SB)/8, $0x5c5c5c5c5c5c5c5c
DATA escConsts<>+40(SB)/8, $0x5c5c5c5c5c5c5c5c
GLOBL escConsts<>(SB), RODATA|NOPTR, $48

// func escapeBlocks(dst, src unsafe.Pointer, n int) (read, wrote int)
TEXT ·escapeBlocks(SB), NOSPLIT, $0-40
	MOVQ dst+0(FP), DI
	MOVQ src+8(FP), SI
	MOVQ n+16(FP), CX
	XORQ R8, R8 // bytes read
	XORQ R9, R9 // bytes written
	MOVOU escConsts<>+0(SB), X10  // 0x20 in every byte
	MOVOU escConsts<>+16(SB), X11 // '"'
	MOVOU escConsts<>+32(SB), X12 // '\\'
	LEAQ ·jsonShuf(SB), R10
	LEAQ ·jsonShufLen(SB), R11

loop:
	MOVQ CX, AX
	SUBQ R8, AX
	CMPQ AX, $16
	JLT  done
	MOVOU (SI)(R8*1), X0

	// Control characters and bytes from 0x80 up are below 0x20 as signed
	// bytes: such a block is left to the caller.
	MOVO     X10, X1
	PCMPGTB  X0, X1
	PMOVMSKB X1, AX
	TESTL    AX, AX
	JNZ      done

	// BX: bit k set when byte k is '"' or '\\'.
	MOVO     X0, X2
	PCMPEQB  X11, X2
	MOVO     X0, X3
	PCMPEQB  X12, X3
	POR      X3, X2
	PMOVMSKB X2, BX

	// Bytes 0-7, next to eight backslashes, shuffled into place.
	MOVQ       BX, DX
	ANDQ       $0xff, DX
	MOVO       X0, X4
	PUNPCKLQDQ X12, X4
	MOVQ       DX, AX
	SHLQ       $4, AX
	MOVOU      (R10)(AX*1), X5
	PSHUFB     X5, X4
	MOVOU      X4, (DI)(R9*1)
	MOVBQZX    (R11)(DX*1), AX
	ADDQ       AX, R9

	// Bytes 8-15 the same way.
	SHRQ       $8, BX
	MOVO       X0, X6
	PSRLDQ     $8, X6
	PUNPCKLQDQ X12, X6
	MOVQ       BX, AX
	SHLQ       $4, AX
	MOVOU      (R10)(AX*1), X5
	PSHUFB     X5, X6
	MOVOU      X6, (DI)(R9*1)
	MOVBQZX    (R11)(BX*1), AX
	ADDQ       AX, R9

	ADDQ $16, R8
	JMP  loop

done:
	MOVQ R8, read+24(FP)
	MOVQ R9, wrote+32(FP)
	RET
