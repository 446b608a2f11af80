//go:build linux

package output

import (
	"encoding/binary"
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

// unackedBytes returns how many of the bytes written to c the peer's TCP has
// not acknowledged: the socket's send queue, which Linux reports with the
// TIOCOUTQ (SIOCOUTQ) ioctl as write_seq - snd_una. ok is false when the
// figure cannot be had or cannot be trusted: only a connection that is
// established, or that the peer half-closed, is asked.
func unackedBytes(c *net.TCPConn, written int64) (n int64, ok bool) {
	rc, err := c.SyscallConn()
	if err != nil {
		return 0, false
	}
	var q int32
	good := false
	err = rc.Control(func(fd uintptr) {
		// tcp_info starts with the state byte; asking for 4 bytes is
		// enough and works on every kernel and architecture.
		v, err := syscall.GetsockoptInt(int(fd), syscall.IPPROTO_TCP, syscall.TCP_INFO)
		if err != nil {
			return
		}
		var b [4]byte
		binary.NativeEndian.PutUint32(b[:], uint32(v))
		if b[0] != tcpEstablished && b[0] != tcpCloseWait {
			return
		}
		if _, _, errno := syscall.Syscall(syscall.SYS_IOCTL, fd, syscall.TIOCOUTQ, uintptr(unsafe.Pointer(&q))); errno != 0 {
			return
		}
		good = q >= 0
	})
	if err != nil || !good {
		return 0, false
	}
	return int64(q), true
}

// tcpUserTimeout is TCP_USER_TIMEOUT (linux/tcp.h), the same on every
// architecture; package syscall lacks it on some.
const tcpUserTimeout = 18

// setUserTimeout makes the kernel give the connection up when data it sent
// stays unacknowledged for d: a server that vanished is noticed even while
// flowgo writes nothing, rather than after the retransmissions run out
// (about 15 minutes). A server that is alive but slow keeps acknowledging
// window probes and is not affected.
func setUserTimeout(c *net.TCPConn, d time.Duration) {
	rc, err := c.SyscallConn()
	if err != nil {
		return
	}
	rc.Control(func(fd uintptr) {
		syscall.SetsockoptInt(int(fd), syscall.IPPROTO_TCP, tcpUserTimeout, int(d.Milliseconds()))
	})
}

// exactAcks is true where unackedBytes asks the kernel: Close can then wait
// until the peer acknowledged everything.
const exactAcks = true
