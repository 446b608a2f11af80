package queue

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/flowgo/flowgo"
)

// Sync policies (the [queue] sync key).
const (
	SyncInterval = "interval" // fsync every SyncInterval
	SyncBatch    = "batch"    // fsync before Put returns
	SyncNone     = "none"     // the page cache only
)

// Defaults of the [queue] keys.
const (
	DefaultMaxBytes     = 1 << 30
	DefaultSyncInterval = time.Second
	// Segments are a sixteenth of the budget, within these bounds: small
	// enough that confirmed data is given back soon, large enough that
	// rotations are rare.
	minSegmentBytes = 1 << 20
	maxSegmentBytes = 64 << 20
	// MinMaxBytes is the smallest budget: a few segments of the smallest size.
	MinMaxBytes = 4 * minSegmentBytes
)

// ErrNotSynced is returned by Put with sync = "batch" when its context
// ended after the batch was written but before it was synced: the batch is
// queued (it will be delivered), but must not be acknowledged as durable.
var ErrNotSynced = errors.New("disk queue: written but not synced")

// ErrClosed is returned by Put after CloseInput.
var ErrClosed = errors.New("disk queue: closed")

// PathError is an unusable queue directory: the only thing that stops a
// disk queue from opening.
type PathError struct {
	Path string
	Err  error
}

func (e *PathError) Error() string { return fmt.Sprintf("queue path %s: %v", e.Path, e.Err) }
func (e *PathError) Unwrap() error { return e.Err }

// Config configures a disk queue.
type Config struct {
	// Path is the queue's own directory (created 0700).
	Path string
	// MaxBytes bounds the segments on disk; Put waits while they are full.
	MaxBytes int64
	// SegmentBytes is the size at which a segment is closed and a new one
	// started; 0 means MaxBytes/16 within 1-64 MiB.
	SegmentBytes int64
	// Sync is SyncInterval, SyncBatch or SyncNone.
	Sync         string
	SyncInterval time.Duration
	// BatchRecords and BatchBytes bound the batches the reader hands to the
	// output stage.
	BatchRecords int
	BatchBytes   int
	// Reader names the read position (the output it serves): its file is
	// <Reader>.pos.
	Reader string
	Log    *slog.Logger
}

// Stats counts what a disk queue did. Counters only grow.
type Stats struct {
	Replayed        atomic.Int64 // records delivered again after a restart: sent before it, not confirmed
	DamagedRecords  atomic.Int64 // records lost to damage (checksum failures), as far as batch headers tell
	DamagedBytes    atomic.Int64 // bytes skipped as damaged
	TornBytes       atomic.Int64 // bytes of a torn write truncated at start
	WriteErrors     atomic.Int64 // appends that failed (disk full, I/O errors) and were retried
	PositionResets  atomic.Int64 // read positions lost (missing segment or damaged file) at start
	MissingSegments atomic.Int64 // segments found missing between others at start: their records are lost
	Syncs           atomic.Int64
	FastBatches     atomic.Int64 // batches the reader took from memory (the fast path) rather than from disk
	ReadBatches     atomic.Int64 // batches the reader read back from disk
	SyncSeconds     Histogram    // how long each sync took: the finished segments' fsyncs, the directory's and the active segment's
}

// SyncBuckets are the upper bounds, in seconds, of Histogram's buckets.
var SyncBuckets = [...]float64{0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5}

// Histogram counts durations into SyncBuckets, lock-free.
type Histogram struct {
	counts [len(SyncBuckets) + 1]atomic.Uint64 // the last: above every bound
	sumNs  atomic.Int64
	n      atomic.Uint64
}

// Observe counts one duration.
func (h *Histogram) Observe(d time.Duration) {
	s := d.Seconds()
	i := 0
	for i < len(SyncBuckets) && s > SyncBuckets[i] {
		i++
	}
	h.counts[i].Add(1)
	h.sumNs.Add(int64(d))
	h.n.Add(1)
}

// Snapshot returns the count, the sum in seconds and the cumulative
// count of each bucket of SyncBuckets.
func (h *Histogram) Snapshot() (count uint64, sum float64, cumulative map[float64]uint64) {
	cumulative = make(map[float64]uint64, len(SyncBuckets))
	var c uint64
	for i, ub := range SyncBuckets {
		c += h.counts[i].Load()
		cumulative[ub] = c
	}
	return h.n.Load(), float64(h.sumNs.Load()) / 1e9, cumulative
}

// Usage is what a disk queue holds now.
type Usage struct {
	Bytes    int64 // bytes of the segment files
	MaxBytes int64
	Records  int64 // records not confirmed yet (exact once the start-up count is done)
	Segments int
	// OldestAge is how long the oldest record not yet confirmed has waited;
	// 0 when the output has confirmed everything read so far.
	OldestAge time.Duration
}

// fastBatch is a batch written to segment seg, bytes [start, end), handed
// to the reader in memory.
type fastBatch struct {
	b          *flowgo.Batch
	seg        uint64
	start, end int64
	records    int64
	enqueued   time.Time
}

// fastMax bounds the batches the fast path holds, with the places Puts
// under way hold on it: enough for a few connections' batches while the
// reader hands one to the output, no more (the memory stays bounded).
const fastMax = 8

// fastWait is how long a Put waits for room on the fast path while the
// reader keeps up: under a load the output takes, inputs are paced by it
// as with the memory queue, and nothing is read back from disk. A reader
// that takes nothing for this long (the output is down) is behind: Puts
// then only write, and the backlog builds on disk.
const fastWait = 100 * time.Millisecond

type segInfo struct {
	id      uint64
	size    int64 // final for every segment but the last (the active one)
	damaged bool
}

// Disk is a disk queue with one reader.
type Disk struct {
	cfg   Config
	dir   string
	log   *slog.Logger
	lock  *os.File
	dirF  *os.File
	Stats Stats

	// The writer: appends and rotation.
	writeMu      sync.Mutex
	active       *os.File
	activeID     uint64
	activeSize   int64
	activeRecs   int64      // records in the active segment
	finishedRecs int64      // records of the segment before it, for its summary
	written      uint64     // bytes appended since start: the log sequence number
	unsynced     []finished // finished segments the syncer has yet to sync (and close)
	dirUnsynced  bool       // segments were made since the syncer last synced the directory
	bufs         sync.Pool

	mu        sync.Mutex
	segs      []segInfo // oldest first; the last is the active segment
	diskBytes int64     // the segments' sizes plus room reserved by Puts under way
	published int64     // bytes of the active segment the reader may read
	records   int64     // records written and not confirmed
	spaceCh   chan struct{}
	synced    uint64
	syncCh    chan struct{}
	inClosed  bool // CloseInput: no more Puts
	fullLog   time.Time

	dataCh   chan struct{} // wakes the reader
	gone     []segInfo     // confirmed segments for the remover to delete
	removeCh chan struct{} // wakes the remover
	syncReq  chan struct{} // asks the syncer for an fsync (sync = "batch")

	// The fast path: while the reader keeps up (caughtUp), a batch just
	// written is also handed to it in memory (fast, under mu), already
	// decoded and, when the input could, encoded, so that the reader does
	// not read back and decode what it is about to deliver. The bytes are
	// on disk all the same: the batch is confirmed by its position, and
	// when the reader falls behind it reads from disk and the entries it
	// passed are dropped.
	fast        []fastBatch
	fastPending int           // places on it held by Puts under way (admitFast)
	fastRoom    chan struct{} // closed and replaced when the reader takes an entry
	fastWait    time.Duration // fastWait; tests lengthen it
	caughtUp    atomic.Bool
	putting     atomic.Int32 // Puts under way

	cur     *cursor
	out     chan *flowgo.Batch
	prepare func(*flowgo.Batch)
	stop    chan struct{} // Stop: the reader gives up now
	stopped sync.Once
	quit    chan struct{} // Close: the syncer ends
	wg      sync.WaitGroup
	started bool
	closed  bool
}

// Open opens, or creates, the disk queue at cfg.Path and recovers what it
// holds. It fails only when the directory cannot be used (a *PathError):
// damaged contents are recovered, logged and counted.
func Open(cfg Config) (*Disk, error) {
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	if cfg.MaxBytes <= 0 {
		cfg.MaxBytes = DefaultMaxBytes
	}
	if cfg.SegmentBytes <= 0 {
		cfg.SegmentBytes = min(max(cfg.MaxBytes/16, minSegmentBytes), maxSegmentBytes)
	}
	if cfg.Sync == "" {
		cfg.Sync = SyncInterval
	}
	if cfg.SyncInterval <= 0 {
		cfg.SyncInterval = DefaultSyncInterval
	}
	if cfg.BatchRecords <= 0 {
		cfg.BatchRecords = 1024
	}
	if cfg.BatchBytes <= 0 {
		cfg.BatchBytes = 1 << 20
	}
	if cfg.Reader == "" {
		cfg.Reader = "output"
	}
	d := &Disk{
		cfg: cfg, dir: cfg.Path, log: cfg.Log.With("queue", cfg.Path),
		spaceCh: make(chan struct{}), syncCh: make(chan struct{}),
		dataCh: make(chan struct{}, 1), syncReq: make(chan struct{}, 1), removeCh: make(chan struct{}, 1),
		out: make(chan *flowgo.Batch, 2), stop: make(chan struct{}), quit: make(chan struct{}),
		fastWait: fastWait,
	}
	if err := d.openDir(); err != nil {
		return nil, err
	}
	ok := false
	defer func() {
		if !ok {
			d.release()
		}
	}()
	if err := d.recover(); err != nil {
		return nil, &PathError{Path: d.dir, Err: err}
	}
	ok = true
	return d, nil
}

// openDir creates the directory, locks it and opens it for fsync.
func (d *Disk) openDir() error {
	fi, err := os.Stat(d.dir)
	switch {
	case errors.Is(err, os.ErrNotExist):
		if err := os.MkdirAll(d.dir, 0o700); err != nil {
			return &PathError{Path: d.dir, Err: err}
		}
	case err != nil:
		return &PathError{Path: d.dir, Err: err}
	case !fi.IsDir():
		return &PathError{Path: d.dir, Err: errors.New("not a directory")}
	}
	lock, err := os.OpenFile(filepath.Join(d.dir, "lock"), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return &PathError{Path: d.dir, Err: err}
	}
	if err := flock(lock); err != nil {
		var pid [32]byte
		n, _ := lock.ReadAt(pid[:], 0)
		lock.Close()
		holder := strings.TrimSpace(string(pid[:n]))
		switch holder {
		case "":
			holder = "another process"
		case strconv.Itoa(os.Getpid()):
			holder = "another pipeline of this process"
		default:
			holder = "process " + holder
		}
		return &PathError{Path: d.dir, Err: fmt.Errorf("in use by %s (locked): %w", holder, err)}
	}
	lock.Truncate(0)
	lock.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	d.lock = lock
	if d.dirF, err = os.Open(d.dir); err != nil {
		return &PathError{Path: d.dir, Err: err}
	}
	return nil
}

// release closes the files of a queue that did not open or is closed.
func (d *Disk) release() {
	if d.active != nil {
		d.active.Close()
	}
	for _, u := range d.unsynced {
		u.f.Close()
	}
	d.unsynced = nil
	if d.cur != nil {
		d.cur.close()
	}
	if d.dirF != nil {
		d.dirF.Close()
	}
	if d.lock != nil {
		d.lock.Close() // releases the flock
	}
}

// recover takes stock of the segments, truncates a torn tail, loads the
// read position and starts a new active segment.
func (d *Disk) recover() error {
	removeOrphanSummaries(d.dir)
	ids, err := listSegments(d.dir)
	if err != nil {
		return err
	}
	for i, id := range ids {
		if i > 0 && id != ids[i-1]+1 {
			// Segments are numbered without gaps: these were deleted
			// behind flowgo's back, and their records with them.
			d.Stats.MissingSegments.Add(int64(id - ids[i-1] - 1))
			d.log.Error("disk queue: segments are missing; the records they held are lost",
				"from", filepath.Join(d.dir, segmentName(ids[i-1]+1)), "to", filepath.Join(d.dir, segmentName(id-1)))
		}
		path := filepath.Join(d.dir, segmentName(id))
		size, err := segmentSize(path)
		if err != nil {
			return err
		}
		if i == len(ids)-1 {
			end, err := recoverTail(path, id)
			if err != nil {
				return err
			}
			if end < segmentHeader {
				// Created and never written whole: nothing to keep.
				d.log.Warn("disk queue: removing an empty segment left by a crash", "segment", path, "bytes", size)
				if err := os.Remove(path); err != nil {
					return err
				}
				d.Stats.TornBytes.Add(size)
				continue
			}
			if end < size {
				if err := os.Truncate(path, end); err != nil {
					return err
				}
				d.Stats.TornBytes.Add(size - end)
				d.log.Warn("disk queue: truncated a torn write at the end of the newest segment",
					"segment", path, "offset", end, "bytes", size-end)
				size = end
			}
		}
		d.segs = append(d.segs, segInfo{id: id, size: size})
		d.diskBytes += size
	}
	next := uint64(1)
	if len(d.segs) > 0 {
		next = d.segs[len(d.segs)-1].id + 1
	}
	if err := d.loadCursor(); err != nil {
		return err
	}
	// Always write a new segment: an old one may end in damage.
	if err := d.createSegment(next); err != nil {
		return err
	}
	return nil
}

// createSegment creates segment id and makes it the active one. Called
// with writeMu held, or before the queue runs.
func (d *Disk) createSegment(id uint64) error {
	path := filepath.Join(d.dir, segmentName(id))
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.WriteAt(appendSegmentHeader(nil, id), 0); err != nil {
		f.Close()
		os.Remove(path)
		return err
	}
	old := d.active
	d.finishedRecs = d.activeRecs
	oldID := d.activeID
	d.active, d.activeID, d.activeSize, d.activeRecs = f, id, segmentHeader, 0
	d.mu.Lock()
	// The segment before keeps its size as written: final from now on.
	d.segs = append(d.segs, segInfo{id: id, size: segmentHeader})
	d.diskBytes += segmentHeader
	d.published = segmentHeader
	d.mu.Unlock()
	if d.cfg.Sync != SyncNone {
		// The syncer syncs the segment finished and the directory (the
		// new name must survive a power loss with the data synced in
		// it) before it counts anything after them as synced; the
		// appends go on meanwhile.
		if old != nil {
			d.unsynced = append(d.unsynced, finished{old, oldID})
		}
		d.dirUnsynced = true
	} else if old != nil {
		old.Close()
	}
	d.wake()
	return nil
}

// SetPrepare sets what the reader does to each batch before handing it to
// the output stage (the pipeline encodes it). Call it before Start.
func (d *Disk) SetPrepare(f func(*flowgo.Batch)) { d.prepare = f }

// Start starts the reader, the syncer and the remover.
func (d *Disk) Start() {
	if d.started {
		return
	}
	d.started = true
	from := d.cur.readPos
	d.wg.Add(2)
	go func() {
		defer d.wg.Done()
		d.readLoop()
	}()
	go func() {
		defer d.wg.Done()
		d.syncLoop()
	}()
	d.wg.Add(2)
	go func() {
		defer d.wg.Done()
		d.countBacklog(from)
	}()
	go func() {
		defer d.wg.Done()
		d.removeLoop()
	}()
}

// Batches returns the channel of batches read back for the output stage,
// in the order they were queued. It is closed after CloseInput once
// everything queued was read, or after Stop.
func (d *Disk) Batches() <-chan *flowgo.Batch { return d.out }

// Put appends b to the queue, waiting while the disk budget is spent (the
// backpressure inputs pass on). When it returns nil the batch is written,
// and with sync = "batch" synced; b then belongs to the queue. So it does
// when Put returns ErrNotSynced: with sync = "batch", the batch was written
// but ctx ended before the sync (do not count it as lost, and do not
// acknowledge it as durable). Otherwise b is the caller's still: ctx ended
// (ctx.Err()) or the queue is closed (ErrClosed).
func (d *Disk) Put(ctx context.Context, b *flowgo.Batch) error {
	d.putting.Add(1)
	defer d.putting.Add(-1)
	bufp, _ := d.bufs.Get().(*[]byte)
	if bufp == nil {
		bufp = new([]byte)
	}
	buf := appendBatchFrame((*bufp)[:0], time.Now(), b.Len(), b.Source)
	for i := range b.Records {
		var start int
		buf, start = beginFrame(buf, kindRecord)
		buf = appendRecord(buf, &b.Records[i])
		buf = endFrame(buf, start)
	}
	*bufp = buf
	defer func() {
		if cap(*bufp) <= 4<<20 {
			d.bufs.Put(bufp)
		}
	}()
	if err := d.reserve(ctx, int64(len(buf))); err != nil {
		return err
	}
	admitted := d.admitFast(ctx)
	lsn, taken, err := d.append(ctx, buf, b, admitted)
	if err != nil {
		if admitted {
			d.mu.Lock()
			d.fastPending--
			d.fastFreedLocked()
			d.mu.Unlock()
		}
		d.unreserve(int64(len(buf)))
		return err
	}
	if !taken {
		flowgo.PutBatch(b)
	}
	if d.cfg.Sync == SyncBatch {
		if err := d.waitSynced(ctx, lsn); err != nil {
			return err
		}
	}
	return nil
}

// admitFast waits, while the reader keeps up, until the fast path has
// room, for at most fastWait, and then holds a place on it for the batch
// about to be appended: the append hands the batch over in that place
// whatever other Puts do meanwhile. Without the hold, the Puts a reader's
// take wakes all see the one free place, one gets it and the others'
// batches are written only, which leaves the reader a gap to read from
// disk, and a reader reading from disk falls behind for good at
// saturation. False: the batch goes to disk only.
func (d *Disk) admitFast(ctx context.Context) bool {
	if !d.caughtUp.Load() {
		return false
	}
	var timer *time.Timer
	d.mu.Lock()
	for {
		if d.inClosed || !d.caughtUp.Load() {
			d.mu.Unlock()
			return false
		}
		if len(d.fast)+d.fastPending < fastMax {
			d.fastPending++
			d.mu.Unlock()
			return true
		}
		if d.fastRoom == nil {
			d.fastRoom = make(chan struct{})
		}
		ch := d.fastRoom
		d.mu.Unlock()
		if timer == nil {
			timer = time.NewTimer(d.fastWait)
			defer timer.Stop()
		}
		select {
		case <-ch:
		case <-timer.C:
			d.caughtUp.Store(false) // the reader stalls: write only
			d.log.Debug("disk queue: the reader took nothing for a while: batches go to disk only until it catches up", "waited", d.fastWait)
			return false
		case <-ctx.Done():
			return false
		}
		d.mu.Lock()
	}
}

// fastFreedLocked wakes the Puts waiting for room on the fast path.
func (d *Disk) fastFreedLocked() {
	if d.fastRoom != nil {
		close(d.fastRoom)
		d.fastRoom = nil
	}
}

// Busy reports whether a Put is under way: several inputs put at once.
func (d *Disk) Busy() bool { return d.putting.Load() > 0 }

// CaughtUp reports whether the reader keeps up with the writers: batches
// put now are likely to reach the output through the fast path, so that
// encoding them on the input's goroutine (in parallel) pays off.
func (d *Disk) CaughtUp() bool { return d.caughtUp.Load() }

// reserve waits until the budget has room for n bytes and takes it. A
// batch larger than the budget is let in when nothing is pending.
func (d *Disk) reserve(ctx context.Context, n int64) error {
	d.mu.Lock()
	for {
		if d.inClosed {
			d.mu.Unlock()
			return ErrClosed
		}
		if d.diskBytes+n <= d.cfg.MaxBytes || d.records == 0 {
			d.diskBytes += n
			d.mu.Unlock()
			return nil
		}
		if time.Since(d.fullLog) > time.Minute {
			d.fullLog = time.Now()
			d.log.Warn("disk queue full: inputs wait until the output confirms records", "bytes", d.diskBytes, "max_bytes", d.cfg.MaxBytes)
		}
		ch := d.spaceCh
		d.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
		d.mu.Lock()
	}
}

func (d *Disk) unreserve(n int64) {
	d.mu.Lock()
	d.diskBytes -= n
	d.spaceFreedLocked()
	d.mu.Unlock()
}

// spaceFreedLocked wakes the Puts waiting for room.
func (d *Disk) spaceFreedLocked() {
	close(d.spaceCh)
	d.spaceCh = make(chan struct{})
}

// append writes buf at the end of the active segment, rotating first when
// it would grow past the segment size. A failed write (a full disk, an I/O
// error) is rolled back and retried with back-off until ctx ends: nothing
// is lost, the input waits. It returns the log sequence number after buf.
func (d *Disk) append(ctx context.Context, buf []byte, b *flowgo.Batch, admitted bool) (uint64, bool, error) {
	delay := 10 * time.Millisecond
	for attempt := 1; ; attempt++ {
		lsn, taken, err := d.tryAppend(buf, b, admitted)
		if err == nil {
			if attempt > 1 {
				d.log.Info("disk queue: writing again", "attempts", attempt)
			}
			return lsn, taken, nil
		}
		d.Stats.WriteErrors.Add(1)
		if attempt == 1 || attempt%100 == 0 {
			level := slog.LevelWarn
			if !errors.Is(err, syscall.ENOSPC) && !errors.Is(err, syscall.EDQUOT) {
				level = slog.LevelError
			}
			d.log.Log(ctx, level, "disk queue: write failed; inputs wait and the write is retried", "error", err, "attempt", attempt)
		}
		d.mu.Lock()
		ch := d.spaceCh
		d.mu.Unlock()
		t := time.NewTimer(delay)
		select {
		case <-t.C:
		case <-ch: // a segment was deleted: there may be room now
			t.Stop()
		case <-ctx.Done():
			t.Stop()
			return 0, false, ctx.Err()
		}
		delay = min(2*delay, time.Second)
	}
}

// tryAppend writes buf (b's frames) once. taken says that b went to the
// fast path: the queue owns it. admitted says that admitFast holds a place
// there for it; a successful write gives the place up (taking it or not).
func (d *Disk) tryAppend(buf []byte, b *flowgo.Batch, admitted bool) (lsn uint64, taken bool, err error) {
	records := int64(b.Len())
	d.writeMu.Lock()
	defer d.writeMu.Unlock()
	if d.closed {
		return 0, false, ErrClosed
	}
	if d.activeSize+int64(len(buf)) > d.cfg.SegmentBytes && d.activeSize > segmentHeader {
		if err := d.rotateLocked(); err != nil {
			return 0, false, err
		}
	}
	if _, err := d.active.WriteAt(buf, d.activeSize); err != nil {
		// Take back what part of buf reached the file, so that the
		// retry appends it whole.
		if terr := d.active.Truncate(d.activeSize); terr != nil {
			err = errors.Join(err, terr)
		}
		return 0, false, err
	}
	start := d.activeSize
	d.activeSize += int64(len(buf))
	d.activeRecs += records
	d.written += uint64(len(buf))
	d.mu.Lock()
	d.published = d.activeSize
	d.segs[len(d.segs)-1].size = d.activeSize
	d.records += records
	if admitted {
		d.fastPending--
	}
	if d.caughtUp.Load() && !d.inClosed && (admitted || len(d.fast)+d.fastPending < fastMax) {
		d.fast = append(d.fast, fastBatch{b: b, seg: d.activeID, start: start, end: d.activeSize,
			records: records, enqueued: time.Now()})
		taken = true
	} else if admitted {
		d.fastFreedLocked()
	}
	d.mu.Unlock()
	d.wake()
	return d.written, taken, nil
}

// rotateLocked starts the next segment; the syncer syncs the one finished
// (unless sync = "none"), off the appends' path: an fsync of a whole
// segment takes tens of milliseconds, which every Put waited for when the
// rotation made it. Called with writeMu held.
func (d *Disk) rotateLocked() error {
	if err := d.createSegment(d.activeID + 1); err != nil {
		return err
	}
	d.summarizeFinished()
	if d.cfg.Sync == SyncBatch {
		d.askSync()
	}
	return nil
}

// summarizeFinished writes the summary of the segment just finished (the
// one before the active segment). Called with writeMu held.
func (d *Disk) summarizeFinished() {
	d.mu.Lock()
	prev := d.segs[len(d.segs)-2]
	d.mu.Unlock()
	if err := writeSummary(d.dir, prev.id, prev.size, d.finishedRecs); err != nil {
		d.log.Warn("disk queue: cannot write a segment summary (the next start counts the backlog by reading it)", "error", err)
	}
}

func (d *Disk) wake() {
	select {
	case d.dataCh <- struct{}{}:
	default:
	}
}

// syncedTo records that everything up to lsn is on stable storage (or
// delivered), after an fsync that took took; a negative took: no fsync.
func (d *Disk) syncedTo(lsn uint64, took time.Duration) {
	if took >= 0 {
		d.Stats.Syncs.Add(1)
		d.Stats.SyncSeconds.Observe(took)
	}
	d.mu.Lock()
	if lsn > d.synced {
		d.synced = lsn
		close(d.syncCh)
		d.syncCh = make(chan struct{})
	}
	d.mu.Unlock()
}

// finished is a segment finished and not synced yet, with its file.
type finished struct {
	f  *os.File
	id uint64
}

// fsync syncs a segment or the directory; tests watch it.
var fsync = (*os.File).Sync

// askSync asks the syncer for a sync now.
func (d *Disk) askSync() {
	select {
	case d.syncReq <- struct{}{}:
	default:
	}
}

func (d *Disk) waitSynced(ctx context.Context, lsn uint64) error {
	d.askSync()
	d.mu.Lock()
	for d.synced < lsn {
		ch := d.syncCh
		d.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return fmt.Errorf("%w: %w", ErrNotSynced, ctx.Err())
		}
		d.mu.Lock()
	}
	d.mu.Unlock()
	return nil
}

// syncLoop fsyncs: with sync = "batch" whenever a Put asks (Puts that
// arrive during one fsync share the next), with "interval" on a ticker.
// Read positions are synced on the ticker under every policy but "none".
func (d *Disk) syncLoop() {
	tick := time.NewTicker(d.cfg.SyncInterval)
	defer tick.Stop()
	var f *os.File // our own descriptor of the active segment
	var fid uint64
	defer func() {
		if f != nil {
			f.Close()
		}
	}()
	syncActive := func() {
		d.writeMu.Lock()
		id, lsn := d.activeID, d.written
		pending, dir := d.unsynced, d.dirUnsynced
		d.unsynced, d.dirUnsynced = nil, false
		d.writeMu.Unlock()
		d.mu.Lock()
		done := d.synced >= lsn
		d.mu.Unlock()
		if done && len(pending) == 0 && !dir {
			return
		}
		start := time.Now()
		// The segments finished since the last sync, oldest first, and
		// the directory that names the segments made since: everything
		// before the active segment's bytes.
		for i, u := range pending {
			d.mu.Lock()
			confirmed := len(d.segs) == 0 || u.id < d.segs[0].id
			d.mu.Unlock()
			if confirmed {
				// Delivered whole (and deleted, or about to be): what
				// a power loss takes of it, nobody needs. Skipping the
				// fsync spares the disk writing it at all.
				u.f.Close()
				continue
			}
			if err := fsync(u.f); err != nil {
				d.log.Error("disk queue: fsync failed", "segment", u.f.Name(), "error", err)
				d.requeueUnsynced(pending[i:], dir)
				return
			}
			u.f.Close()
		}
		if dir {
			if err := fsync(d.dirF); err != nil {
				d.log.Error("disk queue: fsync of the directory failed", "path", d.dir, "error", err)
				d.requeueUnsynced(nil, true)
				return
			}
		}
		if fid != id || f == nil {
			if f != nil {
				f.Close()
				f = nil
			}
			nf, err := os.Open(filepath.Join(d.dir, segmentName(id)))
			if err != nil {
				d.mu.Lock()
				confirmed := len(d.segs) == 0 || id < d.segs[0].id
				d.mu.Unlock()
				if confirmed {
					// Finished and delivered whole meanwhile: what was
					// written up to lsn is synced or delivered.
					d.syncedTo(lsn, -1)
				} else {
					d.log.Error("disk queue: cannot open the active segment to sync it", "error", err)
				}
				return
			}
			f, fid = nf, id
		}
		if err := fsync(f); err != nil {
			d.log.Error("disk queue: fsync failed", "segment", f.Name(), "error", err)
			return
		}
		d.syncedTo(lsn, time.Since(start))
	}
	for {
		select {
		case <-d.quit:
			if d.cfg.Sync != SyncNone {
				syncActive()
				d.cur.syncPosition(d.log)
			}
			return
		case <-d.syncReq:
			syncActive()
		case <-tick.C:
			if d.cfg.Sync == SyncNone {
				continue
			}
			syncActive()
			d.cur.syncPosition(d.log)
		}
	}
}

// requeueUnsynced gives back to the next sync the finished segments and
// the directory a failed one did not sync.
func (d *Disk) requeueUnsynced(files []finished, dir bool) {
	d.writeMu.Lock()
	d.unsynced = append(files[:len(files):len(files)], d.unsynced...)
	d.dirUnsynced = d.dirUnsynced || dir
	d.writeMu.Unlock()
}

// CloseInput ends the input side: Puts fail from now on, and the reader
// closes Batches once it has read everything queued. Call it after every
// producer's Put has returned.
func (d *Disk) CloseInput() {
	d.mu.Lock()
	d.inClosed = true
	d.spaceFreedLocked()
	d.fastFreedLocked()
	d.mu.Unlock()
	d.wake()
}

// Stop makes the reader give up now (the shutdown timeout passed): what it
// has not handed over stays queued on disk for the next start.
func (d *Disk) Stop() {
	d.stopped.Do(func() { close(d.stop) })
}

// Close stops the reader, the syncer and the remover, syncs (unless sync = "none"),
// and releases the directory. Call it after the output stage is done.
func (d *Disk) Close() error {
	d.CloseInput()
	d.Stop()
	d.writeMu.Lock()
	d.closed = true
	d.writeMu.Unlock()
	close(d.quit)
	d.wg.Wait()
	d.mu.Lock()
	for _, f := range d.fast {
		flowgo.PutBatch(f.b)
	}
	d.fast = nil
	d.mu.Unlock()
	d.removeGone() // what the remover had no time for
	var err error
	if d.cfg.Sync != SyncNone {
		// What the syncer did not sync (it was not started, or failed).
		for _, u := range d.unsynced {
			err = errors.Join(err, fsync(u.f))
		}
		if d.dirUnsynced {
			err = errors.Join(err, fsync(d.dirF))
		}
		err = errors.Join(err, fsync(d.active))
	}
	// The next start begins a new segment: this one is finished.
	if serr := writeSummary(d.dir, d.activeID, d.activeSize, d.activeRecs); serr != nil {
		d.log.Warn("disk queue: cannot write a segment summary (the next start counts the backlog by reading it)", "error", serr)
	}
	d.release()
	d.log.Debug("disk queue closed", "fast_batches", d.Stats.FastBatches.Load(), "read_batches", d.Stats.ReadBatches.Load())
	return err
}

// Path returns the queue's directory.
func (d *Disk) Path() string { return d.dir }

// Usage returns what the queue holds now.
func (d *Disk) Usage() Usage {
	d.mu.Lock()
	u := Usage{Bytes: d.diskBytes, MaxBytes: d.cfg.MaxBytes, Records: max(d.records, 0), Segments: len(d.segs)}
	d.mu.Unlock()
	u.OldestAge = d.cur.oldestAge(time.Now())
	return u
}

// countBacklog counts the records in the segments found at start, which
// the queue did not write itself, for Usage.
func (d *Disk) countBacklog(from flowgo.QueuePos) {
	d.mu.Lock()
	var old []segInfo
	if len(d.segs) > 1 {
		old = append(old, d.segs[:len(d.segs)-1]...)
	}
	d.mu.Unlock()
	buf := make([]byte, 0, readChunk)
	var n int64
	for _, s := range old {
		if s.id < from.Segment {
			continue
		}
		if s.id > from.Segment {
			if recs, ok := readSummary(d.dir, s.id, s.size); ok {
				n += recs
				continue
			}
		}
		path := filepath.Join(d.dir, segmentName(s.id))
		f, err := os.Open(path)
		if err != nil {
			continue // confirmed and deleted meanwhile
		}
		pos := int64(0)
		if s.id == from.Segment {
			pos = from.Offset
		}
		sr := newSegmentReader(f, path, pos, s.size, buf)
		sr.checkHeader(s.id)
		for {
			select {
			case <-d.stop:
				f.Close()
				return
			default:
			}
			fr, _, err := sr.next()
			if err != nil {
				break
			}
			if fr.kind == kindRecord {
				n++
			}
		}
		buf = sr.buf
		f.Close()
	}
	d.mu.Lock()
	d.records += n
	d.mu.Unlock()
}

var _ io.Closer = (*Disk)(nil)
