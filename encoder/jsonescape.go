package encoder

// The tables of escapeBlocks (jsonescape_amd64.s). A half block of eight
// bytes goes into a vector register next to eight backslashes (indices 8 to
// 15); jsonShuf[m] is the byte shuffle that writes the eight bytes with a
// backslash before each one whose bit is set in m ('"' and '\\'), and
// jsonShufLen[m] how many bytes that makes.
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
