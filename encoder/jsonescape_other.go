//go:build !amd64 || purego

package encoder

import "unsafe"

const useSIMDEscape = false

func escapeBlocks(dst, src unsafe.Pointer, n int) (read, wrote int) { return 0, 0 }

func escapeSmall(dst, window unsafe.Pointer, shift, t int) (wrote int) { return -1 }
