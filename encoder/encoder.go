// Package encoder turns flowgo Records into bytes of an output format. Each
// format registers a constructor under its TOML name (output.format): gelf
// (alias json), rfc5424, rfc3164, ltsv and passthrough.
//
// Encoders write one record without framing; the pipeline adds the output
// framing (line, nul, syslen) and makes sure a record never contains the
// frame delimiter.
package encoder

import (
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/flowgo/flowgo"
	"github.com/flowgo/flowgo/config"
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

var (
	mu       sync.RWMutex
	registry = map[string]Constructor{}
)

// Register makes an encoder available under name. It is meant to be called
// from init and panics on an empty or duplicate name.
func Register(name string, ctor Constructor) {
	mu.Lock()
	defer mu.Unlock()
	if name == "" || ctor == nil {
		panic("encoder: Register with empty name or nil constructor")
	}
	if _, dup := registry[name]; dup {
		panic("encoder: Register called twice for " + name)
	}
	registry[name] = ctor
}

// New builds the encoder registered under name.
func New(name string, s *config.Section) (Encoder, error) {
	mu.RLock()
	ctor, ok := registry[name]
	mu.RUnlock()
	if !ok {
		return nil, fmt.Errorf("output format %q unknown (known: %s)", name, strings.Join(Names(), ", "))
	}
	return ctor(s)
}

// Names returns the registered format names, sorted.
func Names() []string {
	mu.RLock()
	defer mu.RUnlock()
	out := make([]string, 0, len(registry))
	for n := range registry {
		out = append(out, n)
	}
	slices.Sort(out)
	return out
}
