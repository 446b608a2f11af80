// Package capnp reads and writes Cap'n Proto messages in the standard
// (unpacked) stream serialization: a segment table, then the segments
// (https://capnproto.org/encoding.html). It knows pointers, structs, lists
// of bytes (Text) and lists of structs: what Flowgger's record.capnp needs,
// and nothing of capabilities or generated code.
//
// The reader is written for untrusted input: every offset is bounds-checked,
// a message may read no more words than it holds (the traversal limit that
// stops pointer amplification), far pointers may not chain, and nothing
// panics or allocates per message (unless it has more than inlineSegments
// segments).
package capnp

import (
	"encoding/binary"
	"fmt"
)

// MaxSegments is the most segments a message may have (the C++ library's
// default limit). capnp's builders start a new segment when one is full, so
// big messages have a few; only a hostile one has thousands.
const MaxSegments = 512

// Error is a malformed message: what is wrong and the byte offset, from the
// start of the message (segment table included), where it was found.
type Error struct {
	Off    int
	Reason string
}

func (e *Error) Error() string { return fmt.Sprintf("%s (at byte %d)", e.Reason, e.Off) }

func errorf(off int, format string, args ...any) *Error {
	return &Error{Off: off, Reason: fmt.Sprintf(format, args...)}
}

// MessageSize reads the segment table at the start of b. It returns the
// size in bytes of the whole message, table included; or need > 0, the
// bytes b must hold before the size is known; or an error when the table
// cannot start a message.
func MessageSize(b []byte) (size int64, need int, err error) {
	if len(b) < 4 {
		return 0, 4, nil
	}
	n := int64(binary.LittleEndian.Uint32(b)) + 1
	if n > MaxSegments {
		return 0, 0, errorf(0, "segment table claims %d segments (at most %d)", n, MaxSegments)
	}
	hdr := tableSize(int(n))
	if len(b) < hdr {
		return 0, hdr, nil
	}
	size = int64(hdr)
	for i := range int(n) {
		size += 8 * int64(binary.LittleEndian.Uint32(b[4+4*i:]))
	}
	return size, 0, nil
}

// tableSize is the size of the segment table of n segments: a count and n
// sizes of 4 bytes each, padded to a whole word.
func tableSize(n int) int { return (4 + 4*n + 7) &^ 7 }
