//go:build linux && 386

package output

import (
	"encoding/binary"
	"syscall"
)

// tcpInfo returns the connection's TCP state; the peer's window is not
// read on 386, where getsockopt goes through socketcall.
func tcpInfo(fd uintptr) (state uint8, window int64) {
	// tcp_info starts with the state byte; 4 bytes are enough.
	v, err := syscall.GetsockoptInt(int(fd), syscall.IPPROTO_TCP, syscall.TCP_INFO)
	if err != nil {
		return 0, -1
	}
	var b [4]byte
	binary.NativeEndian.PutUint32(b[:], uint32(v))
	return b[0], -1
}
