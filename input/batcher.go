package input

import (
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
	lost       bool
	peerField  string
	peer       string
}

// SetPeer makes every record decoded from now on carry the sender's address
// addr as a parameter named field (input.peer_field), in a structured-data
// element of its own with an empty ID. An empty field turns it off.
func (bt *Batcher) SetPeer(field, addr string) {
	bt.peerField, bt.peer = field, addr
}

// NewBatcher returns a batcher decoding with dec into batches of at most
// maxRecords records and about maxBytes bytes, named source.
func NewBatcher(dec decoder.Decoder, sink Sink, source string, maxRecords, maxBytes int) *Batcher {
	return &Batcher{dec: dec, sink: sink, source: source, maxRecords: max(maxRecords, 1), maxBytes: max(maxBytes, 1)}
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
	if err := bt.dec.Decode(frame, r, &b.Arena); err != nil {
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
// returns false once the pipeline has refused a batch (it is stopping).
func (bt *Batcher) Flush() bool {
	if bt.b == nil || bt.b.Len() == 0 {
		return !bt.lost
	}
	b := bt.b
	bt.b = nil
	if err := bt.sink.Put(b); err != nil {
		bt.lost = true
	}
	return !bt.lost
}

// Release returns an unused batch to the pool; call it when done.
func (bt *Batcher) Release() {
	if bt.b != nil && bt.b.Len() == 0 {
		flowgo.PutBatch(bt.b)
		bt.b = nil
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
