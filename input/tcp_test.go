package input

import (
	"context"
	"errors"
	"fmt"
	"net"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/flowgo/flowgo"
	"github.com/flowgo/flowgo/config"
)

// framingCases are streams in every framing and the frames they hold.
var framingCases = []struct {
	name    string
	framing flowgo.Framing
	stream  string
	want    []string
}{
	{"line framing cuts at LF and drops a CR before it", flowgo.FramingLine,
		"<13>1 first\nsecond\r\n\nthird with spaces\n", []string{"<13>1 first", "second", "third with spaces"}},
	{"nul framing cuts at NUL bytes and keeps LFs", flowgo.FramingNUL,
		"{\"a\":1}\x00multi\nline\x00\x00last\x00", []string{"{\"a\":1}", "multi\nline", "last"}},
	{"syslen framing reads octet counts", flowgo.FramingSyslen,
		"5 hello11 hello world3 a\nb4 end\n", []string{"hello", "hello world", "a\nb", "end"}},
	{"auto framing picks line framing for a frame starting with <", flowgo.FramingAuto,
		"<13>1 x\n<14>1 y\n", []string{"<13>1 x", "<14>1 y"}},
	{"auto framing picks octet counting for a frame starting with a digit", flowgo.FramingAuto,
		"7 <13>1 x7 <14>1 y", []string{"<13>1 x", "<14>1 y"}},
}

// testFramings sends every framing case whole and in pieces of 1 and 3
// bytes (each piece a read of its own), over tcp or tls.
func testFramings(t *testing.T, typ string) {
	for _, tc := range framingCases {
		for _, piece := range []int{0, 1, 3} {
			t.Run(fmt.Sprintf("%s, written in pieces of %d bytes", tc.name, piece), func(t *testing.T) {
				var s *testServer
				if typ == "tls" {
					s = startTLS(t, false, "", streamOptions{framing: tc.framing})
				} else {
					s = startStream(t, typ, "listen = \"127.0.0.1:0\"", streamOptions{framing: tc.framing})
				}
				c := s.dial(t)
				if tc, ok := c.(*net.TCPConn); ok {
					tc.SetNoDelay(true)
				}
				sendPieces(t, c, tc.stream, piece)
				closeWrite(t, c)
				s.sink.waitRecords(t, len(tc.want), 5*time.Second)
				if !waitFor(5*time.Second, func() bool { return s.openConns() == 0 }) {
					t.Fatal("the connection is still open after the client closed it")
				}
				if got := s.sink.got(); !slices.Equal(got, tc.want) {
					t.Errorf("records = %q; want %q", got, tc.want)
				}
				if rj := s.sink.gotRejects(); len(rj) != 0 {
					t.Errorf("rejects = %v; want none", rj)
				}
			})
		}
	}
}

func TestTCPDeliversEveryFraming(t *testing.T) { testFramings(t, "tcp") }

func TestTCPFrameLongerThanMaxMessageSize(t *testing.T) {
	long := strings.Repeat("x", 40)
	for _, tc := range []struct {
		name       string
		framing    flowgo.Framing
		stream     string
		truncate   bool
		want       []string
		wantReject string
	}{
		{"a long line is rejected, its first max bytes kept, and the next line delivered", flowgo.FramingLine,
			"short\n" + long + "\nafter\n", false, []string{"short", "after"}, long[:16]},
		{"a long line is truncated to max bytes when truncating", flowgo.FramingLine,
			"short\n" + long + "\nafter\n", true, []string{"short", long[:16], "after"}, ""},
		{"a long counted frame is rejected and skipped by its count", flowgo.FramingSyslen,
			"5 short40 " + long + "5 after", false, []string{"short", "after"}, long[:16]},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := startStream(t, "tcp", `listen = "127.0.0.1:0"`, streamOptions{framing: tc.framing, maxSize: 16, truncate: tc.truncate})
			c := s.dial(t)
			sendPieces(t, c, tc.stream, 0)
			closeWrite(t, c)
			s.sink.waitRecords(t, len(tc.want), 5*time.Second)
			if tc.wantReject != "" {
				s.sink.waitRejects(t, 1, 5*time.Second)
			}
			if got := s.sink.got(); !slices.Equal(got, tc.want) {
				t.Errorf("records = %q; want %q", got, tc.want)
			}
			rj := s.sink.gotRejects()
			if tc.wantReject == "" {
				if len(rj) != 0 {
					t.Errorf("rejects = %v; want none", rj)
				}
				return
			}
			if len(rj) != 1 || rj[0].frame != tc.wantReject || !strings.Contains(rj[0].err.Error(), ErrFrameTooLong.Error()) {
				t.Fatalf("rejects = %v; want %q with ErrFrameTooLong", rj, tc.wantReject)
			}
			if !strings.HasPrefix(rj[0].origin, "peer 127.0.0.1:") {
				t.Errorf("origin = %q; want the peer address", rj[0].origin)
			}
		})
	}
}

func TestTCPBadOctetCountIsRejectedAndTheStreamGoesOn(t *testing.T) {
	s := startStream(t, "tcp", `listen = "127.0.0.1:0"`, streamOptions{framing: flowgo.FramingSyslen})
	c := s.dial(t)
	sendPieces(t, c, "5 hellox3 abc\n3 def", 0)
	closeWrite(t, c)
	s.sink.waitRecords(t, 2, 5*time.Second)
	s.sink.waitRejects(t, 1, 5*time.Second)
	if got, want := s.sink.got(), []string{"hello", "def"}; !slices.Equal(got, want) {
		t.Errorf("records = %q; want %q", got, want)
	}
	rj := s.sink.gotRejects()
	var fe *FrameError
	if len(rj) != 1 || rj[0].frame != "x3 abc" || !errors.As(rj[0].err, &fe) || !strings.Contains(fe.Reason, "octet count") {
		t.Fatalf("rejects = %v; want frame %q with an octet count error", rj, "x3 abc")
	}
	if want := "peer " + c.LocalAddr().String() + " frame 2"; rj[0].origin != want {
		t.Errorf("origin = %q; want %q", rj[0].origin, want)
	}
}

func TestTCPDecodeErrorsAreRejectedWithPeerAndLine(t *testing.T) {
	s := startStream(t, "tcp", `listen = "127.0.0.1:0"`, streamOptions{})
	c := s.dial(t)
	sendPieces(t, c, "good 1\nBAD 2\ngood 3\n", 0)
	closeWrite(t, c)
	s.sink.waitRecords(t, 2, 5*time.Second)
	s.sink.waitRejects(t, 1, 5*time.Second)
	rj := s.sink.gotRejects()
	if want := "peer " + c.LocalAddr().String() + " line 2"; rj[0].origin != want || rj[0].frame != "BAD 2" {
		t.Errorf("reject = %q %q; want %q %q", rj[0].origin, rj[0].frame, want, "BAD 2")
	}
}

func TestTCPClientDisconnectingMidFrame(t *testing.T) {
	for _, tc := range []struct {
		name       string
		framing    flowgo.Framing
		stream     string
		want       []string
		wantReject string
	}{
		{"an unterminated last line is delivered, as Flowgger does", flowgo.FramingLine, "a\nb\npart", []string{"a", "b", "part"}, ""},
		{"an incomplete counted frame is rejected", flowgo.FramingSyslen, "1 a1 b10 par", []string{"a", "b"}, "10 par"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := startStream(t, "tcp", `listen = "127.0.0.1:0"`, streamOptions{framing: tc.framing})
			c := s.dial(t)
			sendPieces(t, c, tc.stream, 0)
			c.Close()
			s.sink.waitRecords(t, len(tc.want), 5*time.Second)
			if !waitFor(5*time.Second, func() bool { return s.openConns() == 0 }) {
				t.Fatal("the connection did not end")
			}
			if got := s.sink.got(); !slices.Equal(got, tc.want) {
				t.Errorf("records = %q; want %q", got, tc.want)
			}
			rj := s.sink.gotRejects()
			if tc.wantReject == "" && len(rj) != 0 || tc.wantReject != "" && (len(rj) != 1 || rj[0].frame != tc.wantReject) {
				t.Errorf("rejects = %v; want %q", rj, tc.wantReject)
			}
		})
	}
}

func TestTCPThousandConcurrentConnectionsAreAllDelivered(t *testing.T) {
	const conns, lines = 1000, 10
	s := startStream(t, "tcp", "listen = \"127.0.0.1:0\"\npeer_field = \"peer\"", streamOptions{})
	peers := make([]string, conns)
	var wg sync.WaitGroup
	errs := make(chan error, conns)
	start := make(chan struct{})
	for i := range conns {
		wg.Go(func() {
			c, err := net.Dial("tcp", s.addr)
			if err != nil {
				errs <- err
				return
			}
			defer c.Close()
			peers[i] = c.LocalAddr().String()
			<-start // every connection is open before any sends
			var b strings.Builder
			for j := range lines {
				fmt.Fprintf(&b, "conn %d line %d\n", i, j)
			}
			if _, err := c.Write([]byte(b.String())); err != nil {
				errs <- err
			}
		})
	}
	if !waitFor(10*time.Second, func() bool { return s.openConns() == conns || len(errs) > 0 }) {
		t.Fatalf("%d connections open; want %d", s.openConns(), conns)
	}
	close(start)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	s.sink.waitRecords(t, conns*lines, 10*time.Second)

	next := make([]int, conns)
	got := s.sink.got()
	for k, m := range got {
		var i, j int
		if _, err := fmt.Sscanf(m, "conn %d line %d", &i, &j); err != nil {
			t.Fatalf("record %q: %v", m, err)
		}
		if j != next[i] {
			t.Fatalf("connection %d: line %d arrived when %d was due", i, j, next[i])
		}
		next[i]++
		if p := s.sink.peers[k]; p != peers[i] {
			t.Fatalf("record %q has peer %q; want %q", m, p, peers[i])
		}
	}
	if len(got) != conns*lines {
		t.Errorf("%d records; want %d", len(got), conns*lines)
	}
}

func TestTCPIdleConnectionIsClosedAfterTimeout(t *testing.T) {
	testIdleTimeout(t, startStream(t, "tcp", "listen = \"127.0.0.1:0\"\ntimeout = 1", streamOptions{}))
}

func testIdleTimeout(t *testing.T, s *testServer) {
	c := s.dial(t)
	sendPieces(t, c, "before idling\n", 0)
	began := time.Now()
	if err := readsEOF(c, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(began); d < 900*time.Millisecond {
		t.Errorf("closed after %v; want about the 1s timeout", d)
	}
	s.sink.waitRecords(t, 1, time.Second)
	if got := s.sink.got(); !slices.Equal(got, []string{"before idling"}) {
		t.Errorf("records = %q", got)
	}
	if !waitFor(time.Second, func() bool { return strings.Contains(s.logs.String(), "closing idle connection") }) {
		t.Errorf("no log line about the idle connection; logs:\n%s", s.logs)
	}
	if logs := s.logs.String(); !strings.Contains(logs, c.LocalAddr().String()) {
		t.Errorf("the log does not name the peer %s:\n%s", c.LocalAddr(), logs)
	}
}

func TestTCPMaxConnectionsRefusesTheNextOne(t *testing.T) {
	s := startStream(t, "tcp", "listen = \"127.0.0.1:0\"\nmax_connections = 2", streamOptions{})
	a, b := s.dial(t), s.dial(t)
	sendPieces(t, a, "from a\n", 0)
	sendPieces(t, b, "from b\n", 0)
	s.sink.waitRecords(t, 2, 5*time.Second)

	// The third is accepted and reset at once: the dial itself may
	// already see the reset, else the first read does.
	if extra, err := net.Dial("tcp", s.addr); err == nil {
		defer extra.Close()
		if err := readsEOF(extra, 5*time.Second); err != nil {
			t.Fatalf("third connection: %v", err)
		}
	} else if !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("third connection: %v; want a reset", err)
	}
	if !waitFor(5*time.Second, func() bool { return s.st.Refused() == 1 }) {
		t.Fatalf("Refused() = %d; want 1", s.st.Refused())
	}
	if got := s.st.Refused(); got != 1 {
		t.Errorf("Refused() = %d; want 1", got)
	}
	if !waitFor(time.Second, func() bool { return strings.Contains(s.logs.String(), "max_connections") }) {
		t.Errorf("no log line about the refused connection:\n%s", s.logs)
	}
	// A slot freed is a slot usable again.
	a.Close()
	if !waitFor(5*time.Second, func() bool { return s.openConns() == 1 }) {
		t.Fatal("the closed connection was not released")
	}
	again := s.dial(t)
	sendPieces(t, again, "from again\n", 0)
	s.sink.waitRecords(t, 3, 5*time.Second)
	if got := s.sink.got(); got[2] != "from again" {
		t.Errorf("records = %q", got)
	}
}

func TestTCPBackpressureStopsReadingAndKeepsMemoryBounded(t *testing.T) {
	testBackpressure(t, func(sink *streamSink) *testServer {
		return startStream(t, "tcp", `listen = "127.0.0.1:0"`, streamOptions{sink: sink})
	})
}

// testBackpressure blocks the sink while a client writes as fast as it
// can: the client must stall, the heap must not grow with what it offers,
// and every line written must arrive, in order, once the sink unblocks.
func testBackpressure(t *testing.T, startWith func(*streamSink) *testServer) {
	const line = 200
	var (
		nextSeq atomic.Int64
		bad     atomic.Value
	)
	sink := &streamSink{block: make(chan struct{}), check: func(r *flowgo.Record) {
		seq, err := strconv.ParseInt(r.Msg[:10], 10, 64)
		if want := nextSeq.Add(1) - 1; err != nil || seq != want || len(r.Msg) != line-1 {
			bad.CompareAndSwap(nil, fmt.Sprintf("record %q arrived when %d was due", r.Msg[:20], want))
		}
	}}
	s := startWith(sink)

	runtime.GC()
	runtime.GC() // the second one empties the batch pools of earlier tests
	var before runtime.MemStats
	runtime.ReadMemStats(&before)

	c := s.dial(t)
	var written atomic.Int64 // lines the client has written
	stopWriting := make(chan struct{})
	writerDone := make(chan error, 1)
	go func() {
		pad := strings.Repeat("p", line-1-10) + "\n"
		buf := make([]byte, 0, 64<<10)
		for seq := int64(0); ; {
			buf = buf[:0]
			for len(buf)+line <= cap(buf) {
				buf = fmt.Appendf(buf, "%010d", seq+int64(len(buf)/line))
				buf = append(buf, pad...)
			}
			select {
			case <-stopWriting:
				writerDone <- nil
				return
			default:
			}
			if _, err := c.Write(buf); err != nil {
				writerDone <- err
				return
			}
			seq += int64(len(buf) / line)
			written.Store(seq)
		}
	}()

	// The writer stalls: the input stopped reading, TCP pushed back.
	var last int64 = -1
	stalled := waitFor(10*time.Second, func() bool {
		time.Sleep(200 * time.Millisecond)
		w := written.Load()
		same := w == last && w > 0
		last = w
		return same
	})
	if !stalled {
		t.Fatalf("the writer never stalled: %d lines written", written.Load())
	}
	runtime.GC()
	var during runtime.MemStats
	runtime.ReadMemStats(&during)
	held := int64(during.HeapAlloc) - int64(before.HeapAlloc)
	t.Logf("writer stalled after %d lines (%.1f MiB) with the sink blocked; heap grew %.2f MiB",
		written.Load(), float64(written.Load()*line)/(1<<20), float64(held)/(1<<20))
	if sink.records.Load() != 0 || sink.waiting.Load() != 1 {
		t.Fatalf("sink: %d records, %d Puts waiting; want 0 and 1", sink.records.Load(), sink.waiting.Load())
	}
	if held > 8<<20 {
		t.Errorf("heap grew %d bytes while blocked; want under 8 MiB", held)
	}

	// Unblocked, the writer goes on; every line written arrives, in order.
	close(sink.block)
	time.Sleep(100 * time.Millisecond)
	close(stopWriting)
	if err := <-writerDone; err != nil {
		t.Fatal(err)
	}
	closeWrite(t, c)
	total := written.Load()
	sink.waitRecords(t, int(total), 20*time.Second)
	if v := bad.Load(); v != nil {
		t.Fatal(v)
	}
	if got := sink.records.Load(); got != total {
		t.Errorf("%d records delivered; want %d", got, total)
	}
}

func TestTCPShutdownRejectsTheFrameItCuts(t *testing.T) {
	s := startStream(t, "tcp", `listen = "127.0.0.1:0"`, streamOptions{})
	c := s.dial(t)
	sendPieces(t, c, "a\nb\npar", 0)
	s.sink.waitRecords(t, 2, 5*time.Second)
	s.stop(t)
	if got := s.sink.got(); !slices.Equal(got, []string{"a", "b"}) {
		t.Errorf("records = %q", got)
	}
	rj := s.sink.gotRejects()
	var fe *FrameError // counted as reason="framing"
	if len(rj) != 1 || rj[0].frame != "par" || !errors.Is(rj[0].err, errCutAtShutdown) || !errors.As(rj[0].err, &fe) {
		t.Errorf("rejects = %v; want %q cut at shutdown, a framing error", rj, "par")
	}
}

func TestTCPShutdownEndsIdleConnectionsAndRefusesNewOnes(t *testing.T) {
	s := startStream(t, "tcp", `listen = "127.0.0.1:0"`, streamOptions{})
	for range 20 {
		s.dial(t)
	}
	if !waitFor(5*time.Second, func() bool { return s.openConns() == 20 }) {
		t.Fatalf("%d connections open; want 20", s.openConns())
	}
	began := time.Now()
	s.stop(t)
	if d := time.Since(began); d > time.Second {
		t.Errorf("Run took %v to return; want well under a second", d)
	}
	if _, err := net.DialTimeout("tcp", s.addr, time.Second); err == nil {
		t.Error("a connection was accepted after the input stopped")
	}
}

func TestTCPListensOnIPv6(t *testing.T) {
	s := startStream(t, "tcp", "listen = \"[::1]:0\"\npeer_field = \"peer\"", streamOptions{})
	if !strings.HasPrefix(s.addr, "[::1]:") {
		t.Fatalf("listening on %s; want [::1]", s.addr)
	}
	c := s.dial(t)
	sendPieces(t, c, "over ipv6\n", 0)
	s.sink.waitRecords(t, 1, 5*time.Second)
	if got := s.sink.peers[0]; got != c.LocalAddr().String() || !strings.HasPrefix(got, "[::1]:") {
		t.Errorf("peer = %q; want %q", got, c.LocalAddr())
	}
}

func TestTCPRunFailsWhenThePortIsTaken(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	in, _, err := buildStream("tcp", fmt.Sprintf("listen = %q", ln.Addr()), streamOptions{})
	if err != nil {
		t.Fatal(err)
	}
	err = in.Run(context.Background(), &streamSink{})
	if err == nil || !strings.Contains(err.Error(), "address already in use") {
		t.Errorf("Run = %v; want address already in use", err)
	}
	if a := in.(*TCP).Addr(); a != nil {
		t.Errorf("Addr() = %v; want nil after a failed Run", a)
	}
}

func TestTCPBatchesGrowUnderLoadAndFlushWhenQuiet(t *testing.T) {
	s := startStream(t, "tcp", `listen = "127.0.0.1:0"`, streamOptions{})
	c := s.dial(t)
	// Quiet: one line, then nothing; it must arrive without more traffic.
	sendPieces(t, c, "alone\n", 0)
	s.sink.waitRecords(t, 1, 2*time.Second)
	// Load: 20,000 lines at once arrive in far fewer batches.
	var b strings.Builder
	for i := range 20000 {
		fmt.Fprintf(&b, "line %d\n", i)
	}
	sendPieces(t, c, b.String(), 0)
	s.sink.waitRecords(t, 20001, 5*time.Second)
	if n := s.sink.batches.Load(); n > 1000 {
		t.Errorf("%d batches for 20,001 records; want batches to grow under load", n)
	}
	t.Logf("%d batches, largest %d records", s.sink.batches.Load(), s.sink.maxBatch.Load())
}

func TestStreamKeyErrorsNameTheKey(t *testing.T) {
	for _, tc := range []struct{ name, keys, want string }{
		{"a listen address without a port", `listen = "0.0.0.0"`, "input.listen: want host:port"},
		{"a port out of range", `listen = ":70000"`, "input.listen: port \"70000\""},
		{"a signed port, as udp refuses it", `listen = ":+514"`, "input.listen: port \"+514\" is not a number"},
		{"a negative timeout", `timeout = -1`, "input.timeout: must be 0"},
		{"a timeout that is no duration", `timeout = "an hour"`, "input.timeout: invalid duration"},
		{"a timeout that overflows", `timeout = 18446744074`, "input.timeout: 18446744074 seconds is out of range"},
		{"negative max_connections", `max_connections = -5`, "input.max_connections"},
		{"a keepalive under a second", `tcp_keepalive = "10ms"`, "input.tcp_keepalive: must be"},
		{"a bad keepalive duration", `tcp_keepalive = "often"`, "tcp_keepalive"},
		{"a peer_field with a space", `peer_field = "peer addr"`, "input.peer_field"},
		{"a peer_field too long", `peer_field = "` + strings.Repeat("a", 33) + `"`, "input.peer_field"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := buildStream("tcp", tc.keys, streamOptions{})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error = %v; want it to contain %q", err, tc.want)
			}
		})
	}
}

func TestStreamDefaults(t *testing.T) {
	for _, tc := range []struct{ typ, listen string }{{"tcp", "0.0.0.0:514"}, {"tls", "0.0.0.0:6514"}} {
		keys := ""
		if tc.typ == "tls" {
			keys = fmt.Sprintf("tls_cert = %q", newCerts(t).serverPEM)
		}
		in, _, err := buildStream(tc.typ, keys, streamOptions{})
		if err != nil {
			t.Fatal(err)
		}
		var k streamKeys
		switch v := in.(type) {
		case *TCP:
			k = v.k
		case *TLS:
			k = v.k
		}
		want := streamKeys{Listen: tc.listen, Timeout: config.Count[config.Seconds](3600), MaxConnections: 10000, TCPKeepalive: time.Minute}
		if k != want {
			t.Errorf("%s defaults = %+v; want %+v", tc.typ, k, want)
		}
	}
}

func TestStreamAliases(t *testing.T) {
	for _, tc := range []struct {
		canon   string
		aliases []string
	}{
		{"tcp", []string{"tcp", "syslog-tcp", "tcp_co", "syslog-tcp_co", "tcpco", "syslog-tcpco"}},
		{"tls", []string{"tls", "syslog-tls", "tls_co", "syslog-tls_co", "tlsco", "syslog-tlsco"}},
	} {
		for _, a := range tc.aliases {
			tp, canon, err := Lookup(a)
			if err != nil || canon != tc.canon || !tp.Stream {
				t.Errorf("Lookup(%q) = %q, stream %v, %v; want %q, stream", a, canon, tp.Stream, err, tc.canon)
			}
		}
	}
}
