package input

import (
	"crypto/tls"
	"net"
	"syscall"
	"unsafe"
)

// unsent returns the bytes c's socket has not had acknowledged yet
// (TIOCOUTQ); on loopback, 0 means the peer's socket holds them all.
func unsent(c net.Conn) int {
	if tc, ok := c.(*tls.Conn); ok {
		c = tc.NetConn()
	}
	raw, err := c.(syscall.Conn).SyscallConn()
	if err != nil {
		return -1
	}
	n := -1
	raw.Control(func(fd uintptr) {
		var v int32
		if _, _, errno := syscall.Syscall(syscall.SYS_IOCTL, fd, syscall.TIOCOUTQ, uintptr(unsafe.Pointer(&v))); errno == 0 {
			n = int(v)
		}
	})
	return n
}
