package input

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"slices"

	"github.com/flowgo/flowgo"
	"github.com/flowgo/flowgo/decoder"
)

// Framings lists the framings a stream input accepts (input.framing), for
// help texts and errors.
var Framings = []flowgo.Framing{flowgo.FramingLine, flowgo.FramingNUL, flowgo.FramingSyslen, flowgo.FramingAuto, flowgo.FramingCapnp}

// ValidFraming reports whether f is an input framing.
func ValidFraming(f flowgo.Framing) bool { return slices.Contains(Framings, f) }

// FrameError describes a frame the splitter could not deliver whole: too
// long, or with a bad octet count. The splitter returns it together with the
// bytes concerned (at most max_message_size of them) so that they can be kept.
// Err is the kind of problem (ErrFrameTooLong, ErrBadOctetCount, ...), for
// errors.Is; Reason says it in full.
type FrameError struct {
	Offset int64 // stream offset of the frame's first byte; -1 for a datagram
	Reason string
	Err    error
}

func (e *FrameError) Error() string {
	if e.Offset < 0 {
		return e.Reason // a datagram's: its reason says it all
	}
	return fmt.Sprintf("framing: %s (at byte %d)", e.Reason, e.Offset)
}

// Unwrap returns the kind of problem, so that errors.Is(err,
// ErrFrameTooLong) holds for a frame too long.
func (e *FrameError) Unwrap() error { return e.Err }

// ErrFrameTooLong is wrapped by every error about a frame or payload longer
// than a size limit: the FrameError of an oversized frame, a datagram longer
// than max_message_size, a compressed payload that inflates past its limit.
// The pipeline counts them as reason="too_long".
var ErrFrameTooLong = errors.New("frame longer than max_message_size")

// ErrBadOctetCount is wrapped by the FrameError of an octet-counted frame
// whose count is malformed or implausible.
var ErrBadOctetCount = errors.New("bad octet count")

// ErrFramingLost ends a stream whose framing cannot be recovered: an
// octet-counted stream with a bad count and no line break within
// max_message_size bytes after it, where nothing tells where the next frame
// begins. The rejected bytes were returned as a FrameError first; a stream
// input then closes the connection (what is left unread is counted), since
// reading on could only turn later frames into garbage or skip them unseen.
var ErrFramingLost = errors.New("octet counting lost: no frame boundary can be found")

// tooLongError is an error about a size limit, worded for its place, that
// errors.Is matches with ErrFrameTooLong.
type tooLongError struct{ msg string }

func (e *tooLongError) Error() string        { return e.msg }
func (e *tooLongError) Is(target error) bool { return target == ErrFrameTooLong }

// tooLongf returns an error that matches ErrFrameTooLong with its own text.
func tooLongf(format string, args ...any) error {
	return &tooLongError{fmt.Sprintf(format, args...)}
}

// datagramError makes the error of a datagram rejected for how it was
// carried (a bad GELF chunk, a corrupt compressed payload, an empty
// datagram) a FrameError; decode errors and errors about a size limit stay
// as they are.
func datagramError(err error) error {
	var de *decoder.Error
	var fe *FrameError
	if errors.As(err, &de) || errors.As(err, &fe) || errors.Is(err, ErrFrameTooLong) {
		return err
	}
	return &FrameError{Offset: -1, Reason: err.Error(), Err: err}
}

// Splitter cuts a byte stream into frames. It never holds more than about
// twice max_message_size of the stream, whatever the input: a frame longer
// than the limit is cut there (truncate) or reported and skipped (reject).
// Its buffer starts small; what it needs beyond that comes from a budget
// shared with other streams, when one is set (useBudget).
type Splitter struct {
	r        io.Reader
	framing  flowgo.Framing
	max      int
	truncate bool

	// BeforeRead, if set, is called before every read from the stream that
	// may block, i.e. when no complete frame is buffered. Stream inputs use
	// it to hand over their current batch before waiting for more data, so
	// latency stays low when traffic is quiet and batches grow under load.
	BeforeRead func()
	// BeforeWait, if set, is called before the splitter waits for room in
	// its budget (Buffers), which may take long: stream inputs hand over
	// their batch there too.
	BeforeWait func()

	streamBuffer
	skip       int  // bytes of an oversized counted frame still to discard
	skipToEOL  bool // discarding the rest of an oversized delimited frame
	lost       bool // the framing is lost (ErrFramingLost): nothing more is returned
	frames     int64
	lines      int64 // LF count before the current frame (line framing)
	frameLine  int64
	frameStart int64
}

// NewSplitter returns a splitter reading r with framing (one of Framings),
// frames limited to maxSize bytes; longer ones are truncated when truncate
// is set, else returned with a FrameError.
func NewSplitter(r io.Reader, framing flowgo.Framing, maxSize int, truncate bool) *Splitter {
	maxSize = max(maxSize, 1)
	frameCap := (maxSize + frameSlack + 4095) &^ 4095
	return &Splitter{
		r: r, framing: framing, max: maxSize, truncate: truncate,
		streamBuffer: newStreamBuffer(frameCap, max(256<<10, 2*maxSize+32, frameCap)),
	}
}

// Shrink gives the splitter's buffer back to its budget when what it holds
// fits its own small buffer. Stream inputs call it before a read that will
// wait (from BeforeRead), so that an idle connection holds no budget.
func (s *Splitter) Shrink() { s.shrink() }

// Close gives the splitter's buffers back. The splitter must not be used
// afterwards.
func (s *Splitter) Close() { s.close() }

// Framing returns the framing in use; for auto, what the stream's first
// frame decided ("auto" until then).
func (s *Splitter) Framing() flowgo.Framing { return s.framing }

// Frames returns how many frames Next has returned, good or bad.
func (s *Splitter) Frames() int64 { return s.frames }

// Line returns the 1-based line number where the last frame began (line
// framing: counting LFs in the stream), for error messages.
func (s *Splitter) Line() int64 { return s.frameLine + 1 }

// Offset returns the stream offset of the last frame's first byte.
func (s *Splitter) Offset() int64 { return s.frameStart }

// Buffered returns the bytes read from the stream but not yet returned
// (after ErrFramingLost: the bytes read and never framed).
func (s *Splitter) Buffered() int { return s.end - s.start }

// ErrNoData is what a reader that may receive more bytes later (a file being
// tailed) returns when it holds none for now. Next then returns (nil,
// ErrNoData), keeping an unterminated frame buffered, and the next call
// reads again.
var ErrNoData = errors.New("no data for now")

// Consumed returns the stream offset just past the frames Next has returned:
// where reading would resume to see the rest of the stream again. While the
// rest of an oversized frame is being skipped it is that frame's start.
func (s *Splitter) Consumed() int64 {
	if s.skip > 0 || s.skipToEOL {
		return s.frameStart
	}
	return s.offset(s.start)
}

// TakePartial returns the unterminated frame buffered, if any, as Next
// returns the last frame of a stream that ended (with a *FrameError if it is
// too long), and consumes it. It returns (nil, nil) when there is none.
func (s *Splitter) TakePartial() ([]byte, error) {
	if s.end == s.start || s.skip > 0 || s.skipToEOL || s.framing == flowgo.FramingSyslen {
		return nil, nil
	}
	return s.finalFrame()
}

// Next returns the next frame. It returns (frame, nil) for a good frame,
// (bytes, *FrameError) for a bad one (the caller keeps the bytes and calls
// Next again), and (nil, err) at the end of the stream: io.EOF, the read
// error, or ErrFramingLost when an octet-counted stream cannot be followed
// any more. An unterminated last frame is returned at EOF for line and nul
// framing; an incomplete counted frame is a FrameError. The frame is valid
// until the next call. Empty frames are skipped.
func (s *Splitter) Next() ([]byte, error) {
	for {
		if s.lost {
			return nil, s.err
		}
		frame, err, ok := s.split()
		if ok {
			if err == nil && len(frame) == 0 {
				continue
			}
			s.frames++
			return frame, err
		}
		if s.err != nil {
			if errors.Is(s.err, ErrNoData) {
				// Not the end: keep an unterminated frame for the next call.
				err := s.err
				s.err = nil
				return nil, err
			}
			if s.end > s.start && s.skip == 0 && !s.skipToEOL {
				return s.finalFrame()
			}
			s.start, s.end, s.scanned = 0, 0, 0
			return nil, s.err
		}
		s.fill()
	}
}

// finalFrame handles the bytes left when the stream ended.
func (s *Splitter) finalFrame() ([]byte, error) {
	rest := s.buf[s.start:s.end]
	off := s.offset(s.start)
	s.start, s.scanned = s.end, s.end
	s.frameStart = off
	s.frameLine = s.lines
	s.frames++
	if s.framing == flowgo.FramingSyslen {
		return rest, &FrameError{Offset: off, Reason: "stream ended inside an octet-counted frame", Err: ErrBadOctetCount}
	}
	if s.framing == flowgo.FramingLine || s.framing == flowgo.FramingAuto {
		rest = bytes.TrimSuffix(rest, []byte{'\r'})
	}
	if len(rest) == 0 {
		return nil, s.err
	}
	if len(rest) > s.max {
		if s.truncate {
			return rest[:s.max], nil
		}
		return rest[:s.max], &FrameError{Offset: off, Reason: fmt.Sprintf("%v (%d bytes): %d bytes", ErrFrameTooLong, s.max, len(rest)), Err: ErrFrameTooLong}
	}
	return rest, nil
}

func (s *Splitter) offset(i int) int64 { return s.base + int64(i) }

// fill reads more data, making room first.
func (s *Splitter) fill() {
	s.makeRoom(s.BeforeWait)
	if s.BeforeRead != nil {
		s.BeforeRead()
	}
	s.read(s.r)
	// A reader that fills the whole buffer is fast: let the buffer grow so
	// that each read, and so each batch, carries more frames.
	if s.end == len(s.buf) && s.start == 0 {
		s.grow(false, s.BeforeWait)
	}
}

// split tries to cut one frame from the buffer. ok is false when more data
// is needed.
func (s *Splitter) split() (frame []byte, err error, ok bool) {
	if s.skip > 0 {
		n := min(s.skip, s.end-s.start)
		s.skip -= n
		s.start += n
		s.scanned = s.start
		if s.skip > 0 {
			return nil, nil, false
		}
	}
	if s.framing == flowgo.FramingAuto {
		if !s.decideAuto() {
			return nil, nil, false
		}
	}
	switch s.framing {
	case flowgo.FramingSyslen:
		return s.splitCounted()
	case flowgo.FramingNUL:
		return s.splitDelimited(0)
	case flowgo.FramingCapnp:
		return s.splitCapnp()
	default:
		return s.splitDelimited('\n')
	}
}

// decideAuto picks the framing from the start of the stream: syslen when
// the first non-blank byte is a digit, nul when the first frame ends with
// a NUL rather than a LF (Python's SysLogHandler over TCP, GELF), line
// otherwise. It waits until the first frame's end is buffered, or
// max_message_size bytes without one (line then reports the frame too
// long), so the choice does not depend on how the stream was cut into reads.
func (s *Splitter) decideAuto() bool {
	first := s.start
	for first < s.end && (s.buf[first] == '\n' || s.buf[first] == '\r' || s.buf[first] == ' ') {
		first++
	}
	if first == s.end {
		if s.err != nil {
			s.framing = flowgo.FramingLine
			return true
		}
		return false
	}
	if c := s.buf[first]; c >= '1' && c <= '9' {
		s.framing = flowgo.FramingSyslen
		return true
	}
	window := s.buf[first:min(s.end, first+s.max+1)]
	switch i := bytes.IndexAny(window, "\n\x00"); {
	case i >= 0 && window[i] == 0:
		// The blank bytes before the first frame would stay in it.
		s.framing = flowgo.FramingNUL
		s.start, s.scanned = first, max(s.scanned, first)
	case i >= 0, len(window) > s.max, s.err != nil:
		s.framing = flowgo.FramingLine
	default:
		return false
	}
	return true
}

func (s *Splitter) splitDelimited(delim byte) ([]byte, error, bool) {
	i := bytes.IndexByte(s.buf[s.scanned:s.end], delim)
	if i < 0 {
		s.scanned = s.end
		limit := s.max
		if delim == '\n' {
			limit++ // room for the CR that line framing removes
		}
		if s.end-s.start <= limit || s.skipToEOL {
			if s.skipToEOL {
				// Discard what we have of the oversized frame.
				s.start, s.scanned = s.end, s.end
			}
			return nil, nil, false
		}
		// max bytes and no delimiter: deliver the head, discard the rest.
		frame := s.buf[s.start : s.start+s.max]
		off := s.offset(s.start)
		s.frameStart = off
		s.frameLine = s.lines
		s.start += s.max
		s.scanned = s.start
		s.skipToEOL = true
		if s.truncate {
			return frame, nil, true
		}
		return frame, &FrameError{Offset: off, Reason: fmt.Sprintf("%v (%d bytes), the rest of the frame is skipped", ErrFrameTooLong, s.max), Err: ErrFrameTooLong}, true
	}
	end := s.scanned + i
	frame := s.buf[s.start:end]
	s.frameStart = s.offset(s.start)
	s.frameLine = s.lines
	if delim == '\n' {
		s.lines++
	}
	s.start, s.scanned = end+1, end+1
	if s.skipToEOL {
		s.skipToEOL = false
		return nil, nil, true // the tail of an oversized frame; Next skips empty frames
	}
	if delim == '\n' && len(frame) > 0 && frame[len(frame)-1] == '\r' {
		frame = frame[:len(frame)-1]
	}
	if len(frame) > s.max {
		off := s.frameStart
		if s.truncate {
			return frame[:s.max], nil, true
		}
		return frame[:s.max], &FrameError{Offset: off, Reason: fmt.Sprintf("%v (%d bytes): %d bytes", ErrFrameTooLong, s.max, len(frame)), Err: ErrFrameTooLong}, true
	}
	return frame, nil, true
}

// maxCountDigits bounds the octet count: 10 digits covers any sane length.
const maxCountDigits = 10

// countFactor bounds a plausible octet count: one more than countFactor
// times max_message_size (at most 1 GiB) is not the length of a log message
// but a sign that the stream is not octet-counted the way it claims (a wrong
// framing setting, garbage, an attack). A count up to that bound that is
// over max_message_size is a frame too long, skipped by its count; one
// beyond it is a bad count, and skipping gigabytes on its word would
// swallow the frames that follow.
const countFactor = 100

// countLimit is the largest plausible octet count.
func (s *Splitter) countLimit() int64 {
	return min(int64(s.max)*countFactor, 1<<30)
}

func (s *Splitter) splitCounted() ([]byte, error, bool) {
	// Tolerate line breaks between frames (some senders add them, and
	// Flowgger counts a trailing LF into the frame instead).
	for s.start < s.end && (s.buf[s.start] == '\n' || s.buf[s.start] == '\r') {
		if s.buf[s.start] == '\n' {
			s.lines++
		}
		s.start++
	}
	s.scanned = max(s.scanned, s.start)
	if s.start == s.end {
		return nil, nil, false
	}
	s.frameStart = s.offset(s.start)
	s.frameLine = s.lines
	var n int64
	i := s.start
	for ; i < s.end && i-s.start < maxCountDigits+1; i++ {
		c := s.buf[i]
		if c == ' ' {
			break
		}
		if c < '0' || c > '9' || (i == s.start && c == '0') {
			return s.badCount(fmt.Sprintf("octet count expected, found %q", c))
		}
		n = n*10 + int64(c-'0')
	}
	if i-s.start > maxCountDigits {
		return s.badCount("octet count longer than 10 digits")
	}
	if i == s.end {
		return nil, nil, false // need more bytes to finish the count
	}
	if i == s.start {
		return s.badCount("octet count expected, found a space")
	}
	if n > s.countLimit() {
		return s.badCount(fmt.Sprintf("octet count %d is implausible: over %d times max_message_size (%d bytes)", n, countFactor, s.max))
	}
	payload := i + 1
	off := s.frameStart
	if n > int64(s.max) {
		have := min(s.end-payload, s.max)
		if have < s.max && s.err == nil {
			return nil, nil, false // wait for the head we keep
		}
		frame := s.buf[payload : payload+have]
		s.start = payload + have
		s.skip = int(n) - have
		s.scanned = s.start
		if s.truncate {
			return trimLF(frame), nil, true
		}
		return frame, &FrameError{Offset: off, Reason: fmt.Sprintf("%v (%d bytes): count says %d", ErrFrameTooLong, s.max, n), Err: ErrFrameTooLong}, true
	}
	if s.end-payload < int(n) {
		return nil, nil, false
	}
	frame := s.buf[payload : payload+int(n)]
	s.start = payload + int(n)
	s.scanned = s.start
	s.lines += int64(bytes.Count(frame, []byte{'\n'}))
	return trimLF(frame), nil, true
}

// badCount rejects the bytes up to the next LF and resumes octet counting
// after it, when an LF comes within max_message_size bytes: senders that
// end their frames with a line break can be followed again there, and what
// they sent is kept. Without one, nothing tells where the next frame
// begins: the bytes (max_message_size of them) are rejected and the framing
// is lost (ErrFramingLost), rather than swallow an unknown number of frames
// while looking for one.
func (s *Splitter) badCount(reason string) ([]byte, error, bool) {
	window := s.buf[s.start:min(s.end, s.start+s.max+1)]
	i := bytes.IndexByte(window, '\n')
	if i < 0 {
		if s.end-s.start <= s.max && s.err == nil {
			return nil, nil, false
		}
		n := min(s.end-s.start, s.max)
		frame := s.buf[s.start : s.start+n]
		s.start += n
		s.scanned = s.start
		if s.err == nil {
			s.lost, s.err = true, ErrFramingLost
			reason += "; no line break follows within max_message_size bytes: the framing is lost"
		}
		return frame, &FrameError{Offset: s.frameStart, Reason: "syslen: " + reason, Err: ErrBadOctetCount}, true
	}
	frame := s.buf[s.start : s.start+i]
	s.start += i + 1
	s.scanned = s.start
	s.lines++
	return bytes.TrimSuffix(frame, []byte{'\r'}), &FrameError{Offset: s.frameStart, Reason: "syslen: " + reason, Err: ErrBadOctetCount}, true
}

// trimLF removes one trailing LF (and a CR before it) from a counted frame.
func trimLF(b []byte) []byte {
	if len(b) > 0 && b[len(b)-1] == '\n' {
		b = b[:len(b)-1]
		if len(b) > 0 && b[len(b)-1] == '\r' {
			b = b[:len(b)-1]
		}
	}
	return b
}

// FramingHelp describes the input framings for -h.
func FramingHelp() string { return flowgo.JoinFramings(Framings) }
