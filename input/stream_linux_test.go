package input

import (
	"crypto/tls"
	"fmt"
	"net"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
	"unsafe"
)

// unsent returns the bytes c's socket has not had acknowledged yet
// (TIOCOUTQ); on loopback, 0 means the peer's socket holds them all.
func unsent(c net.Conn) int {
	if tc, ok := c.(*tls.Conn); ok {
		c = tc.NetConn()
	}
	raw, err := c.(syscall.Conn).SyscallConn()
	if err != nil {
		return -1
	}
	n := -1
	raw.Control(func(fd uintptr) {
		var v int32
		if _, _, errno := syscall.Syscall(syscall.SYS_IOCTL, fd, syscall.TIOCOUTQ, uintptr(unsafe.Pointer(&v))); errno == 0 {
			n = int(v)
		}
	})
	return n
}

// The shutdown tests count the bytes left in the client's socket, which
// needs Linux's TIOCOUTQ; on Linux the input reads exactly what arrived.

func TestTCPShutdownDeliversBytesAlreadyReceived(t *testing.T) {
	testShutdownDelivers(t, func(sink *testSink) *server {
		return start(t, "tcp", `listen = "127.0.0.1:0"`, options{sink: sink, batchRecords: 100})
	})
}

// testShutdownDelivers stops the input while a connection's goroutine is
// stuck handing a batch to a full queue and the rest of what the client
// sent sits in the socket buffer. It must all be delivered once the queue
// has room, even long after the stop.
func testShutdownDelivers(t *testing.T, startWith func(*testSink) *server) {
	const lines = 500
	sink := &testSink{block: make(chan struct{})}
	s := startWith(sink)
	c := s.dial(t)
	var want []string
	var b strings.Builder
	for i := range lines {
		m := fmt.Sprintf("line %04d %s", i, strings.Repeat("z", 80))
		want = append(want, m)
		b.WriteString(m + "\n")
	}
	send(t, c, b.String(), 0)
	if !waitFor(5*time.Second, func() bool { return sink.waiting.Load() == 1 && unsent(c) == 0 }) {
		t.Fatalf("setup: %d Puts waiting, %d bytes unsent", sink.waiting.Load(), unsent(c))
	}
	s.cancel()
	time.Sleep(2 * shutdownGrace)
	close(sink.block)
	s.stop(t)
	if got := sink.got(); !slices.Equal(got, want) {
		t.Errorf("%d records delivered; want %d", len(got), len(want))
	}
}

func TestTLSShutdownDeliversBytesAlreadyReceived(t *testing.T) {
	testShutdownDelivers(t, func(sink *testSink) *server {
		return startTLS(t, false, "", options{sink: sink, batchRecords: 100})
	})
}
