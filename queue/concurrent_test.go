package queue

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/flowgo/flowgo"
)

// appenderBatch returns a batch of n records of appender a, numbered from
// first: "a<A> record <N>".
func appenderBatch(a, first, n int) *flowgo.Batch {
	b := flowgo.GetBatch()
	b.Source = fmt.Sprintf("input[%d]", a)
	for i := first; i < first+n; i++ {
		r := b.Next()
		r.Time = time.Unix(int64(1_800_000_000+i), 0).UTC()
		r.Hostname = "host"
		r.AppName = "app"
		r.Msg = fmt.Sprintf("a%d record %08d", a, i)
		r.FullMsg = "<13>1 - host app - - - " + r.Msg
		r.Facility, r.Severity = 1, 5
	}
	return b
}

// putConcurrently runs appenders goroutines, each putting records
// [from, to) of its own in batches of per, all at once; it returns once
// every Put returned, failing on any error.
func putConcurrently(t *testing.T, d *Disk, appenders, from, to, per int) {
	t.Helper()
	var wg sync.WaitGroup
	errs := make(chan error, appenders)
	for a := range appenders {
		wg.Go(func() {
			for i := from; i < to; i += per {
				if err := d.Put(context.Background(), appenderBatch(a, i, min(per, to-i))); err != nil {
					errs <- fmt.Errorf("appender %d, record %d: %w", a, i, err)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}

// appendersSeen checks what a reader got from appenders appenders: each
// one's records from its next expected number on, in order, none twice
// and none skipped; next is updated.
type appendersSeen struct {
	next map[int]int
	n    int
}

func (s *appendersSeen) add(msg string) error {
	var a, i int
	if _, err := fmt.Sscanf(msg, "a%d record %d", &a, &i); err != nil {
		return fmt.Errorf("record %q: %v", msg, err)
	}
	if s.next == nil {
		s.next = map[int]int{}
	}
	if i != s.next[a] {
		return fmt.Errorf("appender %d: record %d after %d (want %d: order per appender, every record once)", a, i, s.next[a]-1, s.next[a])
	}
	s.next[a] = i + 1
	s.n++
	return nil
}

// addBatch checks the records of b, in order (see add).
func (s *appendersSeen) addBatch(b *flowgo.Batch) error {
	for i := range b.Records {
		if err := s.add(b.Records[i].Msg); err != nil {
			return err
		}
	}
	return nil
}

// waitCaughtUp waits until the reader of a new queue reached the end of
// what is written, from when Puts go to the fast path.
func waitCaughtUp(t *testing.T, d *Disk) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !d.CaughtUp() {
		if time.Now().After(deadline) {
			t.Fatal("the reader never caught up with an empty queue")
		}
		time.Sleep(time.Millisecond)
	}
}

// Many inputs putting at once into a queue whose reader keeps up: every
// batch reaches the reader in memory (none is read back from disk: the
// Puts a reader's take wakes each have their place on the fast path),
// every record comes once, each input's in order, under every sync
// policy, across segment rotations; and after a restart, what was not
// confirmed comes again, still in order, nothing lost.
func TestDiskConcurrentPutsStayOnTheFastPath(t *testing.T) {
	for _, sync := range []string{SyncNone, SyncInterval, SyncBatch} {
		t.Run(sync, func(t *testing.T) {
			const appenders, per, total = 8, 50, 2000 // records per appender
			dir := t.TempDir()
			cfg := testConfig(t, dir)
			cfg.Sync, cfg.SyncInterval = sync, 20*time.Millisecond
			d, err := Open(cfg)
			if err != nil {
				t.Fatal(err)
			}
			// Only a reader stalled this long leaves the fast path: this
			// one never is, however loaded the machine.
			d.fastWait = time.Hour
			d.Start()
			waitCaughtUp(t, d)

			// The reader confirms the first half of the records (whole
			// batches), then stops taking batches, as if the output
			// were down.
			var seen appendersSeen
			half := appenders * total / 2
			readErr := make(chan error, 1)
			readDone := make(chan struct{})
			go func() {
				defer close(readDone)
				for seen.n < half {
					b, ok := <-d.Batches()
					if !ok {
						readErr <- errors.New("Batches closed early")
						return
					}
					if err := seen.addBatch(b); err != nil {
						readErr <- err
						return
					}
					d.Sent(b)
					d.Done(b)
					flowgo.PutBatch(b)
				}
			}()
			// The Puts of the second half wait for the reader's room on
			// the fast path, then for as long as it was full; cut that
			// wait short once the reader stopped.
			putConcurrently(t, d, appenders, 0, total/2, per)
			<-readDone
			select {
			case err := <-readErr:
				t.Fatal(err)
			default:
			}
			if r := d.Stats.ReadBatches.Load(); r != 0 {
				t.Errorf("%d batches read back from disk while the reader kept up; want all %d by the fast path", r, d.Stats.FastBatches.Load()+r)
			}
			d.fastWait = time.Millisecond // set before these Puts start
			putConcurrently(t, d, appenders, total/2, total, per)
			if err := d.Close(); err != nil {
				t.Fatal(err)
			}

			d, err = Open(cfg)
			if err != nil {
				t.Fatal(err)
			}
			defer d.Close()
			d.Start()
			d.CloseInput()
			deadline := time.After(30 * time.Second)
			for seen.n < appenders*total {
				select {
				case b, ok := <-d.Batches():
					if !ok {
						t.Fatalf("after the restart: %d records of %d, then the end", seen.n, appenders*total)
					}
					if err := seen.addBatch(b); err != nil {
						t.Fatalf("after the restart: %v", err)
					}
					d.Done(b)
					flowgo.PutBatch(b)
				case <-deadline:
					t.Fatalf("after the restart: %d records of %d", seen.n, appenders*total)
				}
			}
			for a := range appenders {
				if seen.next[a] != total {
					t.Errorf("appender %d: %d records; want %d", a, seen.next[a], total)
				}
			}
		})
	}
}

// Many inputs putting at once while the reader now keeps up, now stalls
// (it reads from disk, then comes back to the fast path): every record
// comes once, each input's in order.
func TestDiskConcurrentPutsWithAStallingReader(t *testing.T) {
	const appenders, per, total = 6, 40, 3000
	d, err := Open(testConfig(t, t.TempDir()))
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	d.fastWait = 5 * time.Millisecond
	d.Start()
	var seen appendersSeen
	readErr := make(chan error, 1)
	readDone := make(chan struct{})
	go func() {
		defer close(readDone)
		batches := 0
		for b := range d.Batches() {
			if err := seen.addBatch(b); err != nil {
				readErr <- err
				return
			}
			d.Sent(b)
			d.Done(b)
			flowgo.PutBatch(b)
			if batches++; batches%40 == 0 {
				time.Sleep(30 * time.Millisecond)
			}
		}
	}()
	putConcurrently(t, d, appenders, 0, total, per)
	d.CloseInput()
	select {
	case <-readDone:
	case <-time.After(60 * time.Second):
		t.Fatalf("the reader got %d records of %d", seen.n, appenders*total)
	}
	select {
	case err := <-readErr:
		t.Fatal(err)
	default:
	}
	if seen.n != appenders*total {
		t.Fatalf("%d records; want %d", seen.n, appenders*total)
	}
	t.Logf("%d batches by the fast path, %d read from disk", d.Stats.FastBatches.Load(), d.Stats.ReadBatches.Load())
	for a := range appenders {
		if seen.next[a] != total {
			t.Errorf("appender %d: %d records; want %d", a, seen.next[a], total)
		}
	}
}

// With sync = "batch", a Put that returns has its batch synced, and with
// it every segment finished before (the syncer syncs those after the
// rotation, off the appends' path) and the directory naming the new ones.
func TestDiskSyncBatchCoversFinishedSegments(t *testing.T) {
	dir := t.TempDir()
	var mu sync.Mutex
	syncedAt := map[string]int{} // file → how many Puts had returned when it was last synced
	puts := 0
	fsync = func(f *os.File) error {
		mu.Lock()
		syncedAt[filepath.Base(f.Name())] = puts
		mu.Unlock()
		return f.Sync()
	}
	t.Cleanup(func() { fsync = (*os.File).Sync })
	cfg := testConfig(t, dir)
	cfg.Sync = SyncBatch
	cfg.SyncInterval = time.Hour // only the Puts ask for syncs
	d, err := Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	d.Start()
	go func() {
		for b := range d.Batches() {
			flowgo.PutBatch(b) // not confirmed: every segment stays
		}
	}()
	// Put p's batch, every segment finished before it returned, and the
	// directory once the active segment was made, must be synced after
	// Put p began.
	finishedAt := map[uint64]int{}
	madeAt := map[uint64]int{}
	prev := uint64(0)
	for i := 0; i < 20000; i += 100 {
		if err := d.Put(context.Background(), appenderBatch(0, i, 100)); err != nil {
			t.Fatal(err)
		}
		d.writeMu.Lock()
		active := d.activeID
		d.writeMu.Unlock()
		mu.Lock()
		if active != prev {
			for id := max(prev, 1); id < active; id++ {
				finishedAt[id] = puts
			}
			madeAt[active] = puts
			prev = active
		}
		var bad string
		for id, p := range finishedAt {
			if at, ok := syncedAt[segmentName(id)]; !ok || at < p {
				bad = fmt.Sprintf("segment %d, finished by Put %d, last synced at Put %d (%v)", id, p, at, ok)
			}
		}
		if at, ok := syncedAt[filepath.Base(dir)]; !ok || at < madeAt[active] {
			bad = fmt.Sprintf("the directory last synced at Put %d (%v), before segment %d was made (Put %d)", at, ok, active, madeAt[active])
		}
		if at := syncedAt[segmentName(active)]; at < puts {
			bad = fmt.Sprintf("the active segment last synced at Put %d", at)
		}
		puts++
		mu.Unlock()
		if bad != "" {
			t.Fatalf("after Put %d: %s", puts-1, bad)
		}
	}
	if len(madeAt) < 4 {
		t.Fatalf("%d segments; want a few (they are %d bytes)", len(madeAt), cfg.SegmentBytes)
	}
}
