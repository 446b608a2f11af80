package queue

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/flowgo/flowgo"
)

// SegmentReport describes one segment file.
type SegmentReport struct {
	Name    string
	Bytes   int64
	Records int64
	// Oldest and Newest are the enqueue times of its first and last batch.
	Oldest, Newest time.Time
	// DamagedBytes are bytes holding no valid frame, in DamagedStretches
	// stretches; HeaderDamaged says the segment header itself is bad.
	DamagedBytes     int64
	DamagedStretches int
	HeaderDamaged    bool
}

// PositionReport describes one reader's position file.
type PositionReport struct {
	Reader    string
	Found     bool
	Damaged   bool
	Confirmed flowgo.QueuePos
	Sent      flowgo.QueuePos
	// Pending counts the records and bytes from Confirmed to the end.
	PendingRecords int64
	PendingBytes   int64
	// OldestPending is the enqueue time of the first batch not confirmed.
	OldestPending time.Time
}

// Report is what Inspect finds in a queue directory.
type Report struct {
	Path      string
	Segments  []SegmentReport
	KeptAside []string // segments with damage, renamed once read
	Positions []PositionReport
	// Holder is the pid in the lock file, and Locked whether a process
	// holds the lock now.
	Holder string
	Locked bool
}

// Inspect reads the queue directory at path without changing anything
// (it may be in use): every segment is scanned and checked.
func Inspect(path string) (*Report, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, &PathError{Path: path, Err: err}
	}
	if !fi.IsDir() {
		return nil, &PathError{Path: path, Err: errors.New("not a directory")}
	}
	rep := &Report{Path: path}
	rep.Holder, rep.Locked = lockHolder(path)
	ids, err := listSegments(path)
	if err != nil {
		return nil, &PathError{Path: path, Err: err}
	}
	kept, _ := filepath.Glob(filepath.Join(path, "*"+segmentSuffix+damagedSuffix))
	for _, k := range kept {
		rep.KeptAside = append(rep.KeptAside, filepath.Base(k))
	}
	type recAt struct {
		end    flowgo.QueuePos
		bytes  int64
		queued time.Time // of its batch
	}
	var recs []recAt
	buf := make([]byte, 0, readChunk)
	for _, id := range ids {
		name := segmentName(id)
		full := filepath.Join(path, name)
		f, err := os.Open(full)
		if err != nil {
			continue // deleted meanwhile
		}
		size, _ := segmentSize(full)
		sr := newSegmentReader(f, full, 0, size, buf)
		s := SegmentReport{Name: name, Bytes: size, HeaderDamaged: !sr.checkHeader(id)}
		var queued time.Time
		for {
			fr, dmg, err := sr.next()
			if dmg.bytes > 0 {
				s.DamagedBytes += dmg.bytes
				s.DamagedStretches++
			}
			if err != nil {
				break
			}
			switch fr.kind {
			case kindBatch:
				if info, err := parseBatchFrame(fr.payload); err == nil {
					if s.Oldest.IsZero() {
						s.Oldest = info.enqueued
					}
					s.Newest = info.enqueued
					queued = info.enqueued
				}
			case kindRecord:
				s.Records++
				recs = append(recs, recAt{flowgo.QueuePos{Segment: id, Offset: fr.end}, fr.end - fr.off, queued})
			}
		}
		buf = sr.buf
		f.Close()
		rep.Segments = append(rep.Segments, s)
	}
	positions, _ := filepath.Glob(filepath.Join(path, "*.pos"))
	for _, p := range positions {
		pr := PositionReport{Reader: strings.TrimSuffix(filepath.Base(p), ".pos")}
		st, found, err := readPosition(p)
		pr.Found, pr.Damaged = found, err != nil
		pr.Confirmed, pr.Sent = st.confirmed, st.sent
		// Records after the position; a damaged or missing one reads
		// from the oldest segment.
		from := st.confirmed
		if pr.Damaged {
			from = flowgo.QueuePos{}
		}
		i := sort.Search(len(recs), func(i int) bool { return from.Less(recs[i].end) })
		for _, r := range recs[i:] {
			pr.PendingRecords++
			pr.PendingBytes += r.bytes
		}
		if i < len(recs) {
			pr.OldestPending = recs[i].queued
		}
		rep.Positions = append(rep.Positions, pr)
	}
	return rep, nil
}

// readPosition reads a position file without creating or changing it.
func readPosition(path string) (cursorState, bool, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return cursorState{}, false, nil
		}
		return cursorState{}, false, err
	}
	var best cursorState
	var bestSeq uint64
	ok := false
	for i := 0; (i+1)*positionSlot <= len(data) && i < 2; i++ {
		st, seq, valid := parseSlot(data[i*positionSlot : (i+1)*positionSlot])
		if valid && (!ok || seq > bestSeq) {
			best, bestSeq, ok = st, seq, true
		}
	}
	if !ok {
		return cursorState{}, true, errPositionDamaged
	}
	return best, true, nil
}

// lockHolder returns the pid written in the lock file and whether the
// lock is held now (tried and released at once).
func lockHolder(dir string) (string, bool) {
	f, err := os.OpenFile(filepath.Join(dir, "lock"), os.O_RDONLY, 0)
	if err != nil {
		return "", false
	}
	defer f.Close()
	data, _ := io.ReadAll(io.LimitReader(f, 32))
	held := flock(f) != nil // closing f releases a lock we took
	return strings.TrimSpace(string(data)), held
}

// Dump calls fn with every record in the queue at path, in order: from
// the read position of reader (all of them when reader is empty or its
// position is missing or damaged). It changes nothing. Damaged stretches
// are skipped and reported to damaged (which may be nil).
func Dump(path, reader string, fn func(r *flowgo.Record) error, damaged func(segment string, off, bytes int64)) error {
	fi, err := os.Stat(path)
	if err != nil {
		return &PathError{Path: path, Err: err}
	}
	if !fi.IsDir() {
		return &PathError{Path: path, Err: errors.New("not a directory")}
	}
	var from flowgo.QueuePos
	if reader != "" {
		st, _, err := readPosition(filepath.Join(path, reader+".pos"))
		if err == nil {
			from = st.confirmed
		}
	}
	ids, err := listSegments(path)
	if err != nil {
		return &PathError{Path: path, Err: err}
	}
	var rr recordReader
	b := flowgo.GetBatch()
	defer flowgo.PutBatch(b)
	buf := make([]byte, 0, readChunk)
	for _, id := range ids {
		if id < from.Segment {
			continue
		}
		full := filepath.Join(path, segmentName(id))
		f, err := os.Open(full)
		if err != nil {
			continue
		}
		size, _ := segmentSize(full)
		var pos int64
		if id == from.Segment {
			pos = from.Offset
		}
		sr := newSegmentReader(f, full, pos, size, buf)
		if !sr.checkHeader(id) && damaged != nil {
			damaged(full, 0, segmentHeader)
		}
		for {
			fr, dmg, err := sr.next()
			if dmg.bytes > 0 && damaged != nil {
				damaged(full, dmg.off, dmg.bytes)
			}
			if err != nil {
				break
			}
			if fr.kind != kindRecord {
				continue
			}
			b.Reset()
			r := b.Next()
			if err := rr.read(b.Arena.Copy(fr.payload), r, &b.Arena); err != nil {
				if damaged != nil {
					damaged(full, fr.off, fr.end-fr.off)
				}
				continue
			}
			if err := fn(r); err != nil {
				f.Close()
				return err
			}
		}
		buf = sr.buf
		f.Close()
	}
	return nil
}

// String renders the report for people.
func (r *Report) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "queue %s\n", r.Path)
	switch {
	case r.Locked:
		fmt.Fprintf(&b, "in use by flowgo pid %s\n", r.Holder)
	default:
		fmt.Fprintf(&b, "not in use\n")
	}
	var total, recs, dmg int64
	fmt.Fprintf(&b, "segments: %d\n", len(r.Segments))
	for _, s := range r.Segments {
		total += s.Bytes
		recs += s.Records
		dmg += s.DamagedBytes
		fmt.Fprintf(&b, "  %s  %d bytes  %d records", s.Name, s.Bytes, s.Records)
		if !s.Oldest.IsZero() {
			fmt.Fprintf(&b, "  queued %s .. %s", s.Oldest.UTC().Format(time.RFC3339), s.Newest.UTC().Format(time.RFC3339))
		}
		if s.HeaderDamaged {
			fmt.Fprintf(&b, "  HEADER DAMAGED")
		}
		if s.DamagedBytes > 0 {
			fmt.Fprintf(&b, "  DAMAGED: %d bytes in %d stretches", s.DamagedBytes, s.DamagedStretches)
		}
		b.WriteByte('\n')
	}
	fmt.Fprintf(&b, "total: %d bytes, %d records, %d damaged bytes\n", total, recs, dmg)
	for _, k := range r.KeptAside {
		fmt.Fprintf(&b, "kept aside (damaged, already read): %s\n", k)
	}
	if len(r.Positions) == 0 {
		fmt.Fprintf(&b, "read position: none (a reader starts at the oldest segment)\n")
	}
	for _, p := range r.Positions {
		switch {
		case p.Damaged:
			fmt.Fprintf(&b, "read position %s: DAMAGED (a reader starts again at the oldest segment)\n", p.Reader)
		default:
			fmt.Fprintf(&b, "read position %s: segment %d offset %d (sent up to segment %d offset %d)\n",
				p.Reader, p.Confirmed.Segment, p.Confirmed.Offset, p.Sent.Segment, p.Sent.Offset)
		}
		fmt.Fprintf(&b, "  not yet delivered: %d records, %d bytes", p.PendingRecords, p.PendingBytes)
		if !p.OldestPending.IsZero() {
			fmt.Fprintf(&b, ", oldest queued %s (%s ago)", p.OldestPending.UTC().Format(time.RFC3339),
				time.Since(p.OldestPending).Truncate(time.Second))
		}
		b.WriteByte('\n')
	}
	return b.String()
}
