package pipeline

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/flowgo/flowgo"
	"github.com/flowgo/flowgo/config"
	"github.com/flowgo/flowgo/internal/testoutput"
	"github.com/flowgo/flowgo/queue"
)

func diskConfig(id, queueDir, timeout string) string {
	return fmt.Sprintf(`
[input]
type = "stdin"
format = "testline"
[output]
type = "testmem"
id = %q
format = "testmsg"
framing = "line"
shutdown_timeout = %q
[queue]
type = "disk"
path = %q
sync = "batch"
`, id, timeout, queueDir)
}

// With a disk queue, what the output could not deliver before the shutdown
// timeout is not lost: it stays queued, and the next run delivers it, in
// order, and counts the records sent before but not confirmed as replayed.
func TestDiskQueueKeepsWhatTheOutputDidNotTake(t *testing.T) {
	dir := t.TempDir()
	mem, id := newMem(t)
	mem.block = make(chan struct{}) // never released
	in, want := lines(20000, nil)
	p := build(t, diskConfig(id, dir, "300ms"), Options{Stdin: strings.NewReader(in)})
	if err := p.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	st := p.Stats()
	if st.Received.Load() != 20000 || st.Lost.Load() != 0 || st.Sent.Load() != 0 {
		t.Fatalf("received %d lost %d sent %d; want 20000 received, none lost (they stay on disk), none sent",
			st.Received.Load(), st.Lost.Load(), st.Sent.Load())
	}

	mem2, id2 := newMemNamed(t.Name() + "-2")
	p2 := build(t, diskConfig(id2, dir, "30s"), Options{Stdin: strings.NewReader("")})
	if err := p2.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	got := mem2.got()
	if len(got) != len(want) {
		t.Fatalf("the second run delivered %d; want %d", len(got), len(want))
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("record %d = %q; want %q", i, got[i], want[i])
		}
	}
	if n := p2.DiskQueue().Stats.Replayed.Load(); n == 0 || n > int64(DefaultBatchRecords)*4 {
		t.Errorf("replayed = %d; want the batches the first run was writing (1 to 4 batches)", n)
	}
	if p2.Stats().Lost.Load() != 0 {
		t.Errorf("lost %d", p2.Stats().Lost.Load())
	}
}

// Batches grouped into one write are confirmed together, and only once
// written: a failing output retried delivers each record once.
func TestDiskQueueRetriesAndGroupsKeepEveryRecordOnce(t *testing.T) {
	registerOneByOne()
	dir := t.TempDir()
	mem, id := newMem(t)
	mem.failures = 5
	p := build(t, fmt.Sprintf("[input]\ntype=\"testonebyone\"\nformat=\"testline\"\n[output]\ntype=\"testmem\"\nid=%q\nformat=\"testmsg\"\nframing=\"line\"\n[queue]\ntype=\"disk\"\npath=%q\n", id, dir), Options{})
	if err := p.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	got := mem.got()
	if len(got) != 20000 {
		t.Fatalf("delivered %d; want 20000", len(got))
	}
	for i, g := range got {
		if g != fmt.Sprintf("r%d\n", i) {
			t.Fatalf("record %d = %q: order lost or duplicated", i, g)
		}
	}
}

func TestDiskQueueConfigErrors(t *testing.T) {
	dir := t.TempDir()
	tests := []struct{ name, queue, want string }{
		{"unknown type", `type = "tape"`, `queue.type: must be "memory" or "disk"`},
		{"no path", `type = "disk"`, `queue.path: required with type = "disk"`},
		{"path for memory", `path = "/tmp/x"`, `queue.path: only for type = "disk"`},
		{"bad sync", fmt.Sprintf("type = \"disk\"\npath = %q\nsync = \"always\"", dir), `queue.sync: must be "interval", "batch" or "none"`},
		{"tiny budget", fmt.Sprintf("type = \"disk\"\npath = %q\nmax_bytes = 1000", dir), `queue.max_bytes: must be at least`},
		{"bad interval", fmt.Sprintf("type = \"disk\"\npath = %q\nsync_interval = \"0s\"", dir), `queue.sync_interval: must be positive`},
		{"unknown key", fmt.Sprintf("type = \"disk\"\npath = %q\nsegment = 3", dir), `queue.segment`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f, err := config.Parse("test.toml", "[input]\ntype = \"stdin\"\n[output]\ntype = \"stdout\"\n[queue]\n"+tc.queue+"\n")
			if err != nil {
				t.Fatal(err)
			}
			_, err = Build(f, Options{})
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "test.toml:") {
				t.Fatalf("Build = %v; want an error with the file, line and %q", err, tc.want)
			}
		})
	}
}

// Two pipelines cannot share a queue directory: the second is refused,
// naming the path, and the first keeps it.
func TestDiskQueuePathUsedTwiceIsRefused(t *testing.T) {
	dir := t.TempDir()
	q := filepath.Join(dir, "q")
	cfg := fmt.Sprintf("[input]\ntype = \"udp\"\nlisten = \"127.0.0.1:0\"\n[output]\ntype = \"stdout\"\n[queue]\ntype = \"disk\"\npath = %q\n", q)
	a := writeFile(t, dir, "a.toml", cfg)
	b := writeFile(t, dir, "b.toml", cfg)
	_, err := LoadGroup([]string{a, b}, Options{}, "test")
	if err == nil || !strings.Contains(err.Error(), q) || !strings.Contains(err.Error(), "b.toml") {
		t.Fatalf("LoadGroup = %v; want an error naming the second file and the path", err)
	}
	// The first pipeline released the directory when the group failed.
	g, err := LoadGroup([]string{a}, Options{}, "test")
	if err != nil {
		t.Fatalf("the path is still locked after the failed load: %v", err)
	}
	g.release()
}

// A reload keeps the running disk queue, even when [queue] changed (that
// needs a restart), and records queued before it are delivered after.
func TestDiskQueueSurvivesAReload(t *testing.T) {
	dir := t.TempDir()
	mem, id := newMem(t)
	mem.block = make(chan struct{})
	in, want := lines(5000, nil)
	p := build(t, diskConfig(id, dir, "30s"), Options{Stdin: strings.NewReader(in)})
	done := make(chan error)
	go func() { done <- p.Run(context.Background()) }()
	waitFor(t, "the records to be queued", func() bool { return p.Stats().Received.Load() == 5000 })
	other := filepath.Join(t.TempDir(), "other")
	f, err := config.Parse("test.toml", strings.Replace(diskConfig(id, other, "30s"), `sync = "batch"`, `sync = "none"`, 1))
	if err != nil {
		t.Fatal(err)
	}
	u, err := p.NewUpdate(f)
	if err != nil {
		t.Fatal(err)
	}
	go u.Apply()
	time.Sleep(100 * time.Millisecond)
	close(mem.block)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if got := mem.got(); len(got) != len(want) {
		t.Fatalf("delivered %d; want %d", len(got), len(want))
	}
	if pl := p.plan.Load(); pl.queue.Path != filepath.Clean(dir) {
		t.Errorf("the plan names queue %s after the reload; the running one is %s", pl.queue.Path, dir)
	}
}

// bufOutput buffers what Write gets until Flush, as the file output with
// file_buffer_size does; what is not flushed is lost with the process.
type bufOutput struct {
	mu       sync.Mutex
	buffered []string
	flushed  []string
	gate     chan struct{} // Flush fails until it is closed
	tries    int           // calls of Flush
	closeErr error         // what Close returns
}

var bufOuts = testoutput.Register[*bufOutput]("testbuffered")

func (o *bufOutput) Write(_ context.Context, b *flowgo.Batch) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	for i := range b.Frames() {
		o.buffered = append(o.buffered, string(b.Frame(i)))
	}
	return nil
}

func (o *bufOutput) Flush(context.Context) error {
	o.mu.Lock()
	o.tries++
	o.mu.Unlock()
	select {
	case <-o.gate:
	default:
		// A flush that fails (the pipeline also flushes whenever the
		// queue runs empty) confirms nothing.
		return errors.New("not yet")
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	o.flushed = append(o.flushed, o.buffered...)
	o.buffered = nil
	return nil
}

func (o *bufOutput) FlushInterval() time.Duration { return time.Hour } // only at the end
func (o *bufOutput) Buffered() bool               { return true }
func (o *bufOutput) Close(context.Context) error  { return o.closeErr }

// Batches an output only buffered are not confirmed to the disk queue:
// were flowgo killed before the flush, the next start would deliver them.
// They are confirmed once a flush succeeded.
func TestDiskQueueConfirmsBufferedBatchesOnlyAfterAFlush(t *testing.T) {
	dir := t.TempDir()
	o := &bufOutput{gate: make(chan struct{})}
	bufOuts.Add(t.Name(), o)
	in, want := lines(3000, nil)
	// stdin stays open until the gate opens: its end starts the shutdown
	// and the final flush.
	stdin, feed := io.Pipe()
	p := build(t, fmt.Sprintf("[input]\ntype = \"stdin\"\nformat = \"testline\"\n[output]\ntype = \"testbuffered\"\nid = %q\nformat = \"testmsg\"\nframing = \"line\"\n[queue]\ntype = \"disk\"\npath = %q\n",
		t.Name(), dir), Options{Stdin: stdin})
	done := make(chan error)
	go func() { done <- p.Run(context.Background()) }()
	go func() { _, _ = io.WriteString(feed, in) }()
	waitFor(t, "the output to get every record", func() bool {
		o.mu.Lock()
		defer o.mu.Unlock()
		return len(o.buffered) == len(want)
	})
	if n := p.DiskQueue().Usage().Records; n != int64(len(want)) {
		t.Errorf("%d records pending before the flush; want all %d (buffered by the output, not confirmed)", n, len(want))
	}
	close(o.gate)
	feed.Close()
	if err := <-done; err != nil { // stdin ended: the final flush
		t.Fatal(err)
	}
	if len(o.flushed) != len(want) {
		t.Fatalf("flushed %d; want %d", len(o.flushed), len(want))
	}
	rep, err := queue.Inspect(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Positions) != 1 || rep.Positions[0].PendingRecords != 0 {
		t.Errorf("after the flush the queue still holds records not confirmed: %+v", rep.Positions)
	}
}

// Records an output buffered and could neither flush nor close out are
// lost, and counted so, not left among the sent ones.
func TestBufferedRecordsAnOutputCannotWriteOutAreCountedLost(t *testing.T) {
	o := &bufOutput{gate: make(chan struct{}), closeErr: errors.New("disk gone")}
	bufOuts.Add(t.Name(), o)
	in, want := lines(3000, nil)
	p := build(t, fmt.Sprintf("[input]\ntype = \"stdin\"\nformat = \"testline\"\n[output]\ntype = \"testbuffered\"\nid = %q\nformat = \"testmsg\"\nframing = \"line\"\n",
		t.Name()), Options{Stdin: strings.NewReader(in)})
	_ = p.Run(context.Background())
	if got := p.Stats().Lost.Load(); got != int64(len(want)) {
		t.Errorf("lost %d; want all %d records the output buffered and could not write out", got, len(want))
	}
	if len(o.flushed) != 0 {
		t.Fatalf("flushed %d; the flush never succeeds", len(o.flushed))
	}
}
