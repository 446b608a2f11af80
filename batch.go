package flowgo

import (
	"sync"
	"unsafe"
)

// Batch is the unit that travels through the pipeline: the records an input
// decoded, the arena their memory lives in, and, once the pipeline has encoded
// them for the output, the framed bytes.
//
// One goroutine owns a batch at a time: the input that fills it, then the
// queue, then the output stage. Batches are recycled (GetBatch, PutBatch), so
// nothing may refer to a batch or its records after handing it on.
type Batch struct {
	Records []Record
	Arena   Arena

	// Data holds the encoded, framed records for the output; frame i is
	// Data[Ends[i-1]:Ends[i]] (Data[:Ends[0]] for i = 0) and came from
	// Records[Index[i]]. Records that failed to encode have no frame.
	Data  []byte
	Ends  []int
	Index []int
	// Encoded is set once Data holds the records' frames, made by the
	// pipeline's encoder number EncodedGen.
	Encoded    bool
	EncodedGen uint64

	// BytesIn counts the raw bytes the input read for these records.
	BytesIn int
	// Source names the input the batch came from, for logs and metrics.
	Source string

	// ID is the batch's delivery identity, given by the pipeline's output
	// stage before the first Write and kept across the retries of that
	// Write: an output that sees the ID of a Write that failed knows it is
	// the retry of that batch, however batches are pooled or combined. Each
	// new batch handed to an output gets a new ID; 0 is never used.
	ID uint64
	// QueuePos is where the batch's records end in a disk queue; the queue
	// sets it when it reads the batch and confirms up to it in Done. The
	// memory queue leaves it zero.
	QueuePos QueuePos

	// The share of the queue's budget the batch holds (see Queue.Put).
	queueRecords, queueBytes int
}

// Next appends a reset record to b and returns a pointer to it. The pointer
// is valid until the next call to Next.
func (b *Batch) Next() *Record {
	if len(b.Records) < cap(b.Records) {
		b.Records = b.Records[:len(b.Records)+1]
	} else {
		b.Records = append(b.Records, Record{})
	}
	r := &b.Records[len(b.Records)-1]
	r.Reset()
	return r
}

// Drop removes the last record, the one a failed decode left behind.
func (b *Batch) Drop() {
	b.Records = b.Records[:len(b.Records)-1]
}

// Len returns the number of records.
func (b *Batch) Len() int { return len(b.Records) }

// Frames returns the number of encoded frames.
func (b *Batch) Frames() int { return len(b.Ends) }

// Frame returns encoded frame i.
func (b *Batch) Frame(i int) []byte {
	start := 0
	if i > 0 {
		start = b.Ends[i-1]
	}
	return b.Data[start:b.Ends[i]]
}

// Size returns the memory the batch holds, for the queue's byte budget:
// its arena's chunks, its record slots and its frame buffer, whole, since a
// batch of one record still pins them.
func (b *Batch) Size() int {
	return b.Arena.Footprint() + cap(b.Records)*recordSize + cap(b.Data) + (cap(b.Ends)+cap(b.Index))*8
}

// ResetEncoded forgets the encoded frames, keeping their buffers.
func (b *Batch) ResetEncoded() {
	b.Data = b.Data[:0]
	b.Ends = b.Ends[:0]
	b.Index = b.Index[:0]
	b.Encoded = false
}

// Reset empties b for reuse. Everything its records pointed to becomes invalid.
func (b *Batch) Reset() {
	// Next resets each record it hands out; zeroing them here matters
	// only for what the arena lets go (see Arena.reset).
	if b.Arena.reset() {
		clear(b.Records)
	}
	b.Records = b.Records[:0]
	b.ResetEncoded()
	b.BytesIn = 0
	b.Source = ""
	b.ID = 0
	b.QueuePos = QueuePos{}
}

// QueuePos is a place in a disk queue: a segment and a byte offset in it.
type QueuePos struct {
	Segment uint64
	Offset  int64
}

// Less reports whether p comes before q.
func (p QueuePos) Less(q QueuePos) bool {
	return p.Segment < q.Segment || p.Segment == q.Segment && p.Offset < q.Offset
}

var recordSize = int(unsafe.Sizeof(Record{}))

var batchPool = sync.Pool{New: func() any { return new(Batch) }}

// GetBatch returns an empty batch, recycled when possible.
func GetBatch() *Batch {
	return batchPool.Get().(*Batch)
}

// PutBatch resets b and recycles it. b must not be used afterwards.
func PutBatch(b *Batch) {
	if b == nil {
		return
	}
	// A batch that grew far beyond the usual size is let go rather than pinned.
	if cap(b.Records) > 1<<16 || cap(b.Data) > 64<<20 {
		return
	}
	b.Reset()
	batchPool.Put(b)
}
