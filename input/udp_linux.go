package input

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"github.com/flowgo/flowgo/internal/rawsock"
)

// mmsgBatch is how many datagrams one recvmmsg call may return.
const mmsgBatch = 32

// udpReaders returns how many goroutines read the socket: one per decoding
// worker, so that one decodes while another is in recvmmsg.
func udpReaders(workers int) int { return max(workers, 1) }

// stopPoll is how often a reader waiting for a datagram looks whether the
// input is stopping: the receive timeout of the blocking socket.
const stopPoll = 100 * time.Millisecond

// udpConn is the socket, taken out of Go's network poller (see package
// rawsock): in the poller, epoll's wake-up callback runs for each
// datagram queued on an empty receive queue, on the sender's CPU
// (__udp_enqueue_schedule_skb -> sock_def_readable), a cost that grows
// with the datagram rate. Readers block in recvmmsg; a receive timeout of
// stopPoll lets a waiting reader see stop.
type udpConn struct {
	fd      int
	stopped atomic.Bool
}

func newUDPConn(c *net.UDPConn) (*udpConn, error) {
	fd, err := rawsock.Detach(c, syscall.SO_RCVTIMEO, stopPoll)
	if err != nil {
		return nil, err
	}
	return &udpConn{fd: fd}, nil
}

// stop makes every reader's waiting read fail with os.ErrDeadlineExceeded
// within stopPoll.
func (c *udpConn) stop() { c.stopped.Store(true) }

// close closes the socket. The readers must have returned: a descriptor
// closed under a reader could be reused by another file.
func (c *udpConn) close() error { return syscall.Close(c.fd) }

// mmsgReader reads with recvmmsg(2) into mmsgBatch buffers of maxDatagram
// bytes. The buffers cost address space more than memory: the kernel
// touches only the bytes each datagram fills.
type mmsgReader struct {
	c     *udpConn
	hdrs  []rawsock.Mmsghdr
	iovs  []syscall.Iovec
	names []syscall.RawSockaddrAny
	bufs  []byte
}

func newDatagramReader(c *udpConn) datagramReader {
	r := &mmsgReader{
		c:     c,
		hdrs:  make([]rawsock.Mmsghdr, mmsgBatch),
		iovs:  make([]syscall.Iovec, mmsgBatch),
		names: make([]syscall.RawSockaddrAny, mmsgBatch),
		bufs:  make([]byte, mmsgBatch*maxDatagram),
	}
	for i := range r.hdrs {
		r.iovs[i].Base = &r.bufs[i*maxDatagram]
		r.iovs[i].SetLen(maxDatagram)
		h := &r.hdrs[i].Hdr
		h.Name = (*byte)(unsafe.Pointer(&r.names[i]))
		h.Iov = &r.iovs[i]
		h.Iovlen = 1
	}
	return r
}

// read waits, in recvmmsg, for at least one datagram, and returns what is
// queued then; without wait it returns 0 at once when nothing is queued.
func (r *mmsgReader) read(wait bool) (int, error) {
	if !wait {
		return r.recv(syscall.MSG_DONTWAIT)
	}
	for !r.c.stopped.Load() {
		n, err := r.recv(msgWaitForOne)
		if n > 0 || err != nil {
			return n, err
		}
	}
	return 0, os.ErrDeadlineExceeded
}

// drain reads without waiting, also after stop.
func (r *mmsgReader) drain() (int, error) { return r.recv(syscall.MSG_DONTWAIT) }

// msgWaitForOne is MSG_WAITFORONE: recvmmsg blocks for the first datagram
// only, then takes what is queued.
const msgWaitForOne = 0x10000

// recv calls recvmmsg. It returns 0 and no error when nothing came: the
// socket was empty (MSG_DONTWAIT), the receive timeout passed, or a signal
// interrupted the wait (then the caller looks at stop). A call that does
// not wait is retried after a signal, so that a drain does not end early.
func (r *mmsgReader) recv(flags int) (int, error) {
	for i := range r.hdrs {
		r.hdrs[i].Hdr.Namelen = syscall.SizeofSockaddrAny
		r.hdrs[i].Hdr.Flags = 0
	}
	// A plain Syscall, not RawSyscall, also with MSG_DONTWAIT: a read of
	// 32 datagrams takes tens of microseconds, and during it the runtime
	// hands the P to the output or the other reader. RawSyscall saves a
	// little CPU per datagram but holds the P, and under load the kernel
	// drops more datagrams (bench/net.sh's udp suite shows it).
	var n uintptr
	var e syscall.Errno
	for {
		n, _, e = syscall.Syscall6(syscall.SYS_RECVMMSG, uintptr(r.c.fd), uintptr(unsafe.Pointer(&r.hdrs[0])),
			uintptr(len(r.hdrs)), uintptr(flags), 0, 0)
		if e != syscall.EINTR || flags&syscall.MSG_DONTWAIT == 0 {
			break
		}
	}
	switch e {
	case 0:
		return int(n), nil
	case syscall.EAGAIN, syscall.EINTR:
		return 0, nil
	default:
		return 0, os.NewSyscallError("recvmmsg", e)
	}
}

func (r *mmsgReader) datagram(i int) []byte {
	n := int(r.hdrs[i].N)
	return r.bufs[i*maxDatagram : i*maxDatagram+n]
}

func (r *mmsgReader) sender(i int) netip.AddrPort { return sockaddrAddrPort(&r.names[i]) }

// sockaddrAddrPort converts a sockaddr_in or sockaddr_in6 filled by the
// kernel; IPv4 senders on a dual-stack socket come out as IPv4.
func sockaddrAddrPort(sa *syscall.RawSockaddrAny) netip.AddrPort {
	switch sa.Addr.Family {
	case syscall.AF_INET:
		p := (*syscall.RawSockaddrInet4)(unsafe.Pointer(sa))
		port := binary.BigEndian.Uint16((*[2]byte)(unsafe.Pointer(&p.Port))[:])
		return netip.AddrPortFrom(netip.AddrFrom4(p.Addr), port)
	case syscall.AF_INET6:
		p := (*syscall.RawSockaddrInet6)(unsafe.Pointer(sa))
		port := binary.BigEndian.Uint16((*[2]byte)(unsafe.Pointer(&p.Port))[:])
		a := netip.AddrFrom16(p.Addr).Unmap()
		if p.Scope_id != 0 && a.Is6() {
			a = a.WithZone(strconv.FormatUint(uint64(p.Scope_id), 10))
		}
		return netip.AddrPortFrom(a, port)
	}
	return netip.AddrPort{}
}

// setRecvBuffer asks for a receive buffer of n bytes (none when n is 0)
// and returns the size the kernel reports. SO_RCVBUFFORCE lets root (or
// CAP_NET_ADMIN) go past net.core.rmem_max; otherwise SO_RCVBUF is capped
// at it. Linux doubles the value asked for, to leave room for its
// bookkeeping, and reports the doubled value; so that "obtained" compares
// with udp_recv_buffer, the result is halved.
func setRecvBuffer(c *net.UDPConn, n int) (int, error) {
	rc, err := c.SyscallConn()
	if err != nil {
		return 0, err
	}
	var got int
	var serr error
	err = rc.Control(func(fd uintptr) {
		if n > 0 {
			if e := syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUFFORCE, n); e != nil {
				if e := syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, n); e != nil {
					serr = os.NewSyscallError("setsockopt SO_RCVBUF", e)
				}
			}
		}
		v, e := syscall.GetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF)
		if e != nil && serr == nil {
			serr = os.NewSyscallError("getsockopt SO_RCVBUF", e)
		}
		got = v / 2
	})
	if err != nil {
		return 0, err
	}
	return got, serr
}

// kernelDrops reports the datagrams the kernel dropped for the socket,
// mostly because its receive buffer was full. Linux counts them per socket
// (sk_drops); it is read with getsockopt SO_MEMINFO (Linux 4.6+), or from
// the drops column of /proc/net/udp and udp6 for the socket's inode.
type kernelDrops struct {
	c   *udpConn
	log *slog.Logger

	mu      sync.Mutex
	last    uint32
	useProc bool
	ino     uint64
	off     bool
}

// newKernelDrops counts the drops beyond counted, the value of the counter
// that an input that had the socket before counted already.
func newKernelDrops(c *udpConn, log *slog.Logger, counted uint32) *kernelDrops {
	return &kernelDrops{c: c, log: log, last: counted}
}

// counted returns the value of the counter counted so far.
func (k *kernelDrops) counted() uint32 {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.last
}

// report counts the drops since the last call with sink.Dropped.
func (k *kernelDrops) report(sink Sink) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.off {
		return
	}
	cur, err := k.read()
	if err != nil {
		k.off = true
		k.log.Warn("udp: cannot read the kernel's drop counter; its drops will not be counted", "error", err)
		return
	}
	if d := cur - k.last; d > 0 { // uint32 arithmetic survives the counter wrapping
		sink.Dropped(int(d), dropKernel)
	}
	k.last = cur
}

func (k *kernelDrops) read() (uint32, error) {
	if !k.useProc {
		v, err := socketDrops(k.c.fd)
		if err == nil {
			return v, nil
		}
		k.useProc = true
	}
	if k.ino == 0 {
		var st syscall.Stat_t
		if err := syscall.Fstat(k.c.fd, &st); err != nil {
			return 0, os.NewSyscallError("fstat", err)
		}
		k.ino = st.Ino
	}
	return procNetUDPDrops(k.ino)
}

// procNetUDPDrops returns the drops column of the socket with inode ino in
// /proc/net/udp or /proc/net/udp6.
func procNetUDPDrops(ino uint64) (uint32, error) {
	want := strconv.FormatUint(ino, 10)
	for _, path := range []string{"/proc/net/udp", "/proc/net/udp6"} {
		v, ok, err := scanProcNetUDP(path, want)
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			return 0, err
		}
		if ok {
			return v, nil
		}
	}
	return 0, fmt.Errorf("socket inode %d not found in /proc/net/udp", ino)
}

// scanProcNetUDP reads a /proc/net/udp table, whose lines are
// "sl local rem st tx:rx tr:tm retrnsmt uid timeout inode ref pointer drops".
func scanProcNetUDP(path, inode string) (uint32, bool, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, false, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 13 || fields[9] != inode {
			continue
		}
		v, err := strconv.ParseUint(fields[12], 10, 32)
		if err != nil {
			return 0, false, fmt.Errorf("%s: drops column %q: %v", path, fields[12], err)
		}
		return uint32(v), true, nil
	}
	return 0, false, sc.Err()
}

// file returns a new descriptor of the socket, for a successor input.
func (c *udpConn) file() (*os.File, error) {
	fd, err := syscall.Dup(c.fd)
	if err != nil {
		return nil, err
	}
	// The successor reads through Go's poller again: blocking, with no
	// receive timeout, is what net.FilePacketConn expects to change.
	syscall.SetsockoptTimeval(fd, syscall.SOL_SOCKET, syscall.SO_RCVTIMEO, &syscall.Timeval{})
	return os.NewFile(uintptr(fd), "udp"), nil
}
