package pipeline

import (
	"errors"
	"fmt"
	"sort"
	"sync/atomic"
	"time"

	"github.com/flowgo/flowgo"
	"github.com/flowgo/flowgo/input"
)

// outputHealth is what the output stage tells about itself, for /healthz
// and /readyz.
type outputHealth struct {
	writeStart atomic.Int64 // UnixNano when the write in progress began, 0 when none
	failing    atomic.Bool  // the last write failed (the stage is retrying)
	lastErr    atomic.Pointer[string]
}

func (h *outputHealth) writing(t time.Time) { h.writeStart.Store(t.UnixNano()) }

func (h *outputHealth) wrote(err error) {
	h.writeStart.Store(0)
	var be *flowgo.BatchError
	if err == nil || errors.As(err, &be) {
		h.failing.Store(false)
		return
	}
	s := err.Error()
	h.lastErr.Store(&s)
	h.failing.Store(true)
}

func (h *outputHealth) reset() {
	h.failing.Store(false)
	h.writeStart.Store(0)
}

// ComponentHealth is the state of one input or output.
type ComponentHealth struct {
	Pipeline  string `json:"pipeline"`
	Component string `json:"component"`
	Healthy   bool   `json:"healthy"`
	Reason    string `json:"reason,omitempty"`
}

// healthChecker is an output that can tell whether it is connected.
type healthChecker interface {
	Healthy() (bool, string)
}

// Live reports whether the pipeline is alive: no input stopped on its own
// with an error, and no output write has been stuck for more than stall.
func (p *Pipeline) Live(stall time.Duration, now time.Time) []ComponentHealth {
	out := p.inputHealth(false)
	ch := ComponentHealth{Pipeline: p.Name, Component: "output " + p.outputName(), Healthy: true}
	if start := p.health.writeStart.Load(); start != 0 {
		if d := now.Sub(time.Unix(0, start)); d > stall {
			ch.Healthy = false
			ch.Reason = fmt.Sprintf("a write has been in progress for %s (stall limit %s)", d.Round(time.Second), stall)
		}
	}
	return append(out, ch)
}

// Ready reports whether the pipeline delivers: every input runs (and, if
// it can tell, receives) and the output is connected (by its own account)
// and its last write succeeded.
func (p *Pipeline) Ready() []ComponentHealth {
	out := p.inputHealth(true)
	ch := ComponentHealth{Pipeline: p.Name, Component: "output " + p.outputName(), Healthy: true}
	if p.health.failing.Load() {
		ch.Healthy = false
		if e := p.health.lastErr.Load(); e != nil {
			ch.Reason = "retrying: " + *e
		}
	}
	p.mu.Lock()
	o := p.out.out
	p.mu.Unlock()
	if hc, ok := o.(healthChecker); ok && ch.Healthy {
		if ok, why := hc.Healthy(); !ok {
			ch.Healthy, ch.Reason = false, why
		}
	}
	return append(out, ch)
}

func (p *Pipeline) outputName() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.out.name
}

// inputHealth reports each input: stopped on its own with an error, or,
// when ready is set, running but not receiving (input.ReadyReporter).
func (p *Pipeline) inputHealth(ready bool) []ComponentHealth {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []ComponentHealth
	for name, r := range p.inputs {
		ch := ComponentHealth{Pipeline: p.Name, Component: name + " " + r.plan.typ, Healthy: true}
		if why, failed := p.failed[name]; failed {
			ch.Healthy, ch.Reason = false, why
		} else if rr, ok := r.plan.input.(input.ReadyReporter); ok && ready {
			if ok, why := rr.Ready(); !ok {
				ch.Healthy, ch.Reason = false, why
			}
		}
		out = append(out, ch)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Component < out[j].Component })
	return out
}
