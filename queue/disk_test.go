package queue

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/flowgo/flowgo"
)

func testConfig(t testing.TB, dir string) Config {
	return Config{Path: dir, MaxBytes: 64 << 20, SegmentBytes: 256 << 10, Sync: SyncNone,
		BatchRecords: 100, Log: slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelInfo}))}
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

// sampleBatch returns a batch of n records numbered from first, each
// with every kind of field set.
func sampleBatch(first, n int) *flowgo.Batch {
	b := flowgo.GetBatch()
	b.Source = "input[1]"
	loc := time.FixedZone("CEST", 2*3600)
	for i := first; i < first+n; i++ {
		r := b.Next()
		r.Time = time.Date(2026, 12, 7, 10, 11, 12, 345678000, loc).Add(time.Duration(i) * time.Second)
		if i%3 == 0 {
			r.Time = r.Time.UTC()
		}
		if i%7 == 0 {
			r.Time = time.Time{}
		}
		r.Hostname = fmt.Sprintf("host-%d", i%5)
		r.AppName = "app"
		r.ProcID = "42"
		r.MsgID = "ID47"
		r.Msg = fmt.Sprintf("record %08d", i)
		r.FullMsg = "<13>1 full " + r.Msg
		r.Facility, r.Severity = 3, 6
		if i%2 == 0 {
			r.SD = []flowgo.SDElement{
				{ID: "meta@1", Params: []flowgo.Param{{Name: "seq", Value: flowgo.U64Value(uint64(i))}, {Name: "s", Value: flowgo.StringValue("x\"y")}}},
				{Params: []flowgo.Param{{Name: "f", Value: flowgo.F64Value(1.5)}, {Name: "b", Value: flowgo.BoolValue(true)},
					{Name: "i", Value: flowgo.I64Value(-3)}, {Name: "n", Value: flowgo.NullValue()}}},
				{ID: "empty@1"},
			}
		}
	}
	return b
}

func put(t testing.TB, d *Disk, first, n, per int) {
	t.Helper()
	for i := first; i < first+n; i += per {
		if err := d.Put(context.Background(), sampleBatch(i, min(per, first+n-i))); err != nil {
			t.Fatalf("Put: %v", err)
		}
	}
}

// drain reads batches until want records came (or the deadline), confirming
// each, and returns the message of every record.
func drain(t testing.TB, d *Disk, want int) []string {
	t.Helper()
	var got []string
	deadline := time.After(20 * time.Second)
	for len(got) < want {
		select {
		case b, ok := <-d.Batches():
			if !ok {
				return got
			}
			for i := range b.Records {
				got = append(got, strings.Clone(b.Records[i].Msg))
			}
			d.Sent(b)
			d.Done(b)
			flowgo.PutBatch(b)
		case <-deadline:
			t.Fatalf("got %d records; want %d", len(got), want)
		}
	}
	return got
}

func checkSequence(t testing.TB, got []string, from, n int) {
	t.Helper()
	if len(got) != n {
		t.Fatalf("got %d records; want %d", len(got), n)
	}
	for i, m := range got {
		if want := fmt.Sprintf("record %08d", from+i); m != want {
			t.Fatalf("record %d = %q; want %q", i, m, want)
		}
	}
}

func TestDiskRoundTripKeepsEveryField(t *testing.T) {
	d, err := Open(testConfig(t, t.TempDir()))
	if err != nil {
		t.Fatal(err)
	}
	d.Start()
	want := sampleBatch(0, 50)
	wantRecs := make([]flowgo.Record, want.Len())
	for i := range want.Records {
		wantRecs[i] = want.Records[i].Clone()
	}
	if err := d.Put(context.Background(), want); err != nil {
		t.Fatal(err)
	}
	b := <-d.Batches()
	if b.Len() != len(wantRecs) {
		t.Fatalf("read %d records; want %d", b.Len(), len(wantRecs))
	}
	for i := range wantRecs {
		got := &b.Records[i]
		if !got.Equal(&wantRecs[i]) {
			t.Fatalf("record %d:\n got %+v\nwant %+v", i, *got, wantRecs[i])
		}
		gn, go_ := got.Time.Zone()
		wn, wo := wantRecs[i].Time.Zone()
		if gn != wn || go_ != wo {
			t.Errorf("record %d zone = %s %d; want %s %d", i, gn, go_, wn, wo)
		}
	}
	if b.Source != "input[1]" {
		t.Errorf("source = %q", b.Source)
	}
	d.Done(b)
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestDiskRestartResumesAtTheConfirmedPosition(t *testing.T) {
	dir := t.TempDir()
	d, err := Open(testConfig(t, dir))
	if err != nil {
		t.Fatal(err)
	}
	d.Start()
	put(t, d, 0, 10000, 250)
	got := drain(t, d, 3000)
	first := len(got) // whole batches: 3000 or a little more
	checkSequence(t, got, 0, first)
	// Close without confirming more: as if the output were down.
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	d, err = Open(testConfig(t, dir))
	if err != nil {
		t.Fatal(err)
	}
	d.Start()
	got = drain(t, d, 10000-first)
	checkSequence(t, got, first, 10000-first)
	d.CloseInput()
	if b, ok := <-d.Batches(); ok {
		t.Fatalf("a batch after the end: %d records", b.Len())
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	segs, _ := filepath.Glob(filepath.Join(dir, "*.seg"))
	if len(segs) != 1 {
		t.Errorf("%d segments left after everything was confirmed: %v; want the active one", len(segs), segs)
	}
}

func TestDiskSecondOpenIsRefused(t *testing.T) {
	dir := t.TempDir()
	d, err := Open(testConfig(t, dir))
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	_, err = Open(testConfig(t, dir))
	if err == nil || !strings.Contains(err.Error(), dir) || !strings.Contains(err.Error(), "another pipeline of this process") {
		t.Fatalf("second Open = %v; want an error naming the path and who holds it", err)
	}
}

func flowgoPos(seg uint64, off int64) flowgo.QueuePos {
	return flowgo.QueuePos{Segment: seg, Offset: off}
}

// The backlog count at start comes from the segments' summaries where they
// are valid, and from reading the segment where not; either way it is
// exact.
func TestDiskCountsItsBacklogAtStart(t *testing.T) {
	for _, spoil := range []string{"none", "one summary deleted", "one summary wrong"} {
		t.Run(spoil, func(t *testing.T) {
			dir := t.TempDir()
			d, err := Open(testConfig(t, dir))
			if err != nil {
				t.Fatal(err)
			}
			d.Start()
			put(t, d, 0, 9000, 100)
			drain(t, d, 1000)
			d.Close()
			sums, _ := filepath.Glob(filepath.Join(dir, "*.sum"))
			if len(sums) < 3 {
				t.Fatalf("%d summaries; want one per finished segment", len(sums))
			}
			switch spoil {
			case "one summary deleted":
				os.Remove(sums[len(sums)/2])
			case "one summary wrong":
				os.WriteFile(sums[len(sums)/2], []byte("FGQS\x01\x00\x00\x00garbage garbage garbage"), 0o600)
			}
			d, err = Open(testConfig(t, dir))
			if err != nil {
				t.Fatal(err)
			}
			defer d.Close()
			d.Start()
			deadline := time.Now().Add(10 * time.Second)
			for d.Usage().Records != 9000-1000 && time.Now().Before(deadline) {
				time.Sleep(10 * time.Millisecond)
			}
			if got := d.Usage().Records; got != 8000 {
				t.Fatalf("backlog counted %d records; want 8000", got)
			}
		})
	}
}

// While the reader keeps up, batches reach it in memory (the fast path);
// when it falls behind it reads them from disk; across the changes, and
// across a restart, every record comes once, in order, and positions stay
// right.
func TestDiskFastPathAndDiskReadsMix(t *testing.T) {
	dir := t.TempDir()
	d, err := Open(testConfig(t, dir))
	if err != nil {
		t.Fatal(err)
	}
	d.Start()
	const per = 100
	var got []string
	done := make(chan struct{})
	slow := make(chan bool, 1)
	go func() {
		defer close(done)
		for b := range d.Batches() {
			for i := range b.Records {
				got = append(got, strings.Clone(b.Records[i].Msg))
			}
			d.Sent(b)
			d.Done(b)
			flowgo.PutBatch(b)
			select {
			case s := <-slow:
				if s {
					time.Sleep(200 * time.Millisecond) // fall behind
				}
			default:
			}
		}
	}()
	n := 0
	for round := range 6 {
		// A steady stretch (the reader keeps up), then a burst while the
		// reader pauses.
		for range 30 {
			put(t, d, n, per, per)
			n += per
			time.Sleep(2 * time.Millisecond)
		}
		slow <- round%2 == 0
		for range 50 {
			put(t, d, n, per, per)
			n += per
		}
	}
	d.CloseInput()
	<-done
	checkSequence(t, got, 0, n)
	fast := d.Stats.FastBatches.Load()
	t.Logf("%d records in %d batches put; %d batches came by the fast path", n, n/per, fast)
	if fast == 0 || fast >= int64(n/per) {
		t.Errorf("%d batches by the fast path of %d; want both paths used", fast, n/per)
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	// Everything was confirmed: a restart has nothing to deliver.
	d, err = Open(testConfig(t, dir))
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if u := d.Usage(); u.Records != 0 {
		t.Errorf("after a restart %d records are pending; all were confirmed", u.Records)
	}
}
