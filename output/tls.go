package output

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/flowgo/flowgo"
	"github.com/flowgo/flowgo/config"
	"github.com/flowgo/flowgo/internal/tlsconf"
)

func init() {
	Register("tls", Type{Parse: parseTLS, DefaultFraming: tlsDefaultFraming}, "syslog-tls")
}

// tlsDefaultFraming gives GELF (the pipeline passes "gelf" for its alias
// json too) NUL-terminated frames,
// as Graylog's GELF TCP input expects, and every other format one record
// per line, which is what Flowgger's own TLS input reads by default.
// Flowgger gave only "gelf" NUL framing and sent other formats without any
// separator.
func tlsDefaultFraming(format string) flowgo.Framing {
	if format == "gelf" {
		return flowgo.FramingNUL
	}
	return flowgo.FramingLine
}

// Defaults of the tls output's keys.
const (
	DefaultTLSTimeout       = 30 // seconds; Flowgger's 3600 was never applied
	DefaultTLSFlushInterval = 100 * time.Millisecond
	DefaultTLSDelayInit     = 1     // ms
	DefaultTLSDelayMax      = 10000 // ms
	DefaultTLSProbeTime     = 30000 // ms
	maxTLSThreads           = 256
)

// Sizes of the write path.
const (
	// tlsSegment is the most plaintext given to one tls.Conn.Write call.
	// Each call ends with a mark mapping plaintext to ciphertext, so it is
	// also the granularity of acknowledgement: a frame is kept until the
	// whole segment holding its end is acknowledged.
	tlsSegment = 32 << 10
	// tlsAsyncBuffer is how much tls_async gathers before writing.
	tlsAsyncBuffer = 64 << 10
	// tlsMinChunk is the smallest share of a batch given to one connection
	// when tls_threads > 1: smaller batches go to a single connection.
	tlsMinChunk = 16 << 10
	// tlsCloseWait is how often Close asks the kernel whether the peer
	// acknowledged everything.
	tlsCloseWait = 2 * time.Millisecond
	// tlsRecordSlack is the most plaintext of a TLS record and its
	// overhead: a record the server got only in part is of no use to it.
	tlsRecordSlack = 16<<10 + 256
	// tlsFallbackMargin is the margin of acknowledged bytes kept when the
	// server's window is unknown: Linux's largest default receive buffer.
	tlsFallbackMargin = 6 << 20
	// tlsSampleEvery is how much a lane keeps before it asks the kernel
	// what the peer acknowledged (two system calls): with small batches,
	// not after every write.
	tlsSampleEvery = 64 << 10
	// tlsWriteGrace is how long Write and Flush wait for a lane that has
	// no connection before they return an error to the pipeline.
	tlsWriteGrace = time.Second
	// tlsIdleAck is how often a lane asks the kernel what the peer
	// acknowledged while it writes nothing.
	tlsIdleAck = 100 * time.Millisecond
)

// tlsKeys are the [output] keys of the tls output.
type tlsKeys struct {
	Connect       []string                             `toml:"connect"`
	Timeout       config.Duration[config.Seconds]      `toml:"timeout"`
	Threads       int                                  `toml:"tls_threads"`
	Cert          string                               `toml:"tls_cert"`
	Key           string                               `toml:"tls_key"`
	CAFile        string                               `toml:"tls_ca_file"`
	VerifyPeer    bool                                 `toml:"tls_verify_peer"`
	Ciphers       string                               `toml:"tls_ciphers"`
	Level         string                               `toml:"tls_compatibility_level"`
	Async         bool                                 `toml:"tls_async"`
	FlushInterval time.Duration                        `toml:"tls_flush_interval"`
	DelayInit     config.Duration[config.Milliseconds] `toml:"tls_recovery_delay_init"`
	DelayMax      config.Duration[config.Milliseconds] `toml:"tls_recovery_delay_max"`
	ProbeTime     config.Duration[config.Milliseconds] `toml:"tls_recovery_probe_time"`
}

// tlsOutput sends frames over TLS to one of the connect servers, over
// tls_threads connections ("lanes"), each with its own goroutine. Write
// hands each batch, split in contiguous chunks when there are several
// lanes, to whichever lanes are connected, and returns once they wrote it.
//
// Delivery is at least once: a lane keeps the frames the peer's TCP has not
// acknowledged, and a margin of acknowledged ones the server may not have
// read yet (see stream and lane.sample); when its connection breaks, it
// sends them again on the next one before anything new. Close waits until
// the peer acknowledged every frame.
//
// What this cannot cover: frames a server acknowledged, then lost (it
// crashed or closed without reading them) beyond the margin, which is an
// estimate from the window it advertised; frames the server read and then
// lost; anything in flowgo's memory when the process is killed.
type tlsOutput struct {
	keys    tlsKeys
	log     *slog.Logger
	tls     *tlsconf.Reloader
	timeout time.Duration
	sample  func(c *net.TCPConn, written int64) (unacked, window int64, ok bool)
	rand    func(n int64) int64

	addrMu sync.Mutex
	addrs  []string // shuffled; reshuffled when the index wraps
	next   int
	last   string

	lanes    []*lane
	work     chan *chunk
	inflight *inflight // the batch Write is delivering, or nil
	spare    inflight  // inflight's memory
	free     []*chunk  // chunks of delivered batches, for reuse
	tick     *time.Ticker
	started  bool
	closed   bool
	closing  chan struct{}      // closed by Close: lanes drain and exit
	stop     context.Context    // ends when Close gives up
	abort    context.CancelFunc // ends stop
	wg       sync.WaitGroup

	mu    sync.Mutex // guards the lanes' health fields
	stats tlsStats
}

// chunk is a share of a batch for one lane: whole frames, data[ends[i]-off]
// ending frame i. The lane sends on done twice: once it copied the frames
// (the batch is the caller's again), and once they are written (or, with
// tls_async, as soon as they are copied).
type chunk struct {
	data []byte
	ends []int
	off  int
	done chan struct{}
	lane *lane // the lane that took it; set before the first signal
}

// inflight is a batch Write is delivering. When Write gives up waiting (the
// connections are down), the lanes keep the chunks they took, and the
// pipeline calls Write again with the same batch: Write then waits for
// those chunks instead of handing them over twice.
type inflight struct {
	id      uint64 // the batch's delivery identity (flowgo.Batch.ID)
	size    int
	chunks  []*chunk
	sent    int // chunks handed over (and copied)
	written int // chunks written, in order
}

type tlsStats struct {
	connects, failures, resentFrames, resentBytes atomic.Int64
}

// TLSStats counts what the tls output did.
type TLSStats struct {
	Connects     int64 // connections established
	Failures     int64 // connection attempts and connections that failed
	ResentFrames int64 // frames sent again after a connection broke
	ResentBytes  int64
}

// tlsBuilder is a parsed tls output.
type tlsBuilder struct {
	keys tlsKeys
	log  *slog.Logger
	tls  *tlsconf.Reloader
}

// Build implements Builder.
func (b *tlsBuilder) Build() (Output, error) {
	k := b.keys
	o := &tlsOutput{
		keys:    k,
		log:     b.log,
		tls:     b.tls,
		timeout: k.Timeout.Get(),
		sample:  tcpSample,
		rand:    func(n int64) int64 { return rand.Int64N(n) },
		addrs:   append([]string(nil), k.Connect...),
		next:    -1,
		work:    make(chan *chunk),
		closing: make(chan struct{}),
	}
	o.stop, o.abort = context.WithCancel(context.Background())
	rand.Shuffle(len(o.addrs), func(i, j int) { o.addrs[i], o.addrs[j] = o.addrs[j], o.addrs[i] })
	return o, nil
}

// parseTLS decodes and validates the tls output's keys, and loads the
// certificates they name, which checks them.
func parseTLS(c Config) (Builder, error) {
	s := c.Section
	k := tlsKeys{
		Timeout:       config.Count[config.Seconds](DefaultTLSTimeout),
		Threads:       1,
		VerifyPeer:    true,
		Level:         "intermediate",
		FlushInterval: DefaultTLSFlushInterval,
		DelayInit:     config.Count[config.Milliseconds](DefaultTLSDelayInit),
		DelayMax:      config.Count[config.Milliseconds](DefaultTLSDelayMax),
		ProbeTime:     config.Count[config.Milliseconds](DefaultTLSProbeTime),
	}
	if err := s.Decode(&k); err != nil {
		return nil, err
	}
	if !s.Has("connect") || len(k.Connect) == 0 {
		return nil, s.Errorf("connect", "required: a list of \"host:port\" servers, such as [\"graylog.example.com:12201\"]")
	}
	for _, a := range k.Connect {
		if _, _, err := splitAddr(a); err != nil {
			return nil, s.Errorf("connect", "%v", err)
		}
	}
	switch {
	case k.Timeout.Get() < 0:
		return nil, s.Errorf("timeout", "must be a number of seconds, 0 for none, not %v", k.Timeout)
	case k.Threads < 1 || k.Threads > maxTLSThreads:
		return nil, s.Errorf("tls_threads", "must be between 1 and %d connections, not %d", maxTLSThreads, k.Threads)
	case k.DelayInit.Get() < 0:
		return nil, s.Errorf("tls_recovery_delay_init", "must not be negative")
	case k.DelayMax.Get() < time.Millisecond:
		return nil, s.Errorf("tls_recovery_delay_max", "must be at least 1 ms")
	case k.DelayMax.Get() < k.DelayInit.Get():
		return nil, s.Errorf("tls_recovery_delay_max", "cannot be less than tls_recovery_delay_init (%v)", k.DelayInit)
	case k.ProbeTime.Get() < 0:
		return nil, s.Errorf("tls_recovery_probe_time", "must not be negative")
	case k.Async && k.FlushInterval <= 0:
		return nil, s.Errorf("tls_flush_interval", "must be positive, such as \"100ms\"")
	}
	if !k.VerifyPeer {
		s.Warn("tls_verify_peer", "false: the servers' certificates are not verified, so anyone on the path can read and alter the records")
		if k.CAFile != "" {
			s.Warn("tls_ca_file", "not used: tls_verify_peer is false")
		}
	}
	log := c.Log
	if log == nil {
		log = slog.Default()
	}
	opts := tlsconf.Options{CertFile: k.Cert, KeyFile: k.Key, CAFile: k.CAFile, VerifyPeer: k.VerifyPeer, Ciphers: k.Ciphers, Level: k.Level}
	if !k.VerifyPeer {
		opts.CAFile = ""
	}
	r, warnings, err := tlsconf.ClientConfig(opts, func(err error) { log.Warn("reloading the TLS files", "error", err) })
	for _, w := range warnings {
		s.Warn("tls_ciphers", "%s", w)
	}
	if err != nil {
		return nil, s.Wrap("tls_cert", err)
	}
	return &tlsBuilder{keys: k, log: log, tls: r}, nil
}

// splitAddr splits "host:port" or "[v6]:port" and checks both parts.
func splitAddr(a string) (host, port string, err error) {
	host, port, err = net.SplitHostPort(a)
	if err != nil {
		reason := err.Error()
		var ae *net.AddrError
		if errors.As(err, &ae) {
			reason = ae.Err
		}
		return "", "", fmt.Errorf("%q: want \"host:port\" (\"[v6 address]:port\" for IPv6): %s", a, reason)
	}
	if host == "" {
		return "", "", fmt.Errorf("%q: the host is missing", a)
	}
	if p, err := strconv.Atoi(port); err != nil || p < 1 || p > 65535 {
		return "", "", fmt.Errorf("%q: the port must be a number from 1 to 65535", a)
	}
	return host, port, nil
}

// serverName is the name a server's certificate is verified against and
// sent as SNI: the host part of its address, without brackets or an IPv6
// zone. (crypto/tls sends no SNI for an IP address.)
func serverName(addr string) string {
	host, _, _ := net.SplitHostPort(addr)
	if i := strings.IndexByte(host, '%'); i >= 0 {
		host = host[:i]
	}
	return host
}

// nextAddr returns the next server to try: Flowgger's round robin over the
// shuffled list, reshuffled each time it wraps.
func (o *tlsOutput) nextAddr() string {
	o.addrMu.Lock()
	defer o.addrMu.Unlock()
	o.next++
	if o.next >= len(o.addrs) {
		rand.Shuffle(len(o.addrs), func(i, j int) { o.addrs[i], o.addrs[j] = o.addrs[j], o.addrs[i] })
		// Do not try the server that just failed twice in a row.
		if len(o.addrs) > 1 && o.addrs[0] == o.last {
			o.addrs[0], o.addrs[len(o.addrs)-1] = o.addrs[len(o.addrs)-1], o.addrs[0]
		}
		o.next = 0
	}
	o.last = o.addrs[o.next]
	return o.last
}

// start starts the lanes on first use: a constructor does no I/O.
func (o *tlsOutput) start() {
	if o.started {
		return
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	o.started = true
	for range o.keys.Threads {
		l := &lane{o: o, flushes: make(chan chan struct{}), poke: make(chan struct{}, 1), bo: backoff{
			init:  o.keys.DelayInit.Get(),
			max:   o.keys.DelayMax.Get(),
			probe: o.keys.ProbeTime.Get(),
			rand:  o.rand,
		}}
		l.bo.delay = l.bo.init
		l.downSince = time.Now()
		o.lanes = append(o.lanes, l)
		o.wg.Add(1)
		go l.run()
	}
}

// Write hands b's frames to the lanes and returns once they are written to
// a connection (with tls_async: copied into a lane's buffer).
//
// When the connections stay down longer than tlsWriteGrace, Write returns
// an error so that the pipeline backs off, reports it, and can reload
// certificates or the configuration meanwhile; the lanes go on
// reconnecting with Flowgger's back-off and keep the frames they took.
// The pipeline then calls Write again with the same batch, which resumes:
// nothing is handed over twice.
func (o *tlsOutput) Write(ctx context.Context, b *flowgo.Batch) error {
	if b.Frames() == 0 {
		return nil
	}
	if o.closed {
		return errors.New("tls: write after close")
	}
	o.start()
	w := o.inflight
	if w == nil || b.ID == 0 || w.id != b.ID || w.size != len(b.Data) {
		w = &o.spare
		*w = inflight{id: b.ID, size: len(b.Data), chunks: o.split(b, w.chunks[:0])}
		o.inflight = w
	}
	tick := o.ticker()
	for w.sent < len(w.chunks) {
		c := w.chunks[w.sent]
		select {
		case o.work <- c:
			// The lane copies a chunk as soon as it receives it: once
			// copied, b is the caller's again.
			<-c.done
			w.sent++
		case <-ctx.Done():
			o.abandon() // the pipeline gives the batch up
			return fmt.Errorf("tls: %w (%s)", ctx.Err(), o.describeHealth())
		case <-tick.C:
			if err := o.down(nil); err != nil {
				return err
			}
		}
	}
	for w.written < len(w.chunks) {
		c := w.chunks[w.written]
		select {
		case <-c.done:
			w.written++
		case <-ctx.Done():
			o.abandon()
			return fmt.Errorf("tls: %w (%s)", ctx.Err(), o.describeHealth())
		case <-tick.C:
			if err := o.down(c.lane); err != nil {
				return err
			}
		}
	}
	// Every chunk was signalled twice and no lane refers to it any more:
	// they serve the next batch.
	o.free = append(o.free, w.chunks...)
	clear(w.chunks)
	w.chunks, w.id = w.chunks[:0], 0
	o.inflight = nil
	return nil
}

// abandon forgets the batch in flight: lanes may still hold its chunks, so
// they are not reused.
func (o *tlsOutput) abandon() {
	o.spare = inflight{}
	o.inflight = nil
}

// ticker returns the output's ticker for Write and Flush, restarted.
func (o *tlsOutput) ticker() *time.Ticker {
	if o.tick == nil {
		o.tick = time.NewTicker(tlsWriteGrace / 4)
	} else {
		o.tick.Reset(tlsWriteGrace / 4)
	}
	return o.tick
}

// down returns an error when lane l (every lane, when l is nil) has been
// without a connection for tlsWriteGrace or longer.
func (o *tlsOutput) down(l *lane) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	now := time.Now()
	for _, x := range o.lanes {
		if l != nil && x != l {
			continue
		}
		if x.peer != "" || now.Sub(x.downSince) < tlsWriteGrace {
			return nil
		}
	}
	return fmt.Errorf("tls: %s", o.describeLocked())
}

// split cuts b into up to one contiguous chunk per lane, of about equal
// size, so that the lanes encrypt in parallel.
func (o *tlsOutput) split(b *flowgo.Batch, chunks []*chunk) []*chunk {
	n := b.Frames()
	total := b.Ends[n-1]
	k := min(len(o.lanes), n, max(1, total/tlsMinChunk))
	first, start := 0, 0
	for j := 1; j <= k && first < n; j++ {
		last := n // exclusive
		if j < k {
			target := total * j / k
			last = first + 1
			for last < n && b.Ends[last-1] < target {
				last++
			}
		}
		end := b.Ends[last-1]
		var c *chunk
		if n := len(o.free); n > 0 {
			c, o.free = o.free[n-1], o.free[:n-1]
		} else {
			c = &chunk{done: make(chan struct{}, 2)}
		}
		c.data, c.ends, c.off, c.lane = b.Data[start:end], b.Ends[first:last], start, nil
		chunks = append(chunks, c)
		first, start = last, end
	}
	return chunks
}

// Flush writes what tls_async buffered on the connected lanes. A lane
// without a connection writes its buffer as soon as it reconnects; Flush
// reports it as an error once it has been down for tlsWriteGrace.
func (o *tlsOutput) Flush(ctx context.Context) error {
	if !o.started || o.closed {
		return nil
	}
	tick := o.ticker()
	var errs []error
	for _, l := range o.lanes {
		ch := make(chan struct{}, 1)
	send:
		for {
			select {
			case l.flushes <- ch:
				break send
			case <-ctx.Done():
				return fmt.Errorf("tls: flush: %w (%s)", ctx.Err(), o.describeHealth())
			case <-tick.C:
				if err := o.down(l); err != nil {
					errs = append(errs, err)
					ch = nil
					break send
				}
			}
		}
		for ch != nil {
			select {
			case <-ch:
				ch = nil
			case <-ctx.Done():
				return fmt.Errorf("tls: flush: %w (%s)", ctx.Err(), o.describeHealth())
			case <-tick.C:
				if err := o.down(l); err != nil {
					errs = append(errs, err)
					ch = nil
				}
			}
		}
	}
	return errors.Join(errs...)
}

// FlushIdle asks the connected lanes to write what tls_async buffered,
// without waiting for them: the pipeline's queue ran empty, and the lanes
// write while the next batch is on its way. A lane that is writing already
// writes everything it holds before it waits again.
func (o *tlsOutput) FlushIdle() {
	if !o.started || o.closed || !o.keys.Async {
		return
	}
	for _, l := range o.lanes {
		select {
		case l.poke <- struct{}{}:
		default: // one is pending already
		}
	}
}

var _ IdleFlusher = (*tlsOutput)(nil)

// Buffered reports whether Write returns with frames in a lane's buffer,
// not yet written to a connection (tls_async).
func (o *tlsOutput) Buffered() bool { return o.keys.Async }

// FlushInterval is tls_flush_interval with tls_async, and 0 (no timed
// flush: every write is flushed) without.
func (o *tlsOutput) FlushInterval() time.Duration {
	if o.keys.Async {
		return o.keys.FlushInterval
	}
	return 0
}

// Close writes what is buffered, waits until the peers acknowledged every
// frame, then closes the connections. When ctx ends first, what was not
// acknowledged is reported in the error.
func (o *tlsOutput) Close(ctx context.Context) error {
	if o.closed {
		return nil
	}
	o.closed = true
	if o.tick != nil {
		o.tick.Stop()
	}
	if !o.started {
		o.abort()
		return nil
	}
	close(o.closing)
	done := make(chan struct{})
	go func() { o.wg.Wait(); close(done) }()
	var cause error
	select {
	case <-done:
	case <-ctx.Done():
		cause = ctx.Err()
		o.abort()
		<-done
	}
	o.abort()
	frames, bytes := 0, 0
	for _, l := range o.lanes {
		frames += l.lostFrames
		bytes += l.lostBytes
		if cause == nil {
			cause = l.lastErr
		}
	}
	if frames > 0 {
		return fmt.Errorf("tls: %d records (%d bytes) not acknowledged by the server at close: %w", frames, bytes, cause)
	}
	return nil
}

// Reload re-reads the client certificate, key and CA file (SIGHUP). New
// connections use them; established ones go on.
func (o *tlsOutput) Reload() error {
	return o.tls.Reload()
}

// Healthy reports whether at least one connection is up, and describes the
// connections and the last error. Before the first record nothing has been
// tried, and an idle output is not a failing one: it reports healthy.
func (o *tlsOutput) Healthy() (bool, string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if !o.started {
		return true, "no record sent yet: the first one opens the connections"
	}
	up := 0
	for _, l := range o.lanes {
		if l.peer != "" {
			up++
		}
	}
	return up > 0, o.describeLocked()
}

var _ Prober = (*tlsOutput)(nil)

// Probe proves a server takes connections: once the lanes run (after the
// first record), at least one of them is connected; before, a TLS
// handshake (certificate checked as for the lanes) with the first server
// of connect that completes one, on a connection of its own, closed at once. A server
// that refuses the client certificate says so just after the handshake
// (TLS 1.3), so the probe waits a moment for that, as a lane does.
func (o *tlsOutput) Probe(ctx context.Context) error {
	o.mu.Lock()
	started := o.started
	up, state := 0, ""
	if started {
		for _, l := range o.lanes {
			if l.peer != "" {
				up++
			}
		}
		state = o.describeLocked()
	}
	o.mu.Unlock()
	if started {
		// The lanes' own handshakes tell: no connection of the probe's.
		if up == 0 {
			return fmt.Errorf("tls output: %s", state)
		}
		return nil
	}
	var errs []error
	for _, addr := range o.keys.Connect {
		err := o.probe(ctx, addr)
		if err == nil {
			return nil
		}
		errs = append(errs, err)
		if ctx.Err() != nil {
			break
		}
	}
	return fmt.Errorf("tls output: %w", errors.Join(errs...))
}

func (o *tlsOutput) probe(ctx context.Context, addr string) error {
	if o.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, o.timeout)
		defer cancel()
	}
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return fmt.Errorf("connecting to %s: %w", addr, err)
	}
	defer c.Close()
	cfg := o.tls.Config()
	cfg.ServerName = serverName(addr)
	tc := tls.Client(c, cfg)
	start := time.Now()
	if err := tc.HandshakeContext(ctx); err != nil {
		return explain(fmt.Errorf("TLS handshake with %s: %w", addr, err))
	}
	tc.SetReadDeadline(time.Now().Add(min(max(2*time.Since(start), 10*time.Millisecond), time.Second)))
	var one [1]byte
	if _, err := tc.Read(one[:]); err != nil {
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			return nil
		}
		return explain(fmt.Errorf("TLS with %s, right after the handshake: %w", addr, err))
	}
	return nil // the server talks first: it accepted us
}

func (o *tlsOutput) describeHealth() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.describeLocked()
}

func (o *tlsOutput) describeLocked() string {
	var peers []string
	var lastErr error
	var lastAt time.Time
	for _, l := range o.lanes {
		if l.peer != "" {
			peers = append(peers, l.peer)
		}
		if l.lastErr != nil && l.lastErrAt.After(lastAt) {
			lastErr, lastAt = l.lastErr, l.lastErrAt
		}
	}
	var b strings.Builder
	if len(peers) == 0 {
		b.WriteString("not connected")
	} else {
		fmt.Fprintf(&b, "%d of %d connections up (%s)", len(peers), len(o.lanes), strings.Join(peers, ", "))
	}
	if lastErr != nil {
		fmt.Fprintf(&b, "; last error %s ago: %v", time.Since(lastAt).Round(time.Millisecond), lastErr)
	}
	return b.String()
}

// Stats returns the output's counters.
func (o *tlsOutput) Stats() TLSStats {
	return TLSStats{
		Connects:     o.stats.connects.Load(),
		Failures:     o.stats.failures.Load(),
		ResentFrames: o.stats.resentFrames.Load(),
		ResentBytes:  o.stats.resentBytes.Load(),
	}
}

// explain adds what to check to the certificate errors people meet.
func explain(err error) error {
	var ua x509.UnknownAuthorityError
	var he x509.HostnameError
	switch {
	case errors.As(err, &ua):
		return fmt.Errorf("%w (the server's certificate is not signed by the CAs in tls_ca_file, or by a system CA when tls_ca_file is not set)", err)
	case errors.As(err, &he):
		return fmt.Errorf("%w (the host in connect must be a name or address the server's certificate is issued for)", err)
	}
	if clientCertRefused(err) {
		return fmt.Errorf("%w (the server wants a client certificate it trusts: see tls_cert and tls_key)", err)
	}
	return err
}

// TLS alerts (RFC 8446 6.2) a server sends about the client's certificate.
const (
	alertBadCertificate      = 42
	alertUnknownCA           = 48
	alertCertificateRequired = 116
)

// clientCertRefused reports whether err is an alert from the server about
// the client's certificate. crypto/tls returns an alert the peer sent as a
// *net.OpError "remote error" around a value of an unexported type, which
// prints as the tls.AlertError of the same code does.
func clientCertRefused(err error) bool {
	var op *net.OpError
	if !errors.As(err, &op) || op.Op != "remote error" || op.Err == nil {
		return false
	}
	switch op.Err.Error() {
	case tls.AlertError(alertBadCertificate).Error(), tls.AlertError(alertUnknownCA).Error(),
		tls.AlertError(alertCertificateRequired).Error():
		return true
	}
	return false
}
