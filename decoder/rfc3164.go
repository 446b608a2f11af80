package decoder

import (
	"bytes"
	"errors"
	"fmt"
	"net/netip"
	"sync"
	"time"

	"github.com/flowgo/flowgo"
	"github.com/flowgo/flowgo/config"
)

// RFC3164 decodes BSD syslog lines: RFC 3164 and the variants found in the
// wild. A line is
//
//	[<PRI>] [COUNTER: ] [HOSTNAME: ] TIMESTAMP [ZONE] ": " [HOSTNAME] [TAG] MSG
//	[<PRI>] [COUNTER: ] TIMESTAMP [ZONE] [HOSTNAME] [TAG] MSG
//	<PRI> [TAG] MSG
//
// The first form is that of network devices (Cisco IOS, and Flowgger's
// "HOSTNAME: timestamp: msg" variant), the second the classic one, the
// third a line without a header (below).
//
// PRI is optional; without it Facility and Severity stay flowgo.Unset.
// COUNTER is the Cisco message counter (up to two, or a lone ':'); the
// first one goes to the RFC 5424 "meta" SD element as sequenceId.
//
// TIMESTAMP is "Mmm dd hh:mm:ss" with a space-padded, zero-padded or
// one-digit day, an optional fraction, an optional "*" or "." clock mark
// before it (Cisco), and an optional year before the month, after the day
// or after the time; or an RFC 3339 timestamp (a space may stand for the
// T). ZONE is "UTC", an abbreviation with a single meaning (CET, CEST, EST,
// PDT, JST, ...), an IANA name with a slash ("Europe/Paris"), a numeric
// offset, or an abbreviation that the default location uses at that date
// ("CST" with America/Chicago). A timestamp without a zone or offset is
// read in the default location; one without a year gets the year that
// puts it at most 7 days in the future, so December lines read in January
// stay in last year.
//
// HOSTNAME is the token after the timestamp, unless that token ends with
// ':', contains '[' or is not printable ASCII: then the line has no
// hostname and the token starts the TAG or the message (local syslogd and
// OpenBSD lines such as "Apr 27 23:06:01 syslogd[68529]: start"). An IPv6
// address is a hostname even when it ends with "::". AIX relays write
// "Message forwarded from HOST: " there, which gives HOSTNAME HOST. After
// "TIMESTAMP: " a token followed by a Cisco mnemonic ("%SYS-5-CONFIG_I:")
// is the HOSTNAME (Cisco IOS with "logging origin-id"). Runs of spaces
// between header fields are one separator.
//
// TAG is "app[pid]: " or "app: " ("app:" at the end of the line), app
// being 1-48 printable ASCII characters other than ':' and '[', pid 1-128
// other than ']'. It gives AppName and ProcID; "-" for the hostname, app
// or pid means absent. Msg is the text after the TAG and the one space
// that follows it, with white space kept as sent; without a TAG it is the
// rest of the line. FullMsg is the whole line with trailing white space
// removed. With rfc3164_tag = "first_word" the first word is the TAG even
// without a colon ("app msg", "app[pid] msg"), as rsyslog and syslog-ng
// read it: rsyslog forwards RFC 5424 messages so.
//
// A line with a PRI whose text after the PRI does not begin like a
// timestamp (a digit, a month name, or a Cisco clock mark or counter
// before one) has no header, as Python's SysLogHandler sends it:
// "<14>app: text". RFC 3164 §4.3.3 tells a relay to accept it and supply
// the header: the time is the receive time, the hostname the sender's
// address when the input knows it (see Origin), and a TAG is read when
// present. A line that begins like a timestamp and does not parse is
// rejected, and so is a line with neither PRI nor timestamp: nothing says
// it is syslog.
//
// An RFC3164 is safe for concurrent use.
type RFC3164 struct {
	loc   *time.Location
	now   func() time.Time
	zones bsdZoneCache
	// firstWord reads the first word as the TAG, colon or not
	// (rfc3164_tag = "first_word").
	firstWord bool
}

var _ OriginDecoder = (*RFC3164)(nil)

// NewRFC3164 returns a decoder that reads timestamps without a zone in loc
// (UTC when loc is nil).
func NewRFC3164(loc *time.Location) *RFC3164 {
	if loc == nil {
		loc = time.UTC
	}
	return &RFC3164{loc: loc, now: time.Now}
}

func init() {
	Register("rfc3164", newRFC3164Config)
}

// Values of rfc3164_tag.
const (
	// RFC3164TagColon reads a TAG only when it ends with ':' ("app: ",
	// "app[pid]: "): the default.
	RFC3164TagColon = "colon"
	// RFC3164TagFirstWord reads the first word as the TAG, with or without
	// a colon, as rsyslog and syslog-ng do.
	RFC3164TagFirstWord = "first_word"
)

// newRFC3164Config builds the decoder from the input section. Its keys:
// rfc3164_timezone names the location of timestamps that carry no zone (an
// IANA name, "UTC", the default, or "Local"); rfc3164_tag says what is a
// TAG ("colon", the default, or "first_word").
func newRFC3164Config(s *config.Section) (Decoder, error) {
	c := struct {
		Timezone string `toml:"rfc3164_timezone"`
		Tag      string `toml:"rfc3164_tag"`
	}{Timezone: "UTC", Tag: RFC3164TagColon}
	if err := s.Decode(&c); err != nil {
		return nil, err
	}
	loc, err := rfc3164Location(c.Timezone)
	if err != nil {
		return nil, s.Errorf("rfc3164_timezone", "%v", err)
	}
	d := NewRFC3164(loc)
	switch c.Tag {
	case RFC3164TagColon:
	case RFC3164TagFirstWord:
		d.firstWord = true
	default:
		return nil, s.Errorf("rfc3164_tag", "%q is not %q (a TAG ends with ':') or %q (the first word is the TAG, as rsyslog reads it)",
			c.Tag, RFC3164TagColon, RFC3164TagFirstWord)
	}
	return d, nil
}

// rfc3164Location resolves the rfc3164_timezone setting: an IANA name,
// "UTC" or "Local".
func rfc3164Location(name string) (*time.Location, error) {
	switch name {
	case "":
		return nil, errors.New("must name a time zone such as \"UTC\", \"Local\" or \"Europe/Paris\"")
	case "UTC":
		return time.UTC, nil
	case "Local":
		return time.Local, nil
	}
	loc, err := time.LoadLocation(name)
	if err != nil {
		return nil, fmt.Errorf("unknown time zone %q (want an IANA name such as \"Europe/Paris\", \"UTC\" or \"Local\")", name)
	}
	return loc, nil
}

// Field limits: a longer token is not taken for that field. They are the
// RFC 5424 limits of APP-NAME, PROCID and HOSTNAME, so that a record read
// here can be written as RFC 5424 unchanged.
const (
	bsdMaxApp  = 48
	bsdMaxPID  = 128
	bsdMaxHost = 255
)

// bsdMaxFrac is the number of fraction digits kept (nanoseconds); more are
// read and dropped.
const bsdMaxFrac = 9

// bsdFutureOK is how far ahead of the clock a timestamp without a year may
// be (clock skew, time zones) before it is taken for last year's.
const bsdFutureOK = 7 * 24 * time.Hour

type bsdSpan struct{ lo, hi int }

// bsdLine holds what parse found, as offsets into the line, so that the
// line is copied into the arena only once it is known to be good.
type bsdLine struct {
	pri  int
	seq  bsdSpan
	host bsdSpan
	app  bsdSpan
	pid  bsdSpan
	msg  bsdSpan
	time time.Time
	// noHeader marks a line without timestamp and hostname: the hostname
	// is the sender's address.
	noHeader bool
}

// Decode parses one BSD syslog line into r. A line without a header gets
// no hostname: use DecodeFrom to give it the sender's.
func (d *RFC3164) Decode(frame []byte, r *flowgo.Record, a *flowgo.Arena) error {
	return d.DecodeFrom(frame, nil, r, a)
}

// DecodeFrom parses one BSD syslog line that came from o into r. o is
// asked only for a line without a header, whose hostname is then the
// sender's address (see Origin).
func (d *RFC3164) DecodeFrom(frame []byte, o Origin, r *flowgo.Record, a *flowgo.Arena) error {
	n := len(frame)
	for n > 0 && bsdIsSpace(frame[n-1]) {
		n--
	}
	if n == 0 {
		return bsdErrorf(0, "empty line")
	}
	b := frame[:n]
	var l bsdLine
	if err := d.parse(b, &l); err != nil {
		return err
	}
	s := flowgo.UnsafeString(a.Copy(b))
	r.FullMsg = s
	r.Time = l.time
	if l.noHeader {
		r.Hostname = appendPeer(o, a)
	} else {
		r.Hostname = bsdField(s, l.host)
	}
	r.AppName = bsdField(s, l.app)
	r.ProcID = bsdField(s, l.pid)
	r.Msg = s[l.msg.lo:l.msg.hi]
	if l.pri >= 0 {
		r.Facility = uint8(l.pri >> 3)
		r.Severity = uint8(l.pri & 7)
	}
	if l.seq.hi > l.seq.lo {
		ps := [1]flowgo.Param{{Name: "sequenceId", Value: flowgo.StringValue(s[l.seq.lo:l.seq.hi])}}
		es := [1]flowgo.SDElement{{ID: "meta", Params: a.Params(ps[:])}}
		r.SD = a.Elems(es[:])
	}
	return nil
}

// bsdField returns the field at sp of s, "" for the NILVALUE "-" that
// relays write for an unknown hostname or tag.
func bsdField(s string, sp bsdSpan) string {
	if f := s[sp.lo:sp.hi]; f != "-" {
		return f
	}
	return ""
}

func bsdErrorf(col int, reason string, args ...any) *Error {
	return Errorf("rfc3164", col, reason, args...)
}

func (d *RFC3164) parse(b []byte, l *bsdLine) *Error {
	n := len(b)
	i := bsdSkipSpaces(b, 0)
	l.pri = -1
	if i < n && b[i] == '<' {
		j, v := i+1, 0
		for j < n && bsdIsDigit(b[j]) && j-i <= 3 {
			v = v*10 + int(b[j]-'0')
			j++
		}
		switch {
		case j == i+1:
			return bsdErrorf(j+1, "expected the priority number after '<'")
		case j < n && bsdIsDigit(b[j]):
			return bsdErrorf(j+1, "priority has more than 3 digits")
		case j == n || b[j] != '>':
			return bsdErrorf(j+1, "expected '>' after the priority")
		case v > 191:
			return bsdErrorf(i+2, "priority %d is out of range 0-191", v)
		}
		l.pri = v
		i = bsdSkipSpaces(b, j+1)
	}
	// A line with a PRI and no sign of a header is not parsed for one: the
	// failure would cost the allocation of an error.
	stamped := l.pri < 0 || bsdLooksStamped(b, i) || bsdDeviceStamped(b, i)
	if stamped {
		err := d.header(b, i, l)
		if err == nil {
			return nil
		}
		if l.pri < 0 || bsdLooksStamped(b, i) {
			return err
		}
	}
	// No header: RFC 3164 §4.3.3.
	*l = bsdLine{pri: l.pri, time: d.now().UTC(), noHeader: true}
	d.tag(b, i, l)
	return nil
}

// header reads the header at b[i:], after the PRI, and the TAG after it.
func (d *RFC3164) header(b []byte, i int, l *bsdLine) *Error {
	n := len(b)
	// Cisco IOS puts a message counter, and with "service sequence-numbers"
	// a second one, before the timestamp: "<189>105: 000104: Mar 12 ...".
	// With both turned off the colon stays: "<189>: Mar 12 ...".
	cisco := false
	for k := 0; k < 2; k++ {
		j := i
		for j < n && bsdIsDigit(b[j]) && j-i < 10 {
			j++
		}
		if j == n || b[j] != ':' || (j > i && (j+1 == n || b[j+1] != ' ')) || (j == i && (k > 0 || (j+1 < n && bsdIsDigit(b[j+1])))) {
			break
		}
		if l.seq.hi == l.seq.lo {
			l.seq = bsdSpan{i, j}
		}
		cisco = true
		i = bsdSkipSpaces(b, j+1)
	}

	// A first token ending with ':' is the HOSTNAME of the device form
	// "HOSTNAME: timestamp: msg"; no timestamp starts that way, except an
	// RFC 3339 one directly followed by ':', which is tried next.
	var st bsdStamp
	k := i
	for k < n && b[k] != ' ' {
		k++
	}
	j, devErr := 0, (*Error)(nil)
	if k-i >= 2 && b[k-1] == ':' && bsdIsHostname(b[i:k-1]) {
		if j, devErr = d.parseStamp(b, bsdSkipSpaces(b, k), cisco, &st); devErr == nil {
			l.host = bsdSpan{i, k - 1}
		}
	}
	if l.host.hi == l.host.lo {
		st = bsdStamp{}
		var err *Error
		if j, err = d.parseStamp(b, i, cisco, &st); err != nil {
			if devErr != nil && i < n && !bsdIsDigit(b[i]) {
				return devErr // what follows "HOSTNAME:" is the better clue
			}
			return err
		}
	}
	l.time = st.time
	l.msg = bsdSpan{n, n}
	switch {
	case j == n:
		// A timestamp and nothing else: an empty message.
	case b[j] == ':':
		i = bsdSkipSpaces(b, j+1)
		if l.host.hi == l.host.lo {
			// Cisco IOS with "logging origin-id": "*Oct 07 03:10:04:
			// mydevice.com %CRYPTO-4-RECVD_PKT_INV_SPI: text".
			k := i
			for k < n && b[k] != ' ' {
				k++
			}
			if m := bsdSkipSpaces(b, k); m > k && m < n && b[m] == '%' && bsdIsHostname(b[i:k]) {
				var t bsdLine
				if d.tag(b, m, &t); t.app.hi > t.app.lo {
					l.host, i = bsdSpan{i, k}, m
				}
			}
		}
		d.tag(b, i, l)
	case l.host.hi > l.host.lo:
		d.tag(b, bsdSkipSpaces(b, j), l)
	default:
		i = bsdSkipSpaces(b, j)
		k := i
		for k < n && b[k] != ' ' {
			k++
		}
		switch {
		case bytes.HasPrefix(b[i:], bsdAIXForwarded):
			// AIX relays: "Message forwarded from HOST: sshd[42]: text".
			h := i + len(bsdAIXForwarded)
			e := h
			for e < n && b[e] != ' ' {
				e++
			}
			if e-h >= 2 && b[e-1] == ':' && bsdIsHostname(b[h:e-1]) {
				l.host = bsdSpan{h, e - 1}
				i = bsdSkipSpaces(b, e)
				break
			}
			l.host = bsdSpan{i, k} // "Message" is the hostname, as in RFC 3164
			i = bsdSkipSpaces(b, k)
		case bsdIsHostname(b[i:k]) || bsdIsIPv6(b[i:k]):
			l.host = bsdSpan{i, k}
			i = bsdSkipSpaces(b, k)
			if i+2 < n && b[i] == ':' && b[i+1] == ' ' && b[i+2] == '%' {
				i += 2 // Cisco ASA and FTD: "fw01 : %ASA-6-302013: ..."
			}
		}
		d.tag(b, i, l)
	}
	return nil
}

// bsdAIXForwarded starts what AIX relays put where the hostname belongs.
var bsdAIXForwarded = []byte("Message forwarded from ")

// tag reads the TAG and the message from b[i:], as the decoder's
// rfc3164_tag says.
func (d *RFC3164) tag(b []byte, i int, l *bsdLine) {
	if d.firstWord {
		l.word(b, i)
	} else {
		l.tag(b, i)
	}
}

// bsdDeviceStamped reports whether b[i:] begins with the HOSTNAME of the
// device form followed by what looks like a timestamp: "router1: Aug ...".
func bsdDeviceStamped(b []byte, i int) bool {
	k := i
	for k < len(b) && b[k] != ' ' {
		k++
	}
	return k-i >= 2 && b[k-1] == ':' && bsdIsHostname(b[i:k-1]) && bsdLooksStamped(b, bsdSkipSpaces(b, k))
}

// bsdLooksStamped reports whether the text after the PRI at b[i:] begins
// like a timestamp: a digit (a year, an RFC 3339 date or a Cisco counter),
// or a month name, also after a Cisco counter colon (": Mar") or clock mark
// ("*Mar", ".Mar"). Such a line is rejected when it does not parse; any
// other has no header.
func bsdLooksStamped(b []byte, i int) bool {
	n := len(b)
	if i < n && b[i] == ':' {
		i = bsdSkipSpaces(b, i+1)
	}
	if i < n && (b[i] == '*' || b[i] == '.') {
		i++
	}
	switch {
	case i < n && bsdIsDigit(b[i]):
		return true
	case i+3 <= n && bsdMonth(b[i], b[i+1], b[i+2]) != 0:
		return i+3 == n || b[i+3] == ' '
	}
	return false
}

// tag reads "app[pid]: msg", "app: msg" or a bare message from b[i:].
func (l *bsdLine) tag(b []byte, i int) {
	n := len(b)
	l.msg = bsdSpan{i, n}
	app, pid, j, ok := bsdAppPID(b, i, true)
	if !ok || j == n || b[j] != ':' || (j+1 < n && b[j+1] != ' ') {
		return
	}
	l.app, l.pid = app, pid
	l.msg = bsdSpan{min(j+2, n), n}
}

// word reads the TAG as rsyslog and syslog-ng do (rfc3164_tag =
// "first_word"): the first word, up to a space or a ':', with an optional
// "[pid]" and ':' at its end, is the TAG. A word that goes on after them
// ("app[1]x") or that is too long for an APP-NAME is message text.
func (l *bsdLine) word(b []byte, i int) {
	n := len(b)
	l.msg = bsdSpan{i, n}
	app, pid, j, ok := bsdAppPID(b, i, false)
	if !ok {
		return
	}
	if j < n && b[j] == ':' {
		j++
	}
	if j < n && b[j] != ' ' && b[j-1] != ':' {
		return
	}
	l.app, l.pid = app, pid
	if j < n && b[j] == ' ' {
		j++
	}
	l.msg = bsdSpan{j, n}
}

// bsdAppPID reads the "app" or "app[pid]" that starts a TAG at b[i:]; j is
// where it ends. ok is false when b[i:] does not start with one: no TAG
// character, an APP-NAME or PID too long, an unclosed '[', or (unless
// emptyPID) "app[]".
func bsdAppPID(b []byte, i int, emptyPID bool) (app, pid bsdSpan, j int, ok bool) {
	n := len(b)
	j = i
	for j < n && bsdIsTagChar(b[j]) {
		j++
	}
	if j == i || j-i > bsdMaxApp {
		return app, pid, j, false
	}
	app = bsdSpan{i, j}
	if j < n && b[j] == '[' {
		k := j + 1
		for k < n && b[k] != ']' && b[k] > 32 && b[k] < 127 {
			k++
		}
		if k == n || b[k] != ']' || (!emptyPID && k == j+1) || k-j-1 > bsdMaxPID {
			return app, pid, j, false
		}
		pid = bsdSpan{j + 1, k}
		j = k + 1
	}
	return app, pid, j, true
}

// bsdStamp is a timestamp being parsed.
type bsdStamp struct {
	col                                    int // 1-based column of the day, for errors found late
	hasYear                                bool
	year, month, day, hour, min, sec, nsec int
	loc                                    *time.Location
	time                                   time.Time
}

const bsdWantStamp = "expected a timestamp such as \"Aug  6 11:15:24\" or \"2024-08-06T11:15:24Z\""

// parseStamp reads the timestamp at b[i:] and the zone after it, and
// returns the offset just past them: the end of b, a space or ':'.
func (d *RFC3164) parseStamp(b []byte, i int, cisco bool, st *bsdStamp) (int, *Error) {
	n := len(b)
	if i == n {
		return i, bsdErrorf(i+1, "expected a timestamp, found the end of the line")
	}
	if bsdDigits(b, i, 4) && i+4 < n {
		switch b[i+4] {
		case '-':
			return d.parseISO(b, i, cisco, st)
		case ' ':
			if err := st.setYear(b, i); err != nil { // "2024 Aug  6 11:15:24"
				return i, err
			}
			i = bsdSkipSpaces(b, i+5)
		}
	}
	if !st.hasYear && i < n && (b[i] == '*' || b[i] == '.') {
		i++ // Cisco clock state: never synchronised, or synchronised once
	}
	if i+3 > n {
		return i, bsdErrorf(i+1, bsdWantStamp)
	}
	st.month = bsdMonth(b[i], b[i+1], b[i+2])
	if st.month == 0 {
		return i, bsdErrorf(i+1, bsdWantStamp)
	}
	i += 3
	if i == n || b[i] != ' ' {
		return i, bsdErrorf(i+1, "expected a space after the month")
	}
	i = bsdSkipSpaces(b, i)
	j := i
	for j < n && bsdIsDigit(b[j]) && j-i < 2 {
		j++
	}
	if j == i || j == n || b[j] != ' ' {
		return j, bsdErrorf(j+1, "expected a day of 1 or 2 digits and a space")
	}
	st.col, st.day = i+1, bsdAtoi(b[i:j])
	if st.day < 1 || st.day > daysIn(2000, st.month) {
		return i, bsdErrorf(st.col, "day %d is out of range for the month", st.day)
	}
	i = bsdSkipSpaces(b, j)
	if !st.hasYear && bsdDigits(b, i, 4) && i+4 < n && b[i+4] == ' ' {
		if err := st.setYear(b, i); err != nil { // "Aug  6 2024 11:15:24", Cisco "datetime year"
			return i, err
		}
		i = bsdSkipSpaces(b, i+5)
	}
	i, err := st.clock(b, i)
	if err != nil {
		return i, err
	}
	if !st.hasYear && i+5 <= n && b[i] == ' ' && bsdDigits(b, i+1, 4) && bsdStampEnd(b, i+5) {
		if y := bsdAtoi(b[i+1 : i+5]); y >= 1970 && y < 2100 {
			st.year, st.hasYear = y, true // "Aug  6 11:15:24 2024 host", HPE Comware
			i += 5
		}
	}
	return d.zone(b, i, cisco, st)
}

// parseISO reads "YYYY-MM-DDThh:mm:ss[.frac][Z|+hh:mm]" at b[i:]; a space
// may stand for the T.
func (d *RFC3164) parseISO(b []byte, i int, cisco bool, st *bsdStamp) (int, *Error) {
	n := len(b)
	if err := st.setYear(b, i); err != nil {
		return i, err
	}
	i += 5
	if !bsdDigits(b, i, 2) || i+2 >= n || b[i+2] != '-' {
		return i, bsdErrorf(i+1, "expected a 2-digit month and '-' in the RFC 3339 timestamp")
	}
	st.month = bsdAtoi(b[i : i+2])
	if st.month < 1 || st.month > 12 {
		return i, bsdErrorf(i+1, "month %d is out of range 1-12", st.month)
	}
	i += 3
	if !bsdDigits(b, i, 2) || i+2 >= n || (b[i+2] != 'T' && b[i+2] != 't' && b[i+2] != ' ') {
		return i, bsdErrorf(i+1, "expected a 2-digit day and 'T' in the RFC 3339 timestamp")
	}
	st.col, st.day = i+1, bsdAtoi(b[i:i+2])
	if st.day < 1 || st.day > daysIn(st.year, st.month) {
		return i, bsdErrorf(st.col, "day %d is out of range for the month", st.day)
	}
	i, err := st.clock(b, i+3)
	if err != nil {
		return i, err
	}
	if i < n {
		switch b[i] {
		case 'Z', 'z':
			st.loc = time.UTC
			i++
		case '+', '-':
			k, loc := bsdOffset(b, i)
			if loc == nil {
				return i, bsdErrorf(i+1, "expected a time offset such as +02:00")
			}
			st.loc, i = loc, k
		}
	}
	if st.loc == nil {
		return d.zone(b, i, cisco, st)
	}
	if !bsdStampEnd(b, i) {
		return i, bsdErrorf(i+1, "unexpected %q after the timestamp", b[i])
	}
	st.time = time.Date(st.year, time.Month(st.month), st.day, st.hour, st.min, st.sec, st.nsec, st.loc)
	return i, nil
}

// setYear takes the 4 digits at b[i:] as the year. Years before 1000 are
// a broken clock, not history; rejecting them also keeps year 1, whose
// first second is Go's zero Time, "unknown" in a Record.
func (st *bsdStamp) setYear(b []byte, i int) *Error {
	st.year, st.hasYear = bsdAtoi(b[i:i+4]), true
	if st.year < 1000 {
		return bsdErrorf(i+1, "year %d is out of range 1000-9999", st.year)
	}
	return nil
}

// clock reads "hh:mm:ss[.frac]" at b[i:].
func (st *bsdStamp) clock(b []byte, i int) (int, *Error) {
	n := len(b)
	if !bsdDigits(b, i, 2) || i+8 > n || b[i+2] != ':' || !bsdDigits(b, i+3, 2) || b[i+5] != ':' || !bsdDigits(b, i+6, 2) {
		return i, bsdErrorf(i+1, "expected a time as hh:mm:ss")
	}
	st.hour, st.min, st.sec = bsdAtoi(b[i:i+2]), bsdAtoi(b[i+3:i+5]), bsdAtoi(b[i+6:i+8])
	if st.hour > 23 || st.min > 59 || st.sec > 59 {
		return i, bsdErrorf(i+1, "time %s is out of range", b[i:i+8])
	}
	i += 8
	if i < n && b[i] == '.' {
		j := i + 1
		scale := 100000000
		for j < n && bsdIsDigit(b[j]) {
			if j-i <= bsdMaxFrac {
				st.nsec += int(b[j]-'0') * scale
				scale /= 10
			}
			j++
		}
		if j == i+1 {
			return j, bsdErrorf(j+1, "expected digits after the decimal point")
		}
		i = j
	}
	return i, nil
}

// zone reads an optional zone token after the timestamp at b[i:], then
// resolves the timestamp into st.time.
func (d *RFC3164) zone(b []byte, i int, cisco bool, st *bsdStamp) (int, *Error) {
	n := len(b)
	if !bsdStampEnd(b, i) {
		return i, bsdErrorf(i+1, "unexpected %q after the timestamp", b[i])
	}
	k := bsdSkipSpaces(b, i)
	e := k // end of the token after the timestamp
	for e < n && b[e] != ' ' && b[e] != ':' {
		e++
	}
	var abbrev bool // tok may be the default location's abbreviation
	if k > i && e > k {
		tok := b[k:e]
		switch c := tok[0]; {
		case c == '+' || c == '-':
			if j, loc := bsdOffset(b, k); loc != nil && bsdStampEnd(b, j) {
				st.loc, i = loc, j
			}
		case !bsdIsUpper(c) || !bsdStampEnd(b, e):
		case bsdZones[string(tok)] != nil:
			st.loc, i = bsdZones[string(tok)], e
		case bsdIsAbbrev(tok):
			abbrev = true
		default:
			if loc := d.zones.lookup(tok); loc != nil {
				st.loc, i = loc, e
			}
		}
	}
	loc := st.loc
	if loc == nil {
		loc = d.loc
	}
	if !st.hasYear {
		if err := d.inferYear(st, loc); err != nil {
			return i, err
		}
	} else {
		if st.day > daysIn(st.year, st.month) {
			return i, bsdErrorf(st.col, "day %d is out of range for the month in %d", st.day, st.year)
		}
		st.time = time.Date(st.year, time.Month(st.month), st.day, st.hour, st.min, st.sec, st.nsec, loc)
	}
	if abbrev {
		if name, _ := st.time.Zone(); name == string(b[k:e]) {
			st.loc, i = loc, e
		}
	}
	// On a Cisco line only a zone can stand between the time and the ':'.
	if cisco && st.loc == nil && k > i && e > k && e < n && b[e] == ':' && bsdStampEnd(b, e) {
		return k, bsdErrorf(k+1, "unknown time zone %q", b[k:e])
	}
	return i, nil
}

// bsdStampEnd reports whether a timestamp (with its zone) may end at b[i]:
// at the end of the line, before a space, or before the ": " of the device
// form.
func bsdStampEnd(b []byte, i int) bool {
	return i == len(b) || b[i] == ' ' || (b[i] == ':' && (i+1 == len(b) || b[i+1] == ' '))
}

// inferYear gives st the latest year that puts it at most bsdFutureOK
// ahead of now: the current year, the one before for a December line read
// in early January, the one after for a line from the first days of
// January read on New Year's Eve. Feb 29 goes back to the last leap year.
func (d *RFC3164) inferYear(st *bsdStamp, loc *time.Location) *Error {
	now := d.now()
	limit := now.Add(bsdFutureOK)
	y, m, _ := now.Date()
	if m == time.December && st.month == 1 {
		y++
	}
	for last := y - 5; y > last; y-- {
		if st.day > daysIn(y, st.month) {
			continue
		}
		t := time.Date(y, time.Month(st.month), st.day, st.hour, st.min, st.sec, st.nsec, loc)
		if !t.After(limit) {
			st.year, st.time = y, t
			return nil
		}
	}
	return bsdErrorf(st.col, "no recent year has day %d in month %d", st.day, st.month)
}

// bsdOffset reads "+hh:mm", "+hhmm" or "+hh" at b[i:] and returns the
// offset past it and a location, nil if there is none.
func bsdOffset(b []byte, i int) (int, *time.Location) {
	n := len(b)
	if !bsdDigits(b, i+1, 2) {
		return i, nil
	}
	h, m, j := bsdAtoi(b[i+1:i+3]), 0, i+3
	switch {
	case j < n && b[j] == ':':
		if !bsdDigits(b, j+1, 2) {
			return i, nil
		}
		m, j = bsdAtoi(b[j+1:j+3]), j+3
	case bsdDigits(b, j, 2):
		m, j = bsdAtoi(b[j:j+2]), j+2
	}
	if h > 23 || m > 59 || (j < n && bsdIsDigit(b[j])) {
		return i, nil
	}
	off := h*3600 + m*60
	if b[i] == '-' {
		off = -off
	}
	return j, bsdFixedZone(off)
}

// Fixed zones for offsets in whole quarters of an hour, made once, so that
// a numeric offset costs no allocation.
var bsdQuarterZones = func() (z [2*14*4 + 1]*time.Location) {
	for q := range z {
		z[q] = time.FixedZone("", (q-14*4)*15*60)
	}
	return z
}()

func bsdFixedZone(off int) *time.Location {
	if off == 0 {
		return time.UTC
	}
	if off%(15*60) == 0 && off >= -14*3600 && off <= 14*3600 {
		return bsdQuarterZones[off/(15*60)+14*4]
	}
	return time.FixedZone("", off)
}

// bsdZones maps the zone abbreviations that mean a single offset
// worldwide. CST, IST, BST, AST and the like name several zones and are
// left out: they are accepted only when the default location uses them.
var bsdZones = func() map[string]*time.Location {
	m := map[string]*time.Location{"UTC": time.UTC, "GMT": time.UTC, "UT": time.UTC}
	for _, z := range []struct {
		name string
		min  int
	}{
		{"WET", 0}, {"WEST", 60}, {"CET", 60}, {"CEST", 120}, {"MET", 60}, {"MEST", 120},
		{"EET", 120}, {"EEST", 180}, {"MSK", 180}, {"SAST", 120}, {"CAT", 120}, {"EAT", 180}, {"WAT", 60},
		{"EST", -300}, {"EDT", -240}, {"MST", -420}, {"MDT", -360}, {"PST", -480}, {"PDT", -420},
		{"AKST", -540}, {"AKDT", -480}, {"HST", -600}, {"NST", -210}, {"NDT", -150},
		{"JST", 540}, {"KST", 540}, {"HKT", 480}, {"SGT", 480}, {"PKT", 300}, {"NPT", 345},
		{"WIB", 420}, {"WITA", 480}, {"WIT", 540},
		{"AEST", 600}, {"AEDT", 660}, {"ACST", 570}, {"ACDT", 630}, {"AWST", 480},
		{"NZST", 720}, {"NZDT", 780},
	} {
		m[z.name] = time.FixedZone(z.name, z.min*60)
	}
	return m
}()

// bsdZoneCache remembers IANA zone names met in lines, and names that are
// not zones, so that each is loaded from the zone database only once.
type bsdZoneCache struct {
	mu sync.RWMutex
	m  map[string]*time.Location
}

// bsdMaxZones bounds the cache: lines with ever new junk names must not
// grow it without end. When full it starts over.
const bsdMaxZones = 512

func (c *bsdZoneCache) lookup(name []byte) *time.Location {
	if !bsdIsIANA(name) {
		return nil
	}
	c.mu.RLock()
	loc, ok := c.m[string(name)]
	c.mu.RUnlock()
	if ok {
		return loc
	}
	loc, err := time.LoadLocation(string(name))
	if err != nil {
		loc = nil
	}
	c.mu.Lock()
	if c.m == nil || len(c.m) >= bsdMaxZones {
		c.m = make(map[string]*time.Location)
	}
	c.m[string(name)] = loc
	c.mu.Unlock()
	return loc
}

// bsdIsIANA reports whether name has the shape of an IANA zone name with an
// area, such as "Europe/Paris" or "America/Argentina/Buenos_Aires". Names
// without a slash ("Japan", "Egypt") are legacy aliases that look too much
// like host names to be taken for zones.
func bsdIsIANA(name []byte) bool {
	if len(name) < 3 || len(name) > 64 || !bsdIsUpper(name[0]) || name[len(name)-1] == '/' || bytes.IndexByte(name, '/') < 0 {
		return false
	}
	for i, c := range name {
		ok := bsdIsUpper(c) || (c >= 'a' && c <= 'z') || bsdIsDigit(c) || c == '_' || c == '-' || c == '+' ||
			(c == '/' && name[i-1] != '/')
		if !ok {
			return false
		}
	}
	return true
}

// bsdIsAbbrev reports whether tok could be a zone abbreviation: 3 to 5
// capital letters.
func bsdIsAbbrev(tok []byte) bool {
	if len(tok) < 3 || len(tok) > 5 {
		return false
	}
	for _, c := range tok {
		if !bsdIsUpper(c) {
			return false
		}
	}
	return true
}

// bsdMonth returns 1-12 for an English month abbreviation in any case, 0
// otherwise.
func bsdMonth(a, b, c byte) int {
	switch uint32(a|0x20)<<16 | uint32(b|0x20)<<8 | uint32(c|0x20) {
	case 'j'<<16 | 'a'<<8 | 'n':
		return 1
	case 'f'<<16 | 'e'<<8 | 'b':
		return 2
	case 'm'<<16 | 'a'<<8 | 'r':
		return 3
	case 'a'<<16 | 'p'<<8 | 'r':
		return 4
	case 'm'<<16 | 'a'<<8 | 'y':
		return 5
	case 'j'<<16 | 'u'<<8 | 'n':
		return 6
	case 'j'<<16 | 'u'<<8 | 'l':
		return 7
	case 'a'<<16 | 'u'<<8 | 'g':
		return 8
	case 's'<<16 | 'e'<<8 | 'p':
		return 9
	case 'o'<<16 | 'c'<<8 | 't':
		return 10
	case 'n'<<16 | 'o'<<8 | 'v':
		return 11
	case 'd'<<16 | 'e'<<8 | 'c':
		return 12
	}
	return 0
}

// bsdDigits reports whether b[i:i+k] holds k ASCII digits.
func bsdDigits(b []byte, i, k int) bool {
	if i < 0 || i+k > len(b) {
		return false
	}
	for _, c := range b[i : i+k] {
		if !bsdIsDigit(c) {
			return false
		}
	}
	return true
}

func bsdAtoi(b []byte) int {
	v := 0
	for _, c := range b {
		v = v*10 + int(c-'0')
	}
	return v
}

func bsdSkipSpaces(b []byte, i int) int {
	for i < len(b) && b[i] == ' ' {
		i++
	}
	return i
}

// bsdIsHostname reports whether b can be a HOSTNAME: printable ASCII
// without '[', not ending with ':' (that would be a TAG).
func bsdIsHostname(b []byte) bool {
	if len(b) == 0 || len(b) > bsdMaxHost || b[len(b)-1] == ':' {
		return false
	}
	for _, c := range b {
		if c < 33 || c > 126 || c == '[' {
			return false
		}
	}
	return true
}

// bsdIsIPv6 reports whether b is an IPv6 address, which may end with
// "::" and so look like a TAG.
func bsdIsIPv6(b []byte) bool {
	if len(b) < 2 || len(b) > 45 || bytes.IndexByte(b, ':') < 0 {
		return false
	}
	for _, c := range b {
		if !bsdIsDigit(c) && c != ':' && c != '.' && (c|0x20 < 'a' || c|0x20 > 'f') {
			return false
		}
	}
	a, err := netip.ParseAddr(flowgo.UnsafeString(b))
	return err == nil && a.Is6()
}

// bsdIsTagChar reports whether c may be in a TAG's name: printable ASCII
// other than ':' and '[', which end it.
func bsdIsTagChar(c byte) bool { return c > 32 && c < 127 && c != ':' && c != '[' }

func bsdIsDigit(c byte) bool { return c >= '0' && c <= '9' }

func bsdIsUpper(c byte) bool { return c >= 'A' && c <= 'Z' }

func bsdIsSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f'
}
