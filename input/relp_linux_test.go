package input

import (
	"io"
	"net"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Sessions that each send most of a large syslog frame hold only their
// own small buffer plus what the stream budget has: past it they are not
// read. Once the frames are finished every one arrives and is answered,
// and the budget is all given back.
func TestRELPPartialFramesStayWithinTheBudget(t *testing.T) {
	const (
		conns  = 100
		size   = 60000
		budget = 1 << 20
	)
	mem := NewBuffers(budget)
	s := startRELP(t, `listen = "127.0.0.1:0"`, streamOptions{buffers: mem})
	data := strings.Repeat("p", size)
	frame := relpText(2, "syslog", data)
	finish := make(chan struct{})
	var wg sync.WaitGroup
	var clients []*net.TCPConn
	for range conns {
		c := dialRELP(t, s)
		c.open()
		clients = append(clients, c.c.(*net.TCPConn))
		wg.Go(func() {
			if _, err := io.WriteString(c.c, frame[:len(frame)-10]); err != nil {
				t.Errorf("write: %v", err)
				return
			}
			<-finish
			if _, err := io.WriteString(c.c, frame[len(frame)-10:]); err != nil {
				t.Errorf("write: %v", err)
				return
			}
			if a, err := c.tryRead(30 * time.Second); err != nil || a.txnr != 2 || a.data != "200 OK" {
				t.Errorf("answer %+v, %v; want 2 rsp 200 OK", a, err)
			}
		})
	}
	// Wait until the sessions read no more: what they read is what was
	// sent less what waits in the kernels, in flowgo's socket or still in
	// the client's.
	sent := int64(conns * (len(frame) - 10))
	read := waitStalled(t, "bytes read", func() int64 {
		s.st.mu.Lock()
		defer s.st.mu.Unlock()
		n := sent
		for sc := range s.st.conns {
			n -= int64(max(inQueue(sc.Conn), 0))
		}
		for _, c := range clients {
			n -= int64(sendQueue(t, c))
		}
		return n
	})
	used, peak, _ := mem.Usage()
	// Beyond the limit: the reserve, one session's buffer for a frame.
	slack := (relpMaxHeader + size + 1 + 4095) &^ 4095
	t.Logf("%d sessions, each with %d bytes of a frame sent: %d bytes read, budget %d used, %d at most", conns, len(frame)-10, read, used, peak)
	if peak > budget+slack {
		t.Errorf("the budget reached %d bytes; limit %d", peak, budget)
	}
	if most := int64(budget + slack + conns*baseBufferSize); read > most {
		t.Errorf("%d bytes read; want at most the budget and each session's own buffer, %d", read, most)
	}
	if got := s.sink.records.Load(); got != 0 {
		t.Fatalf("%d records from unfinished frames", got)
	}

	close(finish)
	wg.Wait()
	s.sink.waitRecords(t, conns, 30*time.Second)
	for _, m := range s.sink.got() {
		if m != data {
			t.Fatalf("a record of %d bytes; want %d", len(m), size)
		}
	}
	if !waitFor(10*time.Second, func() bool { used, _, _ := mem.Usage(); return used == 0 }) {
		used, _, _ := mem.Usage()
		t.Errorf("%d bytes of budget still held by idle sessions", used)
	}
}

// sendQueue returns the bytes c's kernel holds that the peer has not
// acknowledged (SIOCOUTQ).
func sendQueue(t testing.TB, c *net.TCPConn) int {
	raw, err := c.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var n int
	var ierr error
	raw.Control(func(fd uintptr) { n, ierr = unix.IoctlGetInt(int(fd), unix.SIOCOUTQ) })
	if ierr != nil {
		t.Fatal(ierr)
	}
	return n
}

// peekConns returns the bytes waiting, unread, in the sockets of the
// input's connections.
func peekConns(t testing.TB, s *testServer) string {
	t.Helper()
	s.st.mu.Lock()
	defer s.st.mu.Unlock()
	var out strings.Builder
	buf := make([]byte, 1<<20)
	for sc := range s.st.conns {
		raw, err := sc.Conn.(syscall.Conn).SyscallConn()
		if err != nil {
			t.Fatal(err)
		}
		raw.Control(func(fd uintptr) { // not Read: it would honour the stop's read deadline
			n, _, errno := syscall.Syscall6(syscall.SYS_RECVFROM, fd, uintptr(unsafe.Pointer(&buf[0])), uintptr(len(buf)),
				syscall.MSG_PEEK|syscall.MSG_DONTWAIT, 0, 0)
			if errno == 0 && n > 0 {
				out.Write(buf[:n])
			}
		})
	}
	return out.String()
}
