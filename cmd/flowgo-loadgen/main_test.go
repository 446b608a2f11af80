package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/flowgo/flowgo"
	"github.com/flowgo/flowgo/config"
	"github.com/flowgo/flowgo/decoder"
	"github.com/flowgo/flowgo/input"
	"github.com/flowgo/flowgo/internal/testcerts"
)

// received is what a test server read on one connection or socket.
type received struct {
	frames  int64
	bad     []string // why frames failed to split or decode
	version uint16   // TLS version negotiated
}

// checker decodes frames with the project's real decoder for the format, so
// that a frame cut in the wrong place fails.
type checker struct {
	dec   decoder.Decoder
	arena flowgo.Arena
	rec   flowgo.Record
}

func newChecker(t *testing.T, format string) *checker {
	t.Helper()
	dec, err := decoder.New(format, config.Empty().Inputs[0])
	if err != nil {
		t.Fatalf("decoder.New(%s): %v", format, err)
	}
	return &checker{dec: dec}
}

func (c *checker) check(frame []byte, r *received) {
	r.frames++
	c.arena.Reset()
	c.rec.Reset()
	if err := c.dec.Decode(frame, &c.rec, &c.arena); err != nil {
		r.bad = append(r.bad, err.Error()+": "+string(frame))
	}
}

// streamServer accepts connections on a loopback listener and reads each
// with input.Splitter in the given framing until the client closes it.
type streamServer struct {
	addr string
	mu   sync.Mutex
	got  []*received
	wg   sync.WaitGroup
	ln   net.Listener
}

func startStreamServer(t *testing.T, framing flowgo.Framing, format string, tlsConf *tls.Config) *streamServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if tlsConf != nil {
		ln = tls.NewListener(ln, tlsConf)
	}
	s := &streamServer{addr: ln.Addr().String(), ln: ln}
	s.wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			r := &received{}
			s.mu.Lock()
			s.got = append(s.got, r)
			s.mu.Unlock()
			s.wg.Go(func() {
				defer c.Close()
				if tc, ok := c.(*tls.Conn); ok {
					if err := tc.Handshake(); err != nil {
						r.bad = append(r.bad, "handshake: "+err.Error())
						return
					}
					r.version = tc.ConnectionState().Version
				}
				chk := newChecker(t, format)
				sp := input.NewSplitter(c, framing, 64<<10, false)
				for {
					frame, err := sp.Next()
					if errors.Is(err, io.EOF) {
						return
					}
					var fe *input.FrameError
					if errors.As(err, &fe) {
						r.bad = append(r.bad, fe.Error())
						continue
					}
					if err != nil {
						r.bad = append(r.bad, err.Error())
						return
					}
					chk.check(frame, r)
				}
			})
		}
	})
	t.Cleanup(func() { ln.Close() })
	return s
}

// wait closes the listener and waits until every connection was read to its end.
func (s *streamServer) wait(t *testing.T) []*received {
	t.Helper()
	s.ln.Close()
	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("the server did not finish reading")
	}
	return s.got
}

// summary parses the key=value line run prints on stdout.
func summary(t *testing.T, out string) map[string]string {
	t.Helper()
	kv := map[string]string{}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	for _, f := range strings.Fields(lines[len(lines)-1]) {
		k, v, ok := strings.Cut(f, "=")
		if !ok {
			t.Fatalf("summary field %q has no '='", f)
		}
		kv[k] = v
	}
	return kv
}

func runOK(t *testing.T, args ...string) map[string]string {
	t.Helper()
	var stdout, stderr bytes.Buffer
	if code := run(context.Background(), args, &stdout, &stderr); code != exitOK {
		t.Fatalf("run(%q) = %d; want %d; stderr: %s", args, code, exitOK, stderr.String())
	}
	return summary(t, stdout.String())
}

func TestStreamSendsExactlyTheRecordsAskedWithCorrectFraming(t *testing.T) {
	tests := []struct {
		name    string
		framing flowgo.Framing
		format  string
		conns   int
		count   int64
		extra   []string
	}{
		{"one connection, line framing", "line", "rfc5424", 1, 5000, nil},
		{"three connections share an uneven count", "line", "rfc5424", 3, 10007, nil},
		{"octet counting", "syslen", "rfc5424", 2, 7001, nil},
		{"NUL framing", "nul", "rfc5424", 1, 3000, nil},
		{"RFC 3164 lines", "line", "rfc3164", 2, 4001, nil},
		{"RFC 3164 octet counted", "syslen", "rfc3164", 1, 2500, nil},
		{"a small pool wraps around many times", "syslen", "rfc5424", 2, 9999, []string{"-pool", "7"}},
		{"tiny writes of one frame each", "line", "rfc5424", 2, 3001, []string{"-write-size", "1"}},
		{"a rate limit still sends the exact count", "syslen", "rfc5424", 2, 2001, []string{"-rate", "100000"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := startStreamServer(t, tt.framing, tt.format, nil)
			args := append([]string{"-addr", srv.addr, "-framing", string(tt.framing), "-format", tt.format,
				"-c", strconv.Itoa(tt.conns), "-n", strconv.FormatInt(tt.count, 10)}, tt.extra...)
			sum := runOK(t, args...)
			got := srv.wait(t)
			if len(got) != tt.conns {
				t.Fatalf("server saw %d connections; want %d", len(got), tt.conns)
			}
			var total int64
			for _, r := range got {
				if len(r.bad) > 0 {
					t.Fatalf("%d bad frames, the first: %s", len(r.bad), r.bad[0])
				}
				total += r.frames
				// Each connection carries its share: count/conns, or one more.
				if lo := tt.count / int64(tt.conns); r.frames != lo && r.frames != lo+1 {
					t.Errorf("a connection carried %d records; want %d or %d", r.frames, lo, lo+1)
				}
			}
			if total != tt.count {
				t.Errorf("server received %d records; want %d", total, tt.count)
			}
			if sum["records"] != strconv.FormatInt(tt.count, 10) {
				t.Errorf("summary records=%s; want %d", sum["records"], tt.count)
			}
		})
	}
}

func TestSummaryCountsTheBytesSent(t *testing.T) {
	srv := startStreamServer(t, "line", "rfc5424", nil)
	sum := runOK(t, "-addr", srv.addr, "-n", "1000")
	srv.wait(t)
	// The file mode writes the same lines (same seed, and the pool is as
	// large as the run), so the file's size is the number of bytes sent.
	path := filepath.Join(t.TempDir(), "same.log")
	runOK(t, "-o", path, "-n", "1000")
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	n := fi.Size()
	if sum["bytes"] != strconv.FormatInt(n, 10) {
		t.Errorf("summary bytes=%s; want %d (the size of the same 1000 lines in a file)", sum["bytes"], n)
	}
	for _, k := range []string{"seconds", "records_per_s", "mb_per_s", "start_unix", "end_unix"} {
		if _, err := strconv.ParseFloat(sum[k], 64); err != nil {
			t.Errorf("summary %s=%q is not a number", k, sum[k])
		}
	}
}

// tlsFiles writes a CA, a server and a client certificate to a temp dir.
type tlsFiles struct {
	ca, clientCert, clientKey string
	server                    tls.Certificate
	pool                      *x509.CertPool
}

func newTLSFiles(t *testing.T) tlsFiles {
	t.Helper()
	dir := t.TempDir()
	ca := testcerts.NewCA(t, "loadgen test CA")
	srv := ca.Server(t)
	cli := ca.Client(t, "loadgen")
	f := tlsFiles{
		ca:         filepath.Join(dir, "ca.pem"),
		clientCert: filepath.Join(dir, "client.pem"),
		clientKey:  filepath.Join(dir, "client.key"),
		pool:       x509.NewCertPool(),
	}
	for path, data := range map[string][]byte{f.ca: ca.CertPEM, f.clientCert: cli.CertPEM, f.clientKey: cli.KeyPEM} {
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	var err error
	if f.server, err = tls.X509KeyPair(srv.CertPEM, srv.KeyPEM); err != nil {
		t.Fatal(err)
	}
	f.pool.AddCert(ca.Cert)
	return f
}

func TestTLSSendsExactlyTheRecordsAsked(t *testing.T) {
	files := newTLSFiles(t)
	tests := []struct {
		name        string
		args        []string
		wantVersion uint16
		verifyPeer  bool
	}{
		{"TLS 1.2 verified with -ca", []string{"-tls-version", "1.2", "-ca", files.ca}, tls.VersionTLS12, false},
		{"TLS 1.3 verified with -ca", []string{"-tls-version", "1.3", "-ca", files.ca}, tls.VersionTLS13, false},
		{"TLS 1.3 with a client certificate the server requires",
			[]string{"-tls-version", "1.3", "-ca", files.ca, "-cert", files.clientCert, "-key", files.clientKey}, tls.VersionTLS13, true},
		{"TLS 1.2 with a client certificate the server requires",
			[]string{"-tls-version", "1.2", "-ca", files.ca, "-cert", files.clientCert, "-key", files.clientKey}, tls.VersionTLS12, true},
		{"no verification with -insecure", []string{"-insecure"}, tls.VersionTLS13, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			conf := &tls.Config{Certificates: []tls.Certificate{files.server}, MinVersion: tls.VersionTLS12}
			if tt.verifyPeer {
				conf.ClientAuth = tls.RequireAndVerifyClientCert
				conf.ClientCAs = files.pool
			}
			srv := startStreamServer(t, "syslen", "rfc5424", conf)
			args := append([]string{"-addr", srv.addr, "-proto", "tls", "-framing", "syslen", "-c", "2", "-n", "6001"}, tt.args...)
			sum := runOK(t, args...)
			var total int64
			for _, r := range srv.wait(t) {
				if len(r.bad) > 0 {
					t.Fatalf("%d bad frames, the first: %s", len(r.bad), r.bad[0])
				}
				if r.version != tt.wantVersion {
					t.Errorf("negotiated TLS version %#x; want %#x", r.version, tt.wantVersion)
				}
				total += r.frames
			}
			if total != 6001 || sum["records"] != "6001" {
				t.Errorf("server received %d records, summary says %s; want 6001", total, sum["records"])
			}
		})
	}
}

func TestTLSRefusesAServerTheCADoesNotVouchFor(t *testing.T) {
	files := newTLSFiles(t)
	other := newTLSFiles(t) // a second CA: its certificate did not sign the server's
	conf := &tls.Config{Certificates: []tls.Certificate{files.server}}
	srv := startStreamServer(t, "line", "rfc5424", conf)
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), []string{"-addr", srv.addr, "-proto", "tls", "-ca", other.ca, "-n", "10"}, &stdout, &stderr)
	if code != exitFailure {
		t.Errorf("exit code %d; want %d", code, exitFailure)
	}
	if !strings.Contains(stderr.String(), "certificate") {
		t.Errorf("stderr %q does not say the certificate was refused", stderr.String())
	}
	for _, r := range srv.wait(t) {
		if r.frames != 0 {
			t.Errorf("server received %d records from a client that should have refused it", r.frames)
		}
	}
}

// udpServer counts and checks datagrams on a loopback socket.
func startUDPServer(t *testing.T, format string, want int64) (addr string, wait func() *received) {
	t.Helper()
	c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	c.SetReadBuffer(4 << 20)
	r := &received{}
	done := make(chan struct{})
	go func() {
		defer close(done)
		chk := newChecker(t, format)
		buf := make([]byte, 65536)
		for r.frames < want {
			c.SetReadDeadline(time.Now().Add(5 * time.Second))
			n, err := c.Read(buf)
			if err != nil {
				return // the deadline: fewer datagrams than wanted arrived
			}
			chk.check(buf[:n], r)
		}
		// Anything beyond want is an error too: wait briefly for extras.
		c.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
		for {
			n, err := c.Read(buf)
			if err != nil {
				return
			}
			chk.check(buf[:n], r)
		}
	}()
	t.Cleanup(func() { c.Close() })
	return c.LocalAddr().String(), func() *received { <-done; return r }
}

func TestUDPSendsOneDatagramPerRecord(t *testing.T) {
	tests := []struct {
		name string
		args []string
	}{
		{"one socket, one write per datagram", []string{"-c", "1", "-batch", "1"}},
		{"two sockets with sendmmsg batches", []string{"-c", "2", "-batch", "32"}},
		{"RFC 3164 in batches from a pool smaller than a batch", []string{"-c", "1", "-batch", "64", "-pool", "10", "-format", "rfc3164"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			format := "rfc5424"
			if strings.Contains(strings.Join(tt.args, " "), "rfc3164") {
				format = "rfc3164"
			}
			const n = 3001
			addr, wait := startUDPServer(t, format, n)
			// The rate keeps the test's reader ahead of the sender, so that
			// the kernel drops nothing on loopback.
			args := append([]string{"-addr", addr, "-proto", "udp", "-n", strconv.Itoa(n), "-rate", "30000"}, tt.args...)
			sum := runOK(t, args...)
			r := wait()
			if len(r.bad) > 0 {
				t.Fatalf("%d bad datagrams, the first: %s", len(r.bad), r.bad[0])
			}
			if r.frames != n || sum["records"] != strconv.Itoa(n) {
				t.Errorf("server received %d datagrams, summary says %s; want %d", r.frames, sum["records"], n)
			}
		})
	}
}

func TestDurationStopsTheRunAndCountsWhatWasSent(t *testing.T) {
	srv := startStreamServer(t, "line", "rfc5424", nil)
	start := time.Now()
	sum := runOK(t, "-addr", srv.addr, "-c", "2", "-d", "300ms", "-rate", "20000")
	elapsed := time.Since(start)
	var total int64
	for _, r := range srv.wait(t) {
		total += r.frames
	}
	if strconv.FormatInt(total, 10) != sum["records"] {
		t.Errorf("server received %d records; summary says %s", total, sum["records"])
	}
	// Without -d the run would never end (no -n): any bound tells. It is
	// generous because starting a process on a loaded machine takes seconds.
	if elapsed < 300*time.Millisecond || elapsed > time.Minute {
		t.Errorf("a 300ms run took %v", elapsed)
	}
	// 20,000/s for 0.3 s is about 6,000; pacing is in 5 ms steps.
	if total < 4000 || total > 6500 {
		t.Errorf("sent %d records in 300ms at 20000/s; want about 6000", total)
	}
}

func TestRateLimitsTheRun(t *testing.T) {
	srv := startStreamServer(t, "line", "rfc5424", nil)
	start := time.Now()
	runOK(t, "-addr", srv.addr, "-n", "3000", "-rate", "10000")
	elapsed := time.Since(start)
	srv.wait(t)
	// The last chunk is due at 0.3 s less one chunk (50 records = 5 ms).
	if elapsed < 290*time.Millisecond {
		t.Errorf("3000 records at 10000/s took %v; want at least 290ms", elapsed)
	}
}

func TestFileModeWritesFramedDistinctLines(t *testing.T) {
	for _, framing := range []flowgo.Framing{flowgo.FramingLine, flowgo.FramingSyslen, flowgo.FramingNUL} {
		t.Run(string(framing)+" framing", func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "in.log")
			sum := runOK(t, "-o", path, "-n", "2345", "-framing", string(framing))
			f, err := os.Open(path)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			chk := newChecker(t, "rfc5424")
			r := &received{}
			seen := map[string]bool{}
			sp := input.NewSplitter(f, framing, 64<<10, false)
			for {
				frame, err := sp.Next()
				if errors.Is(err, io.EOF) {
					break
				}
				if err != nil {
					t.Fatalf("frame %d: %v", r.frames+1, err)
				}
				seen[string(frame)] = true
				chk.check(frame, r)
			}
			if len(r.bad) > 0 {
				t.Fatalf("%d bad frames, the first: %s", len(r.bad), r.bad[0])
			}
			if r.frames != 2345 || sum["records"] != "2345" {
				t.Errorf("file holds %d records, summary says %s; want 2345", r.frames, sum["records"])
			}
			if len(seen) != 2345 {
				t.Errorf("file holds %d distinct lines; want 2345 (each carries its own sequence number)", len(seen))
			}
		})
	}
}

func TestFileModeToStdoutKeepsStdoutForData(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if code := run(context.Background(), []string{"-o", "-", "-n", "10"}, &stdout, &stderr); code != exitOK {
		t.Fatalf("exit code %d; stderr: %s", code, stderr.String())
	}
	lines := strings.Split(strings.TrimSuffix(stdout.String(), "\n"), "\n")
	if len(lines) != 10 {
		t.Fatalf("stdout holds %d lines; want 10", len(lines))
	}
	for _, l := range lines {
		if !strings.HasPrefix(l, "<") {
			t.Errorf("stdout line %q is not a syslog line", l)
		}
	}
	if !strings.Contains(stderr.String(), "wrote 10 records") {
		t.Errorf("stderr %q lacks the summary", stderr.String())
	}
}

func TestBadCommandLinesExitWithUsageErrors(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"no target", []string{"-n", "10"}, "-addr or -o is required"},
		{"no count nor duration", []string{"-addr", "127.0.0.1:1"}, "-n or -d is required"},
		{"both a file and an address", []string{"-addr", "127.0.0.1:1", "-o", "x", "-n", "1"}, "exclude each other"},
		{"file mode without a count", []string{"-o", "x"}, "-o needs -n"},
		{"an unknown framing", []string{"-addr", "127.0.0.1:1", "-n", "1", "-framing", "octet"}, `-framing "octet"`},
		{"an unknown format", []string{"-addr", "127.0.0.1:1", "-n", "1", "-format", "gelf"}, `-format "gelf"`},
		{"an unknown transport", []string{"-addr", "127.0.0.1:1", "-n", "1", "-proto", "sctp"}, `-proto "sctp"`},
		{"TLS flags on TCP", []string{"-addr", "127.0.0.1:1", "-n", "1", "-insecure"}, "need -proto tls"},
		{"TLS without a way to trust the server", []string{"-addr", "127.0.0.1:1", "-n", "1", "-proto", "tls"}, "-ca FILE"},
		{"an unknown TLS version", []string{"-addr", "127.0.0.1:1", "-n", "1", "-proto", "tls", "-insecure", "-tls-version", "1.1"}, `-tls-version "1.1"`},
		{"fewer records than connections", []string{"-addr", "127.0.0.1:1", "-n", "3", "-c", "4"}, "less than -c"},
		{"zero connections", []string{"-addr", "127.0.0.1:1", "-n", "3", "-c", "0"}, "at least 1"},
		{"a stray argument", []string{"-addr", "127.0.0.1:1", "-n", "3", "extra"}, `unexpected argument "extra"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			if code := run(context.Background(), tt.args, &stdout, &stderr); code != exitUsage {
				t.Errorf("exit code %d; want %d", code, exitUsage)
			}
			if !strings.Contains(stderr.String(), tt.want) {
				t.Errorf("stderr %q; want it to contain %q", stderr.String(), tt.want)
			}
		})
	}
}

func TestHelpListsEveryFlag(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if code := run(context.Background(), []string{"-h"}, &stdout, &stderr); code != exitOK {
		t.Fatalf("exit code %d; want %d", code, exitOK)
	}
	for _, flag := range []string{"-addr", "-proto", "-format", "-framing", "-c ", "-n ", "-d ", "-rate", "-pool", "-write-size",
		"-batch", "-o ", "-tls-version", "-cert", "-key", "-ca", "-insecure", "-server-name", "-sndbuf", "-seed"} {
		if !strings.Contains(stderr.String(), flag) {
			t.Errorf("help lacks %s", flag)
		}
	}
}

func TestAConnectionRefusedIsAFailure(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there now
	var stdout, stderr bytes.Buffer
	if code := run(context.Background(), []string{"-addr", addr, "-n", "10"}, &stdout, &stderr); code != exitFailure {
		t.Errorf("exit code %d; want %d", code, exitFailure)
	}
	if !strings.Contains(stderr.String(), "refused") {
		t.Errorf("stderr %q does not say the connection was refused", stderr.String())
	}
}

func TestAnInterruptStopsAStuckSender(t *testing.T) {
	// A server that accepts and never reads: the sender blocks once the
	// socket buffers are full, and the interrupt must still end the run.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err == nil {
			defer c.Close()
			time.Sleep(10 * time.Second)
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	var stdout, stderr bytes.Buffer
	start := time.Now()
	code := run(ctx, []string{"-addr", ln.Addr().String(), "-n", "100000000", "-pool", "1000"}, &stdout, &stderr)
	if code != exitFailure || !strings.Contains(stderr.String(), "interrupted") {
		t.Errorf("exit code %d, stderr %q; want %d and \"interrupted\"", code, stderr.String(), exitFailure)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("the interrupted run took %v to end", d)
	}
	if !strings.Contains(stdout.String(), "records=") {
		t.Errorf("an interrupted run still reports what it sent; stdout %q", stdout.String())
	}
}

func TestShareAddsUpToTheTotal(t *testing.T) {
	for _, tt := range []struct {
		total int64
		n     int
	}{{10, 3}, {7, 7}, {1000003, 4}, {5, 1}} {
		var sum int64
		for i := range tt.n {
			sum += share(tt.total, i, tt.n)
		}
		if sum != tt.total {
			t.Errorf("shares of %d over %d add up to %d", tt.total, tt.n, sum)
		}
	}
}
