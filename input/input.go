// Package input reads log events from a source (stdin, tcp, tls, udp, relp,
// redis), cuts the byte stream into frames (framing.go), decodes each frame
// with the configured decoder, and hands batches of records to the pipeline.
//
// Each input type registers under its TOML name (input.type) a Parse
// function, which decodes and validates the type's keys without opening
// anything, and returns a Builder, which makes the input.
package input

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strconv"

	"github.com/flowgo/flowgo"
	"github.com/flowgo/flowgo/config"
	"github.com/flowgo/flowgo/decoder"
	internalregistry "github.com/flowgo/flowgo/internal/registry"
)

// Input is a source of records.
type Input interface {
	// Run reads until ctx ends or the source is exhausted, and hands every
	// record it decoded to sink. When ctx ends, Run stops reading new data,
	// decodes what it already received, hands it over, and returns. It
	// returns only after every goroutine it started has ended. A nil error
	// means a clean end; an error means the input could not run (a port in
	// use, say).
	Run(ctx context.Context, sink Sink) error
}

// Reloader is an input that can re-read files it depends on (TLS
// certificates) without a restart; the pipeline calls Reload on SIGHUP.
type Reloader interface {
	Reload() error
}

// Listener is an input, or the Builder of one, bound to a network address.
// The pipeline asks the Builders, before it builds anything, to refuse two
// inputs, in any pipelines of one process, on one address.
type Listener interface {
	// ListenAddress returns the network ("tcp" or "udp") and the address
	// from the configuration.
	ListenAddress() (network, address string)
}

// ConnCounter is an input that counts connections, for metrics.
type ConnCounter interface {
	// ConnCounts returns the connections open now, and how many were
	// refused (max_connections) and failed their TLS handshake so far.
	ConnCounts() (open, refused, handshakeFailures int64)
}

// ConnAbortCounter is an input whose connections can end with what the
// peer sent possibly lost, for metrics.
type ConnAbortCounter interface {
	// ConnsAborted returns how many connections ended so far: reset by the
	// peer (its kernel discards what flowgo had not read), closed by flowgo
	// with bytes unread (the pipeline stopping, octet counting lost), or
	// ended by another read error.
	ConnsAborted() (reset, unread, readError int64)
}

// ByteCounter is a Sink that counts the raw bytes an input reads. Stream
// inputs (tcp, tls, stdin) report every read to it, framing and rejected
// frames included, so that the count is exact whatever becomes of the
// bytes; their batches' BytesIn stay 0. Datagram inputs count through
// BytesIn.
type ByteCounter interface {
	CountBytes(n int)
}

// ReadyReporter is an input that can run and yet not receive, such as the
// redis input while its server cannot be reached; /readyz asks it.
type ReadyReporter interface {
	// Ready reports whether the input receives, and if not, why.
	Ready() (ok bool, reason string)
}

// Counter is one of an input's own counters, beyond those every input has.
type Counter struct {
	// Name is the metric's name after "flowgo_input_"
	// ("relp_frames_acked_total"); Help its help text.
	Name, Help string
	// Reason is the value of the metric's reason label; "" for a metric
	// without one. All series of one Name have a reason, or none has.
	Reason string
	Value  int64
}

// CounterSource is an input with counters of its own (the relp input's
// acknowledged frames). The pipeline exports them, labelled with the
// pipeline, input and type, when metrics are scraped.
type CounterSource interface {
	Counters() []Counter
}

// Sink is the pipeline as an input sees it. Its methods are safe for
// concurrent use.
type Sink interface {
	// Put hands a batch to the pipeline, waiting while the queue is full:
	// that wait is the backpressure stream inputs pass on. b belongs to the
	// pipeline afterwards. An error means the pipeline is stopping for good
	// and could not take b; it has counted b's records as lost.
	Put(b *flowgo.Batch) error
	// Prepare does the pipeline's own work on b (encoding it for the
	// output) on the calling goroutine. Put does it when it was
	// not done; an input that decodes on several goroutines and hands over
	// from one (stdin) calls Prepare from its workers so that encoding runs
	// in parallel too. Records the encoder refuses are reported there.
	Prepare(b *flowgo.Batch)
	// Reject reports a frame that could not be decoded or framed: it is
	// counted, logged (rate-limited) and kept in the dead-letter file if one
	// is configured. origin says where it came from ("line 17",
	// "peer 10.0.0.1:5123"). frame is not retained.
	Reject(origin string, frame []byte, err error)
	// Dropped counts records lost before they reached the queue, by reason.
	Dropped(n int, reason string)
}

// Config is what a type's Parse gets.
type Config struct {
	// Section is this input's table; Parse decodes its own keys from it
	// with Section.Decode and reports errors with Section.Errorf (or
	// returns a *config.KeyError, which the pipeline places).
	Section *config.Section
	// Name identifies the input in logs and metrics ("input", "input[1]").
	Name string
	// Pipeline names the pipeline the input belongs to (the config file's
	// name); the file input names its default checkpoint file after it.
	Pipeline string
	// Decoder decodes each frame (input.format).
	Decoder decoder.Decoder
	// Framing is the validated input.framing (stream inputs).
	Framing flowgo.Framing
	// MaxMessageSize bounds a frame; Truncate says whether longer frames are
	// cut to it (true) or rejected (false).
	MaxMessageSize int
	Truncate       bool
	// BatchRecords and BatchBytes bound a batch.
	BatchRecords int
	BatchBytes   int
	// Workers is how many goroutines may decode one stream in parallel.
	Workers int
	// Buffers is the memory budget of the pipeline's stream inputs for
	// partial frames and read buffers (stream_buffer_max_bytes); nil means
	// unlimited.
	Buffers *Buffers
	// Stdin is what the stdin input reads.
	Stdin io.Reader
	Log   *slog.Logger
}

// Builder is an input's configuration, decoded and validated by its type's
// Parse and ready to Build. It holds no socket, open file, goroutine or
// client (certificates it read are only values), so dropping one costs
// nothing: flowgo check, and a reload that keeps the running input, parse
// and never build. A Builder may implement Listener, so that addresses are
// checked before anything is built.
type Builder interface {
	// Build makes the input, once. It does no I/O either: listening
	// happens in Run.
	Build() (Input, error)
}

// BuilderFunc is a Builder for an input whose Build needs nothing but a
// closure.
type BuilderFunc func() (Input, error)

// Build implements Builder.
func (f BuilderFunc) Build() (Input, error) { return f() }

// Parser decodes and validates an input's keys (Config.Section) without
// opening anything, and returns what builds the input.
type Parser func(c Config) (Builder, error)

// Type describes a registered input type.
type Type struct {
	Parse Parser
	// Stream is true for byte-stream inputs, which take input.framing.
	Stream bool
	// Framing names, for an input that is not Stream, how its frames come
	// ("relp"), for flowgo check; "datagram" when empty.
	Framing string
}

// New parses c and builds the input in one go, for callers that keep
// nothing between the two steps (tests, tools).
func (t Type) New(c Config) (Input, error) {
	b, err := t.Parse(c)
	if err != nil {
		return nil, err
	}
	return b.Build()
}

var registry = internalregistry.New[Type]("input type")

// Register makes a type available under name and each alias. It is meant to
// be called from init and panics on an empty or duplicate name.
func Register(name string, t Type, alias ...string) {
	if t.Parse == nil {
		panic("input: Register with a nil Parse")
	}
	registry.Register(name, t, alias...)
}

// Lookup returns the type registered under name or one of its aliases, and
// its canonical name.
func Lookup(name string) (Type, string, error) { return registry.Lookup(name) }

// Names returns the registered type names and aliases, sorted.
func Names() []string { return registry.Names() }

// checkListenPort checks the port of a listen address that splits as
// host:port, for every input that listens (the host is not resolved here:
// Listen does, and Flowgger accepts host names too).
func checkListenPort(port string) error {
	if _, err := strconv.ParseUint(port, 10, 16); err != nil {
		return fmt.Errorf("port %q is not a number from 0 to 65535", port)
	}
	return nil
}
