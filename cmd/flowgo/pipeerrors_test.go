package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// pipeErrors runs pipe mode in process on in with args and returns the
// --errors file and stderr.
func pipeErrors(t *testing.T, in string, args ...string) (string, string) {
	t.Helper()
	errPath := filepath.Join(t.TempDir(), "rejected.log")
	var stdout, stderr bytes.Buffer
	args = append([]string{"pipe", "--from", "rfc5424", "--to", "rfc5424", "--errors", errPath}, args...)
	code := run(context.Background(), args, strings.NewReader(in), &stdout, &stderr)
	if code != exitOK && code != exitFailure {
		t.Fatalf("exit %d\n%s", code, stderr.String())
	}
	b, err := os.ReadFile(errPath)
	if err != nil {
		t.Fatal(err)
	}
	return string(b), stderr.String()
}

// TestPipeErrorsKeepLongLinesWhole: --errors holds each rejected line byte
// for byte, also one longer than max_message_size, which the input itself
// keeps only the head of.
func TestPipeErrorsKeepLongLinesWhole(t *testing.T) {
	good := "<13>1 - h a - - - x\n" // 20 bytes: max 20 lets it through
	x := func(n int) string { return strings.Repeat("x", n) }
	for _, tt := range []struct {
		name, in, want string
		args           []string
	}{
		{"a line one byte too long", good + x(21) + "\n" + good, x(21) + "\n", nil},
		{"a line at the limit is decoded, not cut", x(20) + "\n" + x(200) + "\n", x(20) + "\n" + x(200) + "\n", nil},
		{"a CR before LF does not count", x(20) + "\r\n" + x(20) + "y\r\n", x(20) + "\n" + x(20) + "y\r\n", nil},
		{"long lines spanning reads, in order with short ones", "bad\n" + x(5000) + "\nbad2\n" + good + x(70000) + "\n" + x(3) + "\n",
			"bad\n" + x(5000) + "\nbad2\n" + x(70000) + "\n" + x(3) + "\n", nil},
		{"an unterminated long last line", good + x(9000), x(9000) + "\n", nil},
		{"nul framing", "bad\x00" + x(300) + "\x00" + strings.TrimSuffix(good, "\n") + "\x00", "bad\x00" + x(300) + "\x00", []string{"--framing", "nul"}},
		{"auto framing that finds lines", "\n  " + x(300) + "\n" + good, "  " + x(300) + "\n", []string{"--framing", "auto"}},
		// Octet-counted frames cannot be followed here: the head the input
		// kept is written, marked as cut.
		{"auto framing that finds octet counting", "300 " + x(300) + "5 hello", "48 " + x(20) + "[flowgo: cut, 20 bytes kept]5 hello", []string{"--framing", "auto"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, stderr := pipeErrors(t, tt.in, append([]string{"--max-message-size", "20"}, tt.args...)...)
			if got != tt.want {
				t.Errorf("--errors holds %q;\nwant %q\nstderr:\n%s", abbreviate(got), abbreviate(tt.want), stderr)
			}
		})
	}
}

// abbreviate shortens runs of x for messages.
func abbreviate(s string) string {
	var b strings.Builder
	for len(s) > 0 {
		n := len(s) - len(strings.TrimLeft(s, "x"))
		if n > 8 {
			fmt.Fprintf(&b, "x*%d", n)
		} else {
			b.WriteString(s[:max(n, 1)])
		}
		s = s[max(n, 1):]
	}
	return b.String()
}

// lineSource streams n bytes of one line (no LF inside) and its LF
// without holding it, hashing what it gives.
type lineSource struct {
	n    int
	sent int
	h    interface {
		Write([]byte) (int, error)
		Sum([]byte) []byte
	}
}

func (l *lineSource) Read(p []byte) (int, error) {
	if l.sent > l.n {
		return 0, io.EOF
	}
	k := 0
	for k < len(p) && l.sent < l.n {
		p[k] = 'a' + byte(l.sent%26)
		k++
		l.sent++
	}
	if k < len(p) && l.sent == l.n {
		p[k] = '\n'
		k++
		l.sent++
	}
	l.h.Write(p[:k])
	return k, nil
}

// TestPipeErrorsKeepsA100MBLineWithBoundedMemory runs the binary on a
// 100 MB line between good ones: the --errors file holds it byte for byte,
// and flowgo's peak RSS stays far below the line's size. The peak is
// VmHWM, read from /proc while flowgo still runs (stdin held open): the
// rusage of a child started with vfork counts its parent's memory.
func TestPipeErrorsKeepsA100MBLineWithBoundedMemory(t *testing.T) {
	const size = 100 << 20
	dir := t.TempDir()
	errPath := filepath.Join(dir, "rejected.log")
	cmd := exec.Command(flowgoBin, "pipe", "--from", "rfc5424", "--to", "gelf", "--errors", errPath)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = io.Discard, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	src := &lineSource{n: size, h: sha256.New()}
	good := "<13>1 - h a - - - good\n"
	fed := make(chan error, 1)
	go func() {
		_, err := io.Copy(stdin, io.MultiReader(strings.NewReader(good), src, strings.NewReader(good)))
		fed <- err
	}()
	if err := <-fed; err != nil {
		t.Fatal(err)
	}
	// All but the errors file's buffer is written: the peak is behind us.
	waitUntil(t, "the long line in the errors file", func() bool {
		st, err := os.Stat(errPath)
		return err == nil && st.Size() >= size-(128<<10)
	})
	hwm := vmHWM(t, cmd.Process.Pid)
	stdin.Close()
	if err := cmd.Wait(); cmd.ProcessState.ExitCode() != exitFailure {
		t.Fatalf("exit: %v; want 1 (a line rejected)\n%s", err, stderr.String())
	}
	f, err := os.Open(errPath)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	got := sha256.New()
	n, err := io.Copy(got, f)
	if err != nil {
		t.Fatal(err)
	}
	if n != size+1 || !bytes.Equal(got.Sum(nil), src.h.Sum(nil)) {
		t.Errorf("--errors holds %d bytes (sha256 %x); want the %d-byte line and its LF (sha256 %x)", n, got.Sum(nil), size+1, src.h.Sum(nil))
	}
	// Held whole, the line alone would take 100 MB; flowgo needs about 15.
	if hwm > size/2 {
		t.Errorf("peak RSS %d MB for a %d MB line: the line is held in memory", hwm>>20, size>>20)
	} else {
		t.Logf("peak RSS %d MB for a %d MB line", hwm>>20, size>>20)
	}
	// The spool, next to the errors file, leaves nothing behind.
	if entries, _ := os.ReadDir(dir); len(entries) != 1 {
		t.Errorf("files left next to the errors file: %v", entries)
	}
}

// vmHWM returns the peak resident set of process pid, in bytes.
func vmHWM(t *testing.T, pid int) int64 {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "VmHWM:"); ok {
			var kb int64
			if _, err := fmt.Sscanf(strings.TrimSpace(v), "%d kB", &kb); err != nil {
				t.Fatal(err)
			}
			return kb << 10
		}
	}
	t.Fatalf("no VmHWM in /proc/%d/status", pid)
	return 0
}

// FuzzPipeErrors checks the spooler against the splitter it follows: on a
// stream where no frame decodes (no '<'), --errors must hold every
// non-empty frame, whole, in order, with the framing's delimiter, whatever
// the frame lengths around max_message_size.
func FuzzPipeErrors(f *testing.F) {
	f.Add([]byte("bad\nxxxxxxxxxxxxxxxxxxxxxxxxx\n\r\nyy\r\n"), uint8(20), false)
	f.Add([]byte("xxxxxxxxxxxxxxxxxxxx\r\nxxxxxxxxxxxxxxxxxxxxy\r\n"), uint8(20), false)
	f.Add([]byte("a\x00bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb\x00\x00c"), uint8(8), true)
	f.Add([]byte("x\n"), uint8(1), false)
	f.Fuzz(func(t *testing.T, in []byte, maxSize uint8, nul bool) {
		if maxSize == 0 || len(in) > 4096 {
			return
		}
		in = bytes.ReplaceAll(in, []byte("<"), []byte("x"))
		delim, framing := byte('\n'), "line"
		if nul {
			delim, framing = 0, "nul"
		}
		var want bytes.Buffer
		frames := bytes.Split(in, []byte{delim})
		for i, fr := range frames {
			if i == len(frames)-1 && len(fr) == 0 {
				break // the stream ended with a delimiter
			}
			trimmed := fr
			if !nul {
				trimmed = bytes.TrimSuffix(fr, []byte("\r"))
			}
			if len(trimmed) == 0 {
				continue // the splitter skips empty frames
			}
			if len(trimmed) > int(maxSize) {
				want.Write(fr) // whole, CR included
			} else {
				want.Write(trimmed)
			}
			want.WriteByte(delim)
		}
		got, stderr := pipeErrors(t, string(in), "--framing", framing, "--max-message-size", fmt.Sprint(maxSize))
		if got != want.String() {
			t.Errorf("max %d, framing %s, input %q:\n--errors %q\nwant     %q\nstderr:\n%s", maxSize, framing, in, got, want.String(), stderr)
		}
	})
}
