package pipeline

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"strconv"
	"sync"
)

// deadLetter keeps rejected raw frames in a file so that strict decoding
// loses nothing: each frame is written byte for byte with the framing it
// came with (line, nul or syslen), so the file can be replayed through
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
