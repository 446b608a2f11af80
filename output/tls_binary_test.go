//go:build linux

package output_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/flowgo/flowgo/config"
	"github.com/flowgo/flowgo/pipeline"
)

// checkTLSGELF checks that the sink got one GELF message per line sent,
// each once, in the order sent.
func checkTLSGELF(t *testing.T, s *sink, msgs, hosts []string) {
	t.Helper()
	index := map[string]int{}
	for i, m := range msgs {
		index[m] = i
	}
	seen, last := map[int]bool{}, -1
	for _, c := range s.Conns() {
		for _, f := range c.frames {
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
	}
	if len(seen) != len(msgs) {
		t.Errorf("%d of %d lines arrived", len(seen), len(msgs))
	}
}

// The real codecs through the pipeline: RFC 5424 in, GELF over TLS out,
// NUL-terminated by default.
func TestTLSSendsGELFFromSyslog(t *testing.T) {
	p := newPKI(t)
	s := newSink(t, sinkOptions{cert: p.server, keep: true})
	f, err := config.Parse("test.toml", fmt.Sprintf(`
[input]
type = "stdin"
format = "rfc5424"
[output]
type = "syslog-tls"
format = "gelf"
connect = [%q]
tls_ca_file = %q
`, s.Addr, p.caFile))
	if err != nil {
		t.Fatal(err)
	}
	in, msgs, hosts := syslogLines(5000)
	pl, err := pipeline.Build(f, pipeline.Options{Stdin: strings.NewReader(in), Log: testLog(t)})
	if err != nil {
		t.Fatal(err)
	}
	if err := pl.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	s.Wait(5 * time.Second)
	checkTLSGELF(t, s, msgs, hosts)
}

func TestTLSBinaryEndToEnd(t *testing.T) {
	bin, help := buildFlowgo(t)
	p := newPKI(t)

	t.Run("syslog over TCP to TLS GELF, drained on SIGTERM", func(t *testing.T) {
		needs(t, help, [2]string{"Input types:", "tcp"}, [2]string{"Input formats:", "rfc5424"}, [2]string{"Output formats:", "gelf"})
		s := newSink(t, sinkOptions{cert: p.server, keep: true})
		port := freePort(t)
		cfg := filepath.Join(t.TempDir(), "flowgo.toml")
		os.WriteFile(cfg, fmt.Appendf(nil, `
[input]
type = "syslog-tcp"
listen = "127.0.0.1:%d"
format = "rfc5424"
[output]
type = "tls"
format = "gelf"
connect = [%q]
tls_ca_file = %q
`, port, s.Addr, p.caFile), 0o600)
		cmd, stderr := startFlowgo(t, bin, cfg)
		defer cmd.Process.Kill()
		in, msgs, hosts := syslogLines(5000)
		sendTCP(t, port, stderr, in)
		waitFor(t, func() bool {
			n := 0
			for _, c := range s.Conns() {
				n += len(c.frames)
			}
			return n >= len(msgs)
		}, "every line at the TLS server")
		cmd.Process.Signal(syscall.SIGTERM)
		if err := cmd.Wait(); err != nil {
			t.Fatalf("flowgo exited with %v after SIGTERM\n%s", err, stderr.Bytes())
		}
		if !s.Wait(5 * time.Second) {
			t.Error("flowgo exited without closing its TLS connection")
		}
		checkTLSGELF(t, s, msgs, hosts)
	})

	t.Run("what the server did not acknowledge by the shutdown timeout is reported", func(t *testing.T) {
		needs(t, help, [2]string{"Input formats:", "rfc5424"}, [2]string{"Output formats:", "gelf"})
		hold := make(chan struct{})
		defer close(hold)
		s := newSink(t, sinkOptions{cert: p.server, keep: true, rcvBuf: 64 << 10, hold: hold})
		cfg := filepath.Join(t.TempDir(), "flowgo.toml")
		os.WriteFile(cfg, fmt.Appendf(nil, `
[input]
type = "stdin"
format = "rfc5424"
[output]
type = "tls"
format = "gelf"
connect = [%q]
tls_ca_file = %q
shutdown_timeout = "500ms"
`, s.Addr, p.caFile), 0o600)
		in, _, _ := syslogLines(50000)
		cmd := exec.Command(bin, "run", "-c", cfg)
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
