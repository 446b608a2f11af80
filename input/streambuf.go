package input

import "io"

// streamBuffer is the read buffer of a stream reader (the Splitter and
// the RELP reader): a small buffer of its own, grown from the input's
// memory budget (Buffers) while a frame does not fit or the sender is fast,
// and given back when what it holds fits the small buffer again, so that
// memory follows the data in flight, not the number of connections.
type streamBuffer struct {
	mem      *Buffers
	hold     *bufHolder
	own      []byte // the reader's own buffer, outside the budget
	charged  int    // budget held: cap(buf) when buf is not own
	frameCap int    // buffer size that holds any frame (RELP: a frame's head) whole
	maxBuf   int

	buf        []byte
	start, end int   // unread bytes are buf[start:end]
	scanned    int   // the Splitter's: buf[start:scanned] holds no delimiter
	base       int64 // stream offset of buf[0]
	err        error // the read error; final
	emptyReads int
}

func newStreamBuffer(frameCap, maxBuf int) streamBuffer {
	own := getBuffer(baseBufferSize)
	return streamBuffer{own: own, buf: own, frameCap: frameCap, maxBuf: maxBuf}
}

// useBudget makes the reader take what it needs beyond its own small
// buffer from mem, as h; call it before the first read.
func (b *streamBuffer) useBudget(mem *Buffers, h *bufHolder) { b.mem, b.hold = mem, h }

// shrink gives the buffer back to the budget when what it holds fits the
// reader's own small buffer. Readers call it before a read that will wait,
// so that an idle connection holds no budget. Frames returned before are
// invalid.
func (b *streamBuffer) shrink() {
	if b.charged == 0 || b.end-b.start > len(b.own)/2 {
		return
	}
	big, charged := b.buf, b.charged
	b.moveTo(b.own)
	b.charged = 0
	putBuffer(big)
	b.mem.release(b.hold, charged)
}

// close gives the buffers back; the reader must not be used afterwards.
func (b *streamBuffer) close() {
	if b.charged > 0 {
		putBuffer(b.buf)
		b.mem.release(b.hold, b.charged)
		b.charged = 0
	}
	if b.own != nil {
		putBuffer(b.own)
	}
	b.buf, b.own = nil, nil
	b.start, b.end, b.scanned = 0, 0, 0
}

// moveTo makes nb the buffer, with the unread bytes at its front.
func (b *streamBuffer) moveTo(nb []byte) {
	n := copy(nb, b.buf[b.start:b.end])
	b.base += int64(b.start)
	b.scanned = max(b.scanned-b.start, 0)
	b.start, b.end = 0, n
	b.buf = nb
}

// grow moves the unread bytes to a larger buffer from the budget: sizes
// double from minBudgetBuffer, with a stop at frameCap, up to maxBuf. When
// must is set the frame being read does not fit the buffer, and grow waits
// for the budget, calling beforeWait (when set) first; otherwise (a fast
// sender) it grows only if the budget has room now.
func (b *streamBuffer) grow(must bool, beforeWait func()) {
	size := max(2*len(b.buf), minBudgetBuffer)
	if len(b.buf) < b.frameCap {
		size = min(size, b.frameCap)
	}
	size = min(size, b.maxBuf)
	if size <= len(b.buf) {
		return
	}
	if !b.mem.tryAcquire(b.hold, size, partialFrames) {
		if !must {
			return
		}
		if beforeWait != nil {
			beforeWait()
		}
		b.mem.acquire(b.hold, size, partialFrames)
	}
	old, charged := b.buf, b.charged
	b.moveTo(getBuffer(size))
	b.charged = size
	if charged > 0 {
		putBuffer(old)
		b.mem.release(b.hold, charged)
	}
}

// makeRoom slides the unread bytes to the front when that frees room, and
// grows a buffer that is full of an unfinished frame: up to frameCap it
// must (waiting for the budget), beyond that more room is only for speed.
func (b *streamBuffer) makeRoom(beforeWait func()) {
	if b.start > 0 && (b.start == b.end || b.end == len(b.buf)) {
		b.moveTo(b.buf)
	}
	if b.end == len(b.buf) {
		b.grow(len(b.buf) < b.frameCap, beforeWait)
	}
}

// read reads once from r into the free end of the buffer. An error is
// kept (final); 100 empty reads in a row count as io.ErrNoProgress.
func (b *streamBuffer) read(r io.Reader) {
	n, err := r.Read(b.buf[b.end:])
	b.end += n
	switch {
	case err != nil:
		b.err = err
	case n == 0:
		if b.emptyReads++; b.emptyReads >= 100 {
			b.err = io.ErrNoProgress
		}
	default:
		b.emptyReads = 0
	}
}
