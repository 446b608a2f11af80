package decoder

import (
	"bytes"
	"errors"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/flowgo/flowgo"
	"github.com/flowgo/flowgo/config"
)

func init() {
	Register("ltsv", func(s *config.Section) (Decoder, error) { return newLTSV(s) })
}

var _ Decoder = (*LTSV)(nil)

// LTSV decodes Labeled Tab-Separated Values, one record per frame
// (input.format = "ltsv"): TAB-separated label:value fields, each split at
// its first ':'.
//
// Four labels map to record fields: time (required) → Time, host (required,
// non-empty) → Hostname, message → Msg and level (0-7) → Severity. time may
// be Unix seconds with decimals ("1385053862.3072"), RFC 3339
// ("2000-10-10T13:55:36.5-07:00") or Apache's format
// ("10/Oct/2000:13:55:36 -0700"), optionally inside "[ ]"; it is kept in UTC
// and must lie between 1970 and 9999. Every other label becomes a parameter
// of one SD element with an empty ID, in the order of the line, its value
// kept verbatim as a string unless [input.ltsv_schema] gives the label a
// type; [input.ltsv_suffixes] then appends the type's suffix to the name.
// FullMsg is the whole line, trailing white space removed.
//
// The decoder is strict where Flowgger prints a notice and goes on: a field
// without ':' (an empty field too, from two TABs in a row or a TAB at the
// end), an empty label, a label given twice, a value that does not parse as
// its schema type, and invalid UTF-8 reject the frame. A trailing CR or LF
// is not part of the record and is ignored.
//
// The zero LTSV is ready to use and has no schema.
type LTSV struct {
	// fields holds the labels [input.ltsv_schema] types, with the name the
	// parameter gets once [input.ltsv_suffixes] is applied.
	fields map[string]ltsvField
}

type ltsvField struct {
	name string
	kind flowgo.Kind
}

// ltsvKinds maps the schema's type names (lowercased) to value kinds.
var ltsvKinds = map[string]flowgo.Kind{
	"string": flowgo.KindString,
	"bool":   flowgo.KindBool,
	"f64":    flowgo.KindF64,
	"i64":    flowgo.KindI64,
	"u64":    flowgo.KindU64,
}

const ltsvKnownTypes = "bool, f64, i64, string, u64"

// ltsvConfig is what the LTSV decoder reads from the input section.
type ltsvConfig struct {
	Schema   map[string]string `toml:"ltsv_schema"`
	Suffixes map[string]string `toml:"ltsv_suffixes"`
}

func newLTSV(s *config.Section) (*LTSV, error) {
	var c ltsvConfig
	if s != nil {
		if err := s.Decode(&c); err != nil {
			return nil, err
		}
	}
	suffixes := map[flowgo.Kind]string{}
	for _, typ := range ltsvSortedKeys(c.Suffixes) {
		k, ok := ltsvKinds[strings.ToLower(typ)]
		if !ok {
			return nil, s.Errorf("ltsv_suffixes."+typ, "unsupported type %q (known: bool, f64, i64, u64)", typ)
		}
		if k == flowgo.KindString {
			return nil, s.Errorf("ltsv_suffixes."+typ, "strings cannot be suffixed (suffixes apply to bool, f64, i64 and u64)")
		}
		if _, dup := suffixes[k]; dup {
			return nil, s.Errorf("ltsv_suffixes."+typ, "suffix for %s given twice", k)
		}
		suffixes[k] = c.Suffixes[typ]
	}
	d := &LTSV{}
	for _, label := range ltsvSortedKeys(c.Schema) {
		typ := c.Schema[label]
		k, ok := ltsvKinds[strings.ToLower(typ)]
		if !ok {
			return nil, s.Errorf("ltsv_schema."+label, "unsupported type %q (known: %s)", typ, ltsvKnownTypes)
		}
		switch label {
		case "time", "host", "message", "level":
			// Flowgger ignores these too; say so rather than fail a
			// flowgger.toml that has them.
			s.Warn("ltsv_schema."+label, "ignored: %q maps to a record field, not a typed parameter", label)
			continue
		case "":
			return nil, s.Errorf("ltsv_schema", "empty label")
		}
		name := label
		if suf := suffixes[k]; !strings.HasSuffix(name, suf) {
			name += suf
		}
		if d.fields == nil {
			d.fields = make(map[string]ltsvField, len(c.Schema))
		}
		d.fields[label] = ltsvField{name: name, kind: k}
	}
	return d, nil
}

// ltsvSortedKeys returns m's keys sorted, so that which error is reported
// first does not depend on map order.
func ltsvSortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// Bits of the labels with a meaning of their own, to catch duplicates.
const (
	ltsvSeenTime = 1 << iota
	ltsvSeenHost
	ltsvSeenMessage
	ltsvSeenLevel
)

// Decode implements Decoder.
func (d *LTSV) Decode(frame []byte, r *flowgo.Record, a *flowgo.Arena) error {
	line := frame
	for len(line) > 0 && (line[len(line)-1] == '\n' || line[len(line)-1] == '\r') {
		line = line[:len(line)-1]
	}
	if len(bytes.TrimSpace(line)) == 0 {
		return Errorf("ltsv", 0, "empty frame")
	}
	if !utf8.Valid(line) { // fast; the loop below only finds the column
		return Errorf("ltsv", ltsvInvalidUTF8(line)+1, "invalid UTF-8")
	}
	raw := a.Copy(line)
	r.FullMsg = flowgo.UnsafeString(bytes.TrimRight(raw, " \t\r\n\v\f"))

	var (
		tmp    [gelfStackParams]flowgo.Param
		params = tmp[:0]
		names  gelfNames
		seen   uint
	)
	for start := 0; start <= len(raw); {
		end := bytes.IndexByte(raw[start:], '\t')
		if end < 0 {
			end = len(raw)
		} else {
			end += start
		}
		field := raw[start:end]
		col := start + 1
		next := end + 1
		colon := bytes.IndexByte(field, ':')
		switch {
		case len(field) == 0:
			return Errorf("ltsv", col, "empty field (two TABs in a row, or a TAB at the start or end)")
		case colon < 0:
			return Errorf("ltsv", col, "field %s has no ':' (want label:value)", gelfQuote(string(field)))
		case colon == 0:
			return Errorf("ltsv", col, "empty label")
		}
		label := flowgo.UnsafeString(field[:colon])
		value := flowgo.UnsafeString(field[colon+1:])
		valCol := col + colon + 1

		bit := uint(0)
		switch label {
		case "time":
			bit = ltsvSeenTime
			t, ok := ltsvTime(value)
			if !ok {
				return Errorf("ltsv", valCol, "time %s is not Unix seconds, RFC 3339 or Apache time (10/Oct/2000:13:55:36 -0700) between 1970 and 9999", gelfQuote(value))
			}
			r.Time = t
		case "host":
			bit = ltsvSeenHost
			if value == "" {
				return Errorf("ltsv", valCol, "host is empty")
			}
			r.Hostname = value
		case "message":
			bit = ltsvSeenMessage
			r.Msg = value
		case "level":
			bit = ltsvSeenLevel
			sev, ok := ltsvLevel(value)
			if !ok {
				return Errorf("ltsv", valCol, "level %s is not an integer from 0 to 7", gelfQuote(value))
			}
			r.Severity = sev
		default:
			name, v := label, flowgo.StringValue(value)
			if f, typed := d.fields[label]; typed {
				name = f.name
				var why string
				if v, why = ltsvTyped(value, f.kind); why != "" {
					return Errorf("ltsv", valCol, "%s: %s is not %s", label, gelfQuote(value), why)
				}
			}
			if names.has(params, name) {
				return Errorf("ltsv", col, "duplicate label %s", gelfQuote(label))
			}
			params = append(params, flowgo.Param{Name: name, Value: v})
			names.add(params)
		}
		if bit != 0 {
			if seen&bit != 0 {
				return Errorf("ltsv", col, "duplicate label %s", gelfQuote(label))
			}
			seen |= bit
		}
		start = next
	}
	if seen&ltsvSeenTime == 0 {
		return Errorf("ltsv", 0, "missing time")
	}
	if seen&ltsvSeenHost == 0 {
		return Errorf("ltsv", 0, "missing host")
	}
	if len(params) > 0 {
		e := [1]flowgo.SDElement{{Params: a.Params(params)}}
		r.SD = a.Elems(e[:])
	}
	return nil
}

// ltsvLevel parses a level: decimal digits worth 0-7. Leading zeros ("07")
// are accepted, as Flowgger's u8 parse does.
func ltsvLevel(v string) (uint8, bool) {
	if v == "" {
		return 0, false
	}
	for i := 0; i < len(v)-1; i++ {
		if v[i] != '0' {
			return 0, false
		}
	}
	c := v[len(v)-1]
	if c < '0' || c > '7' {
		return 0, false
	}
	return c - '0', true
}

// ltsvInvalidUTF8 returns the index of the first byte of b that is not
// valid UTF-8, or -1.
func ltsvInvalidUTF8(b []byte) int {
	i := 0
	for i < len(b) {
		if b[i] < utf8.RuneSelf {
			i++
			continue
		}
		_, size := utf8.DecodeRune(b[i:])
		if size == 1 {
			return i
		}
		i += size
	}
	return -1
}

// ltsvTyped converts a value to the schema's kind. On failure it says what
// was expected instead.
func ltsvTyped(s string, k flowgo.Kind) (flowgo.Value, string) {
	switch k {
	case flowgo.KindBool:
		switch s {
		case "true":
			return flowgo.BoolValue(true), ""
		case "false":
			return flowgo.BoolValue(false), ""
		}
		return flowgo.Value{}, "a bool (true or false)"
	case flowgo.KindF64:
		if !ltsvDecimal(s) {
			return flowgo.Value{}, "an f64 (a decimal number)"
		}
		f, err := strconv.ParseFloat(s, 64)
		if err != nil {
			return flowgo.Value{}, "an f64 (out of range)"
		}
		return flowgo.F64Value(f), ""
	case flowgo.KindI64:
		i, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return flowgo.Value{}, "an i64" + ltsvRange(err)
		}
		return flowgo.I64Value(i), ""
	case flowgo.KindU64:
		u, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			return flowgo.Value{}, "a u64" + ltsvRange(err)
		}
		return flowgo.U64Value(u), ""
	}
	return flowgo.StringValue(s), ""
}

func ltsvRange(err error) string {
	if errors.Is(err, strconv.ErrRange) {
		return " (out of range)"
	}
	return " (a decimal integer)"
}

// ltsvDecimal reports whether s is a plain decimal number: optional sign,
// digits with an optional point, optional exponent. It keeps out what
// strconv.ParseFloat would also take but no log line means as a number:
// NaN, Inf, hex floats, underscores.
func ltsvDecimal(s string) bool {
	i := 0
	if i < len(s) && (s[i] == '+' || s[i] == '-') {
		i++
	}
	digits := 0
	for ; i < len(s) && s[i] >= '0' && s[i] <= '9'; i++ {
		digits++
	}
	if i < len(s) && s[i] == '.' {
		i++
		for ; i < len(s) && s[i] >= '0' && s[i] <= '9'; i++ {
			digits++
		}
	}
	if digits == 0 {
		return false
	}
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		i++
		if i < len(s) && (s[i] == '+' || s[i] == '-') {
			i++
		}
		d := i
		for ; i < len(s) && s[i] >= '0' && s[i] <= '9'; i++ {
		}
		if i == d {
			return false
		}
	}
	return i == len(s)
}

// ltsvTime parses an LTSV time: Unix seconds, RFC 3339 or Apache's format,
// optionally inside brackets, in 1970-9999.
func ltsvTime(s string) (time.Time, bool) {
	if len(s) >= 2 && s[0] == '[' && s[len(s)-1] == ']' {
		s = s[1 : len(s)-1]
	}
	if s == "" {
		return time.Time{}, false
	}
	if t, ok := gelfUnixTime(s); ok {
		return t, true
	}
	t, ok := ltsvRFC3339(s)
	if !ok {
		t, ok = ltsvApache(s)
	}
	if !ok || t.Unix() < 0 || t.Unix() > gelfMaxUnix {
		return time.Time{}, false
	}
	return t, true
}

// ltsvNum parses exactly n digits at s[i:], returning -1 if they are not.
func ltsvNum(s string, i, n int) int {
	if i+n > len(s) {
		return -1
	}
	v := 0
	for _, c := range []byte(s[i : i+n]) {
		if c < '0' || c > '9' {
			return -1
		}
		v = v*10 + int(c-'0')
	}
	return v
}

// ltsvFraction parses ".digits" at s[i:] if present, returning nanoseconds
// (digits past the ninth are truncated) and the index after it.
func ltsvFraction(s string, i int) (nsec, next int, ok bool) {
	if i >= len(s) || s[i] != '.' {
		return 0, i, true
	}
	i++
	d := i
	scale := int(1e8)
	for ; i < len(s) && s[i] >= '0' && s[i] <= '9'; i++ {
		nsec += int(s[i]-'0') * scale
		scale /= 10
	}
	return nsec, i, i > d
}

// ltsvDate builds a UTC time from checked-later fields, or fails if a field
// is out of its range (time.Date would silently normalise it).
func ltsvDate(year, month, day, hour, minute, sec, nsec, offset int) (time.Time, bool) {
	if year < 0 || month < 1 || month > 12 || day < 1 || hour > 23 || minute > 59 || sec > 59 {
		return time.Time{}, false
	}
	if day > daysIn(year, month) {
		return time.Time{}, false
	}
	t := time.Date(year, time.Month(month), day, hour, minute, sec, nsec, time.UTC)
	return t.Add(-time.Duration(offset) * time.Second), true
}

// ltsvRFC3339 parses 2006-01-02T15:04:05[.frac](Z|±hh:mm); 't', 'z' and a
// space for 'T' are accepted, as RFC 3339 allows.
func ltsvRFC3339(s string) (time.Time, bool) {
	if len(s) < 20 || s[4] != '-' || s[7] != '-' || s[13] != ':' || s[16] != ':' {
		return time.Time{}, false
	}
	if s[10] != 'T' && s[10] != 't' && s[10] != ' ' {
		return time.Time{}, false
	}
	year, month, day := ltsvNum(s, 0, 4), ltsvNum(s, 5, 2), ltsvNum(s, 8, 2)
	hour, minute, sec := ltsvNum(s, 11, 2), ltsvNum(s, 14, 2), ltsvNum(s, 17, 2)
	if year < 0 || month < 0 || day < 0 || hour < 0 || minute < 0 || sec < 0 {
		return time.Time{}, false
	}
	nsec, i, ok := ltsvFraction(s, 19)
	if !ok || i >= len(s) {
		return time.Time{}, false
	}
	offset := 0
	switch s[i] {
	case 'Z', 'z':
		i++
	case '+', '-':
		oh, om := ltsvNum(s, i+1, 2), ltsvNum(s, i+4, 2)
		if oh < 0 || oh > 23 || om < 0 || om > 59 || i+3 >= len(s) || s[i+3] != ':' {
			return time.Time{}, false
		}
		offset = oh*3600 + om*60
		if s[i] == '-' {
			offset = -offset
		}
		i += 6
	default:
		return time.Time{}, false
	}
	if i != len(s) {
		return time.Time{}, false
	}
	return ltsvDate(year, month, day, hour, minute, sec, nsec, offset)
}

var ltsvMonths = [12]string{"jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"}

// ltsvApache parses Apache's %t: 10/Oct/2000:13:55:36[.frac] -0700. The day
// may have one digit and the month any letter case.
func ltsvApache(s string) (time.Time, bool) {
	i := strings.IndexByte(s, '/')
	if i < 1 || i > 2 {
		return time.Time{}, false
	}
	day := ltsvNum(s, 0, i)
	if day < 0 || len(s) < i+1+3+1+4+9+1+5 || s[i+4] != '/' {
		return time.Time{}, false
	}
	month := 0
	for m, name := range ltsvMonths {
		if strings.EqualFold(s[i+1:i+4], name) {
			month = m + 1
		}
	}
	i += 5
	year := ltsvNum(s, i, 4)
	if month == 0 || year < 0 || s[i+4] != ':' || s[i+7] != ':' || s[i+10] != ':' {
		return time.Time{}, false
	}
	hour, minute, sec := ltsvNum(s, i+5, 2), ltsvNum(s, i+8, 2), ltsvNum(s, i+11, 2)
	if hour < 0 || minute < 0 || sec < 0 {
		return time.Time{}, false
	}
	nsec, i, ok := ltsvFraction(s, i+13)
	if !ok || len(s)-i != 6 || s[i] != ' ' || (s[i+1] != '+' && s[i+1] != '-') {
		return time.Time{}, false
	}
	oh, om := ltsvNum(s, i+2, 2), ltsvNum(s, i+4, 2)
	if oh < 0 || oh > 23 || om < 0 || om > 59 {
		return time.Time{}, false
	}
	offset := oh*3600 + om*60
	if s[i+1] == '-' {
		offset = -offset
	}
	return ltsvDate(year, month, day, hour, minute, sec, nsec, offset)
}
