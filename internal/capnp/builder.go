package capnp

import (
	"encoding/binary"
	"errors"
	"math"
	"slices"
)

// Limits of the encoding: a list counts up to 2^29 elements (or words), a
// struct list up to 2^30 elements of 2^16 words each.
const (
	maxListCount = 1<<29 - 1
)

// ErrTooBig is returned by a Builder for a text, list or message larger
// than the encoding can describe.
var ErrTooBig = errors.New("too big for a Cap'n Proto list or segment")

// Builder writes a single-segment message at the end of a byte slice, the
// way capnp's builders lay one out: each object is appended after the last,
// and pointers are filled in once the object's place is known. Words are
// addressed by their index in the segment; word 0 is the root pointer.
type Builder struct {
	buf  []byte
	base int // offset in buf of the segment's first byte
	err  error
}

// Start begins a message at the end of dst: the segment table of one
// segment, whose size Finish fills in, and the root pointer.
func Start(dst []byte) Builder {
	b := Builder{buf: dst, base: len(dst) + 8}
	b.buf = append(b.buf, make([]byte, 16)...) // table: count-1 = 0, size; root pointer
	return b
}

// Alloc appends n zeroed words and returns the index of the first.
func (b *Builder) Alloc(n int) int {
	l := len(b.buf)
	b.buf = slices.Grow(b.buf, 8*n)[:l+8*n]
	clear(b.buf[l:])
	return (l - b.base) / 8
}

func (b *Builder) put(word int, v uint64) {
	binary.LittleEndian.PutUint64(b.buf[b.base+8*word:], v)
}

// pointerTo returns the offset field of a pointer at word ptr to an object
// at word at.
func pointerTo(ptr, at int) uint64 { return uint64(uint32(int32(at-ptr-1) << 2)) }

// SetStruct points the pointer at word ptr to a struct at word at with dw
// data words and pw pointers.
func (b *Builder) SetStruct(ptr, at, dw, pw int) {
	b.put(ptr, pointerTo(ptr, at)|uint64(dw)<<32|uint64(pw)<<48)
}

// NewStruct allocates a struct of dw data words and pw pointers, points the
// pointer at word ptr to it and returns the index of its first word.
func (b *Builder) NewStruct(ptr, dw, pw int) int {
	at := b.Alloc(dw + pw)
	b.SetStruct(ptr, at, dw, pw)
	return at
}

func (b *Builder) setList(ptr, at int, size uint64, count int) {
	b.put(ptr, pointerTo(ptr, at)|1|size<<32|uint64(count)<<35)
}

// SetText writes s as a Text (its bytes and a NUL) and points the pointer
// at word ptr to it. Readers take a null pointer as the empty text too:
// leave it null to write an absent field.
func (b *Builder) SetText(ptr int, s string) { b.SetText2(ptr, "", s) }

// SetText2 is SetText of the concatenation of s1 and s2.
func (b *Builder) SetText2(ptr int, s1, s2 string) {
	n := len(s1) + len(s2) + 1
	if n > maxListCount {
		b.err = ErrTooBig
		return
	}
	at := b.Alloc((n + 7) / 8)
	copy(b.buf[b.base+8*at+len(s1):], s2)
	copy(b.buf[b.base+8*at:], s1)
	b.setList(ptr, at, 2, n)
}

// NewStructList allocates a list of n structs of dw data words and pw
// pointers, points the pointer at word ptr to it and returns the index of
// the first element's first word; element i starts (dw+pw)*i words later.
// An empty list leaves the pointer null.
func (b *Builder) NewStructList(ptr, n, dw, pw int) int {
	if n == 0 {
		return 0
	}
	words := n * (dw + pw)
	if words > maxListCount {
		b.err = ErrTooBig
		return 0
	}
	at := b.Alloc(1 + words)
	b.put(at, uint64(n)<<2|uint64(dw)<<32|uint64(pw)<<48) // the tag: a struct pointer whose offset is the count
	b.setList(ptr, at, 7, words)
	return at + 1
}

// PutUint64 sets the 64-bit value at byte off of the struct at word at.
func (b *Builder) PutUint64(at, off int, v uint64) {
	binary.LittleEndian.PutUint64(b.buf[b.base+8*at+off:], v)
}

// PutUint16 sets the 16-bit value at byte off of the struct at word at.
func (b *Builder) PutUint16(at, off int, v uint16) {
	binary.LittleEndian.PutUint16(b.buf[b.base+8*at+off:], v)
}

// PutUint8 sets the byte at off of the struct at word at.
func (b *Builder) PutUint8(at, off int, v uint8) { b.buf[b.base+8*at+off] = v }

// SetBit sets bit n of the struct at word at.
func (b *Builder) SetBit(at, n int) { b.buf[b.base+8*at+n/8] |= 1 << (n % 8) }

// Finish fills in the segment size and returns dst with the message
// appended, or dst as it was and ErrTooBig.
func (b *Builder) Finish() ([]byte, error) {
	words := (len(b.buf) - b.base) / 8
	if b.err == nil && uint64(words) > math.MaxUint32 {
		b.err = ErrTooBig
	}
	if b.err != nil {
		return b.buf[:b.base-8], b.err
	}
	binary.LittleEndian.PutUint32(b.buf[b.base-4:], uint32(words))
	return b.buf, nil
}
