package pipeline

import (
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/flowgo/flowgo"
	"github.com/flowgo/flowgo/decoder"
	"github.com/flowgo/flowgo/input"
	"github.com/flowgo/flowgo/queue"
)

// inputCounters counts one input's records for metrics. An input keeps its
// counters across reloads (they are found by the input's name), so that the
// series stay monotonic.
type inputCounters struct {
	typ      string
	received atomic.Int64
	bytes    atomic.Int64
	batches  atomic.Int64
	lost     atomic.Int64

	// Rejected frames by reason.
	rejDecode  atomic.Int64
	rejTooLong atomic.Int64
	rejFraming atomic.Int64
	rejOther   atomic.Int64

	dropMu  sync.Mutex
	dropped map[string]*atomic.Int64 // by reason

	conns input.ConnCounter   // nil for inputs without connections
	own   input.CounterSource // nil for inputs without counters of their own
}

func (c *inputCounters) drop(reason string, n int) {
	reason = metricReason(reason)
	c.dropMu.Lock()
	if c.dropped == nil {
		c.dropped = map[string]*atomic.Int64{}
	}
	ctr := c.dropped[reason]
	if ctr == nil {
		ctr = new(atomic.Int64)
		c.dropped[reason] = ctr
	}
	c.dropMu.Unlock()
	ctr.Add(int64(n))
}

// metricReason turns a free-text reason ("queue full") into a label value
// ("queue_full").
func metricReason(s string) string {
	s = strings.ToLower(strings.TrimSpace(s))
	var b strings.Builder
	for _, r := range s {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' {
			b.WriteRune(r)
		} else if b.Len() > 0 && !strings.HasSuffix(b.String(), "_") {
			b.WriteByte('_')
		}
	}
	out := strings.TrimSuffix(b.String(), "_")
	if out == "" {
		return "other"
	}
	return out
}

// inputSink is the pipeline as one input sees it.
type inputSink struct {
	p    *Pipeline
	name string
	dead *deadLetter
	ctr  *inputCounters
}

// Prepare encodes b for the output, on the input's goroutine, so that
// encoding runs in parallel. A disk queue stores records, not frames: its
// reader encodes what it reads back, for the output of the moment; only
// while it keeps up (its fast path hands it the batches put, as they are)
// is encoding here worth it, and only while other inputs' Puts are under
// way: one input alone has its goroutine write the batch to disk after
// encoding it, and leaving the encoding to the reader's side (which runs
// it beside the next batch's write) was 5-20% faster with 1 connection,
// the same with 4 (bench/README.md, "Disk queue").
func (s *inputSink) Prepare(b *flowgo.Batch) {
	if !b.Encoded && (s.p.disk == nil || s.p.disk.CaughtUp() && s.p.disk.Busy()) {
		s.p.encode(b)
	}
}

func (s *inputSink) Put(b *flowgo.Batch) error {
	s.Prepare(b)
	if s.p.taps.on.Load() {
		s.p.tapInput(s.name, b)
	}
	n, bytesIn := b.Len(), b.BytesIn
	if err := s.p.queue.Put(s.p.hardCtx, b); err != nil {
		if errors.Is(err, queue.ErrNotSynced) {
			// Written, so queued (and the queue's), but not known
			// durable: the input must not acknowledge it.
			s.accepted(n, bytesIn)
			return err
		}
		s.p.stats.Lost.Add(int64(n))
		s.ctr.lost.Add(int64(n))
		flowgo.PutBatch(b)
		return err
	}
	s.accepted(n, bytesIn)
	return nil
}

func (s *inputSink) accepted(n, bytesIn int) {
	s.p.stats.Received.Add(int64(n))
	s.p.stats.BytesIn.Add(int64(bytesIn))
	s.ctr.received.Add(int64(n))
	s.ctr.bytes.Add(int64(bytesIn))
	s.ctr.batches.Add(1)
}

func (s *inputSink) Reject(origin string, frame []byte, err error) {
	s.p.stats.Rejected.Add(1)
	var de *decoder.Error
	var fe *input.FrameError
	switch {
	case errors.As(err, &de):
		s.ctr.rejDecode.Add(1)
		if looksOctetCounted(frame) {
			err = fmt.Errorf("%w (the frame starts like RFC 6587 octet counting: set framing = \"syslen\" or \"auto\")", err)
		}
	case errors.Is(err, input.ErrFrameTooLong):
		s.ctr.rejTooLong.Add(1)
	case errors.As(err, &fe):
		s.ctr.rejFraming.Add(1)
	default:
		s.ctr.rejOther.Add(1)
	}
	s.p.reject(s.name, origin, frame, err, s.dead)
}

// CountBytes implements input.ByteCounter: stream inputs count the bytes
// they read here, as they read them.
func (s *inputSink) CountBytes(n int) {
	s.p.stats.BytesIn.Add(int64(n))
	s.ctr.bytes.Add(int64(n))
}

// looksOctetCounted reports whether a frame begins "123 <", the mark of an
// octet-counted stream read with line framing.
func looksOctetCounted(frame []byte) bool {
	i := 0
	for i < len(frame) && i < 10 && frame[i] >= '0' && frame[i] <= '9' {
		i++
	}
	return i > 0 && i+1 < len(frame) && frame[i] == ' ' && frame[i+1] == '<'
}

func (s *inputSink) Dropped(n int, reason string) {
	s.p.stats.Dropped.Add(int64(n))
	s.ctr.drop(reason, n)
	s.p.dropLog.Event(slog.LevelWarn, "records dropped", s.name, errors.New(reason), "count", n)
}
