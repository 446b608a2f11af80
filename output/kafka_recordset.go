package output

import (
	"bytes"
	"encoding/binary"
	"hash/crc32"
	"math/bits"
	"time"

	"github.com/flowgo/flowgo"
	"github.com/segmentio/kafka-go"
	"github.com/segmentio/kafka-go/protocol"
)

// kafkaBuilder builds the record set of one produce request: Kafka's
// record batch (message format v2) of some frames of a pipeline batch,
// compressed, preceded by its size, as kafka-go's RawProduce sends it. Its
// buffers are reused from one request to the next; a request abandoned in
// flight may still be read by kafka-go, so its builder is then dropped.
type kafkaBuilder struct {
	codec kafka.Compression
	lz4   *lz4Compressor // for lz4
	raw   []byte         // the records, before compression
	out   []byte         // the record set
	rd    bytes.Reader
	now   func() time.Time
}

func newKafkaBuilder(codec kafka.Compression) *kafkaBuilder {
	bd := &kafkaBuilder{codec: codec, now: time.Now}
	if codec == kafka.Lz4 {
		bd.lz4 = new(lz4Compressor)
	}
	return bd
}

// Offsets of the record batch header's fields, from the start of the
// batch (after the record set's 4-byte size).
const (
	rbLength     = 8  // int32: bytes after this field
	rbCRC        = 17 // uint32: CRC-32C of the bytes from attributes on
	rbAttributes = 21
	rbHeaderSize = kafkaBatchOverhead
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// build returns the record set of frames (indexes into b), each a record
// whose value is the frame and whose key is keyOf's ("" for none). Every
// record gets the same timestamp, now, as kafka-go gives records without
// one.
func (bd *kafkaBuilder) build(b *flowgo.Batch, frames []int, keyOf func(*flowgo.Batch, int) string) protocol.RawRecordSet {
	now := bd.now().UnixMilli()
	out := bd.out[:0]
	out = append(out, make([]byte, 4+rbHeaderSize)...)
	if bd.codec == 0 {
		out = appendRecords(out, b, frames, keyOf)
	} else {
		bd.raw = appendRecords(bd.raw[:0], b, frames, keyOf)
		if bd.lz4 != nil {
			out = bd.lz4.appendFrame(out, bd.raw)
		} else {
			w := bd.codec.Codec().NewWriter((*appendWriter)(&out))
			w.Write(bd.raw) // appending never fails
			w.Close()
		}
	}
	h := out[4:]
	binary.BigEndian.PutUint32(out, uint32(len(h)))
	// Base offset 0 (h[0:8], zero already), then:
	binary.BigEndian.PutUint32(h[rbLength:], uint32(len(h)-12))
	binary.BigEndian.PutUint32(h[12:], ^uint32(0)) // partition leader epoch -1
	h[16] = 2                                      // magic: message format v2
	binary.BigEndian.PutUint16(h[rbAttributes:], uint16(bd.codec))
	binary.BigEndian.PutUint32(h[23:], uint32(len(frames)-1)) // last offset delta
	binary.BigEndian.PutUint64(h[27:], uint64(now))           // first timestamp
	binary.BigEndian.PutUint64(h[35:], uint64(now))           // max timestamp
	binary.BigEndian.PutUint64(h[43:], ^uint64(0))            // producer ID -1: not idempotent
	binary.BigEndian.PutUint16(h[51:], ^uint16(0))            // producer epoch -1
	binary.BigEndian.PutUint32(h[53:], ^uint32(0))            // base sequence -1
	binary.BigEndian.PutUint32(h[57:], uint32(len(frames)))
	binary.BigEndian.PutUint32(h[rbCRC:], crc32.Checksum(h[rbAttributes:], castagnoli))
	bd.out = out
	bd.rd.Reset(out)
	return protocol.RawRecordSet{Reader: &bd.rd}
}

// appendRecords appends the records of frames in Kafka's record format:
// length, attributes (0), timestamp delta (0), offset delta, key, value,
// header count (0); the integers as zigzag varints.
func appendRecords(dst []byte, b *flowgo.Batch, frames []int, keyOf func(*flowgo.Batch, int) string) []byte {
	for i, f := range frames {
		value := b.Data[frameStart(b, f):b.Ends[f]]
		key := keyOf(b, f)
		keyLen := int64(-1)
		if key != "" {
			keyLen = int64(len(key))
		}
		n := 1 + 1 + varintLen(int64(i)) + varintLen(keyLen) + len(key) + varintLen(int64(len(value))) + len(value) + 1
		dst = binary.AppendVarint(dst, int64(n))
		dst = append(dst, 0, 0) // attributes, timestamp delta
		dst = binary.AppendVarint(dst, int64(i))
		dst = binary.AppendVarint(dst, keyLen)
		dst = append(dst, key...)
		dst = binary.AppendVarint(dst, int64(len(value)))
		dst = append(dst, value...)
		dst = append(dst, 0) // no headers
	}
	return dst
}

// varintLen is the length of v as a zigzag varint.
func varintLen(v int64) int {
	u := uint64(v<<1) ^ uint64(v>>63)
	return (bits.Len64(u|1) + 6) / 7
}

// appendWriter is an io.Writer that appends to a byte slice.
type appendWriter []byte

func (w *appendWriter) Write(p []byte) (int, error) {
	*w = append(*w, p...)
	return len(p), nil
}
