//go:build linux

package output_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"github.com/flowgo/flowgo/internal/testcerts"
)

// sink is a TLS server for the tls output's tests: it accepts connections,
// reads NUL-terminated frames and records, per connection, the record
// numbers of the well-formed ones and any malformed frame. It can drop
// connections at chosen byte offsets in two ways that lose nothing its
// kernel acknowledged, so that any record missing afterwards is one the
// output failed to send again (and in a third way that does, see below):
//
//   - reset: the sink stops reading, lets its receive buffer fill until the
//     sender is blocked (zero window), peeks at every byte its kernel
//     acknowledged, then resets the connection; the peeked bytes are the
//     last the TLS layer reads. The sender's unacknowledged send queue is
//     lost with the reset: the output must send those records again.
//   - half-close: the sink sends FIN, pauses so that the sender's queue
//     fills, then reads on until the sender gives up the connection.
//   - close unread: the sink stops reading and closes as a server that
//     exits would; its kernel discards what it acknowledged but the sink
//     did not read, and resets. Only the margin of acknowledged frames the
//     output keeps, sized from the sink's receive window, recovers them.
//
// A small receive buffer makes the sender's queue fill quickly.
type sink struct {
	t    testing.TB
	ln   net.Listener
	Addr string
	cfg  *tls.Config
	plan func(conn int) drop // where to drop connection conn (0-based)
	hold <-chan struct{}
	keep bool

	mu     sync.Mutex
	conns  []*sinkConn
	hsErrs []error
	killed bool
	wg     sync.WaitGroup
}

type dropMode int

const (
	noDrop dropMode = iota
	dropReset
	dropHalfClose
	dropUnread // stop reading, then close: the kernel discards what it holds and resets
)

func (m dropMode) String() string {
	return [...]string{"none", "reset", "half-close", "close unread"}[m]
}

// drop says after how many bytes received (ciphertext) to drop a
// connection, and how.
type drop struct {
	after int64
	mode  dropMode
}

// sinkConn is what one connection delivered.
type sinkConn struct {
	nums      []int    // record numbers of well-formed frames, in order
	bad       []string // malformed frames
	frames    [][]byte // every frame, when the sink keeps them
	partial   int      // bytes of an unterminated frame when the connection ended
	dropped   dropMode
	clientCN  string
	readBytes int64
	finished  bool
	raw       *net.TCPConn
	gate      *gateConn
}

type sinkOptions struct {
	network  string          // "tcp4" (default) or "tcp6"
	addr     string          // to listen on; a free loopback port when empty
	hold     <-chan struct{} // when set, connections read nothing until it is closed
	cert     testcerts.Leaf
	clientCA *x509.CertPool // when set, client certificates are required
	rcvBuf   int            // SO_RCVBUF, 0 for the kernel's default
	plan     func(conn int) drop
	accept   func(c net.Conn) bool // when set and false, the connection is closed at once
	keep     bool                  // keep every frame as is, not as a numbered record
}

func newSink(t testing.TB, o sinkOptions) *sink {
	t.Helper()
	cert, err := tls.X509KeyPair(o.cert.CertPEM, o.cert.KeyPEM)
	if err != nil {
		t.Fatal(err)
	}
	cfg := &tls.Config{Certificates: []tls.Certificate{cert}}
	if o.clientCA != nil {
		cfg.ClientCAs = o.clientCA
		cfg.ClientAuth = tls.RequireAndVerifyClientCert
	}
	network, addr := "tcp4", "127.0.0.1:0"
	if o.network == "tcp6" {
		network, addr = "tcp6", "[::1]:0"
	}
	if o.addr != "" {
		addr = o.addr
	}
	lc := net.ListenConfig{}
	if o.rcvBuf > 0 {
		lc.Control = func(_, _ string, c syscall.RawConn) error {
			var serr error
			err := c.Control(func(fd uintptr) {
				serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, o.rcvBuf)
			})
			return errors.Join(err, serr)
		}
	}
	ln, err := lc.Listen(context.Background(), network, addr)
	if err != nil {
		t.Fatal(err)
	}
	plan := o.plan
	if plan == nil {
		plan = func(int) drop { return drop{} }
	}
	s := &sink{t: t, ln: ln, Addr: ln.Addr().String(), cfg: cfg, plan: plan, hold: o.hold, keep: o.keep}
	s.wg.Add(1)
	go s.accept(o.accept)
	t.Cleanup(s.Close)
	return s
}

func (s *sink) accept(filter func(net.Conn) bool) {
	defer s.wg.Done()
	for {
		c, err := s.ln.Accept()
		if err != nil {
			return
		}
		if filter != nil && !filter(c) {
			c.Close()
			continue
		}
		s.mu.Lock()
		if s.killed {
			s.mu.Unlock()
			c.Close()
			continue
		}
		sc := &sinkConn{raw: c.(*net.TCPConn)}
		sc.dropped = noDrop
		d := s.plan(len(s.conns))
		s.conns = append(s.conns, sc)
		s.wg.Add(1)
		s.mu.Unlock()
		go s.serve(sc, d)
	}
}

func (s *sink) serve(sc *sinkConn, d drop) {
	defer s.wg.Done()
	defer func() {
		s.mu.Lock()
		sc.finished = true
		s.mu.Unlock()
	}()
	g := &gateConn{TCPConn: sc.raw, drop: d, sink: s}
	s.mu.Lock()
	sc.gate = g
	s.mu.Unlock()
	tc := tls.Server(g, s.cfg)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	err := tc.HandshakeContext(ctx)
	cancel()
	if err != nil {
		s.mu.Lock()
		s.hsErrs = append(s.hsErrs, err)
		s.mu.Unlock()
		sc.raw.Close()
		return
	}
	if pc := tc.ConnectionState().PeerCertificates; len(pc) > 0 {
		s.mu.Lock()
		sc.clientCN = pc[0].Subject.CommonName
		s.mu.Unlock()
	}
	if s.hold != nil {
		<-s.hold
	}
	buf := make([]byte, 64<<10)
	var pending []byte
	for {
		n, err := tc.Read(buf)
		pending = append(pending, buf[:n]...)
		for {
			i := bytes.IndexByte(pending, 0)
			if i < 0 {
				break
			}
			num, ok := parseRecord(pending[:i])
			s.mu.Lock()
			if s.keep {
				sc.frames = append(sc.frames, bytes.Clone(pending[:i]))
			} else if ok {
				sc.nums = append(sc.nums, num)
			} else {
				sc.bad = append(sc.bad, string(pending[:i]))
			}
			s.mu.Unlock()
			pending = pending[i+1:]
		}
		if err != nil {
			break
		}
	}
	s.mu.Lock()
	sc.partial = len(pending)
	sc.dropped = g.done
	sc.readBytes = g.n
	s.mu.Unlock()
	sc.raw.Close()
}

// Kill stops the server as a crash would: it stops accepting, and drops
// every connection with a reset (keeping, as always, what its kernel
// acknowledged).
func (s *sink) Kill() {
	s.mu.Lock()
	s.killed = true
	s.mu.Unlock()
	s.ln.Close()
	s.DropConns()
}

// DropConns resets every open connection, and goes on accepting.
func (s *sink) DropConns() {
	s.mu.Lock()
	conns := append([]*sinkConn(nil), s.conns...)
	s.mu.Unlock()
	for _, c := range conns {
		s.mu.Lock()
		g := c.gate
		s.mu.Unlock()
		if g != nil {
			g.kill()
		}
	}
}

// Close stops the server and waits until every connection is done.
func (s *sink) Close() {
	s.ln.Close()
	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		s.mu.Lock()
		for _, c := range s.conns {
			c.raw.Close()
		}
		s.mu.Unlock()
		<-done
	}
}

// Wait waits until the connections the sink has accepted are all done
// (the client closed them), for at most d.
func (s *sink) Wait(d time.Duration) bool {
	done := make(chan struct{})
	go func() {
		for {
			s.mu.Lock()
			open := 0
			for _, c := range s.conns {
				if !c.finished {
					open++
				}
			}
			s.mu.Unlock()
			if open == 0 {
				close(done)
				return
			}
			time.Sleep(5 * time.Millisecond)
		}
	}()
	select {
	case <-done:
		return true
	case <-time.After(d):
		return false
	}
}

// Conns returns a copy of what each connection delivered so far.
func (s *sink) Conns() []sinkConn {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]sinkConn, len(s.conns))
	for i, c := range s.conns {
		out[i] = *c
		out[i].nums = append([]int(nil), c.nums...)
		out[i].bad = append([]string(nil), c.bad...)
		out[i].frames = append([][]byte(nil), c.frames...)
	}
	return out
}

// Received returns how many times each record number arrived.
func (s *sink) Received() map[int]int {
	got := map[int]int{}
	for _, c := range s.Conns() {
		for _, n := range c.nums {
			got[n]++
		}
	}
	return got
}

func (s *sink) HandshakeErrors() []error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]error(nil), s.hsErrs...)
}

// gateConn is the sink's side of one TCP connection, under TLS: it counts
// what it reads and carries out the drop.
type gateConn struct {
	*net.TCPConn
	sink *sink
	drop drop

	mu      sync.Mutex
	n       int64
	done    dropMode // the drop carried out
	final   []byte   // after a reset: the peeked bytes, then EOF
	reset   bool
	killReq bool
}

func (g *gateConn) kill() {
	g.mu.Lock()
	g.killReq = true
	g.mu.Unlock()
	g.TCPConn.SetReadDeadline(time.Now()) // wake a blocked read
}

func (g *gateConn) Read(p []byte) (int, error) {
	g.mu.Lock()
	if g.reset {
		defer g.mu.Unlock()
		if len(g.final) == 0 {
			return 0, errors.New("connection reset by the sink")
		}
		n := copy(p, g.final)
		g.final = g.final[n:]
		return n, nil
	}
	if g.killReq || (g.drop.mode == dropReset && g.n >= g.drop.after) {
		g.resetNow()
		g.mu.Unlock()
		return g.Read(p)
	}
	if g.drop.mode == dropUnread && g.n >= g.drop.after && g.done == noDrop {
		// Like a server that stops reading and exits: what its kernel
		// acknowledged and it never read is lost here.
		g.done = dropUnread
		g.mu.Unlock()
		time.Sleep(30 * time.Millisecond)
		g.TCPConn.Close()
		return 0, errors.New("closed by the sink with unread data")
	}
	if g.drop.mode == dropHalfClose && g.n >= g.drop.after && g.done == noDrop {
		g.done = dropHalfClose
		g.TCPConn.CloseWrite()
		g.mu.Unlock()
		time.Sleep(20 * time.Millisecond) // let the sender's queue fill
		g.mu.Lock()
	}
	limit := len(p)
	if g.drop.mode != noDrop && g.done == noDrop && g.drop.after-g.n < int64(limit) {
		limit = int(max(g.drop.after-g.n, 1))
	}
	g.mu.Unlock()
	n, err := g.TCPConn.Read(p[:limit])
	g.mu.Lock()
	g.n += int64(n)
	kill := g.killReq
	g.mu.Unlock()
	if err != nil && kill {
		if n > 0 {
			return n, nil
		}
		return g.Read(p)
	}
	return n, err
}

// resetNow waits until no more bytes arrive (the sender is blocked by the
// full receive window, or has nothing to send), takes every byte the
// kernel holds without consuming it (so that the window stays shut), and
// resets the connection. Called with g.mu held.
func (g *gateConn) resetNow() {
	rc, err := g.TCPConn.SyscallConn()
	if err != nil {
		g.sink.t.Errorf("sink: %v", err)
		return
	}
	inq := func() int {
		var n int32
		rc.Control(func(fd uintptr) {
			syscall.Syscall(syscall.SYS_IOCTL, fd, syscall.TIOCINQ, uintptr(unsafe.Pointer(&n)))
		})
		return int(n)
	}
	last, stable := -1, 0
	for stable < 3 {
		time.Sleep(2 * time.Millisecond)
		if n := inq(); n == last {
			stable++
		} else {
			last, stable = n, 0
		}
	}
	var peeked []byte
	for {
		buf := make([]byte, last+1)
		n := 0
		if last > 0 {
			rc.Control(func(fd uintptr) {
				n, _, err = syscall.Recvfrom(int(fd), buf, syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
			})
			if err != nil && !errors.Is(err, syscall.EAGAIN) {
				g.sink.t.Errorf("sink: peek: %v", err)
			}
		}
		if now := inq(); now == n {
			peeked = buf[:max(n, 0)]
			break
		} else {
			last = now
		}
	}
	g.TCPConn.SetLinger(0)
	g.TCPConn.Close()
	g.n += int64(len(peeked))
	g.final, g.reset, g.done = peeked, true, dropReset
}

// Records: "rec <n> <pad>" where the padding's length and letters depend on
// n, so that a frame cut or spliced anywhere is recognised as malformed.
func record(n int) string {
	padLen := 40 + n%173
	pad := make([]byte, padLen)
	for i := range pad {
		pad[i] = 'a' + byte((n+i)%26)
	}
	return fmt.Sprintf("rec %d %s", n, pad)
}

func parseRecord(f []byte) (int, bool) {
	var rest []byte
	if !bytes.HasPrefix(f, []byte("rec ")) {
		return 0, false
	}
	rest = f[4:]
	sp := bytes.IndexByte(rest, ' ')
	if sp < 0 {
		return 0, false
	}
	n, err := strconv.Atoi(string(rest[:sp]))
	if err != nil || n < 0 {
		return 0, false
	}
	return n, string(f) == record(n)
}

// checkDelivery checks that records 0..n-1 all arrived, that no frame was
// malformed, and that each connection carried increasing record numbers
// (consecutive ones when consecutive is set: one connection at a time
// resends from the first record the server lacked and goes on in order).
func checkDelivery(t *testing.T, conns []sinkConn, n int, consecutive bool) (dups int) {
	t.Helper()
	got := map[int]int{}
	prevLast := -1
	for i, c := range conns {
		if len(c.bad) > 0 {
			t.Errorf("connection %d: %d malformed frames, the first %q", i, len(c.bad), c.bad[0])
		}
		for j, num := range c.nums {
			got[num]++
			if j > 0 && num <= c.nums[j-1] {
				t.Errorf("connection %d: record %d after record %d: order lost", i, num, c.nums[j-1])
				break
			}
			if consecutive && j > 0 && num != c.nums[j-1]+1 {
				t.Errorf("connection %d: record %d after record %d: records skipped", i, num, c.nums[j-1])
				break
			}
		}
		if consecutive && len(c.nums) > 0 {
			if c.nums[0] > prevLast+1 {
				t.Errorf("connection %d starts at record %d; the previous ones ended at %d: records skipped", i, c.nums[0], prevLast)
			}
			prevLast = max(prevLast, c.nums[len(c.nums)-1])
		}
	}
	missing := 0
	first := -1
	for i := range n {
		if got[i] == 0 {
			if first < 0 {
				first = i
			}
			missing++
		}
		dups += max(got[i]-1, 0)
	}
	if missing > 0 {
		t.Errorf("%d of %d records never arrived (the first: %d)", missing, n, first)
	}
	if len(got) > n {
		t.Errorf("records beyond %d arrived", n-1)
	}
	return dups
}

func writeFile(t testing.TB, dir, name string, data ...[]byte) string {
	return testcerts.WriteFile(t, dir, name, data...)
}
