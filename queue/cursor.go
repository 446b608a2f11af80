package queue

import (
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"time"

	"github.com/flowgo/flowgo"
)

// cursor is the read side of a disk queue for one output: the reader
// goroutine reads batches from readPos on; the output stage reports each
// batch sent (Sent) and delivered (Done), which moves the persisted
// position.
type cursor struct {
	d    *Disk
	name string
	pf   *positionFile

	// Owned by the output stage (Sent, Done).
	state cursorState
	dirty bool

	// Owned by the reader goroutine.
	readPos     flowgo.QueuePos // where the next frame is read
	replayUntil flowgo.QueuePos // records before it were sent before the restart
	replayed    int64
	sr          *segmentReader
	f           *os.File
	buf         []byte
	rr          recordReader
	source      string
	enqueued    time.Time
	expect      int  // records the current input batch holds, per its 'B' frame
	seen        int  // records read of it
	hurt        bool // damage was skipped since its 'B' frame
	logged      map[uint64]bool

	fmu      sync.Mutex
	inflight []inflightBatch // read, handed over, not confirmed: oldest first
}

type inflightBatch struct {
	end      flowgo.QueuePos
	records  int64
	enqueued time.Time
}

// loadCursor opens the read position and resolves it against the
// segments found. Called by recover, before the active segment is made.
func (d *Disk) loadCursor() error {
	path := filepath.Join(d.dir, d.cfg.Reader+".pos")
	pf, st, found, err := openPosition(path)
	if err != nil && !errors.Is(err, errPositionDamaged) {
		return err
	}
	c := &cursor{d: d, name: d.cfg.Reader, pf: pf, buf: make([]byte, 0, readChunk), logged: map[uint64]bool{}}
	d.cur = c
	hasData := false
	for _, s := range d.segs {
		if s.size > segmentHeader {
			hasData = true
		}
	}
	switch {
	case err != nil:
		d.Stats.PositionResets.Add(1)
		d.log.Warn("disk queue: the read position is damaged: reading again from the oldest segment (records delivered before may be delivered again)",
			"position", path)
		st = cursorState{}
	case !found && hasData:
		d.Stats.PositionResets.Add(1)
		d.log.Warn("disk queue: no read position: reading from the oldest segment (records delivered before may be delivered again)",
			"position", path)
	}
	next := uint64(1)
	if len(d.segs) > 0 {
		next = d.segs[len(d.segs)-1].id + 1
	}
	pos := st.confirmed
	switch {
	case pos.Segment == 0:
		pos = flowgo.QueuePos{Segment: next}
		if len(d.segs) > 0 {
			pos = flowgo.QueuePos{Segment: d.segs[0].id}
		}
	default:
		i := sort.Search(len(d.segs), func(i int) bool { return d.segs[i].id >= pos.Segment })
		switch {
		case i < len(d.segs) && d.segs[i].id == pos.Segment:
			if pos.Offset > d.segs[i].size {
				d.Stats.PositionResets.Add(1)
				d.log.Warn("disk queue: the read position is past the end of its segment: going on from that end",
					"segment", filepath.Join(d.dir, segmentName(pos.Segment)), "offset", pos.Offset, "size", d.segs[i].size)
				pos.Offset = d.segs[i].size
			}
		case i < len(d.segs):
			d.Stats.PositionResets.Add(1)
			d.log.Warn("disk queue: the read position names a segment that no longer exists: resuming at the next one",
				"missing", filepath.Join(d.dir, segmentName(pos.Segment)), "resume", filepath.Join(d.dir, segmentName(d.segs[i].id)))
			pos = flowgo.QueuePos{Segment: d.segs[i].id}
		default:
			if hasData && pos.Segment < next {
				d.Stats.PositionResets.Add(1)
				d.log.Warn("disk queue: the read position names a segment that no longer exists, and no later one does",
					"missing", filepath.Join(d.dir, segmentName(pos.Segment)))
			}
			pos = flowgo.QueuePos{Segment: next}
		}
	}
	// Segments before the position were delivered: give their room back.
	for len(d.segs) > 0 && d.segs[0].id < pos.Segment {
		s := d.segs[0]
		if err := os.Remove(filepath.Join(d.dir, segmentName(s.id))); err != nil {
			return err
		}
		os.Remove(summaryPath(d.dir, s.id))
		d.diskBytes -= s.size
		d.segs = d.segs[1:]
	}
	c.readPos = pos
	c.state = cursorState{confirmed: pos, sent: pos}
	if pos.Less(st.sent) {
		c.replayUntil = st.sent
		c.state.sent = st.sent
	}
	return nil
}

// readLoop is the reader goroutine: it reads batches and hands them to the
// output stage until CloseInput and the end of the queue, or Stop.
func (d *Disk) readLoop() {
	c := d.cur
	defer c.dropFast(true)
	// Batches read from disk are encoded (prepare) on goroutines of their
	// own, a few at a time, and handed over in order by the sender: the
	// reader decodes the next batch meanwhile, so a backlog drains on
	// both cores. Batches of the fast path come encoded by their input.
	order := make(chan prepared, 3)
	sent := make(chan struct{})
	go func() {
		defer close(sent)
		d.sendInOrder(order)
	}()
	defer func() {
		close(order)
		<-sent
		close(d.out)
	}()
	for {
		b := c.takeFast()
		if b == nil {
			b = flowgo.GetBatch()
			switch c.fill(b) {
			case fillDone:
				flowgo.PutBatch(b)
				return
			case fillFast:
				flowgo.PutBatch(b)
				continue
			}
		}
		p := prepared{b: b, done: closedCh}
		if d.prepare != nil && !b.Encoded {
			p.done = make(chan struct{})
			go func() {
				d.prepare(b)
				close(p.done)
			}()
		}
		select {
		case order <- p:
		case <-d.stop:
			<-p.done
			flowgo.PutBatch(b) // not confirmed: it stays queued for the next start
			return
		}
	}
}

// prepared is a batch on its way to the output stage, ready once done is
// closed.
type prepared struct {
	b    *flowgo.Batch
	done chan struct{}
}

var closedCh = func() chan struct{} { c := make(chan struct{}); close(c); return c }()

// sendInOrder hands the batches of order to the output stage as each is
// ready, in order, until order is closed; after Stop it recycles them.
func (d *Disk) sendInOrder(order <-chan prepared) {
	stopped := false
	for p := range order {
		<-p.done
		if !stopped {
			select {
			case d.out <- p.b:
				continue
			case <-d.stop:
				stopped = true
			}
		}
		flowgo.PutBatch(p.b) // not confirmed: it stays queued for the next start
	}
}

// What fill did.
const (
	fillBatch = iota // b holds records to hand over (or skipped damage)
	fillFast         // nothing read: the next batch waits on the fast path
	fillDone         // Stop, or CloseInput with everything read
)

// takeFast returns the batch the fast path holds at the read position, if
// any, and moves the position past it. Entries the reader passed (it read
// them from disk) are dropped.
func (c *cursor) takeFast() *flowgo.Batch {
	d := c.d
	c.dropFast(false)
	d.mu.Lock()
	if len(d.fast) == 0 {
		d.mu.Unlock()
		return nil
	}
	f := d.fast[0]
	if !c.atLocked(f) {
		d.mu.Unlock()
		return nil
	}
	d.fast = d.fast[1:]
	d.fastFreedLocked()
	d.mu.Unlock()
	c.endInputBatch()
	if f.seg != c.readPos.Segment {
		c.closeSegment()
	}
	c.readPos = flowgo.QueuePos{Segment: f.seg, Offset: f.end}
	if c.sr != nil {
		c.sr.skipTo(f.end)
	}
	d.Stats.FastBatches.Add(1)
	c.handOut(f.b, f.records, f.enqueued)
	return f.b
}

// handOut marks b as the batch that ends at the read position, records
// long, and counts it in flight until Confirm: both reader paths (the fast
// path and the disk) end here.
func (c *cursor) handOut(b *flowgo.Batch, records int64, enqueued time.Time) {
	b.QueuePos = c.readPos
	c.fmu.Lock()
	c.inflight = append(c.inflight, inflightBatch{end: c.readPos, records: records, enqueued: enqueued})
	c.fmu.Unlock()
}

// atLocked reports whether f is the next batch at the read position.
// Called with d.mu held.
func (c *cursor) atLocked(f fastBatch) bool {
	d := c.d
	if f.seg == c.readPos.Segment && (f.start == c.readPos.Offset || c.readPos.Offset == 0 && f.start == segmentHeader) {
		return true
	}
	if f.seg > c.readPos.Segment && f.start == segmentHeader {
		// The reader is at the end of a finished segment, and f opens
		// the one after it.
		i := sort.Search(len(d.segs), func(i int) bool { return d.segs[i].id >= c.readPos.Segment })
		return i+1 < len(d.segs) && d.segs[i].id == c.readPos.Segment && d.segs[i+1].id == f.seg &&
			c.readPos.Offset >= d.segs[i].size
	}
	return false
}

// fastAtReadPos reports whether the fast path holds the batch at the read
// position.
func (c *cursor) fastAtReadPos() bool {
	c.d.mu.Lock()
	defer c.d.mu.Unlock()
	return len(c.d.fast) > 0 && c.atLocked(c.d.fast[0])
}

// dropFast recycles the fast path's entries that the read position has
// passed (all of them when all is set).
func (c *cursor) dropFast(all bool) {
	d := c.d
	var stale []*flowgo.Batch
	d.mu.Lock()
	for len(d.fast) > 0 {
		f := d.fast[0]
		if !all && f.seg >= c.readPos.Segment && (f.seg > c.readPos.Segment || f.start >= c.readPos.Offset) {
			break
		}
		stale = append(stale, f.b)
		d.fast = d.fast[1:]
	}
	if len(d.fast) == 0 {
		d.fast = nil // let the array go
	}
	if len(stale) > 0 {
		d.fastFreedLocked()
	}
	d.mu.Unlock()
	for _, b := range stale {
		flowgo.PutBatch(b)
	}
}

// fill reads the next batch into b from disk. It returns fillDone when
// there is none to come (after Stop, or after CloseInput once everything
// was read), and fillFast when, having waited, it finds the next batch on
// the fast path.
func (c *cursor) fill(b *flowgo.Batch) int {
	d := c.d
	progressed := false // frames or damage consumed: the position moved
	var records int64
	var enqueued time.Time
	for {
		if c.sr == nil {
			if !c.open() {
				return fillDone
			}
		}
		if !progressed && c.fastAtReadPos() {
			// Written since the reader last looked (perhaps in the next
			// segment), and on the fast path: reading it from disk would
			// take the reader off that path.
			return fillFast
		}
		fr, dmg, err := c.sr.next()
		if dmg.bytes > 0 {
			c.damaged(dmg)
			progressed = true
		}
		if errors.Is(err, io.EOF) {
			c.readPos.Offset = c.sr.pos
			if c.advance() {
				continue
			}
			if progressed {
				goto done // hand over what was read
			}
			// At the end of what is written: from now on, batches
			// put may come by the fast path.
			d.caughtUp.Store(true)
			if !c.wait() {
				return fillDone
			}
			if c.fastReady() {
				return fillFast
			}
			continue
		}
		if err != nil {
			d.log.Error("disk queue: read failed; retrying in 1s", "segment", c.sr.path, "offset", c.sr.pos, "error", err)
			c.closeSegment()
			select {
			case <-d.stop:
				return fillDone
			case <-time.After(time.Second):
			}
			continue
		}
		if !progressed {
			// Reading from disk: the reader is behind, the fast path
			// would only hold batches it will pass.
			d.caughtUp.Store(false)
		}
		c.readPos.Offset = fr.end
		progressed = true
		switch fr.kind {
		case kindBatch:
			c.endInputBatch()
			info, err := parseBatchFrame(fr.payload)
			if err != nil {
				c.source, c.enqueued = "", time.Time{}
				continue
			}
			c.source, c.enqueued, c.expect = info.source, info.enqueued, info.records
		case kindRecord:
			records++
			c.seen++
			if enqueued.IsZero() {
				enqueued = c.enqueued
			}
			if b.Len() == 0 {
				b.Source = c.source
			}
			r := b.Next()
			if err := c.rr.read(b.Arena.Copy(fr.payload), r, &b.Arena); err != nil {
				b.Drop()
				d.Stats.DamagedRecords.Add(1)
				d.log.Warn("disk queue: a record with a valid checksum does not decode: skipped",
					"segment", c.sr.path, "offset", fr.off, "error", err)
			}
			if c.readPos.Less(c.replayUntil) || c.readPos == c.replayUntil {
				c.replayed++
				d.Stats.Replayed.Add(1)
				if c.readPos == c.replayUntil {
					d.log.Info("disk queue: replayed the records sent before the restart but not confirmed (they may be duplicates)", "records", c.replayed)
				}
			}
			if b.Len() >= d.cfg.BatchRecords || b.Arena.Size() >= d.cfg.BatchBytes {
				goto done
			}
		}
	}
done:
	if c.sr != nil && c.sr.pos >= c.sr.limit {
		// At the end of a finished segment, the position names the next
		// one, so that confirming this batch frees this segment.
		c.advance()
	}
	if enqueued.IsZero() {
		enqueued = time.Now()
	}
	c.handOut(b, records, enqueued)
	d.Stats.ReadBatches.Add(1)
	return fillBatch
}

// fastReady reports whether the fast path holds an entry.
func (c *cursor) fastReady() bool {
	c.d.mu.Lock()
	defer c.d.mu.Unlock()
	return len(c.d.fast) > 0
}

// open opens the segment readPos names, or the next one present.
func (c *cursor) open() bool {
	d := c.d
	for {
		d.mu.Lock()
		i := sort.Search(len(d.segs), func(i int) bool { return d.segs[i].id >= c.readPos.Segment })
		var s segInfo
		found := i < len(d.segs)
		if found {
			s = d.segs[i]
		}
		last := i == len(d.segs)-1
		limit := s.size
		if last {
			limit = d.published
		}
		d.mu.Unlock()
		if !found {
			// Nothing at or after the position yet.
			if !c.wait() {
				return false
			}
			continue
		}
		if s.id != c.readPos.Segment {
			c.readPos = flowgo.QueuePos{Segment: s.id}
		}
		path := filepath.Join(d.dir, segmentName(s.id))
		f, err := os.Open(path)
		if err != nil {
			d.log.Error("disk queue: cannot open a segment; skipping it", "segment", path, "error", err)
			c.readPos = flowgo.QueuePos{Segment: s.id + 1}
			continue
		}
		c.f = f
		c.sr = newSegmentReader(f, path, c.readPos.Offset, limit, c.buf)
		if !c.sr.checkHeader(s.id) {
			c.damaged(damage{off: 0, bytes: segmentHeader})
		}
		c.readPos.Offset = c.sr.pos
		return true
	}
}

func (c *cursor) closeSegment() {
	if c.sr != nil {
		c.buf = c.sr.buf[:0]
		if cap(c.buf) > 4*readChunk {
			c.buf = make([]byte, 0, readChunk)
		}
	}
	if c.f != nil {
		c.f.Close()
	}
	c.f, c.sr = nil, nil
}

// advance is called at the end of what may be read of the current
// segment: it reads on when the writer published more, or moves to the
// next segment when this one is finished. False means wait.
func (c *cursor) advance() bool {
	d := c.d
	d.mu.Lock()
	i := sort.Search(len(d.segs), func(i int) bool { return d.segs[i].id >= c.readPos.Segment })
	if i == len(d.segs) || d.segs[i].id != c.readPos.Segment {
		d.mu.Unlock()
		c.closeSegment()
		return true // gone (cannot happen before it is confirmed): open the next
	}
	last := i == len(d.segs)-1
	limit := d.segs[i].size
	var next uint64
	if last {
		limit = d.published
	} else {
		next = d.segs[i+1].id
	}
	d.mu.Unlock()
	if limit > c.sr.limit {
		c.sr.limit = limit
		return true
	}
	if last {
		return false
	}
	c.endInputBatch()
	c.closeSegment()
	c.readPos = flowgo.QueuePos{Segment: next}
	return true
}

// wait waits for more data. False means there will be none: Stop, or
// CloseInput with everything read.
func (c *cursor) wait() bool {
	d := c.d
	d.mu.Lock()
	drained := d.inClosed
	if drained && c.sr != nil {
		drained = len(d.segs) > 0 && d.segs[len(d.segs)-1].id == c.readPos.Segment && d.published <= c.sr.pos
	}
	d.mu.Unlock()
	if drained {
		return false
	}
	select {
	case <-d.dataCh:
		return true
	case <-d.stop:
		return false
	}
}

// damaged counts and reports a damaged stretch; its segment is kept aside
// once confirmed instead of deleted.
func (c *cursor) damaged(dmg damage) {
	d := c.d
	c.hurt = true
	c.seen += dmg.records // counted here, not again by endInputBatch
	d.Stats.DamagedRecords.Add(int64(dmg.records))
	d.Stats.DamagedBytes.Add(dmg.bytes)
	d.mu.Lock()
	for i := range d.segs {
		if d.segs[i].id == c.readPos.Segment {
			d.segs[i].damaged = true
		}
	}
	d.mu.Unlock()
	if !c.logged[c.readPos.Segment] {
		c.logged[c.readPos.Segment] = true
		d.log.Error("disk queue: damaged data skipped; the segment will be kept aside as "+segmentName(c.readPos.Segment)+damagedSuffix,
			"segment", filepath.Join(d.dir, segmentName(c.readPos.Segment)), "offset", dmg.off, "bytes", dmg.bytes)
	}
}

// endInputBatch counts the records an input batch lost to damage: what
// its 'B' frame announced and was not read.
func (c *cursor) endInputBatch() {
	if c.hurt && c.seen < c.expect {
		c.d.Stats.DamagedRecords.Add(int64(c.expect - c.seen))
	}
	c.expect, c.seen, c.hurt = 0, 0, false
}

// Sent records that b is about to be written to the output: after a
// restart, records up to it count as replayed. Called by the output stage.
func (d *Disk) Sent(b *flowgo.Batch) {
	c := d.cur
	if c.state.sent.Less(b.QueuePos) {
		c.state.sent = b.QueuePos
		c.writePosition()
	}
}

// Done confirms b: the output delivered it (or gave it up for good). The
// read position moves past it, and segments wholly before the position are
// deleted (or kept aside when damaged). Called by the output stage, in the
// order batches were received; b stays the caller's.
func (d *Disk) Done(b *flowgo.Batch) { d.Confirm(b.QueuePos) }

// Confirm confirms every batch read up to pos, as Done does, for an output
// stage that confirms later than it writes (an output that buffers).
func (d *Disk) Confirm(pos flowgo.QueuePos) {
	c := d.cur
	if pos.Segment == 0 || !c.state.confirmed.Less(pos) {
		return
	}
	c.state.confirmed = pos
	if c.state.sent.Less(pos) {
		c.state.sent = pos
	}
	c.writePosition()
	var records int64
	c.fmu.Lock()
	n := 0
	for n < len(c.inflight) && !pos.Less(c.inflight[n].end) {
		records += c.inflight[n].records
		n++
	}
	c.inflight = append(c.inflight[:0], c.inflight[n:]...)
	c.fmu.Unlock()

	d.mu.Lock()
	d.records -= records
	removing := false
	for len(d.segs) > 1 && d.segs[0].id < pos.Segment {
		d.gone = append(d.gone, d.segs[0])
		d.segs = d.segs[1:]
		removing = true
	}
	d.mu.Unlock()
	if removing {
		select {
		case d.removeCh <- struct{}{}:
		default:
		}
	}
}

// removeLoop deletes the segments Confirm gave up (or keeps them aside when
// damaged), off the output stage's path: unlinking a segment whose pages
// were synced takes tens of milliseconds, which the output waited for.
// Their room counts as taken until they are gone.
func (d *Disk) removeLoop() {
	for {
		select {
		case <-d.removeCh:
			d.removeGone()
		case <-d.quit:
			d.removeGone()
			return
		}
	}
}

// removeGone deletes the segments confirmed so far, and gives their room
// back.
func (d *Disk) removeGone() {
	d.mu.Lock()
	gone := d.gone
	d.gone = nil
	d.mu.Unlock()
	if len(gone) == 0 {
		return
	}
	var freed int64
	for _, s := range gone {
		path := filepath.Join(d.dir, segmentName(s.id))
		var err error
		if s.damaged {
			err = os.Rename(path, damagedPath(d.dir, s.id))
		} else {
			err = os.Remove(path)
		}
		os.Remove(summaryPath(d.dir, s.id))
		if err != nil {
			d.log.Error("disk queue: cannot remove a delivered segment", "segment", path, "error", err)
		}
		freed += s.size
	}
	// The syncer holds the files of finished segments until it syncs
	// them: those delivered it need not sync, and their disk space comes
	// back only once they are closed, so close them now rather than at
	// its next sync (a full disk waits for that room).
	var delivered []finished
	d.writeMu.Lock()
	d.mu.Lock()
	keep := d.unsynced[:0]
	for _, u := range d.unsynced {
		if len(d.segs) == 0 || u.id < d.segs[0].id {
			delivered = append(delivered, u)
		} else {
			keep = append(keep, u)
		}
	}
	d.unsynced = keep
	d.mu.Unlock()
	d.writeMu.Unlock()
	for _, u := range delivered {
		u.f.Close()
	}
	d.mu.Lock()
	d.diskBytes -= freed
	d.spaceFreedLocked()
	d.mu.Unlock()
}

func (c *cursor) writePosition() {
	if err := c.pf.write(c.state); err != nil {
		c.d.log.Error("disk queue: cannot write the read position", "position", c.pf.path, "error", err)
		return
	}
	c.dirty = true
}

// syncPosition fsyncs the position file (from the syncer).
func (c *cursor) syncPosition(log *slog.Logger) {
	if err := c.pf.sync(); err != nil {
		log.Error("disk queue: cannot sync the read position", "position", c.pf.path, "error", err)
	}
}

// oldestAge is how long the oldest batch read and not confirmed has
// waited since it was queued.
func (c *cursor) oldestAge(now time.Time) time.Duration {
	c.fmu.Lock()
	defer c.fmu.Unlock()
	if len(c.inflight) == 0 {
		return 0
	}
	return max(now.Sub(c.inflight[0].enqueued), 0)
}

func (c *cursor) close() {
	c.closeSegment()
	if c.pf != nil {
		c.pf.close()
	}
}
