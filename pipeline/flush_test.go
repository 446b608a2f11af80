package pipeline

import (
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/flowgo/flowgo/internal/syncbuf"
	"github.com/flowgo/flowgo/internal/testcerts"
)

// A buffering file output (file_buffer_size far larger than the records,
// file_flush_interval an hour) writes a burst out as soon as the queue runs
// empty, not when the buffer fills or the hour passes; and a second burst
// likewise.
func TestABufferedOutputIsFlushedWhenTheQueueRunsEmpty(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "out.log")
	pr, pw := io.Pipe()
	p := build(t, fmt.Sprintf(`
[input]
type = "stdin"
format = "testline"
[output]
type = "file"
format = "testmsg"
framing = "line"
file_path = %q
file_buffer_size = 1048576
file_flush_interval = "1h"
`, out), Options{Stdin: pr})
	defer runBackground(t, p, pw)()
	for burst := range 2 {
		var want strings.Builder
		for i := range 3 {
			fmt.Fprintf(&want, "burst %d record %d\n", burst, i)
		}
		if _, err := io.WriteString(pw, want.String()); err != nil {
			t.Fatal(err)
		}
		prefix := ""
		if burst == 1 {
			prefix = "burst 0 record 0\nburst 0 record 1\nburst 0 record 2\n"
		}
		waitFor(t, fmt.Sprintf("burst %d in the file (it stays in the buffer until the queue runs empty)", burst), func() bool {
			b, _ := os.ReadFile(out)
			return string(b) == prefix+want.String()
		})
	}
	if n := p.Stats().Sent.Load(); n != 6 {
		t.Errorf("sent %d records; want 6", n)
	}
}

// The TLS output with tls_async buffers what it is given; when the queue
// runs empty its lanes write it out at once, not at the next
// tls_flush_interval (an hour here), and not only once 64 KiB are buffered.
func TestATLSAsyncOutputWritesWhenTheQueueRunsEmpty(t *testing.T) {
	dir := t.TempDir()
	ca := testcerts.NewCA(t, "flush test CA")
	srv := ca.Server(t)
	caFile := testcerts.WriteFile(t, dir, "ca.pem", ca.CertPEM)
	pair, err := tls.X509KeyPair(srv.CertPEM, srv.KeyPEM)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{pair}})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var mu sync.Mutex
	var got bytes.Buffer
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				buf := make([]byte, 64<<10)
				for {
					n, err := c.Read(buf)
					mu.Lock()
					got.Write(buf[:n])
					mu.Unlock()
					if err != nil {
						return
					}
				}
			}()
		}
	}()
	pr, pw := io.Pipe()
	p := build(t, fmt.Sprintf(`
[input]
type = "stdin"
format = "testline"
[output]
type = "tls"
format = "testmsg"
framing = "nul"
connect = [%q]
tls_ca_file = %q
tls_async = true
tls_flush_interval = "1h"
`, ln.Addr().String(), caFile), Options{Stdin: pr})
	defer runBackground(t, p, pw)()
	want := ""
	for burst := range 2 {
		for i := range 3 {
			line := fmt.Sprintf("burst %d record %d", burst, i)
			want += line + "\x00"
			if _, err := io.WriteString(pw, line+"\n"); err != nil {
				t.Fatal(err)
			}
		}
		waitFor(t, fmt.Sprintf("burst %d at the TLS server (it stays in the lane's buffer until the queue runs empty)", burst), func() bool {
			mu.Lock()
			defer mu.Unlock()
			return got.String() == want
		})
	}
}

// A flush that keeps failing is tried again at the end of every burst, but
// logged once per 10 s (the output's rate-limited failure log), not once a
// burst; the records it holds are delivered once it succeeds.
func TestAFailingFlushIsNotLoggedEveryBurst(t *testing.T) {
	o := &bufOutput{gate: make(chan struct{})}
	bufOuts.Add(t.Name(), o)
	var logs syncbuf.Buffer
	pr, pw := io.Pipe()
	p := build(t, fmt.Sprintf("[input]\ntype = \"stdin\"\nformat = \"testline\"\n[output]\ntype = \"testbuffered\"\nid = %q\nformat = \"testmsg\"\nframing = \"line\"\n", t.Name()),
		Options{Stdin: pr, Log: slog.New(slog.NewTextHandler(&logs, nil))})
	done := make(chan error)
	go func() { done <- p.Run(context.Background()) }()
	const bursts = 5
	for burst := range bursts {
		if _, err := fmt.Fprintf(pw, "burst %d\n", burst); err != nil {
			t.Fatal(err)
		}
		waitFor(t, fmt.Sprintf("burst %d in the output's buffer", burst), func() bool {
			o.mu.Lock()
			defer o.mu.Unlock()
			return len(o.buffered) == burst+1
		})
		// The stage tries the flush once the queue is empty.
		waitFor(t, fmt.Sprintf("the flush after burst %d", burst), func() bool {
			o.mu.Lock()
			defer o.mu.Unlock()
			return o.tries >= burst+1
		})
	}
	// One line per 10 s: 1 unless the machine is so loaded that the bursts
	// took longer; never one a burst, and never none.
	if n := strings.Count(logs.String(), `msg="output flush failed"`); n < 1 || n >= bursts {
		t.Errorf("%d bursts whose flush failed logged %d lines; want 1:\n%s", bursts, n, logs.String())
	}
	close(o.gate)
	pw.Close()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if len(o.flushed) != bursts {
		t.Errorf("flushed %d records; want %d", len(o.flushed), bursts)
	}
}
