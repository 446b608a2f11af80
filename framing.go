package flowgo

import "strings"

// Framing says how frames follow one another in a byte stream: the value of
// input.framing and of output.framing. An input's framing cuts the stream it
// reads into frames; an output's delimits the records it writes. Not every
// framing goes both ways: the input and output packages list the ones each
// accepts (input.Framings, output.Framings).
type Framing string

// The framings. A framing's value is its name in the config.
const (
	// FramingLine ends a frame with LF. An input removes a trailing CR; an
	// output escapes a LF inside a record.
	FramingLine Framing = "line"
	// FramingNUL ends a frame with a NUL byte (GELF over TCP and TLS).
	FramingNUL Framing = "nul"
	// FramingSyslen is RFC 6587 octet counting: "LEN SP frame".
	FramingSyslen Framing = "syslen"
	// FramingCapnp carries Cap'n Proto messages as they are: each carries
	// its length (the standard unpacked serialization).
	FramingCapnp Framing = "capnp"
	// FramingAuto, for inputs only, picks the framing from the stream's
	// first frame: syslen if it starts with a digit, nul if it ends with
	// NUL, else line.
	FramingAuto Framing = "auto"
	// FramingNoop, for outputs only, writes records back to back (Kafka:
	// one record per message).
	FramingNoop Framing = "noop"
)

// JoinFramings lists framings, comma-separated, for help texts and errors.
func JoinFramings(fs []Framing) string {
	var b strings.Builder
	for i, f := range fs {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(string(f))
	}
	return b.String()
}
