package pipeline

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sort"
	"sync"

	"github.com/flowgo/flowgo/input"
)

// inputStage runs a pipeline's inputs, each on a goroutine of its own, and
// keeps what is known of them: which run, which stopped on an error, their
// counters.
//
// Ownership: mu guards every field below it, and is held only to read or
// change them, never across a wait. Run starts the inputs and stops them at
// the end, an applied Update stops some and starts others, each input's
// goroutine reports its end, and the HTTP side reads health and counters.
// To stop inputs, stop cancels them under mu, and waits for them (they drain
// into the queue, which takes as long as the output needs) after letting
// go of it.
type inputStage struct {
	p *Pipeline // set once

	mu        sync.Mutex
	runs      map[string]*inputRun      // the inputs of the running plan, by name
	counters  map[string]*inputCounters // by name; kept across reloads so that series stay monotonic
	running   int                       // input goroutines that have not ended
	reloading bool                      // an update is between Stop and Start: running may drop to 0
	ctx       context.Context           // every input's context derives from it; set by Run
	errs      []error                   // why inputs ended, for Run's result
	failed    map[string]string         // input name → why it stopped on its own

	// Run waits on these: idle when no input runs any more, fatal when an
	// input of the first plan could not start. Buffered, sent without
	// waiting.
	idle  chan struct{}
	fatal chan error
	// begun is closed once Run has started the first inputs: an update
	// can only be applied after.
	begun chan struct{}
}

// inputRun is a started input.
type inputRun struct {
	*builtInput
	sink    *inputSink
	cancel  context.CancelCauseFunc
	done    chan struct{}
	stopped bool // stopped by a reload or shutdown; under inputStage.mu
	initial bool // started by Run: failing to start stops the pipeline
}

func newInputStage(p *Pipeline) *inputStage {
	return &inputStage{p: p, runs: map[string]*inputRun{}, counters: map[string]*inputCounters{},
		failed: map[string]string{}, idle: make(chan struct{}, 1), fatal: make(chan error, 1), begun: make(chan struct{})}
}

// begin sets the context every input runs under and starts ins, the inputs
// of the first plan.
func (s *inputStage) begin(ctx context.Context, ins []*builtInput) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.ctx = ctx
	for _, b := range ins {
		s.startLocked(b, true)
	}
	close(s.begun)
}

// start starts the inputs an update added or changed.
func (s *inputStage) start(ins []*builtInput) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, b := range ins {
		s.startLocked(b, false)
	}
}

// startLocked starts b on its own goroutine. Called with s.mu held.
func (s *inputStage) startLocked(b *builtInput, initial bool) {
	ip := b.plan
	ctr := s.counters[ip.name]
	if ctr == nil {
		ctr = &inputCounters{}
		s.counters[ip.name] = ctr
	}
	ctr.typ = ip.typ
	ctr.conns = nil
	if cc, ok := b.in.(input.ConnCounter); ok {
		ctr.conns = cc
	}
	ctr.own, _ = b.in.(input.CounterSource)
	ctx, cancel := context.WithCancelCause(s.ctx)
	r := &inputRun{builtInput: b, cancel: cancel, done: make(chan struct{}), initial: initial,
		sink: &inputSink{p: s.p, name: ip.name, dead: b.dead, ctr: ctr}}
	s.runs[ip.name] = r
	delete(s.failed, ip.name)
	s.running++
	go func() {
		err := b.in.Run(ctx, r.sink)
		s.ended(r, err)
	}()
}

// ended records how r ended, from its goroutine.
func (s *inputStage) ended(r *inputRun, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	close(r.done)
	s.running--
	if err != nil {
		ip := r.plan
		if ip.network != "" {
			where := ip.section + ".listen " + ip.address
			if path := s.p.opts.Path; path != "" {
				where += " in " + path
			}
			err = fmt.Errorf("%s: %w", where, err)
		} else {
			err = fmt.Errorf("%s: %w", ip.name, err)
		}
		s.errs = append(s.errs, err)
		if !r.stopped {
			s.failed[ip.name] = err.Error()
			if r.initial {
				select {
				case s.fatal <- err:
				default:
				}
			} else {
				s.p.log.Error("input stopped", "input", ip.name, "error", err)
			}
		}
	}
	s.signalIdleLocked()
}

func (s *inputStage) signalIdleLocked() {
	if s.running == 0 && !s.reloading {
		select {
		case s.idle <- struct{}{}:
		default:
		}
	}
}

// setReloading marks an update between Stop and Start: the inputs it
// stopped ending is not the pipeline running out of inputs.
func (s *inputStage) setReloading(on bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.reloading = on
	if !on {
		s.signalIdleLocked()
	}
}

// stop stops the named inputs, waits until they have handed over what they
// received, and forgets them; it returns them, for their dead-letter files.
// Those in handover are replaced by an input on the same address: they
// leave their sockets to it (input.ErrHandover).
func (s *inputStage) stop(names []string, handover map[string]bool) []*inputRun {
	want := map[string]bool{}
	for _, n := range names {
		want[n] = true
	}
	runs := s.stopWhere(func(name string) bool { return want[name] }, handover)
	s.mu.Lock()
	for _, r := range runs {
		if s.runs[r.plan.name] == r {
			delete(s.runs, r.plan.name)
		}
	}
	s.mu.Unlock()
	return runs
}

// stopAll stops every input and waits for them, as stop does, but keeps
// them listed: their health and counters are still reported while the
// pipeline drains.
func (s *inputStage) stopAll() { s.stopWhere(func(string) bool { return true }, nil) }

func (s *inputStage) stopWhere(match func(name string) bool, handover map[string]bool) []*inputRun {
	s.mu.Lock()
	var runs []*inputRun
	for name, r := range s.runs {
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
	s.mu.Unlock()
	for _, r := range runs {
		<-r.done
	}
	return runs
}

// list returns the running inputs.
func (s *inputStage) list() []*inputRun {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]*inputRun, 0, len(s.runs))
	for _, r := range s.runs {
		out = append(out, r)
	}
	return out
}

// names returns the names of the running inputs, sorted.
func (s *inputStage) names() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Sorted(maps.Keys(s.runs))
}

// err returns why inputs ended, joined.
func (s *inputStage) err() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return errors.Join(s.errs...)
}

// health reports each input: stopped on its own with an error, or, when
// ready is set, running but not receiving (input.ReadyReporter).
func (s *inputStage) health(pipeline string, ready bool) []ComponentHealth {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []ComponentHealth
	for name, r := range s.runs {
		ch := ComponentHealth{Pipeline: pipeline, Component: "input " + name, Healthy: true}
		if why, failed := s.failed[name]; failed {
			ch.Healthy, ch.Reason = false, why
		} else if rr, ok := r.in.(input.ReadyReporter); ok && ready {
			if ok, why := rr.Ready(); !ok {
				ch.Healthy, ch.Reason = false, why
			}
		}
		out = append(out, ch)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Component < out[j].Component })
	return out
}

// namedCounters is one input's counters, for a scrape, with the parts a
// restart of the input changes copied under the lock.
type namedCounters struct {
	name    string
	typ     string
	ctr     *inputCounters
	conns   input.ConnCounter   // nil for inputs without connections
	own     input.CounterSource // nil for inputs without counters of their own
	running bool                // among the inputs of the running plan
	up      bool
}

// countersSnapshot returns every input's counters, those of inputs a
// reload removed included.
func (s *inputStage) countersSnapshot() []namedCounters {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]namedCounters, 0, len(s.counters))
	for n, ctr := range s.counters {
		_, running := s.runs[n]
		_, failed := s.failed[n]
		out = append(out, namedCounters{name: n, typ: ctr.typ, ctr: ctr, conns: ctr.conns, own: ctr.own, running: running, up: running && !failed})
	}
	return out
}
