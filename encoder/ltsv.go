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

// ltsvLabelMap and ltsvValueMap give the byte written for each byte of a
// label and of a value.
var ltsvLabelMap, ltsvValueMap = func() (l, v [256]byte) {
	for c := range l {
		l[c], v[c] = byte(c), byte(c)
	}
	for _, c := range []byte{'\t', '\n', '\r'} {
		l[c], v[c] = ' ', ' '
	}
	l[':'] = '_'
	return l, v
}()

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
	if c.Extra == nil && s.Has("ltsv_extra") {
		// BurntSushi/toml leaves a map nil, without an error, when the
		// value is not a table.
		return nil, s.Errorf("ltsv_extra", "wrong type: expected a table of strings, such as { _env = \"prod\" }")
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
		label := string(appendLTSV(nil, trimUnderscore(k), &ltsvLabelMap))
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
		l.extra = appendLTSV(l.extra, c.Extra[final[label]], &ltsvValueMap)
		l.extraKeys = append(l.extraKeys, label)
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
func appendLTSV(dst []byte, s string, m *[256]byte) []byte {
	start := 0
	for i := 0; i < len(s); {
		if i+8 <= len(s) {
			w := ltsvSpecial(load64(s[i:]))
			if w == 0 {
				i += 8
				continue
			}
			i += bits.TrailingZeros64(w) >> 3
		}
		c := s[i]
		if c < utf8.RuneSelf {
			if m[c] != c {
				dst = append(dst, s[start:i]...)
				dst = append(dst, m[c])
				start = i + 1
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, "\ufffd"...)
			start = i + 1
		}
		i += size
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
		return rune(ltsvLabelMap[c]), 1
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
	var seen map[string]int
	if n := paramCount(r.SD); n > smallParams {
		seen = make(map[string]int, n)
		var buf []byte
		k := 0
		for i := range r.SD {
			for j := range r.SD[i].Params {
				buf = appendLTSV(buf[:0], ltsvLabel(r.SD[i].Params[j].Name), &ltsvLabelMap)
				seen[string(buf)] = k
				k++
			}
		}
	}

	tab := false
	k := 0
	for i := range r.SD {
		ps := r.SD[i].Params
		for j := range ps {
			if !l.replaced(r.SD, seen, fields, i, j, k) {
				if tab {
					dst = append(dst, '\t')
				}
				tab = true
				dst = appendLTSV(dst, ltsvLabel(ps[j].Name), &ltsvLabelMap)
				dst = append(dst, ':')
				if ps[j].Value.Kind == flowgo.KindString {
					dst = appendLTSV(dst, ps[j].Value.Str, &ltsvValueMap)
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
			dst = appendLTSV(dst, r.Hostname, &ltsvValueMap)
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
		dst = appendLTSV(dst, r.Msg, &ltsvValueMap)
	}
	if field(ltsvFull, "full_message") {
		dst = appendLTSV(dst, r.FullMsg, &ltsvValueMap)
	}
	if field(ltsvLevel, "level") {
		dst = strconv.AppendUint(dst, uint64(r.Severity), 10)
	}
	if field(ltsvFacility, "facility") {
		dst = strconv.AppendUint(dst, uint64(r.Facility), 10)
	}
	if field(ltsvApp, "appname") {
		dst = appendLTSV(dst, r.AppName, &ltsvValueMap)
	}
	if field(ltsvProc, "procid") {
		dst = appendLTSV(dst, r.ProcID, &ltsvValueMap)
	}
	if field(ltsvMsgID, "msgid") {
		dst = appendLTSV(dst, r.MsgID, &ltsvValueMap)
	}
	return dst, nil
}

// replaced reports whether the param at SD[i].Params[j], the k-th of the
// record, gives way to ltsv_extra, to a record field or to a later param.
func (l *LTSV) replaced(sd []flowgo.SDElement, seen map[string]int, fields fieldSet, i, j, k int) bool {
	name := ltsvLabel(sd[i].Params[j].Name)
	for _, x := range l.extraKeys {
		if sameLabel(name, x) {
			return true
		}
	}
	for f, label := range ltsvFields {
		if fields&(1<<f) != 0 && sameLabel(name, label) {
			return true
		}
	}
	if seen != nil {
		return seen[string(appendLTSV(nil, name, &ltsvLabelMap))] != k
	}
	for ; i < len(sd); i, j = i+1, -1 {
		ps := sd[i].Params
		for j++; j < len(ps); j++ {
			if sameLabel(ltsvLabel(ps[j].Name), name) {
				return true
			}
		}
	}
	return false
}
