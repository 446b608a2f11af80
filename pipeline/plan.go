package pipeline

import (
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/BurntSushi/toml"
	"github.com/flowgo/flowgo"
	"github.com/flowgo/flowgo/config"
	"github.com/flowgo/flowgo/decoder"
	"github.com/flowgo/flowgo/encoder"
	"github.com/flowgo/flowgo/input"
	"github.com/flowgo/flowgo/internal/logfile"
	"github.com/flowgo/flowgo/output"
	"github.com/flowgo/flowgo/queue"
)

// A plan is a pipeline's configuration, parsed and validated from one config
// file: every section decoded and checked, every component's Builder ready,
// nothing built or opened. flowgo check stops there. A new pipeline builds
// every component of its plan (build.go); a reload parses the new file into a
// plan, compares it with the running one section by section, and builds only
// what changed (reload.go).
type plan struct {
	inputs     []*inputPlan
	out        *outputPlan
	queueSize  int
	queueBytes int
	queue      queueKeys
	queueLine  int // of [queue] path, for errors when it cannot be opened
	describe   []string
	sections   []*config.Section
	warnings   []string

	// buffers is the stream inputs' budget the inputs were parsed with
	// (the pipeline's), and bufferBytes the limit this plan sets.
	buffers     *input.Buffers
	bufferBytes int
}

type inputPlan struct {
	name     string // in metrics, logs, health and tap: name, or the default (componentName)
	section  string // in messages about keys: "input", "input[1]"
	typ      string // canonical type
	builder  input.Builder
	dead     *deadLetterSpec // nil without dead_letter_file
	text     string          // the section, canonical TOML, to tell a change
	network  string          // from input.Listener, "" if none
	address  string
	describe string
}

type outputPlan struct {
	name     string // in metrics, logs, health and tap: name, or the default (componentName)
	typ      string // canonical type
	builder  output.Builder
	enc      encoder.Encoder
	format   string
	framing  flowgo.Framing
	dead     *deadLetterSpec // nil without dead_letter_file
	shutdown time.Duration
	text     string
}

// inputHeader holds the keys every [input] table may have.
type inputHeader struct {
	Name             string         `toml:"name"`
	Type             string         `toml:"type"`
	Format           string         `toml:"format"`
	Framing          flowgo.Framing `toml:"framing"`
	Framed           bool           `toml:"framed"`
	QueueSize        int            `toml:"queuesize"`
	QueueMaxBytes    int            `toml:"queue_max_bytes"`
	MaxMessageSize   int            `toml:"max_message_size"`
	MaxMessageAction string         `toml:"max_message_action"`
	// StreamBufferMaxBytes is the pipeline's budget for what its stream
	// inputs hold of partial frames (input.Buffers).
	StreamBufferMaxBytes int `toml:"stream_buffer_max_bytes"`
	deadLetterKeys
}

// deadLetterKeys are the keys of a dead_letter_file, in [input] and [output].
type deadLetterKeys struct {
	DeadLetterFile string `toml:"dead_letter_file"`
	// DeadLetterMaxFrameSize is the most bytes of one frame kept; a longer
	// frame is kept in part, marked (CutMark).
	DeadLetterMaxFrameSize int             `toml:"dead_letter_max_frame_size"`
	DeadLetterFileMode     config.FileMode `toml:"dead_letter_file_mode"`
}

// maxDeadLetterFrame bounds dead_letter_max_frame_size, as max_message_size.
const maxDeadLetterFrame = 64 << 20

// check validates the keys of s; the frame limit defaults to def.
func (k *deadLetterKeys) check(s *config.Section, def int) error {
	if !s.Has("dead_letter_max_frame_size") {
		k.DeadLetterMaxFrameSize = def
	}
	if n := k.DeadLetterMaxFrameSize; n < 1 || n > maxDeadLetterFrame {
		return s.Errorf("dead_letter_max_frame_size", "must be between 1 and %d bytes, not %d", maxDeadLetterFrame, n)
	}
	if k.DeadLetterFile == "" {
		for _, key := range []string{"dead_letter_max_frame_size", "dead_letter_file_mode"} {
			if s.Has(key) {
				s.Warn(key, "has no effect without dead_letter_file")
			}
		}
	}
	return nil
}

// spec returns the dead-letter file of section s, checked (it could be
// opened: nothing is created), with framing; nil when s names none.
func (k *deadLetterKeys) spec(f *config.File, s *config.Section, framing flowgo.Framing, inputMax int) (*deadLetterSpec, error) {
	if err := checkNotOutputFile(f, s, k.DeadLetterFile); err != nil {
		return nil, err
	}
	if k.DeadLetterFile == "" {
		return nil, nil
	}
	if err := checkDeadLetterPath(k.DeadLetterFile); err != nil {
		return nil, s.Wrap("dead_letter_file", err)
	}
	path, err := filepath.Abs(k.DeadLetterFile)
	if err != nil {
		return nil, s.Wrap("dead_letter_file", err)
	}
	return &deadLetterSpec{path: path, section: s, settings: deadLetterSettings{
		framing: deadLetterFraming(framing), mode: k.DeadLetterFileMode.Get(), maxFrame: k.DeadLetterMaxFrameSize, inputMax: inputMax,
	}}, nil
}

// outputHeader holds the keys every [output] table may have.
type outputHeader struct {
	Name            string         `toml:"name"`
	Type            string         `toml:"type"`
	Format          string         `toml:"format"`
	Framing         flowgo.Framing `toml:"framing"`
	ShutdownTimeout time.Duration  `toml:"shutdown_timeout"`
	deadLetterKeys
}

// queueKeys is the [queue] table.
type queueKeys struct {
	Type         string        `toml:"type"`
	Path         string        `toml:"path"`
	MaxBytes     int64         `toml:"max_bytes"`
	Sync         string        `toml:"sync"`
	SyncInterval time.Duration `toml:"sync_interval"`
}

// parsePlan decodes and validates every section of f and makes each
// component's Builder. It builds and opens nothing: flowgo check runs it
// alone. The stream inputs are parsed with buffers, the budget of the
// pipeline they will run in.
func parsePlan(f *config.File, opts Options, log *slog.Logger, buffers *input.Buffers) (*plan, error) {
	if err := f.CheckTables("metrics", "queue"); err != nil {
		return nil, err
	}
	pl := &plan{buffers: buffers}
	if err := pl.parseQueue(f, opts); err != nil {
		return nil, err
	}
	if err := pl.parseInputs(f, opts, log); err != nil {
		return nil, err
	}
	if err := pl.parseOutput(f, opts, log); err != nil {
		return nil, err
	}
	if err := f.Check("metrics", "queue"); err != nil {
		return nil, err
	}
	if err := checkDeadLetterFramings(pl.deadLetters()); err != nil {
		return nil, err
	}
	pl.describeQueueAndOutput()
	pl.sections = append(append(pl.sections, f.Inputs...), f.Output)
	if m, ok := f.Tables["metrics"]; ok && m.Decoded() {
		// Decoded by LoadGroup; flowgo check prints it with the rest.
		pl.sections = append(pl.sections, m)
	}
	if q := f.Tables["queue"]; q != nil {
		pl.sections = append(pl.sections, q)
	}
	pl.warnings = f.Warnings()
	return pl, nil
}

// deadLetters returns the dead-letter files the plan's sections name.
func (pl *plan) deadLetters() []*deadLetterSpec {
	var out []*deadLetterSpec
	for _, ip := range pl.inputs {
		if ip.dead != nil {
			out = append(out, ip.dead)
		}
	}
	if pl.out != nil && pl.out.dead != nil {
		out = append(out, pl.out.dead)
	}
	return out
}

// parseInputs parses every input section, then checks what concerns them
// all: the queue sizes they agree on, and their addresses.
func (pl *plan) parseInputs(f *config.File, opts Options, log *slog.Logger) error {
	workers := opts.Workers
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	var headers []*inputHeader
	names := componentNames{}
	for _, s := range f.Inputs {
		h, err := parseInputHeader(s)
		if err != nil {
			return err
		}
		headers = append(headers, h)
		pl.queueSize = max(pl.queueSize, h.QueueSize)
		pl.queueBytes = max(pl.queueBytes, h.QueueMaxBytes)
		pl.bufferBytes = max(pl.bufferBytes, h.StreamBufferMaxBytes)
		ip, err := pl.parseInput(f, s, h, names, input.Config{
			MaxMessageSize: h.MaxMessageSize, Truncate: h.MaxMessageAction == "truncate",
			BatchRecords: DefaultBatchRecords, BatchBytes: DefaultBatchBytes,
			Workers: workers, Stdin: opts.Stdin, Buffers: pl.buffers, Pipeline: opts.Name,
		}, log)
		if err != nil {
			return err
		}
		pl.inputs = append(pl.inputs, ip)
		pl.describe = append(pl.describe, ip.describe)
	}
	pl.queueSize = cmp.Or(pl.queueSize, DefaultQueueSize)
	pl.queueBytes = cmp.Or(pl.queueBytes, DefaultQueueMaxBytes)
	pl.bufferBytes = cmp.Or(pl.bufferBytes, input.DefaultStreamBufferBytes)
	// flowgo check prints the decoded headers: show the values in effect.
	for _, h := range headers {
		h.QueueSize, h.QueueMaxBytes, h.StreamBufferMaxBytes = pl.queueSize, pl.queueBytes, pl.bufferBytes
	}
	for i, a := range pl.inputs {
		for _, b := range pl.inputs[:i] {
			if collide(a.network, a.address, b.network, b.address) {
				return f.Inputs[i].Errorf("listen", "%s %s is also used by %s", a.network, a.address, b.section)
			}
		}
	}
	return nil
}

// parseInputHeader decodes and checks the keys every input has.
func parseInputHeader(s *config.Section) (*inputHeader, error) {
	h := &inputHeader{Type: "syslog-tls", Format: "rfc5424", Framing: flowgo.FramingLine,
		MaxMessageSize: DefaultMaxMessageSize, MaxMessageAction: "reject",
		deadLetterKeys: deadLetterKeys{DeadLetterFileMode: config.Mode(logfile.DefaultMode)}}
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
		h.Framing = flowgo.FramingSyslen
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
	if err := h.deadLetterKeys.check(s, h.MaxMessageSize); err != nil {
		return nil, err
	}
	// 0 is not "the default": a queue that holds nothing cannot run, and
	// a value that silently means something else hides a mistake.
	if s.Has("queuesize") && h.QueueSize <= 0 {
		return nil, s.Errorf("queuesize", "must be at least 1 record, not %d (leave it out for the default, %d)", h.QueueSize, DefaultQueueSize)
	}
	if s.Has("queue_max_bytes") && h.QueueMaxBytes <= 0 {
		return nil, s.Errorf("queue_max_bytes", "must be at least 1 byte, not %d (leave it out for the default, %d)", h.QueueMaxBytes, DefaultQueueMaxBytes)
	}
	if v := int64(h.StreamBufferMaxBytes); s.Has("stream_buffer_max_bytes") && (v < input.MinStreamBufferBytes || v > input.MaxStreamBufferBytes) {
		return nil, s.Errorf("stream_buffer_max_bytes", "must be between %d (256 KiB) and %d bytes, not %d",
			input.MinStreamBufferBytes, input.MaxStreamBufferBytes, v)
	}
	return h, nil
}

// parseInput parses the rest of input section s, whose header is h: its
// type, format and framing, its name, its dead-letter file, and its type's
// own keys. c holds what the pipeline gives every input.
func (pl *plan) parseInput(f *config.File, s *config.Section, h *inputHeader, names componentNames, c input.Config, log *slog.Logger) (*inputPlan, error) {
	typ, canon, err := input.Lookup(h.Type)
	if err != nil {
		return nil, s.Errorf("type", "%v", err)
	}
	if !typ.Stream && h.Format == "capnp" {
		return nil, s.Errorf("format", "format \"capnp\" needs a stream input (stdin, tcp or tls), where framing \"capnp\" cuts the messages; not type %q", h.Type)
	}
	if typ.Stream {
		if h.Framing, err = input.FormatFraming(h.Format, h.Framing, s.Has("framing") || h.Framed); err != nil {
			key := "framing"
			if !s.Has("framing") {
				key = "framed"
			}
			return nil, s.Errorf(key, "%v", err)
		}
	}
	dec, err := decoder.New(h.Format, s)
	if err != nil {
		return nil, s.Wrap("format", err)
	}
	name, err := names.add(s, h.Name, canon)
	if err != nil {
		return nil, err
	}
	h.Name = name // flowgo check shows the name in effect
	ip := &inputPlan{name: name, section: s.Name(), typ: canon, text: sectionText(s)}
	framing := h.Framing
	if !typ.Stream {
		framing = flowgo.FramingLine // what the dead-letter file holds
	}
	if ip.dead, err = h.deadLetterKeys.spec(f, s, framing, h.MaxMessageSize); err != nil {
		return nil, err
	}
	c.Section, c.Name, c.Decoder, c.Framing, c.Log = s, name, dec, h.Framing, log.With("input", name)
	if ip.builder, err = typ.Parse(c); err != nil {
		return nil, s.Wrap("", err)
	}
	if l, ok := ip.builder.(input.Listener); ok {
		ip.network, ip.address = l.ListenAddress()
	}
	shown := string(framing)
	if !typ.Stream {
		shown = cmp.Or(typ.Framing, "datagram")
	}
	ip.describe = fmt.Sprintf("%s: type %s, format %s, framing %s, max_message_size %d (%s)",
		s.Name(), canon, h.Format, shown, h.MaxMessageSize, h.MaxMessageAction)
	if name != s.Name() {
		ip.describe += ", name " + name
	}
	return ip, nil
}

// parseOutput parses the [output] section.
func (pl *plan) parseOutput(f *config.File, opts Options, log *slog.Logger) error {
	s := f.Output
	h, err := parseOutputHeader(s)
	if err != nil {
		return err
	}
	typ, canon, err := output.Lookup(h.Type)
	if err != nil {
		return s.Errorf("type", "%v", err)
	}
	// Outputs see the canonical format ("gelf" for its alias "json").
	format := encoder.Canonical(h.Format)
	framing := typ.DefaultFraming(format)
	switch {
	case typ.FixedFraming != "":
		if s.Has("framing") && h.Framing != typ.FixedFraming {
			s.Warn("framing", "ignored: the %s output sends one record per message", canon)
		}
		framing = typ.FixedFraming
	case s.Has("framing"):
		if framing, err = output.NormalizeFraming(h.Framing); err != nil {
			return s.Errorf("framing", "%v", err)
		}
	}
	if typ.FixedFraming == "" {
		if framing, err = output.FormatFraming(h.Format, framing, s.Has("framing")); err != nil {
			return s.Errorf("framing", "%v", err)
		}
	}
	h.Framing = framing // flowgo check shows the framing in effect
	enc, err := encoder.New(h.Format, s)
	if err != nil {
		return s.Wrap("format", err)
	}
	name, err := (componentNames{}).add(s, h.Name, canon)
	if err != nil {
		return err
	}
	h.Name = name
	op := &outputPlan{name: name, typ: canon, shutdown: h.ShutdownTimeout, text: sectionText(s),
		enc: enc, format: h.Format, framing: framing}
	if op.dead, err = h.deadLetterKeys.spec(f, s, flowgo.FramingLine, 0); err != nil {
		return err
	}
	op.builder, err = typ.Parse(output.Config{Section: s, Format: format, Framing: framing, Stdout: opts.Stdout, Log: log.With("output", name)})
	if err != nil {
		return s.Wrap("", err)
	}
	pl.out = op
	return nil
}

// parseOutputHeader decodes and checks the keys every output has.
func parseOutputHeader(s *config.Section) (*outputHeader, error) {
	h := &outputHeader{Type: "kafka", Format: "gelf", ShutdownTimeout: DefaultShutdownTimeout,
		deadLetterKeys: deadLetterKeys{DeadLetterFileMode: config.Mode(logfile.DefaultMode)}}
	if err := s.Decode(h); err != nil {
		return nil, err
	}
	if err := h.deadLetterKeys.check(s, DefaultMaxMessageSize); err != nil {
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
	return h, nil
}

// describeQueueAndOutput adds the summary lines of the queue and the
// output, after the inputs'.
func (pl *plan) describeQueueAndOutput() {
	queueLine := fmt.Sprintf("queue: memory, %d records, %d bytes", pl.queueSize, pl.queueBytes)
	if pl.queue.Type == "disk" {
		queueLine = fmt.Sprintf("queue: disk at %s, max_bytes %d, sync %s", pl.queue.Path, pl.queue.MaxBytes, pl.queue.Sync)
		if pl.queue.Sync == queue.SyncInterval {
			queueLine += " every " + pl.queue.SyncInterval.String()
		}
	}
	o := pl.out
	pl.describe = append(pl.describe, queueLine,
		fmt.Sprintf("output: type %s, format %s, framing %s, shutdown_timeout %s, name %s", o.typ, o.format, o.framing, o.shutdown, o.name))
}

// componentKeys are the keys whose value, after the type, makes a
// component's default name: what it listens on, reads or writes.
var componentKeys = []string{"listen", "src", "path", "file_path", "redis_connect", "connect", "kafka_topic"}

// maxNameLen bounds the name key: it is a label value on every series.
const maxNameLen = 128

// componentNames gives the components of one table kind (the inputs of a
// file) their names, unique among them. The name labels the component's
// metrics and its log lines, and names it in /readyz and flowgo tap, so
// that reordering the file changes no series.
type componentNames map[string]string // name -> section it names, for messages

// add returns the name of section s: its name key, or by default its type
// and the value of its first componentKeys key ("tcp:0.0.0.0:514",
// "file:/var/log/flowgo/messages.log"; the type alone when none is set).
// A name key given twice is an error; a default met again (two inputs on
// port 0) gets "#2", "#3"...
func (n componentNames) add(s *config.Section, explicit, typ string) (string, error) {
	if s.Has("name") {
		if explicit == "" || len(explicit) > maxNameLen || strings.TrimSpace(explicit) != explicit ||
			strings.IndexFunc(explicit, unicode.IsControl) >= 0 || !utf8.ValidString(explicit) {
			return "", s.Errorf("name", "must be 1 to %d printable characters without leading or trailing space, not %q", maxNameLen, explicit)
		}
		if other, dup := n[explicit]; dup {
			return "", s.Errorf("name", "%q is also the name of %s: names must be unique in a pipeline", explicit, other)
		}
		n[explicit] = fmt.Sprintf("%s (line %d)", s.Name(), s.Line("name"))
		return explicit, nil
	}
	name := typ
	raw := s.Raw()
keys:
	for _, k := range componentKeys {
		switch v := raw[k].(type) {
		case string:
			name = typ + ":" + v
		case []any:
			if len(v) > 0 {
				name = fmt.Sprintf("%s:%v", typ, v[0])
			}
		default:
			continue
		}
		break keys
	}
	base := name
	for i := 2; ; i++ {
		if _, dup := n[name]; !dup {
			break
		}
		name = fmt.Sprintf("%s#%d", base, i)
	}
	n[name] = fmt.Sprintf("%s (line %d)", s.Name(), s.Line(""))
	return name, nil
}

// parseQueue reads and checks the [queue] table. A disk queue is opened by
// Build, not here: a reload keeps the one running, and flowgo check opens
// nothing (it checks that the path could be used).
func (pl *plan) parseQueue(f *config.File, opts Options) error {
	k := queueKeys{Type: "memory", MaxBytes: queue.DefaultMaxBytes, Sync: queue.SyncInterval, SyncInterval: queue.DefaultSyncInterval}
	s := f.Tables["queue"]
	if s == nil {
		pl.queue = k
		return nil
	}
	if err := s.Decode(&k); err != nil {
		return err
	}
	switch k.Type {
	case "memory":
		for _, key := range []string{"path", "max_bytes", "sync", "sync_interval"} {
			if s.Has(key) {
				return s.Errorf(key, "only for type = \"disk\" (the memory queue is sized by [input] queuesize and queue_max_bytes)")
			}
		}
	case "disk":
		if k.Path == "" {
			return s.Errorf("path", "required with type = \"disk\": the queue's own directory")
		}
		if !filepath.IsAbs(k.Path) && f.Path != "" {
			// Relative to the config file, as an operator reads it.
			k.Path = filepath.Join(filepath.Dir(f.Path), k.Path)
		}
		k.Path = filepath.Clean(k.Path)
		if k.MaxBytes < queue.MinMaxBytes {
			return s.Errorf("max_bytes", "must be at least %d (4 MiB), not %d", queue.MinMaxBytes, k.MaxBytes)
		}
		switch k.Sync {
		case queue.SyncInterval, queue.SyncBatch, queue.SyncNone:
		default:
			return s.Errorf("sync", "must be \"interval\", \"batch\" or \"none\", not %q", k.Sync)
		}
		if k.SyncInterval <= 0 {
			return s.Errorf("sync_interval", "must be positive, such as \"1s\"")
		}
		if opts.CheckOnly {
			if err := checkQueuePath(k.Path); err != nil {
				return s.Wrap("path", err)
			}
		}
	default:
		return s.Errorf("type", "must be \"memory\" or \"disk\", not %q", k.Type)
	}
	pl.queue = k
	pl.queueLine = s.Line("path")
	return nil
}

// checkQueuePath tells, without creating anything, whether a disk queue
// could be opened at path: an existing writable directory, or a path
// whose nearest existing parent is a writable directory.
func checkQueuePath(path string) error {
	p := path
	for {
		fi, err := os.Stat(p)
		if err == nil {
			if !fi.IsDir() {
				return fmt.Errorf("%s is not a directory", p)
			}
			return dirWritable(p)
		}
		if !errors.Is(err, os.ErrNotExist) {
			return err
		}
		parent := filepath.Dir(p)
		if parent == p {
			return err
		}
		p = parent
	}
}

// outputFile returns the file_path of f's output when it is a file output,
// "" otherwise.
func outputFile(f *config.File) string {
	raw := f.Output.Raw()
	typ, _ := raw["type"].(string)
	if _, canon, err := output.Lookup(typ); err != nil || canon != "file" {
		return ""
	}
	path, _ := raw["file_path"].(string)
	return path
}

// checkNotOutputFile refuses a dead-letter file (key dead_letter_file of s)
// that is the file output's file_path: records and rejected frames would
// mix in one file, each appended through its own buffer. Paths are compared
// absolute and cleaned, and as files when both exist (links).
func checkNotOutputFile(f *config.File, s *config.Section, dead string) error {
	path := outputFile(f)
	if path == "" || dead == "" || !samePath(path, dead) {
		return nil
	}
	where := fmt.Sprintf("output.file_path (line %d)", f.Output.Line("file_path"))
	if s == f.Output {
		where = fmt.Sprintf("file_path (line %d)", f.Output.Line("file_path"))
	}
	return s.Errorf("dead_letter_file", "%q is also %s: rejected frames would be mixed with the records; name another file", dead, where)
}

// samePath reports whether a and b name one file: the same absolute,
// cleaned path, or, when both exist, the same file (links).
func samePath(a, b string) bool {
	absA, errA := filepath.Abs(a)
	absB, errB := filepath.Abs(b)
	if errA == nil && errB == nil && absA == absB {
		return true
	}
	sa, errA := os.Stat(a)
	sb, errB := os.Stat(b)
	return errA == nil && errB == nil && os.SameFile(sa, sb)
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
