package rawsock

import (
	"net"
	"os"
	"syscall"
	"time"
)

// Mmsghdr is struct mmsghdr, for recvmmsg and sendmmsg; Go pads it like C
// on every architecture.
type Mmsghdr struct {
	Hdr syscall.Msghdr
	N   uint32
}

// Detach returns a blocking duplicate of c's socket outside the poller and
// closes c (Go removes its descriptor from epoll on close). timeoutOpt is
// SO_RCVTIMEO or SO_SNDTIMEO: a read or write that waits returns EAGAIN
// after timeout, so that the caller can look whether it should stop. c is
// closed also when Detach fails.
func Detach(c *net.UDPConn, timeoutOpt int, timeout time.Duration) (int, error) {
	defer c.Close()
	rc, err := c.SyscallConn()
	if err != nil {
		return -1, err
	}
	fd := -1
	var derr error
	if err := rc.Control(func(s uintptr) {
		r, _, e := syscall.Syscall(syscall.SYS_FCNTL, s, syscall.F_DUPFD_CLOEXEC, 0)
		if e != 0 {
			derr = os.NewSyscallError("fcntl F_DUPFD_CLOEXEC", e)
			return
		}
		fd = int(r)
	}); err != nil {
		return -1, err
	}
	if derr != nil {
		return -1, derr
	}
	if err := syscall.SetNonblock(fd, false); err != nil {
		syscall.Close(fd)
		return -1, os.NewSyscallError("fcntl O_NONBLOCK", err)
	}
	tv := syscall.NsecToTimeval(timeout.Nanoseconds())
	if err := syscall.SetsockoptTimeval(fd, syscall.SOL_SOCKET, timeoutOpt, &tv); err != nil {
		syscall.Close(fd)
		return -1, os.NewSyscallError("setsockopt", err)
	}
	return fd, nil
}
