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
	testShutdownDelivers(t, func(sink *streamSink) *testServer {
		return startStream(t, "tcp", `listen = "127.0.0.1:0"`, streamOptions{sink: sink, batchRecords: 100})
	})
}

// testShutdownDelivers stops the input while a connection's goroutine is
// stuck handing a batch to a full queue and the rest of what the client
// sent sits in the socket buffer. It must all be delivered once the queue
// has room, even long after the stop.
func testShutdownDelivers(t *testing.T, startWith func(*streamSink) *testServer) {
	const lines = 500
	sink := &streamSink{block: make(chan struct{})}
	s := startWith(sink)
	c := s.dial(t)
	var want []string
	var b strings.Builder
	for i := range lines {
		m := fmt.Sprintf("line %04d %s", i, strings.Repeat("z", 80))
		want = append(want, m)
		b.WriteString(m + "\n")
	}
	sendPieces(t, c, b.String(), 0)
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
	testShutdownDelivers(t, func(sink *streamSink) *testServer {
		return startTLS(t, false, "", streamOptions{sink: sink, batchRecords: 100})
	})
}

func TestTCPKeepaliveIsSetOnAcceptedConnections(t *testing.T) {
	for _, tc := range []struct {
		keys      string
		wantOn    int
		wantIdle  int
		wantIntvl int
	}{
		{"", 1, 60, 15},
		{`tcp_keepalive = "42s"`, 1, 42, 15},
		{`tcp_keepalive = "0s"`, 0, 0, 0},
	} {
		t.Run(fmt.Sprintf("keys %q", tc.keys), func(t *testing.T) {
			s := startStream(t, "tcp", "listen = \"127.0.0.1:0\"\n"+tc.keys, streamOptions{})
			s.dial(t)
			if !waitFor(5*time.Second, func() bool { return s.openConns() == 1 }) {
				t.Fatal("no connection")
			}
			s.st.mu.Lock()
			var conn net.Conn
			for sc := range s.st.conns {
				conn = sc.Conn
			}
			s.st.mu.Unlock()
			on, idle, intvl := sockopt(t, conn, syscall.SOL_SOCKET, syscall.SO_KEEPALIVE),
				sockopt(t, conn, syscall.IPPROTO_TCP, syscall.TCP_KEEPIDLE),
				sockopt(t, conn, syscall.IPPROTO_TCP, syscall.TCP_KEEPINTVL)
			if on != tc.wantOn || (tc.wantOn == 1 && (idle != tc.wantIdle || intvl != tc.wantIntvl)) {
				t.Errorf("SO_KEEPALIVE %d, TCP_KEEPIDLE %d, TCP_KEEPINTVL %d; want %d, %d, %d", on, idle, intvl, tc.wantOn, tc.wantIdle, tc.wantIntvl)
			}
		})
	}
}

func sockopt(t *testing.T, c net.Conn, level, opt int) int {
	raw, err := c.(syscall.Conn).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var v int
	var serr error
	raw.Control(func(fd uintptr) { v, serr = syscall.GetsockoptInt(int(fd), level, opt) })
	if serr != nil {
		t.Fatal(serr)
	}
	return v
}
