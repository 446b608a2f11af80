package queue

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

const (
	segmentSuffix = ".seg"
	damagedSuffix = ".damaged"
	readChunk     = 1 << 20
)

func segmentName(id uint64) string { return fmt.Sprintf("%020d%s", id, segmentSuffix) }

// parseSegmentName returns the id of a segment file name.
func parseSegmentName(name string) (uint64, bool) {
	base, ok := strings.CutSuffix(name, segmentSuffix)
	if !ok || len(base) != 20 {
		return 0, false
	}
	id, err := strconv.ParseUint(base, 10, 64)
	return id, err == nil && id > 0
}

// listSegments returns the ids of the segments in dir, in order.
func listSegments(dir string) ([]uint64, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var ids []uint64
	for _, e := range entries {
		if id, ok := parseSegmentName(e.Name()); ok && e.Type().IsRegular() {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	return ids, nil
}

// frame is one frame read from a segment. payload is valid until the
// next call to segmentReader.next.
type frame struct {
	kind    byte
	payload []byte
	off     int64 // where the frame starts
	end     int64 // where the next one starts
}

// damage is a stretch of a segment that held no valid frame.
type damage struct {
	off, bytes int64
	// records counts the record frames in it whose header was intact (only
	// their payload was damaged): each is one record lost, exactly.
	records int
}

// segmentReader reads the frames of one segment file in order, up to a
// limit, skipping damage: it reports each damaged stretch, then carries
// on at the next valid frame, found by its marker and checksum.
type segmentReader struct {
	r     io.ReaderAt
	path  string
	limit int64 // bytes that may be read: the file's size, or what the writer published

	buf    []byte // bytes [bufOff, bufOff+len(buf)) of the file
	bufOff int64
	pos    int64 // where the next frame starts

	headerDamaged bool
}

// newSegmentReader reads r (the segment path) from pos, which is 0 for
// the start: the header is then checked and skipped.
func newSegmentReader(r io.ReaderAt, path string, pos, limit int64, buf []byte) *segmentReader {
	return &segmentReader{r: r, path: path, pos: pos, limit: limit, buf: buf[:0], bufOff: pos}
}

// checkHeader verifies the segment header of segment id. A damaged header
// is reported and the frames after it are read all the same.
func (s *segmentReader) checkHeader(id uint64) bool {
	if s.pos != 0 {
		return true
	}
	hdr := make([]byte, segmentHeader)
	n, _ := s.r.ReadAt(hdr, 0)
	s.pos = segmentHeader
	s.buf, s.bufOff = s.buf[:0], segmentHeader
	if n == segmentHeader && bytes.Equal(appendSegmentHeader(nil, id), hdr) {
		return true
	}
	s.headerDamaged = true
	return false
}

// fill makes buf hold at least need bytes from pos (fewer at the limit).
func (s *segmentReader) fill(need int) error {
	start := int(s.pos - s.bufOff)
	have := len(s.buf) - start
	if have >= need || s.pos+int64(have) >= s.limit {
		return nil
	}
	// Move the unread bytes to the front, then read.
	n := copy(s.buf[:cap(s.buf)], s.buf[start:])
	s.buf, s.bufOff = s.buf[:n], s.pos
	want := max(need, readChunk)
	if int64(want) > s.limit-s.pos {
		want = int(s.limit - s.pos)
	}
	if cap(s.buf) < want {
		nb := make([]byte, n, want)
		copy(nb, s.buf)
		s.buf = nb
	}
	for len(s.buf) < want {
		m, err := s.r.ReadAt(s.buf[len(s.buf):want], s.bufOff+int64(len(s.buf)))
		s.buf = s.buf[:len(s.buf)+m]
		if err != nil {
			if errors.Is(err, io.EOF) {
				// The file is shorter than the limit: it ends here.
				s.limit = s.bufOff + int64(len(s.buf))
				return nil
			}
			return err
		}
	}
	return nil
}

// skipTo moves the next read to pos, past bytes read another way.
func (s *segmentReader) skipTo(pos int64) {
	s.pos = pos
	s.buf, s.bufOff = s.buf[:0], pos
	if pos > s.limit {
		s.limit = pos
	}
}

// window returns the unread bytes in buf.
func (s *segmentReader) window() []byte { return s.buf[s.pos-s.bufOff:] }

// next returns the next valid frame. dmg reports the damaged bytes skipped
// to reach it (bytes 0 when none). At the limit it returns io.EOF, after
// any damage up to it. Other errors are read errors.
func (s *segmentReader) next() (f frame, dmg damage, err error) {
	for {
		if s.pos >= s.limit {
			return frame{}, dmg, io.EOF
		}
		if err := s.fill(frameHeader); err != nil {
			return frame{}, dmg, err
		}
		kind, payload, n, ok, short := frameAt(s.window())
		if short && s.pos+int64(len(s.window())) < s.limit {
			// A long frame: read all of it (the length is bounded by
			// maxPayload and by the limit).
			need := frameHeader
			if w := s.window(); len(w) >= frameHeader {
				need = frameHeader + int(uint32(w[2])|uint32(w[3])<<8|uint32(w[4])<<16|uint32(w[5])<<24)
			}
			if s.pos+int64(need) <= s.limit {
				if err := s.fill(need); err != nil {
					return frame{}, dmg, err
				}
				kind, payload, n, ok, _ = frameAt(s.window())
			}
		}
		if ok {
			f = frame{kind: kind, payload: payload, off: s.pos, end: s.pos + int64(n)}
			s.pos = f.end
			return f, dmg, nil
		}
		// Damage: find the next valid frame.
		if dmg.bytes == 0 {
			dmg.off = s.pos
		}
		at := s.pos
		var declared int64 = -1 // the frame's length, when its header looks whole
		if w := s.window(); len(w) >= frameHeader && w[0] == frameMarker && w[1] == kindRecord {
			declared = frameHeader + int64(uint32(w[2])|uint32(w[3])<<8|uint32(w[4])<<16|uint32(w[5])<<24)
		}
		next, err := s.resync()
		if err != nil {
			return frame{}, dmg, err
		}
		if next == at+declared {
			dmg.records++ // a record whose payload is damaged, nothing more
		}
		dmg.bytes += next - at
		s.pos = next
	}
}

// resync returns the offset of the first valid frame after pos, or the
// limit when there is none.
func (s *segmentReader) resync() (int64, error) {
	from := s.pos + 1
	for from < s.limit {
		s.pos = from
		if err := s.fill(frameHeader); err != nil {
			return 0, err
		}
		w := s.window()
		i := bytes.IndexByte(w, frameMarker)
		if i < 0 {
			from = s.pos + int64(len(w))
			continue
		}
		cand := s.pos + int64(i)
		s.pos = cand
		if err := s.fill(frameHeader); err != nil {
			return 0, err
		}
		w = s.window()
		if len(w) >= frameHeader && (w[1] == kindBatch || w[1] == kindRecord) {
			size := int64(uint32(w[2]) | uint32(w[3])<<8 | uint32(w[4])<<16 | uint32(w[5])<<24)
			if size <= maxPayload && cand+frameHeader+size <= s.limit {
				if err := s.fill(frameHeader + int(size)); err != nil {
					return 0, err
				}
				if _, _, _, ok, _ := frameAt(s.window()); ok {
					return cand, nil
				}
			}
		}
		from = cand + 1
	}
	return s.limit, nil
}

// segmentSize returns the size of the file at path.
func segmentSize(path string) (int64, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return 0, err
	}
	return fi.Size(), nil
}

// recoverTail finds where the valid frames of a segment end, for the
// newest segment after a crash: everything from there on is a torn write
// when no valid frame follows. It returns the offset to truncate at (the
// file size when nothing is torn) and whether damage lies before it.
func recoverTail(path string, id uint64) (end int64, err error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	size, err := segmentSize(path)
	if err != nil {
		return 0, err
	}
	if size < segmentHeader {
		return 0, nil
	}
	sr := newSegmentReader(f, path, 0, size, make([]byte, 0, readChunk))
	sr.checkHeader(id)
	end = segmentHeader
	for {
		fr, dmg, err := sr.next()
		if err == io.EOF {
			if dmg.bytes > 0 && dmg.off+dmg.bytes == size {
				// Damage running to the end with no valid frame after
				// it: a torn write.
				return dmg.off, nil
			}
			return size, nil
		}
		if err != nil {
			return 0, err
		}
		end = fr.end
	}
}

func damagedPath(dir string, id uint64) string {
	return filepath.Join(dir, segmentName(id)+damagedSuffix)
}
