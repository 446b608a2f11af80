package flowgo

import "unsafe"

// Chunk sizes of an Arena. A byte chunk holds about sixty typical records,
// so a full batch needs a score of chunks, reused batch after batch, while a
// batch of one record (a quiet UDP or TCP sender) holds about 25 KB.
const (
	arenaByteChunk  = 16 << 10
	arenaParamChunk = 128
	arenaElemChunk  = 64
)

// Arena owns the memory that a batch's records point into: their strings,
// structured-data elements and parameters. Decoders copy what they keep from
// a frame into the arena, so a record costs no heap allocation of its own.
//
// Memory handed out stays valid, and unchanged, until Reset. Reset recycles
// the chunks: call it only when nothing refers to the records any more (the
// pipeline does so once a batch is delivered). The zero Arena is ready to use.
// An Arena is not safe for concurrent use.
type Arena struct {
	bytes  slab[byte]
	params slab[Param]
	elems  slab[SDElement]
}

// Bytes returns n bytes of arena memory for the caller to fill.
func (a *Arena) Bytes(n int) []byte {
	return a.bytes.alloc(n, arenaByteChunk)
}

// Copy returns a copy of b in arena memory.
func (a *Arena) Copy(b []byte) []byte {
	if len(b) == 0 {
		return nil
	}
	c := a.bytes.alloc(len(b), arenaByteChunk)
	copy(c, b)
	return c
}

// String returns a copy of b, in arena memory, as a string.
func (a *Arena) String(b []byte) string {
	return UnsafeString(a.Copy(b))
}

// Params returns a copy of ps in arena memory.
func (a *Arena) Params(ps []Param) []Param {
	if len(ps) == 0 {
		return nil
	}
	c := a.params.alloc(len(ps), arenaParamChunk)
	copy(c, ps)
	return c
}

// NewParams returns n params of arena memory for the caller to fill; they
// may hold anything until then.
func (a *Arena) NewParams(n int) []Param {
	if n == 0 {
		return nil
	}
	return a.params.alloc(n, arenaParamChunk)
}

// NewElems returns n elements of arena memory for the caller to fill; they
// may hold anything until then.
func (a *Arena) NewElems(n int) []SDElement {
	if n == 0 {
		return nil
	}
	return a.elems.alloc(n, arenaElemChunk)
}

// Elems returns a copy of es in arena memory.
func (a *Arena) Elems(es []SDElement) []SDElement {
	if len(es) == 0 {
		return nil
	}
	c := a.elems.alloc(len(es), arenaElemChunk)
	copy(c, es)
	return c
}

// Size returns about how many bytes the arena has handed out since Reset.
func (a *Arena) Size() int {
	return a.bytes.total + a.params.total*int(unsafe.Sizeof(Param{})) + a.elems.total*int(unsafe.Sizeof(SDElement{}))
}

// Footprint returns the bytes of memory the arena holds for what it handed
// out: its chunks in use, whole. This, not Size, is what bounds memory.
func (a *Arena) Footprint() int {
	return a.bytes.held() + a.params.held()*int(unsafe.Sizeof(Param{})) + a.elems.held()*int(unsafe.Sizeof(SDElement{}))
}

// Reset makes all the arena's memory available again. Everything handed out
// before becomes invalid.
func (a *Arena) Reset() { a.reset() }

// reset is Reset. It reports whether the arena let go of an oversized
// chunk: only then do the pointers left in its params and elements (and in
// the records of the batch) need zeroing, so that the garbage collector can
// free that chunk. Otherwise they point into chunks the arena keeps anyway,
// and zeroing them (hundreds of KB per batch of records with params) would
// cost CPU on every batch for nothing: whatever hands them out again
// overwrites them.
func (a *Arena) reset() (released bool) {
	released = a.bytes.oversized(arenaByteChunk) || a.params.oversized(arenaParamChunk) || a.elems.oversized(arenaElemChunk)
	a.bytes.reset(arenaByteChunk, false)
	a.params.reset(arenaParamChunk, released)
	a.elems.reset(arenaElemChunk, released)
	return released
}

// UnsafeString returns b as a string without copying. b must not change for
// as long as the string is used; arena memory satisfies that until Reset.
func UnsafeString(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	return unsafe.String(&b[0], len(b))
}

// slab hands out sub-slices of large chunks. Each sub-slice has its capacity
// capped, so appending to it never writes over a neighbour.
type slab[T any] struct {
	cur   []T
	used  [][]T // chunks filled before cur
	free  [][]T // chunks ready for reuse
	total int
}

// held returns the capacity of the chunks in use, in elements.
func (s *slab[T]) held() int {
	n := cap(s.cur)
	for _, c := range s.used {
		n += cap(c)
	}
	return n
}

func (s *slab[T]) alloc(n, chunk int) []T {
	if cap(s.cur)-len(s.cur) < n {
		s.grow(n, chunk)
	}
	l := len(s.cur)
	s.cur = s.cur[:l+n]
	s.total += n
	return s.cur[l : l+n : l+n]
}

func (s *slab[T]) grow(n, chunk int) {
	if cap(s.cur) > 0 {
		s.used = append(s.used, s.cur)
	}
	if n <= chunk && len(s.free) > 0 {
		s.cur = s.free[len(s.free)-1][:0]
		s.free = s.free[:len(s.free)-1]
		return
	}
	s.cur = make([]T, 0, max(n, chunk))
}

// oversized reports whether a chunk in use is not of the standard size, so
// that reset will let it go.
func (s *slab[T]) oversized(chunk int) bool {
	if cap(s.cur) > 0 && cap(s.cur) != chunk {
		return true
	}
	for _, c := range s.used {
		if cap(c) != chunk {
			return true
		}
	}
	return false
}

// reset moves every standard-size chunk to the free list. Oversized chunks
// (one huge frame) are dropped so that one burst does not pin memory for
// ever. clearMem zeroes chunks that hold pointers, so that the garbage
// collector can free what they pointed to.
func (s *slab[T]) reset(chunk int, clearMem bool) {
	if cap(s.cur) > 0 {
		s.used = append(s.used, s.cur)
		s.cur = nil
	}
	for i, c := range s.used {
		if clearMem {
			clear(c)
		}
		if cap(c) == chunk {
			s.free = append(s.free, c[:0])
		}
		s.used[i] = nil
	}
	s.used = s.used[:0]
	s.total = 0
}
