package pipeline

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"sync"
)

// deadLetter keeps rejected raw frames in a file so that strict decoding
// loses nothing: each frame is written byte for byte with the framing it
// came with (line, nul, syslen or capnp), so the file can be replayed through
// flowgo with the same framing. It is shared by everything that names the
// same path, and safe for concurrent use.
type deadLetter struct {
	path    string
	framing string

	mu      sync.Mutex
	f       io.WriteCloser
	w       *bufio.Writer
	written int64
	err     error
	refs    int // under deadMu
}

// openDeadLetter opens (appends to) path.
func openDeadLetter(path, framing string) (*deadLetter, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640)
	if err != nil {
		return nil, err
	}
	return newDeadLetter(path, framing, f), nil
}

func newDeadLetter(path, framing string, w io.WriteCloser) *deadLetter {
	if framing == "" || framing == "auto" {
		framing = "line"
	}
	return &deadLetter{path: path, framing: framing, f: w, w: bufio.NewWriterSize(w, 64<<10)}
}

// Write appends one frame. Errors are remembered and reported by Close: a
// dead-letter file that cannot be written must not stop the pipeline.
func (d *deadLetter) Write(frame []byte) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.err != nil {
		return
	}
	switch d.framing {
	case "syslen":
		d.w.WriteString(strconv.Itoa(len(frame)))
		d.w.WriteByte(' ')
		d.w.Write(frame)
	case "nul":
		d.w.Write(frame)
		d.err = d.w.WriteByte(0)
	case "capnp": // messages carry their length
		_, d.err = d.w.Write(frame)
	default:
		d.w.Write(frame)
		d.err = d.w.WriteByte('\n')
	}
	if d.err != nil {
		d.err = fmt.Errorf("dead-letter file %s: %w", d.path, d.err)
	}
	d.written++
}

// Flush pushes buffered frames to the file.
func (d *deadLetter) Flush() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.err == nil {
		if err := d.w.Flush(); err != nil {
			d.err = fmt.Errorf("dead-letter file %s: %w", d.path, err)
		}
	}
	return d.err
}

// Reopen flushes, closes and reopens the file at its path, so that after
// logrotate renamed it (postrotate: SIGHUP) new frames go to a new file.
func (d *deadLetter) Reopen() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.err == nil {
		d.err = d.w.Flush()
	}
	d.f.Close()
	f, err := os.OpenFile(d.path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640)
	if err != nil {
		d.err = fmt.Errorf("dead-letter file %s: %w", d.path, err)
		return d.err
	}
	d.f = f
	d.w.Reset(f)
	flushErr := d.err
	d.err = nil
	return flushErr
}

// Close flushes and closes the file.
func (d *deadLetter) Close() error {
	err := d.Flush()
	d.mu.Lock()
	defer d.mu.Unlock()
	if cerr := d.f.Close(); err == nil && cerr != nil {
		err = cerr
	}
	return err
}

// Dead-letter files are shared by path across the process: two inputs, or
// an old and a new pipeline during a reload, that name one file append
// through one writer, so frames never interleave.
var (
	deadMu    sync.Mutex
	deadFiles = map[string]*deadLetter{}
)

// deadLetterFor acquires the dead-letter file at path, or, when the
// pipeline is built only to be checked, checks that it could be opened and
// returns nil: checking a configuration creates no file.
func deadLetterFor(opts Options, path, framing string) (*deadLetter, error) {
	if opts.CheckOnly {
		return nil, checkDeadLetterPath(path)
	}
	return acquireDeadLetter(path, framing)
}

// checkDeadLetterPath reports why path could not be opened for appending,
// without creating it.
func checkDeadLetterPath(path string) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err == nil {
		return f.Close()
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	dir := filepath.Dir(path)
	st, err := os.Stat(dir)
	if err != nil {
		return fmt.Errorf("cannot create %s: %w", path, err)
	}
	if !st.IsDir() {
		return fmt.Errorf("cannot create %s: %s is not a directory", path, dir)
	}
	if err := dirWritable(dir); err != nil {
		return fmt.Errorf("cannot create %s: %w", path, err)
	}
	return nil
}

// acquireDeadLetter opens path for appending, or returns the writer already
// open for it, with one more reference.
func acquireDeadLetter(path, framing string) (*deadLetter, error) {
	deadMu.Lock()
	defer deadMu.Unlock()
	if d, ok := deadFiles[path]; ok {
		d.refs++
		return d, nil
	}
	d, err := openDeadLetter(path, framing)
	if err != nil {
		return nil, err
	}
	d.refs = 1
	deadFiles[path] = d
	return d, nil
}

// release drops one reference and closes the file with the last one. A nil
// d is fine.
func (d *deadLetter) release(log *slog.Logger) {
	if d == nil {
		return
	}
	deadMu.Lock()
	d.refs--
	last := d.refs == 0
	if last {
		delete(deadFiles, d.path)
	}
	deadMu.Unlock()
	if !last {
		if err := d.Flush(); err != nil {
			log.Error("dead-letter file", "error", err)
		}
		return
	}
	if err := d.Close(); err != nil {
		log.Error("dead-letter file", "error", err)
	}
}

// flushDeadLetters writes out what every dead-letter file buffers.
func flushDeadLetters(log *slog.Logger) {
	deadMu.Lock()
	files := make([]*deadLetter, 0, len(deadFiles))
	for _, d := range deadFiles {
		files = append(files, d)
	}
	deadMu.Unlock()
	for _, d := range files {
		if err := d.Flush(); err != nil {
			log.Error("dead-letter file", "error", err)
		}
	}
}
