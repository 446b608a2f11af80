package capnp

import (
	"encoding/binary"
)

// inlineSegments is how many segments a Message describes without
// allocating. capnp's builders double the segment size each time, so even a
// 64 MiB message has fewer.
const inlineSegments = 8

type segment struct {
	start int // byte offset of the segment in the message
	words int
}

// Message reads one message. The zero Message is ready for Init; a Message
// may be reused for the next message.
type Message struct {
	data   []byte
	nseg   int
	inline [inlineSegments]segment
	more   []segment // the segments, when there are more than inlineSegments
	budget int64     // words the reader may still read (traversal limit)
}

// Init makes m read b, which must hold exactly one message: its segment
// table and the segments it announces, nothing more.
func (m *Message) Init(b []byte) error {
	size, need, err := MessageSize(b)
	switch {
	case err != nil:
		return err
	case need > 0:
		return errorf(len(b), "truncated: the segment table needs %d bytes, there are %d", need, len(b))
	case int64(len(b)) < size:
		return errorf(len(b), "truncated: the segment table announces %d bytes, there are %d", size, len(b))
	case int64(len(b)) > size:
		return errorf(int(size), "%d bytes after the end of the message", int64(len(b))-size)
	}
	n := int(binary.LittleEndian.Uint32(b)) + 1
	m.data, m.nseg, m.more = b, n, nil
	if n > inlineSegments {
		m.more = make([]segment, n)
	}
	off := tableSize(n)
	m.budget = int64(len(b)-off) / 8
	for i := range n {
		s := segment{start: off, words: int(binary.LittleEndian.Uint32(b[4+4*i:]))}
		if m.more != nil {
			m.more[i] = s
		} else {
			m.inline[i] = s
		}
		off += 8 * s.words
	}
	return nil
}

func (m *Message) seg(i int) segment {
	if m.more != nil {
		return m.more[i]
	}
	return m.inline[i]
}

// word returns word idx of segment seg, which the caller has bounds-checked.
func (m *Message) word(seg, idx int) uint64 {
	return binary.LittleEndian.Uint64(m.data[m.seg(seg).start+8*idx:])
}

// pos returns the byte offset of word idx of segment seg, for errors.
func (m *Message) pos(seg, idx int) int { return m.seg(seg).start + 8*idx }

// charge takes words from the traversal budget. An honest message reads each
// of its words once at most; one whose pointers overlap could make a small
// message read gigabytes.
func (m *Message) charge(words, pos int) error {
	m.budget -= int64(words)
	if m.budget < 0 {
		return errorf(pos, "the message's pointers read more words than it holds (overlapping objects)")
	}
	return nil
}

// Root returns the message's root struct.
func (m *Message) Root() (Struct, error) {
	if m.seg(0).words == 0 {
		return Struct{}, errorf(m.pos(0, 0), "empty message: the first segment has no root pointer")
	}
	return m.readStruct(0, 0)
}

// ptrOffset returns the signed 30-bit word offset of a struct or list
// pointer.
func ptrOffset(p uint64) int { return int(int32(uint32(p)) >> 2) }

// resolve follows the pointer at word idx of segment seg. It returns the
// segment and first word of the object, and the word that describes it:
// the pointer itself, or the landing pad's. tag == 0 is a null pointer (or a
// struct of no words, which reads the same). The object's bounds are for
// the caller to check, since only it knows the object's size.
func (m *Message) resolve(seg, idx int) (oseg, oidx int, tag uint64, err error) {
	p := m.word(seg, idx)
	if p == 0 {
		return 0, 0, 0, nil
	}
	switch p & 3 {
	case 0, 1:
		return seg, idx + 1 + ptrOffset(p), p, nil
	case 2:
		return m.far(p, m.pos(seg, idx))
	}
	return 0, 0, 0, errorf(m.pos(seg, idx), "capability pointer: the schema has no interfaces")
}

// far follows a far pointer, found at byte pos, to its landing pad.
func (m *Message) far(p uint64, pos int) (oseg, oidx int, tag uint64, err error) {
	if p>>32 >= uint64(m.nseg) {
		return 0, 0, 0, errorf(pos, "far pointer to segment %d; the message has %d", p>>32, m.nseg)
	}
	padSeg, padIdx := int(p>>32), int(uint32(p)>>3)
	double := p&4 != 0
	padWords := 1
	if double {
		padWords = 2
	}
	if padIdx+padWords > m.seg(padSeg).words {
		return 0, 0, 0, errorf(pos, "far pointer's landing pad is outside segment %d", padSeg)
	}
	pad := m.word(padSeg, padIdx)
	if !double {
		if pad&3 > 1 {
			return 0, 0, 0, errorf(m.pos(padSeg, padIdx), "far pointer's landing pad is not a struct or list pointer")
		}
		if pad == 0 {
			return 0, 0, 0, nil
		}
		return padSeg, padIdx + 1 + ptrOffset(pad), pad, nil
	}
	// A double-far landing pad: a far pointer to the object's first word,
	// then the tag that describes the object.
	if pad&7 != 2 {
		return 0, 0, 0, errorf(m.pos(padSeg, padIdx), "double-far landing pad does not start with a single far pointer")
	}
	if pad>>32 >= uint64(m.nseg) {
		return 0, 0, 0, errorf(m.pos(padSeg, padIdx), "far pointer to segment %d; the message has %d", pad>>32, m.nseg)
	}
	oseg, oidx = int(pad>>32), int(uint32(pad)>>3)
	tag = m.word(padSeg, padIdx+1)
	if tag&3 > 1 {
		return 0, 0, 0, errorf(m.pos(padSeg, padIdx+1), "double-far tag is not a struct or list pointer")
	}
	return oseg, oidx, tag, nil
}

// inSegment reports whether words [idx, idx+n) are in segment seg.
func (m *Message) inSegment(seg, idx, n int) bool {
	return idx >= 0 && n >= 0 && idx <= m.seg(seg).words-n
}

func (m *Message) readStruct(seg, idx int) (Struct, error) {
	oseg, oidx, tag, err := m.resolve(seg, idx)
	if err != nil || tag == 0 {
		return Struct{}, err
	}
	pos := m.pos(seg, idx)
	if tag&3 != 0 {
		return Struct{}, errorf(pos, "a list where a struct was expected")
	}
	dw, pw := int(uint16(tag>>32)), int(uint16(tag>>48))
	if !m.inSegment(oseg, oidx, dw+pw) {
		return Struct{}, errorf(pos, "struct of %d words outside its segment", dw+pw)
	}
	if err := m.charge(dw+pw, pos); err != nil {
		return Struct{}, err
	}
	return Struct{m: m, seg: oseg, data: m.pos(oseg, oidx), dataLen: 8 * dw, ptr: oidx + dw, nptr: pw}, nil
}

// readText reads the Text the pointer at word idx of segment seg points to,
// without its NUL terminator. A null pointer is the empty text.
func (m *Message) readText(seg, idx int) ([]byte, error) {
	oseg, oidx, tag, err := m.resolve(seg, idx)
	if err != nil || tag == 0 {
		return nil, err
	}
	pos := m.pos(seg, idx)
	if tag&3 != 1 {
		return nil, errorf(pos, "a struct where a text was expected")
	}
	if size := (tag >> 32) & 7; size != 2 {
		return nil, errorf(pos, "a list of %s where a text (list of bytes) was expected", elementSizes[size])
	}
	n := int(tag >> 35)
	words := (n + 7) / 8
	if !m.inSegment(oseg, oidx, words) {
		return nil, errorf(pos, "text of %d bytes outside its segment", n)
	}
	if err := m.charge(words, pos); err != nil {
		return nil, err
	}
	if n == 0 {
		return nil, nil
	}
	start := m.pos(oseg, oidx)
	b := m.data[start : start+n]
	if b[n-1] != 0 {
		return nil, errorf(start+n-1, "text is not NUL-terminated")
	}
	return b[:n-1], nil
}

var elementSizes = [8]string{"voids", "bits", "bytes", "16-bit values", "32-bit values", "64-bit values", "pointers", "structs"}

// readList reads the list of structs the pointer at word idx of segment
// seg points to. A null pointer is the empty list. Only the composite
// encoding, the one every builder writes for a List of structs, is read.
func (m *Message) readList(seg, idx int) (List, error) {
	oseg, oidx, tag, err := m.resolve(seg, idx)
	if err != nil || tag == 0 {
		return List{}, err
	}
	pos := m.pos(seg, idx)
	if tag&3 != 1 {
		return List{}, errorf(pos, "a struct where a list was expected")
	}
	if size := (tag >> 32) & 7; size != 7 {
		return List{}, errorf(pos, "a list of %s where a list of structs was expected", elementSizes[size])
	}
	words := int(tag >> 35)
	if !m.inSegment(oseg, oidx, 1+words) {
		return List{}, errorf(pos, "list of %d words outside its segment", words)
	}
	t := m.word(oseg, oidx)
	if t&3 != 0 {
		return List{}, errorf(m.pos(oseg, oidx), "list tag is not a struct tag")
	}
	n := int(uint32(t) >> 2)
	dw, pw := int(uint16(t>>32)), int(uint16(t>>48))
	if uint64(n)*uint64(dw+pw) > uint64(words) {
		return List{}, errorf(m.pos(oseg, oidx), "%d elements of %d words do not fit the list's %d words", n, dw+pw, words)
	}
	charge := 1 + words
	if dw+pw == 0 {
		charge += n // elements of no size must cost something, or a list could claim billions
	}
	if err := m.charge(charge, pos); err != nil {
		return List{}, err
	}
	return List{m: m, seg: oseg, first: oidx + 1, n: n, dw: dw, pw: pw}, nil
}

// Struct is a struct of a message. Fields beyond its sections read as
// their defaults (zero, null), as Cap'n Proto's schema evolution wants; the
// zero Struct (a null pointer) reads as all defaults.
type Struct struct {
	m       *Message
	seg     int
	data    int // byte offset of the data section in the message
	dataLen int // bytes
	ptr     int // word index of the first pointer in the segment
	nptr    int
}

// Uint8 returns the byte at off in the data section.
func (s Struct) Uint8(off int) uint8 {
	if off < 0 || off >= s.dataLen {
		return 0
	}
	return s.m.data[s.data+off]
}

// Uint16 returns the little-endian 16-bit value at byte off.
func (s Struct) Uint16(off int) uint16 {
	if off < 0 || off > s.dataLen-2 {
		return 0
	}
	return binary.LittleEndian.Uint16(s.m.data[s.data+off:])
}

// Uint64 returns the little-endian 64-bit value at byte off.
func (s Struct) Uint64(off int) uint64 {
	if off < 0 || off > s.dataLen-8 {
		return 0
	}
	return binary.LittleEndian.Uint64(s.m.data[s.data+off:])
}

// Bit returns bit n of the data section.
func (s Struct) Bit(n int) bool {
	return s.Uint8(n/8)&(1<<(n%8)) != 0
}

// Text returns the Text of pointer i. The bytes belong to the message.
func (s Struct) Text(i int) ([]byte, error) {
	if i < 0 || i >= s.nptr {
		return nil, nil
	}
	return s.m.readText(s.seg, s.ptr+i)
}

// List returns the list of structs of pointer i.
func (s Struct) List(i int) (List, error) {
	if i < 0 || i >= s.nptr {
		return List{}, nil
	}
	return s.m.readList(s.seg, s.ptr+i)
}

// List is a list of structs.
type List struct {
	m      *Message
	seg    int
	first  int // word index of the first element
	n      int
	dw, pw int
}

// Len returns the number of elements.
func (l List) Len() int { return l.n }

// At returns element i, 0 <= i < Len().
func (l List) At(i int) Struct {
	w := l.first + i*(l.dw+l.pw)
	return Struct{m: l.m, seg: l.seg, data: l.m.pos(l.seg, w), dataLen: 8 * l.dw, ptr: w + l.dw, nptr: l.pw}
}
