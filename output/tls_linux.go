//go:build linux

package output

import (
	"net"
	"syscall"
	"time"
	"unsafe"
)

// TCP states as tcp_info reports them (include/net/tcp_states.h).
const (
	tcpEstablished = 1
	tcpCloseWait   = 8
)

// tcpSample asks the kernel about a connection:
//
//   - unacked: how many of the bytes written to c the peer's TCP has not
//     acknowledged, the socket's send queue, which Linux reports with the
//     TIOCOUTQ (SIOCOUTQ) ioctl as write_seq - snd_una;
//   - window: the receive window the peer last advertised (tcp_info's
//     tcpi_snd_wnd, on kernels whose tcp_info has it), -1 when unknown.
//
// ok is false when the figures cannot be had or cannot be trusted: only a
// connection that is established, or that the peer half-closed, is asked.
func tcpSample(c *net.TCPConn, written int64) (unacked, window int64, ok bool) {
	rc, err := c.SyscallConn()
	if err != nil {
		return 0, -1, false
	}
	var q int32
	window = -1
	err = rc.Control(func(fd uintptr) {
		state, wnd := tcpInfo(fd)
		if state != tcpEstablished && state != tcpCloseWait {
			return
		}
		if _, _, errno := syscall.Syscall(syscall.SYS_IOCTL, fd, syscall.TIOCOUTQ, uintptr(unsafe.Pointer(&q))); errno != 0 || q < 0 {
			return
		}
		window, ok = wnd, true
	})
	if err != nil || !ok {
		return 0, -1, false
	}
	return int64(q), window, true
}

// tcpUserTimeout is TCP_USER_TIMEOUT (linux/tcp.h), the same on every
// architecture; package syscall lacks it on some.
const tcpUserTimeout = 18

// setUserTimeout makes the kernel give the connection up when data it sent
// stays unacknowledged for d: a server that vanished is noticed even while
// flowgo writes nothing, rather than after the retransmissions run out
// (about 15 minutes). A server that is alive but slow keeps acknowledging
// window probes and is not affected.
func setUserTimeout(c *net.TCPConn, d time.Duration) error {
	rc, err := c.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	if err := rc.Control(func(fd uintptr) {
		serr = syscall.SetsockoptInt(int(fd), syscall.IPPROTO_TCP, tcpUserTimeout, int(d.Milliseconds()))
	}); err != nil {
		return err
	}
	return serr
}

// exactAcks is true where tcpSample asks the kernel: Close can then wait
// until the peer acknowledged everything.
const exactAcks = true
