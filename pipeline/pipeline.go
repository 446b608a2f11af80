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
// A running pipeline can take a new configuration (Apply): inputs whose
// section is unchanged keep running, connections included; changed ones are
// stopped (delivering what they received) and restarted; a changed output is
// swapped between two writes, and queued records are encoded again for it.
package pipeline

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
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
	// CheckOnly builds the pipeline to validate it and nothing else (flowgo
	// check): dead-letter files are checked for writability, not created.
	// Such a pipeline must not be run.
	CheckOnly bool
}

// Pipeline is a built pipeline, ready to Run once.
type Pipeline struct {
	Name string

	log      *slog.Logger
	opts     Options
	onReject func(input, origin string, frame []byte, err error)
	rejMu    sync.Mutex

	queue      batchQueue
	mem        *flowgo.Queue // the queue when [queue] type = "memory"
	disk       *queue.Disk   // the queue when [queue] type = "disk"
	stats      Stats
	hardCtx    context.Context
	hardCancel context.CancelFunc
	rejectLog  *ratelog.Log
	dropLog    *ratelog.Log
	retryLog   *ratelog.Log
	codec      atomic.Pointer[codec]
	gens       atomic.Uint64
	batchIDs   atomic.Uint64 // delivery identities (flowgo.Batch.ID)
	taps       tapHub        // flowgo tap; costs one atomic load per batch when idle

	mu        sync.Mutex
	plan      *plan
	inputs    map[string]*inputRun
	counters  map[string]*inputCounters
	running   int
	reloading bool
	idle      chan struct{} // signalled when no input runs any more
	fatal     chan error    // an input that could not start
	runCtx    context.Context
	inputErrs []error
	failed    map[string]string // input name → why it stopped on its own

	// Owned by the output goroutine.
	out *outputPlan
	// unflushed is the disk queue position up to which batches were
	// written to an output that buffers, to confirm after its next flush.
	unflushed     flowgo.QueuePos
	haveUnflushed bool
	swaps         chan *swapRequest
	reloads       chan chan error
	health        outputHealth
	metrics       *pipelineMetrics
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

type inputRun struct {
	plan     *inputPlan
	sink     *inputSink
	cancel   context.CancelCauseFunc
	done     chan struct{}
	stopped  bool // stopped by a reload or shutdown, under Pipeline.mu
	initial  bool // started by Run: failing to start stops the pipeline
	err      error
	startErr bool
}

type swapRequest struct {
	out  *outputPlan
	done chan struct{}
}

// Build constructs the pipeline f describes. It validates everything and
// opens only the dead-letter files; inputs listen and outputs connect in Run.
func Build(f *config.File, opts Options) (*Pipeline, error) {
	log := opts.Log
	if log == nil {
		log = slog.Default()
	}
	if opts.Name != "" {
		log = log.With("pipeline", opts.Name)
	}
	pl, err := buildPlan(f, opts, log, nil)
	if err != nil {
		return nil, err
	}
	pl.buffers.SetLimit(pl.bufferBytes)
	p := &Pipeline{
		Name: opts.Name, log: log, opts: opts, onReject: opts.OnReject,
		plan:     pl,
		inputs:   map[string]*inputRun{},
		counters: map[string]*inputCounters{},
		idle:     make(chan struct{}, 1),
		fatal:    make(chan error, 1),
		failed:   map[string]string{},
		out:      pl.out,
		swaps:    make(chan *swapRequest),
		reloads:  make(chan chan error),
		metrics:  newPipelineMetrics(opts.Name),
	}
	p.hardCtx, p.hardCancel = context.WithCancel(context.Background())
	p.rejectLog = ratelog.New(log, "frames rejected", "origin", 10*time.Second, 10)
	p.dropLog = ratelog.New(log, "drops of records", "origin", 10*time.Second, 10)
	p.retryLog = ratelog.New(log, "output write failures", "origin", 10*time.Second, 1)
	pl.out.codec.gen = p.gens.Add(1)
	p.codec.Store(pl.out.codec)
	if pl.queue.Type == "disk" && !opts.CheckOnly {
		d, err := queue.Open(queue.Config{
			Path: pl.queue.Path, MaxBytes: pl.queue.MaxBytes, Sync: pl.queue.Sync, SyncInterval: pl.queue.SyncInterval,
			BatchRecords: DefaultBatchRecords, BatchBytes: DefaultBatchBytes, Reader: "output", Log: log,
		})
		if err != nil {
			pl.release(log)
			return nil, &config.Error{File: opts.Path, Line: pl.queueLine, Key: "queue.path", Msg: err.Error()}
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
	return p, nil
}

// Release frees what Build opened, for a pipeline that will not run.
func (p *Pipeline) Release() {
	p.plan.release(p.log)
	if p.disk != nil {
		p.disk.Close()
	}
}

// Describe returns the effective pipeline: a summary line per component,
// then every section with all its keys, defaults included, as TOML.
func (p *Pipeline) Describe() string {
	p.mu.Lock()
	pl := p.plan
	p.mu.Unlock()
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
func (p *Pipeline) Warnings() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.plan.warnings
}

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
func (p *Pipeline) Reload() error {
	var errs []error
	p.mu.Lock()
	runs := make([]*inputRun, 0, len(p.inputs))
	for _, r := range p.inputs {
		runs = append(runs, r)
	}
	p.mu.Unlock()
	for _, r := range runs {
		if rl, ok := r.plan.input.(input.Reloader); ok {
			if err := rl.Reload(); err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", r.plan.name, err))
			}
		}
		if r.plan.dead != nil {
			if err := r.plan.dead.Reopen(); err != nil {
				errs = append(errs, err)
			}
		}
	}
	if d := p.codec.Load().dead; d != nil {
		if err := d.Reopen(); err != nil {
			errs = append(errs, err)
		}
	}
	reply := make(chan error, 1)
	select {
	case p.reloads <- reply:
		if err := <-reply; err != nil {
			errs = append(errs, fmt.Errorf("output: %w", err))
		}
	case <-p.hardCtx.Done():
	case <-time.After(10 * time.Second):
		errs = append(errs, errors.New("output: busy for 10s, not reloaded"))
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
		p.mu.Lock()
		timeout := p.out.shutdown
		p.mu.Unlock()
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
		p.runOutput()
	}()
	defer p.startProbes(ctx)() // for /readyz

	inCtx, cancelInputs := context.WithCancel(ctx)
	defer cancelInputs()
	p.mu.Lock()
	p.runCtx = inCtx
	for _, ip := range p.plan.inputs {
		p.startInputLocked(ip, true)
	}
	p.mu.Unlock()

	flushes := time.NewTicker(time.Second)
	defer flushes.Stop()
wait:
	for {
		select {
		case <-ctx.Done():
			break wait
		case <-p.idle:
			break wait
		case err := <-p.fatal:
			p.log.Error("an input could not run: stopping the pipeline", "error", err)
			break wait
		case <-flushes.C:
			flushDeadLetters(p.log)
		}
	}
	startDrain()
	cancelInputs()
	p.stopAllInputs()
	if p.disk != nil {
		p.disk.CloseInput()
	} else {
		p.mem.Close()
	}
	<-outDone

	closeCtx := p.hardCtx
	if closeCtx.Err() != nil {
		// Past the deadline: give Close a moment to report, not to deliver.
		var cancel context.CancelFunc
		closeCtx, cancel = context.WithTimeout(context.Background(), time.Second)
		defer cancel()
	}
	if err := p.out.out.Close(closeCtx); err != nil {
		p.log.Error("closing the output", "output", p.out.name, "error", err)
	}
	p.mu.Lock()
	for _, r := range p.inputs {
		r.plan.dead.release(p.log)
	}
	p.mu.Unlock()
	p.out.codec.dead.release(p.log)
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
	p.retryLog.Flush()
	p.mu.Lock()
	defer p.mu.Unlock()
	return errors.Join(p.inputErrs...)
}

// startInputLocked starts ip on its own goroutine. Called with p.mu held.
func (p *Pipeline) startInputLocked(ip *inputPlan, initial bool) {
	ctr := p.counters[ip.name]
	if ctr == nil {
		ctr = &inputCounters{typ: ip.typ}
		p.counters[ip.name] = ctr
	}
	ctr.typ = ip.typ
	ctr.conns = nil
	if cc, ok := ip.input.(input.ConnCounter); ok {
		ctr.conns = cc
	}
	ctr.own, _ = ip.input.(input.CounterSource)
	ctx, cancel := context.WithCancelCause(p.runCtx)
	r := &inputRun{plan: ip, cancel: cancel, done: make(chan struct{}), initial: initial,
		sink: &inputSink{p: p, name: ip.name, dead: ip.dead, ctr: ctr}}
	p.inputs[ip.name] = r
	delete(p.failed, ip.name)
	p.running++
	go func() {
		err := ip.input.Run(ctx, r.sink)
		p.inputEnded(r, err)
	}()
}

func (p *Pipeline) inputEnded(r *inputRun, err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	r.err = err
	close(r.done)
	p.running--
	if err != nil {
		if r.plan.network != "" {
			where := r.plan.section + ".listen " + r.plan.address
			if p.opts.Path != "" {
				where += " in " + p.opts.Path
			}
			err = fmt.Errorf("%s: %w", where, err)
		} else {
			err = fmt.Errorf("%s: %w", r.plan.name, err)
		}
		p.inputErrs = append(p.inputErrs, err)
		if !r.stopped {
			p.failed[r.plan.name] = err.Error()
			if r.initial {
				select {
				case p.fatal <- err:
				default:
				}
			} else {
				p.log.Error("input stopped", "input", r.plan.name, "error", err)
			}
		}
	}
	if p.running == 0 && !p.reloading {
		select {
		case p.idle <- struct{}{}:
		default:
		}
	}
}

// stopInputs stops the named inputs and waits until they have handed over
// what they received. Those in handover are replaced by an input on the
// same address: they leave their sockets to it (input.ErrHandover).
func (p *Pipeline) stopInputs(names []string, handover map[string]bool) {
	p.stopInputsWhere(func(name string) bool { return contains(names, name) }, handover)
}

// stopAllInputs stops every input, as stopInputs does.
func (p *Pipeline) stopAllInputs() { p.stopInputsWhere(func(string) bool { return true }, nil) }

func (p *Pipeline) stopInputsWhere(match func(name string) bool, handover map[string]bool) {
	p.mu.Lock()
	var runs []*inputRun
	for name, r := range p.inputs {
		if match(name) {
			r.stopped = true
			var cause error
			if handover[name] {
				cause = input.ErrHandover
			}
			r.cancel(cause)
			runs = append(runs, r)
		}
	}
	p.mu.Unlock()
	for _, r := range runs {
		<-r.done
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
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
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	lastFlush := time.Now()
	batches := p.queue.Batches()
	group := make([]*flowgo.Batch, 0, 1024)
	combined := new(flowgo.Batch)
	for {
		select {
		case b, ok := <-batches:
			if !ok {
				p.finishOutput()
				return
			}
			group = append(group[:0], b)
			n, closed := b.Len(), false
		gather:
			// A full batch goes alone: combining copies its frames, which
			// only pays off for small batches.
			for n < groupAloneRecords && len(group) < cap(group) {
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
			var delivered bool
			if len(group) == 1 {
				delivered = p.deliver(b)
			} else {
				p.combine(combined, group)
				delivered = p.deliver(combined)
				clear(combined.Records)
				combined.Records = combined.Records[:0]
				combined.ID = 0
			}
			for i, g := range group {
				// A disk queue confirms only what was delivered: the
				// rest stays queued for the next start. What an output
				// buffers is confirmed after its next flush.
				switch {
				case p.disk == nil:
					p.queue.Done(g)
				case !delivered:
				case p.outputBuffers():
					p.unflushed, p.haveUnflushed = g.QueuePos, true
				default:
					p.queue.Done(g)
				}
				flowgo.PutBatch(g)
				group[i] = nil
			}
			if closed {
				p.finishOutput()
				return
			}
		case now := <-tick.C:
			if fl, ok := p.out.out.(output.Flusher); ok && fl.FlushInterval() > 0 && now.Sub(lastFlush) >= fl.FlushInterval() {
				lastFlush = now
				if err := p.flushOutput(fl); err != nil {
					p.retryLog.Event(slog.LevelWarn, "output flush failed", p.out.name, err)
				}
			}
		case reply := <-p.reloads:
			reply <- p.reloadOutput()
		case sw := <-p.swaps:
			p.doSwap(sw)
		}
	}
}

func (p *Pipeline) reloadOutput() error {
	if r, ok := p.out.out.(output.Reloader); ok {
		return r.Reload()
	}
	return nil
}

// doSwap replaces the output, on the output goroutine: the old one is
// flushed and closed, the new codec takes effect, and batches encoded for
// the old output are encoded again when they are delivered.
func (p *Pipeline) doSwap(sw *swapRequest) {
	old := p.out
	ctx, cancel := context.WithTimeout(p.hardCtx, old.shutdown)
	if fl, ok := old.out.(output.Flusher); ok {
		if err := fl.Flush(ctx); err != nil {
			p.log.Error("flushing the replaced output", "output", old.name, "error", err)
		} else if p.haveUnflushed {
			p.disk.Confirm(p.unflushed)
			p.haveUnflushed = false
		}
	}
	if err := old.out.Close(ctx); err != nil {
		p.log.Error("closing the replaced output", "output", old.name, "error", err)
	}
	cancel()
	old.codec.dead.release(p.log)
	sw.out.codec.gen = p.gens.Add(1)
	p.codec.Store(sw.out.codec)
	p.mu.Lock()
	p.out = sw.out
	p.mu.Unlock()
	p.health.reset()
	p.log.Info("output replaced", "output", sw.out.name, "format", sw.out.codec.format)
	close(sw.done)
}

// combine makes dst one batch of the group's frames and records, for one
// write. The records are copies whose memory stays in the group's arenas
// until the write is done.
func (p *Pipeline) combine(dst *flowgo.Batch, group []*flowgo.Batch) {
	dst.Records = dst.Records[:0]
	dst.ResetEncoded()
	dst.Source = group[0].Source
	c := p.codec.Load()
	for _, g := range group {
		if !g.Encoded || g.EncodedGen != c.gen {
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
	dst.EncodedGen = c.gen
	dst.QueuePos = group[len(group)-1].QueuePos
}

func (p *Pipeline) finishOutput() {
	if fl, ok := p.out.out.(output.Flusher); ok && p.hardCtx.Err() == nil {
		if err := p.flushOutput(fl); err != nil {
			p.log.Error("flushing the output", "output", p.out.name, "error", err)
		}
	}
}

// outputBuffers reports whether the output keeps frames after Write
// returns (output.Buffering).
func (p *Pipeline) outputBuffers() bool {
	b, ok := p.out.out.(output.Buffering)
	return ok && b.Buffered()
}

// flushOutput flushes fl and, once the flush succeeded, confirms to the
// disk queue what the output had buffered.
func (p *Pipeline) flushOutput(fl output.Flusher) error {
	if err := fl.Flush(p.hardCtx); err != nil {
		return err
	}
	if p.haveUnflushed {
		p.disk.Confirm(p.unflushed)
		p.haveUnflushed = false
	}
	return nil
}

// encode fills b's frames with the current codec; records the encoder
// refuses go to the output's dead-letter file. Safe for concurrent use on
// distinct batches.
func (p *Pipeline) encode(b *flowgo.Batch) {
	c := p.codec.Load()
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

// deliver writes b until the output takes it, backing off between tries.
// A reload may swap the output while it waits; b is then encoded again.
// It returns false when it gave up (the shutdown timeout passed); records
// the encoder or the output refused for good count as delivered: they
// went to the dead-letter files.
func (p *Pipeline) deliver(b *flowgo.Batch) bool {
	ctx := p.hardCtx
	if ctx.Err() != nil {
		p.giveUp(int64(b.Len()))
		return false
	}
	if b.ID == 0 {
		b.ID = p.batchIDs.Add(1) // kept by every retry below
	}
	delay := firstRetryDelay
	for attempt := 1; ; attempt++ {
		if c := p.codec.Load(); !b.Encoded || b.EncodedGen != c.gen {
			p.encode(b)
		}
		frames := b.Frames()
		if frames == 0 {
			return true
		}
		if p.disk != nil {
			p.disk.Sent(b)
		}
		start := time.Now()
		p.health.writing(start)
		err := p.out.out.Write(ctx, b)
		p.health.wrote(err)
		p.metrics.observeWrite(frames, time.Since(start), err)
		if err == nil && p.taps.on.Load() {
			p.tapOutput(p.out.name, p.codec.Load().framing, b)
		}
		if err == nil {
			p.stats.Writes.Add(1)
			p.stats.Sent.Add(int64(frames))
			p.stats.BytesOut.Add(int64(len(b.Data)))
			return true
		}
		var be *flowgo.BatchError
		if errors.As(err, &be) {
			c := p.codec.Load()
			for k, i := range be.Failed {
				p.reject("output", "record from "+b.Source, b.Frame(i), be.Reasons[k], c.dead)
			}
			p.stats.Writes.Add(1)
			p.stats.Failed.Add(int64(len(be.Failed)))
			p.stats.Sent.Add(int64(frames - len(be.Failed)))
			p.stats.BytesOut.Add(int64(len(b.Data)))
			return true
		}
		if ctx.Err() != nil {
			p.giveUp(int64(frames))
			return false
		}
		p.stats.Retries.Add(1)
		wait := delay/2 + rand.N(delay/2+1) // jitter, so that restarts do not stampede
		p.retryLog.Event(slog.LevelWarn, "output write failed, retrying", p.out.name, err, "attempt", attempt, "retry_in", wait.String())
		timer := time.NewTimer(wait)
		select {
		case <-timer.C:
			delay = min(2*delay, maxRetryDelay)
		case <-ctx.Done():
			timer.Stop()
			p.giveUp(int64(frames))
			return false
		case sw := <-p.swaps:
			timer.Stop()
			p.doSwap(sw) // a new configuration may fix what failed: try it at once
			delay = firstRetryDelay
		case reply := <-p.reloads:
			timer.Stop()
			reply <- p.reloadOutput() // new certificates may fix what failed
			delay = firstRetryDelay
		}
	}
}

// giveUp accounts for records the output stage stops trying to deliver
// (the shutdown timeout passed): lost with a memory queue; with a disk
// queue they stay queued, since only a delivered batch is confirmed.
func (p *Pipeline) giveUp(records int64) {
	if p.disk == nil {
		p.stats.Lost.Add(records)
	}
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
	if p.onReject != nil {
		p.rejMu.Lock()
		p.onReject(component, origin, frame, err)
		p.rejMu.Unlock()
		return
	}
	p.rejectLog.Event(slog.LevelWarn, "frame rejected", origin, err, "component", component)
}
