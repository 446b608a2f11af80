package main

// End-to-end tests of what an operator meets on day one: the version
// flags, flowgo tap, and pipe's progress line.

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/creack/pty"
	fg "github.com/flowgo/flowgo"

	"github.com/flowgo/flowgo/decoder"
	"github.com/flowgo/flowgo/internal/sample"
)

func TestVersionFlags(t *testing.T) {
	want := regexp.MustCompile(`^flowgo \S+ \(commit \S+, go1\.\d+`)
	for _, args := range [][]string{{"version"}, {"--version"}, {"-version"}, {"-v"}} {
		r := flowgo(t, nil, args...)
		if r.code != 0 || !want.MatchString(r.stdout) || r.stderr != "" {
			t.Errorf("flowgo %v: exit %d, stdout %q, stderr %q; want 0 and the version", args, r.code, r.stdout, r.stderr)
		}
	}
}

var metricsRE = regexp.MustCompile(`msg="metrics listening" address=(\S+)`)

// metricsAddr waits until flowgo logs its metrics listener.
func (d *daemon) metricsAddr() string {
	d.t.Helper()
	var addr string
	waitUntil(d.t, "the metrics listener", func() bool {
		if m := metricsRE.FindStringSubmatch(d.stderr.String()); m != nil {
			addr = m[1]
			return true
		}
		return false
	})
	return addr
}

// feed sends lines made by line(i) on one TCP connection, one every 20 ms,
// until stop is closed.
func feed(t *testing.T, addr string, line func(i int) string, stop <-chan struct{}) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		defer c.Close()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			case <-time.After(20 * time.Millisecond):
			}
			if _, err := c.Write([]byte(line(i) + "\n")); err != nil {
				return
			}
		}
	}()
}

// tap runs flowgo tap with args while lines are fed to the daemon's tcp
// input, and returns what it printed.
func tapWhileFeeding(t *testing.T, addr string, line func(i int) string, args ...string) result {
	t.Helper()
	stop := make(chan struct{})
	defer close(stop)
	feed(t, addr, line, stop)
	cmd := exec.Command(flowgoBin, append([]string{"tap"}, args...)...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		}
		return result{stdout: out.String(), stderr: errb.String(), code: code}
	case <-time.After(30 * time.Second):
		cmd.Process.Kill()
		<-done
		t.Fatalf("flowgo tap %v did not end within 30s; stdout:\n%s\nstderr:\n%s", args, out.String(), errb.String())
	}
	return result{}
}

func TestTapShowsRecordsLive(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "out.log")
	d := startDaemon(t, dir, fmt.Sprintf(`
[input]
name = "web"
type = "tcp"
listen = "127.0.0.1:0"
format = "rfc5424"
[output]
type = "file"
format = "gelf"
file_path = %q
[metrics]
listen = "127.0.0.1:0"
`, out))
	addr, metrics := d.addr("tcp"), d.metricsAddr()
	var seq atomic.Int64
	good := func(int) string {
		return fmt.Sprintf(`<14>1 2026-12-07T10:00:00Z host1 app 42 - [ex@32473 k="v"] tap test %d`, seq.Add(1))
	}

	t.Run("an input's records in the format asked", func(t *testing.T) {
		r := tapWhileFeeding(t, addr, good, "--metrics-url", metrics, "--input", "web", "--format", "rfc5424", "-n", "3")
		lines := strings.Split(strings.TrimSuffix(r.stdout, "\n"), "\n")
		if r.code != 0 || len(lines) != 3 {
			t.Fatalf("exit %d, %d lines; want 0 and 3:\n%s\nstderr: %s", r.code, len(lines), r.stdout, r.stderr)
		}
		dec, _ := decoder.New("rfc5424", nil)
		for _, l := range lines {
			var rec fg.Record
			err := dec.Decode([]byte(l), &rec, new(fg.Arena))
			if err != nil || rec.Hostname != "host1" || !strings.HasPrefix(rec.Msg, "tap test ") {
				t.Errorf("tapped %q: %v; want an RFC 5424 record of the test", l, err)
			}
		}
	})
	t.Run("the records an output delivered, as it wrote them", func(t *testing.T) {
		r := tapWhileFeeding(t, addr, good, "--metrics-url", "http://"+metrics, "--output", "file:"+out, "-n", "2")
		lines := strings.Split(strings.TrimSuffix(r.stdout, "\n"), "\n")
		if r.code != 0 || len(lines) != 2 {
			t.Fatalf("exit %d, %d lines; want 0 and 2:\n%s\nstderr: %s", r.code, len(lines), r.stdout, r.stderr)
		}
		for _, l := range lines {
			var m map[string]any
			if err := json.Unmarshal([]byte(l), &m); err != nil || m["host"] != "host1" || !strings.HasPrefix(fmt.Sprint(m["short_message"]), "tap test ") {
				t.Errorf("tapped %q (%v); want the GELF the file output wrote", l, err)
			}
		}
	})
	t.Run("rejected frames with their reason", func(t *testing.T) {
		bad := func(i int) string { return fmt.Sprintf("not syslog %d", i) }
		r := tapWhileFeeding(t, addr, bad, "--metrics-url", metrics, "--rejected", "-n", "1")
		want := regexp.MustCompile(`^input web peer 127\.0\.0\.1:\d+ line \d+: rfc5424: want '<' to open the priority \[col 1\]: "not syslog \d+"\n$`)
		if r.code != 0 || !want.MatchString(r.stdout) {
			t.Errorf("exit %d, stdout %q; want 0 and a line matching %s\nstderr: %s", r.code, r.stdout, want, r.stderr)
		}
	})
	t.Run("an unknown component is an error listing the known ones", func(t *testing.T) {
		r := flowgo(t, nil, "tap", "--metrics-url", metrics, "--input", "nosuch")
		if r.code != 1 || !strings.Contains(r.stderr, `no such component (known: input "web", output "file:`+out+`")`) {
			t.Errorf("exit %d, stderr %q; want 1 and the known components", r.code, r.stderr)
		}
	})
	t.Run("an unknown format is an error", func(t *testing.T) {
		r := flowgo(t, nil, "tap", "--metrics-url", metrics, "--format", "xml")
		if r.code != 1 || !strings.Contains(r.stderr, `format: `) || !strings.Contains(r.stderr, `"xml"`) {
			t.Errorf("exit %d, stderr %q; want 1 and the bad format", r.code, r.stderr)
		}
	})
	d.stop()
	t.Run("no listener is an error saying where it looked", func(t *testing.T) {
		r := flowgo(t, nil, "tap", "--metrics-url", metrics)
		if r.code != 1 || !strings.Contains(r.stderr, "cannot reach flowgo's metrics listener at "+metrics) {
			t.Errorf("exit %d, stderr %q; want 1 and the address", r.code, r.stderr)
		}
	})
}

// pipeOnPty runs flowgo pipe with stdin from a regular file of n RFC 5424
// lines, stdout to a file, and stderr on a pseudo-terminal when tty (a pipe
// otherwise), and returns what stderr showed.
func pipeOnPty(t *testing.T, n int, tty bool, args ...string) (string, int) {
	t.Helper()
	dir := t.TempDir()
	in := filepath.Join(dir, "in.log")
	if err := os.WriteFile(in, sample.Lines(n, sample.New(1).RFC5424), 0o644); err != nil {
		t.Fatal(err)
	}
	stdin, err := os.Open(in)
	if err != nil {
		t.Fatal(err)
	}
	defer stdin.Close()
	stdout, err := os.Create(filepath.Join(dir, "out.json"))
	if err != nil {
		t.Fatal(err)
	}
	defer stdout.Close()
	cmd := exec.Command(flowgoBin, append([]string{"pipe", "--from", "rfc5424", "--to", "gelf"}, args...)...)
	cmd.Stdin, cmd.Stdout = stdin, stdout
	var got bytes.Buffer
	read := make(chan struct{})
	if tty {
		master, slave, err := pty.Open()
		if err != nil {
			t.Fatal(err)
		}
		defer master.Close()
		cmd.Stderr = slave
		go func() {
			defer close(read)
			io.Copy(&got, master) // ends with EIO once the child and we closed the slave
		}()
		err = cmd.Start()
		slave.Close()
		if err != nil {
			t.Fatal(err)
		}
	} else {
		cmd.Stderr = &got
		close(read)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
	}
	code := 0
	if err := cmd.Wait(); err != nil {
		ee, ok := err.(*exec.ExitError)
		if !ok {
			t.Fatal(err)
		}
		code = ee.ExitCode()
	}
	select {
	case <-read:
	case <-time.After(10 * time.Second):
		t.Fatal("the terminal's output did not end")
	}
	out, _ := os.ReadFile(stdout.Name())
	if lines := bytes.Count(out, []byte("\n")); lines != n {
		t.Errorf("%d records converted; want %d", lines, n)
	}
	return got.String(), code
}

func TestPipeShowsProgressOnATerminal(t *testing.T) {
	const n = 300_000
	final := regexp.MustCompile(`\r\x1b\[Kflowgo pipe: 300000 records, [\d.]+[kM]?/s, [\d.]+ MB/s, 0 rejected, [\d.]+m?s, 100%\r?\n$`)
	t.Run("a terminal shows the progress and keeps the last line", func(t *testing.T) {
		got, code := pipeOnPty(t, n, true)
		if code != 0 || !final.MatchString(got) {
			t.Errorf("exit %d, terminal showed %q; want 0 and the final progress line", code, got)
		}
	})
	t.Run("not on a terminal, nothing", func(t *testing.T) {
		got, code := pipeOnPty(t, n, false)
		if code != 0 || got != "" {
			t.Errorf("exit %d, stderr %q; want 0 and nothing", code, got)
		}
	})
	t.Run("--quiet, nothing on a terminal either", func(t *testing.T) {
		got, code := pipeOnPty(t, n, true, "--quiet")
		if code != 0 || got != "" {
			t.Errorf("exit %d, terminal showed %q; want 0 and nothing", code, got)
		}
	})
}
