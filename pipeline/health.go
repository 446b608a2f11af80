package pipeline

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/flowgo/flowgo"
	"github.com/flowgo/flowgo/output"
)

// How the output is probed (output.Prober): at start, after a reload
// replaced it, and whenever nothing proved it can deliver for
// probeEvery. A probe that fails is tried again after probeRetry,
// doubling up to probeEvery. Writes that succeed are proof enough: under
// traffic no probe is made.
const (
	// probeFirst: records that arrive at start prove the output without
	// a probe's extra connection.
	probeFirst   = time.Second
	probeTimeout = 10 * time.Second
	probeEvery   = 30 * time.Second
	probeRetry   = time.Second
	probeTick    = 250 * time.Millisecond
)

// outputHealth is what the output stage tells about itself, for /healthz
// and /readyz.
type outputHealth struct {
	writeStart atomic.Int64 // UnixNano when the write in progress began, 0 when none
	failing    atomic.Bool  // the last write failed (the stage is retrying)
	lastErr    atomic.Pointer[string]

	// Proof that the output can deliver: when the latest succeeded probe
	// began or write ended (0: none yet), and when the latest failed probe
	// began, with its error. Ready needs a proof newer than any failure.
	provenAt  atomic.Int64
	probeFail atomic.Int64
	probeErr  atomic.Pointer[string]

	// mu orders reset (an output replaced) against a probe's result, so
	// that a probe of the old output never vouches for the new one.
	mu  sync.Mutex
	gen uint64
}

func (h *outputHealth) writing(t time.Time) { h.writeStart.Store(t.UnixNano()) }

func (h *outputHealth) wrote(err error) {
	h.writeStart.Store(0)
	var be *flowgo.BatchError
	if err == nil || errors.As(err, &be) {
		h.failing.Store(false)
		h.provenAt.Store(time.Now().UnixNano())
		return
	}
	s := err.Error()
	h.lastErr.Store(&s)
	h.failing.Store(true)
}

func (h *outputHealth) reset() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.gen++
	h.failing.Store(false)
	h.writeStart.Store(0)
	h.provenAt.Store(0)
	h.probeFail.Store(0)
}

// generation returns the output's generation: it changes when the output
// is replaced.
func (h *outputHealth) generation() uint64 {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.gen
}

// probed records the result of a probe that began at start, unless the
// output was replaced since (gen).
func (h *outputHealth) probed(gen uint64, start time.Time, err error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if gen != h.gen {
		return
	}
	if err == nil {
		if t := start.UnixNano(); t > h.provenAt.Load() {
			h.provenAt.Store(t)
		}
		return
	}
	s := err.Error()
	h.probeErr.Store(&s)
	h.probeFail.Store(start.UnixNano())
}

// proof tells whether the output proved it can deliver and nothing failed
// since, or why not.
func (h *outputHealth) proof() (bool, string) {
	if h.failing.Load() {
		reason := "retrying"
		if e := h.lastErr.Load(); e != nil {
			reason = "retrying: " + *e
		}
		return false, reason
	}
	proven, failed := h.provenAt.Load(), h.probeFail.Load()
	switch {
	case failed != 0 && failed >= proven:
		reason := "cannot deliver"
		if e := h.probeErr.Load(); e != nil {
			reason = "cannot deliver: " + *e
		}
		if proven == 0 {
			reason = "not proven yet that it can deliver; " + reason
		}
		return false, reason
	case proven == 0:
		return false, "not proven yet that it can deliver: probing"
	}
	return true, ""
}

// startProbes starts runProbes; the function it returns stops it and
// waits until it ended.
func (p *Pipeline) startProbes(ctx context.Context) (stop func()) {
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		p.runProbes(ctx)
	}()
	return func() {
		cancel()
		<-done
	}
}

// runProbes probes the output in the background until ctx ends: the
// HTTP handlers only read the result, and the output stage never waits
// for a probe. An output that cannot be probed (stdout) counts as proven.
func (p *Pipeline) runProbes(ctx context.Context) {
	tick := time.NewTicker(probeTick)
	defer tick.Stop()
	var (
		gen     uint64
		started bool
		began   time.Time // when this output's probing began
		last    time.Time // when the last probe began
		retry   = probeRetry
	)
	for {
		now := time.Now()
		if g := p.out.health.generation(); !started || g != gen {
			gen, started, began, last, retry = g, true, now, time.Time{}, probeRetry
		}
		pr, ok := p.out.current().out.(output.Prober)
		switch {
		case !ok:
			p.out.health.probed(gen, now, nil)
		case p.probeDue(now, began, last, retry):
			last = now
			pctx, cancel := context.WithTimeout(ctx, probeTimeout)
			err := pr.Probe(pctx)
			cancel()
			if ctx.Err() != nil {
				return
			}
			p.out.health.probed(gen, now, err)
			if err != nil {
				p.log.Debug("output probe failed", "output", p.out.name(), "error", err, "retry_in", retry.String())
				retry = min(2*retry, probeEvery)
			} else {
				retry = probeRetry
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// probeDue tells whether to probe now: not while the output stage writes
// or retries a write (its outcome is the answer); then when never probed
// (from probeFirst on), to retry a failed probe, or after probeEvery
// without proof.
func (p *Pipeline) probeDue(now, began, last time.Time, retry time.Duration) bool {
	if p.out.health.writeStart.Load() != 0 || p.out.health.failing.Load() {
		return false
	}
	proven := p.out.health.provenAt.Load()
	if last.IsZero() && proven == 0 {
		return now.Sub(began) >= probeFirst
	}
	if ok, _ := p.out.health.proof(); !ok {
		return now.Sub(last) >= retry
	}
	return now.Sub(time.Unix(0, proven)) >= probeEvery && now.Sub(last) >= probeEvery
}

// ComponentHealth is the state of one input or output.
type ComponentHealth struct {
	Pipeline  string `json:"pipeline"`
	Component string `json:"component"`
	Healthy   bool   `json:"healthy"`
	Reason    string `json:"reason,omitempty"`
}

// Live reports whether the pipeline is alive: no input stopped on its own
// with an error, and no output write has been stuck for more than stall.
func (p *Pipeline) Live(stall time.Duration, now time.Time) []ComponentHealth {
	out := p.inputHealth(false)
	ch := ComponentHealth{Pipeline: p.Name, Component: "output " + p.out.name(), Healthy: true}
	if start := p.out.health.writeStart.Load(); start != 0 {
		if d := now.Sub(time.Unix(0, start)); d > stall {
			ch.Healthy = false
			ch.Reason = fmt.Sprintf("a write has been in progress for %s (stall limit %s)", d.Round(time.Second), stall)
		}
	}
	return append(out, ch)
}

// Ready reports whether the pipeline delivers: every input runs (and, if
// it can tell, receives), and the output proved it can deliver (a probe or
// a write succeeded), nothing failed since, and it is connected by its own
// account.
func (p *Pipeline) Ready() []ComponentHealth {
	out := p.inputHealth(true)
	ok, why := p.outputReady()
	return append(out, ComponentHealth{Pipeline: p.Name, Component: "output " + p.out.name(), Healthy: ok, Reason: why})
}

// outputReady is Ready's verdict on the output. It only reads state: the
// probes run on their own goroutine.
func (p *Pipeline) outputReady() (bool, string) {
	if ok, why := p.out.health.proof(); !ok {
		return false, why
	}
	if hc, ok := p.out.current().out.(output.HealthChecker); ok {
		if ok, why := hc.Healthy(); !ok {
			return false, why
		}
	}
	return true, ""
}

// inputHealth reports each input: stopped on its own with an error, or,
// when ready is set, running but not receiving (input.ReadyReporter).
func (p *Pipeline) inputHealth(ready bool) []ComponentHealth { return p.in.health(p.Name, ready) }
