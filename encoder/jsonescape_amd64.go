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

// escapeSmall escapes the t bytes (1 to 16) at window+shift, reading the
// 16 bytes at window, all of which must be readable. It writes up to 32
// bytes to dst and returns how many count, or -1 when one of the t bytes is
// a control character or a byte from 0x80 up (the caller escapes them).
//
//go:noescape
func escapeSmall(dst, window unsafe.Pointer, shift, t int) (wrote int)

// The tables of escapeBlocks (jsonescape_amd64.s). A half block of eight
// bytes goes into a vector register next to eight backslashes (indices 8 to
// 15); jsonShuf[m] is the byte shuffle that writes the eight bytes with a
// backslash before each one whose bit is set in m ('"' and '\\'), and
// jsonShufLen[m] how many bytes that makes.
//
//lint:ignore U1000 read by escapeBlocks in jsonescape_amd64.s, which staticcheck does not see
var jsonShuf, jsonShufLen = func() (shuf [256][16]byte, length [256]uint8) {
	for m := range 256 {
		n := 0
		for k := range 8 {
			if m&(1<<k) != 0 {
				shuf[m][n] = 8 // a backslash
				n++
			}
			shuf[m][n] = byte(k)
			n++
		}
		for i := n; i < 16; i++ {
			shuf[m][i] = 0x80 // a zero byte, overwritten by what comes next
		}
		length[m] = uint8(n)
	}
	return shuf, length
}()
