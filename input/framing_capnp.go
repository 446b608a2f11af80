package input

import (
	"errors"
	"fmt"

	"github.com/flowgo/flowgo"
	"github.com/flowgo/flowgo/internal/capnp"
)

// The capnp framing (flowgo.FramingCapnp) cuts a stream of Cap'n Proto
// messages in the standard unpacked serialization (Flowgger's framing =
// "capnp"): each frame is one whole message, segment table included, for
// format = "capnp".

// maxCapnpSkip is the largest message the capnp splitter skips to stay in
// step with the stream. A bigger segment table is taken for garbage: no
// log record comes near it.
const maxCapnpSkip = 1 << 30

// splitCapnp cuts one message, by its segment table, from the buffer.
//
// A message longer than max_message_size is rejected with its first
// max_message_size bytes and the rest is skipped (truncating a message
// would only make a broken one, so max_message_action = "truncate" rejects
// too). A segment table that cannot start a message leaves no way to find
// the next one: the splitter rejects what it holds and ends the stream.
// The stream ending inside a message rejects the part received.
func (s *Splitter) splitCapnp() ([]byte, error, bool) {
	avail := s.buf[s.start:s.end]
	size, need, err := capnp.MessageSize(avail)
	if err == nil && size > maxCapnpSkip {
		err = fmt.Errorf("segment table announces a message of %d bytes", size)
	}
	switch {
	case err != nil:
		fe := &FrameError{Offset: s.offset(s.start), Reason: fmt.Sprintf("capnp: %v; the rest of the stream cannot be framed", capnpReason(err))}
		frame := s.takeCapnp(min(len(avail), s.max))
		s.start, s.scanned = s.end, s.end // drop the rest of what is buffered
		s.err = fe
		return frame, fe, true
	case need == 0 && size > int64(s.max):
		if len(avail) < s.max && s.err == nil {
			return nil, nil, false // wait for the head, which the reject keeps
		}
		fe := &FrameError{Offset: s.offset(s.start), Reason: fmt.Sprintf("%v (%d bytes): the message has %d", ErrFrameTooLong, s.max, size), Err: ErrFrameTooLong}
		frame := s.takeCapnp(min(len(avail), s.max))
		s.skip = int(size) - len(frame)
		return frame, fe, true
	case need > 0 || int64(len(avail)) < size:
		if s.err == nil || len(avail) == 0 {
			return nil, nil, false
		}
		fe := &FrameError{Offset: s.offset(s.start), Reason: fmt.Sprintf("capnp: the stream ended inside a message (%d bytes of %s)", len(avail), capnpSize(size, need))}
		return s.takeCapnp(min(len(avail), s.max)), fe, true
	}
	return s.takeCapnp(int(size)), nil, true
}

// takeCapnp consumes n bytes as a frame.
func (s *Splitter) takeCapnp(n int) []byte {
	frame := s.buf[s.start : s.start+n]
	s.frameStart = s.offset(s.start)
	s.start += n
	s.scanned = s.start
	return frame
}

func capnpSize(size int64, need int) string {
	if need > 0 {
		return "a segment table"
	}
	return fmt.Sprint(size)
}

func capnpReason(err error) string {
	var ce *capnp.Error
	if errors.As(err, &ce) {
		return ce.Reason
	}
	return err.Error()
}

// FormatFraming returns the framing a stream input uses for format, given
// input.framing (framing) and whether it was configured (set). format =
// "capnp" takes the capnp framing, by default; any other framing would cut
// binary messages at bytes that happen to be LF or NUL, so it is an error.
// The capnp framing delivers nothing but Cap'n Proto messages, so it needs
// format = "capnp" (Flowgger decoded them whatever the format said).
func FormatFraming(format string, framing flowgo.Framing, set bool) (flowgo.Framing, error) {
	switch {
	case format == "capnp" && !set:
		return flowgo.FramingCapnp, nil
	case format == "capnp" && framing != flowgo.FramingCapnp:
		return "", fmt.Errorf("format \"capnp\" reads binary messages, which only framing = \"capnp\" (the default for it) can cut; not %q", framing)
	case format != "capnp" && framing == flowgo.FramingCapnp:
		return "", fmt.Errorf("framing \"capnp\" cuts Cap'n Proto messages: set format = \"capnp\" too (format is %q)", format)
	}
	return framing, nil
}
