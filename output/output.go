// Package output delivers encoded, framed records: stdout (alias debug),
// file, kafka and tls. Each type registers under its TOML name
// (output.type) a Parse function, which decodes and validates the type's
// keys without opening anything, and returns a Builder, which makes the
// output.
//
// The pipeline encodes and frames every batch before it calls Write, so an
// output only moves bytes: frame i of a batch is b.Frame(i).
package output

import (
	"context"
	"io"
	"log/slog"
	"time"

	"github.com/flowgo/flowgo"
	"github.com/flowgo/flowgo/config"
	internalregistry "github.com/flowgo/flowgo/internal/registry"
)

// Output is a destination for batches.
type Output interface {
	// Write delivers every frame of b in order. It returns nil once all are
	// delivered (handed to the OS for files and stdout, acknowledged for
	// Kafka); a *flowgo.BatchError when some frames failed for good, the
	// others being delivered; any other error when the batch should be
	// retried: the pipeline backs off and calls Write again with the same
	// batch, so Write reconnects as needed. Write returns promptly when ctx
	// ends. The pipeline calls Write, Flush and Close from one goroutine.
	Write(ctx context.Context, b *flowgo.Batch) error
	// Close flushes what is buffered and releases resources. Frames it
	// could not deliver before ctx ended are reported in the error.
	Close(ctx context.Context) error
}

// Flusher is an Output that buffers. The pipeline calls Flush every
// FlushInterval while the output is idle, whenever the queue runs empty
// (the end of a burst), and before Close.
type Flusher interface {
	Flush(ctx context.Context) error
	FlushInterval() time.Duration
}

// IdleFlusher is a Flusher whose buffered frames can be written out
// without the pipeline waiting: when its queue runs empty the pipeline calls
// FlushIdle, which starts writing and returns (the TLS output's lanes write
// on their own goroutines), instead of Flush.
type IdleFlusher interface {
	Flusher
	FlushIdle()
}

// Buffering is a Flusher whose Write may return before the frames reach
// the OS or the peer (file_buffer_size, tls_async). With a disk queue the
// pipeline confirms such frames only after a Flush that succeeded, so that
// a kill -9 cannot lose what the queue let go of.
type Buffering interface {
	Flusher
	Buffered() bool
}

// Reloader is an output that can reopen its files or re-read its
// certificates without a restart (logrotate's postrotate, certificate
// rotation); the pipeline calls Reload on SIGHUP, between writes.
type Reloader interface {
	Reload() error
}

// Prober is an Output that can prove, without sending a record, that it
// can deliver: a round trip to its peer, a writable file. The pipeline
// calls Probe from a goroutine of its own, concurrently with Write, at
// start and whenever it has no recent proof (no successful write), and
// counts the output ready for /readyz only once a probe or a write
// succeeded. Probe returns nil or why the output cannot deliver now; it
// returns promptly when ctx ends, and changes nothing the output delivers.
type Prober interface {
	Probe(ctx context.Context) error
}

// HealthChecker is an Output that can tell whether it is connected
// (Kafka: the last write acknowledged; TLS: a connection up). /readyz
// counts the output ready only while Healthy returns true; the reason says
// why not. Healthy only reads state and may be called concurrently with
// Write.
type HealthChecker interface {
	Healthy() (bool, string)
}

// Config is what a type's Parse gets.
type Config struct {
	// Section is the [output] table; Parse decodes its own keys from it
	// with Section.Decode and reports errors with Section.Errorf (or
	// returns a *config.KeyError, which the pipeline places).
	Section *config.Section
	// Format and Framing are the validated output.format and output.framing.
	Format  string
	Framing flowgo.Framing
	// Stdout is where the stdout output writes (os.Stdout when nil).
	Stdout io.Writer
	Log    *slog.Logger
}

// Builder is an output's configuration, decoded and validated by its
// type's Parse and ready to Build. It holds no connection, open file,
// goroutine or client (certificates it read are only values), so dropping
// one costs nothing: flowgo check, and a reload that keeps the running
// output, parse and never build.
type Builder interface {
	// Build makes the output, once. It does no I/O either: files are
	// opened and connections dialled in Write. The output is the caller's
	// to Close.
	Build() (Output, error)
}

// BuilderFunc is a Builder for an output whose Build needs nothing but a
// closure.
type BuilderFunc func() (Output, error)

// Build implements Builder.
func (f BuilderFunc) Build() (Output, error) { return f() }

// Parser decodes and validates an output's keys (Config.Section) without
// opening anything, and returns what builds the output.
type Parser func(c Config) (Builder, error)

// Type describes a registered output type.
type Type struct {
	Parse Parser
	// DefaultFraming returns the framing used when output.framing is not set.
	DefaultFraming func(format string) flowgo.Framing
	// FixedFraming, when set, is the only framing the type uses (Kafka:
	// one record per message); a configured output.framing is ignored with
	// a warning, as Flowgger does.
	FixedFraming flowgo.Framing
}

// New parses c and builds the output in one go, for callers that keep
// nothing between the two steps (tests, tools).
func (t Type) New(c Config) (Output, error) {
	b, err := t.Parse(c)
	if err != nil {
		return nil, err
	}
	return b.Build()
}

var registry = internalregistry.New[Type]("output type")

// Register makes a type available under name and each alias. It is meant to
// be called from init and panics on an empty or duplicate name.
func Register(name string, t Type, alias ...string) {
	if t.Parse == nil || t.DefaultFraming == nil {
		panic("output: Register with a nil Parse or nil DefaultFraming")
	}
	registry.Register(name, t, alias...)
}

// Lookup returns the type registered under name or one of its aliases, and
// its canonical name.
func Lookup(name string) (Type, string, error) { return registry.Lookup(name) }

// Names returns the registered type names and aliases, sorted.
func Names() []string { return registry.Names() }
