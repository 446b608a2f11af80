package input

import (
	"net/netip"
	"sync/atomic"

	"github.com/flowgo/flowgo"
	"github.com/flowgo/flowgo/decoder"
)

// Batcher decodes frames into a batch and hands the batch to the sink when
// it is full or when Flush is called. Stream inputs keep one per connection
// and call Flush before each blocking read (Splitter.BeforeRead). A Batcher
// is not safe for concurrent use.
type Batcher struct {
	dec        decoder.Decoder
	sink       Sink
	source     string
	maxRecords int
	maxBytes   int
	b          *flowgo.Batch
	lost       atomic.Bool
	peerField  string
	peer       string
	// od is dec when it can use the sender's address (decoder.Origin),
	// which is addr.
	od   decoder.OriginDecoder
	addr netip.Addr

	// The budget the batches take from until the queue has them (see
	// Buffers), when set: charged is what the batch being built holds,
	// estimate what its records are reckoned to take.
	mem      *Buffers
	hold     *bufHolder
	charged  int
	estimate int

	// With Pipelined: the batches on their way to the handing-over goroutine.
	handover chan handed
	done     chan struct{}
}

// handed is a batch on its way to the queue, with the budget it holds.
type handed struct {
	b      *flowgo.Batch
	charge int
}

// Budget charges: a record is reckoned at twice its frame (decoded, then
// encoded) plus recordCharge; budget is taken in steps of chargeStep.
const (
	recordCharge = 256
	chargeStep   = 32 << 10
)

// Pipelined makes the batcher hand its batches to a goroutine of its own,
// which has the pipeline encode them (Sink.Put does) and queues them, in
// order. One connection then keeps two cores busy: its reading goroutine
// decodes the next batch while this one encodes the last. Backpressure is
// kept: when the queue is full this goroutine waits, Flush then waits, and
// the connection stops reading; at most two batches are on their way.
// Release must be called to stop the goroutine.
func (bt *Batcher) Pipelined() {
	bt.handover = make(chan handed, 1)
	bt.done = make(chan struct{})
	go func() {
		defer close(bt.done)
		for h := range bt.handover {
			if err := bt.sink.Put(h.b); err != nil {
				bt.lost.Store(true)
			}
			bt.mem.release(bt.hold, h.charge)
		}
	}()
}

// useBudget makes the batcher take budget from mem, as h, for its records
// until the queue has them.
func (bt *Batcher) useBudget(mem *Buffers, h *bufHolder) { bt.mem, bt.hold = mem, h }

// charge makes sure the batch holds budget for a record of frame. When
// the budget is spent it hands the batch over, then waits for room for the
// record: the connection stops reading meanwhile.
func (bt *Batcher) charge(frame []byte) {
	cost := 2*len(frame) + recordCharge
	if bt.estimate+cost <= bt.charged {
		return
	}
	step := max(bt.estimate+cost-bt.charged, chargeStep)
	if bt.mem.tryAcquire(bt.hold, step, queuedRecords) {
		bt.charged += step
		return
	}
	if bt.b != nil && bt.b.Len() > 0 {
		bt.Flush() // the records built so far go; this one waits
	}
	step = bt.estimate + cost - bt.charged
	bt.mem.acquire(bt.hold, step, queuedRecords)
	bt.charged += step
}

// SetPeer makes every record decoded from now on carry the sender's address
// addr as a parameter named field (input.peer_field), in a structured-data
// element of its own with an empty ID. An empty field turns it off. Whatever
// the field, addr ("host:port") is also the sender the decoder is given as
// its decoder.Origin: the hostname of an RFC 3164 line without a header.
func (bt *Batcher) SetPeer(field, addr string) {
	bt.peerField, bt.peer = field, addr
	bt.addr = netip.Addr{}
	if ap, err := netip.ParseAddrPort(addr); err == nil {
		bt.addr = ap.Addr()
	}
}

// PeerAddr implements decoder.Origin: the sender given to SetPeer.
func (bt *Batcher) PeerAddr() netip.Addr { return bt.addr }

// NewBatcher returns a batcher decoding with dec into batches of at most
// maxRecords records and about maxBytes bytes, named source.
func NewBatcher(dec decoder.Decoder, sink Sink, source string, maxRecords, maxBytes int) *Batcher {
	od, _ := dec.(decoder.OriginDecoder)
	return &Batcher{dec: dec, od: od, sink: sink, source: source, maxRecords: max(maxRecords, 1), maxBytes: max(maxBytes, 1)}
}

// Add decodes frame, counting rawLen bytes as read when it decodes. On a
// decode error the frame is left to the caller, which rejects it with its
// origin. (The tcp and tls inputs pass 0: they count every byte they read,
// as they read it, through ByteCounter.)
func (bt *Batcher) Add(frame []byte, rawLen int) error {
	if bt.mem != nil {
		bt.charge(frame)
	}
	if bt.b == nil {
		bt.b = flowgo.GetBatch()
		bt.b.Source = bt.source
	}
	b := bt.b
	r := b.Next()
	var err error
	if bt.od != nil {
		err = bt.od.DecodeFrom(frame, bt, r, &b.Arena)
	} else {
		err = bt.dec.Decode(frame, r, &b.Arena)
	}
	if err != nil {
		b.Drop()
		return err
	}
	b.BytesIn += rawLen
	bt.estimate += 2*len(frame) + recordCharge
	if bt.peerField != "" {
		AddPeer(r, &b.Arena, bt.peerField, bt.peer)
	}
	if b.Len() >= bt.maxRecords || b.Arena.Size() >= bt.maxBytes {
		bt.Flush()
	}
	return nil
}

// Flush hands the current batch, if it holds records, to the sink. It
// returns false once the pipeline has refused a batch (it is stopping);
// when Pipelined, that is learnt one batch later.
func (bt *Batcher) Flush() bool {
	if bt.b == nil || bt.b.Len() == 0 {
		return !bt.lost.Load()
	}
	b, charge := bt.b, bt.charged
	bt.b, bt.charged, bt.estimate = nil, 0, 0
	if bt.handover != nil {
		bt.handover <- handed{b, charge}
		return !bt.lost.Load()
	}
	if err := bt.sink.Put(b); err != nil {
		bt.lost.Store(true)
	}
	bt.mem.release(bt.hold, charge)
	return !bt.lost.Load()
}

// Release hands over what the current batch holds, returns an unused
// batch to the pool and, when Pipelined, waits until every batch flushed
// is handed over. Call it when done. Records are never dropped here: a
// batch the pipeline refuses (it is stopping for good) is counted as lost
// by the sink.
func (bt *Batcher) Release() {
	if bt.b != nil && bt.b.Len() > 0 {
		bt.Flush()
	}
	if bt.b != nil {
		flowgo.PutBatch(bt.b)
		bt.b = nil
	}
	if bt.handover != nil {
		close(bt.handover)
		<-bt.done
		bt.handover = nil
	}
	bt.mem.release(bt.hold, bt.charged)
	bt.charged, bt.estimate = 0, 0
}

// AddPeer appends a structured-data element holding the parameter
// field=addr to r, in arena memory.
func AddPeer(r *flowgo.Record, a *flowgo.Arena, field, addr string) {
	var tmp [8]flowgo.SDElement
	elems := append(tmp[:0], r.SD...)
	elems = append(elems, flowgo.SDElement{Params: a.Params([]flowgo.Param{{Name: field, Value: flowgo.StringValue(addr)}})})
	r.SD = a.Elems(elems)
}
