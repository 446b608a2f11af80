package decoder

import (
	"fmt"
	"math"
	"strconv"
	"time"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/flowgo/flowgo"
	"github.com/flowgo/flowgo/config"
)

func init() {
	Register("gelf", func(*config.Section) (Decoder, error) { return &GELF{}, nil })
}

var _ Decoder = (*GELF)(nil)

// GELF decodes one GELF 1.0/1.1 JSON object per frame (input.format = "gelf").
//
// The frame must be exactly one strict JSON object (RFC 8259, valid UTF-8,
// nothing but white space after it). Its keys map to the record as follows:
//
//   - version: optional; if present it must be "1.0" or "1.1".
//   - host: required, a non-empty string → Hostname.
//   - short_message: optional string → Msg.
//   - full_message: optional string → FullMsg. When it is absent FullMsg
//     stays empty (there is no raw line to keep: the frame is JSON), so the
//     passthrough encoder rejects such a record.
//   - timestamp: optional number of seconds since the Unix epoch, with any
//     number of decimals (decimals beyond nanoseconds are truncated) → Time;
//     when absent, the time of decoding. Negative values and values past the
//     year 9999 are rejected.
//   - level: optional integer 0-7 → Severity; a zero fraction ("6.0") is
//     accepted, other fractions and exponents are not. Absent leaves
//     Severity unset (GELF's own default of 1 is the encoder's business).
//   - every other key becomes a parameter of one SD element with an empty ID,
//     in the order of the input, named without one leading "_" ("_user" and
//     GELF 1.0's "file" give "user" and "file"). Values keep their JSON type:
//     string, bool, null, or a number: an integer literal becomes u64 (i64
//     when negative) if it fits, anything else f64. Arrays and objects are
//     rejected, as GELF allows none and Flowgger rejects them too.
//
// A key that appears twice is rejected, and so are "x" and "_x" together,
// which would name the same parameter; so is an empty name ("" or "_").
// Escaped lone UTF-16 surrogates (\ud800) become U+FFFD, as encoding/json
// does; raw invalid UTF-8 is rejected.
//
// The zero GELF is ready to use.
type GELF struct {
	// now returns the time for records without a timestamp; nil means
	// time.Now. Tests set it to get stable output.
	now func() time.Time
}

// gelfStackParams is how many additional fields a record can have before
// collecting them costs a heap allocation. Typical GELF messages have well
// under a dozen.
const gelfStackParams = 64

// gelfMaxUnix is the last second of year 9999, the latest time a four-digit
// year in RFC 3339 output can show. Timestamps run from 1970 up to it.
const gelfMaxUnix = 253402300799

// Bits of the keys with a meaning of their own, to catch duplicates.
const (
	gelfSeenVersion = 1 << iota
	gelfSeenHost
	gelfSeenShort
	gelfSeenFull
	gelfSeenTimestamp
	gelfSeenLevel
)

// Decode implements Decoder.
func (d *GELF) Decode(frame []byte, r *flowgo.Record, a *flowgo.Arena) error {
	// Copy once; strings are then unescaped in place, which never grows them,
	// and the record's strings are views of this copy.
	s := gelfScanner{b: a.Copy(frame)}
	s.skipSpace()
	if s.i == len(s.b) {
		return Errorf("gelf", 0, "empty frame")
	}
	if s.b[s.i] != '{' {
		return s.errorf("a GELF message must be a JSON object, found %s", s.what())
	}
	s.i++

	var (
		tmp    [gelfStackParams]flowgo.Param
		params = tmp[:0]
		names  gelfNames
		seen   uint
	)
	s.skipSpace()
	if s.peek() == '}' {
		s.i++
	} else {
		for {
			s.skipSpace()
			keyCol := s.i + 1
			if s.peek() != '"' {
				return s.errorf("expected a key string, found %s", s.what())
			}
			key, err := s.str()
			if err != nil {
				return err
			}
			s.skipSpace()
			if s.peek() != ':' {
				return s.errorf("expected ':' after key %s, found %s", gelfQuote(key), s.what())
			}
			s.i++
			s.skipSpace()
			valCol := s.i + 1
			v, err := s.value()
			if err != nil {
				return err
			}

			bit := uint(0)
			switch key {
			case "version":
				bit = gelfSeenVersion
				if v.kind != flowgo.KindString {
					return Errorf("gelf", valCol, "version must be a string, not %s", v.describe())
				}
				if v.str != "1.1" && v.str != "1.0" {
					return Errorf("gelf", valCol, "unsupported GELF version %s (want \"1.0\" or \"1.1\")", gelfQuote(v.str))
				}
			case "host":
				bit = gelfSeenHost
				if v.kind != flowgo.KindString {
					return Errorf("gelf", valCol, "host must be a string, not %s", v.describe())
				}
				if v.str == "" {
					return Errorf("gelf", valCol, "host is empty")
				}
				r.Hostname = v.str
			case "short_message":
				bit = gelfSeenShort
				if v.kind != flowgo.KindString {
					return Errorf("gelf", valCol, "short_message must be a string, not %s", v.describe())
				}
				r.Msg = v.str
			case "full_message":
				bit = gelfSeenFull
				if v.kind != flowgo.KindString {
					return Errorf("gelf", valCol, "full_message must be a string, not %s", v.describe())
				}
				r.FullMsg = v.str
			case "timestamp":
				bit = gelfSeenTimestamp
				if !v.isNumber() {
					return Errorf("gelf", valCol, "timestamp must be a number, not %s", v.describe())
				}
				t, ok := gelfUnixTime(v.str)
				if !ok {
					return Errorf("gelf", valCol, "timestamp %s out of range (want seconds from 1970 to 9999)", gelfQuote(v.str))
				}
				r.Time = t
			case "level":
				bit = gelfSeenLevel
				if !v.isNumber() {
					return Errorf("gelf", valCol, "level must be a number, not %s", v.describe())
				}
				sev, ok := gelfLevel(v.str)
				if !ok {
					return Errorf("gelf", valCol, "level %s is not an integer from 0 to 7", gelfQuote(v.str))
				}
				r.Severity = sev
			default:
				name := key
				if name != "" && name[0] == '_' {
					name = name[1:]
				}
				if name == "" {
					return Errorf("gelf", keyCol, "empty field name %s", gelfQuote(key))
				}
				if names.has(params, name) {
					return Errorf("gelf", keyCol, "duplicate field %s%s", gelfQuote(name), gelfDupHint(name))
				}
				params = append(params, flowgo.Param{Name: name, Value: v.toValue()})
				names.add(params)
			}
			if bit != 0 {
				if seen&bit != 0 {
					return Errorf("gelf", keyCol, "duplicate key %s", gelfQuote(key))
				}
				seen |= bit
			}

			s.skipSpace()
			c := s.peek()
			if c == ',' {
				s.i++
				continue
			}
			if c == '}' {
				s.i++
				break
			}
			return s.errorf("expected ',' or '}' after the value of %s, found %s", gelfQuote(key), s.what())
		}
	}
	s.skipSpace()
	if s.i < len(s.b) {
		return s.errorf("unexpected %s after the JSON object", s.what())
	}
	if seen&gelfSeenHost == 0 {
		return Errorf("gelf", 0, "missing host")
	}
	if seen&gelfSeenTimestamp == 0 {
		if d.now != nil {
			r.Time = d.now()
		} else {
			r.Time = time.Now().UTC()
		}
	}
	if len(params) > 0 {
		e := [1]flowgo.SDElement{{Params: a.Params(params)}}
		r.SD = a.Elems(e[:])
	}
	return nil
}

// gelfScanner walks a JSON text held in b. Strings are unescaped in place.
type gelfScanner struct {
	b []byte
	i int
}

func (s *gelfScanner) peek() byte {
	if s.i < len(s.b) {
		return s.b[s.i]
	}
	return 0
}

func (s *gelfScanner) skipSpace() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

// errorf reports an error at the current position.
func (s *gelfScanner) errorf(reason string, args ...any) error {
	return Errorf("gelf", s.i+1, reason, args...)
}

// what describes the byte at the current position for error messages.
func (s *gelfScanner) what() string {
	if s.i >= len(s.b) {
		return "end of input"
	}
	c := s.b[s.i]
	if c >= 0x20 && c < 0x7f {
		return "'" + string(c) + "'"
	}
	return fmt.Sprintf("byte 0x%02x", c)
}

// gelfStrClean marks the bytes a JSON string can hold as they are: printable
// ASCII other than '"' and '\'. Everything else needs a closer look.
var gelfStrClean = func() (t [256]bool) {
	for c := 0x20; c < 0x80; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

// str scans the string starting at the opening quote under s.i, unescapes it
// in place and returns it as a view of s.b.
func (s *gelfScanner) str() (string, error) {
	b := s.b
	start := s.i + 1
	r := start
	for r < len(b) && gelfStrClean[b[r]] {
		r++
	}
	if r < len(b) && b[r] == '"' {
		s.i = r + 1
		return flowgo.UnsafeString(b[start:r]), nil
	}
	// Slow path: escapes, non-ASCII, or an error. w trails r; an escape never
	// decodes to more bytes than it takes, so writing in place is safe.
	w := r
	for {
		if r >= len(b) {
			s.i = r
			return "", s.errorf("unterminated string")
		}
		c := b[r]
		switch {
		case gelfStrClean[c]:
			b[w] = c
			r++
			w++
		case c == '"':
			s.i = r + 1
			return flowgo.UnsafeString(b[start:w]), nil
		case c == '\\':
			if r+1 >= len(b) {
				s.i = r
				return "", s.errorf("unterminated string")
			}
			e := b[r+1]
			switch e {
			case '"', '\\', '/':
				b[w] = e
			case 'b':
				b[w] = '\b'
			case 'f':
				b[w] = '\f'
			case 'n':
				b[w] = '\n'
			case 'r':
				b[w] = '\r'
			case 't':
				b[w] = '\t'
			case 'u':
				rn := gelfHex4(b[r+2:])
				if rn < 0 {
					s.i = r
					return "", s.errorf("invalid \\u escape")
				}
				r += 6
				if utf16.IsSurrogate(rn) {
					// A pair takes two escapes; anything else is replaced
					// by U+FFFD, as encoding/json does.
					if r+1 < len(b) && b[r] == '\\' && b[r+1] == 'u' {
						if dec := utf16.DecodeRune(rn, gelfHex4(b[r+2:])); dec != utf8.RuneError {
							rn = dec
							r += 6
						} else {
							rn = utf8.RuneError
						}
					} else {
						rn = utf8.RuneError
					}
				}
				w += utf8.EncodeRune(b[w:], rn)
				continue
			default:
				s.i = r
				return "", s.errorf("invalid escape '\\%c'", e)
			}
			r += 2
			w++
		case c < 0x20:
			s.i = r
			return "", s.errorf("control character 0x%02x in string (must be escaped)", c)
		default: // c >= 0x80
			_, size := utf8.DecodeRune(b[r:])
			if size == 1 {
				s.i = r
				return "", s.errorf("invalid UTF-8")
			}
			copy(b[w:], b[r:r+size])
			r += size
			w += size
		}
	}
}

// gelfHex4 decodes four hex digits at the start of b, or returns -1.
func gelfHex4(b []byte) rune {
	if len(b) < 4 {
		return -1
	}
	var v rune
	for _, c := range b[:4] {
		switch {
		case c >= '0' && c <= '9':
			c -= '0'
		case c >= 'a' && c <= 'f':
			c -= 'a' - 10
		case c >= 'A' && c <= 'F':
			c -= 'A' - 10
		default:
			return -1
		}
		v = v<<4 | rune(c)
	}
	return v
}

// gelfValue is a scanned JSON scalar. For numbers str is the literal and
// kind tells whether it is an integer literal (KindU64, KindI64 when
// negative) or not (KindF64); the value is computed by toValue.
type gelfValue struct {
	str  string
	kind flowgo.Kind
}

func (v gelfValue) isNumber() bool {
	return v.kind == flowgo.KindF64 || v.kind == flowgo.KindI64 || v.kind == flowgo.KindU64
}

func (v gelfValue) describe() string {
	switch v.kind {
	case flowgo.KindString:
		return "a string"
	case flowgo.KindBool:
		return "a boolean"
	case flowgo.KindNull:
		return "null"
	}
	return "a number"
}

// toValue converts v to a record value. Numbers were checked by value to be
// in float64 range, so the conversions cannot fail.
func (v gelfValue) toValue() flowgo.Value {
	switch v.kind {
	case flowgo.KindString:
		return flowgo.StringValue(v.str)
	case flowgo.KindBool:
		return flowgo.BoolValue(v.str == "true")
	case flowgo.KindNull:
		return flowgo.NullValue()
	case flowgo.KindU64:
		if u, ok := gelfDigits(v.str); ok {
			return flowgo.U64Value(u)
		}
	case flowgo.KindI64:
		if u, ok := gelfDigits(v.str[1:]); ok && u <= 1<<63 {
			return flowgo.I64Value(int64(-u)) // -(1<<63) wraps to MinInt64, as wanted
		}
	}
	f, _ := strconv.ParseFloat(v.str, 64)
	return flowgo.F64Value(f)
}

// gelfDigits parses a run of decimal digits into a uint64, reporting
// overflow.
func gelfDigits(s string) (uint64, bool) {
	var u uint64
	for i := 0; i < len(s); i++ {
		d := uint64(s[i] - '0')
		if u > (math.MaxUint64-d)/10 {
			return 0, false
		}
		u = u*10 + d
	}
	return u, true
}

// value scans one JSON value at s.i. Arrays and objects are rejected.
func (s *gelfScanner) value() (gelfValue, error) {
	switch c := s.peek(); {
	case c == '"':
		str, err := s.str()
		return gelfValue{str: str, kind: flowgo.KindString}, err
	case c == '-' || (c >= '0' && c <= '9'):
		return s.number()
	case c == 't':
		return s.literal("true", flowgo.KindBool)
	case c == 'f':
		return s.literal("false", flowgo.KindBool)
	case c == 'n':
		return s.literal("null", flowgo.KindNull)
	case c == '[':
		return gelfValue{}, s.errorf("arrays are not supported in GELF (only strings, numbers, booleans and null)")
	case c == '{':
		return gelfValue{}, s.errorf("nested objects are not supported in GELF (only strings, numbers, booleans and null)")
	}
	return gelfValue{}, s.errorf("expected a value, found %s", s.what())
}

func (s *gelfScanner) literal(lit string, kind flowgo.Kind) (gelfValue, error) {
	if len(s.b)-s.i < len(lit) || string(s.b[s.i:s.i+len(lit)]) != lit {
		return gelfValue{}, s.errorf("invalid literal (want %s)", lit)
	}
	v := gelfValue{str: lit, kind: kind}
	s.i += len(lit)
	return v, nil
}

// number scans a JSON number and checks it is within float64 range, which
// is what encoding/json requires too.
func (s *gelfScanner) number() (gelfValue, error) {
	b := s.b
	start := s.i
	i := s.i
	kind := flowgo.KindU64
	if b[i] == '-' {
		kind = flowgo.KindI64
		i++
	}
	switch {
	case i < len(b) && b[i] == '0':
		i++
		if i < len(b) && b[i] >= '0' && b[i] <= '9' {
			s.i = i
			return gelfValue{}, s.errorf("invalid number: leading zero")
		}
	case i < len(b) && b[i] >= '1' && b[i] <= '9':
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
	default:
		s.i = i
		return gelfValue{}, s.errorf("invalid number: expected a digit, found %s", s.what())
	}
	if i < len(b) && b[i] == '.' {
		kind = flowgo.KindF64
		i++
		d := i
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
		if i == d {
			s.i = i
			return gelfValue{}, s.errorf("invalid number: expected a digit after '.', found %s", s.what())
		}
	}
	hasExp := false
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		kind, hasExp = flowgo.KindF64, true
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		d := i
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
		if i == d {
			s.i = i
			return gelfValue{}, s.errorf("invalid number: expected a digit in the exponent, found %s", s.what())
		}
	}
	v := gelfValue{str: flowgo.UnsafeString(b[start:i]), kind: kind}
	if hasExp || i-start > 300 {
		// Only an exponent or hundreds of digits can take a number past
		// float64's range (about 1.8e308), which encoding/json rejects too.
		if _, err := strconv.ParseFloat(v.str, 64); err != nil {
			s.i = start
			return gelfValue{}, s.errorf("number %s out of range", gelfQuote(v.str))
		}
	}
	s.i = i
	return v, nil
}

// gelfLevel parses a GELF level: an integer literal 0-7, optionally with a
// fraction of zeros ("6.0"), which some JSON writers emit for whole floats.
func gelfLevel(lit string) (uint8, bool) {
	if len(lit) < 1 || lit[0] < '0' || lit[0] > '7' {
		return 0, false
	}
	if len(lit) == 1 {
		return lit[0] - '0', true
	}
	if lit[1] != '.' {
		return 0, false
	}
	for i := 2; i < len(lit); i++ {
		if lit[i] != '0' {
			return 0, false
		}
	}
	return lit[0] - '0', true
}

// gelfUnixTime converts decimal seconds since the Unix epoch to a UTC time.
// A plain decimal ("1385053862.3072") is converted exactly, digits past
// nanoseconds truncated; a literal with an exponent goes through float64.
// Values below 0 or past year 9999 are refused. LTSV shares it.
func gelfUnixTime(lit string) (time.Time, bool) {
	for i := 0; i < len(lit); i++ {
		if lit[i] == 'e' || lit[i] == 'E' {
			return gelfUnixFloat(lit)
		}
	}
	neg := lit != "" && lit[0] == '-'
	if neg {
		lit = lit[1:]
	}
	var sec, nsec int64
	nonzero := false
	i := 0
	for ; i < len(lit) && lit[i] >= '0' && lit[i] <= '9'; i++ {
		sec = sec*10 + int64(lit[i]-'0')
		if sec > gelfMaxUnix {
			return time.Time{}, false
		}
	}
	if i == 0 {
		return time.Time{}, false
	}
	if i < len(lit) && lit[i] == '.' {
		i++
		scale := int64(1e8)
		d := i
		for ; i < len(lit) && lit[i] >= '0' && lit[i] <= '9'; i++ {
			nsec += int64(lit[i]-'0') * scale
			scale /= 10
			nonzero = nonzero || lit[i] != '0'
		}
		if i == d {
			return time.Time{}, false
		}
	}
	// Any digit that is not zero makes a negative literal negative, even
	// one below the nanosecond.
	if i < len(lit) || (neg && (sec != 0 || nonzero)) {
		return time.Time{}, false
	}
	return time.Unix(sec, nsec).UTC(), true
}

// gelfUnixFloat converts seconds written with an exponent, through float64.
func gelfUnixFloat(lit string) (time.Time, bool) {
	f, err := strconv.ParseFloat(lit, 64)
	if err != nil || f != f || f < 0 || f >= gelfMaxUnix+1 {
		return time.Time{}, false
	}
	fs := math.Floor(f)
	sec, nsec := int64(fs), int64(math.Round((f-fs)*1e9))
	if nsec >= 1e9 {
		sec, nsec = sec+1, nsec-1e9
	}
	if sec > gelfMaxUnix {
		return time.Time{}, false
	}
	return time.Unix(sec, nsec).UTC(), true
}

// gelfNames finds duplicate parameter names without making decoding
// quadratic in the number of fields: a linear search while there are few,
// then a small open-addressing table on the stack, and a map (the only
// allocation) past gelfStackParams.
type gelfNames struct {
	table [2 * gelfStackParams]uint8 // index+1 into params; 0 is empty
	free  uint32                     // the empty slot where has stopped: add fills it
	m     map[string]struct{}
}

// gelfNamesLinear is how many names are searched linearly: most records
// have fewer, and for them the table is never touched.
const gelfNamesLinear = 8

// has reports whether name is among params.
func (n *gelfNames) has(params []flowgo.Param, name string) bool {
	switch {
	case len(params) <= gelfNamesLinear:
		for i := range params {
			if params[i].Name == name {
				return true
			}
		}
		return false
	case len(params) <= gelfStackParams:
		mask := uint32(len(n.table) - 1)
		h := gelfHash(name) & mask
		for ; n.table[h] != 0; h = (h + 1) & mask {
			if params[n.table[h]-1].Name == name {
				return true
			}
		}
		n.free = h
		return false
	}
	_, ok := n.m[name]
	return ok
}

// add records the last of params, which has just reported absent, moving
// to the next structure when the current one is full.
func (n *gelfNames) add(params []flowgo.Param) {
	switch l := len(params); {
	case l <= gelfNamesLinear:
	case l <= gelfStackParams && l > gelfNamesLinear+1:
		n.table[n.free] = uint8(l)
	case l <= gelfStackParams:
		mask := uint32(len(n.table) - 1)
		for i := range l {
			h := gelfHash(params[i].Name) & mask
			for n.table[h] != 0 {
				h = (h + 1) & mask
			}
			n.table[h] = uint8(i + 1)
		}
	case l == gelfStackParams+1:
		n.m = make(map[string]struct{}, 2*l)
		for i := range params {
			n.m[params[i].Name] = struct{}{}
		}
	default:
		n.m[params[l-1].Name] = struct{}{}
	}
}

// gelfHash is FNV-1a. Collisions cost only probes, bounded by the table's
// size, so a weak hash is enough.
func gelfHash(s string) uint32 {
	h := uint32(2166136261)
	for i := 0; i < len(s); i++ {
		h = (h ^ uint32(s[i])) * 16777619
	}
	return h
}

// gelfDupHint explains a duplicate field: "x" and "_x" count as the same.
func gelfDupHint(name string) string {
	return " (the keys " + gelfQuote(name) + " and " + gelfQuote("_"+name) + " both name it)"
}

// gelfQuote quotes s for an error message, shortened if long.
func gelfQuote(s string) string {
	const most = 64
	if len(s) > most {
		return strconv.Quote(s[:most]) + "..."
	}
	return strconv.Quote(s)
}
