package output

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/flowgo/flowgo"
	"github.com/flowgo/flowgo/config"
	"github.com/flowgo/flowgo/internal/timefmt"
	"github.com/klauspost/compress/zstd"
)

// newFile parses c and builds a file output, as Parse then Build do. It
// does no I/O: the file is opened by the first Write.
func newFile(c Config) (*File, error) {
	b, err := parseFile(c)
	if err != nil {
		return nil, err
	}
	return b.build(), nil
}

// newTestFile builds a file output from the [output] keys in keys, writing
// into a fresh temporary directory, with the clock at clk.
func newTestFile(t testing.TB, keys string) (*File, string) {
	t.Helper()
	return newTestFileIn(t, t.TempDir(), keys)
}

func newTestFileIn(t testing.TB, dir, keys string) (*File, string) {
	t.Helper()
	keys = strings.ReplaceAll(keys, "DIR", filepath.ToSlash(dir))
	cf, err := config.Parse("t.toml", "[output]\ntype = \"file\"\n"+keys)
	if err != nil {
		t.Fatalf("config.Parse: %v", err)
	}
	o, err := newFile(Config{Section: cf.Output, Format: "passthrough", Framing: "line"})
	if err != nil {
		t.Fatalf("newFile: %v", err)
	}
	t.Cleanup(func() { o.Close(context.Background()) })
	return o, dir
}

type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time          { return c.t }
func (c *fakeClock) advance(d time.Duration) { c.t = c.t.Add(d) }

func newClock(rfc3339 string) *fakeClock {
	t, err := time.Parse(time.RFC3339, rfc3339)
	if err != nil {
		panic(err)
	}
	return &fakeClock{t}
}

func batchOf(frames ...string) *flowgo.Batch {
	b := &flowgo.Batch{}
	fillBatch(b, frames)
	return b
}

func frames(n int, f func(i int) string) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = f(i)
	}
	return out
}

// testBatchIDs gives the tests' batches delivery identities, as the
// pipeline does: a Write of the same ID is a retry.
var testBatchIDs atomic.Uint64

func fillBatch(b *flowgo.Batch, frames []string) {
	b.ResetEncoded()
	b.ID = testBatchIDs.Add(1)
	for _, f := range frames {
		b.Data = append(b.Data, f...)
		b.Ends = append(b.Ends, len(b.Data))
		b.Index = append(b.Index, len(b.Ends)-1)
	}
}

func mustWrite(t *testing.T, o *File, frames ...string) {
	t.Helper()
	if err := o.Write(context.Background(), batchOf(frames...)); err != nil {
		t.Fatalf("Write: %v", err)
	}
}

func mustClose(t *testing.T, o *File) {
	t.Helper()
	if err := o.Close(context.Background()); err != nil {
		t.Fatalf("Close: %v", err)
	}
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	return string(data)
}

// listDir returns the names in dir, sorted.
func listDir(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	return names
}

func TestFileDoesNoIOBeforeTheFirstWrite(t *testing.T) {
	_, dir := newTestFile(t, `file_path = "DIR/out.log"`)
	if names := listDir(t, dir); len(names) != 0 {
		t.Fatalf("after newFile the directory holds %v; want nothing", names)
	}
}

func TestFileMissingDirectoryIsAConfigErrorAtStart(t *testing.T) {
	dir := t.TempDir()
	f, err := config.Parse("t.toml", fmt.Sprintf("[output]\ntype = \"file\"\nfile_path = %q\n", filepath.Join(dir, "nope", "out.log")))
	if err != nil {
		t.Fatal(err)
	}
	_, err = newFile(Config{Section: f.Output, Format: "passthrough", Framing: "line"})
	if err == nil || !strings.Contains(err.Error(), "t.toml:3: output.file_path: directory") {
		t.Errorf("newFile = %v; want a config error naming file_path", err)
	}
}

func TestFileWriteRetriesWhenTheDirectoryDisappears(t *testing.T) {
	base := t.TempDir()
	if err := os.Mkdir(filepath.Join(base, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	o, dir := newTestFileIn(t, base, `file_path = "DIR/sub/out.log"`)
	if err := os.Remove(filepath.Join(dir, "sub")); err != nil {
		t.Fatal(err)
	}
	err := o.Write(context.Background(), batchOf("a\n"))
	if err == nil || !strings.Contains(err.Error(), filepath.Join(dir, "sub", "out.log")) {
		t.Fatalf("Write into a missing directory = %v; want an error naming the path", err)
	}
	var be *flowgo.BatchError
	if errors.As(err, &be) {
		t.Fatalf("Write error is a BatchError; want a retryable error")
	}
	if err := os.Mkdir(filepath.Join(dir, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	mustWrite(t, o, "a\n")
	if got := readFile(t, filepath.Join(dir, "sub", "out.log")); got != "a\n" {
		t.Errorf("after the retry the file holds %q; want %q", got, "a\n")
	}
}

func TestFileAppendsToAnExistingFile(t *testing.T) {
	o, dir := newTestFile(t, `file_path = "DIR/out.log"`)
	path := filepath.Join(dir, "out.log")
	if err := os.WriteFile(path, []byte("old\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	mustWrite(t, o, "a\n", "b\n")
	mustWrite(t, o, "c\n")
	mustClose(t, o)
	if got, want := readFile(t, path), "old\na\nb\nc\n"; got != want {
		t.Errorf("file = %q; want %q", got, want)
	}
}

func TestFileWritesABatchWithOneCall(t *testing.T) {
	o, dir := newTestFile(t, `file_path = "DIR/out.log"`)
	var calls int
	o.open = func(name string) (fileHandle, error) {
		f, err := o.openAppend(name)
		return &countingFile{fileHandle: f, calls: &calls}, err
	}
	mustWrite(t, o, frames(1000, func(i int) string { return fmt.Sprintf("record %d\n", i) })...)
	if calls != 1 {
		t.Errorf("writing a batch of 1000 frames made %d write calls; want 1", calls)
	}
	mustClose(t, o)
	if got := readFile(t, filepath.Join(dir, "out.log")); !strings.HasPrefix(got, "record 0\n") || !strings.HasSuffix(got, "record 999\n") {
		t.Errorf("file does not hold the batch")
	}
}

type countingFile struct {
	fileHandle
	calls *int
}

func (c *countingFile) Write(p []byte) (int, error) { *c.calls++; return c.fileHandle.Write(p) }

func TestFileSizeRotation(t *testing.T) {
	// Frames of 4 bytes and a 10-byte limit: two frames per file.
	ten := frames(10, func(i int) string { return fmt.Sprintf("%03d\n", i) })
	tests := []struct {
		name    string
		path    string
		max     string
		batches [][]string
		want    map[string]string
	}{
		{
			name: "the extension is replaced by the number and old files shift up, the oldest dropped",
			path: "out.log", max: "file_rotation_maxfiles = 3",
			batches: [][]string{ten},
			want: map[string]string{
				"out.log": "008\n009\n", "out.0": "006\n007\n", "out.1": "004\n005\n", "out.2": "002\n003\n",
			},
		},
		{
			name: "one frame per batch rotates the same way as one batch",
			path: "out.log", max: "file_rotation_maxfiles = 3",
			batches: func() [][]string {
				var bs [][]string
				for _, f := range ten {
					bs = append(bs, []string{f})
				}
				return bs
			}(),
			want: map[string]string{
				"out.log": "008\n009\n", "out.0": "006\n007\n", "out.1": "004\n005\n", "out.2": "002\n003\n",
			},
		},
		{
			name: "a file without extension gets the number as extension",
			path: "out", max: "file_rotation_maxfiles = 2",
			batches: [][]string{ten[:6]},
			want:    map[string]string{"out": "004\n005\n", "out.0": "002\n003\n", "out.1": "000\n001\n"},
		},
		{
			name: "only the last extension is replaced",
			path: "a.tar.gz", max: "file_rotation_maxfiles = 5",
			batches: [][]string{ten[:4]},
			want:    map[string]string{"a.tar.gz": "002\n003\n", "a.tar.0": "000\n001\n"},
		},
		{
			name: "the default keeps 50 files",
			path: "out.log", max: "",
			batches: [][]string{frames(104, func(i int) string { return fmt.Sprintf("%03d\n", i) })},
			want: func() map[string]string {
				m := map[string]string{"out.log": "102\n103\n"}
				for k := 0; k < 50; k++ {
					m[fmt.Sprintf("out.%d", k)] = fmt.Sprintf("%03d\n%03d\n", 100-2*k, 101-2*k)
				}
				return m
			}(),
		},
		{
			name: "maxfiles 0 never rotates, as in Flowgger",
			path: "out.log", max: "file_rotation_maxfiles = 0",
			batches: [][]string{ten[:5]},
			want:    map[string]string{"out.log": "000\n001\n002\n003\n004\n"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o, dir := newTestFile(t, fmt.Sprintf("file_path = \"DIR/%s\"\nfile_rotation_size = 10\n%s\n", tt.path, tt.max))
			for _, b := range tt.batches {
				mustWrite(t, o, b...)
			}
			mustClose(t, o)
			var wantNames []string
			for n := range tt.want {
				wantNames = append(wantNames, n)
			}
			slices.Sort(wantNames)
			if got := listDir(t, dir); !slices.Equal(got, wantNames) {
				t.Fatalf("files = %v; want %v", got, wantNames)
			}
			for name, want := range tt.want {
				if got := readFile(t, filepath.Join(dir, name)); got != want {
					t.Errorf("%s = %q; want %q", name, got, want)
				}
			}
		})
	}
}

func TestFileSizeRotationCountsTheExistingFile(t *testing.T) {
	o, dir := newTestFile(t, "file_path = \"DIR/out.log\"\nfile_rotation_size = 10")
	if err := os.WriteFile(filepath.Join(dir, "out.log"), []byte("old old\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	mustWrite(t, o, "new\n")
	mustClose(t, o)
	if got := readFile(t, filepath.Join(dir, "out.0")); got != "old old\n" {
		t.Errorf("out.0 = %q; want the 8 bytes that were there", got)
	}
	if got := readFile(t, filepath.Join(dir, "out.log")); got != "new\n" {
		t.Errorf("out.log = %q; want %q", got, "new\n")
	}
}

func TestFileNeverSplitsARecord(t *testing.T) {
	for _, buf := range []int{0, 50, 1000} {
		t.Run(fmt.Sprintf("file_buffer_size %d", buf), func(t *testing.T) {
			const limit = 64
			o, dir := newTestFile(t, fmt.Sprintf("file_path = \"DIR/out.log\"\nfile_rotation_size = %d\nfile_rotation_maxfiles = 100000\nfile_buffer_size = %d", limit, buf))
			rng := rand.New(rand.NewPCG(1, 2))
			var all []string
			for range 25 {
				n := 1 + rng.IntN(20)
				fs := frames(n, func(int) string {
					size := 1 + rng.IntN(50)
					if rng.IntN(50) == 0 {
						size = limit + 1 + rng.IntN(40) // larger than a file may be
					}
					return strings.Repeat(string(rune('a'+rng.IntN(26))), size-1) + "\n"
				})
				all = append(all, fs...)
				mustWrite(t, o, fs...)
			}
			mustClose(t, o)
			// Oldest first: out.N ... out.0, then out.log.
			names := listDir(t, dir)
			rotated := len(names) - 1
			var got []string
			for k := rotated - 1; k >= -1; k-- {
				name := "out.log"
				if k >= 0 {
					name = fmt.Sprintf("out.%d", k)
				}
				content := readFile(t, filepath.Join(dir, name))
				if !strings.HasSuffix(content, "\n") {
					t.Fatalf("%s = %q: does not end with a whole record", name, content)
				}
				recs := strings.SplitAfter(content, "\n")
				recs = recs[:len(recs)-1]
				if len(content) > limit && len(recs) > 1 {
					t.Errorf("%s holds %d bytes in %d records; want at most %d bytes unless it is one record", name, len(content), len(recs), limit)
				}
				got = append(got, recs...)
			}
			if !slices.Equal(got, all) {
				t.Errorf("the files hold %d records; want the %d written, in order", len(got), len(all))
			}
		})
	}
}

func TestFileTimeRotation(t *testing.T) {
	clk := newClock("2024-03-01T10:00:00Z")
	o, dir := newTestFile(t, "file_path = \"DIR/out.log\"\nfile_rotation_time = 2")
	o.now = clk.now
	mustWrite(t, o, "a\n")
	clk.advance(time.Minute + 59*time.Second)
	mustWrite(t, o, "b\n") // not expired yet
	clk.advance(time.Second)
	mustWrite(t, o, "c\n") // expired at creation + 2 min
	clk.advance(30 * time.Minute)
	// No write, no file: nothing is created while idle.
	if got := listDir(t, dir); len(got) != 2 {
		t.Fatalf("files while idle = %v; want 2", got)
	}
	mustWrite(t, o, "d\n", "e\n")
	mustClose(t, o)
	want := map[string]string{
		"out-20240301T100000Z.log": "a\nb\n",
		"out-20240301T100200Z.log": "c\n",
		"out-20240301T103200Z.log": "d\ne\n",
	}
	if got := listDir(t, dir); len(got) != len(want) {
		t.Fatalf("files = %v; want %d", got, len(want))
	}
	for name, w := range want {
		if got := readFile(t, filepath.Join(dir, name)); got != w {
			t.Errorf("%s = %q; want %q", name, got, w)
		}
	}
}

func TestFileTimeRotationWithSizeTrigger(t *testing.T) {
	clk := newClock("2024-03-01T10:00:00Z")
	o, dir := newTestFile(t, "file_path = \"DIR/out\"\nfile_rotation_time = 60\nfile_rotation_size = 10")
	o.now = clk.now
	mustWrite(t, o, "000\n", "001\n", "002\n") // the third frame crosses the limit in the same second
	clk.advance(time.Second)
	mustWrite(t, o, "003\n", "004\n", "005\n") // same again, a second later
	mustClose(t, o)
	want := map[string]string{
		// Flowgger appends to the same file when the stamp has not changed,
		// and counts its size from zero again.
		"out-20240301T100000Z": "000\n001\n002\n003\n",
		"out-20240301T100001Z": "004\n005\n",
	}
	if got := listDir(t, dir); len(got) != len(want) {
		t.Fatalf("files = %v; want %d (no trailing dot without an extension)", got, len(want))
	}
	for name, w := range want {
		if got := readFile(t, filepath.Join(dir, name)); got != w {
			t.Errorf("%s = %q; want %q", name, got, w)
		}
	}
}

func TestFileRotationTimeFormats(t *testing.T) {
	tests := []struct {
		name, format, want string
	}{
		{"the default is Flowgger 0.3's format description", "", "out-20240301T093005Z.log"},
		{"a format description", "[year][month][day]T[hour][minute][second]Z", "out-20240301T093005Z.log"},
		{"the same as a strftime string", "%Y%m%dT%H%M%SZ", "out-20240301T093005Z.log"},
		{"a format description with separators", "[year]-[month]-[day]_[hour]", "out-2024-03-01_09.log"},
		{"a strftime string with separators", "%Y-%m-%d_%H", "out-2024-03-01_09.log"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			keys := "file_path = \"DIR/out.log\"\nfile_rotation_time = 1\n"
			if tt.format != "" {
				keys += fmt.Sprintf("file_rotation_timeformat = %q\n", tt.format)
			}
			o, dir := newTestFile(t, keys)
			o.now = newClock("2024-03-01T09:30:05Z").now
			mustWrite(t, o, "x\n")
			mustClose(t, o)
			if got := listDir(t, dir); !slices.Equal(got, []string{tt.want}) {
				t.Errorf("files = %v; want [%s]", got, tt.want)
			}
		})
	}
}

func TestFileBuffer(t *testing.T) {
	t.Run("data waits in the buffer until Flush", func(t *testing.T) {
		o, dir := newTestFile(t, "file_path = \"DIR/out.log\"\nfile_buffer_size = 1000\nfile_flush_interval = \"250ms\"")
		if got := o.FlushInterval(); got != 250*time.Millisecond {
			t.Errorf("FlushInterval() = %v; want 250ms", got)
		}
		mustWrite(t, o, "a\n", "b\n")
		if got := readFile(t, filepath.Join(dir, "out.log")); got != "" {
			t.Fatalf("before Flush the file holds %q; want nothing yet", got)
		}
		if err := o.Flush(context.Background()); err != nil {
			t.Fatal(err)
		}
		if got := readFile(t, filepath.Join(dir, "out.log")); got != "a\nb\n" {
			t.Errorf("after Flush the file holds %q; want %q", got, "a\nb\n")
		}
	})
	t.Run("Close writes what is buffered", func(t *testing.T) {
		o, dir := newTestFile(t, "file_path = \"DIR/out.log\"\nfile_buffer_size = 1000")
		if got := o.FlushInterval(); got != time.Second {
			t.Errorf("default FlushInterval() = %v; want 1s", got)
		}
		mustWrite(t, o, "a\n")
		mustClose(t, o)
		if got := readFile(t, filepath.Join(dir, "out.log")); got != "a\n" {
			t.Errorf("after Close the file holds %q; want %q", got, "a\n")
		}
	})
	t.Run("nothing is lost or reordered across buffer sizes", func(t *testing.T) {
		o, dir := newTestFile(t, "file_path = \"DIR/out.log\"\nfile_buffer_size = 100")
		rng := rand.New(rand.NewPCG(3, 4))
		var want strings.Builder
		for i := range 300 {
			fs := frames(1+rng.IntN(10), func(j int) string {
				return fmt.Sprintf("%d.%d %s\n", i, j, strings.Repeat("x", rng.IntN(150)))
			})
			for _, f := range fs {
				want.WriteString(f)
			}
			mustWrite(t, o, fs...)
			if i%37 == 0 {
				if err := o.Flush(context.Background()); err != nil {
					t.Fatal(err)
				}
			}
		}
		mustClose(t, o)
		if got := readFile(t, filepath.Join(dir, "out.log")); got != want.String() {
			t.Errorf("file holds %d bytes; want the %d written, in order", len(got), want.Len())
		}
	})
}

// faultyFile fails writes with err once the file would pass limit bytes,
// after writing what fits, as a full disk does.
type faultyFile struct {
	fileHandle
	fs *faults
}

type faults struct {
	mu      sync.Mutex
	limit   int // bytes the file may hold; -1 for no limit
	written int
	err     error
	opens   int
}

func (f *faultyFile) Write(p []byte) (int, error) {
	f.fs.mu.Lock()
	defer f.fs.mu.Unlock()
	if f.fs.limit < 0 || f.fs.written+len(p) <= f.fs.limit {
		n, err := f.fileHandle.Write(p)
		f.fs.written += n
		return n, err
	}
	room := max(f.fs.limit-f.fs.written, 0)
	n, _ := f.fileHandle.Write(p[:room])
	f.fs.written += n
	return n, &os.PathError{Op: "write", Path: "out.log", Err: f.fs.err}
}

func (fs *faults) set(limit int) {
	fs.mu.Lock()
	fs.limit = limit
	fs.mu.Unlock()
}

func withFaults(o *File, limit int, err error) *faults {
	fs := &faults{limit: limit, err: err}
	o.open = func(name string) (fileHandle, error) {
		f, err := o.openAppend(name)
		if err != nil {
			return nil, err
		}
		fs.mu.Lock()
		fs.opens++
		fs.mu.Unlock()
		return &faultyFile{fileHandle: f, fs: fs}, nil
	}
	return fs
}

func TestFileRetryDoesNotDuplicate(t *testing.T) {
	tests := []struct {
		name      string
		keys      string
		err       error
		wantOpens int
	}{
		{"a full disk, unbuffered", "", syscall.ENOSPC, 1},
		{"a full disk, buffered", "file_buffer_size = 64", syscall.ENOSPC, 1},
		// Each failed write closes the file: four failures and the
		// successful retry open it five times.
		{"an I/O error reopens the file", "", syscall.EIO, 5},
		{"a full disk, with size rotation", "file_rotation_size = 100\nfile_rotation_maxfiles = 1000", syscall.ENOSPC, -1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o, dir := newTestFile(t, "file_path = \"DIR/out.log\"\n"+tt.keys)
			fs := withFaults(o, 0, tt.err)
			all := frames(40, func(i int) string { return fmt.Sprintf("record number %02d\n", i) })
			b := batchOf(all...)
			for _, limit := range []int{100, 101, 250, 600} { // cuts inside records
				fs.set(limit)
				if err := o.Write(context.Background(), b); !errors.Is(err, tt.err) {
					t.Fatalf("Write with a disk of %d bytes = %v; want %v", limit, err, tt.err)
				}
			}
			fs.set(-1)
			if err := o.Write(context.Background(), b); err != nil {
				t.Fatalf("Write after the disk was freed: %v", err)
			}
			mustClose(t, o)
			var got strings.Builder
			names := listDir(t, dir)
			for k := len(names) - 2; k >= 0; k-- {
				got.WriteString(readFile(t, filepath.Join(dir, fmt.Sprintf("out.%d", k))))
			}
			got.WriteString(readFile(t, filepath.Join(dir, "out.log")))
			if want := strings.Join(all, ""); got.String() != want {
				t.Errorf("files hold\n%s\nwant every record once:\n%s", got.String(), want)
			}
			if tt.wantOpens >= 0 && fs.opens != tt.wantOpens {
				t.Errorf("the file was opened %d times; want %d", fs.opens, tt.wantOpens)
			}
		})
	}
}

func TestFileReportsARealFullDisk(t *testing.T) {
	if _, err := os.Stat("/dev/full"); err != nil {
		t.Skip("no /dev/full on this system")
	}
	cf, err := config.Parse("t.toml", "[output]\nfile_path = \"/dev/full\"\n")
	if err != nil {
		t.Fatal(err)
	}
	o, err := newFile(Config{Section: cf.Output})
	if err != nil {
		t.Fatal(err)
	}
	err = o.Write(context.Background(), batchOf("a\n"))
	if !errors.Is(err, syscall.ENOSPC) {
		t.Errorf("Write to /dev/full = %v; want ENOSPC", err)
	}
	if o.f == nil {
		t.Error("a full disk closed the file; want it kept open for the retry")
	}
	o.Close(context.Background())
}

func TestFileRetryOfARecycledBatchWritesItWhole(t *testing.T) {
	o, dir := newTestFile(t, `file_path = "DIR/out.log"`)
	fs := withFaults(o, 8, syscall.ENOSPC)
	b := batchOf("first 1\n", "first 2\n")
	if err := o.Write(context.Background(), b); err == nil {
		t.Fatal("Write on a full disk succeeded")
	}
	fs.set(-1)
	// The pipeline gave the batch up and the pool handed it out again.
	fillBatch(b, []string{"other 1\n", "other 2\n"})
	if err := o.Write(context.Background(), b); err != nil {
		t.Fatal(err)
	}
	mustClose(t, o)
	if got, want := readFile(t, filepath.Join(dir, "out.log")), "first 1\nother 1\nother 2\n"; got != want {
		t.Errorf("file = %q; want %q", got, want)
	}
}

func TestFileReopen(t *testing.T) {
	for _, buf := range []int{0, 4096} {
		t.Run(fmt.Sprintf("file_buffer_size %d", buf), func(t *testing.T) {
			o, dir := newTestFile(t, fmt.Sprintf("file_path = \"DIR/out.log\"\nfile_buffer_size = %d", buf))
			if err := o.Reopen(); err != nil {
				t.Fatalf("Reopen before any Write: %v", err)
			}
			mustWrite(t, o, "before\n")
			// logrotate renames the file, then its postrotate sends SIGHUP.
			if err := os.Rename(filepath.Join(dir, "out.log"), filepath.Join(dir, "out.log.1")); err != nil {
				t.Fatal(err)
			}
			if err := o.Reopen(); err != nil {
				t.Fatalf("Reopen: %v", err)
			}
			mustWrite(t, o, "after\n")
			mustClose(t, o)
			if got := readFile(t, filepath.Join(dir, "out.log.1")); got != "before\n" {
				t.Errorf("renamed file = %q; want %q", got, "before\n")
			}
			if got := readFile(t, filepath.Join(dir, "out.log")); got != "after\n" {
				t.Errorf("new file = %q; want %q", got, "after\n")
			}
		})
	}
}

func TestFileReopenWhileWriting(t *testing.T) {
	o, dir := newTestFile(t, "file_path = \"DIR/out.log\"\nfile_buffer_size = 512")
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			select {
			case <-stop:
				return
			default:
			}
			if err := o.Reopen(); err != nil {
				t.Errorf("Reopen: %v", err)
				return
			}
		}
	})
	var want strings.Builder
	for i := range 300 {
		fs := frames(5, func(j int) string { return fmt.Sprintf("%d-%d\n", i, j) })
		want.WriteString(strings.Join(fs, ""))
		mustWrite(t, o, fs...)
	}
	close(stop)
	wg.Wait()
	mustClose(t, o)
	if got := readFile(t, filepath.Join(dir, "out.log")); got != want.String() {
		t.Errorf("file holds %d bytes; want the %d written, in order", len(got), want.Len())
	}
}

func TestFileRejectsAMalformedBatchWithoutPanicking(t *testing.T) {
	o, dir := newTestFile(t, `file_path = "DIR/out.log"`)
	for _, b := range []*flowgo.Batch{
		{Data: []byte("abc"), Ends: []int{2, 5}},
		{Data: []byte("abc"), Ends: []int{2, 1}},
	} {
		err := o.Write(context.Background(), b)
		var be *flowgo.BatchError
		if !errors.As(err, &be) || len(be.Failed) != len(b.Ends) {
			t.Errorf("Write(ends %v over %d bytes) = %v; want a BatchError failing every frame", b.Ends, len(b.Data), err)
		}
	}
	if names := listDir(t, dir); len(names) != 0 {
		t.Errorf("files = %v; want none", names)
	}
}

func TestFileWriteAfterClose(t *testing.T) {
	o, _ := newTestFile(t, `file_path = "DIR/out.log"`)
	mustClose(t, o)
	if err := o.Write(context.Background(), batchOf("a\n")); err == nil {
		t.Error("Write after Close succeeded")
	}
	if err := o.Close(context.Background()); err != nil {
		t.Errorf("second Close = %v; want nil", err)
	}
}

func decompress(t *testing.T, path string) string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var r io.Reader
	switch filepath.Ext(path) {
	case ".gz":
		zr, err := gzip.NewReader(f) // the standard library's reader, not the writer's package
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		r = zr
	case ".zst":
		zr, err := zstd.NewReader(f)
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		defer zr.Close()
		r = zr
	default:
		t.Fatalf("%s: not compressed", path)
	}
	data, err := io.ReadAll(r)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return string(data)
}

func TestFileCompressesRotatedFiles(t *testing.T) {
	for _, tt := range []struct{ codec, sfx string }{{"gzip", ".gz"}, {"zstd", ".zst"}} {
		t.Run(tt.codec+" after size rotation", func(t *testing.T) {
			o, dir := newTestFile(t, fmt.Sprintf("file_path = \"DIR/out.log\"\nfile_rotation_size = 100\nfile_rotation_maxfiles = 4\nfile_rotation_compress = %q", tt.codec))
			all := frames(30, func(i int) string { return fmt.Sprintf("record %02d %s\n", i, strings.Repeat("z", 20)) })
			for _, f := range all {
				mustWrite(t, o, f) // one per batch, so rotations interleave with compression
			}
			mustClose(t, o)
			// 31-byte records, three per file: out.log holds 27..29, out.0 24..26, ...
			want := []string{"out.0" + tt.sfx, "out.1" + tt.sfx, "out.2" + tt.sfx, "out.3" + tt.sfx, "out.log"}
			if got := listDir(t, dir); !slices.Equal(got, want) {
				t.Fatalf("files = %v; want %v", got, want)
			}
			for k := range 4 {
				first := 24 - 3*k
				if got, want := decompress(t, filepath.Join(dir, fmt.Sprintf("out.%d%s", k, tt.sfx))), strings.Join(all[first:first+3], ""); got != want {
					t.Errorf("out.%d%s holds %q; want %q", k, tt.sfx, got, want)
				}
			}
		})
		t.Run(tt.codec+" after time rotation", func(t *testing.T) {
			o, dir := newTestFile(t, fmt.Sprintf("file_path = \"DIR/out.log\"\nfile_rotation_time = 1\nfile_rotation_compress = %q", tt.codec))
			clk := newClock("2024-03-01T10:00:00Z")
			o.now = clk.now
			mustWrite(t, o, "a\n")
			clk.advance(time.Minute)
			mustWrite(t, o, "b\n")
			clk.advance(time.Minute)
			mustWrite(t, o, "c\n")
			mustClose(t, o)
			want := []string{"out-20240301T100000Z.log" + tt.sfx, "out-20240301T100100Z.log" + tt.sfx, "out-20240301T100200Z.log"}
			if got := listDir(t, dir); !slices.Equal(got, want) {
				t.Fatalf("files = %v; want %v", got, want)
			}
			for i, w := range []string{"a\n", "b\n"} {
				if got := decompress(t, filepath.Join(dir, want[i])); got != w {
					t.Errorf("%s holds %q; want %q", want[i], got, w)
				}
			}
		})
	}
}

func TestFileCompressesLeftoversAtStart(t *testing.T) {
	t.Run("size rotation", func(t *testing.T) {
		o, dir := newTestFile(t, "file_path = \"DIR/out.log\"\nfile_rotation_size = 1000\nfile_rotation_maxfiles = 3\nfile_rotation_compress = \"gzip\"")
		files := map[string]string{
			"out.0": "zero\n", "out.1": "one\n",
			"out.2": "two\n", "out.2.gz": "", // a crash left both: the plain one goes
			"out.7":                 "beyond maxfiles\n",
			"out.log.1":             "logrotate's\n",
			"out.x":                 "not ours\n",
			".out.log.compress.tmp": "half-written",
		}
		for name, content := range files {
			data := []byte(content)
			if name == "out.2.gz" {
				var b bytes.Buffer
				zw := gzip.NewWriter(&b)
				zw.Write([]byte("two\n"))
				zw.Close()
				data = b.Bytes()
			}
			if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		mustWrite(t, o, "new\n")
		mustClose(t, o)
		want := []string{"out.0.gz", "out.1.gz", "out.2.gz", "out.7", "out.log", "out.log.1", "out.x"}
		if got := listDir(t, dir); !slices.Equal(got, want) {
			t.Fatalf("files = %v; want %v", got, want)
		}
		for name, w := range map[string]string{"out.0.gz": "zero\n", "out.1.gz": "one\n", "out.2.gz": "two\n"} {
			if got := decompress(t, filepath.Join(dir, name)); got != w {
				t.Errorf("%s holds %q; want %q", name, got, w)
			}
		}
	})
	t.Run("time rotation", func(t *testing.T) {
		o, dir := newTestFile(t, "file_path = \"DIR/out.log\"\nfile_rotation_time = 60\nfile_rotation_compress = \"zstd\"")
		o.now = newClock("2024-03-01T10:00:00Z").now
		for name, content := range map[string]string{
			"out-20240229T090000Z.log": "old\n",
			"out-20240229T100000Z.log": "older but different\n",
			"out-error.log":            "another program's\n",
			"out-2024.log":             "not the stamp's shape\n",
		} {
			if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		mustWrite(t, o, "new\n")
		mustClose(t, o)
		want := []string{"out-2024.log", "out-20240229T090000Z.log.zst", "out-20240229T100000Z.log.zst", "out-20240301T100000Z.log", "out-error.log"}
		if got := listDir(t, dir); !slices.Equal(got, want) {
			t.Fatalf("files = %v; want %v", got, want)
		}
		if got := decompress(t, filepath.Join(dir, "out-20240229T090000Z.log.zst")); got != "old\n" {
			t.Errorf("compressed leftover holds %q; want %q", got, "old\n")
		}
	})
	t.Run("a different compressed file of the same name is kept", func(t *testing.T) {
		o, dir := newTestFile(t, "file_path = \"DIR/out.log\"\nfile_rotation_size = 1000\nfile_rotation_compress = \"gzip\"")
		var b bytes.Buffer
		zw := gzip.NewWriter(&b)
		zw.Write([]byte("something else\n"))
		zw.Close()
		os.WriteFile(filepath.Join(dir, "out.0.gz"), b.Bytes(), 0o644)
		os.WriteFile(filepath.Join(dir, "out.0"), []byte("zero\n"), 0o644)
		mustWrite(t, o, "new\n")
		mustClose(t, o)
		if got := readFile(t, filepath.Join(dir, "out.0")); got != "zero\n" {
			t.Errorf("out.0 = %q; want it kept", got)
		}
		if got := decompress(t, filepath.Join(dir, "out.0.gz")); got != "something else\n" {
			t.Errorf("out.0.gz = %q; want it untouched", got)
		}
	})
}

func TestFileTimeRotationPrunesOnlyWithExplicitMaxFiles(t *testing.T) {
	for _, tt := range []struct {
		name string
		keys string
		want int // rotated files kept
	}{
		{"without file_rotation_maxfiles every file is kept, as in Flowgger", "", 5},
		{"an explicit file_rotation_maxfiles keeps the newest", "file_rotation_maxfiles = 2", 2},
		{"an explicit 0 keeps every file", "file_rotation_maxfiles = 0", 5},
		{"and works with compression", "file_rotation_maxfiles = 3\nfile_rotation_compress = \"gzip\"", 3},
	} {
		t.Run(tt.name, func(t *testing.T) {
			o, dir := newTestFile(t, "file_path = \"DIR/out.log\"\nfile_rotation_time = 1\n"+tt.keys)
			clk := newClock("2024-03-01T10:00:00Z")
			o.now = clk.now
			for i := range 6 {
				mustWrite(t, o, fmt.Sprintf("%d\n", i))
				clk.advance(time.Minute)
			}
			mustClose(t, o)
			got := listDir(t, dir)
			if len(got) != tt.want+1 {
				t.Fatalf("files = %v; want %d rotated and the current one", got, tt.want)
			}
			// The newest are kept: the last names, in stamp order.
			if last := got[len(got)-1]; last != "out-20240301T100500Z.log" {
				t.Errorf("newest file = %s; want out-20240301T100500Z.log", last)
			}
			if first := got[0]; !strings.HasPrefix(first, fmt.Sprintf("out-20240301T10%02d00Z.log", 5-tt.want)) {
				t.Errorf("oldest file kept = %s; want the one from minute %d", first, 5-tt.want)
			}
		})
	}
}

func TestFileCloseIsBoundedByItsContext(t *testing.T) {
	o, dir := newTestFile(t, "file_path = \"DIR/out.log\"\nfile_rotation_size = 4000000\nfile_rotation_maxfiles = 5\nfile_rotation_compress = \"gzip\"")
	rng := rand.New(rand.NewPCG(5, 6))
	var contents []string
	for range 3 {
		data := make([]byte, 3999999)
		for i := 0; i < len(data); i += 8 {
			v := rng.Uint64()
			for j := i; j < min(i+8, len(data)); j++ {
				data[j] = byte('a' + v%26)
				v /= 26
			}
		}
		data[len(data)-1] = '\n'
		contents = append(contents, string(data))
		mustWrite(t, o, string(data))
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	start := time.Now()
	err := o.Close(ctx)
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("Close with an ended context took %v", d)
	}
	t.Logf("Close: %v", err)
	if err != nil && !errors.Is(err, context.Canceled) {
		t.Fatalf("Close = %v; want nil or context.Canceled", err)
	}
	// Whatever was cut short: each rotated file is there once, whole, and
	// an error means some file is still uncompressed.
	plainLeft := 0
	for k := range 2 {
		plain := filepath.Join(dir, fmt.Sprintf("out.%d", k))
		want := contents[1-k]
		_, errPlain := os.Stat(plain)
		_, errGz := os.Stat(plain + ".gz")
		switch {
		case errPlain == nil && errGz == nil:
			t.Errorf("out.%d exists both plain and compressed", k)
		case errPlain == nil:
			plainLeft++
			if readFile(t, plain) != want {
				t.Errorf("out.%d changed", k)
			}
		case errGz == nil:
			if decompress(t, plain+".gz") != want {
				t.Errorf("out.%d.gz does not hold the rotated bytes", k)
			}
		default:
			t.Errorf("out.%d is gone", k)
		}
	}
	if (err == nil) != (plainLeft == 0) {
		t.Errorf("Close = %v with %d rotated files left uncompressed", err, plainLeft)
	}
	if _, err := os.Stat(filepath.Join(dir, ".out.log.compress.tmp")); err == nil {
		t.Error("the temporary file was left behind")
	}
}

func TestFileConfigErrors(t *testing.T) {
	tests := []struct {
		name string
		keys string
		want string
	}{
		{"file_path is required", "", "t.toml:1: output.file_path: missing"},
		{"file_path may not be a directory", "file_path = \"logs/\"", "t.toml:3: output.file_path: \"logs/\" is a directory"},
		{"a negative buffer size", "file_path = \"o.log\"\nfile_buffer_size = -1", "t.toml:4: output.file_buffer_size: must be between 0"},
		{"a huge buffer size", "file_path = \"o.log\"\nfile_buffer_size = 4294967296", "t.toml:4: output.file_buffer_size: must be between 0"},
		{"a buffer size of the wrong type", "file_path = \"o.log\"\nfile_buffer_size = \"1k\"", "t.toml:4: output.file_buffer_size: wrong type"},
		{"a negative rotation size", "file_path = \"o.log\"\nfile_rotation_size = -5", "t.toml:4: output.file_rotation_size: must be 0"},
		{"a negative rotation time", "file_path = \"o.log\"\nfile_rotation_time = -1", "t.toml:4: output.file_rotation_time: must be 0"},
		{"a negative maxfiles", "file_path = \"o.log\"\nfile_rotation_maxfiles = -1", "t.toml:4: output.file_rotation_maxfiles: must be between 0"},
		{"a bad time format", "file_path = \"o.log\"\nfile_rotation_timeformat = \"[year][bogus]\"", "t.toml:4: output.file_rotation_timeformat:"},
		{"a bad strftime", "file_path = \"o.log\"\nfile_rotation_timeformat = \"%Y%\"", "t.toml:4: output.file_rotation_timeformat:"},
		{"a stamp with a slash", "file_path = \"o.log\"\nfile_rotation_timeformat = \"%Y/%m\"", "t.toml:4: output.file_rotation_timeformat: the stamp \"2003/01\" would put a path separator"},
		{"an unknown compression", "file_path = \"o.log\"\nfile_rotation_size = 9\nfile_rotation_compress = \"lz4\"", "t.toml:5: output.file_rotation_compress: unknown compression \"lz4\" (known: none, gzip, zstd)"},
		{"a bad flush interval", "file_path = \"o.log\"\nfile_flush_interval = \"soon\"", "t.toml:4: output.file_flush_interval"},
		{"a flush interval without unit", "file_path = \"o.log\"\nfile_flush_interval = 1", "t.toml:4: output.file_flush_interval: 1 is not a duration: write it with its unit"},
		{"a flush interval under 1ms", "file_path = \"o.log\"\nfile_flush_interval = \"10us\"", "t.toml:4: output.file_flush_interval: must be a duration of at least 1ms"},
		{"a rotation time that overflows", "file_path = \"o.log\"\nfile_rotation_time = 153722867281", "t.toml:4: output.file_rotation_time: 153722867281 minutes is out of range"},
		{"a numbered file_path with size rotation", "file_path = \"o.1\"\nfile_rotation_size = 9", "t.toml:3: output.file_path: \"o.1\" ends in a number"},
		{"compression needs stamps of a fixed shape", "file_path = \"o.log\"\nfile_rotation_time = 1\nfile_rotation_timeformat = \"%b-%d\"\nfile_rotation_compress = \"gzip\"", "t.toml:5: output.file_rotation_timeformat: with file_rotation_compress"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cf, err := config.Parse("t.toml", "[output]\ntype = \"file\"\n"+tt.keys+"\n")
			if err != nil {
				t.Fatalf("config.Parse: %v", err)
			}
			_, err = newFile(Config{Section: cf.Output})
			if err == nil || !strings.HasPrefix(err.Error(), tt.want) {
				t.Errorf("newFile error = %v; want it to start with %q", err, tt.want)
			}
		})
	}
}

func TestFileConfigWarnings(t *testing.T) {
	tests := []struct {
		name, keys, want string
	}{
		{"maxfiles 0 with size rotation", "file_rotation_size = 9\nfile_rotation_maxfiles = 0", "t.toml:5: output.file_rotation_maxfiles: 0 keeps no rotated file"},
		{"compression without rotation", "file_rotation_compress = \"zstd\"", "t.toml:4: output.file_rotation_compress: has no effect"},
		{"pruning time-rotated files with a stamp of no fixed shape", "file_rotation_time = 1\nfile_rotation_timeformat = \"%b-%d\"\nfile_rotation_maxfiles = 3", "t.toml:6: output.file_rotation_maxfiles: ignored, as in Flowgger"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cf, err := config.Parse("t.toml", "[output]\ntype = \"file\"\nfile_path = \"o.log\"\n"+tt.keys+"\n")
			if err != nil {
				t.Fatal(err)
			}
			if _, err := newFile(Config{Section: cf.Output}); err != nil {
				t.Fatal(err)
			}
			if w := cf.Warnings(); len(w) != 1 || !strings.HasPrefix(w[0], tt.want) {
				t.Errorf("warnings = %q; want one starting with %q", w, tt.want)
			}
		})
	}
}

func TestFileKeysAreKnownToTheConfig(t *testing.T) {
	cf, err := config.Parse("t.toml", `[output]
file_path = "o.log"
file_buffer_size = 0
file_flush_interval = "1s"
file_rotation_size = 0
file_rotation_time = 0
file_rotation_maxfiles = 50
file_rotation_timeformat = "[year][month][day]T[hour][minute][second]Z"
file_rotation_compress = "none"
file_rotaton_size = 1
`)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := newFile(Config{Section: cf.Output}); err != nil {
		t.Fatal(err)
	}
	err = cf.Check()
	if want := `t.toml:10: output.file_rotaton_size: unknown key (did you mean "file_rotation_size"?)`; err == nil || !strings.HasPrefix(err.Error(), want) {
		t.Errorf("Check = %v; want it to start with %q", err, want)
	}
}

func TestFileIsRegisteredWithLineFraming(t *testing.T) {
	typ, name, err := Lookup("file")
	if err != nil || name != "file" {
		t.Fatalf("Lookup(file) = %q, %v", name, err)
	}
	for _, format := range []string{"gelf", "rfc5424", "ltsv", "capnp"} {
		if got := typ.DefaultFraming(format); got != "line" {
			t.Errorf("DefaultFraming(%q) = %q; want line", format, got)
		}
	}
}

func TestStampShape(t *testing.T) {
	tests := []struct {
		format string
		fixed  bool
		match  []string
		reject []string
	}{
		{DefaultRotationTimeFormat, true, []string{"20240301T100000Z", "19991231T235959Z"}, []string{"error", "20240301T1000Z", "2024030xT100000Z", "20240301t100000Z"}},
		{"%Y-%m-%d", true, []string{"2024-03-01"}, []string{"2024-3-1", "2024_03_01"}},
		{"%e", true, []string{" 1", "31"}, []string{"1"}},
		{"[subsecond digits:6]", true, []string{"000000", "123456"}, []string{"12345"}},
		{"%b", false, nil, []string{"Jan"}},
		{"%-d", false, nil, []string{"1"}},
		{"%p", false, nil, []string{"AM"}},
		{"%a", false, nil, []string{"Sun"}},
	}
	for _, tt := range tests {
		f, err := timefmt.Parse(tt.format)
		if err != nil {
			t.Fatalf("Parse(%q): %v", tt.format, err)
		}
		s, ok := shapeOf(f)
		if ok != tt.fixed {
			t.Errorf("shapeOf(%q) fixed = %v; want %v", tt.format, ok, tt.fixed)
		}
		for _, m := range tt.match {
			if !s.match(m) {
				t.Errorf("shape of %q does not match %q", tt.format, m)
			}
		}
		for _, m := range tt.reject {
			if s.match(m) {
				t.Errorf("shape of %q matches %q", tt.format, m)
			}
		}
	}
}

func TestSplitNameFollowsRust(t *testing.T) {
	tests := []struct{ in, stem, ext string }{
		{"out.log", "out", "log"},
		{"out", "out", ""},
		{"a.tar.gz", "a.tar", "gz"},
		{".hidden", ".hidden", ""},
		{".hidden.log", ".hidden", "log"},
		{"out.", "out", ""},
	}
	for _, tt := range tests {
		if stem, ext := splitName(tt.in); stem != tt.stem || ext != tt.ext {
			t.Errorf("splitName(%q) = %q, %q; want %q, %q", tt.in, stem, ext, tt.stem, tt.ext)
		}
	}
}

var benchSink int64

// BenchmarkFileWrite writes batches of 1000 frames of about 300 bytes, a
// realistic RFC 5424 line each, and batches of 10 such frames, as a quiet
// input sends. The file rotates at 256 MiB so the disk holds at most two
// files.
func BenchmarkFileWrite(b *testing.B) {
	line := `<165>1 2024-03-01T10:00:00.123456Z web-01.example.com nginx 4242 ACCESS [origin ip="192.0.2.17" software="nginx"][meta sequenceId="%08d"] 192.0.2.17 - - "GET /api/v1/items?page=3&sort=name HTTP/1.1" 200 5123 "https://example.com/catalog" "Mozilla/5.0 (X11; Linux x86_64; rv:124.0) Gecko/20100101 Firefox/124.0"` + "\n"
	for _, size := range []int{1000, 10} {
		batch := batchOf(frames(size, func(i int) string { return fmt.Sprintf(line, i) })...)
		for _, bc := range []struct{ name, keys string }{
			{"unbuffered", ""},
			{"buffer=64KiB", "file_buffer_size = 65536"},
			{"buffer=1MiB", "file_buffer_size = 1048576"},
		} {
			b.Run(fmt.Sprintf("frames=%d/%s", size, bc.name), func(b *testing.B) {
				o, _ := newTestFile(b, "file_path = \"DIR/out.log\"\nfile_rotation_size = 268435456\nfile_rotation_maxfiles = 1\n"+bc.keys)
				ctx := context.Background()
				b.SetBytes(int64(len(batch.Data)))
				b.ReportAllocs()
				for b.Loop() {
					if err := o.Write(ctx, batch); err != nil {
						b.Fatal(err)
					}
				}
				if err := o.Close(ctx); err != nil {
					b.Fatal(err)
				}
				benchSink += o.size
			})
		}
	}
}
