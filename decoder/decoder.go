// Package decoder turns frames (one syslog line, one GELF object, ...) into
// flowgo Records. Each format registers a constructor under its TOML name
// (input.format): rfc5424, rfc3164, gelf, ltsv, auto and capnp.
//
// Decoders are strict, as Flowgger's are: a frame that is not valid in its
// format is rejected with the reason and the column, never guessed into a
// record. The caller keeps the rejected bytes (dead-letter file, pipe
// --errors), so strictness loses nothing.
package decoder

import (
	"fmt"

	"github.com/flowgo/flowgo"
	"github.com/flowgo/flowgo/config"
	internalregistry "github.com/flowgo/flowgo/internal/registry"
)

// Decoder parses one frame into a record.
type Decoder interface {
	// Decode parses frame into r, which the caller has Reset. Whatever r
	// refers to after Decode returns must live in a (or be constant): the
	// caller reuses frame as soon as Decode returns. On error the contents of
	// r are unspecified and the caller discards it; the error is a *Error.
	// Decode is safe for concurrent use with distinct arenas.
	Decode(frame []byte, r *flowgo.Record, a *flowgo.Arena) error
}

// Error is a decode error: the format, what is wrong and the 1-based byte
// column where it was found (0 when it is about the whole frame).
type Error struct {
	Format string
	Col    int
	Reason string
}

func (e *Error) Error() string {
	if e.Col > 0 {
		return fmt.Sprintf("%s: %s [col %d]", e.Format, e.Reason, e.Col)
	}
	return e.Format + ": " + e.Reason
}

// Errorf returns an *Error for format at 1-based column col.
func Errorf(format string, col int, reason string, args ...any) *Error {
	if len(args) > 0 {
		reason = fmt.Sprintf(reason, args...)
	}
	return &Error{Format: format, Col: col, Reason: reason}
}

// Constructor builds a decoder from the input section of the config, where
// format-specific keys live (ltsv_schema, rfc3164_timezone, ...).
type Constructor func(s *config.Section) (Decoder, error)

var registry = internalregistry.New[Constructor]("input format")

// Register makes a decoder available under name. It is meant to be called
// from init and panics on an empty or duplicate name.
func Register(name string, ctor Constructor) {
	if ctor == nil {
		panic("decoder: Register with a nil constructor")
	}
	registry.Register(name, ctor)
}

// New builds the decoder registered under name.
func New(name string, s *config.Section) (Decoder, error) {
	ctor, _, err := registry.Lookup(name)
	if err != nil {
		return nil, err
	}
	return ctor(s)
}

// Names returns the registered format names, sorted.
func Names() []string { return registry.Names() }
