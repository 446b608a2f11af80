package queue

import (
	"bytes"
	"errors"
	"io"
	"testing"

	"github.com/flowgo/flowgo"
)

// FuzzSegmentReader reads arbitrary bytes as a segment: it must never
// panic or loop, must account for every byte as a frame or as damage, and
// every record it decodes must encode back to the same bytes.
func FuzzSegmentReader(f *testing.F) {
	seed := appendSegmentHeader(nil, 1)
	b := sampleBatch(0, 20)
	seed = appendBatchFrame(seed, b.Records[0].Time, b.Len(), b.Source)
	for i := range b.Records {
		var start int
		seed, start = beginFrame(seed, kindRecord)
		seed = appendRecord(seed, &b.Records[i])
		seed = endFrame(seed, start)
	}
	f.Add(seed)
	f.Add(seed[:len(seed)/2])
	flipped := bytes.Clone(seed)
	flipped[len(flipped)/3] ^= 0x40
	f.Add(flipped)
	f.Add([]byte{})
	f.Add([]byte{frameMarker, kindRecord, 0xff, 0xff, 0xff, 0x7f})
	f.Fuzz(func(t *testing.T, data []byte) {
		sr := newSegmentReader(bytes.NewReader(data), "fuzz", 0, int64(len(data)), nil)
		sr.checkHeader(1)
		accounted := min(int64(len(data)), segmentHeader)
		var rr recordReader
		batch := flowgo.GetBatch()
		defer flowgo.PutBatch(batch)
		for {
			fr, dmg, err := sr.next()
			accounted += dmg.bytes
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			accounted += fr.end - fr.off
			if fr.kind == kindBatch {
				parseBatchFrame(fr.payload)
				continue
			}
			r := batch.Next()
			if err := rr.read(batch.Arena.Copy(fr.payload), r, &batch.Arena); err != nil {
				continue
			}
			again := appendRecord(nil, r)
			var r2 flowgo.Record
			var a flowgo.Arena
			if err := rr.read(again, &r2, &a); err != nil || !r2.Equal(r) {
				t.Fatalf("a decoded record does not round-trip: %v", err)
			}
		}
		if accounted != int64(len(data)) {
			t.Fatalf("accounted for %d bytes of %d", accounted, len(data))
		}
	})
}
