package output

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"io"
	"testing"
	"time"

	"github.com/flowgo/flowgo"
	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// The record sets the kafka output builds, read with franz-go's kmsg (the
// code kfake and kgo parse them with) and decompressed with kafka-go's
// codecs: every field of the v2 batch header, the CRC, and each record's
// offset delta, key and value.
func TestKafkaRecordSetsAreValidRecordBatches(t *testing.T) {
	b := &flowgo.Batch{}
	var values, keys []string
	for i := range 300 {
		r := b.Next()
		v := fmt.Sprintf(`{"n":%d,"pad":"%s"}`, i, bytes.Repeat([]byte("x"), i%200))
		if i%7 == 3 {
			v = "" // an empty message stays a message
		}
		if i%3 != 0 {
			r.Hostname = fmt.Sprintf("host-%d", i%5)
		}
		values = append(values, v)
		keys = append(keys, r.Hostname)
		b.Data = append(b.Data, v...)
		b.Ends = append(b.Ends, len(b.Data))
		b.Index = append(b.Index, i)
	}
	keyOf := func(b *flowgo.Batch, i int) string { return b.Records[b.Index[i]].Hostname }
	frames := []int{0, 1, 2, 5, 8, 13, 21, 34, 55, 89, 144, 233, 299}
	for i := 100; i < 200; i++ {
		frames = append(frames, i) // more than one 64 KiB LZ4 block
	}
	for _, codec := range []kafka.Compression{0, kafka.Gzip, kafka.Snappy, kafka.Lz4, kafka.Zstd} {
		t.Run(fmt.Sprintf("codec %d", codec), func(t *testing.T) {
			bd := newKafkaBuilder(codec)
			at := time.UnixMilli(1795650404456)
			bd.now = func() time.Time { return at }
			for round := range 2 { // the builder's buffers are reused
				set, err := io.ReadAll(bd.build(b, frames, keyOf).Reader)
				if err != nil {
					t.Fatal(err)
				}
				if n := binary.BigEndian.Uint32(set); int(n) != len(set)-4 {
					t.Fatalf("round %d: record set size %d; want %d", round, n, len(set)-4)
				}
				var rb kmsg.RecordBatch
				if err := rb.ReadFrom(set[4:]); err != nil {
					t.Fatalf("round %d: %v", round, err)
				}
				want := kmsg.RecordBatch{FirstOffset: 0, Length: int32(len(set) - 4 - 12), PartitionLeaderEpoch: -1, Magic: 2,
					Attributes: int16(codec), LastOffsetDelta: int32(len(frames) - 1), FirstTimestamp: at.UnixMilli(),
					MaxTimestamp: at.UnixMilli(), ProducerID: -1, ProducerEpoch: -1, FirstSequence: -1, NumRecords: int32(len(frames))}
				got := rb
				got.CRC, got.Records = 0, nil
				if fmt.Sprint(got) != fmt.Sprint(want) {
					t.Fatalf("round %d: header\n%+v; want\n%+v", round, got, want)
				}
				if crc := crc32.Checksum(set[4+21:], crc32.MakeTable(crc32.Castagnoli)); int32(crc) != rb.CRC {
					t.Fatalf("round %d: CRC %x; the bytes give %x", round, uint32(rb.CRC), crc)
				}
				raw := rb.Records
				if codec != 0 {
					if raw, err = io.ReadAll(codec.Codec().NewReader(bytes.NewReader(rb.Records))); err != nil {
						t.Fatalf("round %d: decompressing: %v", round, err)
					}
				}
				for i, f := range frames {
					l, n := binary.Varint(raw)
					if n <= 0 || int(l)+n > len(raw) {
						t.Fatalf("round %d: record %d: bad length", round, i)
					}
					var r kmsg.Record
					if err := r.ReadFrom(raw[:n+int(l)]); err != nil {
						t.Fatalf("round %d: record %d: %v", round, i, err)
					}
					raw = raw[n+int(l):]
					if r.OffsetDelta != int32(i) || r.TimestampDelta64 != 0 || r.Attributes != 0 || len(r.Headers) != 0 {
						t.Fatalf("round %d: record %d: %+v", round, i, r)
					}
					if string(r.Value) != values[f] || r.Value == nil {
						t.Fatalf("round %d: record %d: value %q; want %q", round, i, r.Value, values[f])
					}
					if keys[f] == "" && r.Key != nil || keys[f] != "" && string(r.Key) != keys[f] {
						t.Fatalf("round %d: record %d: key %q; want %q", round, i, r.Key, keys[f])
					}
				}
				if len(raw) != 0 {
					t.Fatalf("round %d: %d bytes after the last record", round, len(raw))
				}
			}
		})
	}
}
