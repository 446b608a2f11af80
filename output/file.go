package output

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/flowgo/flowgo"
	"github.com/flowgo/flowgo/config"
	"github.com/flowgo/flowgo/internal/logfile"
	"github.com/flowgo/flowgo/internal/timefmt"
)

func init() {
	Register("file", Type{
		Parse:          func(c Config) (Builder, error) { return parseFile(c) },
		DefaultFraming: func(string) flowgo.Framing { return flowgo.FramingLine },
	})
}

// DefaultRotationTimeFormat is Flowgger 0.3's file_rotation_timeformat.
const DefaultRotationTimeFormat = "[year][month][day]T[hour][minute][second]Z"

// maxBufferSize bounds file_buffer_size: the buffer is allocated whole.
const maxBufferSize = 1 << 30

// fileKeys holds the [output] keys of the file output, with Flowgger's names.
type fileKeys struct {
	Path           string                          `toml:"file_path"`
	BufferSize     int64                           `toml:"file_buffer_size"`
	FlushInterval  time.Duration                   `toml:"file_flush_interval"`
	RotationSize   int64                           `toml:"file_rotation_size"`
	RotationTime   config.Duration[config.Minutes] `toml:"file_rotation_time"`
	RotationFiles  int64                           `toml:"file_rotation_maxfiles"`
	RotationFormat string                          `toml:"file_rotation_timeformat"`
	Compress       string                          `toml:"file_rotation_compress"`
	// Mode is the mode of the files the output creates (rotated and
	// compressed files keep it).
	Mode config.FileMode `toml:"file_mode"`
}

// fileHandle is the part of *os.File the output uses; tests substitute one
// that fails on demand.
type fileHandle interface {
	io.Writer
	Sync() error
	Close() error
	Stat() (os.FileInfo, error)
}

// openAppend opens name for appending, creating it with file_mode; as
// root it refuses a link an unprivileged user could have planted (see
// package logfile).
func (o *File) openAppend(name string) (fileHandle, error) {
	f, err := logfile.OpenAppend(name, o.mode)
	if err != nil {
		return nil, err
	}
	return f, nil
}

// File is the file output: it appends frames to file_path and rotates it the
// way Flowgger does (see docs/flowgger.md), optionally compressing the
// rotated files in the background.
//
// Size rotation alone renames out.log to out.0, shifting out.0 to out.1 and
// so on, keeping file_rotation_maxfiles numbered files. Time rotation writes
// out-<stamp>.log and opens a new stamped file every file_rotation_time
// minutes, or earlier when file_rotation_size is reached. Rotation is checked
// before each frame, so a record is never split across files.
//
// Write, Flush and Close are called by the pipeline; Reopen may be called
// from any goroutine, for SIGHUP.
type File struct {
	fileSettings
	log *slog.Logger

	now  func() time.Time                 // the clock, injectable for tests
	open func(string) (fileHandle, error) // opens for append, injectable for tests

	mu      sync.Mutex // serialises Write, Flush, Close and Reopen
	f       fileHandle // nil until the first Write, and after some write errors
	name    string     // path of f, or of the file to reopen; "" for a new one
	size    int64      // bytes counted toward file_rotation_size
	expires time.Time  // time rotation: when the current file expires
	buf     []byte     // file_buffer_size bytes, allocated on first use
	closed  bool
	resume  progress // how far a failed Write got, for its retry

	// ns guards the names of rotated files, shared with the archiver.
	ns      sync.Mutex
	current string // the file being written (time rotation)
	shifts  uint64 // size rotations so far: how far numbered files moved
	arch    *archiver
}

// fileSettings are the file output's keys, validated: what parseFile
// makes of a section, and a File never changes.
type fileSettings struct {
	path          string // file_path
	stem, ext     string // file name split as Rust's Path::file_stem and extension
	dir           string
	bufSize       int
	flushInterval time.Duration
	rotSize       int64
	rotTime       time.Duration
	maxFiles      int
	cleanTime     bool // maxFiles also prunes time-rotated files
	stamp         *timefmt.Format
	shape         stampShape // nil when stamps have no fixed shape
	compress      string     // "" (none), "gzip" or "zstd"
	mode          os.FileMode
}

// progress records how much of a batch a failed Write delivered, so that
// the retry of that same batch does not write those bytes twice.
type progress struct {
	id     uint64 // the batch's delivery identity (flowgo.Batch.ID)
	frames int
	end    int
	off    int // bytes of b.Data delivered
}

var _ Output = (*File)(nil)
var _ Flusher = (*File)(nil)
var _ Prober = (*File)(nil)

// fileBuilder is a parsed file output.
type fileBuilder struct {
	set fileSettings
	log *slog.Logger
}

// Build implements Builder.
func (b *fileBuilder) Build() (Output, error) { return b.build(), nil }

func (b *fileBuilder) build() *File {
	o := &File{fileSettings: b.set, log: b.log, now: time.Now}
	o.open = o.openAppend
	return o
}

// parseFile decodes and validates the file output's keys. The one look at
// the disk it makes is at file_path's directory.
func parseFile(c Config) (*fileBuilder, error) {
	s := c.Section
	cfg := fileKeys{
		FlushInterval:  time.Second,
		RotationFiles:  50,
		RotationFormat: DefaultRotationTimeFormat,
		Compress:       "none",
		Mode:           config.Mode(logfile.DefaultMode),
	}
	if err := s.Decode(&cfg); err != nil {
		return nil, err
	}
	if cfg.Path == "" {
		return nil, s.Errorf("file_path", "missing: the file output needs the path of the file to write")
	}
	base := filepath.Base(cfg.Path)
	if strings.HasSuffix(cfg.Path, "/") || base == "." || base == ".." || base == string(filepath.Separator) {
		return nil, s.Errorf("file_path", "%q is a directory, not a file", cfg.Path)
	}
	// The one look at the disk a constructor makes: a directory that does
	// not exist is a configuration error to report at startup, not a write
	// to retry for ever (Flowgger refuses to start too).
	if fi, err := os.Stat(filepath.Dir(cfg.Path)); err != nil {
		return nil, s.Errorf("file_path", "directory %q: %v", filepath.Dir(cfg.Path), errors.Unwrap(err))
	} else if !fi.IsDir() {
		return nil, s.Errorf("file_path", "%q is not a directory", filepath.Dir(cfg.Path))
	}
	if err := logfile.Check(cfg.Path); err != nil {
		return nil, s.Errorf("file_path", "%v", err)
	}
	if cfg.BufferSize < 0 || cfg.BufferSize > maxBufferSize {
		return nil, s.Errorf("file_buffer_size", "must be between 0 and %d bytes, not %d", maxBufferSize, cfg.BufferSize)
	}
	if cfg.FlushInterval < time.Millisecond {
		return nil, s.Errorf("file_flush_interval", "must be a duration of at least 1ms, such as \"1s\", not %v", cfg.FlushInterval)
	}
	if cfg.RotationSize < 0 {
		return nil, s.Errorf("file_rotation_size", "must be 0 (no size rotation) or a size in bytes, not %d", cfg.RotationSize)
	}
	if cfg.RotationTime.Get() < 0 {
		return nil, s.Errorf("file_rotation_time", "must be 0 (no time rotation) or a number of minutes, not %v", cfg.RotationTime)
	}
	if cfg.RotationFiles < 0 || cfg.RotationFiles > math.MaxInt32 {
		return nil, s.Errorf("file_rotation_maxfiles", "must be between 0 and %d, not %d", math.MaxInt32, cfg.RotationFiles)
	}
	stamp, err := timefmt.Parse(cfg.RotationFormat)
	if err != nil {
		return nil, s.Errorf("file_rotation_timeformat", "%v", err)
	}
	for _, t := range []time.Time{shapeRefA, shapeRefB} {
		if st := stamp.Format(t); strings.ContainsAny(st, "/\x00") || (filepath.Separator != '/' && strings.ContainsRune(st, filepath.Separator)) {
			return nil, s.Errorf("file_rotation_timeformat", "the stamp %q would put a path separator in the file name", st)
		}
	}
	o := &fileSettings{
		path:          cfg.Path,
		dir:           filepath.Dir(cfg.Path),
		bufSize:       int(cfg.BufferSize),
		flushInterval: cfg.FlushInterval,
		rotSize:       cfg.RotationSize,
		rotTime:       cfg.RotationTime.Get(),
		maxFiles:      int(cfg.RotationFiles),
		stamp:         stamp,
		mode:          cfg.Mode.Get(),
	}
	o.stem, o.ext = splitName(base)
	log := c.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	log = log.With("output", "file", "path", cfg.Path)
	o.shape, _ = shapeOf(stamp)

	switch cfg.Compress {
	case "none":
	case "gzip", "zstd":
		o.compress = cfg.Compress
	default:
		return nil, s.Errorf("file_rotation_compress", "unknown compression %q (known: none, gzip, zstd)", cfg.Compress)
	}

	switch {
	case o.rotTime > 0:
		// Flowgger never pruned time-rotated files. Doing it by default
		// would delete files an upgraded setup keeps, so only an explicit
		// file_rotation_maxfiles turns it on.
		// An explicit 0 keeps every file, as 0 turns the other limits off.
		o.cleanTime = s.Has("file_rotation_maxfiles") && o.maxFiles > 0
		const fixed = "rotated files are found by their stamp, so it must have a fixed shape (numbers and fixed text; no month or day names, no unpadded numbers, no automatic fraction)"
		if o.shape == nil && o.compress != "" {
			return nil, s.Errorf("file_rotation_timeformat", "with file_rotation_compress, %s", fixed)
		}
		if o.shape == nil && o.cleanTime {
			// A Flowgger config must still load: keep every file.
			o.cleanTime = false
			s.Warn("file_rotation_maxfiles", "ignored, as in Flowgger: to prune time-rotated files, %s", fixed)
		}
	case o.rotSize > 0:
		if isDigits(o.ext) {
			return nil, s.Errorf("file_path", "%q ends in a number, which size rotation uses to name rotated files", cfg.Path)
		}
		if o.maxFiles == 0 {
			s.Warn("file_rotation_maxfiles", "0 keeps no rotated file: as in Flowgger, the file is never rotated and grows without limit")
		}
	default:
		if o.compress != "" {
			s.Warn("file_rotation_compress", "has no effect without file_rotation_size or file_rotation_time")
		}
	}
	return &fileBuilder{set: *o, log: log}, nil
}

// Probe proves the output can write: the file being written (file_path
// before the first write) opens for appending, or, when it does not exist
// yet, its directory lets files be created. Nothing is created or written.
func (o *File) Probe(ctx context.Context) error {
	o.ns.Lock()
	name := o.current
	o.ns.Unlock()
	if name == "" && o.rotTime == 0 {
		name = o.path
	}
	if name != "" {
		f, err := os.OpenFile(name, os.O_WRONLY|os.O_APPEND, 0)
		if err == nil {
			return f.Close()
		}
		if !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("file output: %w", err)
		}
	}
	if err := writableDir(o.dir); err != nil {
		return fmt.Errorf("file output: cannot create files in %s: %w", o.dir, err)
	}
	return nil
}

// Buffered reports whether Write keeps frames in flowgo's memory
// (file_buffer_size) until a Flush.
func (o *File) Buffered() bool { return o.bufSize > 0 }

// FlushInterval returns file_flush_interval.
func (o *File) FlushInterval() time.Duration { return o.flushInterval }

var errFileClosed = errors.New("file output: closed")

// Write appends the frames of b to the file, rotating it before any frame
// that would cross a limit. Without file_buffer_size, the frames between two
// rotations go to the OS in one write call; with it, they are buffered.
//
// A failed write returns an error for the pipeline to retry. Write
// remembers how many bytes of b it delivered, so the retry of the same batch
// resumes at the next byte: the file ends up as if no error happened, as long
// as it is the same file (a Reopen in between can leave the rest of a cut
// record at the start of the new file).
func (o *File) Write(ctx context.Context, b *flowgo.Batch) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.closed {
		return errFileClosed
	}
	n := b.Frames()
	if n == 0 {
		return nil
	}
	if err := checkFrames(b); err != nil {
		return err
	}
	off := o.resumeAt(b)
	if off >= b.Ends[n-1] {
		return nil
	}
	if err := o.write(ctx, b, &off); err != nil {
		if off > 0 {
			o.resume = progress{id: b.ID, frames: n, end: b.Ends[n-1], off: off}
		}
		return err
	}
	return nil
}

// checkFrames rejects a batch whose frame ends do not fit its data, which
// would otherwise panic when sliced. The pipeline never builds one.
func checkFrames(b *flowgo.Batch) error {
	prev := 0
	for _, e := range b.Ends {
		if e < prev || e > len(b.Data) {
			failed := make([]int, len(b.Ends))
			reasons := make([]error, len(b.Ends))
			for i := range failed {
				failed[i] = i
				reasons[i] = errors.New("file output: malformed batch: frame ends out of order or past the data")
			}
			return &flowgo.BatchError{Failed: failed, Reasons: reasons}
		}
		prev = e
	}
	return nil
}

// resumeAt returns where a retry of b starts: past the bytes a failed Write
// of the same batch delivered, 0 for any other batch.
func (o *File) resumeAt(b *flowgo.Batch) int {
	p := o.resume
	o.resume = progress{}
	if p.id == 0 || p.id != b.ID || p.frames != b.Frames() || p.end != b.Ends[p.frames-1] || p.off > len(b.Data) {
		return 0
	}
	return p.off
}

func (o *File) write(ctx context.Context, b *flowgo.Batch, off *int) error {
	now := o.now()
	if err := o.ensureOpen(now); err != nil {
		return err
	}
	n := b.Frames()
	seg := *off // start of the bytes not yet handed on, all for the current file
	// Start at the frame that ends after off. A frame a failed write cut in
	// two is finished first, in the same file, without a rotation check.
	i := sort.SearchInts(b.Ends[:n], *off+1)
	if frameStart(b, i) < *off {
		i++
	}
	for ; i < n; i++ {
		start := frameStart(b, i)
		if !o.due(o.size+int64(start-seg), int64(b.Ends[i]-start), now) {
			continue
		}
		if start > seg {
			if err := o.emit(b.Data[seg:start], off); err != nil {
				return err
			}
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := o.rotate(now); err != nil {
			return err
		}
		seg = start
	}
	return o.emit(b.Data[seg:b.Ends[n-1]], off)
}

func frameStart(b *flowgo.Batch, i int) int {
	if i == 0 {
		return 0
	}
	return b.Ends[i-1]
}

// due reports whether the file must rotate before a frame of n bytes, cur
// bytes having been counted for it. An empty file is never rotated for size,
// so a record larger than file_rotation_size gets a file of its own.
func (o *File) due(cur, n int64, now time.Time) bool {
	if o.rotTime > 0 && !now.Before(o.expires) {
		return true
	}
	return o.rotSize > 0 && cur > 0 && cur+n > o.rotSize
}

// emit hands p to the buffer or the file and advances *off by the bytes
// taken.
func (o *File) emit(p []byte, off *int) error {
	if len(p) == 0 {
		return nil
	}
	var n int
	var err error
	if o.bufSize == 0 {
		n, err = o.writeFile(p)
	} else {
		n, err = o.buffer(p)
	}
	*off += n
	o.size += int64(n)
	return err
}

// buffer copies p into the buffer, writing the buffer out when it is full.
// A p at least as large as the buffer skips it, as bufio.Writer does.
func (o *File) buffer(p []byte) (int, error) {
	if o.buf == nil {
		o.buf = make([]byte, 0, o.bufSize)
	}
	taken := 0
	for len(p) > 0 {
		if len(o.buf) == cap(o.buf) {
			if err := o.flushBuf(); err != nil {
				return taken, err
			}
		}
		if len(o.buf) == 0 && len(p) >= cap(o.buf) {
			n, err := o.writeFile(p)
			return taken + n, err
		}
		k := copy(o.buf[len(o.buf):cap(o.buf)], p)
		o.buf = o.buf[:len(o.buf)+k]
		p = p[k:]
		taken += k
	}
	return taken, nil
}

// flushBuf writes the buffer out. What a failed write did not take stays
// buffered for the next attempt.
func (o *File) flushBuf() error {
	if len(o.buf) == 0 {
		return nil
	}
	if err := o.ensureOpen(o.now()); err != nil {
		return err
	}
	n, err := o.writeFile(o.buf)
	o.buf = o.buf[:copy(o.buf, o.buf[n:])]
	return err
}

// writeFile writes p with one call. On an error other than a full disk the
// file is closed, so that the retry opens the path again (a stale NFS
// handle, a file system remounted).
func (o *File) writeFile(p []byte) (int, error) {
	n, err := o.f.Write(p)
	if err != nil {
		if !errors.Is(err, syscall.ENOSPC) && !errors.Is(err, syscall.EDQUOT) {
			o.closeFile()
		}
		return n, fmt.Errorf("file output: %w", err)
	}
	return n, nil
}

// ensureOpen opens the file if it is not open: the one being written before
// an error closed it, or a new one.
func (o *File) ensureOpen(now time.Time) error {
	if o.f != nil {
		return nil
	}
	name := o.name
	if name == "" {
		name = o.path
		if o.rotTime > 0 {
			name = o.stampedName(now)
			o.expires = now.Add(o.rotTime)
		}
	}
	return o.openName(name)
}

// openName opens name for appending and makes it the current file.
func (o *File) openName(name string) error {
	f, err := o.open(name)
	if err != nil {
		return fmt.Errorf("file output: %w", err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return fmt.Errorf("file output: %w", err)
	}
	first := o.arch == nil
	o.f, o.name, o.size = f, name, st.Size()
	o.ns.Lock()
	o.current = name
	o.ns.Unlock()
	if first && (o.compress != "" || o.cleanTime) {
		// Rotated files a previous run left uncompressed are handled now.
		o.arch = newArchiver(o)
		o.arch.poke()
	}
	return nil
}

func (o *File) closeFile() {
	if o.f == nil {
		return
	}
	if err := o.f.Close(); err != nil {
		o.log.Warn("closing the file failed", "file", o.name, "error", err)
	}
	o.f = nil
}

// rotate moves on to a new file, after writing the buffer to the old one.
func (o *File) rotate(now time.Time) error {
	if err := o.flushBuf(); err != nil {
		return err
	}
	if o.rotTime > 0 {
		name := o.stampedName(now)
		o.expires = now.Add(o.rotTime)
		if name == o.name {
			// The stamp has not changed: Flowgger keeps appending to the same
			// file and counts its size from zero again.
			o.size = 0
			return nil
		}
		o.log.Info("rotating", "reason", "time or size limit", "minutes", int64(o.rotTime/time.Minute), "bytes", o.rotSize)
		o.closeFile()
		o.name = ""
		if err := o.openName(name); err != nil {
			return err
		}
		o.arch.poke()
		return nil
	}
	if o.maxFiles == 0 {
		// Flowgger reopens the same file: no rotation.
		o.size = 0
		return nil
	}
	o.log.Info("rotating", "reason", "size limit", "bytes", o.rotSize)
	o.closeFile()
	o.ns.Lock()
	o.shiftLocked()
	o.shifts++
	o.ns.Unlock()
	if err := o.openName(o.path); err != nil {
		return err
	}
	o.arch.poke()
	return nil
}

// Flush writes the buffer to the file.
func (o *File) Flush(ctx context.Context) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.closed {
		return nil
	}
	return o.flushBuf()
}

// Reopen writes the buffer to the current file, closes it and opens its
// path again, so that writing goes on in a new file after logrotate renamed
// the old one (postrotate: send SIGHUP). Before the first Write it does
// nothing.
func (o *File) Reopen() error {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.closed {
		return errFileClosed
	}
	if o.f == nil {
		return nil
	}
	var ferr error
	if err := o.flushBuf(); err != nil {
		ferr = fmt.Errorf("file output: %d buffered bytes go to the reopened file: %w", len(o.buf), err)
	}
	o.closeFile()
	return errors.Join(ferr, o.openName(o.name))
}

// Reload implements Reloader: on SIGHUP the file is reopened.
func (o *File) Reload() error { return o.Reopen() }

var _ Reloader = (*File)(nil)

// Close writes the buffer out, syncs and closes the file, then waits, until
// ctx ends, for the compression of rotated files. A compression cut short
// leaves the uncompressed file, compressed at the next start.
func (o *File) Close(ctx context.Context) error {
	o.mu.Lock()
	if o.closed {
		o.mu.Unlock()
		return nil
	}
	o.closed = true
	var errs []error
	if err := o.flushBuf(); err != nil {
		errs = append(errs, fmt.Errorf("%w (%d buffered bytes lost)", err, len(o.buf)))
	}
	if o.f != nil {
		// A character device (/dev/null, a terminal) cannot be synced,
		// and need not be.
		if err := o.f.Sync(); err != nil && !errors.Is(err, syscall.EINVAL) {
			errs = append(errs, fmt.Errorf("file output: %w", err))
		}
		if err := o.f.Close(); err != nil {
			errs = append(errs, fmt.Errorf("file output: %w", err))
		}
		o.f = nil
	}
	o.buf = nil
	arch := o.arch
	o.mu.Unlock()
	if arch != nil {
		errs = append(errs, arch.stop(ctx))
	}
	return errors.Join(errs...)
}
