package pipeline

import (
	"context"
	"log/slog"
	"time"

	"github.com/flowgo/flowgo"
	"github.com/flowgo/flowgo/encoder"
	"github.com/flowgo/flowgo/input"
	"github.com/flowgo/flowgo/output"
)

// Building makes the components a plan describes: each input and the
// output from its Builder, with its dead-letter file opened. Nothing
// listens or connects yet: inputs listen in Run, outputs connect in Write.

// builtInput is an input made from its plan, not started yet.
type builtInput struct {
	plan *inputPlan
	in   input.Input
	dead *deadLetter
}

// activeOutput is an output made from its plan, with how records are
// encoded and framed for it.
type activeOutput struct {
	plan  *outputPlan
	out   output.Output
	codec *codec
}

// codec is how records become frames for an output. Inputs read it to encode
// (inputSink.Prepare); gen tells batches encoded for an output that a reload
// has since replaced, which the output stage encodes again.
type codec struct {
	enc     encoder.Encoder
	format  string
	framing flowgo.Framing
	dead    *deadLetter
	gen     uint64 // set by the output stage when the output takes effect
}

// buildInput makes the input ip describes and opens its dead-letter file.
func buildInput(ip *inputPlan, dead *deadLetters, log *slog.Logger) (*builtInput, error) {
	d, err := dead.acquire(ip.dead)
	if err != nil {
		return nil, err
	}
	in, err := ip.builder.Build()
	if err != nil {
		d.release(log)
		return nil, err
	}
	return &builtInput{plan: ip, in: in, dead: d}, nil
}

// buildOutput makes the output op describes and opens its dead-letter file.
func buildOutput(op *outputPlan, dead *deadLetters, log *slog.Logger) (*activeOutput, error) {
	d, err := dead.acquire(op.dead)
	if err != nil {
		return nil, err
	}
	out, err := op.builder.Build()
	if err != nil {
		d.release(log)
		return nil, err
	}
	return &activeOutput{plan: op, out: out, codec: &codec{enc: op.enc, format: op.format, framing: op.framing, dead: d}}, nil
}

// buildInputs builds each input of ips; on an error it releases those it
// built.
func buildInputs(ips []*inputPlan, dead *deadLetters, log *slog.Logger) ([]*builtInput, error) {
	var out []*builtInput
	for _, ip := range ips {
		b, err := buildInput(ip, dead, log)
		if err != nil {
			releaseInputs(out, log)
			return nil, err
		}
		out = append(out, b)
	}
	return out, nil
}

// releaseInputs releases inputs that were built but will not run: inputs
// hold nothing until they run, but their dead-letter files are open.
func releaseInputs(ins []*builtInput, log *slog.Logger) {
	for _, b := range ins {
		b.dead.release(log)
	}
}

// release closes an output that was built but will not run, or has run and
// been replaced, within timeout; an error closing it is logged, not dropped.
func (a *activeOutput) release(log *slog.Logger, timeout time.Duration) {
	if a == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	if err := a.out.Close(ctx); err != nil {
		log.Error("closing an output that will not run", "output", a.plan.name, "error", err)
	}
	a.codec.dead.release(log)
}
