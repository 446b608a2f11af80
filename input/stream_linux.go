package input

import (
	"net"
	"syscall"
	"unsafe"
)

// inQueue returns how many bytes wait in c's socket receive buffer, or -1
// when that cannot be known. Linux's TIOCINQ (SIOCINQ) gives it for TCP.
func inQueue(c net.Conn) int {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return -1
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return -1
	}
	n := -1
	cerr := raw.Control(func(fd uintptr) {
		var v int32
		if _, _, errno := syscall.Syscall(syscall.SYS_IOCTL, fd, syscall.TIOCINQ, uintptr(unsafe.Pointer(&v))); errno == 0 {
			n = int(v)
		}
	})
	if cerr != nil {
		return -1
	}
	return n
}
