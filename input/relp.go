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
	"sync/atomic"
	"syscall"
	"time"

	"github.com/flowgo/flowgo"
	"github.com/flowgo/flowgo/internal/ratelog"
	"github.com/flowgo/flowgo/internal/tlsconf"
)

func init() {
	Register("relp", Type{Parse: parseRELP, Framing: "relp"})
}

// DefaultRELPListen is the relp input's default address (imrelp has no
// default port; 2514 is the one rsyslog's documentation uses).
const DefaultRELPListen = "0.0.0.0:2514"

// relpLinger bounds how long a session the server ends waits for the
// client to close its side, so that the last answers are not cut off by a
// reset; during shutdown shutdownGrace bounds it instead.
const relpLinger = time.Second

// After serverclose, at shutdown or idle, a session reads on: frames the
// client wrote before it read serverclose are queued, not dropped. It stops
// when the client closes, when nothing arrives for relpDrainQuiet (more
// than the 200 ms a corked frame of omrelp can wait in the client's
// kernel), or after relpDrainMax. See docs/relp.md, "Shutdown".
const (
	relpDrainQuiet = time.Second
	relpDrainMax   = 5 * time.Second
)

// relpVersion is the highest RELP version flowgo speaks. librelp offers 0,
// the same protocol as 1; the answer is the lower of the two.
const relpVersion = 1

// relpMinData is the data the input reads of any frame whatever
// max_message_size: room for an open command's offers.
const relpMinData = 4096

// RELP is the relp input: the Reliable Event Logging Protocol as rsyslog's
// omrelp (librelp) speaks it, over TCP or TLS.
//
// Keys: those of the tcp input (listen defaults to "0.0.0.0:2514"; timeout,
// max_connections, tcp_keepalive, peer_field) and relp_tls (default false):
// when true, the tls input's keys apply (tls_cert, tls_key, tls_ca_file,
// tls_verify_peer, tls_compatibility_level, tls_ciphers,
// tls_handshake_timeout). The data of each syslog command is one frame,
// decoded with input.format; one trailing LF is removed.
//
// A syslog command is answered "200 OK" once the batch holding its record
// was accepted by Sink.Put (queued; with a disk queue, written and synced
// as [queue] sync says), or once it was rejected as undecodable (counted,
// dead-lettered). A full queue makes Put wait, so no answer goes out, the
// sender's window fills and it stops: backpressure. Answers keep the order
// of the commands. A frame longer than max_message_size is read to its end
// and answered 200: with max_message_action = "reject" its head is
// rejected as too long (counted, dead-lettered), with "truncate" decoded.
// A stream that is not RELP, a transaction number out of
// sequence, a command before open and an unknown command end the session:
// what came before is answered, then the error (when the command can be
// answered) and the serverclose hint are sent and the connection is
// closed. The sender resends whatever was not answered.
type RELP struct {
	*streamServer
	certs   *tlsconf.Reloader // nil without relp_tls
	st      relpStats
	resends *relpResends
	logProt *ratelog.Log
}

// relpKeys are the relp input's own keys.
type relpKeys struct {
	TLS bool `toml:"relp_tls"`
}

// tlsKeyNames are the keys configureTLS reads.
var tlsKeyNames = []string{"tls_cert", "tls_key", "tls_ca_file", "tls_verify_peer",
	"tls_compatibility_level", "tls_ciphers", "tls_handshake_timeout"}

// relpBuilder is a parsed relp input.
type relpBuilder struct {
	tcpBuilder
	t *streamTLS // nil without relp_tls
}

func parseRELP(c Config) (Builder, error) {
	k, err := decodeStreamKeys(c, DefaultRELPListen)
	if err != nil {
		return nil, err
	}
	var rk relpKeys
	s := c.Section
	if s != nil {
		if err := s.Decode(&rk); err != nil {
			return nil, err
		}
		for _, key := range []string{"framing", "framed"} {
			if s.Has(key) {
				s.Warn(key, "ignored: RELP frames carry their own length")
			}
		}
		if !rk.TLS {
			for _, key := range tlsKeyNames {
				if s.Has(key) {
					return nil, s.Errorf(key, "is read only with relp_tls = true (RELP over TLS)")
				}
			}
		}
	}
	c.Framing = "relp"
	b := &relpBuilder{tcpBuilder: tcpBuilder{c: c, k: k}}
	if rk.TLS {
		t, err := parseStreamTLS(s, c.Log)
		if err != nil {
			return nil, err
		}
		b.t = &t
	}
	return b, nil
}

// Build implements Builder.
func (b *relpBuilder) Build() (Input, error) {
	srv := newStreamServer(b.c, b.k, "relp")
	in := &RELP{streamServer: srv, resends: newRELPResends()}
	in.logProt = ratelog.New(srv.c.Log, "RELP sessions ended by protocol errors", "peer", 10*time.Second, 5)
	if b.t != nil {
		b.t.apply(srv)
		in.certs = b.t.certs
	}
	srv.session = in.serveSession
	return in, nil
}

// Run listens and serves RELP sessions until ctx ends; see Input.
func (in *RELP) Run(ctx context.Context, sink Sink) error {
	err := in.streamServer.Run(ctx, sink)
	in.logProt.Flush()
	return err
}

// Reload re-reads the certificate, key and CA files (relp_tls); new
// handshakes use them.
func (in *RELP) Reload() error {
	if in.certs == nil {
		return nil
	}
	if err := in.certs.Reload(); err != nil {
		return fmt.Errorf("relp input: reloading certificates: %w", err)
	}
	in.c.Log.Info("TLS certificates reloaded", "subject", in.certs.Leaf().Subject.String())
	return nil
}

// Why a session ended: the values of the reason label of
// flowgo_input_relp_sessions_closed_total.
const (
	relpEndClose          = iota // the client sent close
	relpEndPeerClosed            // the connection ended without close
	relpEndIdle                  // nothing arrived for the idle timeout
	relpEndShutdown              // the input stopped
	relpEndPipelineStop          // the pipeline refused a batch: it is stopping
	relpEndWriteError            // an answer could not be written
	relpEndReadError             // reading failed (other than an end of the connection)
	relpEndBadFrame              // bytes that are not a RELP frame
	relpEndBadTxnr               // a transaction number out of sequence
	relpEndBeforeOpen            // a command before open
	relpEndOpenRefused           // an open without the offers needed, or a second open
	relpEndUnknownCommand        // a command the server does not know
	relpEndCount
)

var relpEndNames = [relpEndCount]string{"close", "peer_closed", "idle", "shutdown", "pipeline_stopped",
	"write_error", "read_error", "bad_frame", "bad_txnr", "before_open", "open_refused", "unknown_command"}

// relpStats are the relp input's own counters.
type relpStats struct {
	sessions atomic.Int64 // sessions opened (open answered 200)
	acked    atomic.Int64 // syslog frames answered 200
	resent   atomic.Int64 // syslog frames a sender sent again that were already queued
	drained  atomic.Int64 // syslog frames read after serverclose (see drain)
	ended    [relpEndCount]atomic.Int64
}

// Counters implements CounterSource.
func (in *RELP) Counters() []Counter {
	out := []Counter{
		{Name: "relp_sessions_total", Help: "RELP sessions opened.", Value: in.st.sessions.Load()},
		{Name: "relp_frames_acked_total", Help: "RELP syslog frames answered 200 OK: queued, or rejected as undecodable and dead-lettered.", Value: in.st.acked.Load()},
		{Name: "relp_frames_resent_total", Help: "RELP syslog frames a sender sent again after a broken session although they had been queued (detected by content, within one flowgo process).", Value: in.st.resent.Load()},
		{Name: "relp_frames_after_serverclose_total", Help: "RELP syslog frames that arrived after serverclose (at shutdown or idle), queued and answered: the sender had written them before it read serverclose.", Value: in.st.drained.Load()},
	}
	for i := range relpEndCount {
		out = append(out, Counter{Name: "relp_sessions_closed_total", Help: "RELP connections ended, by reason.",
			Reason: relpEndNames[i], Value: in.st.ended[i].Load()})
	}
	return out
}

// relpSession is one connection's state; it lives on the connection's
// goroutine only.
type relpSession struct {
	in   *RELP
	conn net.Conn
	sc   *streamConn
	peer string
	sink Sink
	bt   *Batcher

	expect   int  // the next transaction number
	open     bool // open was answered 200
	lost     bool // the pipeline refused a batch
	writeErr error

	// Answers not yet sent: they go out once every record before them is
	// queued. acks counts the 200s among them for syslog frames, hashes
	// holds those frames' hashes.
	out    []byte
	acks   int
	hashes []uint64

	drained int // syslog frames read after serverclose

	recent relpRecent     // the last frames queued
	resend *relpRecentSet // the frames of this peer's last broken session, while resends may come
	host   string         // the peer's address without the port
}

// relpSessionSink is the pipeline as a session's batcher sees it: once a
// batch is queued, the answers waiting for it go out.
type relpSessionSink struct {
	Sink
	s *relpSession
}

func (w relpSessionSink) Put(b *flowgo.Batch) error {
	if err := w.Sink.Put(b); err != nil {
		// Nothing waiting is answered: the sender keeps it all.
		w.s.lost = true
		w.s.out, w.s.acks, w.s.hashes = w.s.out[:0], 0, w.s.hashes[:0]
		return err
	}
	w.s.queued()
	return nil
}

// serveSession serves one RELP connection until it ends.
func (in *RELP) serveSession(ctx context.Context, sc *streamConn, conn net.Conn, peer string, sink Sink) {
	s := &relpSession{in: in, conn: conn, sc: sc, peer: peer, sink: sink, expect: 1}
	s.host, _, _ = net.SplitHostPort(peer)
	c := &in.c
	s.bt = NewBatcher(c.Decoder, relpSessionSink{sink, s}, c.Name, c.BatchRecords, c.BatchBytes)
	s.bt.SetPeer(in.k.PeerField, peer)
	defer s.bt.Release()

	// Frames longer than max_message_size are rejected or truncated by
	// syslog; open's offers may need more.
	rr := newRELPReader(conn, max(c.MaxMessageSize, relpMinData))
	defer rr.close()
	// The read buffer beyond 4 KiB and the records waiting for the queue
	// take from the memory budget of the pipeline's stream inputs
	// (stream_buffer_max_bytes), as the tcp and tls inputs do; while the
	// budget is spent the session reads nothing, the sender's window
	// fills and it waits.
	hold := &bufHolder{}
	rr.useBudget(c.Buffers, hold)
	s.bt.useBudget(c.Buffers, hold)
	pending := newPendingProbe(sc.Conn)
	// Answer before a read that may wait. When the socket already holds
	// bytes the read will not wait, and the batch grows instead; the
	// sender's window (omrelp: 128 frames) bounds how far. An idle
	// session gives its buffer back to the budget there.
	rr.beforeRead = func() bool {
		if pending.bytes() <= 0 {
			s.flush()
			rr.shrink()
		}
		return !s.lost && s.writeErr == nil
	}
	// Answer what is decoded before waiting for the budget.
	rr.beforeWait = s.flush

	end, errRsp, cause := -1, []byte(nil), error(nil)
	for end < 0 {
		if s.lost {
			end = relpEndPipelineStop
			break
		}
		if s.writeErr != nil {
			end, cause = relpEndWriteError, s.writeErr
			break
		}
		f, err := rr.next()
		if errors.Is(err, errRELPAbort) {
			continue // lost or writeErr says why
		}
		if err != nil {
			end, cause = relpReadEnd(err), err
			break
		}
		end, errRsp, cause = s.handle(f)
	}
	s.finish(ctx, end, errRsp, cause, rr)
}

// relpReadEnd classifies the error that ended reading.
func relpReadEnd(err error) int {
	var fe *relpFrameError
	switch {
	case errors.As(err, &fe):
		return relpEndBadFrame
	case errors.Is(err, errStopped):
		return relpEndShutdown
	case errors.Is(err, errIdle):
		return relpEndIdle
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, syscall.ECONNRESET):
		return relpEndPeerClosed
	}
	return relpEndReadError
}

// handle processes one frame. It returns -1 while the session goes on,
// else why it ends, with the error answer to send (if any) and the cause.
func (s *relpSession) handle(f relpFrame) (end int, errRsp []byte, cause error) {
	if f.txnr != s.expect {
		return relpEndBadTxnr, nil, &relpFrameError{Offset: f.offset, Frame: f.number,
			Reason: fmt.Sprintf("transaction number %d, expected %d", f.txnr, s.expect)}
	}
	s.expect = relpNextTxnr(s.expect)
	switch string(f.cmd) {
	case "syslog":
		if !s.open {
			return relpEndBeforeOpen, appendRELPRsp(nil, f.txnr, 500, "protocol error: open expected", ""),
				fmt.Errorf("relp: frame %d: syslog before open", f.number)
		}
		s.syslog(f)
		return -1, nil, nil
	case "open":
		return s.openSession(f)
	case "close":
		// Answer everything before, then the close itself.
		s.flush()
		if s.lost || s.writeErr != nil {
			return -1, nil, nil // the loop ends on these
		}
		s.out = appendRELPRsp(s.out, f.txnr, 200, "OK", "")
		s.write()
		return relpEndClose, nil, nil
	}
	return relpEndUnknownCommand, appendRELPRsp(nil, f.txnr, 500, "unknown command", ""),
		fmt.Errorf("relp: frame %d: unknown command %q", f.number, f.cmd)
}

// openSession answers an open command with the offers flowgo accepts.
func (s *relpSession) openSession(f relpFrame) (int, []byte, error) {
	refuse := func(text string, err error) (int, []byte, error) {
		return relpEndOpenRefused, appendRELPRsp(nil, f.txnr, 500, text, ""),
			fmt.Errorf("relp: frame %d: open refused: %w", f.number, err)
	}
	if s.open {
		return refuse("protocol error: connection already open", errors.New("the session is already open"))
	}
	if f.truncated() {
		return refuse("invalid offers", fmt.Errorf("offers longer than %d bytes", relpMinData))
	}
	offers, err := parseRELPOffers(f.data)
	if err != nil {
		return refuse("invalid offers", err)
	}
	version, syslog := -1, false
	for _, o := range offers {
		switch o.name {
		case "relp_version":
			if len(o.values) == 1 {
				if v, err := strconv.Atoi(o.values[0]); err == nil && v >= 0 {
					version = v
				}
			}
		case "commands":
			for _, v := range o.values {
				syslog = syslog || v == "syslog"
			}
		}
	}
	if version < 0 {
		return refuse("invalid offer relp_version", errors.New("no relp_version offer with a number"))
	}
	if !syslog {
		return refuse("required command not supported by client", errors.New("the client does not offer commands=syslog"))
	}
	s.open = true
	s.in.st.sessions.Add(1)
	if s.host != "" {
		s.resend = s.in.resends.take(s.host)
	}
	s.out = appendRELPRsp(s.out, f.txnr, 200, "OK",
		"relp_version="+strconv.Itoa(min(version, relpVersion))+"\nrelp_software=flowgo\ncommands=syslog")
	s.write()
	return -1, nil, nil
}

// syslog takes one syslog command: its answer waits in s.out until the
// record is queued.
func (s *relpSession) syslog(f relpFrame) {
	c := &s.in.c
	h := relpHash(f.data)
	if s.resend != nil {
		if s.resend.remove(h) {
			s.in.st.resent.Add(1)
			if s.resend.empty() {
				s.resend = nil
			}
		} else {
			s.resend = nil // resent frames come first, in order
		}
	}
	raw := relpFrameLen(f)
	data := f.data
	if f.size > c.MaxMessageSize {
		data = data[:c.MaxMessageSize]
		if !c.Truncate {
			// Answered 200 like an undecodable frame: a 500 makes omrelp
			// suspend its action and send its whole batch again.
			s.answer(h, f.txnr)
			s.sink.Reject(s.origin(f), data, &FrameError{Offset: f.offset,
				Reason: fmt.Sprintf("%v (%d bytes): RELP data length %d", ErrFrameTooLong, c.MaxMessageSize, f.size), Err: ErrFrameTooLong})
			return
		}
	}
	data = trimLF(data)
	if s.bt.mem != nil {
		// Taking budget for the record may hand the batch over first,
		// which sends the answers waiting for it: this frame's answer
		// must not be among them yet. Charged now, Add charges nothing.
		s.bt.charge(data)
	}
	// The answer waits before Add, which may hand the batch over with
	// this record in it.
	s.answer(h, f.txnr)
	if err := s.bt.Add(data, raw); err != nil {
		s.sink.Reject(s.origin(f), data, err)
	}
}

// answer puts the 200 for a syslog frame among the answers that wait for
// the batch being built.
func (s *relpSession) answer(h uint64, txnr int) {
	s.out = appendRELPRsp(s.out, txnr, 200, "OK", "")
	s.acks++
	s.hashes = append(s.hashes, h)
}

// origin names where a frame came from, for rejects.
func (s *relpSession) origin(f relpFrame) string {
	return "peer " + s.peer + " relp txnr " + strconv.Itoa(f.txnr)
}

// flush hands the batch over and sends the answers waiting for it. After
// a write error the batch is still handed over: the client may never read
// an answer again, but what was read must not be dropped (a sender that
// cannot resend it would lose it; one that can, sends a duplicate).
func (s *relpSession) flush() {
	if s.lost {
		return
	}
	if !s.bt.Flush() {
		s.lost = true
		return
	}
	s.queued()
}

// queued is called once every record decoded so far is queued: the frames
// answered are remembered, and the answers sent.
func (s *relpSession) queued() {
	for _, h := range s.hashes {
		s.recent.add(h)
	}
	s.hashes = s.hashes[:0]
	s.write()
}

// write sends the answers in s.out.
func (s *relpSession) write() {
	if len(s.out) == 0 || s.writeErr != nil {
		s.out, s.acks = s.out[:0], 0
		return
	}
	if t := s.in.k.Timeout.Get(); t > 0 {
		s.conn.SetWriteDeadline(time.Now().Add(t))
	}
	_, err := s.conn.Write(s.out)
	if err != nil {
		s.writeErr = err
	} else {
		s.in.st.acked.Add(int64(s.acks))
	}
	s.out, s.acks = s.out[:0], 0
}

// finish ends the session: what was decoded is handed over and answered,
// then the error answer and serverclose go out. At shutdown and idle the
// session then drains (see drain); the connection closes.
func (s *relpSession) finish(ctx context.Context, end int, errRsp []byte, cause error, rr *relpReader) {
	in := s.in
	in.st.ended[end].Add(1)
	gone := end == relpEndPeerClosed // nothing more can be read
	if end != relpEndClose {
		s.flush()
		if s.writeErr == nil {
			if !s.lost {
				s.out = append(s.out, errRsp...)
			}
			s.out = appendRELPFrame(s.out, 0, "serverclose", nil)
			s.write()
		}
		if end == relpEndShutdown || end == relpEndIdle {
			gone = s.drain(rr)
		}
		if s.open && s.host != "" && end != relpEndPipelineStop {
			in.resends.put(s.host, &s.recent)
		}
	}

	log := in.c.Log
	switch end {
	case relpEndClose:
		log.Debug("RELP session closed by the client", "peer", s.peer, "frames", rr.frames)
	case relpEndPeerClosed, relpEndShutdown:
		log.Debug("RELP session ended", "peer", s.peer, "reason", relpEndNames[end], "frames", rr.frames,
			"after_serverclose", s.drained)
	case relpEndPipelineStop:
		log.Debug("RELP session ended: the pipeline is stopping", "peer", s.peer)
	case relpEndIdle:
		in.logIdle.Event(slog.LevelInfo, "closing idle RELP session", s.peer, cause, "timeout", s.sc.timeout.String())
	case relpEndReadError, relpEndWriteError:
		in.logEnded.Event(slog.LevelInfo, "RELP session ended by an I/O error", s.peer, cause, "frames", rr.frames)
	default:
		in.logProt.Event(slog.LevelWarn, "RELP session closed: protocol error", s.peer, cause,
			"reason", relpEndNames[end])
	}
	s.linger(ctx, gone)
}

// drain runs after serverclose at shutdown and idle. librelp sends each
// frame right after a read that does not wait, so it can write frames
// after serverclose left flowgo and before it reads it; those frames are
// in its list of unanswered frames. If the omrelp client then ends
// (rsyslog ends it when the worker of the disk part of a disk-assisted
// queue finds that part empty, at rebindInterval and at shutdown), librelp
// frees that list without sending it again: dropped here, those frames
// would be lost. A client that goes on sends them again instead: queued
// here, they arrive twice. So the session reads on and queues (and answers)
// every frame until the client closes the connection (as librelp does
// when it reconnects) or sends close, until nothing arrives for
// relpDrainQuiet, or for relpDrainMax at most. It reports whether the
// client closed the connection.
func (s *relpSession) drain(rr *relpReader) (gone bool) {
	if s.lost {
		return false
	}
	rr.r = &relpDrainReader{sc: s.sc, r: rr.r, until: time.Now().Add(relpDrainMax)}
	rr.err = nil // errStopped or errIdle: read on
	pending := newPendingProbe(s.sc.Conn)
	rr.beforeRead = func() bool {
		if pending.bytes() <= 0 {
			s.flush()
			rr.shrink()
		}
		return !s.lost
	}
	for {
		f, err := rr.next()
		if err != nil {
			s.flush()
			end := relpReadEnd(err)
			return end == relpEndPeerClosed || end == relpEndReadError
		}
		if string(f.cmd) == "syslog" {
			s.drained++
			s.in.st.drained.Add(1)
		}
		if end, _, _ := s.handle(f); end >= 0 {
			// close was answered, or the frame is a protocol error:
			// the client has nothing more to send.
			s.flush()
			return false
		}
	}
}

// relpDrainReader reads a connection during drain: each read waits at most
// relpDrainQuiet for bytes, and none goes past until.
type relpDrainReader struct {
	sc    *streamConn
	r     io.Reader
	until time.Time
}

func (d *relpDrainReader) Read(p []byte) (int, error) {
	t := time.Now().Add(relpDrainQuiet)
	if t.After(d.until) {
		t = d.until
	}
	d.sc.readUntil(t)
	return d.r.Read(p)
}

// readUntil makes c's reads wait for bytes until t at most, then return
// errStopped, whether or not the input is stopping (and whatever had
// arrived when it stopped): the relp input's drain.
func (c *streamConn) readUntil(t time.Time) {
	c.mu.Lock()
	c.stopping, c.budget, c.stopUntil = true, -1, t
	c.mu.Unlock()
}

// linger closes the connection after letting the client read the last
// answers: the server's side is shut, and what the client still sends is
// read and dropped until it closes too, so that unread bytes do not make
// the close a reset that could discard the answers. gone says the client
// closed already.
func (s *relpSession) linger(ctx context.Context, gone bool) {
	if gone || s.writeErr != nil {
		s.conn.Close()
		return
	}
	wait := relpLinger
	if ctx.Err() != nil {
		wait = shutdownGrace
	}
	if tc, ok := s.conn.(*tls.Conn); ok {
		tc.CloseWrite() // close_notify
	}
	raw := s.sc.Conn
	if tc, ok := raw.(*net.TCPConn); ok {
		tc.CloseWrite()
	}
	raw.SetReadDeadline(time.Now().Add(wait))
	io.Copy(io.Discard, io.LimitReader(raw, 64<<20))
	s.conn.Close()
}

// relpFrameLen returns how many bytes frame f took on the wire.
func relpFrameLen(f relpFrame) int {
	n := digits(f.txnr) + 1 + len(f.cmd) + 1 + digits(f.size) + 1
	if f.size > 0 {
		n += 1 + f.size
	}
	return n
}

func digits(n int) int {
	d := 1
	for n >= 10 {
		n /= 10
		d++
	}
	return d
}

var (
	_ Input         = (*RELP)(nil)
	_ Reloader      = (*RELP)(nil)
	_ Listener      = (*RELP)(nil)
	_ ConnCounter   = (*RELP)(nil)
	_ CounterSource = (*RELP)(nil)
)
