package encoder

import (
	"encoding/binary"
	"math"
	"math/bits"
	"slices"
	"strconv"
	"time"
	"unicode/utf8"
	"unsafe"

	"github.com/flowgo/flowgo"
)

// This file holds the append helpers the encoders share: numbers, times,
// JSON strings and name sanitising. None of them allocates.

// validFacility and validSeverity say whether a record's value can be
// written. Anything else, Unset included, is treated as absent, so that no
// encoder writes a PRI above 191 or a GELF level above 7.
func validFacility(f uint8) bool { return f <= 23 }
func validSeverity(s uint8) bool { return s <= 7 }

// appendPRI appends "<PRI>". A missing facility defaults to 1 (user) and a
// missing severity to 5 (notice), so that a record with only one of them
// keeps it. With both missing it appends "<13>" when always is set (RFC
// 5424 requires a PRI, and 13 is what Flowgger writes) and nothing
// otherwise (RFC 3164, as Flowgger does).
func appendPRI(dst []byte, r *flowgo.Record, always bool) []byte {
	f, s := r.Facility, r.Severity
	fOK, sOK := validFacility(f), validSeverity(s)
	if !fOK && !sOK {
		if !always {
			return dst
		}
		return append(dst, "<13>"...)
	}
	if !fOK {
		f = 1
	}
	if !sOK {
		s = 5
	}
	dst = append(dst, '<')
	dst = strconv.AppendUint(dst, uint64(f)*8+uint64(s), 10)
	return append(dst, '>')
}

// appendUnixMicro appends t as Unix seconds with up to six decimals,
// trailing zeros trimmed: 1438790025.637824, 1438790025.5, 1438790025.
// It works on integers, so the digits are exact where a float64 would be
// off in the last place; sub-microsecond digits are truncated. From 1970 to
// 2106 (2^32 seconds) the text is Flowgger's LTSV rendering,
// strconv.FormatFloat(ts, 'f', -1, 64), of the float64 nearest to the
// instant (TestLTSVTimeIsFlowggers), without the last-digit noise that
// Flowgger's own float conversion adds (1438790025.3820002).
func appendUnixMicro(dst []byte, t time.Time) []byte {
	sec := t.Unix()
	us := int64(t.Nanosecond() / 1000)
	if sec < 0 && us > 0 {
		// sec + us/1e6 lies between sec and sec+1: write it as
		// -(|sec|-1).(1e6-us), e.g. sec -2, us 500000 is -1.5.
		dst = append(dst, '-')
		dst = strconv.AppendUint(dst, uint64(-(sec + 1)), 10)
		us = 1e6 - us
	} else {
		dst = strconv.AppendInt(dst, sec, 10)
	}
	return appendMicroFrac(dst, us)
}

// appendMicroFrac appends ".dddddd" for us microseconds (0 <= us < 1e6),
// trailing zeros trimmed, or nothing when us is 0.
func appendMicroFrac(dst []byte, us int64) []byte {
	if us <= 0 {
		return dst
	}
	var b [7]byte
	b[0] = '.'
	for i := 6; i >= 1; i-- {
		b[i] = byte('0' + us%10)
		us /= 10
	}
	n := 7
	for b[n-1] == '0' {
		n--
	}
	return append(dst, b[:n]...)
}

// append2 appends v (0-99) as two digits.
func append2(dst []byte, v int) []byte {
	return append(dst, byte('0'+v/10), byte('0'+v%10))
}

// appendRFC3339Micro appends t in UTC as an RFC 5424 TIMESTAMP with the
// fraction in microseconds, trailing zeros trimmed and omitted when zero
// (the layout Flowgger 0.3 uses, with microseconds instead of
// milliseconds). The zero Time, and a year outside 0000-9999 that RFC 3339
// cannot write, give the NILVALUE "-".
func appendRFC3339Micro(dst []byte, t time.Time) []byte {
	if t.IsZero() {
		return append(dst, '-')
	}
	t = t.UTC()
	year, month, day := t.Date()
	if year < 0 || year > 9999 {
		return append(dst, '-')
	}
	hour, minute, sec := t.Clock()
	dst = append2(dst, year/100)
	dst = append2(dst, year%100)
	dst = append(dst, '-')
	dst = append2(dst, int(month))
	dst = append(dst, '-')
	dst = append2(dst, day)
	dst = append(dst, 'T')
	dst = append2(dst, hour)
	dst = append(dst, ':')
	dst = append2(dst, minute)
	dst = append(dst, ':')
	dst = append2(dst, sec)
	dst = appendMicroFrac(dst, int64(t.Nanosecond()/1000))
	return append(dst, 'Z')
}

// appendTextFloat renders f as Flowgger's text encoders do (Rust's Display
// for f64): the shortest digits that read back as f, never in exponent
// form, no ".0" on integers; NaN, inf and -inf for the others.
func appendTextFloat(dst []byte, f float64) []byte {
	switch {
	case math.IsNaN(f):
		return append(dst, "NaN"...)
	case math.IsInf(f, 1):
		return append(dst, "inf"...)
	case math.IsInf(f, -1):
		return append(dst, "-inf"...)
	}
	return strconv.AppendFloat(dst, f, 'f', -1, 64)
}

// appendTextValue renders a typed value as text, for the formats whose
// values are all strings (RFC 5424, RFC 3164, LTSV). A null is empty.
// Strings are appended raw: the caller escapes what its format needs.
func appendTextValue(dst []byte, v flowgo.Value) []byte {
	switch v.Kind {
	case flowgo.KindString:
		return append(dst, v.Str...)
	case flowgo.KindBool:
		return strconv.AppendBool(dst, v.Bool())
	case flowgo.KindF64:
		return appendTextFloat(dst, v.F64())
	case flowgo.KindI64:
		return strconv.AppendInt(dst, v.I64(), 10)
	case flowgo.KindU64:
		return strconv.AppendUint(dst, v.U64(), 10)
	}
	return dst
}

// appendJSONFloat writes f as a JSON number that reads back as exactly f
// and is recognisably a float: the shortest digits, exponent form below
// 1e-6 and from 1e21 up (as encoding/json does), and ".0" on integral
// values (as Flowgger does), so that 3.0 stays a float through a GELF
// round trip. NaN and ±Inf have no JSON form: they are written null, which
// Graylog drops.
func appendJSONFloat(dst []byte, f float64) []byte {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return append(dst, "null"...)
	}
	abs := math.Abs(f)
	if abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		dst = strconv.AppendFloat(dst, f, 'e', -1, 64)
		// Go writes e-07; JSON readers take it, but e-7 is the usual form.
		if n := len(dst); n >= 4 && dst[n-4] == 'e' && dst[n-3] == '-' && dst[n-2] == '0' {
			dst[n-2] = dst[n-1]
			dst = dst[:n-1]
		}
		return dst
	}
	start := len(dst)
	dst = strconv.AppendFloat(dst, f, 'f', -1, 64)
	for _, c := range dst[start:] {
		if c == '.' {
			return dst
		}
	}
	return append(dst, '.', '0')
}

// jsonPlain marks the ASCII bytes that a JSON string holds as they are.
var jsonPlain = func() (t [256]bool) {
	for c := 0x20; c < utf8.RuneSelf; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

const (
	lsb = 0x0101010101010101
	msb = 0x8080808080808080
)

// specialBytes returns a mask with the top bit set in the lowest byte of x
// that needs a look in a JSON string (a control character, '"', '\\' or a
// byte from 0x80 up), and maybe in higher ones; 0 when there is none. These
// are the classic word tricks "has a byte less than n" and "has a zero
// byte": a borrow can flag a byte above a flagged one, never the first.
func specialBytes(x uint64) uint64 {
	ctl := (x - lsb*0x20) & ^x
	q := x ^ (lsb * '"')
	quo := (q - lsb) & ^q
	b := x ^ (lsb * '\\')
	bsl := (b - lsb) & ^b
	return (ctl | quo | bsl | x) & msb
}

// load64 returns the first 8 bytes of s as a word (little-endian; the word
// tricks do not care about byte order).
func load64(s string) uint64 {
	_ = s[7]
	return uint64(s[0]) | uint64(s[1])<<8 | uint64(s[2])<<16 | uint64(s[3])<<24 |
		uint64(s[4])<<32 | uint64(s[5])<<40 | uint64(s[6])<<48 | uint64(s[7])<<56
}

const hexDigits = "0123456789abcdef"

// appendJSONString appends s as a JSON string. It escapes '"', '\' and the
// control characters below 0x20 (\n, \r, \t, \b, \f, else \u00xx, in
// lowercase hex as Flowgger writes them) and writes each byte that is not
// part of valid UTF-8 as U+FFFD, so the output is always valid JSON in
// valid UTF-8. Everything else, '/', '<', U+2028 included, is written raw.
func appendJSONString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	if useSIMDEscape && len(s) > 0 {
		dst = appendJSONSIMD(dst, s)
	} else {
		dst = appendJSONBody(dst, s)
	}
	return append(dst, '"')
}

// appendJSONSIMD is appendJSONString's inside with escapeBlocks for the
// 16-byte blocks and escapeSmall for the last 1-15 bytes, or for a string
// shorter than a block: most of a record's strings are (host, app name, SD
// values), and the word-at-a-time loop spent more time on them and on the
// tails than escapeBlocks on the blocks.
func appendJSONSIMD(dst []byte, s string) []byte {
	start := unsafe.Pointer(unsafe.StringData(s))
	whole := len(s)
	if whole >= 16 {
		dst = appendJSONBlocks(dst, &s)
	}
	t := len(s)
	if t == 0 {
		return dst
	}
	var window unsafe.Pointer
	shift := 0
	switch {
	case whole >= 16:
		// The 16 bytes ending the string; s is their last t.
		window, shift = unsafe.Add(start, whole-16), 16-t
	case uintptr(start)&(pageSize-1) <= pageSize-16:
		// 16 bytes from the start of a short string stay in its memory
		// page, so reading past the string cannot fault: memory is
		// mapped a page at a time. The bytes past it are ignored.
		window = start
	default:
		return appendJSONBody(dst, s)
	}
	dst = slices.Grow(dst, 32)
	n := len(dst)
	wrote := escapeSmall(unsafe.Pointer(unsafe.SliceData(dst[n:cap(dst)])), window, shift, t)
	if wrote < 0 {
		return appendJSONBody(dst, s)
	}
	return dst[:n+wrote]
}

// pageSize is the smallest memory page of the platforms escapeSmall runs on.
const pageSize = 4096

// appendJSONBlocks escapes s 16 bytes at a time with escapeBlocks (SIMD:
// backslashes inserted by a byte shuffle, so the quotes of an RFC 5424
// line cost no branch) while at least 16 bytes are left, and leaves the
// rest in *s. A block holding a control character or a non-ASCII byte goes
// through appendJSONBody, up to the next character boundary.
func appendJSONBlocks(dst []byte, s *string) []byte {
	rest := *s
	for len(rest) >= 16 {
		// escapeBlocks writes at most two bytes per byte it reads.
		dst = slices.Grow(dst, 2*len(rest)+16)
		n := len(dst)
		read, wrote := escapeBlocks(unsafe.Pointer(unsafe.SliceData(dst[n:cap(dst)])), unsafe.Pointer(unsafe.StringData(rest)), len(rest))
		dst = dst[:n+wrote]
		rest = rest[read:]
		if len(rest) < 16 {
			break
		}
		// Cut after the block, before a byte that starts a character: a
		// valid UTF-8 sequence never spans such a cut, so escaping the two
		// sides apart gives the same bytes as escaping them together.
		end := 16
		for end < len(rest) && !utf8.RuneStart(rest[end]) {
			end++
		}
		dst = appendJSONBody(dst, rest[:end])
		rest = rest[end:]
	}
	*s = rest
	return dst
}

// appendJSONBody is appendJSONString without the quotes, a word at a time.
func appendJSONBody(dst []byte, s string) []byte {
	i := 0
	for i < len(s) {
		// Most text is plain ASCII: copy it eight bytes at a time. A word
		// with a byte that needs a look is copied whole too, and the copy
		// cut back to the bytes before that one: a store and a subtraction
		// instead of a copy call per run between two quotes.
		if i+8 <= len(s) {
			w := load64(s[i:])
			m := specialBytes(w)
			dst = binary.LittleEndian.AppendUint64(dst, w)
			if m == 0 {
				i += 8
				continue
			}
			p := bits.TrailingZeros64(m) >> 3
			dst = dst[:len(dst)-8+p]
			i += p
		} else if jsonPlain[s[i]] {
			dst = append(dst, s[i])
			i++
			continue
		}
		c := s[i]
		if c < utf8.RuneSelf {
			switch c {
			case '"', '\\':
				dst = append(dst, '\\', c)
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			case '\b':
				dst = append(dst, '\\', 'b')
			case '\f':
				dst = append(dst, '\\', 'f')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, "\ufffd"...)
		} else {
			dst = append(dst, s[i:i+size]...)
		}
		i += size
	}
	return dst
}

// appendUTF8 appends s with every byte that is not part of valid UTF-8
// replaced by U+FFFD, for formats whose text must be UTF-8 (RFC 5424
// PARAM-VALUE). escape marks the ASCII bytes to precede with a backslash.
func appendUTF8(dst []byte, s string, escape *[utf8.RuneSelf]bool) []byte {
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if escape[c] {
				dst = append(dst, s[start:i]...)
				dst = append(dst, '\\', c)
				start = i + 1
			}
			i++
			continue
		}
		dst, start, i = appendNonASCII(dst, s, start, i)
	}
	return append(dst, s[start:]...)
}

// appendNonASCII steps over the non-ASCII character at s[i] for appendUTF8
// and appendLTSV, which copy s in runs from start: a valid rune stays in
// the run; a byte of invalid UTF-8 ends it, is written U+FFFD, and the next
// run starts after it. It returns dst, the run's start, and the index of
// the next character.
func appendNonASCII(dst []byte, s string, start, i int) ([]byte, int, int) {
	r, size := utf8.DecodeRuneInString(s[i:])
	if r == utf8.RuneError && size == 1 {
		dst = append(dst, s[start:i]...)
		dst = append(dst, "\ufffd"...)
		start = i + 1
	}
	return dst, start, i + size
}

// A nameSet is the set of ASCII bytes a format allows in a field name; a
// name is sanitised by writing every other character (each non-ASCII rune,
// each byte of invalid UTF-8) as one '_'. Bytes from 0x80 up are never in
// the set, which spares a range check.
type nameSet [256]bool

// next returns the sanitised byte for the character at s[i] and the
// width of that character.
func (set *nameSet) next(s string, i int) (byte, int) {
	c := s[i]
	if set[c] {
		return c, 1
	}
	if c < utf8.RuneSelf {
		return '_', 1
	}
	_, n := utf8.DecodeRuneInString(s[i:])
	return '_', n
}

// append appends s sanitised, at most limit bytes of it (limit < 0: no limit).
func (set *nameSet) append(dst []byte, s string, limit int) []byte {
	// Names are nearly always valid already: copy the valid prefix at once.
	end := len(s)
	if limit >= 0 && end > limit {
		end = limit
	}
	i := 0
	for i < end && set[s[i]] {
		i++
	}
	dst = append(dst, s[:i]...)
	for n := i; i < len(s) && n != limit; n++ {
		c, w := set.next(s, i)
		dst = append(dst, c)
		i += w
	}
	return dst
}

// valid reports whether s is already sanitised.
func (set *nameSet) valid(s string) bool {
	for i := 0; i < len(s); i++ {
		if !set[s[i]] {
			return false
		}
	}
	return true
}

// same reports whether a and b sanitise to the same name.
func (set *nameSet) same(a, b string) bool { return set.sameN(a, b, -1) }

// sameN reports whether a and b sanitised and cut to limit bytes (limit < 0:
// no limit) are the same name.
func (set *nameSet) sameN(a, b string, limit int) bool {
	if a == b {
		return true
	}
	i, j, n := 0, 0, 0
	for ; n != limit && i < len(a) && j < len(b); n++ {
		ca, wa := set.next(a, i)
		cb, wb := set.next(b, j)
		if ca != cb {
			return false
		}
		i += wa
		j += wb
	}
	return n == limit || (i == len(a) && j == len(b))
}

func newNameSet(extra string, ranges ...[2]byte) *nameSet {
	var set nameSet
	for _, r := range ranges {
		for c := int(r[0]); c <= int(r[1]); c++ {
			set[c] = true
		}
	}
	for i := 0; i < len(extra); i++ {
		set[extra[i]] = true
	}
	return &set
}

// paramCount returns the number of params of all SD elements.
func paramCount(sd []flowgo.SDElement) int {
	n := 0
	for i := range sd {
		n += len(sd[i].Params)
	}
	return n
}

// smallParams is the number of params up to which encoders find duplicate
// names by comparing each param with the later ones. Above it (a GELF
// object with hundreds of fields) they build a map once, so that a hostile
// record costs O(n) and not O(n²); that map is the only allocation an
// encoder makes. A variable so that tests can compare both ways.
var smallParams = 24
