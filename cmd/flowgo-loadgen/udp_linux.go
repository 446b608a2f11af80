package main

import (
	"net"
	"os"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// stopPoll bounds how long a send blocked on a full socket buffer takes to
// see stop (SO_SNDTIMEO).
const stopPoll = 100 * time.Millisecond

// rawSender sends with write(2) or sendmmsg(2) on a blocking socket that is
// not in Go's network poller. A socket in the poller stays registered with
// epoll, and the kernel then calls epoll's wake-up callback each time it
// frees a sent datagram (sock_wfree -> sock_def_write_space): on loopback
// at 300,000 datagrams/s that was 4.9% of the load generator's CPU (perf
// record -g), CPU the receiver under test then lacks.
type rawSender struct {
	fd      int
	stopped atomic.Bool
	hdrs    []mmsghdr
	iovs    []syscall.Iovec
}

// mmsghdr is struct mmsghdr.
type mmsghdr struct {
	hdr syscall.Msghdr
	n   uint32
}

// newDatagramSender takes c's socket out of the poller: it duplicates the
// descriptor and closes c (Go removes its descriptor from epoll on close).
func newDatagramSender(c *net.UDPConn, batch int) (datagramSender, error) {
	defer c.Close()
	rc, err := c.SyscallConn()
	if err != nil {
		return nil, err
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
		return nil, err
	}
	if derr != nil {
		return nil, derr
	}
	tv := syscall.NsecToTimeval(stopPoll.Nanoseconds())
	if err := syscall.SetNonblock(fd, false); err != nil {
		syscall.Close(fd)
		return nil, os.NewSyscallError("fcntl O_NONBLOCK", err)
	}
	if err := syscall.SetsockoptTimeval(fd, syscall.SOL_SOCKET, syscall.SO_SNDTIMEO, &tv); err != nil {
		syscall.Close(fd)
		return nil, os.NewSyscallError("setsockopt SO_SNDTIMEO", err)
	}
	s := &rawSender{fd: fd, hdrs: make([]mmsghdr, max(batch, 1)), iovs: make([]syscall.Iovec, max(batch, 1))}
	for i := range s.hdrs {
		s.hdrs[i].hdr.Iov = &s.iovs[i]
		s.hdrs[i].hdr.Iovlen = 1
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
