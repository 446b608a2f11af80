package queue

import (
	"encoding/binary"
	"hash/crc32"
	"os"
	"path/filepath"
	"strings"
)

// A finished segment gets a summary file, <segment>.sum, written when the
// queue moves on from it: its size and how many records it holds. At start
// the queue counts its backlog from the summaries instead of reading every
// segment again (a 10 GB backlog would be read twice). A summary that is
// missing or does not match its segment's size is ignored: that segment is
// counted by reading it. Layout: "FGQS", version, pad(3), size, records,
// CRC-32C of the 24 bytes before.
const (
	summarySuffix = ".sum"
	summaryMagic  = "FGQS\x01\x00\x00\x00"
	summarySize   = 28
)

func summaryPath(dir string, id uint64) string {
	return filepath.Join(dir, segmentName(id)+summarySuffix)
}

// writeSummary records that segment id holds records records in size
// bytes. A failure only costs a slower count at the next start.
func writeSummary(dir string, id uint64, size, records int64) error {
	b := make([]byte, 0, summarySize)
	b = append(b, summaryMagic...)
	b = binary.LittleEndian.AppendUint64(b, uint64(size))
	b = binary.LittleEndian.AppendUint64(b, uint64(records))
	b = binary.LittleEndian.AppendUint32(b, crc32.Checksum(b, castagnoli))
	return os.WriteFile(summaryPath(dir, id), b, 0o600)
}

// readSummary returns the records of segment id if its summary is valid
// and matches size.
func readSummary(dir string, id uint64, size int64) (int64, bool) {
	b, err := os.ReadFile(summaryPath(dir, id))
	if err != nil || len(b) != summarySize || string(b[:8]) != summaryMagic {
		return 0, false
	}
	le := binary.LittleEndian
	if crc32.Checksum(b[:24], castagnoli) != le.Uint32(b[24:]) || int64(le.Uint64(b[8:16])) != size {
		return 0, false
	}
	return int64(le.Uint64(b[16:24])), true
}

// removeOrphanSummaries deletes summaries whose segment is gone.
func removeOrphanSummaries(dir string) {
	sums, _ := filepath.Glob(filepath.Join(dir, "*"+segmentSuffix+summarySuffix))
	for _, s := range sums {
		if _, err := os.Stat(strings.TrimSuffix(s, summarySuffix)); os.IsNotExist(err) {
			os.Remove(s)
		}
	}
}
