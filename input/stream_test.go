package input

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/flowgo/flowgo"
	"github.com/flowgo/flowgo/config"
	"github.com/flowgo/flowgo/decoder"
	"github.com/flowgo/flowgo/internal/syncbuf"
	"github.com/flowgo/flowgo/internal/testcerts"
)

// Shared helpers of the tcp and tls input tests. They run real listeners on
// loopback and real clients; the decoder keeps each frame verbatim so that
// the tests see exactly the bytes the input cut out.

// verbatim keeps the frame as Msg; frames starting with BAD fail to decode.
type verbatim struct{}

func (verbatim) Decode(frame []byte, r *flowgo.Record, a *flowgo.Arena) error {
	if bytes.HasPrefix(frame, []byte("BAD")) {
		return decoder.Errorf("verbatim", 1, "bad frame")
	}
	r.Msg = a.String(frame)
	return nil
}

type streamReject struct {
	origin, frame string
	err           error
}

// streamSink collects what an input hands over. When block is set, Put waits
// until it is closed; check, when set, sees every record instead of the
// slices below (for tests that send too much to keep).
type streamSink struct {
	block chan struct{}
	check func(r *flowgo.Record)

	mu       sync.Mutex
	msgs     []string
	peers    []string
	rejects  []streamReject
	records  atomic.Int64
	batches  atomic.Int64
	read     atomic.Int64 // bytes the input read (ByteCounter)
	waiting  atomic.Int32
	maxBatch atomic.Int64
}

func (s *streamSink) Put(b *flowgo.Batch) error {
	if s.block != nil {
		s.waiting.Add(1)
		<-s.block
		s.waiting.Add(-1)
	}
	s.mu.Lock()
	for i := range b.Records {
		r := &b.Records[i]
		if s.check != nil {
			s.check(r)
			continue
		}
		s.msgs = append(s.msgs, strings.Clone(r.Msg))
		s.peers = append(s.peers, peerOf(r))
	}
	s.mu.Unlock()
	s.records.Add(int64(b.Len()))
	s.batches.Add(1)
	if n := int64(b.Len()); n > s.maxBatch.Load() {
		s.maxBatch.Store(n)
	}
	flowgo.PutBatch(b)
	return nil
}

func (s *streamSink) Prepare(*flowgo.Batch) {}

func (s *streamSink) CountBytes(n int) { s.read.Add(int64(n)) }

func (s *streamSink) Reject(origin string, frame []byte, err error) {
	s.mu.Lock()
	s.rejects = append(s.rejects, streamReject{origin, string(frame), err})
	s.mu.Unlock()
}

func (s *streamSink) Dropped(n int, reason string) {}

func (s *streamSink) got() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.msgs...)
}

func (s *streamSink) gotRejects() []streamReject {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]streamReject(nil), s.rejects...)
}

// waitRecords waits until n records arrived; it fails the test after d.
func (s *streamSink) waitRecords(t *testing.T, n int, d time.Duration) {
	t.Helper()
	if !waitFor(d, func() bool { return s.records.Load() >= int64(n) }) {
		t.Fatalf("%d records arrived within %v; want %d", s.records.Load(), d, n)
	}
}

// waitRejects waits until n frames were rejected.
func (s *streamSink) waitRejects(t *testing.T, n int, d time.Duration) {
	t.Helper()
	if !waitFor(d, func() bool { return len(s.gotRejects()) >= n }) {
		t.Fatalf("%d rejects within %v; want %d", len(s.gotRejects()), d, n)
	}
}

func waitFor(d time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(2 * time.Millisecond)
	}
	return true
}

// peerOf returns the peer parameter AddPeer appended, or "".
func peerOf(r *flowgo.Record) string {
	for _, e := range r.SD {
		if e.ID == "" {
			for _, p := range e.Params {
				if p.Name == "peer" {
					return strings.Clone(p.Value.Str)
				}
			}
		}
	}
	return ""
}

// testServer is a running tcp or tls input.
type testServer struct {
	in     Input
	st     *streamServer
	addr   string
	sink   *streamSink
	logs   *syncbuf.Buffer
	cancel context.CancelFunc
	done   chan error
	certs  *certs // tls only
}

// streamOptions are what a test server takes beyond its TOML keys.
type streamOptions struct {
	framing      flowgo.Framing
	maxSize      int
	truncate     bool
	batchRecords int
	sink         *streamSink
	otherSink    Sink     // used instead of a streamSink when set (benchmarks)
	buffers      *Buffers // the stream budget; nil: unlimited
	decoder      decoder.Decoder
}

// startStream builds the input typ with the TOML keys given and runs it until
// the test ends.
func startStream(t testing.TB, typ, keys string, o streamOptions) *testServer {
	t.Helper()
	in, logs, err := buildStream(typ, keys, o)
	if err != nil {
		t.Fatal(err)
	}
	return runStream(t, in, logs, o)
}

func buildStream(typ, keys string, o streamOptions) (Input, *syncbuf.Buffer, error) {
	if o.framing == "" {
		o.framing = flowgo.FramingLine
	}
	if o.maxSize == 0 {
		o.maxSize = 64 << 10
	}
	if o.batchRecords == 0 {
		o.batchRecords = 1024
	}
	f, err := config.Parse("test.toml", fmt.Sprintf("[input]\ntype = %q\n%s\n", typ, keys))
	if err != nil {
		return nil, nil, err
	}
	tp, _, err := Lookup(typ)
	if err != nil {
		return nil, nil, err
	}
	logs := &syncbuf.Buffer{}
	var dec decoder.Decoder = verbatim{}
	if o.decoder != nil {
		dec = o.decoder
	}
	in, err := tp.New(Config{
		Section: f.Inputs[0], Name: "input", Decoder: dec, Framing: o.framing, Buffers: o.buffers,
		MaxMessageSize: o.maxSize, Truncate: o.truncate, BatchRecords: o.batchRecords, BatchBytes: 1 << 20,
		Log: slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	})
	return in, logs, err
}

func runStream(t testing.TB, in Input, logs *syncbuf.Buffer, o streamOptions) *testServer {
	t.Helper()
	sink := o.sink
	if sink == nil {
		sink = &streamSink{}
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &testServer{in: in, sink: sink, logs: logs, cancel: cancel, done: make(chan error, 1)}
	switch v := in.(type) {
	case *TCP:
		s.st = v.streamServer
	case *TLS:
		s.st = v.streamServer
	}
	var runSink Sink = sink
	if o.otherSink != nil {
		runSink = o.otherSink
	}
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

// stop ends Run and waits for it.
func (s *testServer) stop(t testing.TB) {
	t.Helper()
	s.cancel()
	select {
	case err, ok := <-s.done:
		if ok && err != nil {
			t.Errorf("Run = %v; want nil", err)
		}
		if ok {
			close(s.done)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return within 10s of the context ending")
	}
}

// openConns returns how many connections the input has open.
func (s *testServer) openConns() int {
	s.st.mu.Lock()
	defer s.st.mu.Unlock()
	return len(s.st.conns)
}

// certs are a test CA with a server and a client certificate, as files.
type certs struct {
	dir        string
	ca         *testcerts.CA
	serverPEM  string // chain and key in one file, as flowgger.pem
	caFile     string
	clientCert tls.Certificate
	clientPEM  string // the client's certificate and key in one file
}

func newCerts(t testing.TB) *certs {
	dir := t.TempDir()
	ca := testcerts.NewCA(t, "flowgo test CA")
	srv := ca.Server(t)
	cl := ca.Client(t, "test client")
	cc, err := tls.X509KeyPair(cl.CertPEM, cl.KeyPEM)
	if err != nil {
		t.Fatal(err)
	}
	return &certs{
		dir: dir, ca: ca,
		serverPEM:  testcerts.WriteFile(t, dir, "server.pem", srv.CertPEM, srv.KeyPEM),
		caFile:     testcerts.WriteFile(t, dir, "ca.pem", ca.CertPEM),
		clientCert: cc,
		clientPEM:  testcerts.WriteFile(t, dir, "client.pem", cl.CertPEM, cl.KeyPEM),
	}
}

// keys returns the TOML keys of a tls input using c.
func (c *certs) keys(verifyPeer bool) string {
	return fmt.Sprintf("listen = \"127.0.0.1:0\"\ntls_cert = %q\ntls_ca_file = %q\ntls_verify_peer = %v\n", c.serverPEM, c.caFile, verifyPeer)
}

// clientConfig trusts c's CA and, when withCert, presents its client certificate.
func (c *certs) clientConfig(withCert bool) *tls.Config {
	pool := x509.NewCertPool()
	pool.AddCert(c.ca.Cert)
	cfg := &tls.Config{RootCAs: pool, ServerName: "localhost"}
	if withCert {
		cfg.Certificates = []tls.Certificate{c.clientCert}
	}
	return cfg
}

// startTLS starts a tls input with fresh certificates and extra keys.
func startTLS(t testing.TB, verifyPeer bool, extra string, o streamOptions) *testServer {
	t.Helper()
	c := newCerts(t)
	s := startStream(t, "tls", c.keys(verifyPeer)+extra, o)
	s.certs = c
	return s
}

// dial connects to s, with TLS and the client certificate for a tls input.
func (s *testServer) dial(t testing.TB) net.Conn {
	t.Helper()
	var (
		c   net.Conn
		err error
	)
	if s.certs != nil {
		c, err = tls.Dial("tcp", s.addr, s.certs.clientConfig(true))
	} else {
		c, err = net.Dial("tcp", s.addr)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// sendPieces writes data to c in pieces of at most piece bytes (all at once when
// piece is 0), pausing between pieces so that they arrive as separate reads.
func sendPieces(t testing.TB, c net.Conn, data string, piece int) {
	t.Helper()
	if piece <= 0 {
		piece = len(data)
	}
	for len(data) > 0 {
		n := min(piece, len(data))
		if _, err := io.WriteString(c, data[:n]); err != nil {
			t.Fatalf("write: %v", err)
		}
		data = data[n:]
		if len(data) > 0 && piece > 0 {
			time.Sleep(time.Millisecond)
		}
	}
}

// closeWrite ends the client's side of the stream, as a sender that is
// done does, so the input sees EOF.
func closeWrite(t testing.TB, c net.Conn) {
	t.Helper()
	var err error
	switch v := c.(type) {
	case *net.TCPConn:
		err = v.CloseWrite()
	case *tls.Conn:
		err = v.CloseWrite()
	default:
		err = c.Close()
	}
	if err != nil {
		t.Fatal(err)
	}
}

// readsEOF reports whether the server ended the connection (EOF or reset)
// within d.
func readsEOF(c net.Conn, d time.Duration) error {
	c.SetReadDeadline(time.Now().Add(d))
	var buf [64]byte
	for {
		n, err := c.Read(buf[:])
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				return fmt.Errorf("the connection is still open after %v", d)
			}
			return nil
		}
		if n > 0 {
			return fmt.Errorf("the server sent %q", buf[:n])
		}
	}
}
