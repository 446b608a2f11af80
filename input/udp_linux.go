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
	"syscall"
	"unsafe"
)

// mmsgBatch is how many datagrams one recvmmsg call may return.
const mmsgBatch = 32

// udpReaders returns how many goroutines read the socket: one per decoding
// worker, so that one decodes while another is in recvmmsg.
func udpReaders(workers int) int { return max(workers, 1) }

// mmsghdr is struct mmsghdr; Go pads it like C on every architecture.
type mmsghdr struct {
	hdr syscall.Msghdr
	n   uint32
}

// mmsgReader reads with recvmmsg(2) into mmsgBatch buffers of maxDatagram
// bytes. The buffers cost address space more than memory: the kernel
// touches only the bytes each datagram fills.
type mmsgReader struct {
	rc    syscall.RawConn
	hdrs  []mmsghdr
	iovs  []syscall.Iovec
	names []syscall.RawSockaddrAny
	bufs  []byte

	// The callbacks are method values made once, so that reading does not
	// allocate a closure per call.
	readFn func(fd uintptr) bool
	ctlFn  func(fd uintptr)
	wait   bool
	n      int
	err    error
}

func newDatagramReader(c *udpConn) datagramReader {
	rc, err := c.SyscallConn()
	if err != nil {
		return &failedReader{err: err}
	}
	r := &mmsgReader{
		rc:    rc,
		hdrs:  make([]mmsghdr, mmsgBatch),
		iovs:  make([]syscall.Iovec, mmsgBatch),
		names: make([]syscall.RawSockaddrAny, mmsgBatch),
		bufs:  make([]byte, mmsgBatch*maxDatagram),
	}
	for i := range r.hdrs {
		r.iovs[i].Base = &r.bufs[i*maxDatagram]
		r.iovs[i].SetLen(maxDatagram)
		h := &r.hdrs[i].hdr
		h.Name = (*byte)(unsafe.Pointer(&r.names[i]))
		h.Iov = &r.iovs[i]
		h.Iovlen = 1
	}
	r.readFn = r.recv
	r.ctlFn = func(fd uintptr) { r.recv(fd) }
	return r
}

// recv calls recvmmsg without blocking. It returns false, so that RawConn
// waits for the socket to become readable, only when it should wait.
func (r *mmsgReader) recv(fd uintptr) bool {
	for i := range r.hdrs {
		r.hdrs[i].hdr.Namelen = syscall.SizeofSockaddrAny
		r.hdrs[i].hdr.Flags = 0
	}
	for {
		// A plain Syscall, not RawSyscall, although with MSG_DONTWAIT
		// recvmmsg never blocks: a read of 32 datagrams takes 20-30 µs,
		// and during it the runtime hands the P to the output or the other
		// reader. RawSyscall saves up to 0.1 µs of CPU per datagram but
		// holds the P, and loses more: four rounds of
		// SUITES=udp UDP_RUNS=4:64:400000 REPS=2 bench/net.sh flowgo,
		// alternating the builds, lost 28,083, 100,670, 24,174 and
		// 172,719 of 4,000,000 with Syscall and 104,647, 359,281, 576,483
		// and 556,895 with RawSyscall.
		n, _, e := syscall.Syscall6(syscall.SYS_RECVMMSG, fd, uintptr(unsafe.Pointer(&r.hdrs[0])), uintptr(len(r.hdrs)),
			syscall.MSG_DONTWAIT, 0, 0)
		switch e {
		case 0:
			r.n, r.err = int(n), nil
			return true
		case syscall.EINTR:
			continue
		case syscall.EAGAIN:
			r.n, r.err = 0, nil
			return !r.wait
		default:
			r.n, r.err = 0, os.NewSyscallError("recvmmsg", e)
			return true
		}
	}
}

// read waits with RawConn.Read, which holds the socket's read lock while
// it waits. A reader with a batch to hand over must not queue behind that
// lock (it would hand its batch over only when the next datagram wakes the
// waiting reader), so reading without waiting goes through RawConn.Control,
// which takes no lock; the kernel serializes concurrent recvmmsg calls.
func (r *mmsgReader) read(wait bool) (int, error) {
	if !wait {
		return r.drain()
	}
	r.wait = true
	if err := r.rc.Read(r.readFn); err != nil {
		return 0, err
	}
	return r.n, r.err
}

// drain reads without waiting. It uses RawConn.Control, which, unlike
// Read, ignores the deadline that stopped the reader.
func (r *mmsgReader) drain() (int, error) {
	r.wait = false
	if err := r.rc.Control(r.ctlFn); err != nil {
		return 0, err
	}
	return r.n, r.err
}

func (r *mmsgReader) datagram(i int) []byte {
	n := int(r.hdrs[i].n)
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

// failedReader reports an error the reader could not be built with.
type failedReader struct{ err error }

func (f *failedReader) read(bool) (int, error)    { return 0, f.err }
func (f *failedReader) drain() (int, error)       { return 0, f.err }
func (f *failedReader) datagram(int) []byte       { return nil }
func (f *failedReader) sender(int) netip.AddrPort { return netip.AddrPort{} }

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
	rc  syscall.RawConn
	log *slog.Logger

	mu      sync.Mutex
	last    uint32
	useProc bool
	ino     uint64
	off     bool
}

func newKernelDrops(c *net.UDPConn, log *slog.Logger) *kernelDrops {
	k := &kernelDrops{log: log}
	var err error
	if k.rc, err = c.SyscallConn(); err != nil {
		k.off = true
		log.Warn("udp: cannot read the kernel's drop counter; its drops will not be counted", "error", err)
	}
	return k
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
		v, err := socketDrops(k.rc)
		if err == nil {
			return v, nil
		}
		k.useProc = true
	}
	if k.ino == 0 {
		var st syscall.Stat_t
		var serr error
		if err := k.rc.Control(func(fd uintptr) { serr = syscall.Fstat(int(fd), &st) }); err != nil {
			return 0, err
		}
		if serr != nil {
			return 0, os.NewSyscallError("fstat", serr)
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
