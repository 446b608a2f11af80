package pipeline

import (
	"context"
	"errors"
	"time"

	"github.com/flowgo/flowgo/config"
	"github.com/flowgo/flowgo/input"
)

// Update is a new configuration for a running pipeline, built and
// validated, not applied yet. Applying takes two steps, so that a group of
// pipelines can first stop every input that goes away and then start the new
// ones: an address can move from one input, or pipeline, to another.
type Update struct {
	p      *Pipeline
	np     *plan
	stops  []string     // inputs to stop: changed or removed
	starts []*inputPlan // inputs to start: changed or added
	kept   []*inputRun  // running inputs that stay
	// handover names the stopped inputs whose successor listens on the
	// same address: they leave it their socket.
	handover map[string]bool
	swap     bool // the output changed
}

// NewUpdate builds f for p. Nothing changes until Stop and Start; an update
// that will not be applied must be Discarded.
func (p *Pipeline) NewUpdate(f *config.File) (*Update, error) {
	p.mu.Lock()
	buffers := p.plan.buffers
	p.mu.Unlock()
	np, err := buildPlan(f, p.opts, p.log, buffers)
	if err != nil {
		return nil, err
	}
	u := &Update{p: p, np: np}
	p.mu.Lock()
	defer p.mu.Unlock()
	old := map[string]*inputPlan{}
	for _, ip := range p.plan.inputs {
		old[ip.name] = ip
	}
	for _, ip := range np.inputs {
		o := old[ip.name]
		delete(old, ip.name)
		if o != nil && o.text == ip.text && o.typ == ip.typ {
			if r := p.inputs[o.name]; r != nil {
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
		u.starts = append(u.starts, ip)
	}
	for name := range old {
		u.stops = append(u.stops, name)
	}
	u.swap = p.plan.out.text != np.out.text
	if np.queueSize != p.plan.queueSize || np.queueBytes != p.plan.queueBytes {
		p.log.Warn("queuesize and queue_max_bytes changes take effect at the next restart")
	}
	if np.queue != p.plan.queue {
		p.log.Warn("[queue] changes take effect at the next restart: the running queue is kept", "queue", p.plan.queue.Type, "path", p.plan.queue.Path)
	}
	return u, nil
}

// Changed reports whether applying u stops, starts or replaces anything.
func (u *Update) Changed() bool { return len(u.stops) > 0 || len(u.starts) > 0 || u.swap }

// Stop stops the inputs u changes or removes; they hand over what they
// received before they return.
func (u *Update) Stop() {
	p := u.p
	p.mu.Lock()
	p.reloading = true
	p.mu.Unlock()
	p.stopInputs(u.stops, u.handover)
	p.mu.Lock()
	for _, name := range u.stops {
		if r := p.inputs[name]; r != nil {
			r.plan.dead.release(p.log)
			delete(p.inputs, name)
		}
	}
	p.mu.Unlock()
}

// Start starts the new inputs, swaps the output if it changed, and has
// the parts that stay reopen their files and reload their certificates.
func (u *Update) Start() error {
	p := u.p
	keptPlans := map[string]*inputPlan{}
	for _, r := range u.kept {
		keptPlans[r.plan.name] = r.plan
	}
	// The current plan: the new one, with the running objects of what stays.
	np := *u.np
	np.inputs = nil
	np.queue, np.queueLine = p.plan.queue, p.plan.queueLine // kept until a restart
	for _, ip := range u.np.inputs {
		if k := keptPlans[ip.name]; k != nil {
			ip.dead.release(p.log) // the new, unused plan's reference
			np.inputs = append(np.inputs, k)
		} else {
			np.inputs = append(np.inputs, ip)
		}
	}
	p.mu.Lock()
	for _, ip := range u.starts {
		p.startInputLocked(ip, false)
	}
	oldOut := p.plan.out
	if !u.swap {
		np.out = oldOut
	}
	p.plan = &np
	np.buffers.SetLimit(np.bufferBytes)
	p.reloading = false
	if p.running == 0 {
		select {
		case p.idle <- struct{}{}:
		default:
		}
	}
	p.mu.Unlock()

	var errs []error
	for _, r := range u.kept {
		if rl, ok := r.plan.input.(input.Reloader); ok {
			if err := rl.Reload(); err != nil {
				errs = append(errs, err)
			}
		}
	}
	if !u.swap {
		// The new output was built only to compare; it never ran.
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		u.np.out.out.Close(ctx)
		cancel()
		u.np.out.codec.dead.release(p.log)
		if err := p.Reload(); err != nil {
			errs = append(errs, err)
		}
		return errors.Join(errs...)
	}
	sw := &swapRequest{out: u.np.out, done: make(chan struct{})}
	select {
	case p.swaps <- sw:
		<-sw.done
	case <-p.hardCtx.Done():
	}
	return errors.Join(errs...)
}

// Discard releases an update that will not be applied.
func (u *Update) Discard() {
	u.np.release(u.p.log)
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	u.np.out.out.Close(ctx)
}

// Apply stops and starts in one go, for a pipeline on its own.
func (u *Update) Apply() error {
	u.Stop()
	return u.Start()
}
