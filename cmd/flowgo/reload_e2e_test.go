package main

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/flowgo/flowgo/internal/syncbuf"
)

var (
	loadgenOnce sync.Once
	loadgenBin  string
	loadgenErr  error
)

// buildLoadgen builds cmd/flowgo-loadgen next to the flowgo binary.
func buildLoadgen(t *testing.T) string {
	loadgenOnce.Do(func() {
		loadgenBin = filepath.Join(filepath.Dir(flowgoBin), "flowgo-loadgen")
		out, err := exec.Command("go", "build", "-o", loadgenBin, "../flowgo-loadgen").CombinedOutput()
		if err != nil {
			loadgenErr = fmt.Errorf("building flowgo-loadgen: %v\n%s", err, out)
		}
	})
	if loadgenErr != nil {
		t.Fatal(loadgenErr)
	}
	return loadgenBin
}

// SIGHUP with a changed udp input while flowgo-loadgen sends 10,000
// datagrams/s from a connected socket: the old input hands its socket to
// the new one, so the port is never unbound. Before, a datagram sent while
// it was bound again met "port unreachable", was lost, and the load
// generator's next send failed with ECONNREFUSED (issue 16, item 3).
func TestReloadOfAUDPInputLosesNoDatagram(t *testing.T) {
	lg := buildLoadgen(t)
	dir := t.TempDir()
	out := filepath.Join(dir, "out.log")
	port := freeUDPPort(t)
	conf := func(buf int) string {
		return fmt.Sprintf("[input]\ntype = \"udp\"\nlisten = \"127.0.0.1:%d\"\nformat = \"rfc5424\"\nudp_recv_buffer = %d\n"+
			"[output]\ntype = \"file\"\nfile_path = %q\nformat = \"rfc5424\"\n", port, buf, out)
	}
	cfg := writeConfig(t, conf(4000000))
	fg := exec.Command(flowgoBin, "run", "-c", cfg)
	var fgLog syncbuf.Buffer
	fg.Stderr = &fgLog
	if err := fg.Start(); err != nil {
		t.Fatal(err)
	}
	defer fg.Process.Kill()
	waitForLog(t, &fgLog, "msg=listening", 20*time.Second)

	const n = 30000
	send := exec.Command(lg, "-addr", fmt.Sprintf("127.0.0.1:%d", port), "-proto", "udp", "-rate", "10000", "-batch", "1", "-n", fmt.Sprint(n))
	var lgOut, lgErr bytes.Buffer
	send.Stdout, send.Stderr = &lgOut, &lgErr
	if err := send.Start(); err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		time.Sleep(700 * time.Millisecond)
		if err := os.WriteFile(cfg, []byte(conf(4000000+i+1)), 0o600); err != nil {
			t.Fatal(err)
		}
		fg.Process.Signal(syscall.SIGHUP)
	}
	if err := send.Wait(); err != nil {
		t.Fatalf("flowgo-loadgen failed (a datagram refused during a reload?): %v\n%s", err, lgErr.String())
	}
	waitForLines(t, out, n, 20*time.Second)
	fg.Process.Signal(syscall.SIGTERM)
	fg.Wait()
	if got := strings.Count(fgLog.String(), "SIGHUP: reloaded"); got != 3 {
		t.Fatalf("%d reloads logged; want 3\n%s", got, fgLog.String())
	}
	data, _ := os.ReadFile(out)
	if got := bytes.Count(data, []byte("\n")); got != n {
		t.Fatalf("%d records written; want the %d sent", got, n)
	}
}

func freeUDPPort(t *testing.T) int {
	c, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	return c.LocalAddr().(*net.UDPAddr).Port
}

// waitForLog waits until log holds s.
func waitForLog(t *testing.T, log *syncbuf.Buffer, s string, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !strings.Contains(log.String(), s) {
		if time.Now().After(deadline) {
			t.Fatalf("%q not logged within %v:\n%s", s, within, log.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// waitForLines waits until the file at path holds n lines (or the time
// passes: the caller checks).
func waitForLines(t *testing.T, path string, n int, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		data, _ := os.ReadFile(path)
		if bytes.Count(data, []byte("\n")) >= n {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
}
