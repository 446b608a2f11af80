package output

import (
	"bytes"
	"fmt"
	"slices"
	"strconv"

	"github.com/flowgo/flowgo"
)

// Framings lists the framings an output accepts (output.framing), for help
// texts and errors.
var Framings = []flowgo.Framing{flowgo.FramingLine, flowgo.FramingNUL, flowgo.FramingSyslen, flowgo.FramingNoop, flowgo.FramingCapnp}

// FramingHelp describes the output framings for -h.
func FramingHelp() string { return flowgo.JoinFramings(Framings) }

// NormalizeFraming returns the canonical name of an output framing,
// accepting Flowgger's aliases nop and none for noop.
func NormalizeFraming(f flowgo.Framing) (flowgo.Framing, error) {
	switch {
	case slices.Contains(Framings, f):
		return f, nil
	case f == "nop", f == "none":
		return flowgo.FramingNoop, nil
	}
	return "", fmt.Errorf("framing %q unknown (known: %s; aliases nop, none)", f, FramingHelp())
}

// FormatFraming returns the framing records of format get, given the one
// configured or the output type's default (framing), and whether it was
// configured (set).
//
// Cap'n Proto messages are binary and carry their own length: they get the
// capnp framing unless another is set, and only framings that leave the
// bytes alone (capnp, noop, syslen) can carry them. line and nul would
// escape every LF or NUL byte of the message, which breaks it, so they are
// an error. The capnp framing carries nothing but Cap'n Proto messages.
func FormatFraming(format string, framing flowgo.Framing, set bool) (flowgo.Framing, error) {
	if format != "capnp" {
		if framing == flowgo.FramingCapnp {
			return "", fmt.Errorf("framing %q carries Cap'n Proto messages; set format = \"capnp\" or another framing", framing)
		}
		return framing, nil
	}
	if !set {
		return flowgo.FramingCapnp, nil
	}
	switch framing {
	case flowgo.FramingCapnp, flowgo.FramingNoop, flowgo.FramingSyslen:
		return framing, nil
	}
	return "", fmt.Errorf("framing %q would break binary Cap'n Proto messages (it escapes bytes inside them); use \"capnp\" (the default for format capnp: each message carries its length) or \"syslen\"", framing)
}

// Frame turns the record encoded at dst[start:] into a frame: it escapes the
// framing's delimiter inside the record, so that content can never break
// framing (a LF becomes the two bytes `\n`, a NUL `\0`), then adds the
// delimiter or the octet count.
func Frame(framing flowgo.Framing, dst []byte, start int) []byte {
	switch framing {
	case flowgo.FramingLine:
		dst = escapeDelimiter(dst, start, '\n', 'n')
		return append(dst, '\n')
	case flowgo.FramingNUL:
		dst = escapeDelimiter(dst, start, 0, '0')
		return append(dst, 0)
	case flowgo.FramingSyslen:
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
