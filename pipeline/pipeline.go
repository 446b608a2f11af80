// Package pipeline builds flowgo pipelines from config files and runs them:
// inputs decode batches of records and encode and frame them for the output
// on their own goroutines, a bounded queue carries them, and one output stage
// writes them, retrying until delivered.
//
// Shutdown drains: when the run context ends, inputs stop reading, hand
// over what they already received, and return; the queue is closed; the
// output stage writes everything left and the output is closed. Only when
// the shutdown timeout passes (or HardStop is called) are undelivered
// records given up, and then they are counted as lost and reported.
//
// A pipeline is parsed (plan.go: every section decoded and validated,
// nothing opened), then built (build.go). A running pipeline can take a new
// configuration (reload.go): it is parsed and compared with the running one
// section by section; inputs whose section is unchanged keep running,
// connections included, and are not built again; changed ones are built,
// and the old ones stopped (delivering what they received) before the new
// ones start; a changed output is built and swapped between two writes, and
// queued records are encoded again for it.
package pipeline

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/flowgo/flowgo"
	"github.com/flowgo/flowgo/config"
	"github.com/flowgo/flowgo/input"
	"github.com/flowgo/flowgo/internal/ratelog"
	"github.com/flowgo/flowgo/output"
	"github.com/flowgo/flowgo/queue"
)

// Defaults for pipeline-level keys.
const (
	// The queue holds 32 full batches: enough to ride out an output's
	// hiccup at a million records a second, and about 50 MB at most.
	// Flowgger's 10 million records would allow gigabytes.
	DefaultQueueSize       = 32768    // records
	DefaultQueueMaxBytes   = 64 << 20 // bytes held by queued and in-flight batches
	DefaultMaxMessageSize  = 64 << 10
	DefaultShutdownTimeout = 30 * time.Second
	DefaultBatchRecords    = 1024
	DefaultBatchBytes      = 1 << 20
	maxRetryDelay          = 30 * time.Second
	firstRetryDelay        = 100 * time.Millisecond
	// groupAloneRecords: batches are gathered into one write while the
	// group holds fewer records than this (about 256 KiB of frames).
	groupAloneRecords = 512
)

// Stats counts what a pipeline did. Counters only grow.
type Stats struct {
	Received     atomic.Int64 // records decoded and queued
	Rejected     atomic.Int64 // frames that failed framing or decoding
	Dropped      atomic.Int64 // records lost before the queue (UDP: the kernel's receive buffer overflowed)
	Sent         atomic.Int64 // records the output delivered
	EncodeFailed atomic.Int64 // records the encoder refused
	Failed       atomic.Int64 // records the output refused for good
	Lost         atomic.Int64 // records accepted but not delivered at shutdown
	Retries      atomic.Int64 // output writes retried
	BytesIn      atomic.Int64
	BytesOut     atomic.Int64
	Writes       atomic.Int64 // output writes that succeeded
}

// Options are the parts of a pipeline that do not come from the config file.
type Options struct {
	// Name names the pipeline in logs and metrics (the config file's name).
	Name string
	// Path is the config file, for messages.
	Path string
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
	// CheckOnly parses and validates the pipeline and builds nothing (flowgo
	// check): no component is made, dead-letter files and the disk queue
	// are checked for writability, not created. Such a pipeline must not be
	// run.
	CheckOnly bool
}

// Pipeline is a built pipeline, ready to Run once. It is three parts: what
// Build sets and nothing changes after (safe to read anywhere), the input
// stage (inputStage: its own lock, never held across a wait) and the output
// stage (outputStage: one goroutine). The configuration in effect, plan, is
// replaced only by an applied Update, and read through an atomic pointer.
type Pipeline struct {
	Name string

	// Set by Build, never changed.
	log        *slog.Logger
	opts       Options
	queue      batchQueue
	mem        *flowgo.Queue  // the queue when [queue] type = "memory"
	disk       *queue.Disk    // the queue when [queue] type = "disk"
	buffers    *input.Buffers // the stream inputs' memory budget
	dead       *deadLetters   // the dead-letter files, shared by the group
	hardCtx    context.Context
	hardCancel context.CancelFunc
	rejectLog  *ratelog.Log
	dropLog    *ratelog.Log
	deadLog    *ratelog.Log // dead-letter write errors, met again at every tick until the file is reopened
	rejMu      sync.Mutex   // serialises calls of opts.OnReject

	// Counters and taps: atomics.
	stats Stats
	taps  tapHub // flowgo tap; costs one atomic load per batch when idle

	plan     atomic.Pointer[plan]
	first    []*builtInput // built by Build, started by Run
	released sync.Once     // Release, for a pipeline that will not run

	in  *inputStage
	out *outputStage
}

// batchQueue is the hand-over between the inputs and the output stage:
// the memory queue (flowgo.Queue) or the disk queue (queue.Disk). Put
// returning nil is the queue's confirmation: the inputs that acknowledge
// (RELP, Redis, file checkpoints) acknowledge after it.
type batchQueue interface {
	Put(ctx context.Context, b *flowgo.Batch) error
	Batches() <-chan *flowgo.Batch
	Done(b *flowgo.Batch)
}

// Build constructs the pipeline f describes. It validates everything,
// builds every component and opens the dead-letter files and the disk
// queue; inputs listen and outputs connect in Run. With opts.CheckOnly it
// only validates: nothing is built or opened.
func Build(f *config.File, opts Options) (*Pipeline, error) {
	p, err := parse(f, opts, newDeadLetters())
	if err != nil {
		return nil, err
	}
	if opts.CheckOnly {
		return p, nil
	}
	if err := p.build(); err != nil {
		return nil, err
	}
	return p, nil
}

// parse makes a pipeline of f's plan, built from nothing yet. Its
// dead-letter files are shared through dead.
func parse(f *config.File, opts Options, dead *deadLetters) (*Pipeline, error) {
	log := opts.Log
	if log == nil {
		log = slog.Default()
	}
	if opts.Name != "" {
		log = log.With("pipeline", opts.Name)
	}
	buffers := input.NewBuffers(input.DefaultStreamBufferBytes)
	pl, err := parsePlan(f, opts, log, buffers)
	if err != nil {
		return nil, err
	}
	p := &Pipeline{Name: opts.Name, log: log, opts: opts, buffers: buffers, dead: dead}
	p.plan.Store(pl)
	p.hardCtx, p.hardCancel = context.WithCancel(context.Background())
	p.rejectLog = ratelog.New(log, "frames rejected", "origin", 10*time.Second, 10)
	p.dropLog = ratelog.New(log, "drops of records", "origin", 10*time.Second, 10)
	p.deadLog = ratelog.New(log, "dead-letter write failures", "file", 10*time.Second, 1)
	p.in = newInputStage(p)
	p.out = newOutputStage(p)
	return p, nil
}

// build builds the plan's components and opens the queue.
func (p *Pipeline) build() error {
	pl := p.plan.Load()
	pl.buffers.SetLimit(pl.bufferBytes)
	ins, err := buildInputs(pl.inputs, p.dead, p.log)
	if err != nil {
		return err
	}
	out, err := buildOutput(pl.out, p.dead, p.log)
	if err != nil {
		releaseInputs(ins, p.log)
		return err
	}
	p.first = ins
	p.out.install(out)
	if pl.queue.Type == "disk" {
		d, err := queue.Open(queue.Config{
			Path: pl.queue.Path, MaxBytes: pl.queue.MaxBytes, Sync: pl.queue.Sync, SyncInterval: pl.queue.SyncInterval,
			BatchRecords: DefaultBatchRecords, BatchBytes: DefaultBatchBytes, Reader: "output", Log: p.log,
		})
		if err != nil {
			p.Release()
			return &config.Error{File: p.opts.Path, Line: pl.queueLine, Key: "queue.path", Msg: err.Error(), Err: err}
		}
		d.SetPrepare(func(b *flowgo.Batch) {
			// Batches of the fast path may come encoded by their input;
			// deliver encodes again any made for a replaced output.
			if !b.Encoded {
				p.encode(b)
			}
		})
		p.disk, p.queue = d, d
	} else {
		p.mem = flowgo.NewQueue(pl.queueSize, pl.queueBytes)
		p.queue = p.mem
	}
	return nil
}

// Release frees what Build opened, for a pipeline that will not run: the
// output is closed (an error is logged), the dead-letter files and the
// disk queue too.
// Calls after the first do nothing.
func (p *Pipeline) Release() {
	p.released.Do(func() {
		releaseInputs(p.first, p.log)
		p.first = nil
		if a := p.out.current(); a != nil {
			a.release(p.log, time.Second)
		}
		if p.disk != nil {
			if err := p.disk.Close(); err != nil {
				p.log.Error("closing the disk queue", "error", err)
			}
		}
	})
}

// Describe returns the effective pipeline: a summary line per component,
// then every section with all its keys, defaults included, as TOML.
func (p *Pipeline) Describe() string {
	pl := p.plan.Load()
	out := strings.Join(pl.describe, "\n") + "\n"
	for _, s := range pl.sections {
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

// Path returns the config file the pipeline was built from.
func (p *Pipeline) Path() string { return p.opts.Path }

// Warnings returns the configuration warnings of the running plan.
func (p *Pipeline) Warnings() []string { return p.plan.Load().warnings }

// Stats returns the pipeline's counters.
func (p *Pipeline) Stats() *Stats { return &p.stats }

// Queue returns the pipeline's memory queue, nil with a disk queue.
func (p *Pipeline) Queue() *flowgo.Queue { return p.mem }

// DiskQueue returns the pipeline's disk queue, nil with a memory queue.
func (p *Pipeline) DiskQueue() *queue.Disk { return p.disk }

// HardStop gives up delivering: pending writes are abandoned and what is
// left is counted as lost. The CLI calls it on a second signal.
func (p *Pipeline) HardStop() { p.hardCancel() }

// Reload asks every input and the output that can to reopen their files
// and re-read their certificates (SIGHUP). The output reloads between two
// writes, from its own goroutine. Reload must be called while Run runs.
func (p *Pipeline) Reload() error { return p.reloadParts(p.in.list(), nil, true) }

// reloadParts has the inputs runs, and the output when output is set,
// reopen their files and re-read their certificates; each dead-letter file
// they write, or dead holds, is reopened once.
func (p *Pipeline) reloadParts(runs []*inputRun, dead []*deadLetter, output bool) error {
	var errs []error
	reopened := map[*deadFile]bool{}
	reopen := func(d *deadLetter) {
		if d == nil || reopened[d.deadFile] {
			return
		}
		reopened[d.deadFile] = true
		if err := d.Reopen(); err != nil {
			errs = append(errs, err)
		}
	}
	for _, r := range runs {
		if rl, ok := r.in.(input.Reloader); ok {
			if err := rl.Reload(); err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", r.plan.name, err))
			}
		}
		reopen(r.dead)
	}
	for _, d := range dead {
		reopen(d)
	}
	if output {
		reopen(p.out.current().codec.dead)
		if err := p.out.reload(); err != nil {
			errs = append(errs, fmt.Errorf("output: %w", err))
		}
	}
	return errors.Join(errs...)
}

// Run runs the pipeline until ctx ends or every input has finished (stdin at
// EOF), then drains as the package documentation says. It returns an error
// when an input could not run; lost records are reported in Stats.
func (p *Pipeline) Run(ctx context.Context) error {
	defer p.hardCancel()
	// The shutdown timeout starts when ctx ends, or when the inputs end on
	// their own (stdin at EOF): then too an output that cannot deliver
	// must not keep the process for ever.
	draining, startDrain := context.WithCancel(ctx)
	defer startDrain()
	stopTimer := context.AfterFunc(draining, func() {
		timeout := p.out.current().plan.shutdown
		t := time.AfterFunc(timeout, func() {
			switch {
			case p.hardCtx.Err() != nil:
			case p.disk != nil:
				p.log.Warn("shutdown timeout passed: what is not delivered stays in the disk queue", "shutdown_timeout", timeout.String())
			default:
				p.log.Error("shutdown timeout passed: giving up on undelivered records", "shutdown_timeout", timeout.String())
			}
			p.hardCancel()
		})
		context.AfterFunc(p.hardCtx, func() { t.Stop() })
	})
	defer stopTimer()

	if p.disk != nil {
		p.disk.Start()
		// Past the shutdown timeout the reader stops: what it has not
		// handed over stays on disk for the next start.
		stopReader := context.AfterFunc(p.hardCtx, p.disk.Stop)
		defer stopReader()
	}
	outDone := make(chan struct{})
	go func() {
		defer close(outDone)
		p.out.run()
	}()
	defer p.startProbes(ctx)() // for /readyz

	inCtx, cancelInputs := context.WithCancel(ctx)
	defer cancelInputs()
	p.in.begin(inCtx, p.first)
	p.first = nil

	flushes := time.NewTicker(time.Second)
	defer flushes.Stop()
wait:
	for {
		select {
		case <-ctx.Done():
			break wait
		case <-p.in.idle:
			break wait
		case err := <-p.in.fatal:
			p.log.Error("an input could not run: stopping the pipeline", "error", err)
			break wait
		case <-flushes.C:
			p.flushDeadLetters()
		}
	}
	startDrain()
	cancelInputs()
	p.in.stopAll()
	if p.disk != nil {
		p.disk.CloseInput()
	} else {
		p.mem.Close()
	}
	<-outDone

	// The output stage has returned: the output is Run's now.
	closeCtx := p.hardCtx
	if closeCtx.Err() != nil {
		// Past the deadline: give Close a moment to report, not to deliver.
		var cancel context.CancelFunc
		closeCtx, cancel = context.WithTimeout(context.Background(), time.Second)
		defer cancel()
	}
	out := p.out.current()
	if err := out.out.Close(closeCtx); err != nil {
		p.log.Error("closing the output", "output", out.plan.name, "error", err)
		p.out.outputLost(out.plan.name, false)
	}
	for _, r := range p.in.list() {
		r.dead.release(p.log)
	}
	out.codec.dead.release(p.log)
	if p.disk != nil {
		left := p.disk.Usage().Records
		if err := p.disk.Close(); err != nil {
			p.log.Error("closing the disk queue", "error", err)
		}
		if left > 0 {
			p.log.Warn("records left in the disk queue: delivered at the next start", "records", left, "queue", p.disk.Path())
		}
	}
	p.rejectLog.Flush()
	p.dropLog.Flush()
	p.deadLog.Flush()
	p.out.retryLog.Flush()
	return p.in.err()
}

// flushDeadLetters writes out what the pipeline's own dead-letter files
// buffer (each file once); files other pipelines write too they flush as
// well, on their own ticks.
func (p *Pipeline) flushDeadLetters() {
	seen := map[*deadFile]bool{}
	flush := func(d *deadLetter) {
		if d == nil || seen[d.deadFile] {
			return
		}
		seen[d.deadFile] = true
		if err := d.Flush(); err != nil {
			p.deadLog.Event(slog.LevelError, "dead-letter file", d.path, err)
		}
	}
	for _, r := range p.in.list() {
		flush(r.dead)
	}
	flush(p.out.current().codec.dead)
}

// encode fills b's frames with the current codec; records the encoder
// refuses go to the output's dead-letter file. Safe for concurrent use on
// distinct batches.
func (p *Pipeline) encode(b *flowgo.Batch) {
	c := p.out.current().codec
	b.ResetEncoded()
	for i := range b.Records {
		r := &b.Records[i]
		start := len(b.Data)
		var err error
		b.Data, err = c.enc.Encode(b.Data, r)
		if err != nil {
			b.Data = b.Data[:start]
			p.stats.EncodeFailed.Add(1)
			p.reject("output", "record from "+b.Source, []byte(r.FullMsg), err, c.dead)
			continue
		}
		b.Data = output.Frame(c.framing, b.Data, start)
		b.Ends = append(b.Ends, len(b.Data))
		b.Index = append(b.Index, i)
	}
	b.Encoded = true
	b.EncodedGen = c.gen
}

// reject counts and reports a frame that will not be delivered, and keeps
// it in dead when set.
func (p *Pipeline) reject(component, origin string, frame []byte, err error, dead *deadLetter) {
	if p.taps.on.Load() {
		p.tapReject(component, origin, frame, err)
	}
	if dead != nil {
		dead.Write(frame, err)
	}
	if p.opts.OnReject != nil {
		p.rejMu.Lock()
		p.opts.OnReject(component, origin, frame, err)
		p.rejMu.Unlock()
		return
	}
	p.rejectLog.Event(slog.LevelWarn, "frame rejected", origin, err, "component", component)
}
