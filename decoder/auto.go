package decoder

import (
	"bytes"
	"errors"
	"fmt"

	"github.com/flowgo/flowgo"
	"github.com/flowgo/flowgo/config"
)

func init() {
	Register("auto", newAuto)
}

var _ OriginDecoder = (*Auto)(nil)

// Auto detects the format of each frame and hands it to that format's
// decoder (input.format = "auto"), for inputs where RFC 5424, RFC 3164,
// GELF and LTSV senders share one port. It looks only at the start and the
// shape of the frame, and tries exactly one format:
//
//   - '{' (after JSON white space) → gelf;
//   - '<', digits, '>', "1 " → rfc5424;
//   - '<' and a digit otherwise → rfc3164;
//   - a TAB, a first field that starts with an LTSV label (letters, digits,
//     '_', '.', '-') and ':', and a field "time:…" or "host:…" → ltsv;
//   - anything else → rfc3164 (BSD lines without PRI).
//
// A frame the chosen format rejects is rejected with that format's reason
// and column: "auto: tried gelf: missing host". Trying other formats
// after a failure would turn a broken GELF object into a BSD message whose
// text is JSON, which hides the sender's bug.
//
// The decoders come from the registry, built from the same input section,
// so [input.ltsv_schema] and the RFC 3164 keys apply under auto too. Build
// it with New("auto", section); a zero Auto rejects every frame.
type Auto struct {
	gelf, rfc5424, rfc3164, ltsv Decoder
}

// autoFormats are the formats Auto needs, in the order errors name them.
var autoFormats = [...]string{"gelf", "ltsv", "rfc3164", "rfc5424"}

func newAuto(s *config.Section) (Decoder, error) {
	d := &Auto{}
	for _, name := range autoFormats {
		sub, err := New(name, s)
		if err != nil {
			var ce *config.Error
			if errors.As(err, &ce) {
				return nil, err // a config error already names its key
			}
			return nil, fmt.Errorf("input format \"auto\" needs the %s decoder: %w", name, err)
		}
		*d.slot(name) = sub
	}
	return d, nil
}

// slot returns the field that holds the decoder for name.
func (d *Auto) slot(name string) *Decoder {
	switch name {
	case "gelf":
		return &d.gelf
	case "ltsv":
		return &d.ltsv
	case "rfc5424":
		return &d.rfc5424
	}
	return &d.rfc3164
}

// Decode implements Decoder.
func (d *Auto) Decode(frame []byte, r *flowgo.Record, a *flowgo.Arena) error {
	return d.DecodeFrom(frame, nil, r, a)
}

// DecodeFrom implements OriginDecoder: o goes to the format's decoder when
// it can use it (rfc3164).
func (d *Auto) DecodeFrom(frame []byte, o Origin, r *flowgo.Record, a *flowgo.Arena) error {
	if len(bytes.TrimSpace(frame)) == 0 {
		return Errorf("auto", 0, "empty frame")
	}
	name := autoDetect(frame)
	sub := *d.slot(name)
	if sub == nil {
		return Errorf("auto", 0, "detected %s, but no %s decoder is configured", name, name)
	}
	var err error
	if od, ok := sub.(OriginDecoder); ok && o != nil {
		err = od.DecodeFrom(frame, o, r, a)
	} else {
		err = sub.Decode(frame, r, a)
	}
	if err == nil {
		return nil
	}
	var de *Error
	if errors.As(err, &de) {
		return &Error{Format: "auto", Col: de.Col, Reason: "tried " + name + ": " + de.Reason}
	}
	return &Error{Format: "auto", Reason: "tried " + name + ": " + err.Error()}
}

// autoDetect names the format a frame looks like.
func autoDetect(b []byte) string {
	i := 0
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	if i < len(b) && b[i] == '{' {
		return "gelf"
	}
	p := b
	if bytes.HasPrefix(p, []byte("\xef\xbb\xbf")) { // a BOM some RFC 5424 senders put first
		p = p[3:]
	}
	if len(p) >= 2 && p[0] == '<' && p[1] >= '0' && p[1] <= '9' {
		j := 1
		for j < len(p) && j <= 3 && p[j] >= '0' && p[j] <= '9' {
			j++
		}
		if j+2 < len(p) && p[j] == '>' && p[j+1] == '1' && p[j+2] == ' ' {
			return "rfc5424"
		}
		return "rfc3164"
	}
	if autoLooksLTSV(b) {
		return "ltsv"
	}
	return "rfc3164"
}

// autoLooksLTSV reports whether b has a TAB, starts with "label:", and has a
// field starting "time:" or "host:", the two labels LTSV requires.
func autoLooksLTSV(b []byte) bool {
	tab := bytes.IndexByte(b, '\t')
	if tab < 0 {
		return false
	}
	i := 0
	for i < tab && autoLabelByte(b[i]) {
		i++
	}
	if i == 0 || i >= tab || b[i] != ':' {
		return false
	}
	for f := b; ; {
		if bytes.HasPrefix(f, []byte("time:")) || bytes.HasPrefix(f, []byte("host:")) {
			return true
		}
		t := bytes.IndexByte(f, '\t')
		if t < 0 {
			return false
		}
		f = f[t+1:]
	}
}

// autoLabelByte reports whether c may appear in an LTSV label (ltsv.org).
func autoLabelByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '.' || c == '-'
}
