package input

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/flowgo/flowgo"
	"github.com/flowgo/flowgo/config"
	"github.com/flowgo/flowgo/internal/ratelog"
)

// Defaults of the keys the tcp and tls inputs share.
const (
	DefaultTCPListen      = "0.0.0.0:514"
	DefaultTLSListen      = "0.0.0.0:6514"
	DefaultIdleTimeout    = 3600 // seconds, Flowgger's
	DefaultMaxConnections = 10000
	DefaultTCPKeepalive   = 60 * time.Second
)

// shutdownGrace bounds how long a connection still waits for bytes when the
// input stops. On Linux the bytes that had arrived are counted first and
// are already in the socket buffer, so reading them does not wait at all;
// elsewhere this is how long the connection keeps reading.
const shutdownGrace = 250 * time.Millisecond

// Keepalive probes after the idle time: every 15 s, 9 of them (Linux's
// count), so a vanished peer frees its connection slot after idle + 135 s.
const (
	keepaliveInterval = 15 * time.Second
	keepaliveCount    = 9
)

// streamKeys are the keys of input.type tcp and tls.
type streamKeys struct {
	Listen string `toml:"listen"`
	// Timeout is the idle time after which a connection that sent nothing
	// is closed (an integer counts seconds, as in Flowgger); 0 means never.
	Timeout config.Duration[config.Seconds] `toml:"timeout"`
	// MaxConnections bounds the open connections; 0 means no limit.
	MaxConnections int `toml:"max_connections"`
	// TCPKeepalive is the idle time before keepalive probes; 0 turns them off.
	TCPKeepalive time.Duration `toml:"tcp_keepalive"`
	// PeerField, when set, names the parameter that carries the sender's
	// address in every record.
	PeerField string `toml:"peer_field"`
}

// decodeStreamKeys reads and checks the shared keys of c's section.
func decodeStreamKeys(c Config, defaultListen string) (streamKeys, error) {
	k := streamKeys{
		Listen:         defaultListen,
		Timeout:        config.Count[config.Seconds](DefaultIdleTimeout),
		MaxConnections: DefaultMaxConnections,
		TCPKeepalive:   DefaultTCPKeepalive,
	}
	s := c.Section
	if s == nil {
		return k, nil
	}
	if err := s.Decode(&k); err != nil {
		return k, err
	}
	if _, port, err := net.SplitHostPort(k.Listen); err != nil {
		return k, s.Errorf("listen", "want host:port (\"0.0.0.0:514\", \"[::]:6514\"), got %q", k.Listen)
	} else if err := checkListenPort(port); err != nil {
		return k, s.Errorf("listen", "%v", err)
	}
	if k.Timeout.Get() < 0 {
		return k, s.Errorf("timeout", "must be 0 (no idle timeout) or a number of seconds, not %v", k.Timeout)
	}
	if k.MaxConnections < 0 {
		return k, s.Errorf("max_connections", "must be 0 (no limit) or positive, not %d", k.MaxConnections)
	}
	if k.TCPKeepalive < 0 || (k.TCPKeepalive > 0 && k.TCPKeepalive < time.Second) {
		return k, s.Errorf("tcp_keepalive", "must be \"0s\" (off) or at least \"1s\" (a duration such as \"60s\"), not %v", k.TCPKeepalive)
	}
	if err := streamCheckParamName(k.PeerField); err != nil {
		return k, s.Errorf("peer_field", "%v", err)
	}
	return k, nil
}

// streamCheckParamName accepts names that are valid as an RFC 5424 PARAM-NAME and
// as a GELF field name alike.
func streamCheckParamName(name string) error {
	if len(name) > 32 {
		return fmt.Errorf("%q is longer than 32 characters", name)
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-' || c == '.') {
			return fmt.Errorf("%q: only letters, digits, '_', '-' and '.' are allowed", name)
		}
	}
	return nil
}

// streamServer is what the tcp and tls inputs share: a listener, one
// goroutine per connection that frames, decodes and batches, limits, and a
// shutdown that delivers what had arrived.
type streamServer struct {
	c         Config
	k         streamKeys
	kind      string      // "tcp" or "tls", for logs
	tls       *tls.Config // nil for tcp
	handshake time.Duration

	// session, when set, serves each connection past its TLS handshake
	// instead of the framing loop below (the relp input).
	session func(ctx context.Context, sc *streamConn, conn net.Conn, peer string, sink Sink)

	bound chan struct{} // closed when Run has bound its listener, or failed to
	addr  net.Addr

	mu       sync.Mutex
	conns    map[*streamConn]struct{}
	stopping bool

	refused         atomic.Int64
	handshakeFailed atomic.Int64
	// Connections that ended with what the peer sent possibly lost.
	abortReset, abortUnread, abortError atomic.Int64

	logRefused, logHandshake, logIdle, logEnded, logAccept *ratelog.Log
}

func newStreamServer(c Config, k streamKeys, kind string) *streamServer {
	log := c.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
		c.Log = log
	}
	return &streamServer{
		c: c, k: k, kind: kind,
		bound:        make(chan struct{}),
		conns:        map[*streamConn]struct{}{},
		logRefused:   ratelog.New(log, "connections refused", "peer", 10*time.Second, 5),
		logHandshake: ratelog.New(log, "TLS handshakes failed", "peer", 10*time.Second, 5),
		logIdle:      ratelog.New(log, "idle connections closed", "peer", 10*time.Second, 5),
		logEnded:     ratelog.New(log, "connections ended by read errors", "peer", 10*time.Second, 5),
		logAccept:    ratelog.New(log, "accept errors", "peer", 10*time.Second, 5),
	}
}

// Addr waits until Run has bound its listener and returns its address
// (with the port chosen when listen ends in ":0"), or nil if Run failed.
func (s *streamServer) Addr() net.Addr {
	<-s.bound
	return s.addr
}

// Refused returns how many connections were refused because
// max_connections were open.
func (s *streamServer) Refused() int64 { return s.refused.Load() }

// ListenAddress implements Listener.
func (s *streamServer) ListenAddress() (string, string) { return "tcp", s.k.Listen }

// ConnCounts implements ConnCounter.
func (s *streamServer) ConnCounts() (open, refused, handshakeFailures int64) {
	s.mu.Lock()
	open = int64(len(s.conns))
	s.mu.Unlock()
	return open, s.refused.Load(), s.handshakeFailed.Load()
}

// ConnsAborted implements ConnAbortCounter.
func (s *streamServer) ConnsAborted() (reset, unread, readError int64) {
	return s.abortReset.Load(), s.abortUnread.Load(), s.abortError.Load()
}

// Run listens and serves connections until ctx ends; see Input.
func (s *streamServer) Run(ctx context.Context, sink Sink) error {
	var boundOnce sync.Once
	markBound := func() { boundOnce.Do(func() { close(s.bound) }) }
	defer markBound()

	lc := net.ListenConfig{KeepAlive: -1}
	if s.k.TCPKeepalive > 0 {
		lc.KeepAliveConfig = net.KeepAliveConfig{
			Enable: true, Idle: s.k.TCPKeepalive, Interval: keepaliveInterval, Count: keepaliveCount,
		}
	}
	var ln net.Listener
	if f, _ := adoptSocket("tcp", s.k.Listen); f != nil {
		// The input this one replaces (a reload) left its listener bound,
		// with the connection attempts in its backlog.
		var err error
		if ln, err = net.FileListener(f); err != nil {
			s.c.Log.Warn("cannot take over the listener of the input this one replaces: listening anew; the connections waiting in its backlog are reset",
				"type", s.kind, "error", err)
		}
		f.Close()
	}
	if ln == nil {
		var err error
		if ln, err = lc.Listen(ctx, "tcp", s.k.Listen); err != nil {
			return fmt.Errorf("%s: %w", s.kind, err)
		}
	}
	s.addr = ln.Addr()
	markBound()
	s.c.Log.Info("listening", "type", s.kind, "address", s.addr.String(), "framing", s.c.Framing)

	var wg sync.WaitGroup
	acceptDone := make(chan struct{})
	go func() {
		defer close(acceptDone)
		s.accept(ctx, ln, sink, &wg)
	}()
	select {
	case <-ctx.Done():
	case <-acceptDone:
	}
	if errors.Is(context.Cause(ctx), ErrHandover) {
		// Replaced on the same address: the successor takes the listener
		// and the connections waiting in its backlog.
		if f, err := ln.(*net.TCPListener).File(); err == nil {
			parkSocket("tcp", s.k.Listen, f, 0)
		} else {
			s.c.Log.Warn("cannot hand the listener to the input replacing this one; it is closed", "type", s.kind, "error", err)
		}
	}
	ln.Close()
	<-acceptDone

	// Make every connection read what has arrived and stop there.
	s.mu.Lock()
	s.stopping = true
	for sc := range s.conns {
		sc.stop()
	}
	s.mu.Unlock()
	wg.Wait()
	for _, l := range []*ratelog.Log{s.logRefused, s.logHandshake, s.logIdle, s.logEnded, s.logAccept} {
		l.Flush()
	}
	return nil
}

// accept runs the accept loop until the listener is closed.
func (s *streamServer) accept(ctx context.Context, ln net.Listener, sink Sink, wg *sync.WaitGroup) {
	var delay time.Duration
	for {
		conn, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return
			}
			// Out of file descriptors and the like: wait a little, as
			// net/http does, rather than spin.
			delay = min(max(2*delay, 5*time.Millisecond), time.Second)
			s.logAccept.Event(slog.LevelError, "accepting a connection failed, retrying", "", err, "retry_in", delay.String())
			select {
			case <-time.After(delay):
			case <-ctx.Done():
				return
			}
			continue
		}
		delay = 0
		if tc, ok := conn.(*net.TCPConn); ok {
			// Here rather than in the ListenConfig: a listener handed over
			// by a reload (net.FileListener) has none.
			if s.k.TCPKeepalive > 0 {
				tc.SetKeepAliveConfig(net.KeepAliveConfig{Enable: true, Idle: s.k.TCPKeepalive,
					Interval: keepaliveInterval, Count: keepaliveCount})
			} else {
				tc.SetKeepAlive(false)
			}
		}
		sc := &streamConn{Conn: conn, timeout: s.k.Timeout.Get()}
		if !s.track(sc) {
			s.refused.Add(1)
			if tc, ok := conn.(*net.TCPConn); ok {
				tc.SetLinger(0) // reset: the sender learns at once that nothing was read
			}
			conn.Close()
			s.logRefused.Event(slog.LevelWarn, "connection refused: max_connections open", conn.RemoteAddr().String(),
				nil, "max_connections", s.k.MaxConnections, "refused_total", s.refused.Load())
			continue
		}
		wg.Go(func() {
			defer s.untrack(sc)
			s.serve(ctx, sc, sink)
		})
	}
}

// track registers sc, unless max_connections are open.
func (s *streamServer) track(sc *streamConn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.k.MaxConnections > 0 && len(s.conns) >= s.k.MaxConnections {
		return false
	}
	s.conns[sc] = struct{}{}
	if s.stopping {
		sc.stop()
	}
	return true
}

func (s *streamServer) untrack(sc *streamConn) {
	s.mu.Lock()
	delete(s.conns, sc)
	s.mu.Unlock()
}

// serve reads one connection until it ends, handing over every record.
func (s *streamServer) serve(ctx context.Context, sc *streamConn, sink Sink) {
	defer sc.Close()
	peer := sc.RemoteAddr().String()
	log := s.c.Log
	log.Debug("connection opened", "type", s.kind, "peer", peer)

	var conn net.Conn = sc
	if s.tls != nil {
		tc := tls.Server(sc, s.tls)
		sc.SetDeadline(time.Now().Add(s.handshake))
		if err := tc.HandshakeContext(ctx); err != nil {
			if ctx.Err() == nil {
				s.handshakeFailed.Add(1)
				s.logHandshake.Event(slog.LevelWarn, "TLS handshake failed", peer, err)
			}
			return
		}
		sc.SetDeadline(time.Time{})
		conn = tc
	}
	sc.manage()
	if s.session != nil {
		s.session(ctx, sc, conn, peer, sink)
		return
	}
	tail := &tailReader{r: conn, last: -1}
	if bc, ok := sink.(ByteCounter); ok {
		tail.count = bc.CountBytes
	}

	sp := NewSplitter(tail, s.c.Framing, s.c.MaxMessageSize, s.c.Truncate)
	hold := &bufHolder{}
	sp.useBudget(s.c.Buffers, hold)
	defer sp.Close()
	bt := NewBatcher(s.c.Decoder, sink, s.c.Name, s.c.BatchRecords, s.c.BatchBytes)
	bt.SetPeer(s.k.PeerField, peer)
	bt.useBudget(s.c.Buffers, hold)
	bt.Pipelined()
	defer bt.Release()
	open := true
	// Hand the batch over before a read that may wait. When the socket
	// already holds bytes the read will not wait, and the batch grows
	// instead: a TLS read returns one 16 KiB record at most, so this is what
	// lets TLS batches grow under load. One ioctl per read, not per record.
	// The same moment, with the socket empty and the splitter holding no
	// more than its own small buffer can, is when the buffer goes back to
	// the budget: an idle connection holds none of it.
	pending := newPendingProbe(sc.Conn)
	// Once the pipeline refuses a batch (it stops for good: the shutdown
	// timeout passed), the connection still reads what had arrived (its
	// stop budget) and hands it over, so that every record the kernel
	// acknowledged to the sender is counted as lost, not dropped unseen
	// with the socket: Flush is called even when open is already false.
	sp.BeforeRead = func() {
		if pending.bytes() > 0 {
			return
		}
		open = bt.Flush() && open
		sp.Shrink()
	}
	// Waiting for room in the budget stops reading: hand the batch over
	// first.
	sp.BeforeWait = func() { open = bt.Flush() && open }

	var end error
	for {
		frame, err := sp.Next()
		if frame == nil && err != nil {
			end = err
			break
		}
		if err == nil && sp.Buffered() == 0 && sc.wasStopped() && tail.partial(sp.Framing()) {
			// A framing error (with the reason the README lists), Is
			// errCutAtShutdown.
			err = &FrameError{Offset: sp.Offset(), Reason: errCutAtShutdown.Error(), Err: errCutAtShutdown}
		}
		if err != nil {
			sink.Reject(s.origin(peer, sp), frame, err)
			continue
		}
		if err := bt.Add(frame, 0); err != nil {
			sink.Reject(s.origin(peer, sp), frame, err)
		}
		if !open {
			// What is read now is counted lost: the connection stops
			// (its window closes) and reads what was let in.
			sc.stop()
		}
	}
	open = bt.Flush() && open

	// What the peer sent and flowgo did not read: framed or not, in this
	// process or in the socket (for TLS, encrypted bytes).
	unread := sp.Buffered() + max(inQueue(sc.Conn), 0)
	switch {
	case errors.Is(end, syscall.ECONNRESET):
		// The peer's kernel reset the connection, as it does when its
		// program closes with bytes unread: ours then discards what had
		// arrived and was not read yet.
		s.abortReset.Add(1)
		s.logEnded.Event(slog.LevelWarn, "connection reset by the peer: what it sent and flowgo had not read yet is lost", peer, end,
			"frames", sp.Frames(), "reset_total", s.abortReset.Load())
	case !open:
		s.countUnread(peer, "connection closed: the pipeline is stopping", unread, nil)
		log.Debug("connection closed: the pipeline is stopping", "type", s.kind, "peer", peer)
	case errors.Is(end, ErrFramingLost), errors.As(end, new(*FrameError)):
		// Octet counting or Cap'n Proto framing that cannot be followed:
		// the frame was rejected, what follows is not read.
		s.countUnread(peer, "connection closed: its framing cannot be followed", unread, end)
		s.logEnded.Event(slog.LevelWarn, "closing the connection: its framing cannot be followed (the frame is rejected)", peer, end,
			"frames", sp.Frames(), "unread_bytes", unread)
	case errors.Is(end, errIdle):
		s.logIdle.Event(slog.LevelInfo, "closing idle connection", peer, end, "timeout", sc.timeout.String())
	case errors.Is(end, io.EOF), errors.Is(end, errStopped):
		s.countUnread(peer, "connection closed", unread, nil)
		log.Debug("connection closed", "type", s.kind, "peer", peer, "frames", sp.Frames())
	default:
		s.abortError.Add(1)
		s.logEnded.Event(slog.LevelWarn, "connection ended by a read error: what the peer sent and flowgo had not read may be lost", peer, end,
			"frames", sp.Frames(), "unread_bytes", unread)
	}
}

// countUnread counts a connection closed with n bytes unread, if any.
func (s *streamServer) countUnread(peer, msg string, n int, err error) {
	if n <= 0 {
		return
	}
	s.abortUnread.Add(1)
	s.logEnded.Event(slog.LevelWarn, msg+", with bytes unread", peer, err, "unread_bytes", n)
}

// origin names where a rejected frame came from.
func (s *streamServer) origin(peer string, sp *Splitter) string {
	if sp.Framing() == flowgo.FramingLine {
		return "peer " + peer + " line " + strconv.FormatInt(sp.Line(), 10)
	}
	return "peer " + peer + " frame " + strconv.FormatInt(sp.Frames(), 10)
}

var (
	errIdle          error = readPause("no data for the idle timeout")
	errStopped       error = readPause("input stopping")
	errCutAtShutdown       = errors.New("the input stopped inside this frame: the rest of it had not arrived")
)

// readPause is an error of streamConn.Read that does not break the
// connection: it is a timeout, so a tls.Conn on top does not keep it as
// its final error, and the relp input can read on after serverclose.
type readPause string

func (e readPause) Error() string { return string(e) }
func (readPause) Timeout() bool   { return true }
func (readPause) Temporary() bool { return true }

// streamConn is an accepted connection. Its Read applies the idle timeout
// and, once the input stops, reads only the bytes that had arrived by then.
type streamConn struct {
	net.Conn
	timeout time.Duration

	mu        sync.Mutex
	managed   bool // past the TLS handshake: Read manages the deadlines
	stopping  bool
	budget    int // bytes still to read after stop; -1 unknown
	stopUntil time.Time
	rounds    int  // times the budget was taken again from the socket
	stopped   bool // Read has returned errStopped
}

// drainRounds bounds how many times a stopping connection takes its budget
// again, within the stop's grace, from what arrived while it read the last
// one. The stop closes the receive window (closeWindow), so only what the
// sender was already let send can arrive: the rounds end with the socket
// empty.
const drainRounds = 8

// manage hands the read deadlines to Read.
func (c *streamConn) manage() {
	c.mu.Lock()
	c.managed = true
	c.mu.Unlock()
}

// stop makes the connection read the bytes that have arrived, then end.
// Called with the server's lock held, at most once.
func (c *streamConn) stop() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.stopping {
		return
	}
	c.stopping = true
	closeWindow(c.Conn)
	c.budget = inQueue(c.Conn)
	c.stopUntil = time.Now().Add(shutdownGrace)
	// Wake a Read blocked on an empty socket (or a handshake); Read sees
	// stopping and goes on with the budget.
	c.Conn.SetReadDeadline(time.Now())
}

func (c *streamConn) wasStopped() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.stopped
}

func (c *streamConn) Read(p []byte) (int, error) {
	for {
		c.mu.Lock()
		if !c.managed {
			c.mu.Unlock()
			return c.Conn.Read(p)
		}
		stopping := c.stopping
		if stopping {
			if c.budget == 0 && c.rounds < drainRounds && time.Now().Before(c.stopUntil) {
				// More arrived while the budget was read (a reload
				// stops an input whose senders go on): read it too,
				// rather than close on it.
				if more := inQueue(c.Conn); more > 0 {
					c.budget = more
					c.rounds++
				}
			}
			if c.budget == 0 {
				c.stopped = true
				c.mu.Unlock()
				return 0, errStopped
			}
			until := c.stopUntil
			if c.budget > 0 {
				// These bytes are in the socket buffer: the read does
				// not wait, however long after the stop it comes.
				p = p[:min(len(p), c.budget)]
				until = time.Now().Add(shutdownGrace)
			}
			c.Conn.SetReadDeadline(until)
		} else if c.timeout > 0 {
			c.Conn.SetReadDeadline(time.Now().Add(c.timeout))
		}
		c.mu.Unlock()

		n, err := c.Conn.Read(p)
		if stopping {
			c.mu.Lock()
			if c.budget > 0 {
				c.budget -= min(n, c.budget)
			}
			c.mu.Unlock()
		}
		var ne net.Error
		if n > 0 || err == nil || !errors.As(err, &ne) || !ne.Timeout() {
			return n, err
		}
		if stopping {
			c.mu.Lock()
			c.stopped = true
			c.mu.Unlock()
			return 0, errStopped
		}
		c.mu.Lock()
		nowStopping := c.stopping
		c.mu.Unlock()
		if nowStopping {
			continue // woken by stop: read what had arrived
		}
		return 0, errIdle
	}
}

// tailReader remembers the last byte read, to tell whether a stream cut at
// shutdown ended inside a delimited frame, and counts the bytes read.
type tailReader struct {
	r     io.Reader
	last  int       // last byte read, -1 before any
	count func(int) // ByteCounter.CountBytes, or nil
}

func (t *tailReader) Read(p []byte) (int, error) {
	n, err := t.r.Read(p)
	if n > 0 {
		t.last = int(p[n-1])
		if t.count != nil {
			t.count(n)
		}
	}
	return n, err
}

// partial reports whether the stream ended inside a line or nul frame.
func (t *tailReader) partial(framing flowgo.Framing) bool {
	switch framing {
	case flowgo.FramingLine:
		return t.last != '\n'
	case flowgo.FramingNUL:
		return t.last != 0
	}
	return false
}
