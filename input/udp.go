package input

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zlib"

	"github.com/flowgo/flowgo"
	"github.com/flowgo/flowgo/decoder"
)

func init() {
	Register("udp", Type{Parse: parseUDP})
}

// Defaults of the udp input's keys.
const (
	DefaultUDPListen = "0.0.0.0:514"
	// DefaultUDPRecvBuffer holds about 50,000 small datagrams (Linux
	// doubles the size asked for and charges 1,280 bytes for a 250-byte
	// datagram on loopback): 200 ms of 250,000 a second, for the moments
	// the readers are not scheduled on a machine busy with other work. It
	// is kernel memory, used only while datagrams wait.
	DefaultUDPRecvBuffer = 32 << 20
	// DefaultUDPMaxInflatedSize caps what a compressed datagram may inflate
	// to (max_message_size when that is larger); max_message_size applies
	// to the result, so it matters with max_message_action = "truncate".
	DefaultUDPMaxInflatedSize = 1 << 20
	// DefaultGELFChunkTimeout is Graylog's: a chunked message must be
	// complete within 5 seconds of its first chunk.
	DefaultGELFChunkTimeout = 5 * time.Second
	// DefaultGELFMaxChunks is the GELF specification's limit.
	DefaultGELFMaxChunks       = 128
	DefaultGELFMaxPending      = 1000
	DefaultGELFMaxPendingBytes = 64 << 20
)

const (
	// maxDatagram holds any UDP payload (65,507 bytes over IPv4, 65,527
	// over IPv6 without jumbograms).
	maxDatagram = 64 << 10
	// countTime bounds, at shutdown, the counting of datagrams still
	// queued once drainTime is over (see udpReader.drain).
	countTime = 200 * time.Millisecond
	// housekeeping is how often the kernel's drop counter is read and
	// incomplete chunked messages are expired (at most).
	housekeeping = time.Second
	// inflateSlack is how far past max_message_size inflating goes, for
	// the trailing line ends and NULs that are trimmed afterwards.
	inflateSlack = 16
	// maxUDPSetting bounds the byte-size keys, to catch typos.
	maxUDPSetting = 1 << 30
)

// drainTime bounds the decoding of datagrams already queued in the socket
// at shutdown, in case senders keep sending. A variable for the tests.
var drainTime = time.Second

// Reasons of Sink.Dropped: datagrams the kernel dropped because the
// socket's receive buffer was full, and datagrams still queued in it when
// the shutdown drain ran out of time.
const (
	dropKernel   = "kernel receive buffer"
	dropShutdown = "queued at shutdown"
)

// udpKeys are the udp input's keys.
type udpKeys struct {
	Listen string `toml:"listen"`
	// Format is read here too (the pipeline reads it to pick the decoder):
	// chunked GELF is reassembled only for format "gelf".
	Format              string        `toml:"format"`
	RecvBuffer          int           `toml:"udp_recv_buffer"`
	PeerField           string        `toml:"peer_field"`
	MaxInflatedSize     int           `toml:"udp_max_inflated_size"`
	GELFChunkTimeout    time.Duration `toml:"gelf_chunk_timeout"`
	GELFMaxChunks       int           `toml:"gelf_max_chunks"`
	GELFMaxPending      int           `toml:"gelf_max_pending"`
	GELFMaxPendingBytes int           `toml:"gelf_max_pending_bytes"`
}

// udpInput receives syslog or GELF datagrams: one datagram is one record.
//
// Several reader goroutines share the socket (on Linux each reads up to 32
// datagrams per system call with recvmmsg), decode into batches of their
// own, and hand a batch over when it is full or when the socket has nothing
// more to read. UDP cannot push back on senders. When the queue is full the
// readers wait for room, as Flowgger's do, and datagrams wait in the
// socket's receive buffer (udp_recv_buffer): 32 MiB holds 100-200 ms of
// 250,000 datagrams/s, so an output that pauses that long loses nothing.
// What overflows the buffer the kernel drops; those drops are read from the
// socket's drop counter and counted ("kernel receive buffer"), so no loss
// is silent. Dropping a batch already decoded instead would lose records
// to pauses the buffer absorbs, and waste the decoding of every batch it
// dropped under overload.
type udpInput struct {
	c          Config
	k          udpKeys
	gelf       bool
	maxInflate int
	maxChunked int // bytes of one reassembled chunked message

	// bound is closed once Run has tried to bind the socket; addr is its
	// address.
	bound     chan struct{}
	boundOnce sync.Once
	addr      atomic.Pointer[net.UDPAddr]
}

// udpBuilder is a parsed udp input.
type udpBuilder struct {
	c          Config
	k          udpKeys
	maxInflate int
	maxChunked int
}

// ListenAddress implements Listener.
func (b *udpBuilder) ListenAddress() (string, string) { return "udp", b.k.Listen }

// Build implements Builder.
func (b *udpBuilder) Build() (Input, error) {
	return &udpInput{c: b.c, k: b.k, gelf: b.k.Format == "gelf", maxInflate: b.maxInflate, maxChunked: b.maxChunked,
		bound: make(chan struct{})}, nil
}

func parseUDP(c Config) (Builder, error) {
	s := c.Section
	k := udpKeys{
		Listen: DefaultUDPListen, Format: "rfc5424", RecvBuffer: DefaultUDPRecvBuffer,
		GELFChunkTimeout: DefaultGELFChunkTimeout, GELFMaxChunks: DefaultGELFMaxChunks,
		GELFMaxPending: DefaultGELFMaxPending, GELFMaxPendingBytes: DefaultGELFMaxPendingBytes,
	}
	if err := s.Decode(&k); err != nil {
		return nil, err
	}
	if c.Log == nil {
		c.Log = slog.Default()
	}
	if c.MaxMessageSize <= 0 {
		c.MaxMessageSize = 64 << 10
	}
	if c.BatchRecords <= 0 {
		c.BatchRecords = 1024
	}
	if c.BatchBytes <= 0 {
		c.BatchBytes = 1 << 20
	}
	if _, port, err := net.SplitHostPort(k.Listen); err != nil {
		return nil, s.Errorf("listen", "%q is not an address such as \"0.0.0.0:514\" or \"[::]:514\": %v", k.Listen, err)
	} else if err := checkListenPort(port); err != nil {
		return nil, s.Errorf("listen", "%v", err)
	}
	if k.RecvBuffer < 0 || k.RecvBuffer > maxUDPSetting {
		return nil, s.Errorf("udp_recv_buffer", "must be between 0 (the system default) and %d bytes, not %d", maxUDPSetting, k.RecvBuffer)
	}
	maxInflate := max(c.MaxMessageSize, DefaultUDPMaxInflatedSize)
	if s.Has("udp_max_inflated_size") {
		if k.MaxInflatedSize <= 0 || k.MaxInflatedSize > 64<<20 {
			return nil, s.Errorf("udp_max_inflated_size", "must be between 1 and %d bytes, not %d", 64<<20, k.MaxInflatedSize)
		}
		maxInflate = k.MaxInflatedSize
	}
	u := &udpBuilder{c: c, k: k, maxInflate: maxInflate}
	gelf := k.Format == "gelf"
	// A chunked message is either compressed (and inflates to at most
	// maxInflate) or not (and is at most max_message_size, plus the
	// trailing newline or NUL some senders add).
	u.maxChunked = max(maxInflate, c.MaxMessageSize+2)
	if k.GELFChunkTimeout <= 0 {
		return nil, s.Errorf("gelf_chunk_timeout", "must be a positive duration such as \"5s\"")
	}
	if k.GELFMaxChunks < 1 || k.GELFMaxChunks > 255 {
		return nil, s.Errorf("gelf_max_chunks", "must be between 1 and 255 (the GELF specification allows 128), not %d", k.GELFMaxChunks)
	}
	if k.GELFMaxPending < 1 {
		return nil, s.Errorf("gelf_max_pending", "must be at least 1, not %d", k.GELFMaxPending)
	}
	if need := minPendingBytes(u.maxChunked, k.GELFMaxChunks); k.GELFMaxPendingBytes < need || k.GELFMaxPendingBytes > maxUDPSetting {
		return nil, s.Errorf("gelf_max_pending_bytes", "must be between %d (one message of the largest size) and %d bytes, not %d",
			need, maxUDPSetting, k.GELFMaxPendingBytes)
	}
	if !gelf {
		for _, key := range []string{"gelf_chunk_timeout", "gelf_max_chunks", "gelf_max_pending", "gelf_max_pending_bytes"} {
			if s.Has(key) {
				s.Warn(key, "ignored: chunked GELF is reassembled only with format = \"gelf\"")
			}
		}
	}
	if s.Has("framing") || s.Has("framed") {
		s.Warn("framing", "ignored: over UDP one datagram is one record")
	}
	return u, nil
}

// Addr waits until the input's socket is bound (or ctx ends) and returns
// its address; tests listening on port 0 use it to learn the port.
func (u *udpInput) Addr(ctx context.Context) (*net.UDPAddr, error) {
	select {
	case <-u.bound:
		if a := u.addr.Load(); a != nil {
			return a, nil
		}
		return nil, errors.New("udp input: not listening")
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// listen binds the socket. An IPv4 address gives an IPv4 socket; "[::]"
// gives Linux's default dual-stack socket, as Flowgger's does. A socket
// handed over by a reload comes with the value of its drop counter that
// its input counted.
func (u *udpInput) listen(ctx context.Context) (*net.UDPConn, uint32, error) {
	network := "udp"
	if host, _, err := net.SplitHostPort(u.k.Listen); err == nil {
		if a, err := netip.ParseAddr(host); err == nil && a.Is4() {
			network = "udp4"
		}
	}
	if f, drops := adoptSocket("udp", u.k.Listen); f != nil {
		// The input this one replaces (a reload) left its socket bound,
		// with what was queued in it.
		pc, err := net.FilePacketConn(f)
		f.Close()
		if err == nil {
			if uc, ok := pc.(*net.UDPConn); ok {
				return uc, drops, nil
			}
			pc.Close()
			err = fmt.Errorf("not a UDP socket but %T", pc)
		}
		u.c.Log.Warn("udp: cannot take over the socket of the input this one replaces: binding anew; what was queued in it is lost",
			"error", err)
	}
	var lc net.ListenConfig
	pc, err := lc.ListenPacket(ctx, network, u.k.Listen)
	if err != nil {
		return nil, 0, err
	}
	return pc.(*net.UDPConn), 0, nil
}

// Run implements Input.
func (u *udpInput) Run(ctx context.Context, sink Sink) error {
	conn, counted, err := u.listen(ctx)
	if err == nil {
		u.addr.Store(conn.LocalAddr().(*net.UDPAddr))
	}
	u.boundOnce.Do(func() { close(u.bound) })
	if err != nil {
		return err
	}

	log := u.c.Log
	got, err := setRecvBuffer(conn, u.k.RecvBuffer)
	switch {
	case err != nil:
		log.Warn("udp: cannot set the receive buffer", "udp_recv_buffer", u.k.RecvBuffer, "error", err)
	case got > 0 && got < u.k.RecvBuffer:
		// Stock kernels cap unprivileged buffers at about 200 KiB: say
		// so loudly only to whoever asked for a size.
		level := slog.LevelInfo
		if u.c.Section.Has("udp_recv_buffer") {
			level = slog.LevelWarn
		}
		log.Log(context.Background(), level, "udp: receive buffer smaller than udp_recv_buffer: the kernel caps it at net.core.rmem_max unless flowgo runs as root (CAP_NET_ADMIN); raise it with sysctl -w net.core.rmem_max=N",
			"udp_recv_buffer", u.k.RecvBuffer, "obtained", got)
	}
	log.Info("listening", "type", "udp", "address", conn.LocalAddr().String(), "receive_buffer", got)
	uc, err := newUDPConn(conn)
	if err != nil {
		return err
	}
	drops := newKernelDrops(uc, log, counted)
	defer func() {
		if errors.Is(context.Cause(ctx), ErrHandover) {
			// Replaced on the same address: the successor takes the
			// socket and what is queued in it, and counts the drops
			// from where this input stopped.
			if f, err := uc.file(); err == nil {
				parkSocket("udp", u.k.Listen, f, drops.counted())
			} else {
				log.Warn("udp: cannot hand the socket to the input replacing this one; it is closed", "error", err)
			}
		}
		uc.close()
	}()
	handingOver := func() bool { return errors.Is(context.Cause(ctx), ErrHandover) }

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := context.AfterFunc(ctx, uc.stop)
	defer stop()

	var chunks *gelfChunks
	if u.gelf {
		chunks = newGELFChunks(u.k.GELFChunkTimeout, u.k.GELFMaxChunks, u.k.GELFMaxPending,
			u.k.GELFMaxPendingBytes, u.maxChunked, sink.Dropped)
	}

	// Housekeeping: report kernel drops and expire incomplete messages.
	hkDone := make(chan struct{})
	var hk sync.WaitGroup
	hk.Go(func() {
		every := housekeeping
		if chunks != nil {
			every = min(every, max(u.k.GELFChunkTimeout/4, 10*time.Millisecond))
		}
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-hkDone:
				return
			case now := <-t.C:
				if chunks != nil {
					chunks.expire(now)
				}
				drops.report(sink)
			}
		}
	})

	var (
		wg      sync.WaitGroup
		errMu   sync.Mutex
		readErr error
	)
	for range udpReaders(u.c.Workers) {
		r := &udpReader{u: u, sink: sink, chunks: chunks, dr: newDatagramReader(uc), handingOver: handingOver}
		r.od, _ = u.c.Decoder.(decoder.OriginDecoder)
		wg.Go(func() {
			if err := r.run(ctx); err != nil {
				errMu.Lock()
				readErr = errors.Join(readErr, err)
				errMu.Unlock()
				cancel()
			}
		})
	}
	wg.Wait()
	close(hkDone)
	hk.Wait()
	if chunks != nil {
		chunks.close()
	}
	drops.report(sink)
	return readErr
}

// datagramReader reads datagrams from the socket into buffers of its own.
// Each reader goroutine has one.
type datagramReader interface {
	// read reads one or more datagrams. With wait it waits for one;
	// without, it returns 0 when none is queued. After udpConn.stop it
	// fails with os.ErrDeadlineExceeded.
	read(wait bool) (int, error)
	// drain is read without waiting, also after udpConn.stop.
	drain() (int, error)
	// datagram returns datagram i of the last read.
	datagram(i int) []byte
	// sender returns the sender of datagram i of the last read. It is
	// asked only when needed (a reject, peer_field, chunked GELF), not for
	// every datagram.
	sender(i int) netip.AddrPort
}

// udpReader is one reader goroutine's state.
type udpReader struct {
	u      *udpInput
	sink   Sink
	chunks *gelfChunks
	dr     datagramReader
	b      *flowgo.Batch
	infl   inflater
	msg    []byte // a reassembled chunked message
	peer   []byte // the sender's address as text
	// od is the decoder when it can use the sender (decoder.Origin);
	// cur is the datagram being decoded, whose sender PeerAddr returns.
	od  decoder.OriginDecoder
	cur int
	// started is when the current batch got its first record.
	started time.Time
	// handingOver reports whether the input stops for a successor on the
	// same socket: what is queued is then left to it, not drained.
	handingOver func() bool
}

// udpLinger is how long a batch may wait for more datagrams once the socket
// is empty. Handing a batch over as soon as the socket is empty makes
// batches of a few records under a steady load, whose fixed costs (queue,
// encoding set-up, memory) then cap the rate; a few milliseconds of latency
// make them hundreds of records.
const udpLinger = 5 * time.Millisecond

func (r *udpReader) run(ctx context.Context) error {
	defer r.release()
	for {
		n, err := r.dr.read(r.b == nil || r.b.Len() == 0)
		switch {
		case errors.Is(err, os.ErrDeadlineExceeded):
			if r.handingOver == nil || !r.handingOver() {
				r.drain()
			}
			r.flush()
			return nil
		case errors.Is(err, net.ErrClosed):
			r.flush()
			return err
		case err != nil:
			// Errors of an unconnected UDP socket are transient (ENOMEM,
			// ENOBUFS); keep listening, without spinning.
			r.u.c.Log.Warn("udp: read failed", "error", err)
			r.flush()
			select {
			case <-ctx.Done():
			case <-time.After(100 * time.Millisecond):
			}
			continue
		case n == 0:
			// Nothing more queued: hand the batch over before waiting,
			// unless it is young and small; then look again shortly.
			if b := r.b; b != nil && b.Len() > 0 && b.Len() < r.u.c.BatchRecords/2 && time.Since(r.started) < udpLinger {
				time.Sleep(udpLinger / 10)
				continue
			}
			r.flush()
			continue
		}
		r.handleRead(n)
	}
}

// handleRead handles the n datagrams of the last read.
func (r *udpReader) handleRead(n int) {
	for i := range n {
		r.handle(i)
	}
}

// drain handles the datagrams already queued in the socket at shutdown, for
// at most drainTime. Senders that keep sending faster than the input
// decodes keep the socket from emptying; closing it would then lose what it
// holds without a trace. So what is still queued after drainTime is read
// without being decoded, for at most countTime more, and counted as
// dropped ("queued at shutdown").
func (r *udpReader) drain() {
	deadline := time.Now().Add(drainTime)
	for time.Now().Before(deadline) {
		n, err := r.dr.drain()
		if n == 0 || err != nil {
			return
		}
		r.handleRead(n)
	}
	left := 0
	for end := time.Now().Add(countTime); time.Now().Before(end); {
		n, err := r.dr.drain()
		if n == 0 || err != nil {
			break
		}
		left += n
	}
	if left > 0 {
		r.sink.Dropped(left, dropShutdown)
	}
}

// handle turns datagram i of the last read into a record.
func (r *udpReader) handle(i int) {
	dg := r.dr.datagram(i)
	c := &r.u.c
	payload, raw := dg, len(dg)
	if r.chunks != nil && isGELFChunk(dg) {
		msg, n, done, err := r.chunks.add(dg, r.dr.sender(i), time.Now(), r.msg[:0])
		r.msg = msg[:0]
		if cap(msg) > 1<<20 {
			r.msg = nil // a rare large message does not stay pinned
		}
		if err != nil {
			r.reject(i, dg, err)
			return
		}
		if !done {
			return
		}
		payload, raw = msg, n
	}
	if kind := compression(payload); kind != "" {
		// When a frame too long is rejected anyway, inflating stops
		// soon after max_message_size (leaving room for trailing line
		// ends): a compression bomb costs little.
		limit, key, setting := r.u.maxInflate, "udp_max_inflated_size", r.u.maxInflate
		if !c.Truncate && c.MaxMessageSize+inflateSlack < limit {
			limit, key, setting = c.MaxMessageSize+inflateSlack, "max_message_size", c.MaxMessageSize
		}
		out, err := r.infl.inflate(kind, payload, limit, key, setting)
		if err != nil {
			r.reject(i, payload, err)
			return
		}
		payload = out
	}
	payload = trimDatagram(payload)
	if len(payload) == 0 {
		r.reject(i, dg, errEmptyDatagram)
		return
	}
	if len(payload) > c.MaxMessageSize {
		if !c.Truncate {
			r.reject(i, payload, tooLongf("%v (%d bytes): %d bytes", ErrFrameTooLong, c.MaxMessageSize, len(payload)))
			return
		}
		payload = payload[:c.MaxMessageSize]
	}

	if r.b == nil {
		r.b = flowgo.GetBatch()
	}
	b := r.b
	b.Source = c.Name
	if b.Len() == 0 {
		r.started = time.Now()
	}
	rec := b.Next()
	var err error
	if r.od != nil {
		r.cur = i
		err = r.od.DecodeFrom(payload, r, rec, &b.Arena)
	} else {
		err = c.Decoder.Decode(payload, rec, &b.Arena)
	}
	if err != nil {
		b.Drop()
		r.reject(i, payload, err)
		return
	}
	b.BytesIn += raw
	if r.u.k.PeerField != "" {
		r.peer = r.dr.sender(i).AppendTo(r.peer[:0])
		AddPeer(rec, &b.Arena, r.u.k.PeerField, flowgo.UnsafeString(b.Arena.Copy(r.peer)))
	}
	if b.Len() >= c.BatchRecords || b.Arena.Size() >= c.BatchBytes {
		r.flush()
	}
}

// PeerAddr implements decoder.Origin: the sender of the datagram being
// decoded, looked up only when the decoder asks.
func (r *udpReader) PeerAddr() netip.Addr { return r.dr.sender(r.cur).Addr() }

var errEmptyDatagram = errors.New("empty datagram")

// reject reports datagram i of the last read, or what it became, as bad.
// What is neither a decode error nor too long is about how the record was
// carried (a bad GELF chunk, a corrupt compressed payload, an empty
// datagram): a framing error.
func (r *udpReader) reject(i int, frame []byte, err error) {
	r.sink.Reject("peer "+r.dr.sender(i).String(), frame, datagramError(err))
}

// flush hands the batch over, waiting while the queue is full. Put fails
// only when the pipeline stops for good; it has then counted the records
// as lost.
func (r *udpReader) flush() {
	b := r.b
	if b == nil || b.Len() == 0 {
		return
	}
	r.b = nil
	_ = r.sink.Put(b)
}

func (r *udpReader) release() {
	if r.b != nil {
		flowgo.PutBatch(r.b)
		r.b = nil
	}
}

// trimDatagram removes the line ends and NULs senders put after a message.
func trimDatagram(b []byte) []byte {
	for len(b) > 0 {
		switch b[len(b)-1] {
		case '\n', '\r', 0:
			b = b[:len(b)-1]
		default:
			return b
		}
	}
	return b
}

// compression says how a payload is compressed, as Flowgger detects it:
// zlib by its header (deflate, 32 KiB window, any level) and gzip by its
// magic number and deflate method, with the same minimum lengths.
func compression(b []byte) string {
	switch {
	case len(b) >= 8 && b[0] == 0x78 && (b[1] == 0x01 || b[1] == 0x9c || b[1] == 0xda):
		return "zlib"
	case len(b) >= 24 && b[0] == 0x1f && b[1] == 0x8b && b[2] == 0x08:
		return "gzip"
	}
	return ""
}

// inflater decompresses payloads into a buffer it reuses, with readers it
// reuses, so that inflating costs no allocation once warm.
type inflater struct {
	src bytes.Reader
	zr  io.ReadCloser
	gr  *gzip.Reader
	buf []byte
}

// inflate returns the decompressed payload, or an error if it is corrupt
// or would inflate to more than limit bytes, the limit that key, set to
// setting bytes, implies (a compression bomb is cut off after limit+1
// bytes). The result is valid until the next call.
func (f *inflater) inflate(kind string, p []byte, limit int, key string, setting int) ([]byte, error) {
	f.src.Reset(p)
	var rd io.Reader
	var err error
	if kind == "zlib" {
		if f.zr == nil {
			f.zr, err = zlib.NewReader(&f.src)
		} else {
			err = f.zr.(zlib.Resetter).Reset(&f.src, nil)
		}
		rd = f.zr
	} else {
		if f.gr == nil {
			f.gr, err = gzip.NewReader(&f.src)
		} else {
			err = f.gr.Reset(&f.src)
		}
		rd = f.gr
	}
	if err != nil {
		if kind == "zlib" {
			f.zr = nil // a failed NewReader leaves nothing to reuse
		}
		return nil, corrupt(kind, err)
	}
	buf := f.buf[:0]
	for {
		if len(buf) == cap(buf) {
			if len(buf) > limit {
				f.buf = buf[:0]
				return nil, tooLongf("compressed (%s) payload inflates to more than %s (%d bytes)", kind, key, setting)
			}
			grow := min(max(2*cap(buf), 4<<10), limit+1) - len(buf)
			buf = append(buf[:cap(buf)], make([]byte, grow)...)[:len(buf)]
		}
		n, err := rd.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if len(buf) > limit {
			f.buf = buf[:0]
			return nil, tooLongf("compressed (%s) payload inflates to more than %s (%d bytes)", kind, key, setting)
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			f.buf = buf[:0]
			return nil, corrupt(kind, err)
		}
	}
	f.buf = buf[:0]
	return buf, nil
}

func corrupt(kind string, err error) error {
	if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
		err = errors.New("truncated")
	}
	return fmt.Errorf("corrupt compressed (%s) payload: %v", kind, err)
}

// ListenAddress implements Listener.
func (u *udpInput) ListenAddress() (string, string) { return "udp", u.k.Listen }
