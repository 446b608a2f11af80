package main

import (
	"net"
	"os"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/flowgo/flowgo/internal/rawsock"
)

// stopPoll bounds how long a send blocked on a full socket buffer takes to
// see stop (SO_SNDTIMEO).
const stopPoll = 100 * time.Millisecond

// rawSender sends with write(2) or sendmmsg(2) on a blocking socket that is
// not in Go's network poller (see package rawsock): in the poller, each
// datagram freed on loopback ran epoll's callback for the sender's own
// socket (sock_wfree -> sock_def_write_space), 4.9% of the load generator's
// CPU at 300,000 datagrams/s (perf record -g), CPU the receiver under test
// then lacked. A send timeout of stopPoll lets a send blocked on a full
// buffer see stop.
type rawSender struct {
	fd      int
	stopped atomic.Bool
	hdrs    []rawsock.Mmsghdr
	iovs    []syscall.Iovec
}

func newDatagramSender(c *net.UDPConn, batch int) (datagramSender, error) {
	fd, err := rawsock.Detach(c, syscall.SO_SNDTIMEO, stopPoll)
	if err != nil {
		return nil, err
	}
	s := &rawSender{fd: fd, hdrs: make([]rawsock.Mmsghdr, max(batch, 1)), iovs: make([]syscall.Iovec, max(batch, 1))}
	for i := range s.hdrs {
		s.hdrs[i].Hdr.Iov = &s.iovs[i]
		s.hdrs[i].Hdr.Iovlen = 1
	}
	return s, nil
}

func (s *rawSender) send(bufs [][]byte) (int, error) {
	for {
		var n uintptr
		var e syscall.Errno
		if len(bufs) == 1 {
			_, _, e = syscall.Syscall(syscall.SYS_WRITE, uintptr(s.fd), uintptr(unsafe.Pointer(unsafe.SliceData(bufs[0]))), uintptr(len(bufs[0])))
			n = 1
		} else {
			for j, b := range bufs {
				s.iovs[j].Base = unsafe.SliceData(b)
				s.iovs[j].SetLen(len(b))
			}
			n, _, e = syscall.Syscall6(unix.SYS_SENDMMSG, uintptr(s.fd), uintptr(unsafe.Pointer(&s.hdrs[0])), uintptr(len(bufs)), 0, 0, 0)
		}
		switch e {
		case 0:
			return int(n), nil
		case syscall.EAGAIN, syscall.EINTR:
			// The send timeout passed on a full buffer, or a signal came.
			if s.stopped.Load() {
				return 0, os.ErrDeadlineExceeded
			}
		default:
			return 0, os.NewSyscallError("send", e)
		}
	}
}

func (s *rawSender) stop()        { s.stopped.Store(true) }
func (s *rawSender) close() error { return syscall.Close(s.fd) }
