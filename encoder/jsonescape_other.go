//go:build !amd64 || purego

package encoder

import "unsafe"

const useSIMDEscape = false

func escapeBlocks(dst, src unsafe.Pointer, n int) (read, wrote int) { return 0, 0 }
