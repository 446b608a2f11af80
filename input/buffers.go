package input

import (
	"container/list"
	"math"
	"sync"
)

// DefaultStreamBufferBytes is the default of stream_buffer_max_bytes.
const DefaultStreamBufferBytes = 64 << 20

// MinStreamBufferBytes and MaxStreamBufferBytes bound
// stream_buffer_max_bytes.
const (
	MinStreamBufferBytes int64 = 256 << 10
	MaxStreamBufferBytes int64 = 64 << 30
)

// Buffers is the memory budget the stream inputs of one pipeline (tcp, tls,
// stdin) share for what they have read and not handed to the queue yet:
// partial frames and read buffers, and the records decoded from them that
// wait for the queue (an estimate: twice the frame, for its decoded and
// encoded copies, plus recordCharge). Each stream keeps a small buffer of
// its own (baseBufferSize, bounded by max_connections); whatever it needs
// beyond that comes from the budget. When the budget is spent, a stream
// that needs more waits, reading nothing, so TCP flow control pushes back
// on its sender, instead of memory growing with the number of connections.
//
// Partial frames may take three quarters of the budget, so that streams
// whose frames are complete can always decode them even when slow senders
// hold the rest with frames they do not finish.
//
// Progress is guaranteed by a reserve: when a waiting stream does not fit,
// the one that has waited longest may go beyond the limit if no other
// stream holds the reserve; it keeps it until it holds no budget again.
// What it takes beyond the limit is what it must have to finish one frame:
// room for the frame, and its records while they wait for the queue; it
// gets nothing beyond the limit for speed. A stream holding the reserve
// never waits for the budget.
//
// A nil *Buffers is unlimited. Safe for concurrent use.
type Buffers struct {
	mu      sync.Mutex
	limit   int
	used    int
	peak    int
	reserve *bufHolder
	waiting [2]*list.List // of *bufWaiter, per bufKind, first come first served
	seq     uint64
}

// bufHolder is what one stream holds of a budget. Its field is guarded by
// the budget's lock.
type bufHolder struct {
	held int
}

// bufKind says what budget is taken for.
type bufKind int

const (
	partialFrames bufKind = iota // read buffers and partial frames
	queuedRecords                // decoded records waiting for the queue
)

type bufWaiter struct {
	h     *bufHolder
	n     int
	seq   uint64
	ready chan struct{}
}

// NewBuffers returns a budget of limit bytes.
func NewBuffers(limit int) *Buffers {
	return &Buffers{limit: limit, waiting: [2]*list.List{list.New(), list.New()}}
}

// SetLimit changes the budget's limit (a reload).
func (b *Buffers) SetLimit(limit int) {
	if b == nil {
		return
	}
	b.mu.Lock()
	b.limit = limit
	b.grantLocked()
	b.mu.Unlock()
}

// Usage returns the bytes held now, the most held so far, and the limit.
func (b *Buffers) Usage() (used, peak, limit int) {
	if b == nil {
		return 0, 0, math.MaxInt
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.used, b.peak, b.limit
}

func (b *Buffers) limitFor(k bufKind) int {
	if k == partialFrames {
		return b.limit - b.limit/4
	}
	return b.limit
}

// acquire takes n bytes for h, waiting while the budget is spent.
func (b *Buffers) acquire(h *bufHolder, n int, k bufKind) {
	if b == nil {
		return
	}
	b.mu.Lock()
	switch {
	case b.reserve == h,
		b.waiting[k].Len() == 0 && b.used+n <= b.limitFor(k),
		b.reserve == nil && b.waiting[0].Len()+b.waiting[1].Len() == 0:
		b.takeLocked(h, n, k)
		b.mu.Unlock()
		return
	}
	b.seq++
	w := &bufWaiter{h: h, n: n, seq: b.seq, ready: make(chan struct{})}
	b.waiting[k].PushBack(w)
	b.mu.Unlock()
	<-w.ready
}

// tryAcquire takes n bytes for h if they fit under the limit now, without
// passing a stream that waits.
func (b *Buffers) tryAcquire(h *bufHolder, n int, k bufKind) bool {
	if b == nil {
		return true
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.waiting[k].Len() > 0 || b.used+n > b.limitFor(k) {
		return false
	}
	b.takeLocked(h, n, k)
	return true
}

// release gives back n bytes of h's.
func (b *Buffers) release(h *bufHolder, n int) {
	if b == nil || n == 0 {
		return
	}
	b.mu.Lock()
	b.used -= n
	h.held -= n
	if h.held == 0 && b.reserve == h {
		b.reserve = nil
	}
	b.grantLocked()
	b.mu.Unlock()
}

func (b *Buffers) takeLocked(h *bufHolder, n int, k bufKind) {
	if b.used+n > b.limitFor(k) {
		b.reserve = h
	}
	b.used += n
	h.held += n
	b.peak = max(b.peak, b.used)
}

// grantLocked wakes the waiters that fit, in order of each kind, and gives
// the reserve, when free, to the one that has waited longest.
func (b *Buffers) grantLocked() {
	for {
		for k := range b.waiting {
			for e := b.waiting[k].Front(); e != nil; e = b.waiting[k].Front() {
				w := e.Value.(*bufWaiter)
				if b.reserve != w.h && b.used+w.n > b.limitFor(bufKind(k)) {
					break
				}
				b.grantOneLocked(e, bufKind(k))
			}
		}
		if b.reserve != nil {
			return
		}
		var first *list.Element
		kind := bufKind(0)
		for k := range b.waiting {
			if e := b.waiting[k].Front(); e != nil && (first == nil || e.Value.(*bufWaiter).seq < first.Value.(*bufWaiter).seq) {
				first, kind = e, bufKind(k)
			}
		}
		if first == nil {
			return
		}
		b.grantOneLocked(first, kind) // beyond the limit: takes the reserve
	}
}

func (b *Buffers) grantOneLocked(e *list.Element, k bufKind) {
	w := e.Value.(*bufWaiter)
	b.waiting[k].Remove(e)
	b.takeLocked(w.h, w.n, k)
	close(w.ready)
}

// Buffer sizes. A stream starts with a buffer of baseBufferSize of its own;
// larger ones come from the budget, in sizes that double from
// minBudgetBuffer up to one frame (max_message_size plus room for a line
// end or an octet count, rounded up to a page), then up to the most a
// fast reader uses.
const (
	baseBufferSize  = 4 << 10
	minBudgetBuffer = 16 << 10
	frameSlack      = 64 // line end, octet count and space
)

// bufferPools recycle the buffers of each size, so that streams growing
// and shrinking do not make garbage.
var bufferPools sync.Map // size -> *sync.Pool of *[]byte

func getBuffer(size int) []byte {
	if p, ok := bufferPools.Load(size); ok {
		if b, ok := p.(*sync.Pool).Get().(*[]byte); ok {
			return *b
		}
	}
	return make([]byte, size)
}

func putBuffer(buf []byte) {
	size := cap(buf)
	p, ok := bufferPools.Load(size)
	if !ok {
		p, _ = bufferPools.LoadOrStore(size, &sync.Pool{})
	}
	buf = buf[:size]
	p.(*sync.Pool).Put(&buf)
}
