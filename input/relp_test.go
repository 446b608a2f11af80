package input

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/flowgo/flowgo"
)

// Protocol tests of the relp input with a scripted client: a real
// listener on loopback, frames written by hand, answers read and parsed by
// the client below, which shares no code with the input.

// librelpOffers is what rsyslog 8.2302's omrelp (librelp 1.11) sends in
// its open command, byte for byte.
const librelpOffers = "relp_version=0\nrelp_software=librelp,1.11.0,http://librelp.adiscon.com\ncommands=syslog"

// startRELP builds a relp input with the TOML keys given and runs it until
// the test ends.
func startRELP(t testing.TB, keys string, o streamOptions) *testServer {
	t.Helper()
	in, logs, err := buildStream("relp", keys, o)
	if err != nil {
		t.Fatal(err)
	}
	sink := o.sink
	if sink == nil {
		sink = &streamSink{}
	}
	var runSink Sink = sink
	if o.otherSink != nil {
		runSink = o.otherSink
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := in.(*RELP)
	s := &testServer{in: in, st: r.streamServer, sink: sink, logs: logs, cancel: cancel, done: make(chan error, 1)}
	go func() { s.done <- in.Run(ctx, runSink) }()
	a := s.st.Addr()
	if a == nil {
		t.Fatalf("input did not listen: %v", <-s.done)
	}
	s.addr = a.String()
	t.Cleanup(func() {
		if sink.block != nil {
			select {
			case <-sink.block:
			default:
				close(sink.block)
			}
		}
		s.stop(t)
	})
	return s
}

func (s *testServer) relp() *RELP { return s.in.(*RELP) }

// counter returns the value of one of the input's own counters.
func (s *testServer) counter(name, reason string) int64 {
	for _, c := range s.relp().Counters() {
		if c.Name == name && c.Reason == reason {
			return c.Value
		}
	}
	panic("no counter " + name + " " + reason)
}

// waitCounter waits until a counter reaches want.
func (s *testServer) waitCounter(t testing.TB, name, reason string, want int64) {
	t.Helper()
	if !waitFor(10*time.Second, func() bool { return s.counter(name, reason) >= want }) {
		t.Fatalf("%s{%s} = %d; want %d", name, reason, s.counter(name, reason), want)
	}
}

// relpClient is a scripted RELP client.
type relpClient struct {
	t    testing.TB
	c    net.Conn
	r    *bufio.Reader
	txnr int
}

func dialRELP(t testing.TB, s *testServer) *relpClient {
	t.Helper()
	return &relpClient{t: t, c: s.dial(t), r: nil, txnr: 1}
}

func (c *relpClient) reader() *bufio.Reader {
	if c.r == nil {
		c.r = bufio.NewReader(c.c)
	}
	return c.r
}

// raw writes bytes as they are.
func (c *relpClient) raw(s string) {
	c.t.Helper()
	if _, err := io.WriteString(c.c, s); err != nil {
		c.t.Fatalf("write: %v", err)
	}
}

// send writes a command with the next transaction number and returns it.
func (c *relpClient) send(cmd, data string) int {
	c.t.Helper()
	n := c.txnr
	c.txnr++
	c.raw(relpText(n, cmd, data))
	return n
}

// relpText is a frame, written independently of the input's code.
func relpText(txnr int, cmd, data string) string {
	if data == "" {
		return fmt.Sprintf("%d %s 0\n", txnr, cmd)
	}
	return fmt.Sprintf("%d %s %d %s\n", txnr, cmd, len(data), data)
}

type relpAnswer struct {
	txnr int
	cmd  string
	data string
}

// read reads one frame from the server, failing the test after 10 s.
func (c *relpClient) read() relpAnswer {
	c.t.Helper()
	a, err := c.tryRead(10 * time.Second)
	if err != nil {
		c.t.Fatalf("reading an answer: %v", err)
	}
	return a
}

func (c *relpClient) tryRead(d time.Duration) (relpAnswer, error) {
	c.c.SetReadDeadline(time.Now().Add(d))
	defer c.c.SetReadDeadline(time.Time{})
	r := c.reader()
	field := func(stop string) (string, byte, error) {
		var b strings.Builder
		for {
			ch, err := r.ReadByte()
			if err != nil {
				return b.String(), 0, err
			}
			if strings.IndexByte(stop, ch) >= 0 {
				return b.String(), ch, nil
			}
			b.WriteByte(ch)
		}
	}
	var a relpAnswer
	tx, _, err := field(" ")
	if err != nil {
		return a, err
	}
	if a.txnr, err = strconv.Atoi(tx); err != nil {
		return a, fmt.Errorf("bad txnr %q", tx)
	}
	if a.cmd, _, err = field(" "); err != nil {
		return a, err
	}
	ln, stop, err := field(" \n")
	if err != nil {
		return a, err
	}
	n, err := strconv.Atoi(ln)
	if err != nil {
		return a, fmt.Errorf("bad length %q", ln)
	}
	if n == 0 {
		if stop != '\n' {
			return a, fmt.Errorf("length 0 not followed by LF")
		}
		return a, nil
	}
	buf := make([]byte, n+1)
	if _, err := io.ReadFull(r, buf); err != nil {
		return a, err
	}
	if buf[n] != '\n' {
		return a, fmt.Errorf("no LF after %d bytes of data: %q", n, buf)
	}
	a.data = string(buf[:n])
	return a, nil
}

// open opens the session as librelp does and checks the answer.
func (c *relpClient) open() {
	c.t.Helper()
	n := c.send("open", librelpOffers)
	a := c.read()
	want := "200 OK\nrelp_version=0\nrelp_software=flowgo\ncommands=syslog"
	if a.txnr != n || a.cmd != "rsp" || a.data != want {
		c.t.Fatalf("answer to open = %+v; want txnr %d rsp %q", a, n, want)
	}
}

// expectRsp reads one answer and checks it.
func (c *relpClient) expectRsp(txnr int, data string) {
	c.t.Helper()
	a := c.read()
	if a.txnr != txnr || a.cmd != "rsp" || a.data != data {
		c.t.Fatalf("answer = %d %s %q; want %d rsp %q", a.txnr, a.cmd, a.data, txnr, data)
	}
}

// expectServerclose reads the serverclose hint, then the end of the
// connection.
func (c *relpClient) expectServerclose() {
	c.t.Helper()
	a := c.read()
	if a.txnr != 0 || a.cmd != "serverclose" || a.data != "" {
		c.t.Fatalf("got %+v; want the hint 0 serverclose 0", a)
	}
	c.expectEOF()
}

func (c *relpClient) expectEOF() {
	c.t.Helper()
	if a, err := c.tryRead(10 * time.Second); err == nil {
		c.t.Fatalf("got %+v; want the connection closed", a)
	} else {
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			c.t.Fatal("the connection is still open after 10s")
		}
	}
}

func TestRELPSessionOpenSyslogClose(t *testing.T) {
	s := startRELP(t, `listen = "127.0.0.1:0"`, streamOptions{})
	c := dialRELP(t, s)
	c.open()
	var sent []int
	for i := range 3 {
		sent = append(sent, c.send("syslog", fmt.Sprintf("<13>message %d", i)))
	}
	for _, n := range sent {
		c.expectRsp(n, "200 OK")
	}
	n := c.send("close", "")
	c.expectRsp(n, "200 OK")
	c.expectEOF()

	if got := s.sink.got(); strings.Join(got, "|") != "<13>message 0|<13>message 1|<13>message 2" {
		t.Errorf("records %q", got)
	}
	s.waitCounter(t, "relp_sessions_closed_total", "close", 1)
	for _, c := range []struct {
		name, reason string
		want         int64
	}{{"relp_sessions_total", "", 1}, {"relp_frames_acked_total", "", 3},
		{"relp_frames_resent_total", "", 0}, {"relp_sessions_closed_total", "peer_closed", 0}} {
		if got := s.counter(c.name, c.reason); got != c.want {
			t.Errorf("%s{%s} = %d; want %d", c.name, c.reason, got, c.want)
		}
	}
}

func TestRELPAnswersAWindowInOrder(t *testing.T) {
	s := startRELP(t, `listen = "127.0.0.1:0"`, streamOptions{batchRecords: 7})
	c := dialRELP(t, s)
	c.open()
	// 500 frames in one write, as a sender with a large window sends them
	// before reading any answer; then a trailing LF in the data, which is
	// removed, and a multi-line message, which is kept.
	var b strings.Builder
	for i := range 500 {
		b.WriteString(relpText(c.txnr+i, "syslog", fmt.Sprintf("m%03d", i)))
	}
	c.txnr += 500
	c.raw(b.String())
	for i := range 500 {
		c.expectRsp(2+i, "200 OK")
	}
	c.expectRsp(c.send("syslog", "with LF\n"), "200 OK")
	c.expectRsp(c.send("syslog", "two\nlines"), "200 OK")
	got := s.sink.got()
	if len(got) != 502 {
		t.Fatalf("%d records; want 502", len(got))
	}
	for i := range 500 {
		if want := fmt.Sprintf("m%03d", i); got[i] != want {
			t.Fatalf("record %d = %q; want %q", i, got[i], want)
		}
	}
	if got[500] != "with LF" || got[501] != "two\nlines" {
		t.Errorf("records %q, %q; want %q, %q", got[500], got[501], "with LF", "two\nlines")
	}
}

// The answer to a frame goes out only once Put returned for the batch
// holding its record: while Put waits (a full queue), nothing is answered.
func TestRELPAnswersOnlyWhatIsQueued(t *testing.T) {
	sink := &streamSink{block: make(chan struct{})}
	s := startRELP(t, `listen = "127.0.0.1:0"`, streamOptions{sink: sink})
	c := dialRELP(t, s)
	c.open()
	n1 := c.send("syslog", "one")
	n2 := c.send("syslog", "two")
	if !waitFor(10*time.Second, func() bool { return sink.waiting.Load() == 1 }) {
		t.Fatal("Put was not called")
	}
	if a, err := c.tryRead(300 * time.Millisecond); err == nil {
		t.Fatalf("answer %+v while Put waits; want none", a)
	}
	if got := s.counter("relp_frames_acked_total", ""); got != 0 {
		t.Fatalf("acked = %d while Put waits; want 0", got)
	}
	close(sink.block)
	a := c.read()
	if sink.records.Load() == 0 {
		t.Fatal("answered before the records were queued")
	}
	if a.txnr != n1 {
		t.Fatalf("first answer is for %d; want %d", a.txnr, n1)
	}
	c.expectRsp(n2, "200 OK")
}

// A frame the decoder refuses is answered 200 (as imrelp does) and
// rejected: counted and kept in the dead-letter file.
func TestRELPUndecodableFrameIsAcknowledgedAndRejected(t *testing.T) {
	s := startRELP(t, `listen = "127.0.0.1:0"`, streamOptions{})
	c := dialRELP(t, s)
	c.open()
	n1 := c.send("syslog", "good")
	n2 := c.send("syslog", "BAD frame")
	n3 := c.send("syslog", "good again")
	c.expectRsp(n1, "200 OK")
	c.expectRsp(n2, "200 OK")
	c.expectRsp(n3, "200 OK")
	rej := s.sink.gotRejects()
	if len(rej) != 1 || rej[0].frame != "BAD frame" || !strings.Contains(rej[0].origin, "relp txnr 3") {
		t.Fatalf("rejects %+v; want BAD frame from txnr 3", rej)
	}
	if got := s.sink.got(); len(got) != 2 {
		t.Errorf("records %q; want the two good ones", got)
	}
}

func TestRELPFrameLongerThanMaxMessageSize(t *testing.T) {
	long := strings.Repeat("x", 100)
	t.Run("reject: answered 200, rejected as too long, the session goes on", func(t *testing.T) {
		s := startRELP(t, `listen = "127.0.0.1:0"`, streamOptions{maxSize: 40})
		c := dialRELP(t, s)
		c.open()
		n1 := c.send("syslog", "before")
		n2 := c.send("syslog", long)
		n3 := c.send("syslog", "after")
		c.expectRsp(n1, "200 OK")
		c.expectRsp(n2, "200 OK")
		c.expectRsp(n3, "200 OK")
		rej := s.sink.gotRejects()
		var fe *FrameError
		if len(rej) != 1 || rej[0].frame != long[:40] || !errors.As(rej[0].err, &fe) || !strings.Contains(fe.Reason, ErrFrameTooLong.Error()) {
			t.Fatalf("rejects %+v; want the first 40 bytes, too long", rej)
		}
		if got := s.sink.got(); strings.Join(got, "|") != "before|after" {
			t.Errorf("records %q", got)
		}
		if got := s.counter("relp_frames_acked_total", ""); got != 3 {
			t.Errorf("acked = %d; want 3", got)
		}
	})
	t.Run("truncate: the head is decoded and answered 200", func(t *testing.T) {
		s := startRELP(t, `listen = "127.0.0.1:0"`, streamOptions{maxSize: 40, truncate: true})
		c := dialRELP(t, s)
		c.open()
		c.expectRsp(c.send("syslog", long), "200 OK")
		c.expectRsp(c.send("syslog", "after"), "200 OK")
		if got := s.sink.got(); strings.Join(got, "|") != long[:40]+"|after" {
			t.Errorf("records %q", got)
		}
	})
}

// Each error ends its own session only: what came before is answered,
// then the error answer (when the command has one) and serverclose; the
// reason is counted; a second session open all along is unaffected.
func TestRELPProtocolErrorsCloseTheSession(t *testing.T) {
	for _, tc := range []struct {
		name   string
		script func(c *relpClient) // after open, except where it says
		rsp    string              // the error answer, "" for none
		reason string
		noOpen bool
	}{
		{name: "syslog before open", noOpen: true, reason: "before_open", rsp: "500 protocol error: open expected",
			script: func(c *relpClient) { c.send("syslog", "too early") }},
		{name: "transaction number skipped", reason: "bad_txnr",
			script: func(c *relpClient) { c.txnr++; c.send("syslog", "skipped one") }},
		{name: "transaction number repeated", reason: "bad_txnr",
			script: func(c *relpClient) { c.txnr--; c.send("syslog", "again") }},
		{name: "transaction number 0 (a hint) from the client", reason: "bad_txnr",
			script: func(c *relpClient) { c.raw(relpText(0, "syslog", "hint")) }},
		{name: "garbage", reason: "bad_frame",
			script: func(c *relpClient) { c.raw("GET / HTTP/1.1\r\n\r\n") }},
		{name: "data not followed by LF", reason: "bad_frame",
			script: func(c *relpClient) { c.raw("3 syslog 5 helloX") }},
		{name: "transaction number of 10 digits", reason: "bad_frame",
			script: func(c *relpClient) { c.raw("1000000000 syslog 1 x\n") }},
		{name: "unknown command", reason: "unknown_command", rsp: "500 unknown command",
			script: func(c *relpClient) { c.send("starttls", "") }},
		{name: "second open", reason: "open_refused", rsp: "500 protocol error: connection already open",
			script: func(c *relpClient) { c.send("open", librelpOffers) }},
		{name: "open without commands=syslog", noOpen: true, reason: "open_refused", rsp: "500 required command not supported by client",
			script: func(c *relpClient) { c.send("open", "relp_version=0\ncommands=eventlog") }},
		{name: "open without relp_version", noOpen: true, reason: "open_refused", rsp: "500 invalid offer relp_version",
			script: func(c *relpClient) { c.send("open", "commands=syslog") }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := startRELP(t, `listen = "127.0.0.1:0"`, streamOptions{})
			other := dialRELP(t, s)
			other.open()
			c := dialRELP(t, s)
			var before int
			if !tc.noOpen {
				c.open()
				before = c.send("syslog", "before the error")
			}
			errTxnr := c.txnr
			tc.script(c)
			if before > 0 {
				c.expectRsp(before, "200 OK")
			}
			if tc.rsp != "" {
				c.expectRsp(errTxnr, tc.rsp)
			}
			c.expectServerclose()
			s.waitCounter(t, "relp_sessions_closed_total", tc.reason, 1)
			if !strings.Contains(s.logs.String(), "RELP session closed: protocol error") {
				t.Errorf("nothing logged:\n%s", s.logs.String())
			}

			// The other session works on.
			n := other.send("syslog", "other session")
			other.expectRsp(n, "200 OK")
			got := s.sink.got()
			if tc.noOpen && strings.Join(got, "|") != "other session" ||
				!tc.noOpen && strings.Join(got, "|") != "before the error|other session" {
				t.Errorf("records %q", got)
			}
		})
	}
}

// An oversized RELP header never makes the input buffer more than the
// header allows: ten digits are refused at once.
func TestRELPDataLengthTooLongIsAnError(t *testing.T) {
	s := startRELP(t, `listen = "127.0.0.1:0"`, streamOptions{})
	c := dialRELP(t, s)
	c.open()
	c.raw("2 syslog 1234567890 ")
	c.expectServerclose()
	s.waitCounter(t, "relp_sessions_closed_total", "bad_frame", 1)
}

func TestRELPShutdownAnswersThenSendsServerclose(t *testing.T) {
	s := startRELP(t, `listen = "127.0.0.1:0"`, streamOptions{})
	c := dialRELP(t, s)
	c.open()
	n := c.send("syslog", "last")
	c.expectRsp(n, "200 OK")
	s.cancel()
	c.expectServerclose()
	s.waitCounter(t, "relp_sessions_closed_total", "shutdown", 1)
}

// A frame that arrives after serverclose, at shutdown or idle, is queued
// and answered: the client wrote it before it read serverclose, and a
// librelp client whose worker ends then frees it without sending it again
// (docs/relp.md, "Shutdown"). Here the client writes it after reading
// serverclose, which the server cannot tell apart.
func TestRELPFramesAfterServercloseAreQueued(t *testing.T) {
	for _, tc := range []struct {
		name string
		tls  bool
		idle bool
	}{{"shutdown", false, false}, {"idle", false, true}, {"shutdown over TLS", true, false}, {"idle over TLS", true, true}} {
		t.Run(tc.name, func(t *testing.T) {
			keys := "listen = \"127.0.0.1:0\"\n"
			var c *certs
			if tc.tls {
				c = newCerts(t)
				keys = "relp_tls = true\n" + c.keys(true) // with listen
			}
			if tc.idle {
				keys += "timeout = 1\n"
			}
			s := startRELP(t, keys, streamOptions{})
			s.certs = c
			cl := dialRELP(t, s)
			cl.open()
			cl.expectRsp(cl.send("syslog", "<13>before"), "200 OK")
			if !tc.idle {
				s.cancel()
			}
			if a := cl.read(); a.txnr != 0 || a.cmd != "serverclose" {
				t.Fatalf("got %+v; want serverclose", a)
			}
			cl.expectRsp(cl.send("syslog", "<13>in flight"), "200 OK")
			cl.expectRsp(cl.send("close", ""), "200 OK")
			cl.expectEOF()
			if got := s.sink.got(); strings.Join(got, "|") != "<13>before|<13>in flight" {
				t.Errorf("records %q", got)
			}
			reason := map[bool]string{false: "shutdown", true: "idle"}[tc.idle]
			s.waitCounter(t, "relp_sessions_closed_total", reason, 1)
			if got := s.counter("relp_frames_after_serverclose_total", ""); got != 1 {
				t.Errorf("relp_frames_after_serverclose_total = %d; want 1", got)
			}
			if got := s.counter("relp_frames_acked_total", ""); got != 2 {
				t.Errorf("relp_frames_acked_total = %d; want 2", got)
			}
		})
	}
}

func TestRELPIdleSessionIsClosedWithServerclose(t *testing.T) {
	s := startRELP(t, "listen = \"127.0.0.1:0\"\ntimeout = 1", streamOptions{})
	c := dialRELP(t, s)
	c.open()
	c.expectServerclose()
	s.waitCounter(t, "relp_sessions_closed_total", "idle", 1)
}

func TestRELPClientVanishingIsCounted(t *testing.T) {
	s := startRELP(t, `listen = "127.0.0.1:0"`, streamOptions{})
	c := dialRELP(t, s)
	c.open()
	c.raw("2 syslog 10 only") // the rest never comes
	c.c.Close()
	s.waitCounter(t, "relp_sessions_closed_total", "peer_closed", 1)
	if got := s.sink.got(); len(got) != 0 {
		t.Errorf("records %q from a cut frame", got)
	}
}

// failingSink refuses every batch, as a pipeline that is stopping does.
type failingSink struct {
	streamSink
	puts atomic.Int64
}

func (s *failingSink) Put(b *flowgo.Batch) error {
	s.puts.Add(1)
	flowgo.PutBatch(b)
	return errors.New("pipeline stopping")
}

// When the pipeline refuses a batch, its frames are not answered: the
// session ends, and the sender keeps them for its next session.
func TestRELPFramesThePipelineRefusedAreNotAnswered(t *testing.T) {
	fs := &failingSink{}
	s := startRELP(t, `listen = "127.0.0.1:0"`, streamOptions{otherSink: fs})
	c := dialRELP(t, s)
	c.open()
	c.send("syslog", "refused")
	c.expectServerclose()
	if fs.puts.Load() != 1 {
		t.Errorf("%d Puts; want 1", fs.puts.Load())
	}
	s.waitCounter(t, "relp_sessions_closed_total", "pipeline_stopped", 1)
	if got := s.counter("relp_frames_acked_total", ""); got != 0 {
		t.Errorf("acked = %d; want 0", got)
	}
}

// A sender whose session broke resends, in a new session with new
// transaction numbers, the frames whose answers it had not read; those the
// input had queued are counted as resent (and delivered again).
func TestRELPResentFramesAreCounted(t *testing.T) {
	s := startRELP(t, `listen = "127.0.0.1:0"`, streamOptions{})
	c := dialRELP(t, s)
	c.open()
	for i := range 5 {
		c.expectRsp(c.send("syslog", fmt.Sprintf("msg %d", i)), "200 OK")
	}
	c.c.Close() // broken: no close command
	s.waitCounter(t, "relp_sessions_closed_total", "peer_closed", 1)

	c2 := dialRELP(t, s)
	c2.open()
	for _, m := range []string{"msg 3", "msg 4", "msg 5"} {
		c2.expectRsp(c2.send("syslog", m), "200 OK")
	}
	c2.expectRsp(c2.send("close", ""), "200 OK")
	if got := s.counter("relp_frames_resent_total", ""); got != 2 {
		t.Errorf("resent = %d; want 2", got)
	}
	if got := s.sink.got(); len(got) != 8 {
		t.Errorf("records %q; want 8, resent ones included", got)
	}

	// After a clean close nothing is held for the address.
	c3 := dialRELP(t, s)
	c3.open()
	c3.expectRsp(c3.send("syslog", "msg 5"), "200 OK")
	if got := s.counter("relp_frames_resent_total", ""); got != 2 {
		t.Errorf("resent = %d after a clean close; want still 2", got)
	}
}

// RELP's transaction numbers go from 999,999,999 back to 1.
func TestRELPTransactionNumberWraps(t *testing.T) {
	if got := relpNextTxnr(999_999_999); got != 1 {
		t.Errorf("after 999999999 comes %d; want 1", got)
	}
	if got := relpNextTxnr(41); got != 42 {
		t.Errorf("after 41 comes %d; want 42", got)
	}
	// A session at the wrap point, over a pipe.
	in, _, err := buildStream("relp", "", streamOptions{})
	if err != nil {
		t.Fatal(err)
	}
	r := in.(*RELP)
	srv, cli := net.Pipe()
	defer cli.Close()
	sink := &streamSink{}
	s := &relpSession{in: r, conn: srv, sc: &streamConn{Conn: srv}, peer: "pipe", sink: sink, expect: 999_999_999, open: true}
	s.bt = NewBatcher(r.c.Decoder, relpSessionSink{sink, s}, "input", 10, 1<<20)
	rr := newRELPReader(strings.NewReader(relpText(999_999_999, "syslog", "a")+relpText(1, "syslog", "b")+relpText(3, "syslog", "c")), 1000)
	answers := make(chan string, 1)
	go func() {
		b, _ := io.ReadAll(cli)
		answers <- string(b)
	}()
	var ends []int
	for {
		f, err := rr.next()
		if err != nil {
			break
		}
		end, _, _ := s.handle(f)
		ends = append(ends, end)
		if end >= 0 {
			break
		}
	}
	s.flush()
	srv.Close()
	if fmt.Sprint(ends) != fmt.Sprint([]int{-1, -1, relpEndBadTxnr}) {
		t.Errorf("ends %v; want the third frame (3 after 1) refused", ends)
	}
	if got, want := <-answers, "999999999 rsp 6 200 OK\n1 rsp 6 200 OK\n"; got != want {
		t.Errorf("answers %q; want %q", got, want)
	}
}

func TestRELPOverTLS(t *testing.T) {
	c := newCerts(t)
	s := startRELP(t, "relp_tls = true\n"+c.keys(true), streamOptions{})
	s.certs = c
	cl := dialRELP(t, s)
	cl.open()
	cl.expectRsp(cl.send("syslog", "over TLS"), "200 OK")
	cl.expectRsp(cl.send("close", ""), "200 OK")
	cl.expectEOF()
	if got := s.sink.got(); strings.Join(got, "|") != "over TLS" {
		t.Errorf("records %q", got)
	}

	// Mutual TLS: a client without a certificate is refused, counted and
	// logged as the tls input does it.
	conn, err := tls.Dial("tcp", s.addr, c.clientConfig(false))
	if err == nil {
		// TLS 1.3: the refusal arrives with the first read.
		_, err = conn.Read(make([]byte, 1))
		conn.Close()
	}
	if err == nil {
		t.Fatal("a client without a certificate got through")
	}
	if !waitFor(10*time.Second, func() bool { _, _, hs := s.relp().ConnCounts(); return hs == 1 }) {
		t.Fatal("the failed handshake was not counted")
	}
	if !waitFor(10*time.Second, func() bool { return strings.Contains(s.logs.String(), "TLS handshake failed") }) {
		t.Errorf("the refusal was not logged:\n%s", s.logs.String())
	}
}

func TestRELPKeys(t *testing.T) {
	for _, tc := range []struct {
		keys, wantErr string
	}{
		{`tls_cert = "x.pem"`, "tls_cert: is read only with relp_tls = true"},
		{"relp_tls = true\ntls_cert = \"/nonexistent.pem\"", "tls_cert"},
		{`relp_tls = "yes"`, "relp_tls"},
		{`listen = "nowhere"`, "listen"},
	} {
		_, _, err := buildStream("relp", tc.keys, streamOptions{})
		if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
			t.Errorf("keys %q: error %v; want one about %s", tc.keys, err, tc.wantErr)
		}
	}
	in, _, err := buildStream("relp", "", streamOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, addr := in.(Listener).ListenAddress(); addr != DefaultRELPListen {
		t.Errorf("default listen %q; want %q", addr, DefaultRELPListen)
	}
}

// max_connections applies as for the tcp input: the connection beyond it
// is reset at once, counted, and the open session is unaffected.
func TestRELPMaxConnections(t *testing.T) {
	s := startRELP(t, "listen = \"127.0.0.1:0\"\nmax_connections = 1", streamOptions{})
	c := dialRELP(t, s)
	c.open()
	// The reset may even beat the end of the dial.
	if extra, err := net.Dial("tcp", s.addr); err == nil {
		defer extra.Close()
		if err := readsEOF(extra, 10*time.Second); err != nil {
			t.Fatalf("second connection: %v", err)
		}
	}
	if !waitFor(10*time.Second, func() bool { _, refused, _ := s.relp().ConnCounts(); return refused == 1 }) {
		t.Fatal("the refused connection was not counted")
	}
	c.expectRsp(c.send("syslog", "still here"), "200 OK")
}

// With the queue full, what sessions decode and cannot hand over is held
// by the budget too: past it they stop reading (and answering), rather than
// each holding a batch of its own. Nothing is lost once the queue has room,
// and every frame is answered, in order.
func TestRELPRecordsWaitingForTheQueueStayWithinTheBudget(t *testing.T) {
	const (
		conns  = 20
		frames = 2000
		line   = 200
		budget = 1 << 20
	)
	mem := NewBuffers(budget)
	dec := &countingDecoder{}
	sink := &streamSink{block: make(chan struct{})}
	s := startRELP(t, `listen = "127.0.0.1:0"`, streamOptions{buffers: mem, sink: sink, decoder: dec})
	var wg sync.WaitGroup
	for i := range conns {
		c := dialRELP(t, s)
		c.open()
		wg.Go(func() {
			var b strings.Builder
			for j := range frames {
				b.WriteString(relpText(j+2, "syslog", fmt.Sprintf("%03d %06d %s", i, j, strings.Repeat("r", line-len("000 000000 ")))))
			}
			// Answers are read as they come, so that neither side's
			// socket buffers fill with them.
			done := make(chan struct{})
			go func() {
				defer close(done)
				for j := range frames {
					a, err := c.tryRead(2 * time.Minute)
					if err != nil || a.txnr != j+2 || a.data != "200 OK" {
						t.Errorf("session %d: answer %+v, %v; want %d rsp 200 OK", i, a, err, j+2)
						return
					}
				}
			}()
			if _, err := io.WriteString(c.c, b.String()); err != nil {
				t.Errorf("write: %v", err)
			}
			<-done
		})
	}
	checkBlockedWithinBudget(t, mem, dec, budget, line, conns*frames)
	if got := s.counter("relp_frames_acked_total", ""); got != 0 {
		t.Errorf("%d frames answered while the queue was blocked", got)
	}

	close(sink.block)
	wg.Wait()
	checkDeliveredInOrder(t, sink, mem, conns, frames, time.Minute, "session")
}

// slowSink takes its time to queue each batch, so that an answer sent
// before its record was queued would be seen.
type slowSink struct {
	streamSink
}

func (s *slowSink) Put(b *flowgo.Batch) error {
	time.Sleep(20 * time.Millisecond)
	return s.streamSink.Put(b)
}

// With a budget too small for a batch, taking budget for a record hands
// the batch over first; the answers sent then are those of the records in
// that batch, never the one waiting for room: when the client reads an
// answer, its record is queued.
func TestRELPAnswersOnlyQueuedRecordsUnderTheBudget(t *testing.T) {
	const frames = 40
	mem := NewBuffers(4 << 10) // less than one chargeStep: each record waits
	sink := &slowSink{}
	s := startRELP(t, `listen = "127.0.0.1:0"`, streamOptions{buffers: mem, otherSink: sink})
	c := dialRELP(t, s)
	c.open()
	var b strings.Builder
	for j := range frames {
		b.WriteString(relpText(j+2, "syslog", fmt.Sprintf("record %02d", j)))
	}
	c.raw(b.String())
	for j := range frames {
		c.expectRsp(j+2, "200 OK")
		got := sink.got()
		if len(got) <= j || got[j] != fmt.Sprintf("record %02d", j) {
			t.Fatalf("answer to record %d read with %d records queued: %q", j, len(got), got)
		}
	}
	if _, peak, _ := mem.Usage(); peak == 0 {
		t.Error("the budget was not used")
	}
}
