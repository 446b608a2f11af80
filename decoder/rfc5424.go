package decoder

import (
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/flowgo/flowgo"
	"github.com/flowgo/flowgo/config"
)

func init() {
	// Flowgger's RFC 5424 decoder has no configuration keys, and neither has this one.
	Register("rfc5424", func(*config.Section) (Decoder, error) { return &RFC5424{}, nil })
}

// RFC5424 decodes RFC 5424 syslog messages (input.format = "rfc5424").
//
// It follows the RFC's grammar strictly and rejects what does not fit,
// with the reason and the column. Where it departs from Flowgger:
//   - a NILVALUE ("-") field is absent (""), and a "-" TIMESTAMP takes the
//     receive time;
//   - an SD element without parameters ("[id]") is valid, and so is a
//     message that is only structured data;
//   - a UTF-8 BOM that starts MSG is removed from Msg (FullMsg keeps it);
//   - the priority must be 0-191 and the version 1;
//   - a BOM at the start of the line is an error, not skipped.
//
// FullMsg is the whole frame with trailing white space removed, and Msg
// loses its trailing white space with it; leading white space in MSG is
// content and is kept. SD parameter values are unescaped (\" \\ \]); any
// other backslash is kept, as RFC 5424 §6.3.3 says. MSG is any octets
// unless it starts with a BOM, in which case it must be valid UTF-8.
//
// The zero RFC5424 is ready to use. Decoding allocates nothing but arena
// memory, unless a message has more than 16 SD parameters or 8 elements.
type RFC5424 struct {
	// now returns the receive time used for a NILVALUE timestamp; nil means
	// time.Now. Tests set it to get reproducible records.
	now func() time.Time
}

const rfc5424Format = "rfc5424"

// Field length limits of RFC 5424 §6.
const (
	rfc5424MaxHostname = 255
	rfc5424MaxAppName  = 48
	rfc5424MaxProcID   = 128
	rfc5424MaxMsgID    = 32
	rfc5424MaxSDName   = 32
)

// The stack buffers hold the SD parameters and elements of nearly every
// real message; a message with more spills them to the heap.
const (
	rfc5424StackParams = 16
	rfc5424StackElems  = 8
	// rfc5424MapIDs is the element count past which duplicate SD-IDs are
	// found with a map: a linear scan would be quadratic on a hostile frame.
	rfc5424MapIDs = 32
)

const rfc5424BOM = "\xef\xbb\xbf"

// rfc5424Print marks PRINTUSASCII, the bytes of header fields.
var rfc5424Print = func() (t [256]bool) {
	for c := 33; c <= 126; c++ {
		t[c] = true
	}
	return t
}()

// rfc5424SDName marks the bytes allowed in an SD-NAME (SD-ID or
// PARAM-NAME): PRINTUSASCII except '=', ']' and '"'.
var rfc5424SDName = func() (t [256]bool) {
	for c := 33; c <= 126; c++ {
		t[c] = c != '=' && c != ']' && c != '"'
	}
	return t
}()

// rfc5424Plain marks the bytes a PARAM-VALUE can hold as they are: ASCII
// except the three that must be escaped. Other bytes need a closer look.
var rfc5424Plain = func() (t [256]bool) {
	for c := 0; c < utf8.RuneSelf; c++ {
		t[c] = c != '"' && c != '\\' && c != ']'
	}
	return t
}()

// Decode parses one RFC 5424 message. See RFC5424 for the rules.
func (d *RFC5424) Decode(frame []byte, r *flowgo.Record, a *flowgo.Arena) error {
	n := len(frame)
	for n > 0 && rfc5424Blank(frame[n-1]) {
		n--
	}
	if n == 0 {
		return Errorf(rfc5424Format, 0, "empty frame")
	}
	// Everything the record keeps is a view of this one copy (or, for an
	// escaped SD value, of its own arena bytes). The copy is made before
	// parsing so that positions found while parsing are valid in it.
	b := a.Copy(frame[:n])
	n = len(b) // the same, but now the compiler can drop bounds checks

	// PRI = "<" PRIVAL ">", PRIVAL 0-191 without leading zeros.
	if b[0] != '<' {
		return Errorf(rfc5424Format, 1, "want '<' to open the priority")
	}
	i := 1
	pri := 0
	for i < n && i < 4 && isDigit5424(b[i]) {
		pri = pri*10 + int(b[i]-'0')
		i++
	}
	switch {
	case i == 1:
		return Errorf(rfc5424Format, 2, "want a priority value (0-191)")
	case i > 2 && b[1] == '0':
		return Errorf(rfc5424Format, 2, "priority value with a leading zero")
	case pri > 191:
		return Errorf(rfc5424Format, 2, "priority value %d out of range 0-191", pri)
	case i >= n || b[i] != '>':
		return Errorf(rfc5424Format, i+1, "want '>' to close the priority")
	}
	i++

	// VERSION: only 1 exists, and a later version may change the grammar.
	if i >= n || b[i] != '1' || (i+1 < n && isDigit5424(b[i+1])) {
		j := i
		for j < n && isDigit5424(b[j]) {
			j++
		}
		if j > i && b[i] != '0' {
			return Errorf(rfc5424Format, i+1, "unsupported version %s: want 1", b[i:j])
		}
		return Errorf(rfc5424Format, i+1, "want version 1 after the priority")
	}
	i++
	if e := rfc5424Space(b, i, "version"); e != nil {
		return e
	}
	i++

	// TIMESTAMP.
	if b[i] == '-' {
		i++
		if d.now != nil {
			r.Time = d.now()
		} else {
			r.Time = time.Now()
		}
		r.Time = r.Time.UTC()
	} else {
		sec, nsec, next := rfc5424FastTime(b, i)
		if next == 0 {
			// Not the common form: the full parser decides, and explains.
			var e *Error
			if sec, nsec, next, e = rfc5424Time(b, i); e != nil {
				return e
			}
		}
		r.Time = time.Unix(sec, nsec).UTC()
		i = next
	}
	if e := rfc5424Space(b, i, "timestamp"); e != nil {
		return e
	}
	i++

	// HOSTNAME, APP-NAME, PROCID, MSGID.
	var e *Error
	if r.Hostname, i, e = rfc5424Field(b, i, rfc5424MaxHostname, "hostname"); e != nil {
		return e
	}
	if r.AppName, i, e = rfc5424Field(b, i, rfc5424MaxAppName, "app-name"); e != nil {
		return e
	}
	if r.ProcID, i, e = rfc5424Field(b, i, rfc5424MaxProcID, "procid"); e != nil {
		return e
	}
	if r.MsgID, i, e = rfc5424Field(b, i, rfc5424MaxMsgID, "msgid"); e != nil {
		return e
	}

	// STRUCTURED-DATA.
	switch b[i] {
	case '-':
		i++
	case '[':
		if r.SD, i, e = rfc5424SD(b, i, a); e != nil {
			return e
		}
	default:
		return Errorf(rfc5424Format, i+1, "want '-' or '[' to start the structured data")
	}

	// [SP MSG]. The frame's trailing white space is gone, so MSG has none.
	if i < n {
		if b[i] != ' ' {
			if r.SD != nil {
				return Errorf(rfc5424Format, i+1, "want '[' or ' ' after an SD element")
			}
			return Errorf(rfc5424Format, i+1, "want ' ' after the structured data")
		}
		m := b[i+1:]
		if len(m) >= len(rfc5424BOM) && string(m[:len(rfc5424BOM)]) == rfc5424BOM {
			// RFC 5424 §6.4: after a BOM, MSG is UTF-8, and a message that is
			// not valid UTF-8 must be discarded. Without a BOM it is any octets.
			m = m[len(rfc5424BOM):]
			if !utf8.Valid(m) {
				return Errorf(rfc5424Format, n-len(m)+rfc5424BadUTF8(m)+1, "invalid UTF-8 in a message that starts with a BOM")
			}
		}
		r.Msg = flowgo.UnsafeString(m)
	}
	r.Facility = uint8(pri >> 3)
	r.Severity = uint8(pri & 7)
	r.FullMsg = flowgo.UnsafeString(b)
	return nil
}

// rfc5424SD parses STRUCTURED-DATA = 1*SD-ELEMENT at b[i:], which starts
// with '[', into arena memory, and returns the index after it. It is apart
// from Decode so that lines without structured data do not pay for
// clearing its stack buffers.
func rfc5424SD(b []byte, i int, a *flowgo.Arena) ([]flowgo.SDElement, int, *Error) {
	var (
		pbuf [rfc5424StackParams]flowgo.Param
		ebuf [rfc5424StackElems]flowgo.SDElement
		fbuf [rfc5424StackElems]int32 // index in params of each element's first param
		ids  map[string]struct{}
		e    *Error
	)
	params, elems, from := pbuf[:0], ebuf[:0], fbuf[:0]
	n := len(b)
	for i < n && b[i] == '[' {
		i++
		s := i
		for i < n && rfc5424SDName[b[i]] {
			i++
		}
		if e := rfc5424Name(b, s, i, "an SD-ID"); e != nil {
			return nil, 0, e
		}
		id := flowgo.UnsafeString(b[s:i])
		// RFC 5424 §6.3.2: an SD-ID must not occur twice in a message.
		if len(elems) < rfc5424MapIDs {
			for k := range elems {
				if elems[k].ID == id {
					return nil, 0, Errorf(rfc5424Format, s+1, "duplicate SD-ID %q", id)
				}
			}
		} else {
			if ids == nil {
				ids = make(map[string]struct{}, 2*len(elems))
				for k := range elems {
					ids[elems[k].ID] = struct{}{}
				}
			}
			if _, dup := ids[id]; dup {
				return nil, 0, Errorf(rfc5424Format, s+1, "duplicate SD-ID %q", id)
			}
			ids[id] = struct{}{}
		}
		// Appending a zero element and filling it in place is much faster
		// than appending a literal: the compiler builds the literal in a
		// temporary with 8-byte stores, then copies it with 16-byte loads,
		// which stall on store forwarding.
		elems = append(elems, flowgo.SDElement{})
		elems[len(elems)-1].ID = id
		from = append(from, int32(len(params)))
		for {
			if i >= n {
				return nil, 0, Errorf(rfc5424Format, n+1, "line ends inside an SD element")
			}
			if b[i] == ']' {
				i++
				break
			}
			if b[i] != ' ' {
				return nil, 0, Errorf(rfc5424Format, i+1, "want ' ' or ']' after an SD name, not %s", rfc5424Quote(b[i]))
			}
			i++
			var name, value string
			if name, value, i, e = rfc5424Param(b, i, a); e != nil {
				return nil, 0, e
			}
			params = append(params, flowgo.Param{}) // a string Value; see elems
			p := &params[len(params)-1]
			p.Name, p.Value.Str = name, value
		}
	}
	ps := a.Params(params)
	es := a.Elems(elems)
	for k := range es {
		end := len(ps)
		if k+1 < len(from) {
			end = int(from[k+1])
		}
		if f := int(from[k]); f < end {
			es[k].Params = ps[f:end:end]
		}
	}
	return es, i, nil
}

// rfc5424Param parses SD-PARAM = PARAM-NAME "=" %d34 PARAM-VALUE %d34 at
// b[i:], and returns its name, its unescaped value and the index after the
// closing quote.
func rfc5424Param(b []byte, i int, a *flowgo.Arena) (name, value string, next int, err *Error) {
	n := len(b)
	s := i
	for i < n && rfc5424SDName[b[i]] {
		i++
	}
	if e := rfc5424Name(b, s, i, "a param name"); e != nil {
		return "", "", 0, e
	}
	name = flowgo.UnsafeString(b[s:i])
	if i >= n || b[i] != '=' {
		return "", "", 0, rfc5424Want(b, i, "'=' after the param name")
	}
	i++
	if i >= n || b[i] != '"' {
		return "", "", 0, rfc5424Want(b, i, `'"' to open the param value`)
	}
	i++
	s = i
	escaped := 0
	for {
		for i < n && rfc5424Plain[b[i]] {
			i++
		}
		if i >= n {
			return "", "", 0, Errorf(rfc5424Format, n+1, "line ends inside a param value")
		}
		switch c := b[i]; {
		case c == '"':
			v := b[s:i]
			if escaped > 0 {
				v = rfc5424Unescape(v, a.Bytes(len(v)-escaped))
			}
			return name, flowgo.UnsafeString(v), i + 1, nil
		case c == '\\':
			// RFC 5424 §6.3.3: a backslash before anything but '"', '\' or
			// ']' is an ordinary character, left as it is.
			if i+1 < n && rfc5424Escapable(b[i+1]) {
				escaped++
				i += 2
			} else {
				i++
			}
		case c == ']':
			return "", "", 0, Errorf(rfc5424Format, i+1, `unescaped ']' in a param value: want \]`)
		default:
			// PARAM-VALUE is UTF-8 (RFC 3629).
			if r, size := utf8.DecodeRune(b[i:]); r == utf8.RuneError && size <= 1 {
				return "", "", 0, Errorf(rfc5424Format, i+1, "invalid UTF-8 in a param value")
			} else {
				i += size
			}
		}
	}
}

// rfc5424Unescape copies v into dst without the backslash of each \", \\
// and \] pair. dst has exactly the room the result needs.
func rfc5424Unescape(v, dst []byte) []byte {
	j := 0
	for i := 0; i < len(v); i++ {
		if v[i] == '\\' && i+1 < len(v) && rfc5424Escapable(v[i+1]) {
			i++
		}
		dst[j] = v[i]
		j++
	}
	return dst[:j]
}

func rfc5424Escapable(c byte) bool { return c == '"' || c == '\\' || c == ']' }

// rfc5424Name checks the SD-NAME b[s:i] (an SD-ID or a param name, named
// with its article in what) that a scan of SD-NAME bytes stopped at i.
func rfc5424Name(b []byte, s, i int, what string) *Error {
	switch {
	case i-s > rfc5424MaxSDName:
		return Errorf(rfc5424Format, s+rfc5424MaxSDName+1, "%s longer than %d characters", what[strings.IndexByte(what, ' ')+1:], rfc5424MaxSDName)
	case i == s:
		return rfc5424Want(b, i, what+` (printable US-ASCII except '=', ']', '"')`)
	}
	return nil
}

// rfc5424Want reports that b[i] (or the end of the line) is not what the
// grammar wants there.
func rfc5424Want(b []byte, i int, want string) *Error {
	if i >= len(b) {
		return Errorf(rfc5424Format, i+1, "line ends: want %s", want)
	}
	return Errorf(rfc5424Format, i+1, "want %s, not %s", want, rfc5424Quote(b[i]))
}

// rfc5424Quote shows the byte c in a message: 'c' if it is printable
// ASCII, its hex value otherwise (it may be half of a UTF-8 sequence).
func rfc5424Quote(c byte) string {
	if c >= ' ' && c <= '~' {
		return "'" + string(rune(c)) + "'"
	}
	return fmt.Sprintf("byte 0x%02X", c)
}

// rfc5424Space checks the SP that must follow the field called after.
func rfc5424Space(b []byte, i int, after string) *Error {
	if i < len(b) && b[i] == ' ' {
		if i+1 == len(b) {
			// Cannot happen with a trimmed frame, but keeps the indexing
			// after the space safe if the caller's trimming ever changes.
			return Errorf(rfc5424Format, i+2, "line ends after the %s", after)
		}
		return nil
	}
	if i >= len(b) {
		return Errorf(rfc5424Format, i+1, "line ends after the %s", after)
	}
	return Errorf(rfc5424Format, i+1, "want ' ' after the %s, not %s", after, rfc5424Quote(b[i]))
}

// rfc5424Field parses a header field: NILVALUE or 1 to limit PRINTUSASCII
// characters, then SP. It returns the value ("" for NILVALUE) and the index
// after the SP.
func rfc5424Field(b []byte, i, limit int, what string) (string, int, *Error) {
	j := i
	for j < len(b) && rfc5424Print[b[j]] {
		j++
	}
	if j < len(b) && b[j] != ' ' {
		return "", 0, Errorf(rfc5424Format, j+1, "bad %s: want printable US-ASCII or '-', not %s", what, rfc5424Quote(b[j]))
	}
	switch {
	case j == i:
		return "", 0, Errorf(rfc5424Format, j+1, "empty %s: want 1-%d characters or '-'", what, limit)
	case j-i > limit:
		return "", 0, Errorf(rfc5424Format, i+limit+1, "%s longer than %d characters", what, limit)
	}
	if e := rfc5424Space(b, j, what); e != nil {
		return "", 0, e
	}
	if j-i == 1 && b[i] == '-' {
		return "", j + 1, nil
	}
	return flowgo.UnsafeString(b[i:j]), j + 1, nil
}

// rfc5424Time parses TIMESTAMP = FULL-DATE "T" FULL-TIME at b[i:]: RFC 3339
// with RFC 5424 §6.2.3's ban on leap seconds. Two of that section's limits
// are relaxed, as RFC 3339 and Flowgger 0.3 allow: up to 9 fraction digits
// (loggers stamping nanoseconds, such as Go's RFC3339Nano, are common), and
// lower-case t and z. It returns Unix seconds and nanoseconds and
// the index after the timestamp. Computing the instant directly is several
// times faster than time.Parse, which the hot path cannot afford.
func rfc5424Time(b []byte, i int) (sec, nsec int64, next int, err *Error) {
	year, ok := rfc5424Digits(b, i, 4)
	if !ok {
		return 0, 0, 0, rfc5424Want(b, rfc5424FirstNonDigit(b, i), "a timestamp (YYYY-MM-DDThh:mm:ss[.frac]Z|±hh:mm) or '-'")
	}
	if e := rfc5424Expect(b, i+4, '-', "after the year"); e != nil {
		return 0, 0, 0, e
	}
	month, ok := rfc5424Digits(b, i+5, 2)
	if !ok || month < 1 || month > 12 {
		return 0, 0, 0, Errorf(rfc5424Format, i+6, "bad month: want 01-12")
	}
	if e := rfc5424Expect(b, i+7, '-', "after the month"); e != nil {
		return 0, 0, 0, e
	}
	day, ok := rfc5424Digits(b, i+8, 2)
	if !ok || day < 1 || day > daysIn(year, month) {
		return 0, 0, 0, Errorf(rfc5424Format, i+9, "bad day of month: want 01-%02d", daysIn(year, month))
	}
	if i+10 < len(b) && b[i+10] == 't' {
		// accepted as 'T'
	} else if e := rfc5424Expect(b, i+10, 'T', "between date and time"); e != nil {
		return 0, 0, 0, e
	}
	hour, ok := rfc5424Digits(b, i+11, 2)
	if !ok || hour > 23 {
		return 0, 0, 0, Errorf(rfc5424Format, i+12, "bad hour: want 00-23")
	}
	if e := rfc5424Expect(b, i+13, ':', "after the hour"); e != nil {
		return 0, 0, 0, e
	}
	minute, ok := rfc5424Digits(b, i+14, 2)
	if !ok || minute > 59 {
		return 0, 0, 0, Errorf(rfc5424Format, i+15, "bad minute: want 00-59")
	}
	if e := rfc5424Expect(b, i+16, ':', "after the minute"); e != nil {
		return 0, 0, 0, e
	}
	second, ok := rfc5424Digits(b, i+17, 2)
	if !ok || second > 59 {
		// RFC 5424 §6.2.3: leap seconds must not be used, so no 60.
		return 0, 0, 0, Errorf(rfc5424Format, i+18, "bad second: want 00-59")
	}
	j := i + 19
	if j < len(b) && b[j] == '.' {
		j++
		s := j
		for j < len(b) && isDigit5424(b[j]) && j-s < 10 {
			nsec = nsec*10 + int64(b[j]-'0')
			j++
		}
		switch {
		case j == s:
			return 0, 0, 0, rfc5424Want(b, j, "fraction digits after '.'")
		case j-s > 9:
			return 0, 0, 0, Errorf(rfc5424Format, s+10, "more than 9 fraction digits in the timestamp")
		}
		for k := j - s; k < 9; k++ {
			nsec *= 10
		}
	}
	offset := 0
	switch {
	case j < len(b) && (b[j] == 'Z' || b[j] == 'z'):
		j++
	case j < len(b) && (b[j] == '+' || b[j] == '-'):
		oh, ok := rfc5424Digits(b, j+1, 2)
		if !ok || oh > 23 {
			return 0, 0, 0, Errorf(rfc5424Format, j+2, "bad offset hour: want 00-23")
		}
		if e := rfc5424Expect(b, j+3, ':', "in the offset"); e != nil {
			return 0, 0, 0, e
		}
		om, ok := rfc5424Digits(b, j+4, 2)
		if !ok || om > 59 {
			return 0, 0, 0, Errorf(rfc5424Format, j+5, "bad offset minute: want 00-59")
		}
		offset = oh*3600 + om*60
		if b[j] == '-' {
			offset = -offset
		}
		j += 6
	default:
		return 0, 0, 0, rfc5424Want(b, j, "'Z' or a ±hh:mm offset after the time")
	}
	days := rfc5424DaysFromCivil(year, month, day)
	sec = days*86400 + int64(hour*3600+minute*60+second-offset)
	return sec, nsec, j, nil
}

// rfc5424FastTime parses the common forms of TIMESTAMP at b[i:]
// (YYYY-MM-DDThh:mm:ss, then .fff, .ffffff or no fraction, then Z or
// ±hh:mm) with few branches. It returns next == 0 for anything else, valid
// or not, and rfc5424Time, which is slower but complete and explains its
// errors, takes over.
func rfc5424FastTime(b []byte, i int) (sec, nsec int64, next int) {
	if i+20 > len(b) {
		return 0, 0, 0
	}
	t := b[i : i+20 : i+20]
	if t[4] != '-' || t[7] != '-' || t[10] != 'T' || t[13] != ':' || t[16] != ':' {
		return 0, 0, 0
	}
	d0, d1, d2, d3 := t[0]-'0', t[1]-'0', t[2]-'0', t[3]-'0'
	mo0, mo1, dd0, dd1 := t[5]-'0', t[6]-'0', t[8]-'0', t[9]-'0'
	h0, h1, mi0, mi1, s0, s1 := t[11]-'0', t[12]-'0', t[14]-'0', t[15]-'0', t[17]-'0', t[18]-'0'
	if d0 > 9 || d1 > 9 || d2 > 9 || d3 > 9 || mo0 > 9 || mo1 > 9 || dd0 > 9 || dd1 > 9 ||
		h0 > 9 || h1 > 9 || mi0 > 9 || mi1 > 9 || s0 > 9 || s1 > 9 {
		return 0, 0, 0
	}
	year := int(d0)*1000 + int(d1)*100 + int(d2)*10 + int(d3)
	month, day := int(mo0)*10+int(mo1), int(dd0)*10+int(dd1)
	hour, minute, second := int(h0)*10+int(h1), int(mi0)*10+int(mi1), int(s0)*10+int(s1)
	if month < 1 || month > 12 || day < 1 || day > daysIn(year, month) || hour > 23 || minute > 59 || second > 59 {
		return 0, 0, 0
	}
	j := i + 19
	if b[j] == '.' {
		switch {
		case j+4 < len(b) && !isDigit5424(b[j+4]):
			f := b[j+1 : j+4 : j+4]
			f0, f1, f2 := f[0]-'0', f[1]-'0', f[2]-'0'
			if f0 > 9 || f1 > 9 || f2 > 9 {
				return 0, 0, 0
			}
			nsec = (int64(f0)*100 + int64(f1)*10 + int64(f2)) * 1e6
			j += 4
		case j+7 < len(b) && !isDigit5424(b[j+7]):
			v, ok := rfc5424Digits(b, j+1, 6)
			if !ok {
				return 0, 0, 0
			}
			nsec = int64(v) * 1e3
			j += 7
		default:
			return 0, 0, 0
		}
	}
	if j >= len(b) {
		return 0, 0, 0
	}
	offset := 0
	switch b[j] {
	case 'Z':
		j++
	case '+', '-':
		if j+6 > len(b) || b[j+3] != ':' {
			return 0, 0, 0
		}
		o := b[j+1 : j+6 : j+6]
		oh0, oh1, om0, om1 := o[0]-'0', o[1]-'0', o[3]-'0', o[4]-'0'
		if oh0 > 2 || oh1 > 9 || om0 > 5 || om1 > 9 || int(oh0)*10+int(oh1) > 23 {
			return 0, 0, 0
		}
		offset = int(oh0)*36000 + int(oh1)*3600 + int(om0)*600 + int(om1)*60
		if b[j] == '-' {
			offset = -offset
		}
		j += 6
	default:
		return 0, 0, 0
	}
	sec = rfc5424DaysFromCivil(year, month, day)*86400 + int64(hour*3600+minute*60+second-offset)
	return sec, nsec, j
}

// rfc5424DaysFromCivil returns the number of days from 1970-01-01 to the
// given proleptic Gregorian date (Howard Hinnant's days_from_civil).
//
// Years are 0-9999 here, so shifting them by one 400-year era keeps every
// operand positive and the divisions unsigned, which compile to multiplies.
func rfc5424DaysFromCivil(year, month, day int) int64 {
	y, m, d := uint(year)+400, uint(month), uint(day)
	if m <= 2 {
		y--
		m += 12
	}
	era := y / 400
	yoe := y - era*400
	doy := (153*(m-3)+2)/5 + d - 1
	doe := yoe*365 + yoe/4 - yoe/100 + doy
	return int64(era*146097+doe) - 719468 - 146097
}

// daysIn returns the number of days of month (1-12) in year, Gregorian.
func daysIn(year, month int) int {
	switch month {
	case 2:
		if year%4 == 0 && (year%100 != 0 || year%400 == 0) {
			return 29
		}
		return 28
	case 4, 6, 9, 11:
		return 30
	}
	return 31
}

// rfc5424Digits reads n decimal digits at b[i:].
func rfc5424Digits(b []byte, i, n int) (int, bool) {
	if i+n > len(b) {
		return 0, false
	}
	v := 0
	for _, c := range b[i : i+n] {
		c -= '0'
		if c > 9 {
			return 0, false
		}
		v = v*10 + int(c)
	}
	return v, true
}

func rfc5424FirstNonDigit(b []byte, i int) int {
	for i < len(b) && isDigit5424(b[i]) {
		i++
	}
	return i
}

func rfc5424Expect(b []byte, i int, c byte, where string) *Error {
	if i < len(b) && b[i] == c {
		return nil
	}
	return rfc5424Want(b, i, "'"+string(c)+"' "+where)
}

// rfc5424BadUTF8 returns the index of the first byte of m that is not
// part of valid UTF-8.
func rfc5424BadUTF8(m []byte) int {
	for i := 0; i < len(m); {
		r, size := utf8.DecodeRune(m[i:])
		if r == utf8.RuneError && size <= 1 {
			return i
		}
		i += size
	}
	return len(m)
}

func isDigit5424(c byte) bool { return c-'0' <= 9 }

// rfc5424Blank reports the white space trimmed from the end of a frame:
// what transports and senders leave after a message (LF, CRLF, padding).
func rfc5424Blank(c byte) bool {
	return c == ' ' || c == '\n' || c == '\r' || c == '\t' || c == '\v' || c == '\f'
}
