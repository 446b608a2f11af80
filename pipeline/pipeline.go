// Package pipeline builds a flowgo pipeline from a config file and runs it:
// inputs decode batches of records and encode and frame them for the output
// on their own goroutines, a bounded queue carries them, and one output stage
// writes them, retrying until delivered.
//
// Shutdown drains: when the run context ends, inputs stop reading, hand
// over what they already received, and return; the queue is closed; the
// output stage writes everything left and the output is closed. Only when
// the shutdown timeout passes (or HardStop is called) are undelivered
// records given up, and then they are counted as lost and reported.
package pipeline

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/flowgo/flowgo"
	"github.com/flowgo/flowgo/config"
	"github.com/flowgo/flowgo/decoder"
	"github.com/flowgo/flowgo/encoder"
	"github.com/flowgo/flowgo/input"
	"github.com/flowgo/flowgo/output"
)

// Defaults for pipeline-level keys.
const (
	DefaultQueueSize       = 100_000   // records; Flowgger's 10 million would allow gigabytes
	DefaultQueueMaxBytes   = 256 << 20 // bytes held by queued batches
	DefaultMaxMessageSize  = 64 << 10
	DefaultShutdownTimeout = 30 * time.Second
	DefaultBatchRecords    = 1024
	DefaultBatchBytes      = 1 << 20
	maxRetryDelay          = 30 * time.Second
	firstRetryDelay        = 100 * time.Millisecond
)

// Stats counts what a pipeline did. Counters only grow.
type Stats struct {
	Received     atomic.Int64 // records decoded and queued
	Rejected     atomic.Int64 // frames that failed framing or decoding
	Dropped      atomic.Int64 // records lost before the queue (UDP, queue full)
	Sent         atomic.Int64 // records the output delivered
	EncodeFailed atomic.Int64 // records the encoder refused
	Failed       atomic.Int64 // records the output refused for good
	Lost         atomic.Int64 // records accepted but not delivered at shutdown
	Retries      atomic.Int64 // output writes retried
	BytesIn      atomic.Int64
	BytesOut     atomic.Int64
}

// Options are the parts of a pipeline that do not come from the config file.
type Options struct {
	// Name names the pipeline in logs (the config file's name).
	Name string
	// Stdin and Stdout are what the stdin input reads and the stdout output
	// writes; os.Stdin and os.Stdout when nil.
	Stdin  io.Reader
	Stdout io.Writer
	Log    *slog.Logger
	// OnReject, when set, is called for every rejected frame instead of the
	// rate-limited log (pipe mode reports each one). Calls are in stream
	// order for one input and never concurrent.
	OnReject func(input, origin string, frame []byte, err error)
	// Workers is how many goroutines decode one stream; GOMAXPROCS when 0.
	Workers int
}

// Pipeline is a built pipeline, ready to Run once.
type Pipeline struct {
	Name string

	inputs   []*inputRun
	out      output.Output
	enc      encoder.Encoder
	outName  string
	format   string
	framing  string
	queue    *flowgo.Queue
	outDead  *deadLetter
	deads    []*deadLetter
	shutdown time.Duration
	log      *slog.Logger
	onReject func(input, origin string, frame []byte, err error)
	rejMu    sync.Mutex

	stats      Stats
	hardCtx    context.Context
	hardCancel context.CancelFunc
	rejectLog  *rateLog
	retryLog   *rateLog
	describe   []string
	sections   []*config.Section
	reloads    chan chan error
}

type inputRun struct {
	name  string
	typ   string
	input input.Input
	sink  *inputSink
}

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

// Build constructs the pipeline f describes. It validates everything and
// opens only the dead-letter files; inputs listen and outputs connect in Run.
func Build(f *config.File, opts Options) (*Pipeline, error) {
	log := opts.Log
	if log == nil {
		log = slog.Default()
	}
	if opts.Workers <= 0 {
		opts.Workers = runtime.GOMAXPROCS(0)
	}
	p := &Pipeline{Name: opts.Name, log: log, onReject: opts.OnReject, reloads: make(chan chan error)}
	p.hardCtx, p.hardCancel = context.WithCancel(context.Background())
	p.rejectLog = newRateLog(log, "frames rejected", 10*time.Second, 10)
	p.retryLog = newRateLog(log, "output write failures", 10*time.Second, 1)
	ok := false
	defer func() {
		if !ok {
			p.closeDeadLetters()
		}
	}()

	queueSize, queueBytes := 0, 0
	for i, s := range f.Inputs {
		h := inputHeader{Type: "syslog-tls", Format: "rfc5424", Framing: "line",
			MaxMessageSize: DefaultMaxMessageSize, MaxMessageAction: "reject"}
		if err := s.Decode(&h); err != nil {
			return nil, err
		}
		s.Legacy("flowgo runs one goroutine per connection; thread counts do not apply", "tcp_threads", "tls_threads")
		s.Legacy("Flowgger no longer reads it", "tls_method", "tls_timeout")
		s.Legacy("TLS compression is unsafe (CRIME) and Go does not offer it", "tls_compression")
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
		queueSize = max(queueSize, h.QueueSize)
		queueBytes = max(queueBytes, h.QueueMaxBytes)

		typ, canon, err := input.Lookup(h.Type)
		if err != nil {
			return nil, s.Errorf("type", "%v", err)
		}
		dec, err := decoder.New(h.Format, s)
		if err != nil {
			return nil, wrapKey(s, "format", err)
		}
		name := s.Name()
		sink := &inputSink{p: p, name: name}
		if h.DeadLetterFile != "" {
			framing := h.Framing
			if !typ.Stream {
				framing = input.FramingLine
			}
			d, err := p.deadLetter(h.DeadLetterFile, framing)
			if err != nil {
				return nil, s.Errorf("dead_letter_file", "%v", err)
			}
			sink.dead = d
		}
		in, err := typ.New(input.Config{
			Section: s, Name: name, Decoder: dec, Framing: h.Framing,
			MaxMessageSize: h.MaxMessageSize, Truncate: h.MaxMessageAction == "truncate",
			BatchRecords: DefaultBatchRecords, BatchBytes: DefaultBatchBytes,
			Workers: opts.Workers, Stdin: opts.Stdin, Log: log.With("input", name),
		})
		if err != nil {
			return nil, wrapKey(s, "", err)
		}
		p.inputs = append(p.inputs, &inputRun{name: name, typ: canon, input: in, sink: sink})
		framing := h.Framing
		if !typ.Stream {
			framing = "datagram"
		}
		p.describe = append(p.describe, fmt.Sprintf("%s: type %s, format %s, framing %s, max_message_size %d (%s)",
			name, canon, h.Format, framing, h.MaxMessageSize, h.MaxMessageAction))
		_ = i
	}
	if queueSize == 0 {
		queueSize = DefaultQueueSize
	}
	if queueBytes == 0 {
		queueBytes = DefaultQueueMaxBytes
	}
	p.queue = flowgo.NewQueue(queueSize, queueBytes)

	s := f.Output
	h := outputHeader{Type: "kafka", Format: "gelf", ShutdownTimeout: DefaultShutdownTimeout}
	if err := s.Decode(&h); err != nil {
		return nil, err
	}
	s.Legacy("Flowgger no longer reads it", "tls_method", "tls_timeout", "debug_lf")
	s.Legacy("TLS compression is unsafe (CRIME) and Go does not offer it", "tls_compression")
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
	enc, err := encoder.New(h.Format, s)
	if err != nil {
		return nil, wrapKey(s, "format", err)
	}
	out, err := typ.New(output.Config{Section: s, Format: h.Format, Framing: framing, Stdout: opts.Stdout, Log: log.With("output", canon)})
	if err != nil {
		return nil, wrapKey(s, "", err)
	}
	if h.DeadLetterFile != "" {
		if p.outDead, err = p.deadLetter(h.DeadLetterFile, "line"); err != nil {
			return nil, s.Errorf("dead_letter_file", "%v", err)
		}
	}
	p.out, p.enc, p.outName, p.format, p.framing, p.shutdown = out, enc, canon, h.Format, framing, h.ShutdownTimeout
	p.describe = append(p.describe,
		fmt.Sprintf("queue: %d records, %d bytes", queueSize, queueBytes),
		fmt.Sprintf("output: type %s, format %s, framing %s, shutdown_timeout %s", canon, h.Format, framing, h.ShutdownTimeout))

	if err := f.Check("metrics"); err != nil {
		return nil, err
	}
	p.sections = append(append(p.sections, f.Inputs...), f.Output)
	ok = true
	return p, nil
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

// deadLetter opens path, or returns the writer already open for it.
func (p *Pipeline) deadLetter(path, framing string) (*deadLetter, error) {
	for _, d := range p.deads {
		if d.path == path {
			return d, nil
		}
	}
	d, err := openDeadLetter(path, framing)
	if err != nil {
		return nil, err
	}
	p.deads = append(p.deads, d)
	return d, nil
}

func (p *Pipeline) closeDeadLetters() {
	for _, d := range p.deads {
		if err := d.Close(); err != nil {
			p.log.Error("dead-letter file", "error", err)
		}
	}
	p.deads = nil
}

// Describe returns the effective pipeline: a summary line per component,
// then every section with all its keys, defaults included, as TOML.
func (p *Pipeline) Describe() string {
	out := strings.Join(p.describe, "\n") + "\n"
	for _, s := range p.sections {
		eff, err := s.Effective()
		if err != nil {
			eff = fmt.Sprintf("# %s: %v\n", s.Name(), err)
		}
		if s.InArray() {
			eff = strings.Replace(eff, "[input]", "[[input]]", 1)
		}
		out += "\n" + eff
	}
	return out
}

// Stats returns the pipeline's counters.
func (p *Pipeline) Stats() *Stats { return &p.stats }

// Queue returns the pipeline's queue.
func (p *Pipeline) Queue() *flowgo.Queue { return p.queue }

// HardStop gives up delivering: pending writes are abandoned and what is
// left is counted as lost. The CLI calls it on a second signal.
func (p *Pipeline) HardStop() { p.hardCancel() }

// Reload asks every input and the output that can to reopen their files
// and re-read their certificates (SIGHUP). The output reloads between two
// writes, from its own goroutine. Reload must be called while Run runs.
func (p *Pipeline) Reload() error {
	var errs []error
	for _, in := range p.inputs {
		if r, ok := in.input.(input.Reloader); ok {
			if err := r.Reload(); err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", in.name, err))
			}
		}
	}
	reply := make(chan error, 1)
	select {
	case p.reloads <- reply:
		if err := <-reply; err != nil {
			errs = append(errs, fmt.Errorf("output %s: %w", p.outName, err))
		}
	case <-p.hardCtx.Done():
	case <-time.After(10 * time.Second):
		errs = append(errs, fmt.Errorf("output %s: busy for 10s, not reloaded", p.outName))
	}
	return errors.Join(errs...)
}

// Run runs the pipeline until ctx ends or every input has finished (stdin at
// EOF), then drains as the package documentation says. It returns an error
// when an input could not run; lost records are reported in Stats.
func (p *Pipeline) Run(ctx context.Context) error {
	defer p.hardCancel()
	// The shutdown timeout starts when ctx ends.
	stopTimer := context.AfterFunc(ctx, func() {
		t := time.AfterFunc(p.shutdown, func() {
			if p.hardCtx.Err() == nil {
				p.log.Error("shutdown timeout passed: giving up on undelivered records", "shutdown_timeout", p.shutdown.String())
			}
			p.hardCancel()
		})
		context.AfterFunc(p.hardCtx, func() { t.Stop() })
	})
	defer stopTimer()

	outDone := make(chan struct{})
	go func() {
		defer close(outDone)
		p.runOutput()
	}()

	// An input that cannot run (a port in use) stops the whole pipeline.
	inCtx, cancelInputs := context.WithCancel(ctx)
	defer cancelInputs()
	var (
		wg      sync.WaitGroup
		errMu   sync.Mutex
		inErrs  []error
		flushes = time.NewTicker(time.Second)
	)
	defer flushes.Stop()
	for _, in := range p.inputs {
		wg.Go(func() {
			if err := in.input.Run(inCtx, in.sink); err != nil {
				errMu.Lock()
				inErrs = append(inErrs, fmt.Errorf("%s: %w", in.name, err))
				errMu.Unlock()
				cancelInputs()
			}
		})
	}
	inputsDone := make(chan struct{})
	go func() { wg.Wait(); close(inputsDone) }()
	for waiting := true; waiting; {
		select {
		case <-inputsDone:
			waiting = false
		case <-flushes.C:
			for _, d := range p.deads {
				if err := d.Flush(); err != nil {
					p.log.Error("dead-letter file", "error", err)
				}
			}
		}
	}
	p.queue.Close()
	<-outDone

	closeCtx := p.hardCtx
	if closeCtx.Err() != nil {
		// Past the deadline: give Close a moment to report, not to deliver.
		var cancel context.CancelFunc
		closeCtx, cancel = context.WithTimeout(context.Background(), time.Second)
		defer cancel()
	}
	if err := p.out.Close(closeCtx); err != nil {
		p.log.Error("closing the output", "output", p.outName, "error", err)
	}
	p.closeDeadLetters()
	p.rejectLog.Flush()
	p.retryLog.Flush()
	return errors.Join(inErrs...)
}

// runOutput is the output stage: it writes each batch until it is
// delivered, and flushes buffering outputs when idle. Batches arrive encoded:
// inputs encode on their own goroutines (inputSink.Prepare), so that
// encoding, the costliest step, runs in parallel.
//
// Batches already waiting in the queue are written together: while one
// write is in flight (a Kafka round trip, a slow disk), the batches that
// arrive meanwhile become the next single write. Many small batches from
// quiet connections thus cost one round trip per write, not one each.
func (p *Pipeline) runOutput() {
	var tick <-chan time.Time
	flusher, _ := p.out.(output.Flusher)
	if flusher != nil && flusher.FlushInterval() > 0 {
		t := time.NewTicker(flusher.FlushInterval())
		defer t.Stop()
		tick = t.C
	}
	batches := p.queue.Batches()
	group := make([]*flowgo.Batch, 0, 1024)
	combined := new(flowgo.Batch)
	for {
		select {
		case b, ok := <-batches:
			if !ok {
				p.finishOutput(flusher)
				return
			}
			group = append(group[:0], b)
			n, closed := b.Len(), false
		gather:
			for n < maxGroupRecords && len(group) < cap(group) {
				select {
				case nb, ok := <-batches:
					if !ok {
						closed = true
						break gather
					}
					group = append(group, nb)
					n += nb.Len()
				default:
					break gather
				}
			}
			if len(group) == 1 {
				p.deliver(b)
			} else {
				p.combine(combined, group)
				p.deliver(combined)
				clear(combined.Records)
				combined.Records = combined.Records[:0]
			}
			for i, g := range group {
				p.queue.Done(g)
				flowgo.PutBatch(g)
				group[i] = nil
			}
			if closed {
				p.finishOutput(flusher)
				return
			}
		case <-tick:
			if err := flusher.Flush(p.hardCtx); err != nil {
				p.retryLog.Event("output flush failed", p.outName, err)
			}
		case reply := <-p.reloads:
			var err error
			if r, ok := p.out.(output.Reloader); ok {
				err = r.Reload()
			}
			reply <- err
		}
	}
}

// combine makes dst one batch of the group's frames and records, for one
// write. The records are copies whose memory stays in the group's arenas
// until the write is done.
func (p *Pipeline) combine(dst *flowgo.Batch, group []*flowgo.Batch) {
	dst.Records = dst.Records[:0]
	dst.ResetEncoded()
	dst.Source = group[0].Source
	for _, g := range group {
		if !g.Encoded {
			p.encode(g)
		}
		base, recs := len(dst.Data), len(dst.Records)
		dst.Data = append(dst.Data, g.Data...)
		for _, e := range g.Ends {
			dst.Ends = append(dst.Ends, base+e)
		}
		for _, i := range g.Index {
			dst.Index = append(dst.Index, recs+i)
		}
		dst.Records = append(dst.Records, g.Records...)
	}
	dst.Encoded = true
}

// maxGroupRecords bounds how many queued records one write takes.
const maxGroupRecords = 16384

func (p *Pipeline) finishOutput(flusher output.Flusher) {
	if flusher != nil && p.hardCtx.Err() == nil {
		if err := flusher.Flush(p.hardCtx); err != nil {
			p.log.Error("flushing the output", "output", p.outName, "error", err)
		}
	}
}

// encode fills b's frames; records the encoder refuses go to the output's
// dead-letter file.
func (p *Pipeline) encode(b *flowgo.Batch) {
	b.ResetEncoded()
	for i := range b.Records {
		r := &b.Records[i]
		start := len(b.Data)
		var err error
		b.Data, err = p.enc.Encode(b.Data, r)
		if err != nil {
			b.Data = b.Data[:start]
			p.stats.EncodeFailed.Add(1)
			p.reject("output", "record from "+b.Source, []byte(r.FullMsg), err, p.outDead)
			continue
		}
		b.Data = output.Frame(p.framing, b.Data, start)
		b.Ends = append(b.Ends, len(b.Data))
		b.Index = append(b.Index, i)
	}
	b.Encoded = true
}

// deliver writes b until the output takes it, backing off between tries.
func (p *Pipeline) deliver(b *flowgo.Batch) {
	ctx := p.hardCtx
	if ctx.Err() != nil {
		p.stats.Lost.Add(int64(b.Len()))
		return
	}
	if !b.Encoded {
		p.encode(b)
	}
	frames := b.Frames()
	if frames == 0 {
		return
	}
	delay := firstRetryDelay
	for attempt := 1; ; attempt++ {
		err := p.out.Write(ctx, b)
		if err == nil {
			p.stats.Sent.Add(int64(frames))
			p.stats.BytesOut.Add(int64(len(b.Data)))
			return
		}
		var be *flowgo.BatchError
		if errors.As(err, &be) {
			for k, i := range be.Failed {
				p.reject("output", "record from "+b.Source, b.Frame(i), be.Reasons[k], p.outDead)
			}
			p.stats.Failed.Add(int64(len(be.Failed)))
			p.stats.Sent.Add(int64(frames - len(be.Failed)))
			p.stats.BytesOut.Add(int64(len(b.Data)))
			return
		}
		if ctx.Err() != nil {
			p.stats.Lost.Add(int64(frames))
			return
		}
		p.stats.Retries.Add(1)
		wait := delay/2 + rand.N(delay/2+1) // jitter, so that restarts do not stampede
		p.retryLog.Event("output write failed, retrying", p.outName, err, "attempt", attempt, "retry_in", wait.String())
		select {
		case <-time.After(wait):
		case <-ctx.Done():
			p.stats.Lost.Add(int64(frames))
			return
		}
		delay = min(2*delay, maxRetryDelay)
	}
}

// reject counts and reports a frame that will not be delivered, and keeps
// it in dead when set.
func (p *Pipeline) reject(component, origin string, frame []byte, err error, dead *deadLetter) {
	if dead != nil {
		dead.Write(frame)
	}
	if p.onReject != nil {
		p.rejMu.Lock()
		p.onReject(component, origin, frame, err)
		p.rejMu.Unlock()
		return
	}
	p.rejectLog.Event("frame rejected", origin, err, "component", component)
}

// inputSink is the pipeline as one input sees it.
type inputSink struct {
	p    *Pipeline
	name string
	dead *deadLetter
}

func (s *inputSink) Prepare(b *flowgo.Batch) {
	if !b.Encoded {
		s.p.encode(b)
	}
}

func (s *inputSink) Put(b *flowgo.Batch) error {
	s.Prepare(b)
	n, bytesIn := b.Len(), b.BytesIn
	if err := s.p.queue.Put(s.p.hardCtx, b); err != nil {
		s.p.stats.Lost.Add(int64(n))
		flowgo.PutBatch(b)
		return err
	}
	s.p.stats.Received.Add(int64(n))
	s.p.stats.BytesIn.Add(int64(bytesIn))
	return nil
}

func (s *inputSink) TryPut(b *flowgo.Batch) bool {
	s.Prepare(b)
	n, bytesIn := b.Len(), b.BytesIn
	if !s.p.queue.TryPut(b) {
		return false
	}
	s.p.stats.Received.Add(int64(n))
	s.p.stats.BytesIn.Add(int64(bytesIn))
	return true
}

func (s *inputSink) Reject(origin string, frame []byte, err error) {
	s.p.stats.Rejected.Add(1)
	s.p.reject(s.name, origin, frame, err, s.dead)
}

func (s *inputSink) Dropped(n int, reason string) {
	s.p.stats.Dropped.Add(int64(n))
	s.p.rejectLog.Event("records dropped", s.name, errors.New(reason), "count", n)
}
