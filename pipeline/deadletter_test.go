package pipeline

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/flowgo/flowgo/input"
	"github.com/flowgo/flowgo/internal/syncbuf"
)

func openTestDeadLetter(t *testing.T, s deadLetterSettings) (*deadLetter, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "dead.log")
	if s.mode == 0 {
		s.mode = 0o640
	}
	d, err := newDeadLetters().acquire(&deadLetterSpec{path: path, settings: s})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.release(quietLog()) })
	return d, path
}

func TestDeadLetterCutsLongFramesAndMarksThem(t *testing.T) {
	long := strings.Repeat("x", 300)
	tooLong := &input.FrameError{Offset: 7, Reason: fmt.Sprintf("%v (%d bytes), the rest of the frame is skipped", input.ErrFrameTooLong, 64), Err: input.ErrFrameTooLong}
	for _, tt := range []struct {
		name     string
		s        deadLetterSettings
		frame    string
		reason   error
		want     string
		wantTail string
	}{
		{"whole frame, line framing", deadLetterSettings{framing: "line", maxFrame: 100}, "short", errors.New("decode"), "short\n", ""},
		{"longer than the limit, line framing", deadLetterSettings{framing: "line", maxFrame: 100}, long, errors.New("decode"),
			strings.Repeat("x", 100) + "[flowgo: cut, 100 of 300 bytes kept]\n", ""},
		{"longer than the limit, nul framing", deadLetterSettings{framing: "nul", maxFrame: 100}, long, errors.New("decode"),
			strings.Repeat("x", 100) + "[flowgo: cut, 100 of 300 bytes kept]\x00", ""},
		{"longer than the limit, syslen framing counts the mark", deadLetterSettings{framing: "syslen", maxFrame: 100}, long, errors.New("decode"),
			"136 " + strings.Repeat("x", 100) + "[flowgo: cut, 100 of 300 bytes kept]", ""},
		{"the head of a frame the input cut", deadLetterSettings{framing: "line", maxFrame: 64, inputMax: 64}, long[:64], tooLong,
			long[:64] + "[flowgo: cut, 64 bytes kept]\n", ""},
		{"the head the input cut, kept in part", deadLetterSettings{framing: "line", maxFrame: 10, inputMax: 64}, long[:64], tooLong,
			long[:10] + "[flowgo: cut, 10 bytes kept]\n", ""},
		{"a whole oversized datagram", deadLetterSettings{framing: "line", maxFrame: 1000, inputMax: 64}, long, input.ErrFrameTooLong,
			long + "\n", ""},
		{"a whole oversized datagram over the limit", deadLetterSettings{framing: "line", maxFrame: 64, inputMax: 64}, long, input.ErrFrameTooLong,
			long[:64] + "[flowgo: cut, 64 of 300 bytes kept]\n", ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			d, path := openTestDeadLetter(t, tt.s)
			d.Write([]byte(tt.frame), tt.reason)
			if err := d.Flush(); err != nil {
				t.Fatal(err)
			}
			if got, _ := os.ReadFile(path); string(got) != tt.want {
				t.Errorf("file = %q;\nwant %q", got, tt.want)
			}
		})
	}
}

// TestDeadLetterFlushesItself: rejected frames reach the file within
// deadLetterFlushDelay without anyone calling Flush, so a flowgo killed
// with SIGKILL keeps them.
func TestDeadLetterFlushesItself(t *testing.T) {
	d, path := openTestDeadLetter(t, deadLetterSettings{framing: "line", maxFrame: 1000})
	for i := range 37 {
		d.Write(fmt.Appendf(nil, "bad %d", i), errors.New("decode"))
	}
	var want strings.Builder
	for i := range 37 {
		fmt.Fprintf(&want, "bad %d\n", i)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		got, _ := os.ReadFile(path)
		if string(got) == want.String() {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after 5s the file holds %q; want the 37 frames", got)
		}
		time.Sleep(10 * time.Millisecond)
	}
	// And again after the first flush: the timer is armed anew.
	d.Write([]byte("later"), errors.New("decode"))
	waitFor(t, "the second flush", func() bool {
		got, _ := os.ReadFile(path)
		return strings.HasSuffix(string(got), "later\n")
	})
}

func TestDeadLetterFilesGetTheirMode(t *testing.T) {
	d, path := openTestDeadLetter(t, deadLetterSettings{framing: "line", mode: 0o600})
	d.Write([]byte("x"), errors.New("decode"))
	if st, err := os.Stat(path); err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("mode = %v, %v; want 0600", st.Mode().Perm(), err)
	}
}

// A dead-letter file that keeps failing (a full disk) is reported at the
// rate limit, not at every one-second tick until it is reopened.
func TestAFailingDeadLetterFileIsLoggedAtTheRateLimit(t *testing.T) {
	if _, err := os.Stat("/dev/full"); err != nil {
		t.Fatal("needs /dev/full:", err)
	}
	mem, id := newMem(t)
	var logs syncbuf.Buffer
	stdin, feed := io.Pipe()
	p := build(t, fmt.Sprintf("[input]\ntype = \"stdin\"\nformat = \"testline\"\ndead_letter_file = \"/dev/full\"\n[output]\ntype = \"testmem\"\nid = %q\nformat = \"testmsg\"\n", id),
		Options{Stdin: stdin, Log: slog.New(slog.NewTextHandler(&logs, nil))})
	done := make(chan error, 1)
	go func() { done <- p.Run(context.Background()) }()
	in, _ := lines(10, func(i int) bool { return i%2 == 1 })
	if _, err := io.WriteString(feed, in); err != nil {
		t.Fatal(err)
	}
	time.Sleep(3500 * time.Millisecond) // three ticks and more with the write error standing
	running := logs.String()
	feed.Close()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if got := len(mem.got()); got != 5 {
		t.Errorf("delivered %d; want the 5 good lines", got)
	}
	if n := strings.Count(running, `msg="dead-letter file"`); n != 1 {
		t.Errorf("the dead-letter write error was logged %d times in 3.5 s; want once (then a summary):\n%s", n, running)
	}
}
