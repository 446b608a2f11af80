package output

import (
	"bytes"
	"fmt"
	"strconv"
	"strings"
)

// Output framings (output.framing).
const (
	FramingLine   = "line"   // record, then LF
	FramingNUL    = "nul"    // record, then NUL (GELF over TCP/TLS)
	FramingSyslen = "syslen" // RFC 6587 octet counting: "LEN SP record"
	FramingNoop   = "noop"   // records back to back (Kafka: one record per message)
)

// Framings lists the output framings, for help texts and errors.
var Framings = []string{FramingLine, FramingNUL, FramingSyslen, FramingNoop}

// NormalizeFraming returns the canonical name of an output framing,
// accepting Flowgger's aliases nop and none for noop.
func NormalizeFraming(f string) (string, error) {
	switch f {
	case FramingLine, FramingNUL, FramingSyslen, FramingNoop:
		return f, nil
	case "nop", "none":
		return FramingNoop, nil
	case "capnp":
		return "", fmt.Errorf("framing %q: Cap'n Proto is not supported yet", f)
	}
	return "", fmt.Errorf("framing %q unknown (known: %s; aliases nop, none)", f, strings.Join(Framings, ", "))
}

// Frame turns the record encoded at dst[start:] into a frame: it escapes the
// framing's delimiter inside the record, so that content can never break
// framing (a LF becomes the two bytes `\n`, a NUL `\0`), then adds the
// delimiter or the octet count.
func Frame(framing string, dst []byte, start int) []byte {
	switch framing {
	case FramingLine:
		dst = escapeDelimiter(dst, start, '\n', 'n')
		return append(dst, '\n')
	case FramingNUL:
		dst = escapeDelimiter(dst, start, 0, '0')
		return append(dst, 0)
	case FramingSyslen:
		// "LEN SP" goes in front: shift the record right to make room.
		var num [20]byte
		prefix := strconv.AppendInt(num[:0], int64(len(dst)-start), 10)
		prefix = append(prefix, ' ')
		n := len(prefix)
		dst = append(dst, prefix...) // grow by n
		copy(dst[start+n:], dst[start:len(dst)-n])
		copy(dst[start:], prefix)
		return dst
	}
	return dst
}

func escapeDelimiter(dst []byte, start int, delim, letter byte) []byte {
	i := bytes.IndexByte(dst[start:], delim)
	if i < 0 {
		return dst
	}
	// Rare: rebuild the record with the delimiter escaped.
	rec := append([]byte(nil), dst[start:]...)
	dst = dst[:start]
	for _, c := range rec {
		if c == delim {
			dst = append(dst, '\\', letter)
			continue
		}
		dst = append(dst, c)
	}
	return dst
}
