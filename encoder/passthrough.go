package encoder

import (
	"errors"
	"time"

	"github.com/flowgo/flowgo"
	"github.com/flowgo/flowgo/config"
	"github.com/flowgo/flowgo/internal/timefmt"
)

func init() {
	Register("passthrough", func(s *config.Section) (Encoder, error) { return NewPassthrough(s) })
}

// ErrNoFullMsg is the error Passthrough returns for a record without a raw
// message (FullMsg): a GELF record without full_message, for instance.
var ErrNoFullMsg = errors.New("passthrough: the record has no raw message (full_message) to pass through")

// Passthrough writes the raw event a record came from (FullMsg) as it is,
// after the prepend timestamp when syslog_prepend_timestamp is set. What
// FullMsg holds depends on the decoder: the line for syslog and LTSV, the
// full_message field for GELF.
type Passthrough struct {
	prepend *timefmt.Format
	now     clock
}

// NewPassthrough builds a passthrough encoder from the [output] key
// syslog_prepend_timestamp (or its old name rfc3164_prepend_timestamp).
func NewPassthrough(s *config.Section) (*Passthrough, error) {
	s = section(s)
	ignoreOthers(s, "passthrough", "syslog_prepend_timestamp", "rfc3164_prepend_timestamp")
	f, err := prependFormat(s)
	if err != nil {
		return nil, err
	}
	return &Passthrough{prepend: f, now: time.Now}, nil
}

// Encode appends the prepend timestamp and r.FullMsg to dst. It fails with
// ErrNoFullMsg, leaving dst as it was, when FullMsg is empty.
func (p *Passthrough) Encode(dst []byte, r *flowgo.Record) ([]byte, error) {
	if r.FullMsg == "" {
		return dst, ErrNoFullMsg
	}
	if p.prepend != nil {
		dst = p.prepend.Append(dst, p.now())
	}
	return append(dst, r.FullMsg...), nil
}
