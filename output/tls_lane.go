package output

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"sync/atomic"
	"time"
)

// lane is one connection slot of the tls output and the goroutine that
// drives it: connect (with back-off), resend what the last connection may
// have lost, then take chunks and write them.
type lane struct {
	o       *tlsOutput
	flushes chan chan struct{}
	poke    chan struct{} // write what is buffered (FlushIdle); nobody waits
	bo      backoff

	// Owned by the lane's goroutine.
	s        stream
	waiters  []waiter
	conn     *tls.Conn
	raw      *net.TCPConn
	cc       *countConn
	unwatch  func() bool   // stops closing raw when the output aborts
	readErr  chan error    // the current connection's reader reports here
	addr     string        // the current (or last tried) server
	since    time.Time     // when the current connection attempt began
	acked    int64         // cipher bytes of the current connection the peer acknowledged
	maxWnd   int64         // the largest receive window the peer advertised on it
	margin   int64         // acknowledged bytes to keep, in case the server has not read them
	wait     time.Duration // back-off before the next attempt
	closing  bool
	logged   string // the last failure logged at warning level, and when
	loggedAt time.Time

	// Guarded by o.mu, for Healthy and Write.
	peer      string
	downSince time.Time // when peer became ""
	lastErr   error
	lastErrAt time.Time

	// Set when the lane exits, read by Close after.
	lostFrames, lostBytes int
}

// waiter is released once the stream is written up to end.
type waiter struct {
	end int64
	ch  chan struct{}
}

func (l *lane) run() {
	defer l.o.wg.Done()
	defer l.exit()
	closingCh := l.o.closing
	var poll <-chan time.Time
	// While frames are held, the kernel is asked now and then what the
	// peer acknowledged and read: after a quiet spell, a new connection
	// then has little to resend, and the memory goes back.
	idle := time.NewTicker(tlsIdleAck)
	defer idle.Stop()
	for {
		if l.o.stop.Err() != nil {
			return
		}
		if l.conn == nil {
			if l.closing && l.s.size() == 0 {
				return
			}
			if !l.connect() {
				return
			}
			continue
		}
		var work <-chan *chunk
		if !l.closing && (!l.o.keys.Async || len(l.s.unwritten()) < tlsAsyncBuffer) {
			work = l.o.work
		}
		if l.closing {
			if err := l.writeOut(); err != nil {
				l.fail(err)
				continue
			}
			l.sample()
			if l.s.size() == 0 || !exactAcks {
				l.goodbye()
				return
			}
			if poll == nil {
				t := time.NewTicker(tlsCloseWait)
				defer t.Stop()
				poll = t.C
			}
		}
		var idleC <-chan time.Time
		if l.s.size() > 0 || (l.s.margin() > 0 && l.margin > tlsRecordSlack) {
			idleC = idle.C
		}
		select {
		case c := <-work:
			l.take(c)
		case <-l.poke:
			if err := l.writeOut(); err != nil {
				l.fail(err)
			}
		case ch := <-l.flushes:
			l.waiters = append(l.waiters, waiter{end: l.s.end(), ch: ch})
			if err := l.writeOut(); err != nil {
				l.fail(err)
			}
			l.release()
		case err := <-l.readErr:
			l.fail(err)
		case <-closingCh:
			closingCh, l.closing = nil, true
		case <-poll:
		case <-idleC:
			l.sample()
		case <-l.o.stop.Done():
			return
		}
	}
}

// take copies a chunk into the stream and, unless tls_async buffers it,
// writes it.
func (l *lane) take(c *chunk) {
	l.s.add(c.data, c.ends, c.off)
	c.lane = l
	c.done <- struct{}{}
	if l.o.keys.Async {
		c.done <- struct{}{}
		if len(l.s.unwritten()) < tlsAsyncBuffer {
			return
		}
	} else {
		l.waiters = append(l.waiters, waiter{end: l.s.end(), ch: c.done})
	}
	if err := l.writeOut(); err != nil {
		l.fail(err)
	}
}

// writeOut writes everything unwritten, a segment at a time, and asks the
// kernel what the peer acknowledged whenever the stream holds more than
// tlsSampleEvery, so that it keeps little more than the socket holds.
func (l *lane) writeOut() error {
	for {
		p := l.s.unwritten()
		if len(p) == 0 {
			return nil
		}
		p = p[:min(len(p), tlsSegment)]
		if l.o.timeout > 0 {
			if err := l.conn.SetWriteDeadline(time.Now().Add(l.o.timeout)); err != nil {
				return err
			}
		}
		n, err := l.conn.Write(p)
		if err != nil {
			return fmt.Errorf("writing to %s: %w", l.addr, err)
		}
		l.s.wrote(n, l.cc.n.Load())
		if l.s.end()-l.s.keep >= tlsSampleEvery {
			l.sample()
		}
		l.release()
	}
}

// release signals the waiters whose frames are all written.
func (l *lane) release() {
	i := 0
	for i < len(l.waiters) && l.waiters[i].end <= l.s.written {
		l.waiters[i].ch <- struct{}{}
		i++
	}
	if i > 0 {
		n := copy(l.waiters, l.waiters[i:])
		clear(l.waiters[n:])
		l.waiters = l.waiters[:n]
	}
}

// sample asks the kernel how much of the connection the peer acknowledged
// and drops the frames it has.
//
// It also sizes the margin of acknowledged frames kept in case the
// server's application has not read them: what its kernel holds unread
// shrinks the window it advertises, so the window's shortfall from its
// largest value measures it. Linux advertises about half to three quarters
// of the free buffer, hence the doubling, never past the largest window
// (the most a kernel accepts beyond what was read); the slack covers the
// TLS record cut at the edge, useless to the server until whole.
func (l *lane) sample() {
	// Read the count first: bytes written meanwhile (a TLS key update
	// answered by the reader) then count as unacknowledged, never the
	// other way round.
	written := l.cc.n.Load()
	q, wnd, ok := l.o.sample(l.raw, written)
	if !ok {
		return
	}
	if a := written - q; a > l.acked {
		l.acked = a
	}
	if wnd >= 0 {
		l.maxWnd = max(l.maxWnd, wnd)
		l.margin = min(2*(l.maxWnd-wnd), l.maxWnd) + tlsRecordSlack
	}
	l.s.acked(l.acked, l.margin)
}

// connect waits out the back-off, then dials the next server and resends
// what the last connection may have lost. It returns false when the output
// is aborted.
func (l *lane) connect() bool {
	if l.wait > 0 {
		t := time.NewTimer(l.wait)
		closingCh := l.o.closing
		if l.closing {
			closingCh = nil
		}
	sleep:
		for {
			select {
			case <-t.C:
				break sleep
			case <-closingCh:
				// Nothing to deliver: no need to reconnect to close.
				closingCh, l.closing = nil, true
				if l.s.size() == 0 {
					t.Stop()
					return false
				}
			case <-l.o.stop.Done():
				t.Stop()
				return false
			}
		}
		l.wait = 0
	}
	l.addr = l.o.nextAddr()
	l.since = time.Now()
	if err := l.dial(); err != nil {
		if l.o.stop.Err() != nil {
			return false
		}
		l.fail(err)
		return true
	}
	l.o.stats.connects.Add(1)
	l.o.mu.Lock()
	l.peer = l.addr
	l.o.mu.Unlock()
	if n := l.s.size(); n > 0 {
		l.o.log.Info("connected; sending again what the server may not have received",
			"server", l.addr, "records", l.s.frames(), "bytes", n)
	} else {
		l.o.log.Info("connected", "server", l.addr, "tls", tls.VersionName(l.conn.ConnectionState().Version))
	}
	if err := l.writeOut(); err != nil {
		l.fail(err)
	}
	return true
}

// dial connects to l.addr, completes the handshake, and waits a moment for
// the server to turn the connection down.
func (l *lane) dial() error {
	ctx := l.o.stop
	if l.o.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, l.o.timeout)
		defer cancel()
	}
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", l.addr)
	if err != nil {
		return fmt.Errorf("connecting to %s: %w", l.addr, err)
	}
	raw := c.(*net.TCPConn)
	if l.o.timeout > 0 {
		if err := setUserTimeout(raw, l.o.timeout); err != nil {
			// The write deadline still bounds each write; only a silent
			// server's detection is slower.
			l.o.log.Debug("tls: cannot set TCP_USER_TIMEOUT", "server", l.addr, "error", err)
		}
	}
	cc := &countConn{Conn: raw}
	cfg := l.o.tls.Config()
	cfg.ServerName = serverName(l.addr)
	tc := tls.Client(cc, cfg)
	hsStart := time.Now()
	if err := tc.HandshakeContext(ctx); err != nil {
		raw.Close()
		return explain(fmt.Errorf("TLS handshake with %s: %w", l.addr, err))
	}
	hs := time.Since(hsStart)
	l.conn, l.raw, l.cc, l.acked, l.maxWnd, l.margin = tc, raw, cc, 0, 0, tlsFallbackMargin
	l.unwatch = context.AfterFunc(l.o.stop, func() { raw.Close() })
	l.readErr = make(chan error, 1)
	go read(tc, l.addr, l.readErr)

	// With TLS 1.3 the client finishes its handshake before the server has
	// checked the client's certificate: a server that refuses it says so
	// one round trip later, after its kernel may have acknowledged records
	// its TLS layer then drops. So nothing is written, and no
	// acknowledgement counted, before the server had twice the handshake's
	// time to object.
	probation := min(max(2*hs, 10*time.Millisecond), 2*time.Second)
	t := time.NewTimer(probation)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case err := <-l.readErr:
		l.dropConn()
		return explain(fmt.Errorf("right after the handshake: %w", err))
	case <-l.o.stop.Done():
		l.dropConn()
		return l.o.stop.Err()
	}
}

// read consumes what the server sends (syslog and GELF servers send
// nothing), so that a connection the server closed or reset is noticed at
// once rather than at the next write.
func read(c *tls.Conn, addr string, errc chan<- error) {
	var buf [512]byte
	for {
		if _, err := c.Read(buf[:]); err != nil {
			switch {
			case errors.Is(err, io.EOF):
				err = fmt.Errorf("%s closed the connection", addr)
			case errors.Is(err, net.ErrClosed):
				err = errors.New("connection closed")
			default:
				err = fmt.Errorf("reading from %s: %w", addr, err)
			}
			errc <- err
			return
		}
	}
}

// fail ends the current connection (or attempt) after err: the frames it
// carried that the server did not acknowledge become unwritten again, and
// the back-off decides when to try the next server.
func (l *lane) fail(err error) {
	if l.conn != nil {
		l.sample()
		l.dropConn()
	}
	written := l.s.written
	l.s.rewind()
	if written > l.s.base {
		l.o.stats.resentFrames.Add(int64(l.s.writtenFrames(written)))
		l.o.stats.resentBytes.Add(written - l.s.base)
	}
	l.o.stats.failures.Add(1)
	lasted := time.Since(l.since)
	l.wait = l.bo.failed(lasted)
	l.o.mu.Lock()
	if l.peer != "" {
		l.downSince = time.Now()
	}
	l.peer, l.lastErr, l.lastErrAt = "", err, time.Now()
	l.o.mu.Unlock()

	// Log each new error; the same one again at most every 10 s.
	msg := err.Error()
	attrs := []any{"server", l.addr, "error", msg, "retry_in", l.wait.String()}
	if n := l.s.frames(); n > 0 {
		attrs = append(attrs, "unacknowledged_records", n)
	}
	switch {
	case l.o.stop.Err() != nil:
		// Close gave up and closed the connection: Close reports it.
	case msg != l.logged || time.Since(l.loggedAt) > 10*time.Second:
		l.logged, l.loggedAt = msg, time.Now()
		l.o.log.Warn("connection failed", attrs...)
	default:
		l.o.log.Debug("connection failed", attrs...)
	}
}

// dropConn gives the connection up with a reset: what the socket still
// holds goes again on the next connection, and delivering it here too
// would only make duplicates. What the server may lose to the reset
// unread, the margin covers.
func (l *lane) dropConn() {
	l.unwatch()
	l.raw.SetLinger(0)
	l.raw.Close()
	l.forgetConn()
}

// goodbye closes a connection whose frames were all acknowledged.
func (l *lane) goodbye() {
	l.unwatch()
	l.conn.SetWriteDeadline(time.Now().Add(time.Second))
	l.conn.Close() // sends close_notify
	l.forgetConn()
}

// forgetConn drops the lane's hold on a closed connection and notes since
// when it has been down.
func (l *lane) forgetConn() {
	l.conn, l.raw, l.cc, l.readErr = nil, nil, nil, nil
	l.o.mu.Lock()
	if l.peer != "" {
		l.downSince = time.Now()
	}
	l.peer = ""
	l.o.mu.Unlock()
}

// exit records what is left when the lane stops.
func (l *lane) exit() {
	if l.conn != nil {
		l.dropConn()
	}
	l.lostFrames, l.lostBytes = l.s.drop()
}

// countConn counts the bytes written to the socket: the ciphertext offsets
// the stream's marks refer to.
type countConn struct {
	net.Conn
	n atomic.Int64
}

func (c *countConn) Write(p []byte) (int, error) {
	n, err := c.Conn.Write(p)
	c.n.Add(int64(n))
	return n, err
}

// backoff is Flowgger's reconnection delay (tls_recovery_delay_init, _max
// and tls_recovery_probe_time): after a failure, the delay goes back to
// init if the connection had lasted longer than probe; otherwise, while
// below max, it grows by a random amount of up to itself (x1 to x2). Unlike
// Flowgger, the delay never passes max, and a delay of 0 (init 0, which
// made Flowgger panic) is followed by 1 ms rather than by 0 forever.
type backoff struct {
	init, max, probe time.Duration
	delay            time.Duration
	rand             func(n int64) int64 // uniform in [0, n)
}

// failed returns the delay before the next attempt, after one that lasted
// lasted.
func (b *backoff) failed(lasted time.Duration) time.Duration {
	switch {
	case lasted > b.probe:
		b.delay = b.init
	case b.delay < b.max:
		if b.delay <= 0 {
			b.delay = time.Millisecond
		} else {
			b.delay += time.Duration(b.rand(int64(b.delay)))
		}
		b.delay = min(b.delay, b.max)
	}
	return b.delay
}
