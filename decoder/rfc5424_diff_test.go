package decoder_test

import (
	"bytes"
	"fmt"
	"maps"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/flowgo/flowgo"
	"github.com/flowgo/flowgo/decoder/decodertest"
	"github.com/influxdata/go-syslog/v3/rfc5424"
)

// go-syslog's strict RFC 5424 machine (no best effort) is the reference
// decoder. Where both accept a line they must agree on every field, after
// the normalisations this decoder makes by design (see compareGoSyslog).
// They may disagree on whether to accept a line only in the cases of
// TestRFC5424GoSyslogDifferences.

func parseGoSyslog(in []byte) (*rfc5424.SyslogMessage, error) {
	m, err := rfc5424.NewParser().Parse(in)
	if err != nil {
		return nil, err
	}
	return m.(*rfc5424.SyslogMessage), nil
}

func deref[T any](p *T) (v T) {
	if p != nil {
		v = *p
	}
	return v
}

// compareGoSyslog reports the fields where our record r differs from
// go-syslog's message m for the same line. Msg is compared after the two
// changes this decoder makes on purpose: one leading BOM is removed
// (docs/flowgger.md: the RFC 5424 decoder) and trailing white space is trimmed. Repeated
// param names are compared as go-syslog keeps them, last value winning,
// since its map cannot hold more. FullMsg is not go-syslog's to judge.
func compareGoSyslog(r *flowgo.Record, m *rfc5424.SyslogMessage) []string {
	var diffs []string
	check := func(field string, got, want any) {
		if got != want {
			diffs = append(diffs, fmt.Sprintf("%s: ours %#v, go-syslog %#v", field, got, want))
		}
	}
	check("facility", r.Facility, deref(m.Facility))
	check("severity", r.Severity, deref(m.Severity))
	if m.Timestamp == nil {
		if !r.Time.Equal(rfc5424ReceiveTime) {
			diffs = append(diffs, fmt.Sprintf("time: ours %v, go-syslog none (want the receive time)", r.Time))
		}
	} else if !r.Time.Equal(*m.Timestamp) {
		diffs = append(diffs, fmt.Sprintf("time: ours %v, go-syslog %v", r.Time, *m.Timestamp))
	}
	check("hostname", r.Hostname, deref(m.Hostname))
	check("appname", r.AppName, deref(m.Appname))
	check("procid", r.ProcID, deref(m.ProcID))
	check("msgid", r.MsgID, deref(m.MsgID))
	check("msg", r.Msg, strings.TrimRight(strings.TrimPrefix(deref(m.Message), bom), rfc5424Blanks))
	ours := map[string]map[string]string{}
	for _, e := range r.SD {
		ours[e.ID] = map[string]string{}
		for _, p := range e.Params {
			ours[e.ID][p.Name] = p.Value.Str
		}
	}
	theirs := deref(m.StructuredData)
	if len(ours) != len(r.SD) || !maps.EqualFunc(ours, theirs, maps.Equal) {
		diffs = append(diffs, fmt.Sprintf("structured data: ours %v, go-syslog %v", ours, theirs))
	}
	return diffs
}

// goSyslogColumn returns the position go-syslog puts in an error (" [col
// N]", a 0-based byte offset), or -1.
func goSyslogColumn(err error) int {
	s := err.Error()
	i := strings.LastIndex(s, " [col ")
	if i < 0 || !strings.HasSuffix(s, "]") {
		return -1
	}
	n, convErr := strconv.Atoi(s[i+len(" [col ") : len(s)-1])
	if convErr != nil {
		return -1
	}
	return n
}

// goSyslogRejection names the known difference that explains why go-syslog
// rejects a line we accept as r, or returns "" if none does.
func goSyslogRejection(in []byte, r *flowgo.Record, gerr error) string {
	// A line may have several known differences (a lower-case z and a MSG
	// that is not UTF-8): after undoing one, look for the others in what
	// go-syslog still rejects.
	for _, n := range []struct {
		why  string
		undo func([]byte) ([]byte, bool)
	}{
		{"trailing white space after the structured data", func(in []byte) ([]byte, bool) {
			t := bytes.TrimRight(in, rfc5424Blanks)
			return t, len(t) < len(in)
		}},
		{"timestamp with 7-9 fraction digits or a lower-case t or z", rfc5424StrictTimestamp},
	} {
		norm, changed := n.undo(in)
		if !changed {
			continue
		}
		_, err := parseGoSyslog(norm)
		if err == nil {
			return n.why
		}
		if more := goSyslogRejection(norm, r, err); more != "" {
			return n.why + ", and " + more
		}
	}
	msg, col := gerr.Error(), goSyslogColumn(gerr)
	switch {
	case strings.HasPrefix(msg, rfc5424.ErrEscape) && col > 0 && col < len(in) &&
		in[col-1] == '\\' && !strings.ContainsRune(`"\]`, rune(in[col])):
		return "backslash before another character in a param value"
	case strings.HasPrefix(msg, rfc5424.ErrMsg) && !utf8.ValidString(r.Msg):
		// A Msg that is not UTF-8 cannot have come after a BOM: those are checked.
		return "MSG without BOM that is not UTF-8"
	}
	return ""
}

// checkAgainstGoSyslog decodes in with both decoders and reports any
// difference that is not one of the known ones.
func checkAgainstGoSyslog(t *testing.T, in []byte) {
	t.Helper()
	r, err := decode5424(in)
	m, gerr := parseGoSyslog(in)
	switch {
	case err == nil && gerr == nil:
		if diffs := compareGoSyslog(&r, m); diffs != nil {
			t.Errorf("Decode(%q) differs from go-syslog:\n%s\nours: %s", in, strings.Join(diffs, "\n"), decodertest.Dump(&r))
		}
	case err != nil && gerr == nil:
		if m.Version == 1 {
			t.Errorf("Decode(%q) = %v; go-syslog accepts it", in, err)
		}
	case err == nil && gerr != nil:
		if goSyslogRejection(in, &r, gerr) == "" {
			t.Errorf("Decode(%q) accepts what go-syslog rejects (%v), for no known reason:\n%s", in, gerr, decodertest.Dump(&r))
		}
		// Our record must still be one go-syslog agrees with once it is
		// written canonically; only a MSG that is not UTF-8 has to be made
		// so first, since go-syslog wants UTF-8 even without a BOM.
		c := r
		c.Msg = strings.ToValidUTF8(r.Msg, "\uFFFD")
		c.Time = r.Time.Truncate(time.Microsecond) // the canonical form has 6 fraction digits
		line := rfc5424Line(&c)
		m, gerr := parseGoSyslog(line)
		if gerr != nil {
			t.Errorf("Decode(%q) = %s\ngo-syslog rejects its canonical form %q: %v", in, decodertest.Dump(&r), line, gerr)
		} else if diffs := compareGoSyslog(&c, m); diffs != nil {
			t.Errorf("Decode(%q): go-syslog reads its canonical form %q differently:\n%s", in, line, strings.Join(diffs, "\n"))
		}
	}
}

// TestRFC5424GoSyslogDifferences lists every case where this decoder and
// go-syslog disagree on whether a line is valid, with the reason.
func TestRFC5424GoSyslogDifferences(t *testing.T) {
	tests := []struct {
		name      string
		in        string
		oursOK    bool
		goSyslog  bool
		reasoning string
	}{
		{
			name: "a version other than 1", in: "<13>2 - h a p m - msg", oursOK: false, goSyslog: true,
			reasoning: "RFC 5424 defines version 1 only, and a later version may change the grammar; " +
				"Flowgger rejects it too (Unsupported version). go-syslog takes any 1-999.",
		},
		{
			name: "a newline after the structured data", in: "<13>1 - h a p m [a x=\"1\"]\n", oursOK: true, goSyslog: false,
			reasoning: "UDP senders and line framing leave LF or CRLF after the line; the decoder trims trailing " +
				"white space as FullMsg does (Decision 13). go-syslog wants nothing but SP MSG after the SD.",
		},
		{
			name: "a CRLF after a NILVALUE structured data", in: "<13>1 - h a p m -\r\n", oursOK: true, goSyslog: false,
			reasoning: "as above",
		},
		{
			name: "a backslash before another character in a param value", in: `<13>1 - h a p m [a path="C:\temp"]`, oursOK: true, goSyslog: false,
			reasoning: "RFC 5424 §6.3.3: such a backslash MUST be treated as a regular character and the sequence " +
				"not altered. go-syslog's grammar rejects it, against its own comment.",
		},
		{
			name: "a timestamp with nanoseconds", in: "<13>1 2024-11-25T10:00:00.123456789Z h a p m - x", oursOK: true, goSyslog: false,
			reasoning: "RFC 5424 §6.2.3 allows 6 fraction digits, but loggers stamping nanoseconds (Go's RFC3339Nano) " +
				"are common and Flowgger 0.3 accepts them (the time crate's RFC 3339): refusing them would lose records.",
		},
		{
			name: "lower-case t and z in the timestamp", in: "<13>1 2024-11-25t10:00:00z h a p m - x", oursOK: true, goSyslog: false,
			reasoning: "RFC 3339 §5.6 allows them; RFC 5424 §6.2.3 narrows to upper case. Flowgger 0.3 accepts them.",
		},
		{
			name: "a lower-case z and a MSG that is not UTF-8", in: "<0>1 0000-01-01T00:00:00z 0 0 0 0 - \xb1", oursOK: true, goSyslog: false,
			reasoning: "two of the differences above at once (found by FuzzRFC5424GoSyslog, testdata/fuzz/ce3cb1c1e9202853)",
		},
		{
			name: "a MSG without BOM that is not UTF-8", in: "<13>1 - h a p m - caf\xe9", oursOK: true, goSyslog: false,
			reasoning: "RFC 5424 §6.4: MSG-ANY is *OCTET; only a MSG that starts with a BOM must be UTF-8. " +
				"go-syslog wants UTF-8 in every MSG.",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := decode5424([]byte(tt.in))
			if (err == nil) != tt.oursOK {
				t.Errorf("Decode(%q) = %v; want accepted = %v", tt.in, err, tt.oursOK)
			}
			_, gerr := parseGoSyslog([]byte(tt.in))
			if (gerr == nil) != tt.goSyslog {
				t.Errorf("go-syslog Parse(%q) = %v; want accepted = %v (has go-syslog changed?)", tt.in, gerr, tt.goSyslog)
			}
			if err == nil && gerr != nil && goSyslogRejection([]byte(tt.in), &r, gerr) == "" {
				t.Errorf("goSyslogRejection(%q) does not recognise this difference", tt.in)
			}
			checkAgainstGoSyslog(t, []byte(tt.in))
		})
	}
}

// TestRFC5424AgreesWithGoSyslog runs the differential check on every
// golden input, the fuzz seeds.
func TestRFC5424AgreesWithGoSyslog(t *testing.T) {
	for _, c := range rfc5424Files(t) {
		t.Run(c.name, func(t *testing.T) { checkAgainstGoSyslog(t, c.in) })
	}
}

// FuzzRFC5424GoSyslog is the differential fuzz target: go-syslog's strict
// parser and ours must agree on every input, but for the known differences.
func FuzzRFC5424GoSyslog(f *testing.F) {
	for _, c := range rfc5424Files(f) {
		f.Add(c.in)
	}
	for _, c := range rfc5424BenchCases {
		f.Add(c.in)
	}
	f.Fuzz(func(t *testing.T, in []byte) { checkAgainstGoSyslog(t, in) })
}

// rfc5424StrictTimestamp rewrites the TIMESTAMP of an RFC 5424 line within
// RFC 5424's own limits (upper-case T and Z, at most 6 fraction digits), to
// tell the timestamps we accept beyond them from other differences.
func rfc5424StrictTimestamp(in []byte) ([]byte, bool) {
	// <PRI>1 SP TIMESTAMP SP ...
	sp := bytes.IndexByte(in, ' ')
	if sp < 0 {
		return in, false
	}
	end := bytes.IndexByte(in[sp+1:], ' ')
	if end < 0 {
		return in, false
	}
	ts := in[sp+1 : sp+1+end]
	if len(ts) < 20 {
		return in, false
	}
	out := append([]byte(nil), ts...)
	changed := false
	if out[10] == 't' {
		out[10], changed = 'T', true
	}
	if out[len(out)-1] == 'z' {
		out[len(out)-1], changed = 'Z', true
	}
	if len(out) > 19 && out[19] == '.' {
		j := 20
		for j < len(out) && out[j] >= '0' && out[j] <= '9' {
			j++
		}
		if j-20 > 6 {
			out = append(out[:26], out[j:]...)
			changed = true
		}
	}
	if !changed {
		return in, false
	}
	res := append(append(append([]byte(nil), in[:sp+1]...), out...), in[sp+1+end:]...)
	return res, true
}
