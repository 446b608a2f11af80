package input

import (
	"net"
	"syscall"
	"unsafe"
)

// inQueue returns how many bytes wait in c's socket receive buffer, or -1
// when that cannot be known. Linux's TIOCINQ (SIOCINQ) gives it for TCP.
func inQueue(c net.Conn) int {
	p := newPendingProbe(c)
	return p.bytes()
}

// pendingProbe asks one connection's socket, repeatedly and without
// allocating, how many received bytes wait to be read. Not safe for
// concurrent use.
type pendingProbe struct {
	raw  syscall.RawConn
	n    int32
	ok   bool
	ctrl func(fd uintptr)
}

func newPendingProbe(c net.Conn) *pendingProbe {
	p := &pendingProbe{}
	if sc, ok := c.(syscall.Conn); ok {
		if raw, err := sc.SyscallConn(); err == nil {
			p.raw = raw
		}
	}
	p.ctrl = p.control
	return p
}

func (p *pendingProbe) control(fd uintptr) {
	_, _, errno := syscall.Syscall(syscall.SYS_IOCTL, fd, syscall.TIOCINQ, uintptr(unsafe.Pointer(&p.n)))
	p.ok = errno == 0
}

// bytes returns the bytes waiting, or -1 when unknown.
func (p *pendingProbe) bytes() int {
	if p.raw == nil {
		return -1
	}
	p.ok = false
	if p.raw.Control(p.ctrl) != nil || !p.ok {
		return -1
	}
	return int(p.n)
}

// closeWindow shrinks c's receive buffer to the least the kernel allows,
// so that the window it advertises to the sender closes once the bytes
// already promised have arrived: a stopping connection then drains what the
// sender was let send, and the rest stays with the sender (unacknowledged,
// so not lost for it) instead of arriving, acknowledged, just before the
// close discards it.
func closeWindow(c net.Conn) {
	if tc, ok := c.(*net.TCPConn); ok {
		tc.SetReadBuffer(1) // the kernel rounds it up to its minimum
	}
}
