package pipeline

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
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
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- p.Run(ctx) }()
	defer func() {
		cancel()
		pw.Close()
		<-done
	}()
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
