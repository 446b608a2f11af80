package encoder

import (
	"math/bits"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/flowgo/flowgo"
	"github.com/flowgo/flowgo/config"
)

func init() {
	Register("ltsv", func(s *config.Section) (Encoder, error) { return NewLTSV(s) })
}

// LTSV writes a record as tab-separated label:value fields, in Flowgger's
// order: the SD params (names as stored, "_" for an empty one; typed values
// as text, null empty), the ltsv_extra entries sorted by label, then host
// (always; "-" when empty or blank, which LTSV readers refuse), time
// (always: Unix seconds with up to 6 exact decimals; the encoding time when
// the record has none, or one before 1970 or after 9999 that LTSV readers
// refuse), message, full_message, level, facility, appname, procid and
// msgid, each when set.
//
// A label appears once. Unlike Flowgger, which writes duplicates (its issue
// #39), an ltsv_extra entry replaces the field of the same label, record
// fields included; a record field replaces a param of its label; of two
// params with one label the later wins.
//
// Escaping is Flowgger's, plus CR: in labels, TAB, LF and CR become a space
// and ':' becomes '_'; in values, TAB, LF and CR become a space. (A CR left
// in a value would be cut off by line framing, which drops a trailing CR.)
// Bytes of invalid UTF-8 become U+FFFD, as LTSV readers take UTF-8 only.
type LTSV struct {
	extra      []byte   // "\tlabel:value"... for the ltsv_extra entries
	extraKeys  []string // their labels, escaped
	extraHash  []uint64 // ltsvLabelHash of each
	overFields fieldSet // record fields that ltsv_extra replaces
	now        clock
}

// The record fields LTSV writes after the extras, as bits of a fieldSet.
type fieldSet uint16

var ltsvFields = [...]string{"host", "time", "message", "full_message", "level", "facility", "appname", "procid", "msgid"}

const (
	ltsvHost fieldSet = 1 << iota
	ltsvTime
	ltsvMessage
	ltsvFull
	ltsvLevel
	ltsvFacility
	ltsvApp
	ltsvProc
	ltsvMsgID
)

// An ltsvMap gives the byte written for each ASCII byte of a label or a
// value, and marks the bytes written as they are.
type ltsvMap struct {
	to    [256]byte
	plain [256]bool // ASCII and written as is
}

// ltsvLabelMap and ltsvValueMap are the maps of labels and values.
var ltsvLabelMap, ltsvValueMap = newLTSVMap(true), newLTSVMap(false)

func newLTSVMap(label bool) *ltsvMap {
	var m ltsvMap
	for c := range m.to {
		m.to[c] = byte(c)
	}
	for _, c := range []byte{'\t', '\n', '\r'} {
		m.to[c] = ' '
	}
	if label {
		m.to[':'] = '_'
	}
	for c := range utf8.RuneSelf {
		m.plain[c] = m.to[c] == byte(c)
	}
	return &m
}

// NewLTSV builds an LTSV encoder from the [output] key ltsv_extra (a table
// of strings added to every record).
func NewLTSV(s *config.Section) (*LTSV, error) {
	s = section(s)
	ignoreOthers(s, "ltsv", "ltsv_extra")
	var c struct {
		Extra map[string]string `toml:"ltsv_extra"`
	}
	if err := s.Decode(&c); err != nil {
		return nil, err
	}
	l := &LTSV{now: time.Now}
	keys := make([]string, 0, len(c.Extra))
	for k := range c.Extra {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	final := map[string]string{}
	var order []string
	for _, k := range keys {
		// Flowgger strips one leading '_' from ltsv_extra labels.
		label := string(appendLTSV(nil, trimUnderscore(k), ltsvLabelMap))
		if label == "" {
			return nil, s.Errorf("ltsv_extra", "key %q gives an empty label", k)
		}
		if label != k && label != trimUnderscore(k) {
			s.Warn("ltsv_extra", "key %q is written %q: an LTSV label holds no tab, newline or ':'", k, label)
		}
		if prev, dup := final[label]; dup {
			s.Warn("ltsv_extra", "keys %q and %q are both written %q; the value of %q wins", prev, k, label, k)
			order = slices.DeleteFunc(order, func(o string) bool { return o == label })
		}
		final[label] = k
		order = append(order, label)
	}
	for _, label := range order {
		l.extra = append(l.extra, '\t')
		l.extra = append(l.extra, label...)
		l.extra = append(l.extra, ':')
		l.extra = appendLTSV(l.extra, c.Extra[final[label]], ltsvValueMap)
		l.extraKeys = append(l.extraKeys, label)
		l.extraHash = append(l.extraHash, ltsvLabelHash(label))
		if i := slices.Index(ltsvFields[:], label); i >= 0 {
			l.overFields |= 1 << i
		}
	}
	return l, nil
}

// ltsvLabel returns the label of a param name: "_" for the empty name, so
// that every field has a label.
func ltsvLabel(name string) string {
	if name == "" {
		return "_"
	}
	return name
}

func trimUnderscore(s string) string {
	if len(s) > 1 && s[0] == '_' {
		return s[1:]
	}
	return s
}

// appendLTSV appends s as an LTSV label (m is ltsvLabelMap) or value
// (ltsvValueMap): each ASCII byte mapped by m, each byte of invalid UTF-8
// written U+FFFD, since LTSV readers (Flowgger's, flowgo's) take UTF-8
// only. Eight bytes at a time are skipped when none needs a look.
func appendLTSV(dst []byte, s string, m *ltsvMap) []byte {
	start := 0
	for i := 0; i < len(s); {
		for i+8 <= len(s) {
			w := ltsvSpecial(load64(s[i:]))
			if w != 0 {
				i += bits.TrailingZeros64(w) >> 3
				break
			}
			i += 8
		}
		for i < len(s) && m.plain[s[i]] {
			i++
		}
		if i >= len(s) {
			break
		}
		c := s[i]
		if c < utf8.RuneSelf {
			dst = append(dst, s[start:i]...)
			dst = append(dst, m.to[c])
			i++
			start = i
			continue
		}
		dst, start, i = appendNonASCII(dst, s, start, i)
	}
	return append(dst, s[start:]...)
}

// ltsvSpecial returns a mask with the top bit set in the lowest byte of x
// that may need a look (below 0x0e, ':', or from 0x80 up), and maybe in
// higher ones; 0 when there is none.
func ltsvSpecial(x uint64) uint64 {
	low := (x - lsb*0x0e) & ^x
	c := x ^ (lsb * ':')
	colon := (c - lsb) & ^c
	return (low | colon | x) & msb
}

// ltsvNext returns the character written for the label character at s[i],
// and its width in s.
func ltsvNext(s string, i int) (rune, int) {
	if c := s[i]; c < utf8.RuneSelf {
		return rune(ltsvLabelMap.to[c]), 1
	}
	return utf8.DecodeRuneInString(s[i:]) // RuneError for invalid bytes, written U+FFFD
}

// sameLabel reports whether labels a and b are written the same. Escaping
// leaves an escaped label as it is, so either may be escaped already.
func sameLabel(a, b string) bool {
	if a == b {
		return true
	}
	i, j := 0, 0
	for i < len(a) && j < len(b) {
		ra, wa := ltsvNext(a, i)
		rb, wb := ltsvNext(b, j)
		if ra != rb {
			return false
		}
		i += wa
		j += wb
	}
	return i == len(a) && j == len(b)
}

// fields returns the record fields r has, less those ltsv_extra replaces.
func (l *LTSV) fields(r *flowgo.Record) fieldSet {
	f := ltsvHost | ltsvTime
	if r.Msg != "" {
		f |= ltsvMessage
	}
	if r.FullMsg != "" {
		f |= ltsvFull
	}
	if validSeverity(r.Severity) {
		f |= ltsvLevel
	}
	if validFacility(r.Facility) {
		f |= ltsvFacility
	}
	if r.AppName != "" {
		f |= ltsvApp
	}
	if r.ProcID != "" {
		f |= ltsvProc
	}
	if r.MsgID != "" {
		f |= ltsvMsgID
	}
	return f &^ l.overFields
}

// Encode appends the LTSV line for r to dst. It never fails.
func (l *LTSV) Encode(dst []byte, r *flowgo.Record) ([]byte, error) {
	fields := l.fields(r)
	var x nameIndex
	x.init(r.SD, &ltsvRules)

	tab := false
	k := 0
	for i := range r.SD {
		ps := r.SD[i].Params
		for j := range ps {
			if !l.replaced(&x, fields, k, ps[j].Name) {
				if tab {
					dst = append(dst, '\t')
				}
				tab = true
				dst = appendLTSV(dst, ltsvLabel(ps[j].Name), ltsvLabelMap)
				dst = append(dst, ':')
				if ps[j].Value.Kind == flowgo.KindString {
					dst = appendLTSV(dst, ps[j].Value.Str, ltsvValueMap)
				} else {
					dst = appendTextValue(dst, ps[j].Value)
				}
			}
			k++
		}
	}
	if len(l.extra) > 0 {
		if tab {
			dst = append(dst, l.extra...)
		} else {
			dst = append(dst, l.extra[1:]...)
		}
		tab = true
	}
	field := func(f fieldSet, label string) bool {
		if fields&f == 0 {
			return false
		}
		if tab {
			dst = append(dst, '\t')
		}
		tab = true
		dst = append(dst, label...)
		dst = append(dst, ':')
		return true
	}
	if field(ltsvHost, "host") {
		if strings.TrimSpace(r.Hostname) == "" {
			dst = append(dst, '-') // LTSV readers refuse an empty host
		} else {
			dst = appendLTSV(dst, r.Hostname, ltsvValueMap)
		}
	}
	if field(ltsvTime, "time") {
		t := r.Time
		if sec := t.Unix(); t.IsZero() || sec < 0 || sec > gelfMaxUnix {
			t = l.now()
		}
		dst = appendUnixMicro(dst, t)
	}
	if field(ltsvMessage, "message") {
		dst = appendLTSV(dst, r.Msg, ltsvValueMap)
	}
	if field(ltsvFull, "full_message") {
		dst = appendLTSV(dst, r.FullMsg, ltsvValueMap)
	}
	if field(ltsvLevel, "level") {
		dst = strconv.AppendUint(dst, uint64(r.Severity), 10)
	}
	if field(ltsvFacility, "facility") {
		dst = strconv.AppendUint(dst, uint64(r.Facility), 10)
	}
	if field(ltsvApp, "appname") {
		dst = appendLTSV(dst, r.AppName, ltsvValueMap)
	}
	if field(ltsvProc, "procid") {
		dst = appendLTSV(dst, r.ProcID, ltsvValueMap)
	}
	if field(ltsvMsgID, "msgid") {
		dst = appendLTSV(dst, r.MsgID, ltsvValueMap)
	}
	return dst, nil
}

// replaced reports whether the k-th param of the record, named name,
// gives way to ltsv_extra, to a record field or to a later param.
func (l *LTSV) replaced(x *nameIndex, fields fieldSet, k int, name string) bool {
	h := x.hashOf(k, name)
	for i, e := range l.extraKeys {
		if l.extraHash[i] == h && sameLabel(ltsvLabel(name), e) {
			return true
		}
	}
	for f, label := range ltsvFields {
		if fields&(1<<f) != 0 && ltsvFieldHash[f] == h && sameLabel(ltsvLabel(name), label) {
			return true
		}
	}
	return x.later(k, name)
}

// ltsvRules are the labels of params for nameIndex.
var ltsvRules = nameRules{
	hash:  ltsvLabelHash,
	same:  func(a, b string) bool { return sameLabel(ltsvLabel(a), ltsvLabel(b)) },
	write: func(dst []byte, name string) []byte { return appendLTSV(dst, ltsvLabel(name), ltsvLabelMap) },
}

// ltsvFieldHash holds ltsvLabelHash of each of ltsvFields.
var ltsvFieldHash = func() (h [len(ltsvFields)]uint64) {
	for i, f := range ltsvFields {
		h[i] = ltsvLabelHash(f)
	}
	return h
}()

// ltsvLabelHash is FNV-1a of the characters of the label a param name is
// written as: labels written the same have equal hashes.
func ltsvLabelHash(name string) uint64 {
	name = ltsvLabel(name)
	h := uint64(fnvOffset)
	for i := 0; i < len(name); {
		var r rune
		if c := name[i]; c < utf8.RuneSelf {
			r = rune(ltsvLabelMap.to[c])
			i++
		} else {
			var w int
			r, w = utf8.DecodeRuneInString(name[i:])
			i += w
		}
		h = (h ^ uint64(r)) * fnvPrime
	}
	return h
}
