package input

import (
	"bytes"
	"compress/gzip"
	"compress/zlib"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"os/exec"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/flowgo/flowgo"
	"github.com/flowgo/flowgo/config"
	"github.com/flowgo/flowgo/decoder"
)

// keepFrame is a decoder for input tests: the record's message is the frame
// as received, and a frame starting with BAD is refused.
type keepFrame struct{}

func (keepFrame) Decode(frame []byte, r *flowgo.Record, a *flowgo.Arena) error {
	if len(frame) == 0 {
		return decoder.Errorf("keepframe", 1, "empty frame")
	}
	if bytes.HasPrefix(frame, []byte("BAD")) {
		return decoder.Errorf("keepframe", 1, "bad frame")
	}
	r.Msg = a.String(frame)
	r.FullMsg = r.Msg
	return nil
}

// testSink records what an input hands it. wait, when set, is called by
// Put before it takes a batch: a full queue, for as long as it blocks.
type testSink struct {
	wait func()

	mu      sync.Mutex
	msgs    []string
	peers   []string
	rejects []string
	tooLong int // rejects that match ErrFrameTooLong (the pipeline's reason="too_long")
	dropped map[string]int
	puts    int
}

func newTestSink() *testSink { return &testSink{dropped: map[string]int{}} }

func (s *testSink) Put(b *flowgo.Batch) error {
	if s.wait != nil {
		s.wait()
	}
	s.take(b)
	return nil
}

func (s *testSink) Prepare(*flowgo.Batch) {}

func (s *testSink) take(b *flowgo.Batch) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.puts++
	for i := range b.Records {
		r := &b.Records[i]
		s.msgs = append(s.msgs, strings.Clone(r.Msg))
		peer := ""
		for _, e := range r.SD {
			for _, p := range e.Params {
				peer += p.Name + "=" + p.Value.Str
			}
		}
		s.peers = append(s.peers, peer)
	}
	flowgo.PutBatch(b)
}

func (s *testSink) Reject(origin string, frame []byte, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.rejects = append(s.rejects, origin+": "+err.Error())
	if errors.Is(err, ErrFrameTooLong) {
		s.tooLong++
	}
}

func (s *testSink) Dropped(n int, reason string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.dropped[reason] += n
}

func (s *testSink) snapshot() (msgs, peers, rejects []string, dropped map[string]int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	d := map[string]int{}
	for k, v := range s.dropped {
		d[k] = v
	}
	return slices.Clone(s.msgs), slices.Clone(s.peers), slices.Clone(s.rejects), d
}

// events returns how many records, rejects and drops the sink has seen.
func (s *testSink) events() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := len(s.msgs) + len(s.rejects)
	for _, v := range s.dropped {
		n += v
	}
	return n
}

// udpRun is an input running in a test.
type udpRun struct {
	in     *udpInput
	sink   Sink
	addr   *net.UDPAddr
	cancel context.CancelFunc
	// handover stops the input as a reload that replaces it on the same
	// address does.
	handover func()
	done     chan error
}

// testConfig returns a Config for an input whose table holds keys.
func testConfig(t testing.TB, keys string) Config {
	t.Helper()
	if !strings.Contains(keys, "listen") {
		keys = "listen = \"127.0.0.1:0\"\n" + keys
	}
	f, err := config.Parse("test.toml", "[input]\ntype = \"udp\"\n"+keys)
	if err != nil {
		t.Fatal(err)
	}
	return Config{
		Section: f.Inputs[0], Name: "input", Decoder: keepFrame{},
		MaxMessageSize: 64 << 10, BatchRecords: 1024, BatchBytes: 1 << 20, Workers: 2,
		Log: slog.New(slog.NewTextHandler(io.Discard, nil)),
	}
}

// startUDP starts a udp input built from c, handing records to sink.
func startUDP(t testing.TB, c Config, sink Sink) *udpRun {
	t.Helper()
	typ, _, err := Lookup("udp")
	if err != nil {
		t.Fatal(err)
	}
	in, err := typ.New(c)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancelCause := context.WithCancelCause(context.Background())
	cancel := func() { cancelCause(nil) }
	r := &udpRun{in: in.(*udpInput), sink: sink, cancel: cancel, handover: func() { cancelCause(ErrHandover) },
		done: make(chan error, 1)}
	go func() { r.done <- in.Run(ctx, sink) }()
	actx, acancel := context.WithTimeout(ctx, 5*time.Second)
	defer acancel()
	if r.addr, err = r.in.Addr(actx); err != nil {
		cancel()
		t.Fatalf("input did not listen: %v (run: %v)", err, <-r.done)
	}
	t.Cleanup(func() {
		cancel()
		select {
		case <-r.done:
		case <-time.After(10 * time.Second):
			t.Error("Run did not return after cancel")
		}
	})
	return r
}

// stop ends the input and returns Run's error.
func (r *udpRun) stop(t testing.TB) error {
	t.Helper()
	r.cancel()
	select {
	case err := <-r.done:
		r.done <- err // for the cleanup
		return err
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after cancel")
		return nil
	}
}

func dial(t testing.TB, addr *net.UDPAddr) *net.UDPConn {
	t.Helper()
	c, err := net.DialUDP("udp", nil, addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func send(t testing.TB, c *net.UDPConn, datagrams ...[]byte) {
	t.Helper()
	for _, d := range datagrams {
		if _, err := c.Write(d); err != nil {
			t.Fatal(err)
		}
	}
}

// waitEvents waits until the sink has seen n events.
func waitEvents(t testing.TB, s *testSink, n int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for s.events() < n {
		if time.Now().After(deadline) {
			msgs, _, rejects, dropped := s.snapshot()
			t.Fatalf("timed out waiting for %d events: %d records, rejects %q, dropped %v", n, len(msgs), rejects, dropped)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func TestUDPDeliversEachDatagramAsOneRecord(t *testing.T) {
	tests := []struct {
		name, datagram, want string
	}{
		{"a plain message is kept", "<13>1 - host app - - - hello", "<13>1 - host app - - - hello"},
		{"a trailing newline is trimmed", "hello\n", "hello"},
		{"a trailing CR LF is trimmed", "hello\r\n", "hello"},
		{"a trailing NUL is trimmed", "hello\x00", "hello"},
		{"several trailing ends are trimmed", "hello\n\x00\r\n", "hello"},
		{"a newline inside stays", "two\nlines", "two\nlines"},
		{"leading spaces stay", "  indented", "  indented"},
	}
	sink := newTestSink()
	run := startUDP(t, testConfig(t, ""), sink)
	conn := dial(t, run.addr)
	var want []string
	for _, tt := range tests {
		send(t, conn, []byte(tt.datagram))
		want = append(want, tt.want)
	}
	waitEvents(t, sink, len(tests))
	if err := run.stop(t); err != nil {
		t.Fatal(err)
	}
	msgs, peers, rejects, dropped := sink.snapshot()
	// Two readers share the socket, so records may come out of order.
	for _, tt := range tests {
		if !slices.Contains(msgs, tt.want) {
			t.Errorf("%s: record %q not delivered; got %q", tt.name, tt.want, msgs)
		}
	}
	if len(msgs) != len(want) || len(rejects) != 0 || len(dropped) != 0 {
		t.Errorf("got %d records, rejects %q, dropped %v; want %d records only", len(msgs), rejects, dropped, len(want))
	}
	for _, p := range peers {
		if p != "" {
			t.Errorf("peer %q added without peer_field", p)
		}
	}
}

func TestUDPDeliversManyDatagramsFromSeveralSenders(t *testing.T) {
	sink := newTestSink()
	run := startUDP(t, testConfig(t, ""), sink)
	const senders, each = 4, 2000
	var wg sync.WaitGroup
	for s := range senders {
		conn := dial(t, run.addr)
		wg.Go(func() {
			for i := range each {
				if _, err := fmt.Fprintf(conn, "sender %d message %d\n", s, i); err != nil {
					t.Error(err)
					return
				}
				if i%200 == 0 {
					time.Sleep(time.Millisecond) // stay well inside the receive buffer
				}
			}
		})
	}
	wg.Wait()
	waitEvents(t, sink, senders*each)
	if err := run.stop(t); err != nil {
		t.Fatal(err)
	}
	msgs, _, rejects, dropped := sink.snapshot()
	slices.Sort(msgs)
	var want []string
	for s := range senders {
		for i := range each {
			want = append(want, fmt.Sprintf("sender %d message %d", s, i))
		}
	}
	slices.Sort(want)
	if !slices.Equal(msgs, want) {
		t.Errorf("got %d records (rejects %q, dropped %v); want each of %d once", len(msgs), rejects, dropped, len(want))
	}
}

func TestUDPPeerFieldHoldsTheSenderAddress(t *testing.T) {
	sink := newTestSink()
	run := startUDP(t, testConfig(t, `peer_field = "peer_addr"`), sink)
	conn := dial(t, run.addr)
	send(t, conn, []byte("hello"))
	waitEvents(t, sink, 1)
	_, peers, _, _ := sink.snapshot()
	if want := "peer_addr=" + conn.LocalAddr().String(); len(peers) != 1 || peers[0] != want {
		t.Errorf("peer params %q; want [%q]", peers, want)
	}
}

func TestUDPListensOnIPv6(t *testing.T) {
	sink := newTestSink()
	c := testConfig(t, `listen = "[::1]:0"`+"\npeer_field = \"peer\"")
	typ, _, _ := Lookup("udp")
	in, err := typ.New(c)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- in.Run(ctx, sink) }()
	addr, err := in.(*udpInput).Addr(ctx)
	if err != nil {
		cancel()
		t.Fatalf("cannot listen on [::1]: %v (run: %v); the test needs IPv6 on loopback", err, <-done)
	}
	conn := dial(t, addr)
	send(t, conn, []byte("over IPv6\n"))
	waitEvents(t, sink, 1)
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	msgs, peers, _, _ := sink.snapshot()
	if want := "peer=" + conn.LocalAddr().String(); !slices.Equal(msgs, []string{"over IPv6"}) || peers[0] != want || !strings.HasPrefix(peers[0], "peer=[::1]:") {
		t.Errorf("records %q peers %q; want [\"over IPv6\"] from %s", msgs, peers, want)
	}
}

func compress(t testing.TB, kind string, level int, data []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	var w io.WriteCloser
	var err error
	if kind == "zlib" {
		w, err = zlib.NewWriterLevel(&buf, level)
	} else {
		w, err = gzip.NewWriterLevel(&buf, level)
	}
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(data); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestUDPInflatesCompressedDatagrams(t *testing.T) {
	msg := `{"version":"1.1","host":"example.org","short_message":"A short message","level":5,"_some_info":"foo"}`
	tests := []struct {
		name     string
		datagram []byte
	}{
		{"zlib at the default level (78 9c)", compress(t, "zlib", zlib.DefaultCompression, []byte(msg))},
		{"zlib at the best level (78 da)", compress(t, "zlib", zlib.BestCompression, []byte(msg))},
		{"zlib without compression (78 01)", compress(t, "zlib", zlib.NoCompression, []byte(msg))},
		{"gzip", compress(t, "gzip", gzip.DefaultCompression, []byte(msg))},
		{"gzip with a trailing newline inside", compress(t, "gzip", gzip.DefaultCompression, []byte(msg+"\n"))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sink := newTestSink()
			run := startUDP(t, testConfig(t, ""), sink)
			send(t, dial(t, run.addr), tt.datagram)
			waitEvents(t, sink, 1)
			msgs, _, rejects, _ := sink.snapshot()
			if len(msgs) != 1 || msgs[0] != msg {
				t.Errorf("records %q rejects %q; want [%q]", msgs, rejects, msg)
			}
		})
	}
}

func TestUDPRejectsWithAReason(t *testing.T) {
	bomb := bytes.Repeat([]byte("A"), 1<<20)
	corruptZlib := compress(t, "zlib", zlib.DefaultCompression, []byte("some message that is long enough"))
	corruptZlib[len(corruptZlib)-1] ^= 0xff // the Adler-32 checksum
	corruptGzip := compress(t, "gzip", gzip.DefaultCompression, []byte("some message that is long enough"))
	corruptGzip[len(corruptGzip)-5] ^= 0xff // the CRC-32
	tests := []struct {
		name     string
		keys     string
		datagram []byte
		reason   string
	}{
		{"a zlib compression bomb is cut off soon after max_message_size", "", compress(t, "zlib", 9, bomb),
			"compressed (zlib) payload inflates to more than max_message_size (60000 bytes)"},
		{"a gzip compression bomb is cut off soon after max_message_size", "", compress(t, "gzip", 9, bomb),
			"compressed (gzip) payload inflates to more than max_message_size (60000 bytes)"},
		{"a compression bomb is cut off at udp_max_inflated_size when truncating", "udp_max_inflated_size = 100000\n#truncate", compress(t, "gzip", 9, bomb),
			"compressed (gzip) payload inflates to more than udp_max_inflated_size (100000 bytes)"},
		{"udp_max_inflated_size lowers the cap", "udp_max_inflated_size = 100", compress(t, "zlib", 9, bytes.Repeat([]byte("B"), 101)),
			"compressed (zlib) payload inflates to more than udp_max_inflated_size (100 bytes)"},
		{"a zlib payload with a bad checksum is corrupt", "", corruptZlib, "corrupt compressed (zlib) payload: zlib: invalid checksum"},
		{"a gzip payload with a bad checksum is corrupt", "", corruptGzip, "corrupt compressed (gzip) payload: gzip: invalid checksum"},
		{"a cut zlib payload is corrupt", "", compress(t, "zlib", 9, bomb)[:40], "corrupt compressed (zlib) payload: truncated"},
		{"a zlib header followed by garbage is corrupt", "", []byte("\x78\x9cthis is not deflate data at all"), "corrupt compressed (zlib) payload"},
		{"an empty datagram is rejected", "", []byte{}, "empty datagram"},
		{"a datagram of only a line end is rejected", "", []byte("\r\n"), "empty datagram"},
		{"a datagram over max_message_size is rejected", "", bytes.Repeat([]byte("x"), 60000+1), "frame longer than max_message_size (60000 bytes): 60001 bytes"},
		{"an inflated payload over max_message_size is rejected", "", compress(t, "gzip", 9, bytes.Repeat([]byte("y"), 60000+inflateSlack)),
			"frame longer than max_message_size (60000 bytes): 60016 bytes"},
		{"an inflated payload with line ends past max_message_size is kept", "", compress(t, "gzip", 9, append(bytes.Repeat([]byte("y"), 60000), "\r\n"...)),
			""},
		{"a decoder error is reported", "", []byte("BAD frame"), "keepframe: bad frame [col 1]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sink := newTestSink()
			c := testConfig(t, tt.keys)
			c.MaxMessageSize = 60000
			c.Truncate = strings.Contains(tt.keys, "#truncate")
			run := startUDP(t, c, sink)
			conn := dial(t, run.addr)
			send(t, conn, tt.datagram, []byte("after"))
			waitEvents(t, sink, 2)
			msgs, _, rejects, _ := sink.snapshot()
			if tt.reason == "" {
				if len(rejects) != 0 || len(msgs) != 2 {
					t.Errorf("records %d, rejects %q; want 2 records", len(msgs), rejects)
				}
				return
			}
			wantOrigin := "peer " + conn.LocalAddr().String() + ": "
			if len(rejects) != 1 || !strings.HasPrefix(rejects[0], wantOrigin+tt.reason) {
				t.Errorf("rejects %q; want one starting %q", rejects, wantOrigin+tt.reason)
			}
			if !slices.Equal(msgs, []string{"after"}) {
				t.Errorf("records %q; want only the next datagram", msgs)
			}
		})
	}
}

func TestUDPTruncatesWhenAsked(t *testing.T) {
	c := testConfig(t, "")
	c.MaxMessageSize, c.Truncate = 10, true
	sink := newTestSink()
	run := startUDP(t, c, sink)
	conn := dial(t, run.addr)
	send(t, conn, []byte("0123456789abcdef"), compress(t, "zlib", 9, []byte("ABCDEFGHIJKLMNOP")))
	waitEvents(t, sink, 2)
	msgs, _, rejects, _ := sink.snapshot()
	slices.Sort(msgs)
	if !slices.Equal(msgs, []string{"0123456789", "ABCDEFGHIJ"}) || len(rejects) != 0 {
		t.Errorf("records %q rejects %q; want both cut to 10 bytes", msgs, rejects)
	}
}

// A full queue makes the readers wait, not drop: what arrives meanwhile
// waits in the socket's receive buffer and is delivered, in full, once the
// queue has room again. (Overflowing that buffer is
// TestUDPKernelDropsAreCounted.)
func TestUDPFullQueueLosesNothingTheSocketBufferHolds(t *testing.T) {
	b := startBlockedUDP(t, "")
	g, sink, run, conn, primes := b.gate, b.sink, b.run, b.conn, b.primes
	const n = 2000 // about 2.5 MB of the socket's buffer on loopback
	for i := range n {
		send(t, conn, fmt.Appendf(nil, "while full %d", i))
	}
	time.Sleep(50 * time.Millisecond)
	g.release()
	waitEvents(t, sink, primes+n)
	if err := run.stop(t); err != nil {
		t.Fatal(err)
	}
	msgs, _, rejects, dropped := sink.snapshot()
	if len(msgs) != primes+n || len(dropped) != 0 || len(rejects) != 0 {
		t.Errorf("delivered %d records, dropped %v, rejected %d; want all %d primes and %d sent while the queue was full",
			len(msgs), dropped, len(rejects), primes, n)
	}
}

// blockedUDP is a udp input whose every reader is blocked in Put behind a
// gate (a full queue), each holding one of primes datagrams: what is sent
// now waits in the socket.
type blockedUDP struct {
	gate   *gate
	sink   *testSink
	run    *udpRun
	conn   *net.UDPConn
	primes int
}

func startBlockedUDP(t *testing.T, toml string) blockedUDP {
	t.Helper()
	b := blockedUDP{gate: newGate(), sink: newTestSink()}
	b.sink.wait = b.gate.wait
	c := testConfig(t, toml)
	b.run = startUDP(t, c, b.sink)
	b.conn = dial(t, b.run.addr)
	b.gate.waitBlocked(t, udpReaders(c.Workers), func() {
		send(t, b.conn, fmt.Appendf(nil, "prime %d", b.primes))
		b.primes++
	})
	return b
}

// gate is a full queue: wait blocks readers until release, and counts how
// many are blocked.
type gate struct {
	mu      sync.Mutex
	cond    *sync.Cond
	open    bool
	waiting int
}

func newGate() *gate {
	g := &gate{}
	g.cond = sync.NewCond(&g.mu)
	return g
}

func (g *gate) wait() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.waiting++
	g.cond.Broadcast()
	for !g.open {
		g.cond.Wait()
	}
	g.waiting--
}

func (g *gate) waitBlocked(t testing.TB, n int, poke func()) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		g.mu.Lock()
		w := g.waiting
		g.mu.Unlock()
		if w >= n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d readers blocked; want %d", w, n)
		}
		poke()
		time.Sleep(20 * time.Millisecond)
	}
}

func (g *gate) release() {
	g.mu.Lock()
	g.open = true
	g.cond.Broadcast()
	g.mu.Unlock()
}

func TestUDPRunFailsWhenThePortIsTaken(t *testing.T) {
	taken, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	typ, _, _ := Lookup("udp")
	in, err := typ.New(testConfig(t, fmt.Sprintf("listen = %q", taken.LocalAddr().String())))
	if err != nil {
		t.Fatal(err)
	}
	err = in.Run(context.Background(), newTestSink())
	if err == nil || !strings.Contains(err.Error(), "address already in use") {
		t.Errorf("Run: %v; want address already in use", err)
	}
}

func TestUDPConfigErrors(t *testing.T) {
	tests := []struct{ name, keys, want string }{
		{"listen without a port", `listen = "127.0.0.1"`, `test.toml:4: input.listen: "127.0.0.1" is not an address`},
		{"listen with a bad port", `listen = "127.0.0.1:syslog"`, `input.listen: port "syslog" is not a number`},
		{"a negative receive buffer", `udp_recv_buffer = -1`, "input.udp_recv_buffer: must be between 0"},
		{"a zero inflate cap", `udp_max_inflated_size = 0`, "input.udp_max_inflated_size: must be between 1"},
		{"a zero chunk timeout", `gelf_chunk_timeout = "0s"`, "input.gelf_chunk_timeout: must be a positive duration"},
		{"too many chunks allowed", `gelf_max_chunks = 256`, "input.gelf_max_chunks: must be between 1 and 255"},
		{"no pending messages allowed", `gelf_max_pending = 0`, "input.gelf_max_pending: must be at least 1"},
		{"a pending budget below one message", `gelf_max_pending_bytes = 1000`, "input.gelf_max_pending_bytes: must be between"},
		{"a string for a number", `udp_recv_buffer = "8M"`, "wrong type: expected an integer"},
	}
	typ, _, _ := Lookup("udp")
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := typ.New(testConfig(t, "format = \"gelf\"\n"+tt.keys))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("New: %v; want an error containing %q", err, tt.want)
			}
		})
	}
}

func TestUDPWarnsAboutIgnoredKeys(t *testing.T) {
	c := testConfig(t, "framing = \"nul\"\ngelf_max_chunks = 10")
	typ, _, _ := Lookup("udp")
	if _, err := typ.New(c); err != nil {
		t.Fatal(err)
	}
	w := strings.Join(c.Section.File().Warnings(), "\n")
	for _, want := range []string{"input.framing: ignored: over UDP one datagram is one record", `input.gelf_max_chunks: ignored: chunked GELF is reassembled only with format = "gelf"`} {
		if !strings.Contains(w, want) {
			t.Errorf("warnings %q; want %q", w, want)
		}
	}
}

func TestUDPFromLogger(t *testing.T) {
	logger, err := exec.LookPath("logger")
	if err != nil {
		t.Fatal("logger not found: install util-linux (apt-get install bsdutils) to run this test")
	}
	tests := []struct {
		name string
		flag string
		want *regexp.Regexp
	}{
		{"RFC 5424", "--rfc5424", regexp.MustCompile(`^<13>1 \d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+[+-]\d\d:\d\d \S+ flowgo-test - - \[timeQuality [^]]*\] hello from logger 5424$`)},
		{"RFC 3164", "--rfc3164", regexp.MustCompile(`^<13>[A-Z][a-z]{2} [ 1-3]\d \d\d:\d\d:\d\d \S+ flowgo-test: hello from logger 3164$`)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sink := newTestSink()
			run := startUDP(t, testConfig(t, ""), sink)
			msg := "hello from logger " + strings.TrimPrefix(tt.flag, "--rfc")
			out, err := exec.Command(logger, "--udp", "--server", "127.0.0.1", "--port", fmt.Sprint(run.addr.Port),
				tt.flag, "-t", "flowgo-test", msg).CombinedOutput()
			if err != nil {
				t.Fatalf("logger: %v: %s", err, out)
			}
			waitEvents(t, sink, 1)
			msgs, _, _, _ := sink.snapshot()
			if len(msgs) != 1 || !tt.want.MatchString(msgs[0]) {
				t.Errorf("records %q; want one matching %s", msgs, tt.want)
			}
		})
	}
}

func TestUDPRunEndsWhenTheContextIsAlreadyDone(t *testing.T) {
	typ, _, _ := Lookup("udp")
	in, err := typ.New(testConfig(t, `listen = "127.0.0.1:0"`))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	done := make(chan error, 1)
	go func() { done <- in.Run(ctx, newTestSink()) }()
	select {
	case err := <-done:
		if err != nil && !errors.Is(err, context.Canceled) {
			t.Errorf("Run: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return")
	}
}

func TestUDPReassemblesChunkedGELF(t *testing.T) {
	msg := []byte(`{"version":"1.1","host":"example.org","short_message":"` + strings.Repeat("long ", 2000) + `"}`)
	plain := splitGELF(1, msg, 1400)
	zipped := splitGELF(2, compress(t, "gzip", 9, msg), 20)
	zlibbed := splitGELF(3, compress(t, "zlib", 9, append(slices.Clone(msg), '\n')), 20)
	reversed := slices.Clone(plain)
	slices.Reverse(reversed)
	tests := []struct {
		name string
		dgs  [][]byte
	}{
		{"chunks in order", plain},
		{"chunks in reverse order", reversed},
		{"a duplicated chunk", append(slices.Clone(plain[:3]), plain[1:]...)},
		{"a gzip payload in chunks", zipped},
		{"a zlib payload in chunks, with a trailing newline", zlibbed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sink := newTestSink()
			run := startUDP(t, testConfig(t, `format = "gelf"`), sink)
			send(t, dial(t, run.addr), tt.dgs...)
			waitEvents(t, sink, 1)
			if err := run.stop(t); err != nil {
				t.Fatal(err)
			}
			msgs, _, rejects, dropped := sink.snapshot()
			if len(msgs) != 1 || msgs[0] != string(msg) || len(rejects) != 0 || len(dropped) != 0 {
				t.Errorf("%d records (%d bytes), rejects %q, dropped %v; want the %d-byte message once", len(msgs), len(strings.Join(msgs, "")), rejects, dropped, len(msg))
			}
		})
	}
}

func TestUDPChunkedGELFFromTwoSendersInterleaved(t *testing.T) {
	sink := newTestSink()
	run := startUDP(t, testConfig(t, "format = \"gelf\"\npeer_field = \"from\""), sink)
	a, b := dial(t, run.addr), dial(t, run.addr)
	msgA := []byte(`{"short_message":"` + strings.Repeat("A", 5000) + `"}`)
	msgB := []byte(`{"short_message":"` + strings.Repeat("B", 5000) + `"}`)
	ca, cb := splitGELF(99, msgA, 500), splitGELF(99, msgB, 500) // the same message id
	for i := range ca {
		send(t, a, ca[i])
		send(t, b, cb[len(cb)-1-i])
	}
	waitEvents(t, sink, 2)
	msgs, peers, rejects, _ := sink.snapshot()
	got := map[string]string{}
	for i := range msgs {
		got[peers[i]] = msgs[i]
	}
	if got["from="+a.LocalAddr().String()] != string(msgA) || got["from="+b.LocalAddr().String()] != string(msgB) || len(rejects) != 0 {
		t.Errorf("%d records from %q, rejects %q; want each sender's message from its address", len(msgs), peers, rejects)
	}
}

func TestUDPChunkedGELFLosses(t *testing.T) {
	msg := []byte(`{"short_message":"` + strings.Repeat("m", 3000) + `"}`)
	chunks := splitGELF(5, msg, 300)
	tests := []struct {
		name        string
		dgs         [][]byte
		wantRejects []string
		wantDropped map[string]int
	}{
		{"a missing chunk expires and is counted", chunks[1:], nil, map[string]int{dropChunkTimeout: 1}},
		{"a message of too many chunks is rejected chunk by chunk", splitGELF(6, msg, 20), []string{
			"chunked GELF: message of 151 chunks exceeds gelf_max_chunks (128)"}, nil},
		{"a chunk with a bad sequence number is rejected", [][]byte{gelfChunk(7, 2, 2, []byte("x"))}, []string{
			"chunked GELF: sequence number 2 out of range for 2 chunks"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sink := newTestSink()
			run := startUDP(t, testConfig(t, "format = \"gelf\"\ngelf_chunk_timeout = \"200ms\""), sink)
			conn := dial(t, run.addr)
			send(t, conn, tt.dgs...)
			send(t, conn, []byte("after"))
			want := 1 + len(tt.wantRejects)*len(tt.dgs)
			for _, n := range tt.wantDropped {
				want += n
			}
			waitEvents(t, sink, want)
			if err := run.stop(t); err != nil {
				t.Fatal(err)
			}
			msgs, _, rejects, dropped := sink.snapshot()
			if !slices.Equal(msgs, []string{"after"}) {
				t.Errorf("records %q; want only the datagram after", msgs)
			}
			for _, r := range rejects {
				if !strings.HasSuffix(r, tt.wantRejects[0]) {
					t.Errorf("reject %q; want %q", r, tt.wantRejects[0])
				}
			}
			if len(rejects) != len(tt.wantRejects)*len(tt.dgs) {
				t.Errorf("%d rejects; want one per chunk", len(rejects))
			}
			if !maps.Equal(dropped, tt.wantDropped) {
				t.Errorf("dropped %v; want %v", dropped, tt.wantDropped)
			}
		})
	}
}

func TestUDPIncompleteChunkedGELFIsCountedAtShutdown(t *testing.T) {
	sink := newTestSink()
	run := startUDP(t, testConfig(t, `format = "gelf"`), sink)
	conn := dial(t, run.addr)
	send(t, conn, gelfChunk(11, 0, 3, []byte("one of three")), []byte("after"))
	waitEvents(t, sink, 1)
	if err := run.stop(t); err != nil {
		t.Fatal(err)
	}
	if _, _, _, dropped := sink.snapshot(); dropped[dropChunkShutdown] != 1 {
		t.Errorf("dropped %v; want the incomplete message counted at shutdown", dropped)
	}
}

func TestUDPChunksAreNotReassembledForOtherFormats(t *testing.T) {
	sink := newTestSink()
	run := startUDP(t, testConfig(t, `format = "rfc5424"`), sink)
	chunk := gelfChunk(12, 0, 2, []byte("half"))
	send(t, dial(t, run.addr), chunk)
	waitEvents(t, sink, 1)
	// The decoder gets the chunk as it is, as in Flowgger (where decoding fails).
	if msgs, _, _, _ := sink.snapshot(); len(msgs) != 1 || msgs[0] != string(chunk) {
		t.Errorf("records %q; want the raw chunk", msgs)
	}
}

func TestUDPDualStackSocketReportsIPv4SendersAsIPv4(t *testing.T) {
	sink := newTestSink()
	run := startUDP(t, testConfig(t, "listen = \"[::]:0\"\npeer_field = \"peer\""), sink)
	conn := dial(t, &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: run.addr.Port})
	send(t, conn, []byte("from IPv4"))
	waitEvents(t, sink, 1)
	if _, peers, _, _ := sink.snapshot(); len(peers) != 1 || peers[0] != "peer="+conn.LocalAddr().String() {
		t.Errorf("peers %q; want [peer=%s]", peers, conn.LocalAddr())
	}
}
