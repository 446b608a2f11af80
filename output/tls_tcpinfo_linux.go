//go:build linux && !386

package output

import (
	"encoding/binary"
	"syscall"
	"unsafe"
)

// tcpiSndWnd is the offset of tcpi_snd_wnd in struct tcp_info; older
// kernels return a shorter struct, and the window is then unknown.
const tcpiSndWnd = 228

// tcpInfo returns the connection's TCP state and the receive window the
// peer last advertised, -1 when the kernel does not report it.
func tcpInfo(fd uintptr) (state uint8, window int64) {
	var info [256]byte
	n := uint32(len(info))
	_, _, errno := syscall.Syscall6(syscall.SYS_GETSOCKOPT, fd, syscall.IPPROTO_TCP, syscall.TCP_INFO,
		uintptr(unsafe.Pointer(&info[0])), uintptr(unsafe.Pointer(&n)), 0)
	if errno != 0 || n < 1 {
		return 0, -1
	}
	if n < tcpiSndWnd+4 {
		return info[0], -1
	}
	return info[0], int64(binary.NativeEndian.Uint32(info[tcpiSndWnd:]))
}
