// Package encoder turns flowgo Records into bytes of an output format. Each
// format registers a constructor under its TOML name (output.format): gelf
// (alias json), rfc5424, rfc3164, ltsv, passthrough and capnp.
//
// Encoders write one record without framing; the pipeline adds the output
// framing (line, nul, syslen) and makes sure a record never contains the
// frame delimiter.
package encoder

import (
	"github.com/flowgo/flowgo"
	"github.com/flowgo/flowgo/config"
	internalregistry "github.com/flowgo/flowgo/internal/registry"
)

// Encoder writes records in one format.
type Encoder interface {
	// Encode appends the encoding of r to dst and returns the extended
	// slice, in the style of strconv.AppendInt. On error it returns dst
	// unchanged in length. Encode is safe for concurrent use.
	Encode(dst []byte, r *flowgo.Record) ([]byte, error)
}

// Constructor builds an encoder from the output section of the config, where
// format-specific keys live (gelf_extra, ltsv_extra, syslog_prepend_timestamp).
type Constructor func(s *config.Section) (Encoder, error)

var registry = internalregistry.New[Constructor]("output format")

// Register makes an encoder available under name and each alias. It is
// meant to be called from init and panics on an empty or duplicate name.
func Register(name string, ctor Constructor, alias ...string) {
	if ctor == nil {
		panic("encoder: Register with a nil constructor")
	}
	registry.Register(name, ctor, alias...)
}

// New builds the encoder registered under name or an alias.
func New(name string, s *config.Section) (Encoder, error) {
	ctor, _, err := registry.Lookup(name)
	if err != nil {
		return nil, err
	}
	return ctor(s)
}

// Canonical returns the name an encoder is registered under for name, an
// alias or the name itself ("json" gives "gelf"); name when unknown.
func Canonical(name string) string {
	if _, canon, err := registry.Lookup(name); err == nil {
		return canon
	}
	return name
}

// Names returns the registered format names and aliases, sorted.
func Names() []string { return registry.Names() }
