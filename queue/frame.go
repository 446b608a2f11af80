package queue

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"time"
)

const (
	segmentMagic  = "FLOWGOQ\x02"
	segmentHeader = 16 // magic, then the segment id (uint64 LE)

	frameMarker = 0xF7
	frameHeader = 10 // marker, kind, length (uint32 LE), CRC-32C (uint32 LE)

	kindBatch  = 'B'
	kindRecord = 'R'

	// maxPayload bounds a frame: a record holds its message twice at most
	// (message and full message), each up to max_message_size (64 MiB).
	maxPayload = 160 << 20
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// frameCRC is the checksum of a frame: its kind and length bytes, then its
// payload.
func frameCRC(hdr []byte, payload []byte) uint32 {
	c := crc32.Update(0, castagnoli, hdr[1:6])
	return crc32.Update(c, castagnoli, payload)
}

// beginFrame appends a frame header of the given kind with room for the
// length and CRC, which endFrame fills in once the payload is appended.
func beginFrame(dst []byte, kind byte) ([]byte, int) {
	start := len(dst)
	return append(dst, frameMarker, kind, 0, 0, 0, 0, 0, 0, 0, 0), start
}

func endFrame(dst []byte, start int) []byte {
	hdr := dst[start : start+frameHeader]
	payload := dst[start+frameHeader:]
	binary.LittleEndian.PutUint32(hdr[2:6], uint32(len(payload)))
	binary.LittleEndian.PutUint32(hdr[6:10], frameCRC(hdr, payload))
	return dst
}

// appendBatchFrame appends the 'B' frame that opens a batch.
func appendBatchFrame(dst []byte, enqueued time.Time, records int, source string) []byte {
	dst, start := beginFrame(dst, kindBatch)
	dst = binary.AppendVarint(dst, enqueued.UnixNano())
	dst = binary.AppendUvarint(dst, uint64(records))
	dst = appendString(dst, source)
	return endFrame(dst, start)
}

// batchInfo is a decoded 'B' frame.
type batchInfo struct {
	enqueued time.Time
	records  int
	source   string
}

func parseBatchFrame(payload []byte) (batchInfo, error) {
	d := decoding{b: payload}
	ns := d.varint()
	n := d.uvarint()
	src := d.bytes()
	if d.err || len(d.b) != 0 || n > 1<<30 {
		return batchInfo{}, errRecord
	}
	return batchInfo{enqueued: time.Unix(0, ns), records: int(n), source: string(src)}, nil
}

func appendSegmentHeader(dst []byte, id uint64) []byte {
	dst = append(dst, segmentMagic...)
	return binary.LittleEndian.AppendUint64(dst, id)
}

// frameAt checks the frame that starts at buf[0]. It returns its kind, its
// payload and its whole length. ok is false when buf does not start with a
// valid frame; short is true when buf may hold the start of a valid frame
// but not all of it (read more before deciding).
func frameAt(buf []byte) (kind byte, payload []byte, n int, ok, short bool) {
	if len(buf) < frameHeader {
		return 0, nil, 0, false, len(buf) == 0 || buf[0] == frameMarker
	}
	if buf[0] != frameMarker || (buf[1] != kindBatch && buf[1] != kindRecord) {
		return 0, nil, 0, false, false
	}
	size := binary.LittleEndian.Uint32(buf[2:6])
	if size > maxPayload {
		return 0, nil, 0, false, false
	}
	n = frameHeader + int(size)
	if len(buf) < n {
		return 0, nil, 0, false, true
	}
	payload = buf[frameHeader:n]
	if binary.LittleEndian.Uint32(buf[6:10]) != frameCRC(buf, payload) {
		return 0, nil, 0, false, false
	}
	return buf[1], payload, n, true, false
}

// DamageError describes bytes of a segment that held no valid frame.
type DamageError struct {
	Segment string // the file
	Offset  int64
	Bytes   int64
}

func (e *DamageError) Error() string {
	return fmt.Sprintf("%s: %d damaged bytes at offset %d skipped", e.Segment, e.Bytes, e.Offset)
}
