package flowgo

import (
	"container/list"
	"context"
	"errors"
	"sync"
)

// ErrQueueClosed is returned by Put after Close.
var ErrQueueClosed = errors.New("queue closed")

// Queue is the bounded hand-over between inputs and the output stage. It
// bounds what the pipeline holds twice: in records (Flowgger's queuesize) and
// in bytes, so that a flood of maximum-size frames cannot exhaust memory.
//
// A batch takes its share of the budget in Put and gives it back in Done,
// which the output stage calls once the batch is delivered (or reported
// lost), so batches being written count too. Put blocks while the budget is
// spent: that is the backpressure stream inputs pass on to their senders.
// Waiting producers are served in arrival order.
type Queue struct {
	ch chan *Batch

	mu         sync.Mutex
	maxRecords int
	maxBytes   int
	records    int
	bytes      int
	waiters    list.List // of *queueWaiter
	closed     bool
}

type queueWaiter struct {
	records, bytes int
	ready          chan struct{}
}

// NewQueue returns a queue that holds at most maxRecords records and about
// maxBytes bytes (a single batch larger than either is still admitted, alone).
func NewQueue(maxRecords, maxBytes int) *Queue {
	maxRecords = max(maxRecords, 1)
	maxBytes = max(maxBytes, 1)
	return &Queue{
		ch:         make(chan *Batch, min(maxRecords, 1<<16)),
		maxRecords: maxRecords,
		maxBytes:   maxBytes,
	}
}

// share is what b takes from the budget, clamped so that it always fits an
// empty queue.
func (q *Queue) share(b *Batch) (records, bytes int) {
	return min(max(b.Len(), 1), q.maxRecords), min(b.Size(), q.maxBytes)
}

// Put waits until the budget has room for b, then enqueues it. It returns
// ctx.Err() if ctx ends first, and ErrQueueClosed after Close; in both cases
// b was not enqueued and still belongs to the caller.
func (q *Queue) Put(ctx context.Context, b *Batch) error {
	n, sz := q.share(b)
	b.queueRecords, b.queueBytes = n, sz
	q.mu.Lock()
	if q.closed {
		q.mu.Unlock()
		return ErrQueueClosed
	}
	if q.waiters.Len() == 0 && q.fits(n, sz) {
		q.records += n
		q.bytes += sz
		q.mu.Unlock()
	} else {
		w := &queueWaiter{records: n, bytes: sz, ready: make(chan struct{})}
		elem := q.waiters.PushBack(w)
		q.mu.Unlock()
		select {
		case <-w.ready:
		case <-ctx.Done():
			q.mu.Lock()
			select {
			case <-w.ready:
				// Granted while we were giving up: give it back.
				q.records -= n
				q.bytes -= sz
			default:
				q.waiters.Remove(elem)
			}
			q.notifyLocked()
			q.mu.Unlock()
			return ctx.Err()
		}
	}
	select {
	case q.ch <- b:
		return nil
	case <-ctx.Done():
		q.release(n, sz)
		return ctx.Err()
	}
}

func (q *Queue) fits(n, sz int) bool {
	if q.records == 0 {
		return true
	}
	return q.records+n <= q.maxRecords && q.bytes+sz <= q.maxBytes
}

// notifyLocked admits waiters from the front of the line while they fit.
func (q *Queue) notifyLocked() {
	for {
		front := q.waiters.Front()
		if front == nil {
			return
		}
		w := front.Value.(*queueWaiter)
		if !q.fits(w.records, w.bytes) {
			return
		}
		q.records += w.records
		q.bytes += w.bytes
		q.waiters.Remove(front)
		close(w.ready)
	}
}

func (q *Queue) release(n, sz int) {
	q.mu.Lock()
	q.records -= n
	q.bytes -= sz
	q.notifyLocked()
	q.mu.Unlock()
}

// Batches returns the channel the output stage receives from. It is closed
// by Close.
func (q *Queue) Batches() <-chan *Batch { return q.ch }

// Done gives back the budget b took in Put. Call it once per batch received,
// after the batch is delivered or reported lost, and before b is reused.
func (q *Queue) Done(b *Batch) {
	q.release(b.queueRecords, b.queueBytes)
	b.queueRecords, b.queueBytes = 0, 0
}

// Close closes the channel returned by Batches. Call it only after every
// producer's Put has returned; later Puts fail with ErrQueueClosed.
func (q *Queue) Close() {
	q.mu.Lock()
	if !q.closed {
		q.closed = true
		close(q.ch)
	}
	q.mu.Unlock()
}

// Usage returns the records and bytes the queue holds now (including batches
// the output stage is writing) and its limits.
func (q *Queue) Usage() (records, bytes, maxRecords, maxBytes int) {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.records, q.bytes, q.maxRecords, q.maxBytes
}
