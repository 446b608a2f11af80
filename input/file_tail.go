package input

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/flowgo/flowgo"
	"github.com/flowgo/flowgo/internal/ratelog"
	"github.com/fsnotify/fsnotify"
)

// How the tailer paces itself. None of these changes what is read, only
// how soon.
const (
	// passBudget bounds the bytes read from one file before the next file's
	// turn, so that one busy file cannot starve the others.
	passBudget = 256 << 10
	// tickEvery is the housekeeping period: timeouts, rotated files, hand-over
	// of a batch that is filling slowly.
	tickEvery = 100 * time.Millisecond
	// pollEvery is how often open files are checked with fstat for growth
	// inotify did not report (file systems without inotify, NFS).
	pollEvery = time.Second
	// scanDebounce is how soon after an inotify create, rename or remove
	// event the glob is expanded again.
	scanDebounce = 50 * time.Millisecond
	// splitterIdle: a file that has not grown for this long gives back its
	// read buffer (it keeps its descriptor until file_idle_timeout).
	splitterIdle = 2 * time.Second
	// lastLineWindow is how far back read_from = "end" looks for the start
	// of a partly written last line.
	lastLineWindow = 64 << 10
)

// tailFile is one file being tailed, known by its identity (device and
// inode), whatever its name now.
type tailFile struct {
	id   fileID
	path string // where it was last found
	gen  uint32 // bumped when the file is truncated or replaced
	fp   fingerprint

	fd     *os.File
	rd     fileReader
	sp     *Splitter
	spBase int64 // file offset of the splitter's stream offset 0
	off    int64 // without a splitter: where reading resumes

	ml multiline

	dirty        bool // may have bytes not read yet
	touched      bool // its checkpoint may have moved since the last hand-over
	rotated      bool // its name no longer leads to it
	rotatedAt    time.Time
	deleted      bool // no name leads to it (nlink 0)
	released     bool
	lastData     time.Time
	partialSince time.Time // since when an unterminated line waits, unchanged
}

// dropSplitter gives f's read buffers back; reading goes on from f.off.
func (f *tailFile) dropSplitter() {
	if f.sp != nil {
		f.sp.Close()
		f.sp = nil
	}
}

// readPos is the file offset of the next byte to read.
func (f *tailFile) readPos() int64 {
	if f.sp != nil {
		return f.rd.off
	}
	return f.off
}

// consumedOff is the offset just past the lines taken from the file.
func (f *tailFile) consumedOff() int64 {
	if f.sp != nil {
		return f.spBase + f.sp.Consumed()
	}
	return f.off
}

// commitOff is where reading must resume to miss nothing: before a
// multi-line record still being joined, and before an unterminated line.
func (f *tailFile) commitOff() int64 {
	if f.ml.pending {
		return f.ml.startOff
	}
	return f.consumedOff()
}

// fileReader reads a tailed file for its splitter, with pread from off. At
// the end of the file, and after budget bytes, it returns ErrNoData.
type fileReader struct {
	f       *os.File
	off     int64
	budget  int
	yielded bool      // stopped by the budget, not by the end of the file
	err     error     // a read error other than the end of the file
	count   func(int) // ByteCounter.CountBytes, or nil
}

func (r *fileReader) Read(p []byte) (int, error) {
	if r.budget <= 0 {
		r.yielded = true
		return 0, ErrNoData
	}
	if len(p) > r.budget {
		p = p[:r.budget]
	}
	n, err := r.f.ReadAt(p, r.off)
	r.off += int64(n)
	r.budget -= n
	if n > 0 {
		if r.count != nil {
			r.count(n)
		}
		return n, nil
	}
	if err != nil && !errors.Is(err, io.EOF) {
		r.err = err
	}
	return 0, ErrNoData
}

// handoverItem is a batch (nil when there is none) and the checkpoint
// changes that hold once it is confirmed.
type handoverItem struct {
	b   *flowgo.Batch
	ops []ckOp
}

// tailer runs one file input: a single goroutine finds, reads, frames,
// joins and decodes; a second hands batches to the pipeline and advances
// the checkpoints when the pipeline confirms them; a third writes the
// checkpoint file.
type tailer struct {
	in       *File
	k        fileKeys
	c        Config
	log      *slog.Logger
	sink     Sink
	store    *checkpointStore
	firstRun bool // no checkpoint file: read_from applies to the first scan

	bt         *Batcher
	peerPath   string    // the path the batcher adds as path_field now
	countBytes func(int) // the sink's ByteCounter: every byte read is counted as read
	handover   chan handoverItem
	failed     atomic.Bool // the pipeline refused a batch: it is stopping for good

	files      map[fileID]*tailFile
	byPath     map[string]*tailFile
	order      []*tailFile // the files in path order, for round-robin reading
	orderDirty bool
	nOpen      int
	ops        []ckOp
	touched    []*tailFile
	headBuf    []byte

	skipped      map[fileID]bool       // compressed files and copies matched by src, logged once
	firstEntries map[fileID]checkpoint // the checkpoints found at start, during the first scan
	copied       map[fileID]bool       // checkpoints whose content is read from a copy

	watcher  *fsnotify.Watcher
	watched  map[string]bool
	scanAt   time.Time
	lastPoll time.Time

	logRead, logWatch, logSave *ratelog.Log
}

func newTailer(in *File, sink Sink, store *checkpointStore, firstRun bool) *tailer {
	log := in.c.Log
	t := &tailer{
		in: in, k: in.k, c: in.c, log: log, sink: sink, store: store, firstRun: firstRun,
		handover: make(chan handoverItem, 2),
		files:    map[fileID]*tailFile{},
		byPath:   map[string]*tailFile{},
		watched:  map[string]bool{},
		skipped:  map[fileID]bool{},
		copied:   map[fileID]bool{},
		headBuf:  make([]byte, max(fpMax, lastLineWindow)),
		logRead:  ratelog.New(log, "file read errors", "path", 10*time.Second, 5),
		logWatch: ratelog.New(log, "inotify errors", "path", 10*time.Second, 5),
		logSave:  ratelog.New(log, "checkpoint writes failed", "path", 10*time.Second, 3),
	}
	t.bt = NewBatcher(in.c.Decoder, fileBatchSink{t}, in.c.Name, in.c.BatchRecords, in.c.BatchBytes)
	if bc, ok := sink.(ByteCounter); ok {
		t.countBytes = bc.CountBytes
	}
	return t
}

// fileBatchSink is the Sink the tailer's Batcher hands full batches to: it
// passes them, with the checkpoint changes they carry, to the goroutine that
// confirms them.
type fileBatchSink struct{ t *tailer }

func (s fileBatchSink) Put(b *flowgo.Batch) error {
	s.t.handover <- handoverItem{b: b, ops: s.t.takeOps()}
	if s.t.failed.Load() {
		return errStopped
	}
	return nil
}
func (s fileBatchSink) Prepare(b *flowgo.Batch) { s.t.sink.Prepare(b) }
func (s fileBatchSink) Reject(origin string, frame []byte, err error) {
	s.t.sink.Reject(origin, frame, err)
}
func (s fileBatchSink) Dropped(n int, reason string) { s.t.sink.Dropped(n, reason) }

func (t *tailer) run(ctx context.Context) error {
	if t.in.noInotify {
		t.log.Info("inotify off: files are polled")
	} else if w, err := fsnotify.NewBufferedWatcher(1024); err != nil {
		t.log.Warn("inotify unavailable: files are polled every second and the glob every file_scan_interval", "error", err)
	} else {
		t.watcher = w
		defer w.Close()
	}
	now := time.Now()
	t.scan(now, true)
	// Write the first checkpoints before reading anything, so that a restart
	// knows the files found now (and where read_from put them).
	t.store.apply(t.takeOps())
	if err := t.store.saveNow(); err != nil {
		t.closeAll()
		return fmt.Errorf("file: writing the checkpoint file: %w", err)
	}
	t.log.Info("tailing files", "src", t.k.Src, "files", len(t.files), "checkpoints", t.in.path,
		"read_from", t.readFromNote(), "inotify", t.watcher != nil)

	commitDone := make(chan struct{})
	go t.commit(commitDone)
	saveStop, saveDone := make(chan struct{}), make(chan struct{})
	go t.saveLoop(saveStop, saveDone)

	t.loop(ctx)

	// Hand over the records complete so far. An unterminated line and a
	// multi-line record still being joined stay behind the checkpoint and
	// are read again at the next start.
	t.handOver()
	t.bt.Release()
	close(t.handover)
	<-commitDone
	close(saveStop)
	<-saveDone
	if err := t.store.save(); err != nil {
		t.in.st.ckErrors.Add(1)
		t.log.Error("writing the checkpoint file at exit failed: the next start reads some lines again", "path", t.in.path, "error", err)
	}
	t.closeAll()
	for _, l := range []*ratelog.Log{t.logRead, t.logWatch, t.logSave} {
		l.Flush()
	}
	return nil
}

func (t *tailer) readFromNote() string {
	if !t.firstRun {
		return "checkpoints (files without one from the beginning)"
	}
	return t.k.ReadFrom
}

func (t *tailer) closeAll() {
	for _, f := range t.files {
		f.dropSplitter()
		if f.fd != nil {
			f.fd.Close()
			f.fd = nil
		}
	}
	t.nOpen = 0
}

// commit hands batches to the pipeline in order and applies the checkpoint
// changes each one carries once the pipeline has taken it.
func (t *tailer) commit(done chan struct{}) {
	defer close(done)
	for it := range t.handover {
		if it.b != nil {
			if err := t.sink.Put(it.b); err != nil {
				t.failed.Store(true)
			}
		}
		if !t.failed.Load() {
			t.store.apply(it.ops)
		}
	}
}

func (t *tailer) saveLoop(stop, done chan struct{}) {
	defer close(done)
	tick := time.NewTicker(t.k.CheckpointInterval)
	defer tick.Stop()
	for {
		select {
		case <-stop:
			return
		case <-tick.C:
			if err := t.store.save(); err != nil {
				t.in.st.ckErrors.Add(1)
				t.logSave.Event(slog.LevelError, "writing the checkpoint file failed, retrying", t.in.path, err)
			}
		}
	}
}

func (t *tailer) loop(ctx context.Context) {
	tick := time.NewTicker(tickEvery)
	defer tick.Stop()
	var events chan fsnotify.Event
	var errs chan error
	if t.watcher != nil {
		events, errs = t.watcher.Events, t.watcher.Errors
	}
	for ctx.Err() == nil && !t.failed.Load() {
		read := t.readRound(time.Now())
		t.drainEvents(events, errs)
		if read > 0 {
			select {
			case <-tick.C:
				t.housekeep(time.Now())
			default:
			}
			continue
		}
		// Nothing more to read now: hand the batch over before waiting.
		t.handOver()
		select {
		case <-ctx.Done():
			return
		case ev, ok := <-events:
			if !ok {
				events = nil
				continue
			}
			t.onEvent(ev)
		case err, ok := <-errs:
			if !ok {
				errs = nil
				continue
			}
			t.onWatchError(err)
		case <-tick.C:
			t.housekeep(time.Now())
		}
	}
}

func (t *tailer) drainEvents(events chan fsnotify.Event, errs chan error) {
	for range 4096 {
		select {
		case ev, ok := <-events:
			if !ok {
				return
			}
			t.onEvent(ev)
		case err, ok := <-errs:
			if !ok {
				return
			}
			t.onWatchError(err)
		default:
			return
		}
	}
}

func (t *tailer) onEvent(ev fsnotify.Event) {
	if ev.Has(fsnotify.Write) {
		if f := t.byPath[ev.Name]; f != nil {
			f.dirty = true
		}
	}
	if ev.Has(fsnotify.Create) || ev.Has(fsnotify.Remove) || ev.Has(fsnotify.Rename) {
		if ev.Has(fsnotify.Remove) || ev.Has(fsnotify.Rename) {
			delete(t.watched, ev.Name) // a watched directory that went away
		}
		if due := time.Now().Add(scanDebounce); due.Before(t.scanAt) {
			t.scanAt = due
		}
	}
}

func (t *tailer) onWatchError(err error) {
	if errors.Is(err, fsnotify.ErrEventOverflow) {
		// Events were lost: look at everything.
		t.logWatch.Event(slog.LevelWarn, "inotify queue overflowed: rescanning", "", err)
		t.scanAt = time.Now()
		for _, f := range t.files {
			f.dirty = true
		}
		return
	}
	t.logWatch.Event(slog.LevelWarn, "inotify error", "", err)
}

// readRound reads every file that may have grown, each up to passBudget.
func (t *tailer) readRound(now time.Time) (read int64) {
	if t.orderDirty {
		t.order = t.order[:0]
		for _, f := range t.files {
			t.order = append(t.order, f)
		}
		sort.Slice(t.order, func(i, j int) bool { return t.order[i].path < t.order[j].path })
		t.orderDirty = false
	}
	for _, f := range t.order {
		if !f.dirty || f.released {
			continue
		}
		read += t.readFile(f, now)
		if t.failed.Load() {
			return read
		}
	}
	return read
}

// readFile reads what f has gained, up to passBudget bytes.
func (t *tailer) readFile(f *tailFile, now time.Time) int64 {
	if f.fd == nil {
		if !t.slot() {
			return 0 // stays dirty: read when a descriptor frees up
		}
		if !t.reopen(f) {
			return 0
		}
	}
	st, err := f.fd.Stat()
	if err != nil {
		t.readFailed(f, err)
		return 0
	}
	size := st.Size()
	if nlink(st) == 0 {
		f.deleted = true
	}
	if f.fp.Len == 0 && size > 0 {
		// Empty when found: it may be a compressed file being written.
		if kind := compressed(t.readHead(f.fd, size)); kind != "" {
			t.skipped[f.id] = true
			t.release(f, releaseSkipped, "it turned out "+kind+"-compressed (a rotated log?)")
			return 0
		}
	}
	if size < f.readPos() {
		t.restart(f, size, "truncated")
	} else if !t.checkHead(f, size) {
		t.restart(f, size, "truncated and written again (its first bytes changed)")
	}
	if size == f.readPos() {
		f.dirty = false
		return 0
	}
	if f.sp == nil {
		f.spBase = f.off
		f.rd = fileReader{f: f.fd, off: f.off}
		f.sp = NewSplitter(&f.rd, t.c.Framing, t.c.MaxMessageSize, t.c.Truncate)
	}
	f.rd.f, f.rd.budget, f.rd.yielded, f.rd.err, f.rd.count = f.fd, passBudget, false, nil, t.countBytes
	start := f.rd.off
	for {
		frame, err := f.sp.Next()
		if frame == nil && err != nil {
			break // ErrNoData: fileReader turns every read error into it
		}
		t.frame(f, frame, err, now)
	}
	n := f.rd.off - start
	if f.rd.err != nil {
		t.readFailed(f, f.rd.err)
		return n
	}
	f.dirty = f.rd.yielded
	if n > 0 {
		f.lastData = now
		f.partialSince = now
	}
	if f.sp.Buffered() == 0 {
		f.partialSince = time.Time{}
	}
	return n
}

// frame takes one line (or a rejected one, with ferr) from f's splitter.
func (t *tailer) frame(f *tailFile, frame []byte, ferr error, now time.Time) {
	off := f.spBase + f.sp.Offset()
	end := f.spBase + f.sp.Consumed()
	raw := int(end - off)
	if raw <= 0 {
		raw = len(frame) + 1
	}
	t.touch(f)
	if ferr != nil {
		t.flushMultiline(f) // the record before ends here
		t.sink.Reject(origin(f.path, off), frame, ferr)
		return
	}
	if f.ml.rule == nil {
		t.add(f, frame, raw, off)
		return
	}
	if rec, recOff, recRaw, ok := f.ml.push(frame, off, end, now); ok {
		t.add(f, rec, recRaw, recOff)
	}
}

func origin(path string, off int64) string {
	return "file " + path + " offset " + strconv.FormatInt(off, 10)
}

// add decodes one record of f into the batch. The batch may be handed over
// inside (when full): f's checkpoint must already count this record.
func (t *tailer) add(f *tailFile, rec []byte, raw int, off int64) {
	if t.k.PathField != "" && t.peerPath != f.path {
		t.bt.SetPeer(t.k.PathField, f.path)
		t.peerPath = f.path
	}
	if t.countBytes != nil {
		raw = 0 // counted as read
	}
	if err := t.bt.Add(rec, raw); err != nil {
		t.sink.Reject(origin(f.path, off), rec, err)
	}
}

func (t *tailer) touch(f *tailFile) {
	if !f.touched {
		f.touched = true
		t.touched = append(t.touched, f)
	}
}

// takeOps returns the checkpoint changes gathered since the last hand-over,
// with the current offset of every file read since.
func (t *tailer) takeOps() []ckOp {
	for _, f := range t.touched {
		t.ops = append(t.ops, ckOp{kind: ckMark, id: f.id, gen: f.gen, offset: f.commitOff(), path: f.path})
		f.touched = false
	}
	t.touched = t.touched[:0]
	ops := t.ops
	t.ops = nil
	return ops
}

// handOver passes the batch being filled, and the checkpoint changes, on.
func (t *tailer) handOver() {
	t.bt.Flush()
	if len(t.ops) > 0 || len(t.touched) > 0 {
		t.handover <- handoverItem{ops: t.takeOps()}
	}
}

// flushMultiline emits f's pending multi-line record.
func (t *tailer) flushMultiline(f *tailFile) {
	if rec, off, raw, ok := f.ml.flush(); ok {
		t.touch(f)
		t.add(f, rec, raw, off)
	}
}

// flushPending emits what f holds that no more bytes will complete: an
// unterminated line, then the multi-line record being joined.
func (t *tailer) flushPending(f *tailFile, now time.Time) {
	if f.sp != nil {
		if frame, err := f.sp.TakePartial(); frame != nil {
			t.frame(f, frame, err, now)
		}
		f.partialSince = time.Time{}
	}
	t.flushMultiline(f)
}

// checkHead verifies that f still begins with the bytes its fingerprint
// covers, and extends the fingerprint while the file is shorter than fpMax.
func (t *tailer) checkHead(f *tailFile, size int64) bool {
	if int64(f.fp.Len) > size {
		return false
	}
	n := int(min(size, fpMax))
	buf := t.headBuf[:n]
	got, err := f.fd.ReadAt(buf, 0)
	if got < f.fp.Len {
		return err != nil && !errors.Is(err, io.EOF) // a read error is reported by the read
	}
	if fpHash(buf[:f.fp.Len]) != f.fp.Sum {
		return false
	}
	if got > f.fp.Len {
		f.fp = fingerprint{Len: got, Sum: fpHash(buf[:got])}
		t.ops = append(t.ops, ckOp{kind: ckFP, id: f.id, gen: f.gen, fp: f.fp})
	}
	return true
}

// restart reads f again from its beginning: it was truncated (copytruncate)
// or rewritten in place. What it held beyond the lines already taken is read
// from the copy copytruncate made, when one is found in the same directory.
func (t *tailer) restart(f *tailFile, size int64, why string) {
	consumed := f.consumedOff()
	t.log.Warn("file "+why+": reading it again from the beginning", "path", f.path, "offset", consumed, "size", size)
	t.in.st.truncated.Add(1)
	now := time.Now()
	if !t.drainCopy(f, consumed, now) {
		t.flushPending(f, now)
	}
	f.gen++
	f.dropSplitter()
	f.off = 0
	head := t.readHead(f.fd, size)
	f.fp = fingerprint{Len: len(head), Sum: fpHash(head)}
	t.ops = append(t.ops, ckOp{kind: ckSet, id: f.id, entry: checkpoint{ID: f.id, FP: f.fp, Gen: f.gen, Path: f.path}})
	t.touch(f)
}

// drainCopy looks, in f's directory, for a copy of f as it was before it
// was truncated: another regular file that begins with the bytes of f's
// fingerprint. It reads that copy from consumed to its end, as the rest of
// f (the copy may also end before consumed: then the lines written between
// the copy and the truncation were read from f itself), and reports
// whether it found one.
func (t *tailer) drainCopy(f *tailFile, consumed int64, now time.Time) bool {
	if consumed == 0 || f.fp.Len == 0 {
		return false
	}
	dir := filepath.Dir(f.path)
	ents, err := os.ReadDir(dir)
	if err != nil {
		return false
	}
	var best string
	var bestTime time.Time
	var bestID fileID
	for _, e := range ents {
		if !e.Type().IsRegular() {
			continue
		}
		info, err := e.Info()
		if err != nil || info.Size() < int64(f.fp.Len) || statID(info) == f.id {
			continue
		}
		p := filepath.Join(dir, e.Name())
		if !t.sameHead(p, f.fp) {
			continue
		}
		if best == "" || info.ModTime().After(bestTime) {
			best, bestTime, bestID = p, info.ModTime(), statID(info)
		}
	}
	if best == "" {
		return false
	}
	fd, err := os.Open(best)
	if err != nil {
		return false
	}
	defer fd.Close()
	t.skipped[bestID] = true // its content is read now: not as a file of its own if src matches it
	if st, err := fd.Stat(); err != nil || st.Size() <= consumed {
		t.flushPending(f, now)
		t.log.Info("the truncated file's copy holds nothing past what was read", "path", f.path, "copy", best)
		return true
	}
	f.dropSplitter() // what it buffered is in the copy, from consumed on
	f.spBase = consumed
	f.rd = fileReader{f: fd, off: consumed, budget: math.MaxInt, count: t.countBytes}
	f.sp = NewSplitter(&f.rd, t.c.Framing, t.c.MaxMessageSize, t.c.Truncate)
	for {
		frame, err := f.sp.Next()
		if frame == nil && err != nil {
			break
		}
		t.frame(f, frame, err, now)
	}
	t.flushPending(f, now)
	t.in.st.copies.Add(1)
	t.log.Info("the lines the truncated file held beyond what was read were read from its copy",
		"path", f.path, "copy", best, "from", consumed, "to", f.rd.off)
	f.dropSplitter()
	return true
}

// sameHead reports whether the file at p begins with the bytes fp covers.
func (t *tailer) sameHead(p string, fp fingerprint) bool {
	fd, err := os.Open(p)
	if err != nil {
		return false
	}
	defer fd.Close()
	buf := t.headBuf[:fp.Len]
	n, _ := fd.ReadAt(buf, 0)
	return n == fp.Len && fpHash(buf) == fp.Sum
}

// locate finds the file id in dir: where logrotate's rename put a file
// (rotated names stay in the directory unless olddir is set). It returns
// "" when it is not there.
func locate(dir string, id fileID) string {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return ""
	}
	for _, e := range ents {
		if !e.Type().IsRegular() {
			continue
		}
		if info, err := e.Info(); err == nil && statID(info) == id {
			return filepath.Join(dir, e.Name())
		}
	}
	return ""
}

func (t *tailer) readHead(fd *os.File, size int64) []byte {
	buf := t.headBuf[:min(size, fpMax)]
	n, _ := fd.ReadAt(buf, 0)
	return buf[:n]
}

func (t *tailer) readFailed(f *tailFile, err error) {
	t.logRead.Event(slog.LevelWarn, "reading a file failed; it is reopened at its offset later", f.path, err)
	t.closeFile(f)
	f.dirty = false // the next poll or scan tries again
}

// slot makes room for one more open file, closing the file idle longest if
// file_max_open are open. It reports whether there is room.
func (t *tailer) slot() bool {
	if t.nOpen < t.k.MaxOpen {
		return true
	}
	var victim *tailFile
	for _, f := range t.order {
		if f.fd != nil && !f.dirty && !f.released && !f.rotated && !f.deleted &&
			(victim == nil || f.lastData.Before(victim.lastData)) {
			victim = f
		}
	}
	if victim == nil {
		return false
	}
	t.closeFile(victim)
	return true
}

// reopen opens a closed file again by its name, if the name still leads to
// it.
func (t *tailer) reopen(f *tailFile) bool {
	fd, err := os.Open(f.path)
	if err != nil {
		t.release(f, releaseGone, "gone while closed: "+err.Error())
		return false
	}
	st, err := fd.Stat()
	if err != nil || statID(st) != f.id {
		fd.Close()
		t.scanAt = time.Now()
		// Rotated while closed: follow it to its new name.
		if p := locate(filepath.Dir(f.path), f.id); p != "" {
			if fd, err = os.Open(p); err == nil {
				if st, err := fd.Stat(); err == nil && statID(st) == f.id {
					t.log.Info("file rotated while closed: reading it to its end under its new name", "path", f.path, "now", p)
					f.path, f.fd = p, fd
					t.nOpen++
					if !f.rotated {
						f.rotated, f.rotatedAt = true, time.Now()
					}
					return true
				}
				fd.Close()
			}
		}
		t.release(f, releaseGone, "its name leads to another file now and it was not found in its directory")
		return false
	}
	f.fd = fd
	t.nOpen++
	return true
}

// closeFile closes f's descriptor, keeping it tracked; reading resumes at
// the lines not taken yet when it is reopened.
func (t *tailer) closeFile(f *tailFile) {
	if f.sp != nil {
		f.off = f.consumedOff()
		f.dropSplitter()
	}
	f.partialSince = time.Time{}
	if f.fd != nil {
		f.fd.Close()
		f.fd = nil
		t.nOpen--
	}
}

// release stops tailing f for good: what it holds is emitted, its
// descriptor closed and its checkpoint forgotten. kind is the reason
// counted.
func (t *tailer) release(f *tailFile, kind int, why string) {
	t.in.st.released[kind].Add(1)
	t.flushPending(f, time.Now())
	if f.fd != nil {
		f.fd.Close()
		f.fd = nil
		t.nOpen--
	}
	f.dropSplitter()
	f.released = true
	delete(t.files, f.id)
	if t.byPath[f.path] == f {
		delete(t.byPath, f.path)
	}
	t.ops = append(t.ops, ckOp{kind: ckDel, id: f.id})
	t.orderDirty = true
	t.log.Info("file released", "path", f.path, "reason", why)
}

// housekeep runs the timed work: scans, polls, timeouts, releases.
func (t *tailer) housekeep(now time.Time) {
	if !now.Before(t.scanAt) {
		t.scan(now, false)
	}
	poll := now.Sub(t.lastPoll) >= pollEvery
	if poll {
		t.lastPoll = now
	}
	for _, f := range t.order {
		if f.released {
			continue
		}
		if f.fd != nil && (poll || f.rotated) {
			if st, err := f.fd.Stat(); err == nil {
				if nlink(st) == 0 {
					f.deleted = true
				}
				if st.Size() != f.readPos() {
					f.dirty = true
				}
			}
		}
		if f.sp != nil && t.k.PartialLineTimeout > 0 && !f.dirty && !f.partialSince.IsZero() &&
			now.Sub(f.partialSince) >= t.k.PartialLineTimeout {
			if frame, err := f.sp.TakePartial(); frame != nil {
				t.frame(f, frame, err, now)
			}
			f.partialSince = time.Time{}
		}
		if f.ml.rule != nil && f.ml.due(now) {
			t.flushMultiline(f)
		}
		if f.fd == nil || f.dirty {
			continue
		}
		switch {
		case f.rotated || f.deleted:
			// Its writer may not have reopened its log yet: keep reading
			// until it has been quiet for file_rotate_wait.
			if now.Sub(later(f.rotatedAt, f.lastData)) >= t.k.RotateWait {
				if f.deleted {
					t.release(f, releaseDeleted, "deleted, read to its end, no growth for file_rotate_wait")
				} else {
					t.release(f, releaseRotated, "rotated, read to its end, no growth for file_rotate_wait")
				}
			}
		case now.Sub(f.lastData) >= t.k.IdleTimeout:
			t.closeFile(f)
		case f.sp != nil && f.sp.Buffered() == 0 && now.Sub(f.lastData) >= splitterIdle:
			f.off = f.consumedOff()
			f.dropSplitter()
		}
	}
	t.handOver()
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// scan expands the glob, tracks new files, notices renamed and vanished
// ones, and updates the inotify watches.
func (t *tailer) scan(now time.Time, first bool) {
	t.scanAt = now.Add(t.k.ScanInterval)
	if first {
		t.firstEntries = t.store.snapshot()
	}
	res := expandGlob(t.k.Src)
	seen := make(map[fileID]bool, len(res.paths))
	byPath := make(map[string]*tailFile, len(res.paths))
	// Files new to this run are looked at once the known ones are tracked,
	// so that a copy (copytruncate) can be told from a new file.
	type found struct {
		p  string
		id fileID
	}
	var fresh []found
	for _, p := range res.paths {
		st, err := os.Stat(p)
		if err != nil || !st.Mode().IsRegular() {
			if first && err == nil && st.IsDir() {
				t.log.Warn("src matches a directory, which is not tailed: to tail the files in it, end src with /*", "path", p)
			}
			continue
		}
		id := statID(st)
		if seen[id] {
			continue // another name of a file already seen (a hard or symbolic link)
		}
		seen[id] = true
		if t.skipped[id] {
			continue
		}
		f := t.files[id]
		if f == nil {
			if _, known := t.firstEntries[id]; !first || !known {
				fresh = append(fresh, found{p, id})
				continue
			}
			if f = t.track(p, id, first, false, now); f == nil {
				delete(seen, id)
				continue
			}
		} else {
			if f.path != p {
				t.log.Info("file renamed, still matched by src", "from", f.path, "to", p)
				f.path = p
				t.touch(f)
			}
			f.rotated = false
			if f.fd == nil && st.Size() != f.off {
				f.dirty = true
			}
		}
		byPath[p] = f
	}
	for _, c := range fresh {
		if f := t.track(c.p, c.id, first, false, now); f != nil {
			byPath[c.p] = f
		} else if !t.skipped[c.id] {
			delete(seen, c.id)
		}
	}
	for id, f := range t.files {
		if seen[id] {
			continue
		}
		if f.fd == nil {
			if p := locate(filepath.Dir(f.path), f.id); p != "" {
				// Rotated while closed: read what it gained under its new name.
				f.path, f.dirty = p, true
				f.rotated, f.rotatedAt = true, now
				continue
			}
			t.release(f, releaseGone, "no longer matched by src, and closed")
			continue
		}
		if !f.rotated {
			f.rotated, f.rotatedAt, f.dirty = true, now, true
			t.log.Info("file renamed or removed: reading it to its end before releasing it", "path", f.path)
		}
	}
	t.byPath = byPath
	for id := range t.skipped {
		if !seen[id] {
			delete(t.skipped, id)
		}
	}
	if first {
		// Files with a checkpoint that src no longer matches were rotated
		// while flowgo was stopped: read the rest of each where it now is.
		for id, ck := range t.firstEntries {
			if t.files[id] != nil || t.copied[id] {
				continue
			}
			if p := locate(filepath.Dir(ck.Path), id); p != "" {
				if f := t.track(p, id, false, true, now); f != nil {
					f.rotated, f.rotatedAt = true, now
					t.log.Info("file rotated while flowgo was stopped: reading it to its end", "path", ck.Path, "now", p)
					continue
				}
			}
			t.ops = append(t.ops, ckOp{kind: ckDel, id: id})
		}
	}
	t.firstEntries = nil
	t.updateWatches(res.dirs)
}

// track starts tailing the file at p: at its checkpoint when it has a
// valid one, else at the beginning, or, for a file found by the first scan
// of an input without checkpoints, where read_from says. With onlyResume it
// tracks the file only if it has a valid checkpoint.
func (t *tailer) track(p string, id fileID, first, onlyResume bool, now time.Time) *tailFile {
	fd, err := os.Open(p)
	if err != nil {
		t.logRead.Event(slog.LevelWarn, "cannot open a file matched by src", p, err)
		return nil
	}
	st, err := fd.Stat()
	if err != nil || statID(st) != id {
		fd.Close() // replaced between the scan's stat and the open: the next scan sees it
		t.scanAt = now.Add(scanDebounce)
		return nil
	}
	size := st.Size()
	head := t.readHead(fd, size)
	if kind := compressed(head); kind != "" {
		fd.Close()
		if !t.skipped[id] {
			t.skipped[id] = true
			t.in.st.skipped[skipCompressed].Add(1)
			t.log.Info("not tailing a "+kind+"-compressed file matched by src (a rotated log?)", "path", p)
		}
		return nil
	}
	f := &tailFile{id: id, path: p, lastData: now, fp: fingerprint{Len: len(head), Sum: fpHash(head)}}
	if t.in.ml != nil {
		f.ml.rule = t.in.ml
	}
	ck, known := t.store.get(id)
	valid := known && ck.FP.Len <= len(head) && fpHash(head[:ck.FP.Len]) == ck.FP.Sum
	if onlyResume && (!valid || size < ck.Offset) {
		fd.Close()
		return nil
	}
	if !valid {
		switch from, copyOf, skip := t.copyOf(p, id, head); {
		case skip:
			fd.Close()
			t.skipped[id] = true
			t.in.st.skipped[skipCopy].Add(1)
			t.log.Info("not tailing a copy of a file already tailed (copytruncate?): its first bytes are the same", "path", p, "copy_of", copyOf)
			return nil
		case copyOf != "":
			// copytruncate while flowgo was stopped: the copy holds the
			// lines past the original's checkpoint.
			t.log.Info("reading the copy copytruncate made while flowgo was stopped, from the original's checkpoint", "path", p, "copy_of", copyOf, "offset", from)
			valid, ck = true, checkpoint{Offset: from}
		}
	}
	switch {
	case valid:
		f.gen = ck.Gen
		if size >= ck.Offset {
			f.off = ck.Offset
		} else {
			f.gen++ // not the content the checkpoint was for
			t.log.Warn("file truncated while flowgo was stopped: reading it from the beginning", "path", p, "offset", ck.Offset, "size", size)
		}
	case known:
		t.log.Info("file replaced while flowgo was stopped (its first bytes differ from the checkpoint's): reading it from the beginning", "path", p)
		f.gen = ck.Gen + 1
	case first && t.firstRun && t.k.ReadFrom == "end":
		f.off = t.lastLineStart(fd, size)
	}
	t.ops = append(t.ops, ckOp{kind: ckSet, id: id, entry: checkpoint{ID: id, FP: f.fp, Offset: f.off, Gen: f.gen, Path: p}})
	if t.nOpen < t.k.MaxOpen {
		f.fd = fd
		t.nOpen++
	} else {
		fd.Close()
	}
	f.dirty = size != f.off
	t.files[id] = f
	t.orderDirty = true
	return f
}

// minCopyFP is how many leading bytes a file must share with a tailed one
// to be taken for its copy: enough that distinct files rarely do.
const minCopyFP = 256

// copyOf tells whether the file at p, new to the input and beginning with
// head, is a copy of one tailed in the same directory (copytruncate's
// copy, matched by src): skip when its content is followed in the original;
// otherwise, at the first scan, when the original's checkpoint is past its
// copy-time content (copytruncate while flowgo was stopped), copyOf names
// the original and from is where to read the copy.
func (t *tailer) copyOf(p string, id fileID, head []byte) (from int64, copyOf string, skip bool) {
	dir := filepath.Dir(p)
	same := func(fp fingerprint) bool {
		return fp.Len >= minCopyFP && len(head) >= fp.Len && fpHash(head[:fp.Len]) == fp.Sum
	}
	for _, f := range t.files {
		if f.id != id && filepath.Dir(f.path) == dir && same(f.fp) {
			return 0, f.path, true
		}
	}
	for eid, e := range t.firstEntries {
		if eid == id || t.copied[eid] || filepath.Dir(e.Path) != dir || !same(e.FP) {
			continue
		}
		if f := t.files[eid]; f != nil && f.gen == e.Gen {
			return 0, e.Path, true // the original resumed: its content is read there
		}
		t.copied[eid] = true
		return e.Offset, e.Path, false
	}
	return 0, "", false
}

// lastLineStart returns where the last line of a file of size bytes
// begins, if it is not terminated yet (a writer is writing it), else size;
// read_from = "end" starts there, so that the line is read whole.
func (t *tailer) lastLineStart(fd *os.File, size int64) int64 {
	if size == 0 {
		return 0
	}
	from := max(0, size-lastLineWindow)
	buf := t.headBuf[:size-from]
	n, _ := fd.ReadAt(buf, from)
	buf = buf[:n]
	delim := byte('\n')
	if t.c.Framing == flowgo.FramingNUL {
		delim = 0
	}
	if n == 0 || buf[n-1] == delim {
		return from + int64(n)
	}
	for i := n - 1; i >= 0; i-- {
		if buf[i] == delim {
			return from + int64(i) + 1
		}
	}
	if from == 0 {
		return 0
	}
	return size
}

func (t *tailer) updateWatches(dirs []string) {
	if t.watcher == nil {
		return
	}
	want := make(map[string]bool, len(dirs))
	for _, d := range dirs {
		want[d] = true
	}
	for d := range t.watched {
		if !want[d] {
			t.watcher.Remove(d)
			delete(t.watched, d)
		}
	}
	for d := range want {
		if t.watched[d] {
			continue
		}
		if err := t.watcher.Add(d); err != nil {
			t.logWatch.Event(slog.LevelWarn, "cannot watch a directory with inotify: it is polled", d, err)
			continue
		}
		t.watched[d] = true
	}
}

// compressed names the compression of a file that begins with head, or "".
// logrotate compresses rotated files; a src that matches them must not read
// them as lines.
func compressed(head []byte) string {
	switch {
	case bytes.HasPrefix(head, []byte{0x1f, 0x8b}):
		return "gzip"
	case bytes.HasPrefix(head, []byte{0x28, 0xb5, 0x2f, 0xfd}):
		return "zstd"
	case bytes.HasPrefix(head, []byte{0xfd, '7', 'z', 'X', 'Z', 0}):
		return "xz"
	}
	return ""
}
