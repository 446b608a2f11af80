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
	"time"

	"github.com/flowgo/flowgo"
	"github.com/flowgo/flowgo/config"
	"github.com/flowgo/flowgo/input"
	"github.com/flowgo/flowgo/internal/logfile"
)

// deadLetterFlushDelay bounds how long a rejected frame stays in a
// dead-letter file's buffer: the first frame written into an empty buffer
// schedules a flush this much later, so rejected frames reach the file
// (and survive a kill -9 of flowgo) within it, with one write call per
// interval however many frames are rejected.
const deadLetterFlushDelay = 100 * time.Millisecond

// CutMark is what ends a frame a dead-letter file (or pipe mode's --errors)
// keeps only in part: the frame's first kept bytes are followed by
// "[flowgo: cut, KEPT of TOTAL bytes kept]", or "[flowgo: cut, KEPT bytes
// kept]" when the input did not read the rest (a frame longer than
// max_message_size). The mark is inside the frame, before its delimiter
// (and counted in a syslen length), so the file's framing holds; every cut
// frame carries it, so a cut frame is never taken for the original.
func CutMark(kept, total int) string {
	if total < 0 {
		return "[flowgo: cut, " + strconv.Itoa(kept) + " bytes kept]"
	}
	return "[flowgo: cut, " + strconv.Itoa(kept) + " of " + strconv.Itoa(total) + " bytes kept]"
}

// deadFile is one dead-letter file, shared by every section that names its
// path: each frame is appended whole through one writer, so frames never
// interleave. Safe for concurrent use.
type deadFile struct {
	path string
	mode fs.FileMode

	mu     sync.Mutex
	f      io.WriteCloser
	w      *bufio.Writer
	err    error
	armed  bool // a flush is scheduled
	timer  *time.Timer
	closed bool
	refs   int // under the owning deadLetters' mu
}

// deadLetter keeps rejected raw frames in a dead-letter file so that strict
// decoding loses nothing: each frame is written byte for byte with the
// framing it came with (line, nul, syslen, or capnp: messages back to
// back), so the file can be replayed through flowgo with the same framing. A frame longer than maxFrame, or
// one the input already cut, is kept in part and marked (CutMark). Each
// section that names a dead-letter file has its own deadLetter (its
// limits); the file, and so its framing, is shared (deadLetters).
type deadLetter struct {
	*deadFile
	owner    *deadLetters // the registry deadFile is shared through
	framing  flowgo.Framing
	maxFrame int // most bytes of a frame kept
	inputMax int // the input's max_message_size; 0 for the output's file
}

// deadLetterSettings are a section's dead-letter keys.
type deadLetterSettings struct {
	framing  flowgo.Framing
	mode     fs.FileMode
	maxFrame int
	inputMax int
}

func newDeadFile(path string, mode fs.FileMode, w io.WriteCloser) *deadFile {
	return &deadFile{path: path, mode: mode, f: w, w: bufio.NewWriterSize(w, 64<<10)}
}

func (s deadLetterSettings) view(d *deadFile, owner *deadLetters) *deadLetter {
	maxFrame := s.maxFrame
	if maxFrame <= 0 {
		maxFrame = DefaultMaxMessageSize
	}
	return &deadLetter{deadFile: d, owner: owner, framing: deadLetterFraming(s.framing), maxFrame: maxFrame, inputMax: s.inputMax}
}

// Write appends one frame, rejected for reason. Errors are remembered and
// reported by Flush and Close: a dead-letter file that cannot be written
// must not stop the pipeline.
func (d *deadLetter) Write(frame []byte, reason error) {
	kept, mark := frame, ""
	switch {
	case len(frame) > d.maxFrame:
		kept = frame[:d.maxFrame]
		total := len(frame)
		if d.cutByInput(frame, reason) {
			total = -1
		}
		mark = CutMark(len(kept), total)
	case d.cutByInput(frame, reason):
		mark = CutMark(len(kept), -1)
	}
	f := d.deadFile
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil || f.closed {
		return
	}
	switch d.framing {
	case flowgo.FramingSyslen:
		f.w.WriteString(strconv.Itoa(len(kept) + len(mark)))
		f.w.WriteByte(' ')
		f.w.Write(kept)
		_, f.err = f.w.WriteString(mark)
	case flowgo.FramingNUL:
		f.w.Write(kept)
		f.w.WriteString(mark)
		f.err = f.w.WriteByte(0)
	case flowgo.FramingCapnp: // messages carry their length; a cut one ends what can be replayed
		f.w.Write(kept)
		_, f.err = f.w.WriteString(mark)
	default:
		f.w.Write(kept)
		f.w.WriteString(mark)
		f.err = f.w.WriteByte('\n')
	}
	if f.err != nil {
		f.err = fmt.Errorf("dead-letter file %s: %w", f.path, f.err)
		return
	}
	if f.w.Buffered() > 0 && !f.armed {
		f.armed = true
		if f.timer == nil {
			f.timer = time.AfterFunc(deadLetterFlushDelay, f.timedFlush)
		} else {
			f.timer.Reset(deadLetterFlushDelay)
		}
	}
}

// cutByInput reports whether frame is the head of a longer one: an input
// rejects a frame longer than max_message_size with ErrFrameTooLong, and
// stream inputs hand over only its first max_message_size bytes (a UDP
// datagram comes whole, and so longer).
func (d *deadLetter) cutByInput(frame []byte, reason error) bool {
	return d.inputMax > 0 && len(frame) <= d.inputMax && errors.Is(reason, input.ErrFrameTooLong)
}

func (f *deadFile) timedFlush() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.armed = false
	if f.closed {
		return
	}
	f.flushLocked()
}

func (f *deadFile) flushLocked() {
	if f.err == nil {
		if err := f.w.Flush(); err != nil {
			f.err = fmt.Errorf("dead-letter file %s: %w", f.path, err)
		}
	}
}

// Flush pushes buffered frames to the file.
func (f *deadFile) Flush() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.flushLocked()
	return f.err
}

// Reopen flushes, closes and reopens the file at its path, so that after
// logrotate renamed it (postrotate: SIGHUP) new frames go to a new file.
func (f *deadFile) Reopen() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err == nil {
		f.err = f.w.Flush()
	}
	if err := f.f.Close(); err != nil && f.err == nil {
		f.err = fmt.Errorf("dead-letter file %s: %w", f.path, err)
	}
	nf, err := logfile.OpenAppend(f.path, f.mode)
	if err != nil {
		f.err = fmt.Errorf("dead-letter file %s: %w", f.path, err)
		return f.err
	}
	f.f = nf
	f.w.Reset(nf)
	flushErr := f.err
	f.err = nil
	return flushErr
}

// Close flushes and closes the file.
func (f *deadFile) Close() error {
	err := f.Flush()
	f.mu.Lock()
	defer f.mu.Unlock()
	f.closed = true
	if f.timer != nil {
		f.timer.Stop()
	}
	if cerr := f.f.Close(); err == nil && cerr != nil {
		err = cerr
	}
	return err
}

// deadLetters are the dead-letter files in use, shared by path: the
// sections that name one file (two inputs, or an old and a new input
// during a reload) append through one writer, so frames never interleave.
// A Group owns one for all its pipelines; a Pipeline built alone owns its
// own. Each deadLetter a component acquires is released once.
type deadLetters struct {
	mu    sync.Mutex
	files map[string]*deadFile // by absolute path; refs under mu
}

func newDeadLetters() *deadLetters { return &deadLetters{files: map[string]*deadFile{}} }

// deadLetterSpec is a section's dead-letter file, parsed and checked; it
// is opened when its component is built (deadLetters.acquire).
type deadLetterSpec struct {
	path     string          // absolute
	section  *config.Section // names it, for messages
	settings deadLetterSettings
}

// deadLetterFraming is the framing a dead-letter file holds for frames of
// framing: what they came with, one per line when that cannot be kept.
func deadLetterFraming(framing flowgo.Framing) flowgo.Framing {
	if framing == "" || framing == flowgo.FramingAuto {
		return flowgo.FramingLine
	}
	return framing
}

// checkDeadLetterFramings refuses a dead-letter file named with two
// framings (by two inputs, or an input and the output, in one file or
// several): its frames could not be replayed. The error is about the later
// section.
func checkDeadLetterFramings(specs []*deadLetterSpec) error {
	for i, a := range specs {
		for _, b := range specs[:i] {
			if a.path != b.path || a.settings.framing == b.settings.framing {
				continue
			}
			s, other := a.section, b.section
			where := fmt.Sprintf("%s (line %d)", other.Name(), other.Line("dead_letter_file"))
			if other.File() != s.File() {
				where += " in " + other.File().Path
			}
			return s.Errorf("dead_letter_file", "%q is also the dead-letter file of %s, which writes frames framed %q, not %q: "+
				"one file holds one framing, so that it can be replayed; name another file", a.path, where, b.settings.framing, a.settings.framing)
		}
	}
	return nil
}

// acquire opens the dead-letter file of spec for appending (creating it
// with its mode), or takes one more reference to it when it is open.
func (r *deadLetters) acquire(spec *deadLetterSpec) (*deadLetter, error) {
	if spec == nil {
		return nil, nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	f, ok := r.files[spec.path]
	if !ok {
		fh, err := logfile.OpenAppend(spec.path, spec.settings.mode)
		if err != nil {
			return nil, spec.section.Wrap("dead_letter_file", err)
		}
		f = newDeadFile(spec.path, spec.settings.mode, fh)
		r.files[spec.path] = f
	}
	f.refs++
	return spec.settings.view(f, r), nil
}

// checkDeadLetterPath reports why path could not be opened for appending,
// without creating it.
func checkDeadLetterPath(path string) error {
	if err := logfile.Check(path); err != nil {
		return err
	}
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

// release drops one reference and closes the file with the last one. A nil
// d is fine.
func (d *deadLetter) release(log *slog.Logger) {
	if d == nil {
		return
	}
	f, r := d.deadFile, d.owner
	r.mu.Lock()
	f.refs--
	last := f.refs == 0
	if last {
		delete(r.files, f.path)
	}
	r.mu.Unlock()
	if !last {
		if err := f.Flush(); err != nil {
			log.Error("dead-letter file", "error", err)
		}
		return
	}
	if err := f.Close(); err != nil {
		log.Error("dead-letter file", "error", err)
	}
}
