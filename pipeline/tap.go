package pipeline

import (
	"bytes"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/flowgo/flowgo"
	"github.com/flowgo/flowgo/encoder"
)

// Tap limits: each tap shows at most tapRate records a second (bursts of
// tapBurst), and holds at most tapBuffer events its reader has not taken.
// What is over is not shown and counted (TapEvent.Lost): a tap never
// waits, so it never slows the pipeline, and never costs more than
// encoding tapRate records a second.
const (
	tapRate   = 1000
	tapBurst  = 1000
	tapBuffer = 1024
)

// TapEvent is one line of a tap's stream (/tap, flowgo tap): a record an
// input decoded or an output delivered, a rejected frame, or a count of
// what was not shown.
type TapEvent struct {
	Pipeline string `json:"pipeline,omitempty"`
	Input    string `json:"input,omitempty"`  // the input that decoded the record or rejected the frame
	Output   string `json:"output,omitempty"` // the output that delivered the record or refused it
	Record   string `json:"record,omitempty"` // the record, encoded
	Origin   string `json:"origin,omitempty"` // of a rejected frame: "peer 10.0.0.1:5123 line 3"
	Reason   string `json:"reason,omitempty"` // why the frame was rejected
	Frame    string `json:"frame,omitempty"`  // the rejected frame
	// Lost counts, since the tap began, the records and frames it did not
	// show: over its rate, or while its reader was behind.
	Lost int64 `json:"lost,omitempty"`
}

// TapFilter says what a tap shows.
type TapFilter struct {
	// Input and Output select one component by name; with neither, every
	// input's records (or every rejected frame).
	Input, Output string
	// Rejected shows rejected frames instead of records.
	Rejected bool
	// Encoder encodes the records shown. Nil for an output shows the
	// frames as the output wrote them, without their framing.
	Encoder encoder.Encoder
}

// Tap watches the records of pipelines; see Pipeline.Tap.
type Tap struct {
	filter TapFilter
	events chan TapEvent
	lost   atomic.Int64

	mu     sync.Mutex // the rate's bucket
	tokens float64
	last   time.Time
}

// NewTap returns a tap with filter f, to attach to pipelines.
func NewTap(f TapFilter) *Tap {
	return &Tap{filter: f, events: make(chan TapEvent, tapBuffer), tokens: tapBurst, last: time.Now()}
}

// Events returns the tap's stream.
func (t *Tap) Events() <-chan TapEvent { return t.events }

// Lost returns how many records and frames the tap did not show.
func (t *Tap) Lost() int64 { return t.lost.Load() }

// take returns how many of n records to show now: what the rate and the
// free room allow. The rest is counted lost.
func (t *Tap) take(n int) int {
	t.mu.Lock()
	now := time.Now()
	t.tokens = min(tapBurst, t.tokens+now.Sub(t.last).Seconds()*tapRate)
	t.last = now
	k := min(n, int(t.tokens), cap(t.events)-len(t.events))
	t.tokens -= float64(k)
	t.mu.Unlock()
	if k < n {
		t.lost.Add(int64(n - k))
	}
	return k
}

func (t *Tap) send(e TapEvent) {
	select {
	case t.events <- e:
	default: // another writer took the room
		t.lost.Add(1)
	}
}

// tapHub holds a pipeline's taps. The hot path only loads on (once per
// batch): with nobody tapping, tapping costs nothing else.
type tapHub struct {
	on   atomic.Bool
	mu   sync.Mutex
	taps []*Tap
}

func (h *tapHub) snapshot() []*Tap {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.taps
}

// Tap attaches t to p until the returned function is called.
func (p *Pipeline) Tap(t *Tap) (stop func()) {
	h := &p.taps
	h.mu.Lock()
	h.taps = append(h.taps[:len(h.taps):len(h.taps)], t) // copy on write: snapshots stay valid
	h.on.Store(true)
	h.mu.Unlock()
	return func() {
		h.mu.Lock()
		defer h.mu.Unlock()
		kept := make([]*Tap, 0, len(h.taps))
		for _, o := range h.taps {
			if o != t {
				kept = append(kept, o)
			}
		}
		h.taps = kept
		h.on.Store(len(kept) > 0)
	}
}

// InputNames returns the names of the pipeline's running inputs.
func (p *Pipeline) InputNames() []string { return p.in.names() }

// OutputName returns the name of the pipeline's output.
func (p *Pipeline) OutputName() string { return p.out.name() }

// tapInput shows records an input decoded, before they are queued.
func (p *Pipeline) tapInput(input string, b *flowgo.Batch) {
	for _, t := range p.taps.snapshot() {
		f := &t.filter
		if f.Rejected || f.Output != "" || (f.Input != "" && f.Input != input) {
			continue
		}
		n := t.take(len(b.Records))
		for _, i := range spread(n, len(b.Records)) {
			data, err := f.Encoder.Encode(make([]byte, 0, 512), &b.Records[i])
			if err != nil {
				t.lost.Add(1)
				continue
			}
			t.send(TapEvent{Pipeline: p.Name, Input: input, Record: string(data)})
		}
	}
}

// tapOutput shows records the output delivered.
func (p *Pipeline) tapOutput(out string, framing flowgo.Framing, b *flowgo.Batch) {
	for _, t := range p.taps.snapshot() {
		f := &t.filter
		if f.Rejected || f.Output != out {
			continue
		}
		n := t.take(b.Frames())
		for _, i := range spread(n, b.Frames()) {
			var rec string
			if f.Encoder == nil {
				rec = string(unframe(framing, b.Frame(i)))
			} else {
				data, err := f.Encoder.Encode(make([]byte, 0, 512), &b.Records[b.Index[i]])
				if err != nil {
					t.lost.Add(1)
					continue
				}
				rec = string(data)
			}
			t.send(TapEvent{Pipeline: p.Name, Output: out, Record: rec})
		}
	}
}

// tapReject shows a rejected frame; component is an input's name, or
// "output" for what the encoder or the output refused.
func (p *Pipeline) tapReject(component, origin string, frame []byte, err error) {
	for _, t := range p.taps.snapshot() {
		f := &t.filter
		e := TapEvent{Pipeline: p.Name, Input: component}
		if component == "output" {
			e.Input, e.Output = "", p.out.name()
		}
		if !f.Rejected || (f.Input != "" && f.Input != e.Input) || (f.Output != "" && f.Output != e.Output) {
			continue
		}
		if t.take(1) == 0 {
			continue
		}
		e.Origin, e.Reason, e.Frame = origin, err.Error(), string(frame)
		t.send(e)
	}
}

// spread returns k indices spread evenly over [0, n): a sample, not the
// first k, when a batch holds more than the tap may show.
func spread(k, n int) []int {
	out := make([]int, k)
	for j := range out {
		out[j] = j * n / k
	}
	return out
}

// unframe returns the record of an encoded frame, without the output's
// framing (escapes inside the record stay).
func unframe(framing flowgo.Framing, frame []byte) []byte {
	switch framing {
	case flowgo.FramingLine:
		return bytes.TrimSuffix(frame, []byte{'\n'})
	case flowgo.FramingNUL:
		return bytes.TrimSuffix(frame, []byte{0})
	case flowgo.FramingSyslen:
		if i := bytes.IndexByte(frame, ' '); i > 0 {
			if _, err := strconv.Atoi(string(frame[:i])); err == nil {
				return frame[i+1:]
			}
		}
	}
	return frame
}
