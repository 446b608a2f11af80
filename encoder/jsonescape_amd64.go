//go:build amd64 && !purego

package encoder

import (
	"unsafe"

	"golang.org/x/sys/cpu"
)

// useSIMDEscape: PSHUFB is SSSE3, which every x86-64 CPU since 2006 has.
var useSIMDEscape = cpu.X86.HasSSSE3

// escapeBlocks escapes src[:n] into dst as the inside of a JSON string, 16
// bytes at a time, while at least 16 bytes are left and the next 16 hold
// no control character and no byte from 0x80 up: it stops before such a
// block. It returns the bytes read and written. dst must have room for
// 2*read bytes: it writes up to that far, past what it reports written.
//
//go:noescape
func escapeBlocks(dst, src unsafe.Pointer, n int) (read, wrote int)
