//go:build !linux

package input

import (
	"errors"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"sync"
	"time"
)

// udpReaders is 1 outside Linux: the portable reader sets read deadlines on
// the socket, which its goroutines would share.
func udpReaders(int) int { return 1 }

// flushAfter is how long the portable reader waits for another datagram
// before it hands a batch over.
const flushAfter = 20 * time.Millisecond

// udpConn is the socket, with the shutdown signal that readers, which set
// read deadlines themselves, must respect.
type udpConn struct {
	*net.UDPConn
	mu      sync.Mutex
	stopped bool
}

func newUDPConn(c *net.UDPConn) (*udpConn, error) { return &udpConn{UDPConn: c}, nil }

func (c *udpConn) close() error { return c.UDPConn.Close() }

// stop wakes every reader: their reads fail with os.ErrDeadlineExceeded.
func (c *udpConn) stop() {
	c.mu.Lock()
	c.stopped = true
	c.SetReadDeadline(time.Unix(1, 0))
	c.mu.Unlock()
}

// setDeadline sets the read deadline to t unless stop was called.
func (c *udpConn) setDeadline(t time.Time) {
	c.mu.Lock()
	if !c.stopped {
		c.SetReadDeadline(t)
	}
	c.mu.Unlock()
}

// portableReader reads one datagram per system call.
type portableReader struct {
	c    *udpConn
	buf  []byte
	n    int
	from netip.AddrPort
}

func newDatagramReader(c *udpConn) datagramReader {
	return &portableReader{c: c, buf: make([]byte, maxDatagram)}
}

func (r *portableReader) read(wait bool) (int, error) {
	if wait {
		r.c.setDeadline(time.Time{})
	} else {
		r.c.setDeadline(time.Now().Add(flushAfter))
	}
	n, _, _, from, err := r.c.ReadMsgUDPAddrPort(r.buf, nil)
	if err != nil {
		if errors.Is(err, os.ErrDeadlineExceeded) {
			r.c.mu.Lock()
			stopped := r.c.stopped
			r.c.mu.Unlock()
			if !stopped && !wait {
				return 0, nil
			}
		}
		return 0, err
	}
	r.n, r.from = n, netip.AddrPortFrom(from.Addr().Unmap(), from.Port())
	return 1, nil
}

// drain is not offered: after a stop the deadline has passed.
func (r *portableReader) drain() (int, error) { return 0, nil }

func (r *portableReader) datagram(int) []byte       { return r.buf[:r.n] }
func (r *portableReader) sender(int) netip.AddrPort { return r.from }

// setRecvBuffer sets the receive buffer; the size obtained is not known.
func setRecvBuffer(c *net.UDPConn, n int) (int, error) {
	if n == 0 {
		return 0, nil
	}
	return 0, c.SetReadBuffer(n)
}

// kernelDrops is a no-op outside Linux, where the drop counter is not read.
type kernelDrops struct{}

func newKernelDrops(_ *udpConn, log *slog.Logger, _ uint32) *kernelDrops {
	log.Warn("udp: the kernel's receive-buffer drops are counted on Linux only")
	return &kernelDrops{}
}

func (*kernelDrops) report(Sink) {}

func (*kernelDrops) counted() uint32 { return 0 }

// file returns a new descriptor of the socket, for a successor input.
func (c *udpConn) file() (*os.File, error) { return c.UDPConn.File() }
