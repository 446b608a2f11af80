//go:build linux

package main

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// TestStreamBuffersBoundMemory opens thousands of connections that each
// send 64,999 bytes of a frame and no line end, the way an attacker (or a
// stuck sender) would, and checks that flowgo's peak RSS stays within
// stream_buffer_max_bytes plus a constant per connection (what
// max_connections bounds) plus a constant, rather than growing by a
// frame's worth per connection (about 90 KB per connection: 550 MB for
// 6,000, 270 MB for these 3,000, before). Then every connection finishes
// its frame and all of them must arrive: connections that waited for the
// budget are served in turn.
func TestStreamBuffersBoundMemory(t *testing.T) {
	const (
		conns   = 3000
		size    = 64999
		budget  = 16 << 20
		perConn = 16 << 10 // goroutines, the connection's own 4 KiB buffer, the socket: what max_connections bounds
		base    = 32 << 20 // the process before any connection (14 MiB), and room for the garbage collector
	)
	// Go raises the soft limit on open files to the hard one; the test
	// and flowgo each need one descriptor per connection.
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil || rl.Cur < conns+256 {
		t.Fatalf("open files limit %d (%v): this test needs %d; raise it (ulimit -n)", rl.Cur, err, conns+256)
	}
	cfg := writeConfig(t, fmt.Sprintf(`
[input]
type = "tcp"
listen = "127.0.0.1:0"
format = "rfc5424"
stream_buffer_max_bytes = %d
queue_max_bytes = 8388608
[output]
type = "stdout"
format = "passthrough"
[metrics]
listen = "127.0.0.1:0"
`, budget))
	cmd := exec.Command(flowgoBin, "run", "-c", cfg)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	input, metrics := listenAddresses(t, stderr)

	scrape := func(name string) float64 {
		t.Helper()
		resp, err := http.Get("http://" + metrics + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			if f := strings.Fields(sc.Text()); len(f) == 2 && strings.HasPrefix(f[0], name+"{") {
				v, _ := strconv.ParseFloat(f[1], 64)
				return v
			}
		}
		t.Fatalf("%s not found in /metrics", name)
		return 0
	}

	frame := append([]byte("<13>1 - - - - - - "), bytes.Repeat([]byte("x"), size-len("<13>1 - - - - - - "))...)
	finish := make(chan struct{})
	var wg sync.WaitGroup
	clients := make([]net.Conn, 0, conns)
	defer func() {
		for _, c := range clients {
			c.Close()
		}
	}()
	for range conns {
		c, err := net.Dial("tcp", input)
		if err != nil {
			t.Fatalf("connection %d: %v", len(clients), err)
		}
		clients = append(clients, c)
		wg.Go(func() {
			if _, err := c.Write(frame); err != nil {
				t.Errorf("write: %v", err)
				return
			}
			<-finish
			if _, err := c.Write([]byte("\n")); err != nil {
				t.Errorf("write: %v", err)
			}
		})
	}

	// Wait until flowgo reads no more: what it could take within the
	// budget is read, the rest waits in the sockets.
	var read float64
	for stable := 0; stable < 10; {
		time.Sleep(200 * time.Millisecond)
		if n := scrape("flowgo_input_bytes_total"); n != read {
			read, stable = n, 0
		} else {
			stable++
		}
	}
	hwm := vmHWM(t, cmd.Process.Pid)
	limit := int64(budget + conns*perConn + base)
	t.Logf("%d connections with a partial frame of %d bytes: %.0f bytes read, peak RSS %d MiB (limit %d MiB)",
		conns, size, read, hwm>>20, limit>>20)
	if hwm > limit {
		t.Errorf("peak RSS %d MiB; want at most %d MiB (budget %d MiB + %d KiB per connection + %d MiB)",
			hwm>>20, limit>>20, budget>>20, perConn>>10, base>>20)
	}
	if read >= conns*size {
		t.Errorf("flowgo read all %.0f bytes: the budget did not stop reading", read)
	}

	close(finish)
	wg.Wait()
	deadline := time.Now().Add(120 * time.Second)
	for scrape("flowgo_input_records_total") < conns {
		if time.Now().After(deadline) {
			t.Fatalf("%v of %d frames arrived once finished", scrape("flowgo_input_records_total"), conns)
		}
		time.Sleep(100 * time.Millisecond)
	}
	// Decoding, queueing and writing 195 MB take more (the queue, the
	// records waiting for it, which the budget also bounds, recycled
	// buffers, and the collector's slack): logged, not asserted.
	t.Logf("peak RSS %d MiB once every frame was decoded and written", vmHWM(t, cmd.Process.Pid)>>20)
	cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("flowgo exit: %v", err)
		}
	case <-time.After(60 * time.Second):
		t.Error("flowgo did not exit within 60s of SIGTERM")
	}
}

// listenAddresses reads flowgo's log until it names the input's and the
// metrics' addresses, then drains the rest in the background.
func listenAddresses(t *testing.T, stderr io.Reader) (input, metrics string) {
	t.Helper()
	re := regexp.MustCompile(`msg="?(listening|metrics listening)"? .*address=(\S+)`)
	sc := bufio.NewScanner(stderr)
	var seen []string
	for (input == "" || metrics == "") && sc.Scan() {
		seen = append(seen, sc.Text())
		if m := re.FindStringSubmatch(sc.Text()); m != nil {
			if m[1] == "listening" {
				input = m[2]
			} else {
				metrics = m[2]
			}
		}
	}
	if input == "" || metrics == "" {
		t.Fatalf("flowgo did not say where it listens:\n%s", strings.Join(seen, "\n"))
	}
	go io.Copy(io.Discard, stderr)
	return input, metrics
}
