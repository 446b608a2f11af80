package output

import (
	"encoding/binary"
	"math/bits"
	"unsafe"
)

// An LZ4 frame compressor for Kafka record batches, tuned for log records.
//
// Kafka compresses a record batch's records as one LZ4 frame (KIP-57). Any
// valid frame is accepted, so this one writes the cheapest: independent
// blocks of at most 64 KiB, no block or content checksum (the record batch
// has its own CRC-32C), and each block compressed with LZ4's fast
// algorithm as the reference LZ4_compress_fast does at acceleration 1 for
// inputs under 64 KiB: an 8192-entry hash table of 16-bit positions (16
// KiB, which stays in the first-level cache). librdkafka writes the same
// kind of frame (LZ4F's defaults: 64 KiB independent blocks).
//
// pierrec/lz4, which kafka-go uses, keeps a 65536-entry table (128 KiB)
// with a bitmap of the entries in use, 4 MiB blocks and a content checksum:
// its lookups miss the cache. On GELF records this compressor is about
// twice as fast, at the reference implementation's speed and ratio (see
// BenchmarkKafkaLZ4 and bench/kafka.md).

const (
	lz4BlockMax  = 64 << 10 // the frame's block maximum size
	lz4HashLog   = 13
	lz4MinMatch  = 4
	lz4LastLits  = 5               // the last 5 bytes of a block are literals
	lz4MFLimit   = 12              // a match starts at least 12 bytes before the end
	lz4MinLength = lz4MFLimit + 1  // shorter blocks are stored as literals only
	lz4SkipShift = 6               // LZ4's skip trigger: search faster through literals
	lz4FLG       = 0x60            // version 01, independent blocks, no checksums, no size
	lz4BD        = 0x40            // block maximum size 64 KiB
	lz4Uncomp    = uint32(1) << 31 // block size flag: the block is stored uncompressed
	lz4MaxOffset = 65535           // farthest match
)

// lz4Compressor compresses frames; its hash table is reused from one block
// to the next. Not safe for concurrent use.
type lz4Compressor struct {
	table [1 << lz4HashLog]uint16
}

// lz4FrameHeader is the 7-byte frame header: magic, FLG, BD and the
// descriptor checksum, the second byte of xxh32(FLG BD) (0x82 for 0x60 0x40).
var lz4FrameHeader = [7]byte{0x04, 0x22, 0x4D, 0x18, lz4FLG, lz4BD, lz4DescriptorChecksum(lz4FLG, lz4BD)}

// appendFrame appends src as one LZ4 frame to dst.
func (c *lz4Compressor) appendFrame(dst, src []byte) []byte {
	dst = append(dst, lz4FrameHeader[:]...)
	for len(src) > 0 {
		n := min(len(src), lz4BlockMax)
		dst = c.appendBlock(dst, src[:n])
		src = src[n:]
	}
	return append(dst, 0, 0, 0, 0) // end mark
}

// appendBlock appends src (at most 64 KiB) as one frame block: its size,
// then the compressed bytes, or src itself when it does not compress.
func (c *lz4Compressor) appendBlock(dst, src []byte) []byte {
	at := len(dst)
	dst = append(dst, 0, 0, 0, 0)
	bound := lz4Bound(len(src)) + lz4Slack
	dst = growBytes(dst, bound)
	n := c.compressBlock(dst[len(dst):len(dst)+bound], src)
	if n == 0 || n >= len(src) {
		binary.LittleEndian.PutUint32(dst[at:], uint32(len(src))|lz4Uncomp)
		return append(dst, src...)
	}
	binary.LittleEndian.PutUint32(dst[at:], uint32(n))
	return dst[:len(dst)+n]
}

// growBytes makes room for n more bytes after len(b).
func growBytes(b []byte, n int) []byte {
	if cap(b)-len(b) >= n {
		return b
	}
	nb := make([]byte, len(b), 2*cap(b)+n)
	copy(nb, b)
	return nb
}

func lz4Hash(v uint32) uint32 {
	return (v * 2654435761) >> (32 - lz4HashLog)
}

// lz4Load32 and lz4Load64 read little-endian words at p+i without bounds
// checks: every caller has checked that they lie within its slice.
func lz4Load32(p unsafe.Pointer, i int) uint32 {
	return binary.LittleEndian.Uint32((*[4]byte)(unsafe.Add(p, i))[:])
}

func lz4Load64(p unsafe.Pointer, i int) uint64 {
	return binary.LittleEndian.Uint64((*[8]byte)(unsafe.Add(p, i))[:])
}

// lz4Slack is what compressBlock may write past its result, with copies of
// 8 bytes at a time: the destination must hold lz4Bound(n) + lz4Slack.
const lz4Slack = 8

func lz4Bound(n int) int { return n + n/255 + 16 }

// compressBlock writes the LZ4 block of src (len ≤ 64 KiB) into dst, which
// must hold at least lz4Bound(len(src)) + lz4Slack bytes, and returns its
// length (0 when src is too short to compress).
//
// It follows LZ4's LZ4_compress_generic: the hash of the next position is
// computed while the current one is checked, the position right after a
// match is tried at once (records often run match into match), and
// literals are copied 8 bytes at a time.
func (c *lz4Compressor) compressBlock(dst, src []byte) int {
	n := len(src)
	if n < lz4MinLength {
		return 0
	}
	if len(dst) < lz4Bound(n)+lz4Slack {
		panic("lz4: destination too small")
	}
	clear(c.table[:])
	t := &c.table
	s := unsafe.Pointer(unsafe.SliceData(src))
	d := unsafe.Pointer(unsafe.SliceData(dst))
	mflimit := n - lz4MFLimit // a match starts at or before it
	matchlimit := n - lz4LastLits
	anchor, op := 0, 0
	ip := 1
	forwardH := lz4Hash(lz4Load32(s, 1))
	for {
		// Look for a match: the last position with the same hash, checked
		// on 4 bytes. The step grows through long runs of literals.
		var ref int
		step, search := 1, 1<<lz4SkipShift
		fwd := ip
		for {
			h := forwardH
			ip = fwd
			fwd += step
			step = search >> lz4SkipShift
			search++
			if fwd > mflimit+1 {
				return lz4LastLiterals(d, op, src, anchor)
			}
			ref = int(t[h&(1<<lz4HashLog-1)])
			forwardH = lz4Hash(lz4Load32(s, fwd))
			t[h&(1<<lz4HashLog-1)] = uint16(ip)
			// Every position is within 64 KiB of any other in the block,
			// and every entry, even one never set (0), is before ip.
			if lz4Load32(s, ref) == lz4Load32(s, ip) {
				break
			}
		}
		// Extend backwards over literals that match too.
		for ip > anchor && ref > 0 && *(*byte)(unsafe.Add(s, ip-1)) == *(*byte)(unsafe.Add(s, ref-1)) {
			ip--
			ref--
		}
		// The token, the literal length and the literals.
		tok := op
		op++
		ll := ip - anchor
		if ll >= 15 {
			*(*byte)(unsafe.Add(d, tok)) = 15 << 4
			op = lz4Length(d, op, ll-15)
		} else {
			*(*byte)(unsafe.Add(d, tok)) = byte(ll) << 4
		}
		lz4WildCopy(d, op, s, anchor, ll)
		op += ll
	match:
		// The offset, then the match length beyond its first 4 bytes.
		off := ip - ref
		*(*byte)(unsafe.Add(d, op)) = byte(off)
		*(*byte)(unsafe.Add(d, op+1)) = byte(off >> 8)
		op += 2
		mend := ip + lz4MinMatch
		mref := ref + lz4MinMatch
		for mend+8 <= matchlimit {
			if x := lz4Load64(s, mend) ^ lz4Load64(s, mref); x != 0 {
				mend += bits.TrailingZeros64(x) >> 3
				goto counted
			}
			mend += 8
			mref += 8
		}
		for mend < matchlimit && *(*byte)(unsafe.Add(s, mend)) == *(*byte)(unsafe.Add(s, mref)) {
			mend++
			mref++
		}
	counted:
		ml := mend - ip - lz4MinMatch
		if ml >= 15 {
			*(*byte)(unsafe.Add(d, tok)) |= 15
			op = lz4Length(d, op, ml-15)
		} else {
			*(*byte)(unsafe.Add(d, tok)) |= byte(ml)
		}
		ip = mend
		anchor = ip
		if ip > mflimit {
			return lz4LastLiterals(d, op, src, anchor)
		}
		// Index a position inside the match, so that the next record's
		// copy of this text is found, then try the very next position.
		t[lz4Hash(lz4Load32(s, ip-2))] = uint16(ip - 2)
		h := lz4Hash(lz4Load32(s, ip))
		ref = int(t[h])
		t[h] = uint16(ip)
		if lz4Load32(s, ref) == lz4Load32(s, ip) {
			tok = op
			*(*byte)(unsafe.Add(d, tok)) = 0
			op++
			goto match
		}
		ip++
		forwardH = lz4Hash(lz4Load32(s, ip))
	}
}

// lz4WildCopy copies n bytes from s+from to d+to, 8 at a time: it may
// write up to 7 bytes past the end (the caller's slack) and read up to 7
// past the source's n (within src: literals end at least 5 bytes before
// its end, and copies of the last literals are exact).
func lz4WildCopy(d unsafe.Pointer, to int, s unsafe.Pointer, from, n int) {
	for i := 0; i < n; i += 8 {
		*(*uint64)(unsafe.Add(d, to+i)) = *(*uint64)(unsafe.Add(s, from+i))
	}
}

// lz4Length writes the rest of a length of 15 or more: 255s, then the last byte.
func lz4Length(d unsafe.Pointer, op, n int) int {
	for n >= 255 {
		*(*byte)(unsafe.Add(d, op)) = 255
		op++
		n -= 255
	}
	*(*byte)(unsafe.Add(d, op)) = byte(n)
	return op + 1
}

// lz4LastLiterals ends a block with the literals from anchor.
func lz4LastLiterals(d unsafe.Pointer, op int, src []byte, anchor int) int {
	ll := len(src) - anchor
	if ll >= 15 {
		*(*byte)(unsafe.Add(d, op)) = 15 << 4
		op = lz4Length(d, op+1, ll-15)
	} else {
		*(*byte)(unsafe.Add(d, op)) = byte(ll) << 4
		op++
	}
	dst := unsafe.Slice((*byte)(d), op+ll)
	return op + copy(dst[op:], src[anchor:])
}

// lz4DescriptorChecksum is the frame descriptor's header checksum: the
// second byte of the xxHash32 (seed 0) of the descriptor bytes.
func lz4DescriptorChecksum(flg, bd byte) byte {
	return byte(xxh32Two(flg, bd) >> 8)
}

// xxh32Two is xxHash32 with seed 0 of the two bytes a, b.
func xxh32Two(a, b byte) uint32 {
	const (
		p1 = 2654435761
		p2 = 2246822519
		p3 = 3266489917
		p4 = 668265263
		p5 = 374761393
	)
	h := uint32(p5) + 2
	for _, c := range [2]byte{a, b} {
		h += uint32(c) * p5
		h = bits.RotateLeft32(h, 11) * p1
	}
	h ^= h >> 15
	h *= p2
	h ^= h >> 13
	h *= p3
	h ^= h >> 16
	return h
}
