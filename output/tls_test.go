//go:build linux

package output_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/flowgo/flowgo"
	"github.com/flowgo/flowgo/config"
	"github.com/flowgo/flowgo/decoder"
	"github.com/flowgo/flowgo/encoder"
	"github.com/flowgo/flowgo/internal/testcerts"
	"github.com/flowgo/flowgo/output"
	"github.com/flowgo/flowgo/pipeline"
)

// Small codecs so that these tests do not depend on the real formats:
// "tlstestline" keeps a line as the message, "tlstestmsg" writes it back.
type testLine struct{}

func (testLine) Decode(frame []byte, r *flowgo.Record, a *flowgo.Arena) error {
	r.Msg = a.String(frame)
	return nil
}

type testMsg struct{}

func (testMsg) Encode(dst []byte, r *flowgo.Record) ([]byte, error) {
	return append(dst, r.Msg...), nil
}

func init() {
	decoder.Register("tlstestline", func(*config.Section) (decoder.Decoder, error) { return testLine{}, nil })
	encoder.Register("tlstestmsg", func(*config.Section) (encoder.Encoder, error) { return testMsg{}, nil })
}

// pki holds a CA, a server certificate for localhost, 127.0.0.1 and ::1,
// and the CA's file.
type pki struct {
	dir    string
	ca     *testcerts.CA
	server testcerts.Leaf
	caFile string
}

func newPKI(t testing.TB) *pki {
	ca := testcerts.NewCA(t, "flowgo test CA")
	dir := t.TempDir()
	return &pki{dir: dir, ca: ca, server: ca.Server(t), caFile: writeFile(t, dir, "ca.pem", ca.CertPEM)}
}

func (p *pki) pool() *x509.CertPool {
	pool := x509.NewCertPool()
	pool.AddCert(p.ca.Cert)
	return pool
}

// testLog sends the output's log to t.Log, until the test ends.
func testLog(t testing.TB) *slog.Logger {
	w := &tWriter{t: t}
	t.Cleanup(func() { w.mu.Lock(); w.done = true; w.mu.Unlock() })
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type tWriter struct {
	mu   sync.Mutex
	t    testing.TB
	done bool
}

func (w *tWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.done {
		w.t.Log(strings.TrimSuffix(string(p), "\n"))
	}
	return len(p), nil
}

// newTLS builds a tls output from the keys of an [output] table.
func newTLS(t testing.TB, keys string) output.Output {
	t.Helper()
	f, err := config.Parse("test.toml", "[output]\ntype = \"tls\"\n"+keys)
	if err != nil {
		t.Fatal(err)
	}
	typ, _, err := output.Lookup("tls")
	if err != nil {
		t.Fatal(err)
	}
	o, err := typ.New(output.Config{Section: f.Output, Format: "gelf", Framing: "nul", Log: testLog(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		o.Close(ctx)
	})
	return o
}

// feed writes records from..to-1, per to a batch, reusing one batch so that
// an output keeping a reference to a batch after Write would send garbage.
func feed(t testing.TB, o output.Output, from, to, per int) {
	t.Helper()
	if err := feedErr(o, from, to, per); err != nil {
		t.Fatal(err)
	}
}

func feedErr(o output.Output, from, to, per int) error {
	b := &flowgo.Batch{}
	for i := from; i < to; i += per {
		b.Data, b.Ends = b.Data[:0], b.Ends[:0]
		b.ID = testBatchIDs.Add(1)
		for j := i; j < min(i+per, to); j++ {
			b.Data = append(b.Data, record(j)...)
			b.Data = append(b.Data, 0)
			b.Ends = append(b.Ends, len(b.Data))
		}
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		err := o.Write(ctx, b)
		cancel()
		if err != nil {
			return fmt.Errorf("writing records %d-%d: %w", i, min(i+per, to)-1, err)
		}
		for k := range b.Data {
			b.Data[k] = '#'
		}
	}
	return nil
}

func closeOutput(t testing.TB, o output.Output) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := o.Close(ctx); err != nil {
		t.Fatalf("Close: %v", err)
	}
}

func healthy(o output.Output) (bool, string) {
	return o.(output.HealthChecker).Healthy()
}

func stats(o output.Output) output.TLSStats {
	return o.(interface{ Stats() output.TLSStats }).Stats()
}

// dropPlan drops the first n connections after a random 40-400 kB,
// alternating resets and half-closes.
func dropPlan(seed uint64, n int) func(int) drop {
	rng := rand.New(rand.NewPCG(seed, 7))
	plan := make([]drop, n)
	for i := range plan {
		plan[i] = drop{after: 40<<10 + rng.Int64N(360<<10), mode: dropReset}
		if i%3 == 2 {
			plan[i].mode = dropHalfClose
		}
	}
	return func(i int) drop {
		if i < len(plan) {
			return plan[i]
		}
		return drop{}
	}
}

func TestTLSDeliversEveryRecordWhileTheServerDropsConnections(t *testing.T) {
	p := newPKI(t)
	const drops = 12
	s := newSink(t, sinkOptions{cert: p.server, rcvBuf: 64 << 10, plan: dropPlan(1, drops)})
	const n = 60000
	var in strings.Builder
	for i := range n {
		in.WriteString(record(i))
		in.WriteByte('\n')
	}
	f, err := config.Parse("test.toml", fmt.Sprintf(`
[input]
type = "stdin"
format = "tlstestline"
[output]
type = "tls"
format = "tlstestmsg"
framing = "nul"
connect = [%q]
tls_ca_file = %q
tls_recovery_delay_max = 20
`, s.Addr, p.caFile))
	if err != nil {
		t.Fatal(err)
	}
	pl, err := pipeline.Build(f, pipeline.Options{Stdin: strings.NewReader(in.String()), Log: testLog(t)})
	if err != nil {
		t.Fatal(err)
	}
	if err := pl.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	if st := pl.Stats(); st.Sent.Load() != n || st.Lost.Load() != 0 {
		t.Errorf("pipeline sent %d, lost %d; want %d and 0", st.Sent.Load(), st.Lost.Load(), n)
	}
	if !s.Wait(10 * time.Second) {
		t.Fatal("the sink's connections are still open after the pipeline closed its output")
	}
	dups := checkDelivery(t, s.Conns(), n, true)
	dropped, cut := map[dropMode]int{}, 0
	for _, c := range s.Conns() {
		dropped[c.dropped]++
		if c.partial > 0 {
			cut++
		}
	}
	if dropped[dropReset]+dropped[dropHalfClose] != drops {
		t.Errorf("%d resets and %d half-closes; want %d drops in all", dropped[dropReset], dropped[dropHalfClose], drops)
	}
	if cut == 0 {
		t.Error("no connection ended in the middle of a frame: the drops did not exercise frame splitting")
	}
	t.Logf("%d connections, %d resets, %d half-closes, %d cut mid-frame, %d records arrived twice",
		len(s.Conns()), dropped[dropReset], dropped[dropHalfClose], cut, dups)
}

// The harness above would notice loss: with acknowledgements ignored (every
// byte written counted as received), the same drops lose records.
func TestTLSWithoutAcknowledgementTrackingTheDropsLoseRecords(t *testing.T) {
	p := newPKI(t)
	s := newSink(t, sinkOptions{cert: p.server, rcvBuf: 64 << 10, plan: func(i int) drop {
		if i < 4 {
			return drop{after: 100 << 10, mode: dropReset}
		}
		return drop{}
	}})
	o := newTLS(t, fmt.Sprintf("connect = [%q]\ntls_ca_file = %q\ntls_recovery_delay_max = 20\n", s.Addr, p.caFile))
	output.SetTLSSample(o, func(*net.TCPConn, int64) (int64, int64, bool) { return 0, 1 << 20, true })
	const n = 30000
	feed(t, o, 0, n, 500)
	closeOutput(t, o)
	s.Wait(5 * time.Second)
	got := map[int]bool{}
	for _, c := range s.Conns() {
		for _, num := range c.nums {
			got[num] = true
		}
	}
	if len(got) == n {
		t.Fatalf("all %d records arrived although the output forgot what it wrote: the drops lose nothing, so the other tests prove nothing", n)
	}
	t.Logf("%d of %d records lost without acknowledgement tracking", n-len(got), n)
}

// A server that stops reading and closes loses what its kernel had
// acknowledged: the output sends again the frames its receive window says
// the server may not have read.
func TestTLSResendsWhatAServerClosedWithoutReading(t *testing.T) {
	for _, tt := range []struct {
		name        string
		windowKnown bool
	}{
		{"with the margin from the server's window", true},
		{"without it, records are lost (the test can tell)", false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			p := newPKI(t)
			s := newSink(t, sinkOptions{cert: p.server, rcvBuf: 64 << 10, plan: func(i int) drop {
				if i < 4 {
					return drop{after: int64(100+50*i) << 10, mode: dropUnread}
				}
				return drop{}
			}})
			o := newTLS(t, fmt.Sprintf("connect = [%q]\ntls_ca_file = %q\ntls_recovery_delay_max = 20\n", s.Addr, p.caFile))
			if !tt.windowKnown {
				output.SetTLSSample(o, func(c *net.TCPConn, written int64) (int64, int64, bool) {
					q, _, ok := output.TCPSample(c, written)
					return q, 1 << 20, ok // a window that never shrinks: no margin
				})
			}
			const n = 30000
			feed(t, o, 0, n, 500)
			closeOutput(t, o)
			s.Wait(5 * time.Second)
			if tt.windowKnown {
				dups := checkDelivery(t, s.Conns(), n, true)
				t.Logf("%d records arrived twice", dups)
				return
			}
			got := s.Received()
			if len(got) == n {
				t.Fatal("every record arrived without the margin: the sink's closes lose nothing, so the test above proves nothing")
			}
			t.Logf("%d of %d records lost without the margin", n-len(got), n)
		})
	}
}

func TestTLSThreadsSpreadBatchesAndKeepOrderPerConnection(t *testing.T) {
	p := newPKI(t)
	s := newSink(t, sinkOptions{cert: p.server, rcvBuf: 64 << 10, plan: dropPlan(2, 5)})
	o := newTLS(t, fmt.Sprintf("connect = [%q]\ntls_ca_file = %q\ntls_threads = 3\ntls_recovery_delay_max = 20\n", s.Addr, p.caFile))
	const n = 40000
	feed(t, o, 0, n, 1000)
	closeOutput(t, o)
	if !s.Wait(5 * time.Second) {
		t.Fatal("connections still open after Close")
	}
	checkDelivery(t, s.Conns(), n, false)
	busy := 0
	for _, c := range s.Conns() {
		if len(c.nums) > 0 {
			busy++
		}
	}
	if busy < 3 {
		t.Errorf("%d connections carried records; want at least the 3 of tls_threads", busy)
	}
}

func TestTLSFailsOverWhenTheServerDies(t *testing.T) {
	p := newPKI(t)
	a := newSink(t, sinkOptions{cert: p.server, rcvBuf: 64 << 10})
	b := newSink(t, sinkOptions{cert: p.server, rcvBuf: 64 << 10})
	o := newTLS(t, fmt.Sprintf("connect = [%q, %q]\ntls_ca_file = %q\ntls_recovery_delay_max = 20\n", a.Addr, b.Addr, p.caFile))
	feed(t, o, 0, 10000, 500)
	first, second := a, b
	if len(a.Conns()) == 0 {
		first, second = b, a
	}
	// Kill the server in use while records are being written.
	fed := make(chan error, 1)
	go func() { fed <- feedErr(o, 10000, 30000, 500) }()
	for deadline := time.Now().Add(10 * time.Second); len(first.Received()) < 15000; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the first server got only %d records", len(first.Received()))
		}
	}
	first.Kill()
	if err := <-fed; err != nil {
		t.Fatal(err)
	}
	closeOutput(t, o)
	second.Wait(5 * time.Second)
	first.Wait(5 * time.Second)
	checkDelivery(t, append(first.Conns(), second.Conns()...), 30000, true)
	if len(second.Conns()) == 0 {
		t.Error("nothing went to the other server")
	}
	if ok, msg := healthy(o); ok {
		t.Errorf("Healthy after Close = true (%s); want false", msg)
	}
}

func TestTLSSkipsServersThatAreDown(t *testing.T) {
	p := newPKI(t)
	up := newSink(t, sinkOptions{cert: p.server})
	connect := []string{fmt.Sprintf("%q", up.Addr)}
	for range 3 {
		connect = append(connect, fmt.Sprintf("%q", closedPort(t)))
	}
	o := newTLS(t, fmt.Sprintf("connect = [%s]\ntls_ca_file = %q\ntls_recovery_delay_max = 20\n", strings.Join(connect, ", "), p.caFile))
	feed(t, o, 0, 2000, 100)
	if ok, msg := healthy(o); !ok || !strings.Contains(msg, up.Addr) {
		t.Errorf("Healthy = %v, %q; want true, connected to %s", ok, msg, up.Addr)
	}
	closeOutput(t, o)
	up.Wait(5 * time.Second)
	checkDelivery(t, up.Conns(), 2000, true)
}

// While no server can be reached, Write returns an error after a grace
// period (so that the pipeline backs off, reports it and stays live), and
// the retry with the same batch resumes: once a server is up, every record
// arrives exactly once.
func TestTLSWriteReportsAnOutageAndResumesTheSameBatch(t *testing.T) {
	p := newPKI(t)
	addr := closedPort(t)
	o := newTLS(t, fmt.Sprintf("connect = [%q]\ntls_ca_file = %q\ntls_recovery_delay_max = 20\n", addr, p.caFile))
	b := gelfBatch(100)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	start := time.Now()
	err := o.Write(ctx, b)
	if err == nil || !strings.Contains(err.Error(), "connection refused") {
		t.Fatalf("Write with no server = %v; want an error saying connection refused", err)
	}
	if d := time.Since(start); d < 900*time.Millisecond || d > 5*time.Second {
		t.Errorf("Write gave up after %v; want about the 1 s grace", d)
	}
	if ok, _ := healthy(o); ok {
		t.Error("healthy with no server")
	}
	s := newSink(t, sinkOptions{cert: p.server, addr: addr, keep: true})
	if err := o.Write(ctx, b); err != nil {
		t.Fatalf("Write again once the server is up: %v", err)
	}
	closeOutput(t, o)
	s.Wait(5 * time.Second)
	var got [][]byte
	for _, c := range s.Conns() {
		got = append(got, c.frames...)
	}
	if len(got) != 100 {
		t.Fatalf("the server got %d frames; want the 100 of the batch once", len(got))
	}
	for i, f := range got {
		if string(f)+"\x00" != string(b.Data[b.Ends[i]-len(f)-1:b.Ends[i]]) {
			t.Fatalf("frame %d = %q; want frame %d of the batch", i, f, i)
		}
	}
}

// The same through the pipeline: it retries, counts the retries, and
// delivers every record once when the server comes up.
func TestTLSPipelineRidesOutAServerThatIsDownAtStart(t *testing.T) {
	p := newPKI(t)
	addr := closedPort(t)
	f, err := config.Parse("test.toml", fmt.Sprintf(`
[input]
type = "stdin"
format = "tlstestline"
[output]
type = "tls"
format = "tlstestmsg"
framing = "nul"
connect = [%q]
tls_ca_file = %q
tls_recovery_delay_max = 20
`, addr, p.caFile))
	if err != nil {
		t.Fatal(err)
	}
	const n = 5000
	var in strings.Builder
	for i := range n {
		in.WriteString(record(i) + "\n")
	}
	pl, err := pipeline.Build(f, pipeline.Options{Stdin: strings.NewReader(in.String()), Log: testLog(t)})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- pl.Run(context.Background()) }()
	time.Sleep(2500 * time.Millisecond)
	s := newSink(t, sinkOptions{cert: p.server, addr: addr})
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("the pipeline did not finish after the server came up")
	}
	if r := pl.Stats().Retries.Load(); r < 1 {
		t.Errorf("the pipeline retried %d times during a 2.5 s outage; want the output to report it", r)
	}
	s.Wait(5 * time.Second)
	if dups := checkDelivery(t, s.Conns(), n, true); dups != 0 {
		t.Errorf("%d records arrived twice; a retried batch must not be sent again", dups)
	}
}

// closedPort returns a loopback address nothing listens on.
func closedPort(t testing.TB) string {
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// With delays drawn at their largest (x2), attempts against a server that
// refuses every handshake come 40, 80, 160, 200, 200 ms apart (init 20,
// max 200); after a connection that lasted longer than the probe time the
// delay is back to 20 ms.
func TestTLSBackoffBetweenAttempts(t *testing.T) {
	p := newPKI(t)
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	const hold = 5 // the attempt that succeeds and lasts
	type event struct{ accepted, closed time.Time }
	events := make(chan event, 64)
	cert := serverCert(t, p.server)
	go func() {
		for i := 0; ; i++ {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			at := time.Now()
			if i == hold {
				tc := tlsServer(c, cert)
				if tc.Handshake() == nil {
					go io.Copy(io.Discard, tc)
					time.Sleep(250 * time.Millisecond)
				}
			}
			c.(*net.TCPConn).SetLinger(0)
			c.Close()
			select {
			case events <- event{at, time.Now()}:
			default:
			}
		}
	}()
	o := newTLS(t, fmt.Sprintf("connect = [%q]\ntls_ca_file = %q\ntls_recovery_delay_init = 20\ntls_recovery_delay_max = 200\ntls_recovery_probe_time = 100\n", ln.Addr(), p.caFile))
	output.SetTLSRand(o, func(n int64) int64 { return n - 1 })
	ctx, cancel := context.WithCancel(context.Background())
	go o.Write(ctx, &flowgo.Batch{Data: []byte("x\x00"), Ends: []int{2}})
	var ev []event
	for len(ev) < 8 {
		select {
		case e := <-events:
			ev = append(ev, e)
		case <-time.After(5 * time.Second):
			t.Fatalf("only %d attempts", len(ev))
		}
	}
	cancel()
	want := []time.Duration{40, 80, 160, 200, 200, 20, 40}
	for i, w := range want {
		w *= time.Millisecond
		from := ev[i].accepted
		if i == hold {
			from = ev[i].closed // the delay runs from the failure
		}
		got := ev[i+1].accepted.Sub(from)
		if got < w-time.Millisecond || got > w+60*time.Millisecond {
			t.Errorf("attempt %d came %v after attempt %d %s; want %v", i+2, got.Round(time.Millisecond), i+1,
				map[bool]string{true: "ended", false: "began"}[i == hold], w)
		}
	}
}

func TestTLSVerification(t *testing.T) {
	p := newPKI(t)
	other := testcerts.NewCA(t, "some other CA")
	client := p.ca.Client(t, "flowgo-client")
	clientCert := writeFile(t, p.dir, "client.pem", client.CertPEM)
	clientKey := writeFile(t, p.dir, "client.key", client.KeyPEM)
	tests := []struct {
		name       string
		server     testcerts.Leaf
		requireCA  bool
		host       string
		keys       string
		wantErr    string // "" when records must arrive
		wantClient string
	}{
		{"a certificate from another CA is refused", other.Server(t), false, "127.0.0.1",
			"tls_ca_file = CA\n", "certificate signed by unknown authority (the server's certificate is not signed by the CAs in tls_ca_file", ""},
		{"a certificate for another host name is refused", p.ca.Server(t, "logs.example.net"), false, "localhost",
			"tls_ca_file = CA\n", "certificate is valid for logs.example.net, not localhost", ""},
		{"tls_verify_peer = false accepts any certificate", other.Server(t, "logs.example.net"), false, "localhost",
			"tls_verify_peer = false\n", "", ""},
		{"the client certificate is presented when configured", p.server, true, "localhost",
			"tls_ca_file = CA\n" + fmt.Sprintf("tls_cert = %q\ntls_key = %q\n", clientCert, clientKey), "", "flowgo-client"},
		{"a server that wants a client certificate says so", p.server, true, "localhost",
			"tls_ca_file = CA\n", "certificate required (the server wants a client certificate it trusts: see tls_cert and tls_key)", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			opts := sinkOptions{cert: tt.server}
			if tt.requireCA {
				opts.clientCA = p.pool()
			}
			s := newSink(t, opts)
			_, port, _ := net.SplitHostPort(s.Addr)
			addr := net.JoinHostPort(tt.host, port)
			keys := strings.ReplaceAll(tt.keys, "CA", strconv.Quote(p.caFile))
			o := newTLS(t, fmt.Sprintf("connect = [%q]\ntls_recovery_delay_max = 20\n%s", addr, keys))
			// A refused connection makes Write wait until its context ends.
			wait := 500 * time.Millisecond
			if tt.wantErr == "" {
				wait = 10 * time.Second
			}
			ctx, cancel := context.WithTimeout(context.Background(), wait)
			defer cancel()
			b := &flowgo.Batch{Data: []byte(record(7) + "\x00"), Ends: []int{len(record(7)) + 1}}
			err := o.Write(ctx, b)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("Write: %v", err)
				}
				closeOutput(t, o)
				s.Wait(5 * time.Second)
				conns := s.Conns()
				if len(conns) != 1 || len(conns[0].nums) != 1 || conns[0].nums[0] != 7 {
					t.Fatalf("the server got %+v; want record 7 on one connection", conns)
				}
				if conns[0].clientCN != tt.wantClient {
					t.Errorf("client certificate %q; want %q", conns[0].clientCN, tt.wantClient)
				}
				return
			}
			if err == nil {
				t.Fatal("Write succeeded; want it refused")
			}
			if ok, msg := healthy(o); ok || !strings.Contains(msg, tt.wantErr) {
				t.Errorf("Healthy = %v, %q; want false with %q", ok, msg, tt.wantErr)
			}
			if !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("Write error %q does not say %q", err, tt.wantErr)
			}
			if got := s.Received(); len(got) != 0 {
				t.Errorf("the server received %v over a connection that should have been refused", got)
			}
		})
	}
}

func serverCert(t testing.TB, l testcerts.Leaf) tls.Certificate {
	c, err := tls.X509KeyPair(l.CertPEM, l.KeyPEM)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func tlsServer(c net.Conn, cert tls.Certificate) *tls.Conn {
	return tls.Server(c, &tls.Config{Certificates: []tls.Certificate{cert}})
}

func TestTLSConnectsOverIPv6(t *testing.T) {
	p := newPKI(t)
	s := newSink(t, sinkOptions{cert: p.server, network: "tcp6"})
	if !strings.HasPrefix(s.Addr, "[::1]:") {
		t.Fatalf("sink address %s; want [::1]:port", s.Addr)
	}
	// The certificate is verified against the address ::1, without brackets.
	o := newTLS(t, fmt.Sprintf("connect = [%q]\ntls_ca_file = %q\n", s.Addr, p.caFile))
	feed(t, o, 0, 100, 10)
	closeOutput(t, o)
	s.Wait(5 * time.Second)
	checkDelivery(t, s.Conns(), 100, true)
}

func TestTLSAsyncBuffersUntilFlush(t *testing.T) {
	p := newPKI(t)
	s := newSink(t, sinkOptions{cert: p.server})
	o := newTLS(t, fmt.Sprintf("connect = [%q]\ntls_ca_file = %q\ntls_async = true\n", s.Addr, p.caFile))
	feed(t, o, 0, 10, 10)
	time.Sleep(100 * time.Millisecond)
	if got := len(s.Received()); got != 0 {
		t.Fatalf("%d records arrived before a flush; tls_async should buffer them", got)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := o.(output.Flusher).Flush(ctx); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { return len(s.Received()) == 10 }, "the 10 records after Flush")
	feed(t, o, 10, 20, 10)
	closeOutput(t, o)
	s.Wait(5 * time.Second)
	checkDelivery(t, s.Conns(), 20, true)
}

// Through the pipeline, tls_async records go out on the flush timer while
// the input is still open, and the rest when the pipeline stops.
func TestTLSAsyncFlushesOnTheTimerAndAtExit(t *testing.T) {
	p := newPKI(t)
	s := newSink(t, sinkOptions{cert: p.server})
	f, err := config.Parse("test.toml", fmt.Sprintf(`
[input]
type = "stdin"
format = "tlstestline"
[output]
type = "tls"
format = "tlstestmsg"
framing = "nul"
connect = [%q]
tls_ca_file = %q
tls_async = true
tls_flush_interval = "50ms"
`, s.Addr, p.caFile))
	if err != nil {
		t.Fatal(err)
	}
	pr, pw := io.Pipe()
	pl, err := pipeline.Build(f, pipeline.Options{Stdin: pr, Log: testLog(t)})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- pl.Run(context.Background()) }()
	for i := range 5 {
		fmt.Fprintln(pw, record(i))
	}
	waitFor(t, func() bool { return len(s.Received()) == 5 }, "the first 5 records, flushed by the timer")
	for i := 5; i < 1000; i++ {
		fmt.Fprintln(pw, record(i))
	}
	pw.Close()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	s.Wait(5 * time.Second)
	checkDelivery(t, s.Conns(), 1000, true)
}

func TestTLSCloseWaitsUntilTheServerAcknowledgedEverything(t *testing.T) {
	p := newPKI(t)
	hold := make(chan struct{})
	s := newSink(t, sinkOptions{cert: p.server, rcvBuf: 64 << 10, hold: hold})
	o := newTLS(t, fmt.Sprintf("connect = [%q]\ntls_ca_file = %q\n", s.Addr, p.caFile))
	// About 1 MB: more than the server's receive buffer, less than what the
	// sending socket buffers, so Write returns before the server read it.
	feed(t, o, 0, 7000, 1000)
	const stall = 300 * time.Millisecond
	released := time.Now().Add(stall)
	time.AfterFunc(stall, func() { close(hold) })
	closeOutput(t, o)
	if early := time.Until(released); early > 0 {
		t.Errorf("Close returned %v before the server read anything", early.Round(time.Millisecond))
	}
	s.Wait(5 * time.Second)
	checkDelivery(t, s.Conns(), 7000, true)
}

func TestTLSCloseReportsWhatWasNotAcknowledged(t *testing.T) {
	p := newPKI(t)
	hold := make(chan struct{})
	defer close(hold)
	s := newSink(t, sinkOptions{cert: p.server, rcvBuf: 64 << 10, hold: hold})
	o := newTLS(t, fmt.Sprintf("connect = [%q]\ntls_ca_file = %q\n", s.Addr, p.caFile))
	feed(t, o, 0, 3000, 1000)
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	err := o.Close(ctx)
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("Close took %v with a 200ms context", d)
	}
	if err == nil || !strings.Contains(err.Error(), "not acknowledged by the server at close: context deadline exceeded") {
		t.Fatalf("Close error = %v; want the records not acknowledged", err)
	}
	var n int
	if _, e := fmt.Sscanf(err.Error(), "tls: %d records", &n); e != nil || n <= 0 || n > 3000 {
		t.Errorf("Close error %q: want 1 to 3000 records counted", err)
	}
}

func TestTLSHealthFollowsTheConnection(t *testing.T) {
	p := newPKI(t)
	s := newSink(t, sinkOptions{cert: p.server})
	o := newTLS(t, fmt.Sprintf("connect = [%q]\ntls_ca_file = %q\ntls_recovery_delay_max = 50\n", s.Addr, p.caFile))
	if ok, msg := healthy(o); !ok {
		t.Errorf("Healthy before anything was sent = false, %q; an idle output is not failing", msg)
	}
	feed(t, o, 0, 10, 10)
	if ok, msg := healthy(o); !ok || msg != "1 of 1 connections up ("+s.Addr+")" {
		t.Errorf("Healthy = %v, %q; want true, 1 of 1 connections up", ok, msg)
	}
	s.Kill()
	waitFor(t, func() bool { ok, _ := healthy(o); return !ok }, "the output to notice the server is gone")
	if _, msg := healthy(o); !strings.HasPrefix(msg, "not connected; last error") {
		t.Errorf("Healthy message %q; want not connected and the last error", msg)
	}
	if st := stats(o); st.Connects != 1 || st.Failures < 1 {
		t.Errorf("stats %+v; want 1 connect and failures", st)
	}
}

func TestTLSReloadPresentsTheNewClientCertificate(t *testing.T) {
	p := newPKI(t)
	s := newSink(t, sinkOptions{cert: p.server, clientCA: p.pool()})
	one := p.ca.Client(t, "client-one")
	certFile := writeFile(t, p.dir, "client.pem", one.CertPEM)
	keyFile := writeFile(t, p.dir, "client.key", one.KeyPEM)
	o := newTLS(t, fmt.Sprintf("connect = [%q]\ntls_ca_file = %q\ntls_cert = %q\ntls_key = %q\ntls_recovery_delay_max = 20\n", s.Addr, p.caFile, certFile, keyFile))
	feed(t, o, 0, 10, 10)
	two := p.ca.Client(t, "client-two")
	writeFile(t, p.dir, "client.pem", two.CertPEM)
	writeFile(t, p.dir, "client.key", two.KeyPEM)
	if err := o.(output.Reloader).Reload(); err != nil {
		t.Fatal(err)
	}
	s.DropConns()
	waitFor(t, func() bool { ok, _ := healthy(o); return !ok }, "the dropped connection to be noticed")
	feed(t, o, 10, 20, 10)
	closeOutput(t, o)
	s.Wait(5 * time.Second)
	var cns []string
	for _, c := range s.Conns() {
		cns = append(cns, c.clientCN)
	}
	if len(cns) != 2 || cns[0] != "client-one" || cns[1] != "client-two" {
		t.Errorf("client certificates presented: %q; want client-one, then client-two", cns)
	}
	checkDelivery(t, s.Conns(), 20, true)
}

func waitFor(t testing.TB, cond func() bool, what string) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); !cond(); time.Sleep(2 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}
