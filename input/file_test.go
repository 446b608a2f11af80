package input

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/flowgo/flowgo"
	"github.com/flowgo/flowgo/config"
	"github.com/flowgo/flowgo/internal/syncbuf"
)

// The file input in process: a real file system, real inotify, the
// checkpoint file on disk; a test sink stands for the pipeline.

const fileWait = 30 * time.Second // generous: the machine is shared

// newFileInput builds a file input from the keys of its [input] table.
func newFileInput(t testing.TB, keys string, mod ...func(*Config)) (*File, *syncbuf.Buffer, error) {
	t.Helper()
	f, err := config.Parse("test.toml", "[input]\ntype = \"file\"\n"+keys)
	if err != nil {
		t.Fatal(err)
	}
	logs := &syncbuf.Buffer{}
	c := Config{
		Section: f.Inputs[0], Name: "input", Pipeline: "test", Decoder: keepFrame{}, Framing: flowgo.FramingLine,
		MaxMessageSize: 64 << 10, BatchRecords: 64, BatchBytes: 1 << 20,
		Log: slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	}
	if fr, ok := f.Inputs[0].Raw()["framing"].(string); ok {
		c.Framing = flowgo.Framing(fr) // the pipeline's key
	}
	for _, m := range mod {
		m(&c)
	}
	in, err := (Type{Parse: parseFile}).New(c)
	if err != nil {
		return nil, logs, err
	}
	f.Inputs[0].Accept("type", "framing") // the pipeline's
	if err := f.Check(); err != nil {
		t.Fatalf("config check: %v", err)
	}
	return in.(*File), logs, nil
}

// fileRun is a file input running in a test.
type fileRun struct {
	t      *testing.T
	in     *File
	sink   *testSink
	logs   *syncbuf.Buffer
	cancel context.CancelFunc
	done   chan error
}

// startFile starts a file input with keys and waits until its first scan is
// done. The keys get short intervals unless they set them.
func startFile(t *testing.T, keys string, sink *testSink, mod ...func(*File)) *fileRun {
	t.Helper()
	if !strings.Contains(keys, "file_checkpoint_path") {
		keys += fmt.Sprintf("\nfile_checkpoint_path = %q", filepath.Join(t.TempDir(), "ck.json"))
	}
	for _, d := range []string{`file_checkpoint_interval = "50ms"`, `file_scan_interval = "200ms"`, `file_rotate_wait = "300ms"`} {
		if k, _, _ := strings.Cut(d, " "); !strings.Contains(keys, k) {
			keys += "\n" + d
		}
	}
	in, logs, err := newFileInput(t, keys)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range mod {
		m(in)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &fileRun{t: t, in: in, sink: sink, logs: logs, cancel: cancel, done: make(chan error, 1)}
	go func() { r.done <- in.Run(ctx, sink) }()
	t.Cleanup(r.stop)
	if !waitFor(fileWait, func() bool { return strings.Contains(logs.String(), `msg="tailing files"`) || len(r.done) > 0 }) {
		t.Fatalf("the input did not start:\n%s", logs)
	}
	if len(r.done) > 0 {
		t.Fatalf("Run ended at start: %v\n%s", <-r.done, logs)
	}
	return r
}

// stop stops the input and waits for Run, which must return nil.
func (r *fileRun) stop() {
	r.t.Helper()
	if r.cancel == nil {
		return
	}
	r.cancel()
	r.cancel = nil
	select {
	case err := <-r.done:
		if err != nil {
			r.t.Errorf("Run = %v\n%s", err, r.logs)
		}
	case <-time.After(fileWait):
		r.t.Fatalf("the input did not stop:\n%s", r.logs)
	}
}

// waitMsgs waits until the sink holds n records.
func (r *fileRun) waitMsgs(n int) []string {
	r.t.Helper()
	if !waitFor(fileWait, func() bool { return r.sink.events() >= n }) {
		msgs, _, rejects, _ := r.sink.snapshot()
		r.t.Fatalf("%d records and %d rejects within %v; want %d records\nlogs:\n%s", len(msgs), len(rejects), fileWait, n, r.logs)
	}
	msgs, _, _, _ := r.sink.snapshot()
	return msgs
}

// appendLines appends "prefix i" for i in [from, to) to path.
func appendLines(t testing.TB, path, prefix string, from, to int) {
	t.Helper()
	var b strings.Builder
	for i := from; i < to; i++ {
		fmt.Fprintf(&b, "%s %d\n", prefix, i)
	}
	appendString(t, path, b.String())
}

func appendString(t testing.TB, path, s string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString(s); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

func lines(prefix string, from, to int) []string {
	var out []string
	for i := from; i < to; i++ {
		out = append(out, fmt.Sprintf("%s %d", prefix, i))
	}
	return out
}

// checkExactlyOnce compares got with want as multisets, naming what is
// missing and what came twice.
func checkExactlyOnce(t *testing.T, got, want []string) {
	t.Helper()
	count := map[string]int{}
	for _, m := range got {
		count[m]++
	}
	var missing, dup []string
	for _, w := range want {
		switch count[w] {
		case 0:
			missing = append(missing, w)
		case 1:
		default:
			dup = append(dup, fmt.Sprintf("%s (x%d)", w, count[w]))
		}
		delete(count, w)
	}
	var extra []string
	for m := range count {
		extra = append(extra, m)
	}
	sort.Strings(extra)
	if len(missing) > 0 || len(dup) > 0 || len(extra) > 0 {
		t.Fatalf("%d records; want %d exactly once: %d missing %v, %d duplicated %v, %d unexpected %v",
			len(got), len(want), len(missing), head(missing), len(dup), head(dup), len(extra), head(extra))
	}
}

func head(s []string) []string {
	if len(s) > 10 {
		return s[:10]
	}
	return s
}

// savedOffsets reads the checkpoint file: offset by path.
func savedOffsets(t *testing.T, path string) map[string]int64 {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	entries, err := parseCheckpoints(data)
	if err != nil {
		t.Fatalf("checkpoint file: %v\n%s", err, data)
	}
	out := map[string]int64{}
	for _, e := range entries {
		out[e.Path] = e.Offset
	}
	return out
}

func fileSize(t *testing.T, path string) int64 {
	t.Helper()
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return st.Size()
}

// openFDs counts this process's open file descriptors.
func openFDs(t *testing.T) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	return len(ents)
}

func TestFileReadsFromTheBeginningAndFollows(t *testing.T) {
	dir := t.TempDir()
	log := filepath.Join(dir, "app.log")
	appendLines(t, log, "old", 0, 100)
	ck := filepath.Join(dir, "ck.json")
	r := startFile(t, fmt.Sprintf("src = %q\nread_from = \"beginning\"\nfile_checkpoint_path = %q", filepath.Join(dir, "*.log"), ck), newTestSink())
	r.waitMsgs(100)
	appendLines(t, log, "new", 0, 100)
	got := r.waitMsgs(200)
	if want := append(lines("old", 0, 100), lines("new", 0, 100)...); !slices.Equal(got, want) {
		t.Fatalf("records out of order or wrong:\n got %v\nwant %v", head(got), head(want))
	}
	size := fileSize(t, log)
	if !waitFor(fileWait, func() bool { return savedOffsets(t, ck)[log] == size }) {
		t.Fatalf("checkpoint = %d; want the file's size %d", savedOffsets(t, ck)[log], size)
	}
}

func TestFileReadFromEnd(t *testing.T) {
	dir := t.TempDir()
	existing := filepath.Join(dir, "a.log")
	appendLines(t, existing, "before", 0, 50)
	appendString(t, existing, "a line being writ") // its writer is mid-line
	r := startFile(t, fmt.Sprintf("src = %q", filepath.Join(dir, "*.log")), newTestSink())
	appendString(t, existing, "ten\n")
	appendLines(t, existing, "after", 0, 10)
	// A file that appears later is read from its beginning.
	later := filepath.Join(dir, "b.log")
	appendLines(t, later, "later", 0, 10)
	got := r.waitMsgs(21)
	want := append(append([]string{"a line being written"}, lines("after", 0, 10)...), lines("later", 0, 10)...)
	checkExactlyOnce(t, got, want)
}

func TestFileResumesAtCheckpointAcrossRestarts(t *testing.T) {
	dir := t.TempDir()
	log := filepath.Join(dir, "app.log")
	ck := filepath.Join(dir, "ck.json")
	keys := fmt.Sprintf("src = %q\nfile_checkpoint_path = %q", filepath.Join(dir, "app.log*"), ck)
	appendLines(t, log, "first", 0, 100) // skipped: read_from = "end" at the first start
	r := startFile(t, keys, newTestSink())
	appendLines(t, log, "run1", 0, 100)
	checkExactlyOnce(t, r.waitMsgs(100), lines("run1", 0, 100))
	r.stop()

	// While flowgo is stopped: more lines, then a rotation (rename and
	// create), then lines in the new file. read_from no longer applies:
	// the renamed file resumes at its checkpoint, the new one starts at 0.
	appendLines(t, log, "stopped", 0, 50)
	if err := os.Rename(log, log+".1"); err != nil {
		t.Fatal(err)
	}
	appendLines(t, log, "rotated", 0, 50)
	r2 := startFile(t, keys, newTestSink())
	checkExactlyOnce(t, r2.waitMsgs(100), append(lines("stopped", 0, 50), lines("rotated", 0, 50)...))
	r2.stop()

	// A third start finds nothing new.
	r3 := startFile(t, keys, newTestSink())
	appendLines(t, log, "run3", 0, 5)
	checkExactlyOnce(t, r3.waitMsgs(5), lines("run3", 0, 5))
}

// The checkpoint moves only once the pipeline has taken the batch.
func TestFileCheckpointWaitsForPut(t *testing.T) {
	dir := t.TempDir()
	log := filepath.Join(dir, "app.log")
	appendString(t, log, "")
	ck := filepath.Join(dir, "ck.json")
	gate := make(chan struct{})
	sink := newTestSink()
	sink.wait = func() { <-gate }
	r := startFile(t, fmt.Sprintf("src = %q\nfile_checkpoint_path = %q", log, ck), sink)
	appendLines(t, log, "x", 0, 1000)
	// The input reads and decodes (its batches fill up) but the queue does
	// not take them: for many checkpoint intervals, the offset stays at 0.
	time.Sleep(500 * time.Millisecond)
	if off := savedOffsets(t, ck)[log]; off != 0 {
		t.Fatalf("checkpoint = %d before the pipeline took a batch; want 0", off)
	}
	close(gate)
	checkExactlyOnce(t, r.waitMsgs(1000), lines("x", 0, 1000))
	size := fileSize(t, log)
	if !waitFor(fileWait, func() bool { return savedOffsets(t, ck)[log] == size }) {
		t.Fatalf("checkpoint = %d after the pipeline took everything; want %d", savedOffsets(t, ck)[log], size)
	}
}

// writer appends numbered lines to path at a steady pace, reopening the
// path when its file changes (as Python's WatchedFileHandler does), until
// stopped.
type writer struct {
	path   string
	prefix string
	n      int
	pause  chan chan struct{}
	stopc  chan struct{}
	done   chan error
}

func startWriter(t *testing.T, path, prefix string, every time.Duration) *writer {
	w := &writer{path: path, prefix: prefix, pause: make(chan chan struct{}), stopc: make(chan struct{}), done: make(chan error, 1)}
	go func() { w.done <- w.run(every) }()
	t.Cleanup(func() { w.stop(t) })
	return w
}

func (w *writer) run(every time.Duration) error {
	var f *os.File
	var ino uint64
	defer func() {
		if f != nil {
			f.Close()
		}
	}()
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		select {
		case <-w.stopc:
			return nil
		case resume := <-w.pause:
			<-resume
		case <-tick.C:
		}
		if st, err := os.Stat(w.path); err != nil || statID(st).Ino != ino {
			if f != nil {
				f.Close()
			}
			var err error
			if f, err = os.OpenFile(w.path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644); err != nil {
				return err
			}
			st, err := f.Stat()
			if err != nil {
				return err
			}
			ino = statID(st).Ino
		}
		for range 10 {
			if _, err := fmt.Fprintf(f, "%s %d\n", w.prefix, w.n); err != nil {
				return err
			}
			w.n++
		}
	}
}

// hold pauses the writer until the returned function is called.
func (w *writer) hold() func() {
	resume := make(chan struct{})
	w.pause <- resume
	return func() { close(resume) }
}

func (w *writer) stop(t *testing.T) int {
	select {
	case <-w.stopc:
	default:
		close(w.stopc)
	}
	if err := <-w.done; err != nil {
		t.Errorf("writer: %v", err)
	}
	w.done <- nil
	return w.n
}

func TestFileRotationRenameAndCreate(t *testing.T) {
	dir := t.TempDir()
	log := filepath.Join(dir, "app.log")
	appendString(t, log, "")
	// file_rotate_wait: a writer that the shared machine holds up between
	// its check of the name and its write still writes to the renamed file.
	r := startFile(t, fmt.Sprintf("src = %q\nfile_rotate_wait = \"2s\"", log), newTestSink())
	// What the input holds for itself: its lock, inotify, app.log.
	base := openFDs(t)
	w := startWriter(t, log, "line", 2*time.Millisecond)
	for i := 1; i <= 3; i++ {
		time.Sleep(300 * time.Millisecond)
		// logrotate's default: rename, then create; the writer moves to the
		// new file at its next write, some lines land in the renamed one.
		if err := os.Rename(log, fmt.Sprintf("%s.%d", log, i)); err != nil {
			t.Fatal(err)
		}
		appendString(t, log, "")
	}
	time.Sleep(300 * time.Millisecond)
	n := w.stop(t)
	checkExactlyOnce(t, r.waitMsgs(n), lines("line", 0, n))
	// The renamed files are released once read to their end and quiet for
	// file_rotate_wait: the descriptors go back to what they were with only
	// app.log open (the writer's is closed too).
	if !waitFor(fileWait, func() bool { return strings.Count(r.logs.String(), "msg=\"file released\"") == 3 }) {
		t.Fatalf("want 3 rotated files released:\n%s", r.logs)
	}
	if !waitFor(fileWait, func() bool { return openFDs(t) <= base }) {
		t.Errorf("%d descriptors open; want at most %d, as before the rotations", openFDs(t), base)
	}
	if c := counter(r.in, "file_released_total", "rotated"); c != 3 {
		t.Errorf("file_released_total{reason=rotated} = %d; want 3", c)
	}
}

func TestFileCopyTruncate(t *testing.T) {
	dir := t.TempDir()
	log := filepath.Join(dir, "app.log")
	appendString(t, log, "")
	r := startFile(t, fmt.Sprintf("src = %q", log), newTestSink())
	w := startWriter(t, log, "line", 2*time.Millisecond)
	for i := 1; i <= 3; i++ {
		time.Sleep(300 * time.Millisecond)
		// copytruncate, with the writer held so that no line falls between
		// the copy and the truncation (logrotate's own window of loss).
		resume := w.hold()
		data, err := os.ReadFile(log)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(fmt.Sprintf("%s.%d", log, i), data, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Truncate(log, 0); err != nil {
			t.Fatal(err)
		}
		resume()
	}
	time.Sleep(300 * time.Millisecond)
	n := w.stop(t)
	checkExactlyOnce(t, r.waitMsgs(n), lines("line", 0, n))
	if c := strings.Count(r.logs.String(), "file truncated: reading it again from the beginning"); c < 1 {
		t.Errorf("truncation not logged:\n%s", r.logs)
	}
	if c := counter(r.in, "file_truncations_total", ""); c != 3 {
		t.Errorf("file_truncations_total = %d; want 3", c)
	}
}

// A file truncated and written past the old offset before the input looks
// again is told by its first bytes.
func TestFileTruncatedAndRewrittenPastTheOffset(t *testing.T) {
	dir := t.TempDir()
	log := filepath.Join(dir, "app.log")
	appendLines(t, log, "old", 0, 20)
	// No inotify: the input looks once a second, and the rewrite below is
	// one write right after the truncation.
	r := startFile(t, fmt.Sprintf("src = %q\nread_from = \"beginning\"", log), newTestSink(), func(in *File) { in.noInotify = true })
	r.waitMsgs(20)
	var b strings.Builder
	for i := range 100 {
		fmt.Fprintf(&b, "new %d\n", i)
	}
	if err := os.WriteFile(log, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	got := r.waitMsgs(120)
	checkExactlyOnce(t, got, append(lines("old", 0, 20), lines("new", 0, 100)...))
	if !strings.Contains(r.logs.String(), "its first bytes changed") {
		t.Errorf("the rewrite was not recognised by the file's first bytes:\n%s", r.logs)
	}
}

// A file rewritten in place while flowgo is stopped is read from its
// beginning: its checkpoint's fingerprint no longer matches.
func TestFileReplacedWhileStopped(t *testing.T) {
	dir := t.TempDir()
	log := filepath.Join(dir, "app.log")
	ck := filepath.Join(dir, "ck.json")
	keys := fmt.Sprintf("src = %q\nread_from = \"beginning\"\nfile_checkpoint_path = %q", log, ck)
	appendLines(t, log, "old", 0, 20)
	r := startFile(t, keys, newTestSink())
	r.waitMsgs(20)
	size := fileSize(t, log)
	if !waitFor(fileWait, func() bool { return savedOffsets(t, ck)[log] == size }) {
		t.Fatal("checkpoint not written")
	}
	r.stop()
	if err := os.WriteFile(log, []byte(strings.Repeat("replaced line\n", 50)), 0o644); err != nil {
		t.Fatal(err)
	}
	r2 := startFile(t, keys, newTestSink())
	got := r2.waitMsgs(50)
	if len(got) != 50 || got[0] != "replaced line" {
		t.Fatalf("got %d records starting %v; want the 50 new lines", len(got), head(got))
	}
	if !strings.Contains(r2.logs.String(), "file replaced while flowgo was stopped") {
		t.Errorf("replacement not logged:\n%s", r2.logs)
	}
}

func TestFilePartialLine(t *testing.T) {
	dir := t.TempDir()
	log := filepath.Join(dir, "app.log")
	appendString(t, log, "")
	r := startFile(t, fmt.Sprintf("src = %q\nfile_partial_line_timeout = \"2s\"", log), newTestSink())
	// A line written in two pieces is one record.
	appendString(t, log, "first ha")
	time.Sleep(50 * time.Millisecond)
	appendString(t, log, "lf\r\n")
	if got := r.waitMsgs(1); got[0] != "first half" {
		t.Fatalf("got %q; want \"first half\" (the CR removed)", got[0])
	}
	// A line that never gets its LF is taken after the timeout; what comes
	// next is a line of its own.
	appendString(t, log, "no lf")
	got := r.waitMsgs(2)
	if got[1] != "no lf" {
		t.Fatalf("got %q; want \"no lf\"", got[1])
	}
	appendString(t, log, "next\n")
	if got := r.waitMsgs(3); got[2] != "next" {
		t.Fatalf("got %q; want \"next\"", got[2])
	}
}

func TestFileRejectsThroughTheSink(t *testing.T) {
	dir := t.TempDir()
	log := filepath.Join(dir, "app.log")
	appendString(t, log, "")
	sink := newTestSink()
	in, logs, err := newFileInput(t, fmt.Sprintf("src = %q\nfile_checkpoint_path = %q", log, filepath.Join(dir, "ck.json")),
		func(c *Config) { c.MaxMessageSize = 100 })
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- in.Run(ctx, sink) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()
	if !waitFor(fileWait, func() bool { return strings.Contains(logs.String(), "tailing files") }) {
		t.Fatal(logs)
	}
	invalid := "ok \xff\xfe\x00 bytes"
	appendString(t, log, "BAD one\n"+strings.Repeat("y", 500)+"\n"+invalid+"\ngood\n")
	if !waitFor(fileWait, func() bool { return sink.events() >= 4 }) {
		t.Fatalf("%d events; want 4", sink.events())
	}
	msgs, _, rejects, _ := sink.snapshot()
	if !slices.Equal(msgs, []string{invalid, "good"}) {
		t.Errorf("records %q; want the invalid UTF-8 line as is, and \"good\"", msgs)
	}
	if len(rejects) != 2 || !strings.Contains(rejects[0], "offset 0: keepframe") ||
		!strings.Contains(rejects[1], "offset 8: framing: frame longer than max_message_size") {
		t.Errorf("rejects %q; want the bad frame at offset 0 and the long line at offset 8", rejects)
	}
}

func TestFilePathField(t *testing.T) {
	dir := t.TempDir()
	a, b := filepath.Join(dir, "a.log"), filepath.Join(dir, "b.log")
	appendLines(t, a, "a", 0, 3)
	appendLines(t, b, "b", 0, 3)
	r := startFile(t, fmt.Sprintf("src = %q\nread_from = \"beginning\"\npath_field = \"file\"", filepath.Join(dir, "*.log")), newTestSink())
	r.waitMsgs(6)
	msgs, peers, _, _ := r.sink.snapshot()
	for i, m := range msgs {
		want := "file=" + a
		if strings.HasPrefix(m, "b") {
			want = "file=" + b
		}
		if peers[i] != want {
			t.Errorf("record %q has %q; want %q", m, peers[i], want)
		}
	}
}

func TestFileManyFilesWithFewDescriptors(t *testing.T) {
	if testing.Short() {
		t.Skip("1,000 files")
	}
	dir := t.TempDir()
	const nFiles, maxOpen = 1000, 50
	var want []string
	for i := range nFiles {
		p := filepath.Join(dir, fmt.Sprintf("f%04d.log", i))
		appendLines(t, p, fmt.Sprintf("f%d", i), 0, 3)
		want = append(want, lines(fmt.Sprintf("f%d", i), 0, 3)...)
	}
	// An input on no file: what it holds for itself.
	empty := startFile(t, fmt.Sprintf("src = %q", filepath.Join(t.TempDir(), "*.log")), newTestSink())
	base := openFDs(t)
	empty.stop()
	var ms0 runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&ms0)
	heapBefore := ms0.HeapAlloc
	r := startFile(t, fmt.Sprintf("src = %q\nread_from = \"beginning\"\nfile_max_open = %d", filepath.Join(dir, "*.log"), maxOpen), newTestSink())
	// Sample the descriptors while the input works through the files.
	most := 0
	sample := func() bool {
		most = max(most, openFDs(t))
		return r.sink.events() >= len(want)
	}
	if !waitFor(fileWait, sample) {
		t.Fatalf("%d of %d records", r.sink.events(), len(want))
	}
	// Every file grows again: the ones closed for room are reopened at
	// their offsets.
	for i := range nFiles {
		p := filepath.Join(dir, fmt.Sprintf("f%04d.log", i))
		appendLines(t, p, fmt.Sprintf("f%d", i), 3, 5)
		want = append(want, lines(fmt.Sprintf("f%d", i), 3, 5)...)
		most = max(most, openFDs(t))
	}
	if !waitFor(fileWait, sample) {
		t.Fatalf("%d of %d records", r.sink.events(), len(want))
	}
	msgs, _, _, _ := r.sink.snapshot()
	checkExactlyOnce(t, msgs, want)
	// Memory: the input holds its state for 1,000 files and read buffers
	// for at most file_max_open of them (16 KiB each, at this pace).
	var ms runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&ms)
	if held := int64(ms.HeapAlloc) - int64(heapBefore); held > 16<<20 {
		t.Errorf("%d MiB more heap in use while tailing 1,000 files; want under 16", held>>20)
	}
	// Besides file_max_open files, a few descriptors live briefly: the
	// checkpoint file being written and its directory, a file examined
	// before it is tracked, and this test's own appends.
	if most > base+maxOpen+4 {
		t.Errorf("up to %d descriptors open; want at most %d (file_max_open = %d)", most, base+maxOpen+4, maxOpen)
	}
	// Deleted files are released: the descriptors go back to what the
	// input holds for itself.
	for i := range nFiles {
		os.Remove(filepath.Join(dir, fmt.Sprintf("f%04d.log", i)))
	}
	if !waitFor(fileWait, func() bool { return openFDs(t) <= base }) {
		t.Fatalf("%d descriptors open after every file was deleted; want at most %d", openFDs(t), base)
	}
}

func TestFileDamagedCheckpointIsSetAside(t *testing.T) {
	dir := t.TempDir()
	log := filepath.Join(dir, "app.log")
	ck := filepath.Join(dir, "ck.json")
	appendLines(t, log, "x", 0, 5)
	if err := os.WriteFile(ck, []byte(`{"version":1,"files":[{"dev":1`), 0o644); err != nil {
		t.Fatal(err)
	}
	r := startFile(t, fmt.Sprintf("src = %q\nfile_checkpoint_path = %q", log, ck), newTestSink())
	// Not the first start (a checkpoint file existed): the file is read
	// from its beginning, not from its end.
	checkExactlyOnce(t, r.waitMsgs(5), lines("x", 0, 5))
	if !strings.Contains(r.logs.String(), "is damaged") {
		t.Errorf("damage not reported:\n%s", r.logs)
	}
	if _, err := os.Stat(ck + ".damaged"); err != nil {
		t.Errorf("the damaged file was not kept: %v", err)
	}
}

func TestFileCheckpointInUse(t *testing.T) {
	dir := t.TempDir()
	keys := fmt.Sprintf("src = %q\nfile_checkpoint_path = %q", filepath.Join(dir, "*.log"), filepath.Join(dir, "ck.json"))
	startFile(t, keys, newTestSink())
	in, _, err := newFileInput(t, keys)
	if err != nil {
		t.Fatal(err)
	}
	err = in.Run(context.Background(), newTestSink())
	if err == nil || !strings.Contains(err.Error(), "in use by another file input") {
		t.Fatalf("Run = %v; want the checkpoint file in use", err)
	}
}

func TestFileCheckpointFileIsValidJSON(t *testing.T) {
	dir := t.TempDir()
	log := filepath.Join(dir, "app.log")
	ck := filepath.Join(dir, "ck.json")
	appendLines(t, log, "x", 0, 5)
	r := startFile(t, fmt.Sprintf("src = %q\nread_from = \"beginning\"\nfile_checkpoint_path = %q", log, ck), newTestSink())
	r.waitMsgs(5)
	r.stop()
	data, err := os.ReadFile(ck)
	if err != nil {
		t.Fatal(err)
	}
	var v struct {
		Version int
		Src     string
		Files   []map[string]any
	}
	if err := json.Unmarshal(data, &v); err != nil {
		t.Fatal(err)
	}
	if v.Version != 1 || v.Src != log || len(v.Files) != 1 || v.Files[0]["path"] != log ||
		v.Files[0]["offset"] != float64(fileSize(t, log)) || v.Files[0]["fp_len"] != float64(fileSize(t, log)) {
		t.Errorf("checkpoint file:\n%s", data)
	}
	if tmp, _ := filepath.Glob(filepath.Join(dir, ".ck.json.tmp*")); len(tmp) > 0 {
		t.Errorf("temporary files left: %v", tmp)
	}
}

func TestFileConfig(t *testing.T) {
	for _, tc := range []struct {
		keys, key, msg string
	}{
		{``, "src", "missing"},
		{`src = "/var/log/[a.log"`, "src", "malformed glob"},
		{"src = \"/x\"\nread_from = \"start\"", "read_from", `must be "end" or "beginning"`},
		{"src = \"/x\"\nmultiline = \"java\"", "multiline", `must be "off", "indent" or "start"`},
		{"src = \"/x\"\nmultiline = \"start\"", "multiline_start", "missing"},
		{"src = \"/x\"\nmultiline = \"start\"\nmultiline_start = \"(\"", "multiline_start", "missing closing )"},
		{"src = \"/x\"\nmultiline_start = \"^a\"", "multiline_start", `set multiline = "start"`},
		{"src = \"/x\"\nmultiline = \"indent\"\nmultiline_max_bytes = 70000", "multiline_max_bytes", "max_message_size (65536)"},
		{"src = \"/x\"\nfile_max_open = 0", "file_max_open", "at least 1"},
		{"src = \"/x\"\nframing = \"syslen\"", "framing", "line (default) or nul"},
		{"src = \"/x\"\nfile_scan_interval = \"0s\"", "file_scan_interval", "at least"},
		{"src = \"/x\"\nfile_partial_line_timeout = \"-1s\"", "file_partial_line_timeout", `"0s" or at least`},
		{"src = \"/x\"\npath_field = \"a b\"", "path_field", "only letters"},
	} {
		_, _, err := newFileInput(t, tc.keys)
		if err == nil || !strings.Contains(err.Error(), tc.key) || !strings.Contains(err.Error(), tc.msg) {
			t.Errorf("%q: error %v; want one naming %s: %s", tc.keys, err, tc.key, tc.msg)
		}
	}
}

func TestFileDefaultCheckpointPath(t *testing.T) {
	f, err := config.Parse("web.toml", "[[input]]\ntype = \"file\"\nsrc = \"/x\"\n[[input]]\ntype = \"file\"\nsrc = \"/y\"\n")
	if err != nil {
		t.Fatal(err)
	}
	in, err := (Type{Parse: parseFile}).New(Config{Section: f.Inputs[1], Name: "input[1]", Pipeline: "web", MaxMessageSize: 100})
	if err != nil {
		t.Fatal(err)
	}
	wd, _ := os.Getwd()
	if got, want := in.(*File).CheckpointPath(), filepath.Join(wd, "web.input-1.checkpoints.json"); got != want {
		t.Errorf("default checkpoint path %q; want %q", got, want)
	}
	// Next to the disk queue's directory when [queue] path is set (a
	// relative one is relative to the config file, as for the queue).
	for _, tc := range []struct{ path, want string }{
		{"/var/lib/flowgo/queue-web", "/var/lib/flowgo/web.input.checkpoints.json"},
		{"state/queue", "/etc/flowgo/state/web.input.checkpoints.json"},
	} {
		f, err = config.Parse("/etc/flowgo/web.toml", fmt.Sprintf("[input]\ntype = \"file\"\nsrc = \"/x\"\n[queue]\ntype = \"disk\"\npath = %q\n", tc.path))
		if err != nil {
			t.Fatal(err)
		}
		in, err = (Type{Parse: parseFile}).New(Config{Section: f.Inputs[0], Name: "input", Pipeline: "web", MaxMessageSize: 100})
		if err != nil {
			t.Fatal(err)
		}
		if got := in.(*File).CheckpointPath(); got != tc.want {
			t.Errorf("checkpoint path with a disk queue at %q: %q; want %q", tc.path, got, tc.want)
		}
	}
}

// logrotate (rename and create) while flowgo is stopped, with a src that
// does not match the rotated name: the file is found again by its inode in
// its directory and read from its checkpoint to its end.
func TestFileRotatedWhileStoppedOutsideSrc(t *testing.T) {
	dir := t.TempDir()
	log := filepath.Join(dir, "app.log")
	keys := fmt.Sprintf("src = %q\nread_from = \"beginning\"", log)
	keys += fmt.Sprintf("\nfile_checkpoint_path = %q", filepath.Join(dir, "ck.json"))
	appendLines(t, log, "a", 0, 10)
	r := startFile(t, keys, newTestSink())
	checkExactlyOnce(t, r.waitMsgs(10), lines("a", 0, 10))
	r.stop()
	appendLines(t, log, "b", 0, 10)
	if err := os.Rename(log, filepath.Join(dir, "app.log-20261130")); err != nil {
		t.Fatal(err)
	}
	appendLines(t, log, "c", 0, 10)
	r2 := startFile(t, keys, newTestSink())
	checkExactlyOnce(t, r2.waitMsgs(20), append(lines("b", 0, 10), lines("c", 0, 10)...))
	if !waitFor(fileWait, func() bool { return strings.Contains(r2.logs.String(), "msg=\"file released\"") }) {
		t.Errorf("the rotated file was not released:\n%s", r2.logs)
	}
}

// copytruncate while flowgo is stopped, with a src that matches the copy:
// the copy is read from the original's checkpoint, not from its beginning,
// and the truncated original from its beginning.
func TestFileCopyTruncateWhileStopped(t *testing.T) {
	dir := t.TempDir()
	log := filepath.Join(dir, "app.log")
	keys := fmt.Sprintf("src = %q\nread_from = \"beginning\"", log+"*")
	keys += fmt.Sprintf("\nfile_checkpoint_path = %q", filepath.Join(dir, "ck.json"))
	appendLines(t, log, "a long enough line to fingerprint the file", 0, 20)
	r := startFile(t, keys, newTestSink())
	r.waitMsgs(20)
	r.stop()
	appendLines(t, log, "b", 0, 10)
	data, err := os.ReadFile(log)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(log+".1", data, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(log, 0); err != nil {
		t.Fatal(err)
	}
	appendLines(t, log, "c", 0, 10)
	r2 := startFile(t, keys, newTestSink())
	r2.waitMsgs(20)
	time.Sleep(300 * time.Millisecond) // a copy read from its beginning would show now
	msgs, _, _, _ := r2.sink.snapshot()
	checkExactlyOnce(t, msgs, append(lines("b", 0, 10), lines("c", 0, 10)...))
}

// counter returns one of the input's own counters.
func counter(in *File, name, reason string) int64 {
	for _, c := range in.Counters() {
		if c.Name == name && c.Reason == reason {
			return c.Value
		}
	}
	return -1
}

func TestFileNULFraming(t *testing.T) {
	dir := t.TempDir()
	log := filepath.Join(dir, "gelf.log")
	appendString(t, log, "one\x00two\nlines\x00")
	r := startFile(t, fmt.Sprintf("src = %q\nread_from = \"beginning\"\nframing = \"nul\"", log), newTestSink())
	appendString(t, log, "thr")
	appendString(t, log, "ee\x00")
	if got := r.waitMsgs(3); !slices.Equal(got, []string{"one", "two\nlines", "three"}) {
		t.Fatalf("got %q", got)
	}
}
