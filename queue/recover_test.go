package queue

import (
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// frameMap lists the frames of a segment file as written: offsets, ends,
// kinds, and for each record frame the record's message.
type frameInfo struct {
	off, end int64
	kind     byte
	msg      string
}

func mapFrames(t *testing.T, path string, id uint64) []frameInfo {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	size, _ := segmentSize(path)
	sr := newSegmentReader(f, path, 0, size, nil)
	if !sr.checkHeader(id) {
		t.Fatalf("%s: bad header before any damage", path)
	}
	var out []frameInfo
	var rr recordReader
	for {
		fr, dmg, err := sr.next()
		if dmg.bytes > 0 {
			t.Fatalf("%s: damage before any was made: %+v", path, dmg)
		}
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		fi := frameInfo{off: fr.off, end: fr.end, kind: fr.kind}
		if fr.kind == kindRecord {
			b := sampleBatch(0, 0)
			r := b.Next()
			if err := rr.read(b.Arena.Copy(fr.payload), r, &b.Arena); err != nil {
				t.Fatal(err)
			}
			fi.msg = strings.Clone(r.Msg)
		}
		out = append(out, fi)
	}
}

// fillQueue writes n records in batches of per into a new queue at dir
// and closes it, nothing confirmed. It returns the segment ids.
func fillQueue(t *testing.T, dir string, n, per int) []uint64 {
	t.Helper()
	d, err := Open(testConfig(t, dir))
	if err != nil {
		t.Fatal(err)
	}
	put(t, d, 0, n, per)
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	ids, err := listSegments(dir)
	if err != nil {
		t.Fatal(err)
	}
	return ids
}

// readAll opens the queue at dir and reads everything in it, confirming.
func readAll(t *testing.T, dir string) ([]string, *Disk) {
	t.Helper()
	d, err := Open(testConfig(t, dir))
	if err != nil {
		t.Fatalf("Open after damage: %v", err)
	}
	d.Start()
	d.CloseInput()
	got := drain(t, d, 1<<30)
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	return got, d
}

func copyDir(t *testing.T, from string) string {
	t.Helper()
	to := t.TempDir()
	entries, err := os.ReadDir(from)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		data, err := os.ReadFile(filepath.Join(from, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(to, e.Name()), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return to
}

func messages(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("record %08d", i)
	}
	return out
}

// A crash in the middle of a write leaves a partial frame at the end of
// the newest segment. Wherever the cut falls, the queue opens, truncates
// the torn frame and delivers every record written whole before it.
func TestDiskTornTailAtManyOffsets(t *testing.T) {
	base := t.TempDir()
	ids := fillQueue(t, base, 600, 60)
	last := ids[len(ids)-1]
	// The newest segment is the empty one Close left; tear the one before.
	for last > ids[0] {
		if sz, _ := segmentSize(filepath.Join(base, segmentName(last))); sz > segmentHeader {
			break
		}
		os.Remove(filepath.Join(base, segmentName(last)))
		last--
	}
	path := filepath.Join(base, segmentName(last))
	frames := mapFrames(t, path, last)
	size, _ := segmentSize(path)
	rng := rand.New(rand.NewPCG(1, 2))
	cuts := []int64{0, 1, segmentHeader - 1, segmentHeader, segmentHeader + 1, size - 1}
	for range 40 {
		cuts = append(cuts, segmentHeader+rng.Int64N(size-segmentHeader))
	}
	for _, fi := range frames[:min(len(frames), 5)] {
		cuts = append(cuts, fi.off, fi.off+1, fi.end-1)
	}
	for _, cut := range cuts {
		t.Run(fmt.Sprint(cut), func(t *testing.T) {
			dir := copyDir(t, base)
			if err := os.Truncate(filepath.Join(dir, segmentName(last)), cut); err != nil {
				t.Fatal(err)
			}
			// The records of earlier segments and of the frames whole
			// before the cut.
			want := map[string]bool{}
			for _, m := range messages(600) {
				want[m] = true
			}
			var validEnd int64 = segmentHeader
			for _, fi := range frames {
				if fi.end <= cut {
					validEnd = fi.end
				} else if fi.kind == kindRecord {
					delete(want, fi.msg)
				}
			}
			got, d := readAll(t, dir)
			if len(got) != len(want) {
				t.Fatalf("delivered %d records; want %d", len(got), len(want))
			}
			for _, m := range got {
				if !want[m] {
					t.Fatalf("delivered %q, which the cut destroyed or which came twice", m)
				}
				delete(want, m)
			}
			if !slices.IsSorted(got) {
				t.Error("records out of order")
			}
			wantTorn := max(cut-validEnd, 0)
			if cut < segmentHeader {
				wantTorn = cut
			}
			if got := d.Stats.TornBytes.Load(); got != wantTorn {
				t.Errorf("torn bytes = %d; want %d", got, wantTorn)
			}
			if n := d.Stats.DamagedRecords.Load(); n != 0 {
				t.Errorf("damaged records = %d; a torn tail is not damage", n)
			}
		})
	}
}

// Bytes flipped inside records' payloads cost exactly those records:
// every other record is delivered once, in order, and the lost ones are
// counted, and the segment is kept aside once read.
func TestDiskFlippedBytesCostOnlyTheRecordsTheyHit(t *testing.T) {
	for seed := range uint64(8) {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			dir := t.TempDir()
			ids := fillQueue(t, dir, 3000, 100)
			rng := rand.New(rand.NewPCG(seed, 9))
			lost := map[string]bool{}
			damagedSegs := map[uint64]bool{}
			for _, id := range ids {
				path := filepath.Join(dir, segmentName(id))
				frames := mapFrames(t, path, id)
				if len(frames) == 0 {
					continue
				}
				data, err := os.ReadFile(path)
				if err != nil {
					t.Fatal(err)
				}
				for range 1 + rng.IntN(6) {
					fi := frames[rng.IntN(len(frames))]
					if fi.kind != kindRecord {
						continue
					}
					at := fi.off + frameHeader + rng.Int64N(fi.end-fi.off-frameHeader)
					data[at] ^= byte(1 + rng.IntN(255))
					lost[fi.msg] = true
					damagedSegs[id] = true
				}
				if err := os.WriteFile(path, data, 0o600); err != nil {
					t.Fatal(err)
				}
			}
			got, d := readAll(t, dir)
			var want []string
			for _, m := range messages(3000) {
				if !lost[m] {
					want = append(want, m)
				}
			}
			if !slices.Equal(got, want) {
				t.Fatalf("delivered %d records; want the %d undamaged ones, once, in order", len(got), len(want))
			}
			if n := d.Stats.DamagedRecords.Load(); n != int64(len(lost)) {
				t.Errorf("damaged records = %d; want %d", n, len(lost))
			}
			for id := range damagedSegs {
				if _, err := os.Stat(damagedPath(dir, id)); err != nil {
					t.Errorf("damaged segment %d not kept aside: %v", id, err)
				}
			}
		})
	}
}

// Damage anywhere, headers included, never stops the queue from opening
// or panics it; what it delivers is a subsequence of what was written,
// each record at most once, and everything else is counted as damaged
// bytes.
func TestDiskRandomDamageNeverStopsIt(t *testing.T) {
	for seed := range uint64(12) {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			dir := t.TempDir()
			ids := fillQueue(t, dir, 2000, 50)
			rng := rand.New(rand.NewPCG(seed, 11))
			for _, id := range ids {
				path := filepath.Join(dir, segmentName(id))
				data, err := os.ReadFile(path)
				if err != nil {
					t.Fatal(err)
				}
				for range rng.IntN(20) {
					if len(data) == 0 {
						break
					}
					at := rng.IntN(len(data))
					n := min(1+rng.IntN(64), len(data)-at)
					for i := at; i < at+n; i++ {
						data[i] = byte(rng.IntN(256))
					}
				}
				if err := os.WriteFile(path, data, 0o600); err != nil {
					t.Fatal(err)
				}
			}
			got, _ := readAll(t, dir)
			all := messages(2000)
			i := 0
			for _, m := range got {
				for i < len(all) && all[i] != m {
					i++
				}
				if i == len(all) {
					t.Fatalf("delivered %q out of order, twice, or never written", m)
				}
				i++
			}
		})
	}
}

func TestDiskPositionFileLostOrDamagedReadsFromTheOldest(t *testing.T) {
	for _, damage := range []string{"deleted", "zeroed", "garbage", "one slot torn"} {
		t.Run(damage, func(t *testing.T) {
			dir := t.TempDir()
			d, err := Open(testConfig(t, dir))
			if err != nil {
				t.Fatal(err)
			}
			d.Start()
			put(t, d, 0, 1000, 100)
			first := len(drain(t, d, 400))
			d.Close()
			pos := filepath.Join(dir, "output.pos")
			data, _ := os.ReadFile(pos)
			switch damage {
			case "deleted":
				os.Remove(pos)
			case "zeroed":
				os.WriteFile(pos, make([]byte, len(data)), 0o600)
			case "garbage":
				os.WriteFile(pos, []byte("not a position at all, not at all, no, really not a position"), 0o600)
			case "one slot torn":
				// The newest slot is spoilt: the one before it holds an
				// older position, from which reading resumes.
				pf, st, _, err := openPosition(pos)
				if err != nil {
					t.Fatal(err)
				}
				pf.close()
				slot := int(pf.seq % 2)
				data[slot*positionSlot+20] ^= 0xff
				os.WriteFile(pos, data, 0o600)
				_ = st
			}
			got, d := readAll(t, dir)
			if damage == "one slot torn" {
				// At most one update back: a batch of duplicates.
				if len(got) < 1000-first || len(got) > 1000-first+100 {
					t.Fatalf("delivered %d; want the %d not confirmed, and at most one batch more", len(got), 1000-first)
				}
				if !slices.IsSorted(got) || got[len(got)-1] != "record 00000999" {
					t.Fatalf("not the tail of the queue, in order")
				}
				return
			}
			checkSequence(t, got, 0, 1000)
			if d.Stats.PositionResets.Load() != 1 {
				t.Errorf("position resets = %d; want 1", d.Stats.PositionResets.Load())
			}
		})
	}
}

func TestDiskMissingSegmentsAreCountedAndTheRestDelivered(t *testing.T) {
	dir := t.TempDir()
	ids := fillQueue(t, dir, 8000, 100)
	if len(ids) < 4 {
		t.Fatalf("only %d segments; the test needs 4", len(ids))
	}
	gone := ids[1]
	lost := map[string]bool{}
	for _, fi := range mapFrames(t, filepath.Join(dir, segmentName(gone)), gone) {
		if fi.kind == kindRecord {
			lost[fi.msg] = true
		}
	}
	os.Remove(filepath.Join(dir, segmentName(gone)))
	got, d := readAll(t, dir)
	if len(got) != 8000-len(lost) {
		t.Fatalf("delivered %d; want %d", len(got), 8000-len(lost))
	}
	for _, m := range got {
		if lost[m] {
			t.Fatalf("delivered %q from the deleted segment", m)
		}
	}
	if d.Stats.MissingSegments.Load() != 1 {
		t.Errorf("missing segments = %d; want 1", d.Stats.MissingSegments.Load())
	}
}

// The read position names a segment deleted just before a crash (Vector
// crash-loops on this): reading resumes at the next one.
func TestDiskPositionNamingADeletedSegmentResumesAtTheNext(t *testing.T) {
	dir := t.TempDir()
	ids := fillQueue(t, dir, 8000, 100)
	pf, _, _, err := openPosition(filepath.Join(dir, "output.pos"))
	if err != nil {
		t.Fatal(err)
	}
	pf.write(cursorState{confirmed: flowgoPos(ids[1], 100), sent: flowgoPos(ids[1], 100)})
	pf.close()
	var want []string
	for _, id := range ids[2:] {
		for _, fi := range mapFrames(t, filepath.Join(dir, segmentName(id)), id) {
			if fi.kind == kindRecord {
				want = append(want, fi.msg)
			}
		}
	}
	os.Remove(filepath.Join(dir, segmentName(ids[0])))
	os.Remove(filepath.Join(dir, segmentName(ids[1])))
	got, d := readAll(t, dir)
	if !slices.Equal(got, want) {
		t.Fatalf("delivered %d records; want the %d of the segments after the missing one", len(got), len(want))
	}
	if d.Stats.PositionResets.Load() != 1 {
		t.Errorf("position resets = %d; want 1", d.Stats.PositionResets.Load())
	}
}
