package pipeline

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"time"

	"github.com/BurntSushi/toml"
	"github.com/flowgo/flowgo/config"
	"github.com/flowgo/flowgo/decoder"
	"github.com/flowgo/flowgo/encoder"
	"github.com/flowgo/flowgo/input"
	"github.com/flowgo/flowgo/output"
)

// inputHeader holds the keys every [input] table may have.
type inputHeader struct {
	Type             string `toml:"type"`
	Format           string `toml:"format"`
	Framing          string `toml:"framing"`
	Framed           bool   `toml:"framed"`
	QueueSize        int    `toml:"queuesize"`
	QueueMaxBytes    int    `toml:"queue_max_bytes"`
	MaxMessageSize   int    `toml:"max_message_size"`
	MaxMessageAction string `toml:"max_message_action"`
	DeadLetterFile   string `toml:"dead_letter_file"`
}

// outputHeader holds the keys every [output] table may have.
type outputHeader struct {
	Type            string        `toml:"type"`
	Format          string        `toml:"format"`
	Framing         string        `toml:"framing"`
	DeadLetterFile  string        `toml:"dead_letter_file"`
	ShutdownTimeout time.Duration `toml:"shutdown_timeout"`
}

// plan is a pipeline's components, built and validated from one config
// file but not running. A new pipeline runs one; a reload compares the new
// plan with the running one and swaps only what changed.
type plan struct {
	inputs     []*inputPlan
	out        *outputPlan
	queueSize  int
	queueBytes int
	describe   []string
	sections   []*config.Section
	warnings   []string
}

type inputPlan struct {
	name     string // "input", "input[1]"
	typ      string // canonical type
	input    input.Input
	dead     *deadLetter
	text     string // the section, canonical TOML, to tell a change
	network  string // from input.Listener, "" if none
	address  string
	describe string
}

type outputPlan struct {
	name     string // canonical type
	out      output.Output
	codec    *codec
	shutdown time.Duration
	text     string
}

// codec is how records become frames for the current output. Inputs read it
// to encode (inputSink.Prepare); gen tells batches encoded for an output that
// a reload has since replaced, which the output stage encodes again.
type codec struct {
	enc     encoder.Encoder
	format  string
	framing string
	dead    *deadLetter
	gen     uint64
}

// release closes what the plan opened, for a plan that will not run.
func (pl *plan) release(log *slog.Logger) {
	for _, in := range pl.inputs {
		in.dead.release(log)
	}
	if pl.out != nil {
		pl.out.codec.dead.release(log)
	}
}

// buildPlan constructs and validates every component f describes. It
// opens only dead-letter files; inputs listen and outputs connect in Run.
func buildPlan(f *config.File, opts Options, log *slog.Logger) (*plan, error) {
	pl := &plan{}
	ok := false
	defer func() {
		if !ok {
			pl.release(log)
		}
	}()
	if err := f.CheckTables("metrics"); err != nil {
		return nil, err
	}
	workers := opts.Workers
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	var headers []*inputHeader
	for _, s := range f.Inputs {
		h := &inputHeader{Type: "syslog-tls", Format: "rfc5424", Framing: "line",
			MaxMessageSize: DefaultMaxMessageSize, MaxMessageAction: "reject"}
		headers = append(headers, h)
		if err := s.Decode(h); err != nil {
			return nil, err
		}
		s.Legacy("flowgo runs one goroutine per connection; thread counts do not apply", "tcp_threads", "tls_threads")
		s.Legacy("Flowgger no longer reads it", "tls_method", "tls_timeout")
		if err := legacyCompression(s); err != nil {
			return nil, err
		}
		if !s.Has("type") {
			s.Warn("type", "not set: Flowgger's default %q applies", h.Type)
		}
		if !s.Has("framing") && h.Framed {
			h.Framing = input.FramingSyslen
		}
		if !input.ValidFraming(h.Framing) {
			return nil, s.Errorf("framing", "framing %q unknown (known: %s)", h.Framing, input.FramingHelp())
		}
		if h.MaxMessageSize <= 0 || h.MaxMessageSize > 64<<20 {
			return nil, s.Errorf("max_message_size", "must be between 1 and %d bytes, not %d", 64<<20, h.MaxMessageSize)
		}
		if h.MaxMessageAction != "reject" && h.MaxMessageAction != "truncate" {
			return nil, s.Errorf("max_message_action", "must be \"reject\" or \"truncate\", not %q", h.MaxMessageAction)
		}
		if h.QueueSize < 0 {
			return nil, s.Errorf("queuesize", "must not be negative")
		}
		if h.QueueMaxBytes < 0 {
			return nil, s.Errorf("queue_max_bytes", "must not be negative")
		}
		pl.queueSize = max(pl.queueSize, h.QueueSize)
		pl.queueBytes = max(pl.queueBytes, h.QueueMaxBytes)

		typ, canon, err := input.Lookup(h.Type)
		if err != nil {
			return nil, s.Errorf("type", "%v", err)
		}
		dec, err := decoder.New(h.Format, s)
		if err != nil {
			return nil, wrapKey(s, "format", err)
		}
		name := s.Name()
		ip := &inputPlan{name: name, typ: canon, text: sectionText(s)}
		if h.DeadLetterFile != "" {
			framing := h.Framing
			if !typ.Stream {
				framing = input.FramingLine
			}
			if ip.dead, err = deadLetterFor(opts, h.DeadLetterFile, framing); err != nil {
				return nil, s.Errorf("dead_letter_file", "%v", err)
			}
			pl.inputs = append(pl.inputs, ip) // so that release closes it on error
		}
		ip.input, err = typ.New(input.Config{
			Section: s, Name: name, Pipeline: opts.Name, Decoder: dec, Framing: h.Framing,
			MaxMessageSize: h.MaxMessageSize, Truncate: h.MaxMessageAction == "truncate",
			BatchRecords: DefaultBatchRecords, BatchBytes: DefaultBatchBytes,
			Workers: workers, Stdin: opts.Stdin, Log: log.With("input", name),
		})
		if err != nil {
			return nil, wrapKey(s, "", err)
		}
		if l, ok := ip.input.(input.Listener); ok {
			ip.network, ip.address = l.ListenAddress()
		}
		if h.DeadLetterFile == "" {
			pl.inputs = append(pl.inputs, ip)
		}
		framing := h.Framing
		if !typ.Stream {
			framing = "datagram"
		}
		ip.describe = fmt.Sprintf("%s: type %s, format %s, framing %s, max_message_size %d (%s)",
			name, canon, h.Format, framing, h.MaxMessageSize, h.MaxMessageAction)
		pl.describe = append(pl.describe, ip.describe)
	}
	if pl.queueSize == 0 {
		pl.queueSize = DefaultQueueSize
	}
	if pl.queueBytes == 0 {
		pl.queueBytes = DefaultQueueMaxBytes
	}
	// flowgo check prints the decoded headers: show the values in effect.
	for _, h := range headers {
		h.QueueSize, h.QueueMaxBytes = pl.queueSize, pl.queueBytes
	}
	for i, a := range pl.inputs {
		for _, b := range pl.inputs[:i] {
			if a.network != "" && a.network == b.network && sameAddress(a.address, b.address) {
				return nil, f.Inputs[i].Errorf("listen", "%s %s is also used by %s", a.network, a.address, b.name)
			}
		}
	}

	s := f.Output
	h := outputHeader{Type: "kafka", Format: "gelf", ShutdownTimeout: DefaultShutdownTimeout}
	if err := s.Decode(&h); err != nil {
		return nil, err
	}
	s.Legacy("Flowgger no longer reads it", "tls_method", "tls_timeout", "debug_lf")
	if err := legacyCompression(s); err != nil {
		return nil, err
	}
	if !s.Has("type") {
		s.Warn("type", "not set: Flowgger's default %q applies", h.Type)
	}
	if h.ShutdownTimeout <= 0 {
		return nil, s.Errorf("shutdown_timeout", "must be positive, such as \"30s\"")
	}
	typ, canon, err := output.Lookup(h.Type)
	if err != nil {
		return nil, s.Errorf("type", "%v", err)
	}
	framing := typ.DefaultFraming(h.Format)
	switch {
	case typ.FixedFraming != "":
		if s.Has("framing") && h.Framing != typ.FixedFraming {
			s.Warn("framing", "ignored: the %s output sends one record per message", canon)
		}
		framing = typ.FixedFraming
	case s.Has("framing"):
		if framing, err = output.NormalizeFraming(h.Framing); err != nil {
			return nil, s.Errorf("framing", "%v", err)
		}
	}
	h.Framing = framing // flowgo check shows the framing in effect
	enc, err := encoder.New(h.Format, s)
	if err != nil {
		return nil, wrapKey(s, "format", err)
	}
	op := &outputPlan{name: canon, shutdown: h.ShutdownTimeout, text: sectionText(s),
		codec: &codec{enc: enc, format: h.Format, framing: framing}}
	pl.out = op
	if h.DeadLetterFile != "" {
		if op.codec.dead, err = deadLetterFor(opts, h.DeadLetterFile, "line"); err != nil {
			return nil, s.Errorf("dead_letter_file", "%v", err)
		}
	}
	op.out, err = typ.New(output.Config{Section: s, Format: h.Format, Framing: framing, Stdout: opts.Stdout, Log: log.With("output", canon)})
	if err != nil {
		return nil, wrapKey(s, "", err)
	}
	pl.describe = append(pl.describe,
		fmt.Sprintf("queue: %d records, %d bytes", pl.queueSize, pl.queueBytes),
		fmt.Sprintf("output: type %s, format %s, framing %s, shutdown_timeout %s", canon, h.Format, framing, h.ShutdownTimeout))
	if err := f.Check("metrics"); err != nil {
		return nil, err
	}
	pl.sections = append(append(pl.sections, f.Inputs...), f.Output)
	pl.warnings = f.Warnings()
	ok = true
	return pl, nil
}

// legacyCompression accepts Flowgger's tls_compression: false is what
// flowgo does anyway; true cannot be honoured and is warned about.
func legacyCompression(s *config.Section) error {
	var k struct {
		TLSCompression bool `toml:"tls_compression,omitempty"`
	}
	if err := s.Decode(&k); err != nil {
		return err
	}
	if k.TLSCompression {
		s.Warn("tls_compression", "ignored: TLS compression is unsafe (CRIME) and Go's TLS does not offer it")
	}
	return nil
}

// sectionText renders a section's keys as canonical TOML, so that a reload
// can tell whether it changed (comments and key order do not count).
func sectionText(s *config.Section) string {
	var buf bytes.Buffer
	if err := toml.NewEncoder(&buf).Encode(s.Raw()); err != nil {
		return fmt.Sprintf("unencodable: %v", err)
	}
	return buf.String()
}

// wrapKey turns a component's error into a config error naming key (or the
// section), unless it already is one.
func wrapKey(s *config.Section, key string, err error) error {
	var ce *config.Error
	if errors.As(err, &ce) {
		return err
	}
	return s.Errorf(key, "%v", err)
}
