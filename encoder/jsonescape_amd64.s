//go:build amd64 && !purego

#include "textflag.h"

DATA escConsts<>+0(SB)/8, $0x2020202020202020
DATA escConsts<>+8(SB)/8, $0x2020202020202020
DATA escConsts<>+16(SB)/8, $0x2222222222222222
DATA escConsts<>+24(SB)/8, $0x2222222222222222
DATA escConsts<>+32(SB)/8, $0x5c5c5c5c5c5c5c5c
DATA escConsts<>+40(SB)/8, $0x5c5c5c5c5c5c5c5c
GLOBL escConsts<>(SB), RODATA|NOPTR, $48

// shiftDown<>[k] is the byte shuffle that moves bytes k-15 of a register
// down to 0-(15-k) and zeroes the rest.
DATA shiftDown<>+0(SB)/8, $0x0706050403020100
DATA shiftDown<>+8(SB)/8, $0x0f0e0d0c0b0a0908
DATA shiftDown<>+16(SB)/8, $0x0807060504030201
DATA shiftDown<>+24(SB)/8, $0x800f0e0d0c0b0a09
DATA shiftDown<>+32(SB)/8, $0x0908070605040302
DATA shiftDown<>+40(SB)/8, $0x80800f0e0d0c0b0a
DATA shiftDown<>+48(SB)/8, $0x0a09080706050403
DATA shiftDown<>+56(SB)/8, $0x8080800f0e0d0c0b
DATA shiftDown<>+64(SB)/8, $0x0b0a090807060504
DATA shiftDown<>+72(SB)/8, $0x808080800f0e0d0c
DATA shiftDown<>+80(SB)/8, $0x0c0b0a0908070605
DATA shiftDown<>+88(SB)/8, $0x80808080800f0e0d
DATA shiftDown<>+96(SB)/8, $0x0d0c0b0a09080706
DATA shiftDown<>+104(SB)/8, $0x8080808080800f0e
DATA shiftDown<>+112(SB)/8, $0x0e0d0c0b0a090807
DATA shiftDown<>+120(SB)/8, $0x808080808080800f
DATA shiftDown<>+128(SB)/8, $0x0f0e0d0c0b0a0908
DATA shiftDown<>+136(SB)/8, $0x8080808080808080
DATA shiftDown<>+144(SB)/8, $0x800f0e0d0c0b0a09
DATA shiftDown<>+152(SB)/8, $0x8080808080808080
DATA shiftDown<>+160(SB)/8, $0x80800f0e0d0c0b0a
DATA shiftDown<>+168(SB)/8, $0x8080808080808080
DATA shiftDown<>+176(SB)/8, $0x8080800f0e0d0c0b
DATA shiftDown<>+184(SB)/8, $0x8080808080808080
DATA shiftDown<>+192(SB)/8, $0x808080800f0e0d0c
DATA shiftDown<>+200(SB)/8, $0x8080808080808080
DATA shiftDown<>+208(SB)/8, $0x80808080800f0e0d
DATA shiftDown<>+216(SB)/8, $0x8080808080808080
DATA shiftDown<>+224(SB)/8, $0x8080808080800f0e
DATA shiftDown<>+232(SB)/8, $0x8080808080808080
DATA shiftDown<>+240(SB)/8, $0x808080808080800f
DATA shiftDown<>+248(SB)/8, $0x8080808080808080
GLOBL shiftDown<>(SB), RODATA|NOPTR, $256

// The steps both functions share. Registers: X0 the 16 bytes, X11 sixteen
// '"', X12 sixteen '\\', R10 ·jsonShuf, R11 ·jsonShufLen, DI dst, R9 bytes
// written so far.

// QUOTE_MASK sets bit k of BX when byte k of X0 is '"' or '\\'.
#define QUOTE_MASK \
	MOVO     X0, X2  \
	PCMPEQB  X11, X2 \
	MOVO     X0, X3  \
	PCMPEQB  X12, X3 \
	POR      X3, X2  \
	PMOVMSKB X2, BX

// EXPAND_HALF writes the 8 bytes in the low half of reg, with a backslash
// before each one whose bit is set in mask (0-255), at dst+R9, and
// advances R9: the bytes go next to eight backslashes and jsonShuf[mask]
// shuffles them into place.
#define EXPAND_HALF(reg, mask) \
	PUNPCKLQDQ X12, reg          \
	MOVQ       mask, AX          \
	SHLQ       $4, AX            \
	MOVOU      (R10)(AX*1), X5   \
	PSHUFB     X5, reg           \
	MOVOU      reg, (DI)(R9*1)   \
	MOVBQZX    (R11)(mask*1), AX \
	ADDQ       AX, R9

// EXPAND_BLOCK writes the 16 bytes of X0, escaped as BX says.
#define EXPAND_BLOCK \
	MOVQ   BX, DX          \
	ANDQ   $0xff, DX       \
	MOVO   X0, X4          \
	EXPAND_HALF(X4, DX)    \
	SHRQ   $8, BX          \
	MOVO   X0, X6          \
	PSRLDQ $8, X6          \
	EXPAND_HALF(X6, BX)

// LOAD_CONSTANTS loads what the macros read.
#define LOAD_CONSTANTS \
	MOVOU escConsts<>+16(SB), X11 \
	MOVOU escConsts<>+32(SB), X12 \
	LEAQ  ·jsonShuf(SB), R10      \
	LEAQ  ·jsonShufLen(SB), R11

// func escapeBlocks(dst, src unsafe.Pointer, n int) (read, wrote int)
TEXT ·escapeBlocks(SB), NOSPLIT, $0-40
	MOVQ dst+0(FP), DI
	MOVQ src+8(FP), SI
	MOVQ n+16(FP), CX
	XORQ R8, R8 // bytes read
	XORQ R9, R9 // bytes written
	MOVOU escConsts<>+0(SB), X10 // 0x20 in every byte
	LOAD_CONSTANTS

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

	QUOTE_MASK
	EXPAND_BLOCK

	ADDQ $16, R8
	JMP  loop

done:
	MOVQ R8, read+24(FP)
	MOVQ R9, wrote+32(FP)
	RET

// func escapeSmall(dst, window unsafe.Pointer, shift, t int) (wrote int)
TEXT ·escapeSmall(SB), NOSPLIT, $0-40
	MOVQ dst+0(FP), DI
	MOVQ window+8(FP), SI
	MOVQ shift+16(FP), AX
	MOVQ t+24(FP), CX

	// X0: the t bytes at window+shift, then zeroes.
	MOVOU  (SI), X0
	SHLQ   $4, AX
	LEAQ   shiftDown<>(SB), R10
	MOVOU  (R10)(AX*1), X1
	PSHUFB X1, X0

	// R8: a mask of the t bytes.
	MOVQ $1, R8
	SHLQ CX, R8
	DECQ R8

	// A control character or a byte from 0x80 up: left to the caller.
	MOVOU    escConsts<>+0(SB), X1
	PCMPGTB  X0, X1
	PMOVMSKB X1, AX
	ANDQ     R8, AX
	JNZ      fail

	LOAD_CONSTANTS
	QUOTE_MASK
	ANDQ R8, BX // only the t bytes: a short string's window reads past it
	XORQ R9, R9
	EXPAND_BLOCK

	// Each half wrote its 8 bytes and a backslash per quote or backslash;
	// of the bytes, only t count.
	LEAQ -16(R9)(CX*1), AX
	MOVQ AX, wrote+32(FP)
	RET

fail:
	MOVQ $-1, wrote+32(FP)
	RET
