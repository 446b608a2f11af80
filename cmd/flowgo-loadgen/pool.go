package main

import (
	"strconv"

	"github.com/flowgo/flowgo"
)

// pool holds lines generated in advance, framed and back to back in one
// buffer, so that a sender writes many frames with one call and never
// generates or copies a line while the clock runs.
type pool struct {
	buf  []byte
	ends []int // ends[i] is the offset just past frame i
	// stamps[i] is the offset of frame i's latency stamp digits (with
	// -latency; nil otherwise).
	stamps []int
}

// A pool for UDP, where a datagram is the frame, has framing noop.

// newPool generates n lines with gen and frames them. With stampFormat
// set (the lines' format), each line carries a latency stamp placeholder.
func newPool(n int, gen func([]byte) []byte, framing flowgo.Framing, stampFormat string) *pool {
	p := &pool{buf: make([]byte, 0, n*260), ends: make([]int, 0, n)}
	var line []byte
	for range n {
		line = gen(line[:0])
		if stampFormat != "" {
			var at int
			line, at = insertStamp(line, stampFormat)
			p.buf = appendFrame(p.buf, line, framing)
			// The line ends the frame, but for the framing's trailer.
			p.stamps = append(p.stamps, len(p.buf)-trailer(framing)-len(line)+at)
		} else {
			p.buf = appendFrame(p.buf, line, framing)
		}
		p.ends = append(p.ends, len(p.buf))
	}
	return p
}

// trailer is the bytes framing puts after a line.
func trailer(framing flowgo.Framing) int {
	if framing == flowgo.FramingSyslen || framing == flowgo.FramingNoop {
		return 0
	}
	return 1
}

// clone returns a pool with its own copy of the frames, to stamp while
// another connection sends the original.
func (p *pool) clone() *pool {
	c := *p
	c.buf = append([]byte(nil), p.buf...)
	return &c
}

// stamp writes t into the stamps of frames i to i+k-1.
func (p *pool) stamp(i, k int, t int64) {
	if p.stamps == nil {
		return
	}
	var digits [stampDigits]byte
	putStamp(digits[:], t)
	for _, at := range p.stamps[i : i+k] {
		copy(p.buf[at:at+stampDigits], digits[:])
	}
}

// appendFrame appends line to dst framed as framing says.
func appendFrame(dst, line []byte, framing flowgo.Framing) []byte {
	switch framing {
	case flowgo.FramingSyslen:
		dst = strconv.AppendInt(dst, int64(len(line)), 10)
		dst = append(dst, ' ')
		return append(dst, line...)
	case flowgo.FramingNUL:
		dst = append(dst, line...)
		return append(dst, 0)
	case flowgo.FramingNoop:
		return append(dst, line...)
	}
	dst = append(dst, line...)
	return append(dst, '\n')
}

// len returns the number of frames.
func (p *pool) len() int { return len(p.ends) }

// start returns the offset of frame i.
func (p *pool) start(i int) int {
	if i == 0 {
		return 0
	}
	return p.ends[i-1]
}

// frame returns frame i.
func (p *pool) frame(i int) []byte { return p.buf[p.start(i):p.ends[i]] }

// chunk returns frames i, i+1, ... up to maxFrames of them, as many as fit
// in size bytes but at least one, and never past the end of the pool. It
// returns the bytes and the number of frames.
func (p *pool) chunk(i int, size int, maxFrames int) ([]byte, int) {
	from := p.start(i)
	j := i + 1 // frames i..j-1 are in the chunk
	limit := min(len(p.ends), i+maxFrames)
	for j < limit && p.ends[j]-from <= size {
		j++
	}
	return p.buf[from:p.ends[j-1]], j - i
}

// framesIn returns how many whole frames, starting at frame i, the first n
// bytes of a chunk starting there hold: what a failed write delivered.
func (p *pool) framesIn(i, n int) int {
	limit := p.start(i) + n
	k := 0
	for i+k < len(p.ends) && p.ends[i+k] <= limit {
		k++
	}
	return k
}
