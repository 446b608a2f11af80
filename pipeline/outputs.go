package pipeline

import (
	"context"
	"errors"
	"log/slog"
	"math/rand/v2"
	"sync/atomic"
	"time"

	"github.com/flowgo/flowgo"
	"github.com/flowgo/flowgo/internal/ratelog"
	"github.com/flowgo/flowgo/output"
)

// outputStage writes a pipeline's batches to its output, retrying until
// each is delivered.
//
// Ownership: one goroutine, the one running run, owns the output: it alone
// writes, flushes, reloads, replaces and closes it, and the fields below
// that are not atomic are its own. Others ask it through swaps and reloads,
// which it serves between two writes, and read what it publishes: cur, the
// output in effect (the inputs encode with its codec; the probes and the
// HTTP side name and ask it), and health. Before run starts (Build) and once
// it has returned (the end of Run), Run's goroutine owns the stage.
type outputStage struct {
	p *Pipeline // set once

	cur     atomic.Pointer[activeOutput]
	swaps   chan *swapRequest
	reloads chan chan error
	health  outputHealth
	metrics *pipelineMetrics

	gen      uint64 // the codec generation of cur
	batchIDs uint64 // the last delivery identity given (flowgo.Batch.ID)
	retryLog *ratelog.Log
	// unflushed is the disk queue position up to which batches were
	// written to an output that buffers, to confirm after its next flush;
	// the zero position when there is none.
	unflushed flowgo.QueuePos
	// unflushedRecords counts the records written to an output that
	// buffers since its last flush that succeeded: what is lost if the
	// output can neither flush nor close (outputLost).
	unflushedRecords int64
}

type swapRequest struct {
	out  *activeOutput
	done chan struct{}
}

func newOutputStage(p *Pipeline) *outputStage {
	return &outputStage{p: p, swaps: make(chan *swapRequest), reloads: make(chan chan error),
		metrics:  newPipelineMetrics(p.Name),
		retryLog: ratelog.New(p.log, "output write failures", "origin", 10*time.Second, 1)}
}

// current returns the output in effect; nil before Build built one.
func (o *outputStage) current() *activeOutput { return o.cur.Load() }

// name returns the name of the output in effect (or of the planned one,
// when the pipeline was only checked).
func (o *outputStage) name() string {
	if a := o.cur.Load(); a != nil {
		return a.plan.name
	}
	return o.p.plan.Load().out.name
}

// install makes a the output in effect, with a new codec generation: the
// batches encoded for the previous one are encoded again.
func (o *outputStage) install(a *activeOutput) {
	o.gen++
	a.codec.gen = o.gen
	o.cur.Store(a)
}

// swap hands a to the stage, which installs it between two writes after
// flushing and closing the output it replaces. It waits until then, or
// until the pipeline gives up delivering.
func (o *outputStage) swap(a *activeOutput) {
	sw := &swapRequest{out: a, done: make(chan struct{})}
	select {
	case o.swaps <- sw:
		<-sw.done
	case <-o.p.hardCtx.Done():
		a.release(o.p.log, time.Second)
	}
}

// reload asks the stage to have the output reopen its files or re-read its
// certificates, between two writes, and returns its answer; it gives up
// after 10 s of a write that does not end.
func (o *outputStage) reload() error {
	reply := make(chan error, 1)
	select {
	case o.reloads <- reply:
		return <-reply
	case <-o.p.hardCtx.Done():
		return nil
	case <-time.After(10 * time.Second):
		return errors.New("busy for 10s, not reloaded")
	}
}

// run is the output stage: it writes each batch until it is delivered,
// and flushes buffering outputs when the queue runs empty and every flush
// interval. Batches arrive encoded: inputs
// encode on their own goroutines (inputSink.Prepare), so that encoding,
// the costliest step, runs in parallel.
//
// Batches already waiting in the queue are written together: while one
// write is in flight (a Kafka round trip, a slow disk), the batches that
// arrive meanwhile become the next single write. Many small batches from
// quiet connections thus cost one round trip per write, not one each.
func (o *outputStage) run() {
	p := o.p
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
				o.finish()
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
				delivered = o.deliver(b)
			} else {
				o.combine(combined, group)
				delivered = o.deliver(combined)
				clear(combined.Records)
				combined.Records = combined.Records[:0]
				combined.ID = 0
			}
			// A disk queue confirms only what was delivered: the rest
			// stays queued for the next start. What an output buffers is
			// confirmed after its next flush.
			buffered := delivered && o.outputBuffers()
			if buffered {
				o.unflushedRecords += int64(n)
			}
			for i, g := range group {
				switch {
				case p.disk == nil:
					p.queue.Done(g)
				case !delivered:
				case buffered:
					o.unflushed = g.QueuePos
				default:
					p.queue.Done(g)
				}
				flowgo.PutBatch(g)
				group[i] = nil
			}
			if closed {
				o.finish()
				return
			}
			if len(batches) == 0 && o.flushBuffered() {
				lastFlush = time.Now()
			}
		case now := <-tick.C:
			a := o.current()
			if fl, ok := a.out.(output.Flusher); ok && fl.FlushInterval() > 0 && now.Sub(lastFlush) >= fl.FlushInterval() {
				lastFlush = now
				if err := o.flushOutput(o.p.hardCtx, fl); err != nil {
					o.retryLog.Event(slog.LevelWarn, "output flush failed", a.plan.name, err)
				}
			}
		case reply := <-o.reloads:
			reply <- o.reloadOutput()
		case sw := <-o.swaps:
			o.doSwap(sw)
		}
	}
}

func (o *outputStage) reloadOutput() error {
	if r, ok := o.current().out.(output.Reloader); ok {
		return r.Reload()
	}
	return nil
}

// doSwap replaces the output: the old one is flushed and closed (errors
// are logged), the new codec takes effect, and batches encoded for the old
// output are encoded again when they are delivered.
func (o *outputStage) doSwap(sw *swapRequest) {
	p := o.p
	old := o.current()
	ctx, cancel := context.WithTimeout(p.hardCtx, old.plan.shutdown)
	var flushErr error
	if fl, ok := old.out.(output.Flusher); ok {
		if flushErr = o.flushOutput(ctx, fl); flushErr != nil {
			p.log.Error("flushing the replaced output", "output", old.plan.name, "error", flushErr)
		}
	}
	if err := old.out.Close(ctx); err != nil {
		p.log.Error("closing the replaced output", "output", old.plan.name, "error", err)
		if flushErr != nil {
			o.outputLost(old.plan.name, true)
		}
	}
	o.unflushedRecords = 0
	cancel()
	old.codec.dead.release(p.log)
	o.install(sw.out)
	o.health.reset()
	p.log.Info("output replaced", "output", sw.out.plan.name, "format", sw.out.codec.format)
	close(sw.done)
}

// combine makes dst one batch of the group's frames and records, for one
// write. The records are copies whose memory stays in the group's arenas
// until the write is done.
func (o *outputStage) combine(dst *flowgo.Batch, group []*flowgo.Batch) {
	dst.Records = dst.Records[:0]
	dst.ResetEncoded()
	dst.Source = group[0].Source
	c := o.current().codec
	for _, g := range group {
		if !g.Encoded || g.EncodedGen != c.gen {
			o.p.encode(g)
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

func (o *outputStage) finish() {
	a := o.current()
	if fl, ok := a.out.(output.Flusher); ok && o.p.hardCtx.Err() == nil {
		if err := o.flushOutput(o.p.hardCtx, fl); err != nil {
			o.p.log.Error("flushing the output", "output", a.plan.name, "error", err)
		}
	}
}

// outputBuffers reports whether the output keeps frames after Write
// returns (output.Buffering).
func (o *outputStage) outputBuffers() bool {
	b, ok := o.current().out.(output.Buffering)
	return ok && b.Buffered()
}

// flushBuffered flushes an output that buffers (a Flusher with a flush
// interval) once the queue has run empty, at the end of a burst, as
// rsyslog's flushOnTXEnd does: a record then never waits for a buffer to
// fill or for the next timed flush while nothing else is coming. Under load
// the queue is never empty, and the buffer's size and the flush interval
// bound the wait. An output that can write its buffer on its own
// goroutines (output.IdleFlusher) is only told to, so that the output stage
// does not wait for it. It reports whether it flushed.
func (o *outputStage) flushBuffered() bool {
	a := o.current()
	fl, ok := a.out.(output.Flusher)
	if !ok || fl.FlushInterval() <= 0 {
		return false
	}
	if idle, ok := fl.(output.IdleFlusher); ok {
		idle.FlushIdle()
		// Not a flush: the timed Flush still comes, to report a lane's
		// failure and to confirm to a disk queue.
		return false
	}
	if err := o.flushOutput(o.p.hardCtx, fl); err != nil {
		o.retryLog.Event(slog.LevelWarn, "output flush failed", a.plan.name, err)
	}
	return true
}

// flushOutput flushes fl within ctx and, once the flush succeeded,
// confirms to the disk queue what the output had buffered.
func (o *outputStage) flushOutput(ctx context.Context, fl output.Flusher) error {
	if err := fl.Flush(ctx); err != nil {
		return err
	}
	o.unflushedRecords = 0
	if o.unflushed != (flowgo.QueuePos{}) {
		o.p.disk.Confirm(o.unflushed)
		o.unflushed = flowgo.QueuePos{}
	}
	return nil
}

// outputLost accounts for the records an output buffered when it could
// neither flush nor close them out: they are gone with it. With a disk
// queue at shutdown they stay queued (never confirmed), so only a swap,
// whose successor's next confirmation passes over them, loses them there.
func (o *outputStage) outputLost(name string, swapped bool) {
	n := o.unflushedRecords
	o.unflushedRecords = 0
	if n == 0 || (o.p.disk != nil && !swapped) {
		return
	}
	o.p.stats.Lost.Add(n)
	o.p.log.Error("records the output had buffered could not be written: lost", "output", name, "records", n)
}

// deliver writes b until the output takes it, backing off between tries.
// A reload may swap the output while it waits; b is then encoded again.
// It returns false when it gave up (the shutdown timeout passed); records
// the encoder or the output refused for good count as delivered: they
// went to the dead-letter files.
func (o *outputStage) deliver(b *flowgo.Batch) bool {
	p := o.p
	ctx := p.hardCtx
	if ctx.Err() != nil {
		o.giveUp(int64(b.Len()))
		return false
	}
	if b.ID == 0 {
		o.batchIDs++
		b.ID = o.batchIDs // kept by every retry below
	}
	delay := firstRetryDelay
	for attempt := 1; ; attempt++ {
		a := o.current()
		if !b.Encoded || b.EncodedGen != a.codec.gen {
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
		o.health.writing(start)
		err := a.out.Write(ctx, b)
		o.health.wrote(err)
		o.metrics.observeWrite(frames, time.Since(start))
		if err == nil && p.taps.on.Load() {
			p.tapOutput(a.plan.name, a.codec.framing, b)
		}
		if err == nil {
			p.stats.Writes.Add(1)
			p.stats.Sent.Add(int64(frames))
			p.stats.BytesOut.Add(int64(len(b.Data)))
			return true
		}
		var be *flowgo.BatchError
		if errors.As(err, &be) {
			for k, i := range be.Failed {
				p.reject("output", "record from "+b.Source, b.Frame(i), be.Reasons[k], a.codec.dead)
			}
			p.stats.Writes.Add(1)
			p.stats.Failed.Add(int64(len(be.Failed)))
			p.stats.Sent.Add(int64(frames - len(be.Failed)))
			p.stats.BytesOut.Add(int64(len(b.Data)))
			return true
		}
		if ctx.Err() != nil {
			o.giveUp(int64(frames))
			return false
		}
		p.stats.Retries.Add(1)
		wait := delay/2 + rand.N(delay/2+1) // jitter, so that restarts do not stampede
		o.retryLog.Event(slog.LevelWarn, "output write failed, retrying", a.plan.name, err, "attempt", attempt, "retry_in", wait.String())
		timer := time.NewTimer(wait)
		select {
		case <-timer.C:
			delay = min(2*delay, maxRetryDelay)
		case <-ctx.Done():
			timer.Stop()
			o.giveUp(int64(frames))
			return false
		case sw := <-o.swaps:
			timer.Stop()
			o.doSwap(sw) // a new configuration may fix what failed: try it at once
			delay = firstRetryDelay
		case reply := <-o.reloads:
			timer.Stop()
			reply <- o.reloadOutput() // new certificates may fix what failed
			delay = firstRetryDelay
		}
	}
}

// giveUp accounts for records the output stage stops trying to deliver
// (the shutdown timeout passed): lost with a memory queue; with a disk
// queue they stay queued, since only a delivered batch is confirmed.
func (o *outputStage) giveUp(records int64) {
	if o.p.disk == nil {
		o.p.stats.Lost.Add(records)
	}
}
