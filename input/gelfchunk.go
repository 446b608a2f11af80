package input

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"sync"
	"time"
)

// Chunked GELF (Graylog's UDP chunking): a message too large for one
// datagram is cut into at most 128 chunks, each sent as a datagram that
// starts with a 12-byte header:
//
//	0x1e 0x0f | message id (8 bytes) | sequence number | sequence count
//
// The receiver glues the chunks of one message back together in sequence
// order; compression, if any, applies to the whole reassembled payload.
const (
	gelfChunkHeader = 12
	gelfMagic0      = 0x1e
	gelfMagic1      = 0x0f
)

// isGELFChunk reports whether a datagram is a GELF chunk.
func isGELFChunk(b []byte) bool {
	return len(b) >= 2 && b[0] == gelfMagic0 && b[1] == gelfMagic1
}

// Memory the reassembler accounts for besides chunk payloads, so that a
// flood of tiny chunks is bounded as well as a few large ones: the slice
// headers and allocation overhead of a stored chunk, and the bookkeeping of
// a message.
const (
	chunkOverhead   = 48
	messageOverhead = 160
)

// Drop reasons of the reassembler, as reported to Sink.Dropped.
const (
	dropChunkTimeout  = "incomplete chunked GELF message expired (gelf_chunk_timeout)"
	dropChunkPending  = "incomplete chunked GELF message evicted (gelf_max_pending)"
	dropChunkBytes    = "incomplete chunked GELF message evicted (gelf_max_pending_bytes)"
	dropChunkShutdown = "incomplete chunked GELF message at shutdown"
)

// errChunkHeader is the error of a chunk shorter than its header.
var errChunkHeader = errors.New("chunked GELF: datagram shorter than the 12-byte chunk header")

// gelfChunks reassembles chunked GELF messages. Chunks are matched by
// message id and sender address (IP and port: clients send a message's
// chunks from one socket), so two senders that happen to pick the same id
// do not mix their messages. Memory is bounded: a message may hold
// at most maxSize payload bytes; at most maxPending messages and maxBytes
// bytes (with overhead) are held at once, the oldest incomplete message
// being evicted to make room; a message that is not complete timeout after
// its first chunk is dropped. Every message lost is reported to dropped.
// It is safe for concurrent use.
type gelfChunks struct {
	timeout    time.Duration
	maxChunks  int
	maxPending int
	maxBytes   int
	maxSize    int
	dropped    func(n int, reason string)

	mu      sync.Mutex
	pending map[chunkKey]*partialMsg
	// oldest and newest are the ends of a list of pending messages by
	// first-chunk arrival, which is also deadline order.
	oldest, newest *partialMsg
	bytes          int

	// completed holds the messages completed in the last timeout (up to
	// maxCompleted, oldest first in completedOrder), so that a chunk that
	// arrives again after its message was delivered is absorbed instead of
	// starting a message that would count as dropped.
	completed      map[chunkKey]time.Time // key → until when its chunks are absorbed
	completedOrder []completedMsg         // a ring, next at completedNext
	completedNext  int
}

// completedMsg is an entry of gelfChunks.completedOrder.
type completedMsg struct {
	key   chunkKey
	until time.Time
}

// maxCompleted bounds the memory of completed messages (about 60 bytes
// each); beyond it the oldest is forgotten first.
const maxCompleted = 4096

type chunkKey struct {
	from netip.AddrPort
	id   uint64
}

// partialMsg is a message whose chunks are arriving.
type partialMsg struct {
	key      chunkKey
	deadline time.Time
	count    int // chunks the message has
	have     int // chunks received
	size     int // payload bytes received
	cost     int // bytes accounted in gelfChunks.bytes
	// dead marks a message already rejected (too large): its remaining
	// chunks are absorbed until the deadline, so that they neither count
	// again nor start a new message that would expire.
	dead       bool
	parts      [][]byte
	prev, next *partialMsg
}

func newGELFChunks(timeout time.Duration, maxChunks, maxPending, maxBytes, maxSize int, dropped func(int, string)) *gelfChunks {
	return &gelfChunks{
		timeout: timeout, maxChunks: maxChunks, maxPending: maxPending, maxBytes: maxBytes, maxSize: maxSize,
		dropped: dropped, pending: map[chunkKey]*partialMsg{},
	}
}

// minPendingBytes is the smallest byte budget that holds one message of
// maxSize bytes in maxChunks chunks.
func minPendingBytes(maxSize, maxChunks int) int {
	return maxSize + messageOverhead + maxChunks*(chunkOverhead+24)
}

// add takes one chunk datagram from sender from, received at now. When the
// chunk completes its message, add appends the reassembled payload to dst
// and returns it with done set, and raw, the bytes of all its datagrams. A
// malformed chunk, or one that makes its message too large, gives an error;
// the caller rejects the datagram.
func (g *gelfChunks) add(dg []byte, from netip.AddrPort, now time.Time, dst []byte) (msg []byte, raw int, done bool, err error) {
	if len(dg) < gelfChunkHeader {
		return dst, 0, false, errChunkHeader
	}
	key := chunkKey{from: from, id: binary.BigEndian.Uint64(dg[2:10])}
	seq, count := int(dg[10]), int(dg[11])
	data := dg[gelfChunkHeader:]
	switch {
	case count == 0:
		return dst, 0, false, errors.New("chunked GELF: sequence count is 0")
	case count > g.maxChunks:
		return dst, 0, false, fmt.Errorf("chunked GELF: message of %d chunks exceeds gelf_max_chunks (%d)", count, g.maxChunks)
	case seq >= count:
		return dst, 0, false, fmt.Errorf("chunked GELF: sequence number %d out of range for %d chunks", seq, count)
	}

	g.mu.Lock()
	defer g.mu.Unlock()
	g.expireLocked(now)
	p := g.pending[key]
	if p == nil && count > 1 {
		if until, ok := g.completed[key]; ok {
			if now.Before(until) {
				return dst, 0, false, nil // a late copy of a delivered message's chunk
			}
			delete(g.completed, key)
		}
	}
	if p == nil && count == 1 {
		// A message in one chunk needs no bookkeeping.
		if len(data) > g.maxSize {
			return dst, 0, false, g.tooLarge(len(data))
		}
		return append(dst, data...), len(dg), true, nil
	}
	if p != nil {
		switch {
		case p.dead:
			return dst, 0, false, nil
		case count != p.count:
			return dst, 0, false, fmt.Errorf("chunked GELF: sequence count %d differs from the %d of earlier chunks", count, p.count)
		case p.parts[seq] != nil:
			return dst, 0, false, nil // a duplicate: the first copy is kept
		case p.size+len(data) > g.maxSize:
			g.killLocked(p)
			return dst, 0, false, g.tooLarge(p.size + len(data))
		}
	}
	// Make room first, so that the bounds hold at every moment.
	tooLarge := p == nil && len(data) > g.maxSize
	need := len(data) + chunkOverhead
	switch {
	case tooLarge:
		need = messageOverhead // a dead message holds no chunks
	case p == nil:
		need += messageOverhead + count*24
	}
	if p == nil && len(g.pending) >= g.maxPending {
		g.evictLocked(g.oldest, dropChunkPending)
	}
	for g.bytes+need > g.maxBytes {
		victim := g.oldest
		if victim == p {
			victim = p.next
		}
		if victim == nil {
			break
		}
		g.evictLocked(victim, dropChunkBytes)
	}
	if g.bytes+need > g.maxBytes {
		// Nothing else is left and it still does not fit: cannot happen
		// when maxBytes >= minPendingBytes, but stay bounded anyway.
		if p != nil {
			g.killLocked(p)
		}
		return dst, 0, false, g.tooLarge(len(data))
	}
	if p == nil {
		p = &partialMsg{key: key, deadline: now.Add(g.timeout), count: count}
		g.pending[key] = p
		g.pushLocked(p)
		if tooLarge {
			// Kept dead, so that the message's other chunks are absorbed.
			p.dead, p.cost = true, need
			g.bytes += need
			return dst, 0, false, g.tooLarge(len(data))
		}
		p.parts = make([][]byte, count)
		p.cost = messageOverhead + count*24
		g.bytes += p.cost
		need -= p.cost
	}
	part := make([]byte, len(data), max(len(data), 1))
	copy(part, data)
	p.parts[seq] = part
	p.have++
	p.size += len(data)
	p.cost += need
	g.bytes += need
	if p.have < p.count {
		return dst, 0, false, nil
	}
	for _, part := range p.parts {
		dst = append(dst, part...)
	}
	raw = p.size + p.count*gelfChunkHeader
	g.removeLocked(p)
	g.rememberLocked(p.key, p.deadline)
	return dst, raw, true, nil
}

// rememberLocked notes that key's message completed: its chunks are
// absorbed until until.
func (g *gelfChunks) rememberLocked(key chunkKey, until time.Time) {
	if g.completed == nil {
		g.completed = make(map[chunkKey]time.Time)
		g.completedOrder = make([]completedMsg, 0, 64)
	}
	e := completedMsg{key, until}
	if len(g.completedOrder) < maxCompleted {
		g.completedOrder = append(g.completedOrder, e)
	} else {
		// Forget the oldest entry, unless its id completed again since:
		// the map then holds the newer entry's time.
		if old := g.completedOrder[g.completedNext]; g.completed[old.key].Equal(old.until) {
			delete(g.completed, old.key)
		}
		g.completedOrder[g.completedNext] = e
		g.completedNext = (g.completedNext + 1) % maxCompleted
	}
	g.completed[key] = until
}

func (g *gelfChunks) tooLarge(n int) error {
	return tooLongf("chunked GELF: message of at least %d bytes exceeds the limit of %d bytes (max_message_size, udp_max_inflated_size)", n, g.maxSize)
}

// killLocked frees p's chunks and marks it dead until its deadline.
func (g *gelfChunks) killLocked(p *partialMsg) {
	g.bytes -= p.cost - messageOverhead
	p.cost = messageOverhead
	p.parts = nil
	p.dead = true
}

// expire drops the messages whose deadline has passed at now.
func (g *gelfChunks) expire(now time.Time) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.expireLocked(now)
}

func (g *gelfChunks) expireLocked(now time.Time) {
	n := 0
	for p := g.oldest; p != nil && !now.Before(p.deadline); p = g.oldest {
		if !p.dead {
			n++
		}
		g.removeLocked(p)
	}
	if n > 0 {
		g.dropped(n, dropChunkTimeout)
	}
}

// close drops every incomplete message (shutdown).
func (g *gelfChunks) close() {
	g.mu.Lock()
	defer g.mu.Unlock()
	n := 0
	for p := g.oldest; p != nil; p = g.oldest {
		if !p.dead {
			n++
		}
		g.removeLocked(p)
	}
	if n > 0 {
		g.dropped(n, dropChunkShutdown)
	}
}

// evictLocked drops p to make room, for reason.
func (g *gelfChunks) evictLocked(p *partialMsg, reason string) {
	if p == nil {
		return
	}
	if !p.dead {
		g.dropped(1, reason)
	}
	g.removeLocked(p)
}

func (g *gelfChunks) pushLocked(p *partialMsg) {
	p.prev = g.newest
	if g.newest != nil {
		g.newest.next = p
	} else {
		g.oldest = p
	}
	g.newest = p
}

func (g *gelfChunks) removeLocked(p *partialMsg) {
	if p.prev != nil {
		p.prev.next = p.next
	} else {
		g.oldest = p.next
	}
	if p.next != nil {
		p.next.prev = p.prev
	} else {
		g.newest = p.prev
	}
	p.prev, p.next = nil, nil
	g.bytes -= p.cost
	delete(g.pending, p.key)
}
