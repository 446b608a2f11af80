//go:build linux

package main

// The TLS output with the real codecs, RFC 5424 in and GELF out: through
// the built binary (flowgoBin, from TestMain in e2e_test.go), and once
// through pipeline.Build in this process.

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/flowgo/flowgo/config"
	"github.com/flowgo/flowgo/internal/testcerts"
	"github.com/flowgo/flowgo/pipeline"
)

// gelfServer is a TLS server that keeps the NUL-terminated frames each
// connection delivers.
type gelfServer struct {
	ln     net.Listener
	addr   string
	caFile string
	cfg    *tls.Config
	hold   <-chan struct{}
	wg     sync.WaitGroup

	mu     sync.Mutex
	conns  [][][]byte // the frames of each connection, in order
	open   int        // connections not yet closed by the client
	closed []net.Conn
}

// newGELFServer listens on a free loopback port with a certificate signed
// by the CA in caFile. When rcvBuf > 0 it is the listener's SO_RCVBUF; when
// hold is not nil, connections read nothing until it is closed.
func newGELFServer(t *testing.T, rcvBuf int, hold <-chan struct{}) *gelfServer {
	t.Helper()
	ca := testcerts.NewCA(t, "flowgo output CA")
	leaf := ca.Server(t)
	cert, err := tls.X509KeyPair(leaf.CertPEM, leaf.KeyPEM)
	if err != nil {
		t.Fatal(err)
	}
	var lc net.ListenConfig
	if rcvBuf > 0 {
		lc.Control = func(_, _ string, c syscall.RawConn) error {
			var serr error
			err := c.Control(func(fd uintptr) {
				serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, rcvBuf)
			})
			return errors.Join(err, serr)
		}
	}
	ln, err := lc.Listen(context.Background(), "tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &gelfServer{
		ln: ln, addr: ln.Addr().String(), hold: hold,
		caFile: testcerts.WriteFile(t, t.TempDir(), "ca.pem", ca.CertPEM),
		cfg:    &tls.Config{Certificates: []tls.Certificate{cert}},
	}
	s.wg.Go(s.accept)
	t.Cleanup(func() {
		ln.Close()
		s.mu.Lock()
		for _, c := range s.closed {
			c.Close()
		}
		s.mu.Unlock()
		s.wg.Wait()
	})
	return s
}

func (s *gelfServer) accept() {
	for {
		c, err := s.ln.Accept()
		if err != nil {
			return
		}
		s.mu.Lock()
		i := len(s.conns)
		s.conns = append(s.conns, nil)
		s.open++
		s.closed = append(s.closed, c)
		s.mu.Unlock()
		s.wg.Go(func() { s.serve(i, c) })
	}
}

func (s *gelfServer) serve(i int, c net.Conn) {
	defer func() {
		c.Close()
		s.mu.Lock()
		s.open--
		s.mu.Unlock()
	}()
	tc := tls.Server(c, s.cfg)
	if err := tc.Handshake(); err != nil {
		return
	}
	if s.hold != nil {
		<-s.hold
	}
	buf := make([]byte, 64<<10)
	var pending []byte
	for {
		n, err := tc.Read(buf)
		pending = append(pending, buf[:n]...)
		for {
			j := bytes.IndexByte(pending, 0)
			if j < 0 {
				break
			}
			s.mu.Lock()
			s.conns[i] = append(s.conns[i], bytes.Clone(pending[:j]))
			s.mu.Unlock()
			pending = pending[j+1:]
		}
		if err != nil {
			return
		}
	}
}

// frames returns every frame received so far, connection by connection.
func (s *gelfServer) frames() [][]byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out [][]byte
	for _, c := range s.conns {
		out = append(out, c...)
	}
	return out
}

// wait waits until the client has closed every connection, for at most d.
func (s *gelfServer) wait(d time.Duration) bool {
	for deadline := time.Now().Add(d); ; time.Sleep(5 * time.Millisecond) {
		s.mu.Lock()
		open := s.open
		s.mu.Unlock()
		if open == 0 {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
	}
}

// checkTLSGELF checks that the server got one GELF message per line sent,
// each once, in the order sent.
func checkTLSGELF(t *testing.T, s *gelfServer, msgs, hosts []string) {
	t.Helper()
	index := map[string]int{}
	for i, m := range msgs {
		index[m] = i
	}
	seen, last := map[int]bool{}, -1
	for _, f := range s.frames() {
		var g struct {
			Version      string  `json:"version"`
			Host         string  `json:"host"`
			ShortMessage string  `json:"short_message"`
			Timestamp    float64 `json:"timestamp"`
			Level        int     `json:"level"`
		}
		if err := json.Unmarshal(f, &g); err != nil {
			t.Fatalf("frame %q is not GELF JSON: %v", f, err)
		}
		i, ok := index[g.ShortMessage]
		if !ok || g.Host != hosts[i] || g.Version != "1.1" || g.Level != 5 || g.Timestamp < 1714564800 {
			t.Fatalf("frame %s does not match a line sent", f)
		}
		if seen[i] {
			t.Errorf("line %d arrived twice", i)
		}
		if i < last {
			t.Errorf("line %d after line %d", i, last)
		}
		seen[i], last = true, i
	}
	if len(seen) != len(msgs) {
		t.Errorf("%d of %d lines arrived", len(seen), len(msgs))
	}
}

// The real codecs through the pipeline, in this process: RFC 5424 in, GELF
// over TLS out, NUL-terminated by default.
func TestTLSSendsGELFFromSyslog(t *testing.T) {
	s := newGELFServer(t, 0, nil)
	f, err := config.Parse("test.toml", fmt.Sprintf(`
[input]
type = "stdin"
format = "rfc5424"
[output]
type = "syslog-tls"
format = "gelf"
connect = [%q]
tls_ca_file = %q
`, s.addr, s.caFile))
	if err != nil {
		t.Fatal(err)
	}
	in, msgs, hosts := syslogLines(5000)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	pl, err := pipeline.Build(f, pipeline.Options{Stdin: strings.NewReader(in), Log: log})
	if err != nil {
		t.Fatal(err)
	}
	if err := pl.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	s.wait(5 * time.Second)
	checkTLSGELF(t, s, msgs, hosts)
}

func TestTLSBinaryEndToEnd(t *testing.T) {
	t.Run("syslog over TCP to TLS GELF, drained on SIGTERM", func(t *testing.T) {
		s := newGELFServer(t, 0, nil)
		cfg := writeConfig(t, fmt.Sprintf(`
[input]
type = "syslog-tcp"
listen = "127.0.0.1:0"
format = "rfc5424"
[output]
type = "tls"
format = "gelf"
connect = [%q]
tls_ca_file = %q
`, s.addr, s.caFile))
		p, addr := startFlowgo(t, cfg, "tcp")
		in, msgs, hosts := syslogLines(5000)
		sendTCP(t, addr, in)
		waitUntil(t, "every line at the TLS server", func() bool { return len(s.frames()) >= len(msgs) })
		p.stopClean()
		if !s.wait(5 * time.Second) {
			t.Error("flowgo exited without closing its TLS connection")
		}
		checkTLSGELF(t, s, msgs, hosts)
	})

	t.Run("what the server did not acknowledge by the shutdown timeout is reported", func(t *testing.T) {
		hold := make(chan struct{})
		defer close(hold)
		s := newGELFServer(t, 64<<10, hold)
		cfg := writeConfig(t, fmt.Sprintf(`
[input]
type = "stdin"
format = "rfc5424"
[output]
type = "tls"
format = "gelf"
connect = [%q]
tls_ca_file = %q
shutdown_timeout = "500ms"
`, s.addr, s.caFile))
		in, _, _ := syslogLines(50000)
		cmd := exec.Command(flowgoBin, "run", "-c", cfg)
		pr, pw, err := os.Pipe()
		if err != nil {
			t.Fatal(err)
		}
		cmd.Stdin = pr
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		pr.Close()
		defer cmd.Process.Kill()
		go func() { pw.WriteString(in); pw.Close() }()
		time.Sleep(time.Second)
		start := time.Now()
		cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Fatalf("flowgo still runs 10 s after SIGTERM with a 500ms shutdown timeout\n%s", stderr.Bytes())
		}
		if d := time.Since(start); d < 400*time.Millisecond {
			t.Errorf("flowgo exited %v after SIGTERM: it did not wait for the server", d)
		}
		if !strings.Contains(stderr.String(), "not acknowledged by the server at close") {
			t.Errorf("stderr does not report the records the server did not acknowledge:\n%s", stderr.Bytes())
		}
	})
}
