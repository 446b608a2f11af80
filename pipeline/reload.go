package pipeline

import (
	"errors"
	"time"

	"github.com/flowgo/flowgo/config"
)

// Update is a new configuration for a running pipeline: parsed, compared
// with the running one section by section, and with what changed built,
// but not applied yet. An input whose section is unchanged, and the output
// when its section is unchanged, are kept running and never built again.
// Applying takes two steps, so that a group of pipelines can first stop
// every input that goes away and then start the new ones: an address can
// move from one input, or pipeline, to another.
type Update struct {
	p  *Pipeline
	np *plan

	stops []string     // running inputs to stop: changed or removed
	added []*inputPlan // inputs to build and start: changed or added
	kept  []*inputRun  // running inputs that stay
	// handover names the stopped inputs whose successor listens on the
	// same address: they leave it their socket.
	handover map[string]bool
	swap     bool // the output changed

	// What build made of added and of the new output, nil before.
	starts []*builtInput
	out    *activeOutput
}

// NewUpdate parses f for p, compares it with p's running configuration
// and builds what changed. Nothing changes until Stop and Start; an update
// that will not be applied must be Discarded.
func (p *Pipeline) NewUpdate(f *config.File) (*Update, error) {
	u, err := p.diff(f)
	if err != nil {
		return nil, err
	}
	if err := u.build(); err != nil {
		return nil, err
	}
	return u, nil
}

// diff parses f and compares its plan with the running one: nothing is
// built.
func (p *Pipeline) diff(f *config.File) (*Update, error) {
	select {
	case <-p.in.begun:
	default:
		return nil, errNotStarted
	}
	np, err := parsePlan(f, p.opts, p.log, p.buffers)
	if err != nil {
		return nil, err
	}
	cur := p.plan.Load()
	u := &Update{p: p, np: np}
	running := map[string]*inputRun{}
	for _, r := range p.in.list() {
		running[r.plan.name] = r
	}
	old := map[string]*inputPlan{}
	for _, ip := range cur.inputs {
		old[ip.name] = ip
	}
	for _, ip := range np.inputs {
		o := old[ip.name]
		delete(old, ip.name)
		if o != nil && o.text == ip.text && o.typ == ip.typ {
			if r := running[o.name]; r != nil {
				u.kept = append(u.kept, r)
			}
			continue
		}
		if o != nil {
			u.stops = append(u.stops, o.name)
			if o.network != "" && o.network == ip.network && o.address == ip.address {
				// The successor listens where o does: o leaves it its
				// socket, so that nothing is refused in between.
				if u.handover == nil {
					u.handover = map[string]bool{}
				}
				u.handover[o.name] = true
			}
		}
		u.added = append(u.added, ip)
	}
	for name := range old {
		u.stops = append(u.stops, name)
	}
	u.swap = cur.out.text != np.out.text
	if np.queueSize != cur.queueSize || np.queueBytes != cur.queueBytes {
		p.log.Warn("queuesize and queue_max_bytes changes take effect at the next restart")
	}
	if np.queue != cur.queue {
		p.log.Warn("[queue] changes take effect at the next restart: the running queue is kept", "queue", cur.queue.Type, "path", cur.queue.Path)
	}
	return u, nil
}

// build builds the inputs the update adds or changes, and the output when
// it changed. On an error nothing is left open.
func (u *Update) build() error {
	p := u.p
	starts, err := buildInputs(u.added, p.dead, p.log)
	if err != nil {
		return err
	}
	if u.swap {
		if u.out, err = buildOutput(u.np.out, p.dead, p.log); err != nil {
			releaseInputs(starts, p.log)
			return err
		}
	}
	u.starts = starts
	return nil
}

// Changed reports whether applying u stops, starts or replaces anything.
func (u *Update) Changed() bool { return len(u.stops) > 0 || len(u.added) > 0 || u.swap }

// Stop stops the inputs u changes or removes; they hand over what they
// received before they return.
func (u *Update) Stop() {
	p := u.p
	p.in.setReloading(true)
	for _, r := range p.in.stop(u.stops, u.handover) {
		r.dead.release(p.log)
	}
}

// Start starts the new inputs, swaps the output if it changed, and has
// the parts that stay reopen their files and reload their certificates,
// once each.
func (u *Update) Start() error {
	p := u.p
	cur := p.plan.Load()
	// The plan in effect: the new one, with the queue that runs, which is
	// kept until a restart.
	np := u.np
	np.queue, np.queueLine = cur.queue, cur.queueLine
	p.in.start(u.starts)
	p.buffers.SetLimit(np.bufferBytes)
	p.plan.Store(np)
	p.in.setReloading(false)
	// A dead-letter file a new part shares with a running one was not
	// opened again: reopen it too (logrotate may have renamed it).
	var shared []*deadLetter
	for _, b := range u.starts {
		shared = append(shared, b.dead)
	}
	if u.swap {
		shared = append(shared, u.out.codec.dead)
	}
	err := p.reloadParts(u.kept, shared, !u.swap)
	if u.swap {
		p.out.swap(u.out)
	}
	return err
}

// Discard releases an update that will not be applied: what its build
// opened is closed, errors logged.
func (u *Update) Discard() {
	releaseInputs(u.starts, u.p.log)
	u.out.release(u.p.log, time.Second)
}

// Apply stops and starts in one go, for a pipeline on its own.
func (u *Update) Apply() error {
	u.Stop()
	return u.Start()
}

var (
	// errNotRunning is Group.Reload's answer before Run or once the group
	// has stopped.
	errNotRunning = errors.New("flowgo is not running: nothing to reload")
	// errNotStarted is NewUpdate's answer before Run started the inputs.
	errNotStarted = errors.New("the pipeline has not started: nothing to update")
)
