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

	// With Pipelined: the batches on their way to the handing-over goroutine.
	handover chan *flowgo.Batch
	done     chan struct{}
}

// Pipelined makes the batcher hand its batches to a goroutine of its own,
// which has the pipeline encode them (Sink.Put does) and queues them, in
// order. One connection then keeps two cores busy: its reading goroutine
// decodes the next batch while this one encodes the last. Backpressure is
// kept: when the queue is full this goroutine waits, Flush then waits, and
// the connection stops reading; at most two batches are on their way.
// Release must be called to stop the goroutine.
func (bt *Batcher) Pipelined() {
	bt.handover = make(chan *flowgo.Batch, 1)
	bt.done = make(chan struct{})
	go func() {
		defer close(bt.done)
		for b := range bt.handover {
			if err := bt.sink.Put(b); err != nil {
				bt.lost.Store(true)
			}
		}
	}()
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

// Add decodes frame, counting rawLen bytes as read. On a decode error the
// frame is left to the caller, which rejects it with its origin.
func (bt *Batcher) Add(frame []byte, rawLen int) error {
	if bt.b == nil {
		bt.b = flowgo.GetBatch()
		bt.b.Source = bt.source
	}
	b := bt.b
	b.BytesIn += rawLen
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
	b := bt.b
	bt.b = nil
	if bt.handover != nil {
		bt.handover <- b
		return !bt.lost.Load()
	}
	if err := bt.sink.Put(b); err != nil {
		bt.lost.Store(true)
	}
	return !bt.lost.Load()
}

// Release returns an unused batch to the pool and, when Pipelined, waits
// until every batch flushed is handed over. Call it when done, after the
// last Flush.
func (bt *Batcher) Release() {
	if bt.b != nil && bt.b.Len() == 0 {
		flowgo.PutBatch(bt.b)
		bt.b = nil
	}
	if bt.handover != nil {
		close(bt.handover)
		<-bt.done
		bt.handover = nil
	}
}

// AddPeer appends a structured-data element holding the parameter
// field=addr to r, in arena memory.
func AddPeer(r *flowgo.Record, a *flowgo.Arena, field, addr string) {
	var tmp [8]flowgo.SDElement
	elems := append(tmp[:0], r.SD...)
	elems = append(elems, flowgo.SDElement{Params: a.Params([]flowgo.Param{{Name: field, Value: flowgo.StringValue(addr)}})})
	r.SD = a.Elems(elems)
}
