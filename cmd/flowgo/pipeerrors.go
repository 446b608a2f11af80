package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"sync"

	fg "github.com/flowgo/flowgo"
	"github.com/flowgo/flowgo/input"
	"github.com/flowgo/flowgo/internal/logfile"
	"github.com/flowgo/flowgo/pipeline"
)

// errorsFile is pipe mode's --errors: every rejected frame, byte for byte,
// with the input's framing. The stdin input keeps at most max_message_size
// of a frame, so a longer line (line and nul framing) is kept whole by a
// spooler under stdin, which copies each such line to a temporary file as
// it streams by; the rejection of the line's head then copies it from
// there. Memory stays bounded by max_message_size whatever the line's
// length. Calls are never concurrent (Options.OnReject).
type errorsFile struct {
	f      *os.File
	w      *bufio.Writer
	spool  *spooler
	err    error
	closed bool
}

// newErrorsFile creates path (mode 0640; as root never through a link in
// a directory others can write) and returns it with the reader the stdin
// input must read.
func newErrorsFile(path string, stdin io.Reader, framing fg.Framing, maxSize int) (*errorsFile, io.Reader, error) {
	f, err := logfile.Create(path, logfile.DefaultMode)
	if err != nil {
		return nil, nil, err
	}
	e := &errorsFile{f: f, w: bufio.NewWriterSize(f, 64<<10)}
	if framing == fg.FramingSyslen {
		return e, stdin, nil
	}
	// The spool lives next to the errors file, not in /tmp (often in
	// memory), and has no name: it goes away with flowgo.
	tmp, err := os.CreateTemp(filepath.Dir(path), ".flowgo-errors-spool-*")
	if err != nil {
		f.Close()
		return nil, nil, fmt.Errorf("a spool for long lines next to it: %w", err)
	}
	os.Remove(tmp.Name())
	e.spool = newSpooler(stdin, framing, maxSize, tmp)
	return e, e.spool, nil
}

// reject writes one rejected frame.
func (e *errorsFile) reject(frame []byte, reason error) {
	if e.err != nil {
		return
	}
	framing := fg.FramingLine
	if e.spool != nil {
		framing = e.spool.framing()
		var fe *input.FrameError
		if framing != fg.FramingSyslen && errors.As(reason, &fe) {
			if rec := e.spool.claim(fe.Offset); rec != nil {
				e.err = e.copyLong(rec, framing)
				return
			}
		}
	} else {
		framing = fg.FramingSyslen
	}
	mark := ""
	if errors.Is(reason, input.ErrFrameTooLong) {
		// The input kept only this much (syslen): say so.
		mark = pipeline.CutMark(len(frame), -1)
	}
	// A bufio.Writer keeps its first error and returns it from every later
	// call, so the last write of each frame (kept in e.err, reported by
	// Close) answers for the ones before it.
	switch framing {
	case fg.FramingSyslen:
		e.w.WriteString(strconv.Itoa(len(frame) + len(mark)))
		e.w.WriteByte(' ')
		e.w.Write(frame)
		_, e.err = e.w.WriteString(mark)
	case fg.FramingNUL:
		e.w.Write(frame)
		e.w.WriteString(mark)
		e.err = e.w.WriteByte(0)
	default:
		e.w.Write(frame)
		e.w.WriteString(mark)
		e.err = e.w.WriteByte('\n')
	}
}

// copyLong copies a spooled line and its delimiter, waiting until the
// spooler has read it to its end (the input rejects a line as soon as it
// is too long). A line cut short by a stop is marked.
func (e *errorsFile) copyLong(rec *spoolRec, framing fg.Framing) error {
	n, complete := e.spool.wait(rec)
	if _, err := io.Copy(e.w, io.NewSectionReader(e.spool.tmp, rec.at, n)); err != nil {
		return err
	}
	e.spool.release()
	if !complete {
		e.w.WriteString(pipeline.CutMark(int(n), -1)) // its error, if any, is the next write's
	}
	if framing == fg.FramingNUL {
		return e.w.WriteByte(0)
	}
	return e.w.WriteByte('\n')
}

// Close flushes and closes the file and the spool; again, it does nothing.
func (e *errorsFile) Close() error {
	if e.closed {
		return nil
	}
	e.closed = true
	err := e.err
	if ferr := e.w.Flush(); err == nil {
		err = ferr
	}
	if cerr := e.f.Close(); err == nil {
		err = cerr
	}
	if e.spool != nil {
		if serr := e.spool.tmp.Close(); err == nil {
			err = serr
		}
	}
	return err
}

// spooler reads the stream the stdin input reads and follows its frames as
// the input's splitter does: a frame longer than max (after line framing's
// trailing CR) is one the input rejects with a FrameError at the frame's
// offset, and the spooler writes its bytes, as they pass, to tmp.
type spooler struct {
	r   io.Reader
	max int
	tmp *os.File

	mu      sync.Mutex
	cond    *sync.Cond
	mode    fg.Framing // line, nul, syslen (not followed), or auto until decided
	off     int64      // stream offset of the next byte
	start   int64      // offset of the current frame's first byte
	head    []byte     // the current frame's first bytes, up to headLimit
	long    *spoolRec
	recs    []*spoolRec // long frames not yet claimed, in stream order
	tmpEnd  int64
	claimed int // records claimed and not yet released
	ended   bool
	werr    error
}

// spoolRec is one long frame: its stream offset, and where it sits in tmp.
type spoolRec struct {
	start    int64
	at, n    int64
	complete bool
}

func newSpooler(r io.Reader, framing fg.Framing, limit int, tmp *os.File) *spooler {
	s := &spooler{r: r, max: limit, tmp: tmp, mode: framing, head: make([]byte, 0, min(limit+1, 64<<10))}
	s.cond = sync.NewCond(&s.mu)
	return s
}

// Read reads from the stream and follows what it read before returning it.
func (s *spooler) Read(p []byte) (int, error) {
	n, err := s.r.Read(p)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.feed(p[:n])
	if err != nil {
		// The splitter hands over a last unterminated frame at the end.
		s.endFrame()
		s.ended = true
		s.cond.Broadcast()
	}
	return n, err
}

func (s *spooler) framing() fg.Framing {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.mode == fg.FramingAuto {
		return fg.FramingLine
	}
	return s.mode
}

func (s *spooler) delim() byte {
	if s.mode == fg.FramingNUL {
		return 0
	}
	return '\n'
}

// feed follows p, the next bytes of the stream. Complete short frames are
// only scanned; the bytes of the frame in progress are kept up to max+1,
// and a longer frame's bytes go to the spool.
func (s *spooler) feed(p []byte) {
	if s.mode == fg.FramingAuto {
		// The splitter decides on the first byte that is not a line
		// break or a space: a digit 1-9 means octet counting. Until
		// then the bytes are blank lines either way.
		i := bytes.IndexFunc(p, func(r rune) bool { return r != '\n' && r != '\r' && r != ' ' })
		switch {
		case i < 0:
		case p[i] >= '1' && p[i] <= '9':
			s.mode = fg.FramingSyslen
			s.feedFramed(p[:i])
			p = p[i:]
		default:
			s.mode = fg.FramingLine
		}
	}
	if s.mode == fg.FramingSyslen {
		s.off += int64(len(p))
		return
	}
	s.feedFramed(p)
}

func (s *spooler) feedFramed(p []byte) {
	d := s.delim()
	for len(p) > 0 {
		i := bytes.IndexByte(p, d)
		if i >= 0 && s.long == nil && len(s.head) == 0 && i <= s.max {
			// A whole short frame: nothing to keep.
			s.off += int64(i) + 1
			s.start = s.off
			p = p[i+1:]
			continue
		}
		seg := p
		if i >= 0 {
			seg = p[:i]
		}
		s.add(seg)
		s.off += int64(len(seg))
		if i < 0 {
			return
		}
		s.endFrame()
		s.off++
		s.start = s.off
		p = p[i+1:]
	}
}

// add appends seg to the frame in progress.
func (s *spooler) add(seg []byte) {
	if s.long != nil {
		s.spool(seg)
		return
	}
	if len(s.head)+len(seg) <= s.headLimit() {
		s.head = append(s.head, seg...)
		return
	}
	s.startLong()
	s.spool(seg)
}

// headLimit is how much of a frame in progress can still turn out short:
// max, and for line framing one byte more for a CR the splitter removes.
// The splitter rejects a frame as soon as it has more than that without a
// delimiter, so by then the spooler has a record of it.
func (s *spooler) headLimit() int {
	if s.mode == fg.FramingNUL {
		return s.max
	}
	return s.max + 1
}

func (s *spooler) startLong() {
	s.long = &spoolRec{start: s.start, at: s.tmpEnd}
	s.recs = append(s.recs, s.long)
	s.spool(s.head)
	s.head = s.head[:0]
}

// spool appends b to the current long frame in tmp. A write error ends
// spooling: the frame is then kept as far as it got, marked.
func (s *spooler) spool(b []byte) {
	if len(b) == 0 || s.werr != nil {
		return
	}
	n, err := s.tmp.WriteAt(b, s.tmpEnd)
	s.tmpEnd += int64(n)
	s.long.n += int64(n)
	s.werr = err
}

// endFrame ends the frame in progress at a delimiter or at the end of the
// stream.
func (s *spooler) endFrame() {
	if s.long == nil {
		h := s.head
		if s.mode != fg.FramingNUL && len(h) > 0 && h[len(h)-1] == '\r' {
			h = h[:len(h)-1]
		}
		if len(h) > s.max {
			s.startLong()
		}
	}
	if s.long != nil {
		s.long.complete = s.werr == nil
		s.long = nil
		s.cond.Broadcast()
	}
	s.head = s.head[:0]
}

// claim returns the long frame that starts at offset, nil if none.
func (s *spooler) claim(offset int64) *spoolRec {
	s.mu.Lock()
	defer s.mu.Unlock()
	for len(s.recs) > 0 && s.recs[0].start < offset {
		s.recs = s.recs[1:] // a line the input did not reject: never claimed
	}
	if len(s.recs) == 0 || s.recs[0].start != offset {
		return nil
	}
	rec := s.recs[0]
	s.recs = s.recs[1:]
	s.claimed++
	return rec
}

// wait waits until rec was read to its end, or reading stopped, and
// returns how many of its bytes the spool holds and whether that is all.
func (s *spooler) wait(rec *spoolRec) (int64, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for !rec.complete && !s.ended && s.long == rec && s.werr == nil {
		s.cond.Wait()
	}
	return rec.n, rec.complete
}

// stop ends every wait: the pipeline is stopping, and the rest of a line
// may never be read.
func (s *spooler) stop() {
	s.mu.Lock()
	s.ended = true
	s.cond.Broadcast()
	s.mu.Unlock()
}

// release frees the spool once no long frame is pending.
func (s *spooler) release() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.claimed--
	if s.claimed == 0 && s.long == nil && len(s.recs) == 0 && s.tmpEnd > 0 {
		s.tmp.Truncate(0)
		s.tmpEnd = 0
	}
}

// stopper runs a pipeline and stops the spooler's waits when the run's
// context ends (a signal), so that a line never finished cannot hold up
// the shutdown.
type stopper struct {
	runner
	stop func()
}

func (r stopper) Run(ctx context.Context) error {
	defer context.AfterFunc(ctx, r.stop)()
	return r.runner.Run(ctx)
}
