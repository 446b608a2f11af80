package decoder_test

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/flowgo/flowgo"
	"github.com/flowgo/flowgo/config"
	"github.com/flowgo/flowgo/decoder"
	"github.com/flowgo/flowgo/decoder/decodertest"
)

// update rewrites the golden files under testdata instead of comparing
// with them (go test ./decoder -update).
var update = flag.Bool("update", false, "rewrite the golden files under testdata")

// rfc5424ReceiveTime is the receive time the test decoder gives a NILVALUE
// timestamp, so that golden files are reproducible.
var rfc5424ReceiveTime = time.Date(2025, 1, 2, 3, 4, 5, 123456000, time.UTC)

const bom = "\xef\xbb\xbf"

func decode5424(in []byte) (flowgo.Record, error) {
	var r flowgo.Record
	r.Reset()
	err := decoder.NewRFC5424AtTime(rfc5424ReceiveTime).Decode(in, &r, new(flowgo.Arena))
	return r, err
}

type rfc5424File struct {
	name string // file name without .in; "ok_" or "err_" says which outcome is expected
	in   []byte
}

// rfc5424Files returns the golden inputs in testdata/rfc5424, sorted.
func rfc5424Files(tb testing.TB) []rfc5424File {
	tb.Helper()
	paths, err := filepath.Glob(filepath.Join("testdata", "rfc5424", "*.in"))
	if err != nil {
		tb.Fatal(err)
	}
	sort.Strings(paths)
	var out []rfc5424File
	for _, p := range paths {
		in, err := os.ReadFile(p)
		if err != nil {
			tb.Fatal(err)
		}
		out = append(out, rfc5424File{name: strings.TrimSuffix(filepath.Base(p), ".in"), in: in})
	}
	if len(out) == 0 {
		tb.Fatal("no golden inputs in testdata/rfc5424")
	}
	return out
}

// TestRFC5424Golden decodes each testdata/rfc5424/<case>.in and compares
// the record with <case>.golden, or the error with <case>.err. The name's
// prefix (ok_, err_) fixes which of the two is expected, so that -update
// cannot silently turn an accepted case into a rejected one.
func TestRFC5424Golden(t *testing.T) {
	for _, c := range rfc5424Files(t) {
		t.Run(c.name, func(t *testing.T) {
			r, err := decode5424(c.in)
			base := filepath.Join("testdata", "rfc5424", c.name)
			wantOK := strings.HasPrefix(c.name, "ok_")
			if !wantOK && !strings.HasPrefix(c.name, "err_") {
				t.Fatalf("case name %q must start with ok_ or err_", c.name)
			}
			var got, path string
			switch {
			case wantOK && err != nil:
				t.Fatalf("Decode(%q) = %v; want success", c.in, err)
			case !wantOK && err == nil:
				t.Fatalf("Decode(%q) accepted it; want an error\n%s", c.in, decodertest.Dump(&r))
			case wantOK:
				got, path = decodertest.Dump(&r)+"\n", base+".golden"
			default:
				got, path = err.Error()+"\n", base+".err"
			}
			if *update {
				if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run go test -update to create it)", err)
			}
			if got != string(want) {
				t.Errorf("Decode(%q):\n got %s\nwant %s", c.in, got, want)
			}
		})
	}
}

func TestRFC5424Conformance(t *testing.T) {
	var good, bad [][]byte
	for _, c := range rfc5424Files(t) {
		if strings.HasPrefix(c.name, "ok_") {
			good = append(good, c.in)
		} else {
			bad = append(bad, c.in)
		}
	}
	decodertest.Run(t, &decoder.RFC5424{}, good, bad)
}

func TestRFC5424Registered(t *testing.T) {
	dec, err := decoder.New("rfc5424", config.Empty().Inputs[0])
	if err != nil {
		t.Fatalf("decoder.New(rfc5424) = %v", err)
	}
	var r flowgo.Record
	r.Reset()
	if err := dec.Decode([]byte("<13>1 - h a p m - x"), &r, new(flowgo.Arena)); err != nil || r.Msg != "x" {
		t.Errorf("registered decoder: Decode = %v, Msg %q; want nil, \"x\"", err, r.Msg)
	}
}

// sd builds structured data for the table: an element is an ID followed by
// name, value pairs.
func sd(elems ...[]string) []flowgo.SDElement {
	var out []flowgo.SDElement
	for _, e := range elems {
		el := flowgo.SDElement{ID: e[0]}
		for i := 1; i+1 < len(e); i += 2 {
			el.Params = append(el.Params, flowgo.Param{Name: e[i], Value: flowgo.StringValue(e[i+1])})
		}
		out = append(out, el)
	}
	return out
}

func TestRFC5424Decode(t *testing.T) {
	rfcTime := time.Date(2003, 10, 11, 22, 14, 15, 3e6, time.UTC)
	tests := []struct {
		name string
		in   string
		want flowgo.Record
	}{
		{
			name: "the RFC's example with structured data keeps the element and drops the BOM from Msg only",
			in:   `<165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog - ID47 [exampleSDID@32473 iut="3" eventSource="Application" eventID="1011"] ` + bom + "An application event log entry...",
			want: flowgo.Record{
				Time: rfcTime, Hostname: "mymachine.example.com", AppName: "evntslog", MsgID: "ID47",
				Msg:      "An application event log entry...",
				FullMsg:  `<165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog - ID47 [exampleSDID@32473 iut="3" eventSource="Application" eventID="1011"] ` + bom + "An application event log entry...",
				Facility: 20, Severity: 5,
				SD: sd([]string{"exampleSDID@32473", "iut", "3", "eventSource", "Application", "eventID", "1011"}),
			},
		},
		{
			name: "NILVALUE everywhere leaves the fields absent and takes the receive time",
			in:   "<0>1 - - - - - -",
			want: flowgo.Record{Time: rfc5424ReceiveTime, FullMsg: "<0>1 - - - - - -", Facility: 0, Severity: 0},
		},
		{
			name: "SD elements keep their order, empty elements and repeated param names",
			in:   `<13>1 - h a p m [a][b x="1" x="2"][c y=""]`,
			want: flowgo.Record{
				Time: rfc5424ReceiveTime, Hostname: "h", AppName: "a", ProcID: "p", MsgID: "m",
				FullMsg:  `<13>1 - h a p m [a][b x="1" x="2"][c y=""]`,
				Facility: 1, Severity: 5,
				SD: sd([]string{"a"}, []string{"b", "x", "1", "x", "2"}, []string{"c", "y", ""}),
			},
		},
		{
			name: "escaped quote, backslash and bracket are unescaped and other backslashes stay",
			in:   `<13>1 - h a p m [e q="\"x\"" b="\\" c="\]" o="C:\temp\n"] m`,
			want: flowgo.Record{
				Time: rfc5424ReceiveTime, Hostname: "h", AppName: "a", ProcID: "p", MsgID: "m", Msg: "m",
				FullMsg:  `<13>1 - h a p m [e q="\"x\"" b="\\" c="\]" o="C:\temp\n"] m`,
				Facility: 1, Severity: 5,
				SD: sd([]string{"e", "q", `"x"`, "b", `\`, "c", "]", "o", `C:\temp\n`}),
			},
		},
		{
			name: "a numeric offset is applied and the fraction kept to the microsecond",
			in:   "<165>1 2003-08-24T05:14:15.000003-07:00 192.0.2.1 myproc 8710 - - %% It's time to make the do-nuts.",
			want: flowgo.Record{
				Time:     time.Date(2003, 8, 24, 12, 14, 15, 3000, time.UTC),
				Hostname: "192.0.2.1", AppName: "myproc", ProcID: "8710", Msg: "%% It's time to make the do-nuts.",
				FullMsg:  "<165>1 2003-08-24T05:14:15.000003-07:00 192.0.2.1 myproc 8710 - - %% It's time to make the do-nuts.",
				Facility: 20, Severity: 5,
			},
		},
		{
			name: "trailing CR, LF and spaces leave Msg and FullMsg, leading spaces of MSG stay",
			in:   "<13>1 - h a p m -   indented \r\n",
			want: flowgo.Record{
				Time: rfc5424ReceiveTime, Hostname: "h", AppName: "a", ProcID: "p", MsgID: "m",
				Msg: "  indented", FullMsg: "<13>1 - h a p m -   indented", Facility: 1, Severity: 5,
			},
		},
		{
			name: "an SD-only message ending in a newline is valid and has no Msg",
			in:   "<13>1 - h a p m [x@1 k=\"v\"]\n",
			want: flowgo.Record{
				Time: rfc5424ReceiveTime, Hostname: "h", AppName: "a", ProcID: "p", MsgID: "m",
				FullMsg: `<13>1 - h a p m [x@1 k="v"]`, Facility: 1, Severity: 5,
				SD: sd([]string{"x@1", "k", "v"}),
			},
		},
		{
			name: "a MSG without BOM may hold any octets",
			in:   "<13>1 - h a p m - caf\xe9",
			want: flowgo.Record{
				Time: rfc5424ReceiveTime, Hostname: "h", AppName: "a", ProcID: "p", MsgID: "m",
				Msg: "caf\xe9", FullMsg: "<13>1 - h a p m - caf\xe9", Facility: 1, Severity: 5,
			},
		},
		{
			name: "only the first BOM is removed from MSG",
			in:   "<13>1 - h a p m - " + bom + bom + "x",
			want: flowgo.Record{
				Time: rfc5424ReceiveTime, Hostname: "h", AppName: "a", ProcID: "p", MsgID: "m",
				Msg: bom + "x", FullMsg: "<13>1 - h a p m - " + bom + bom + "x", Facility: 1, Severity: 5,
			},
		},
		{
			name: "year 0000 with a positive offset lands in year -1 UTC",
			in:   "<13>1 0000-01-01T00:00:00+01:00 h a p m -",
			want: flowgo.Record{
				Time:     time.Date(-1, 12, 31, 23, 0, 0, 0, time.UTC),
				Hostname: "h", AppName: "a", ProcID: "p", MsgID: "m",
				FullMsg: "<13>1 0000-01-01T00:00:00+01:00 h a p m -", Facility: 1, Severity: 5,
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := decode5424([]byte(tt.in))
			if err != nil {
				t.Fatalf("Decode(%q) = %v; want success", tt.in, err)
			}
			if !got.Equal(&tt.want) {
				t.Errorf("Decode(%q):\n got %s\nwant %s", tt.in, decodertest.Dump(&got), decodertest.Dump(&tt.want))
			}
			if got.Time.Location() != time.UTC {
				t.Errorf("Decode(%q).Time location = %v; want UTC", tt.in, got.Time.Location())
			}
		})
	}
}

func TestRFC5424Errors(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want string
	}{
		{"a frame of white space is empty", " \t\r\n", "rfc5424: empty frame"},
		{"a line without PRI is rejected at column 1", "hello", "rfc5424: want '<' to open the priority [col 1]"},
		{"a PRI above 191 is rejected at its first digit", "<192>1 - - - - - -", "rfc5424: priority value 192 out of range 0-191 [col 2]"},
		{"a PRI with a leading zero is rejected", "<01>1 - - - - - -", "rfc5424: priority value with a leading zero [col 2]"},
		{"a PRI of four digits misses its '>'", "<1234>1 - - - - - -", "rfc5424: want '>' to close the priority [col 5]"},
		{"version 2 is unsupported", "<13>2 - - - - - -", "rfc5424: unsupported version 2: want 1 [col 5]"},
		{"an RFC 3164 line has no version", "<13>Oct 11 22:14:15 host su: hi", "rfc5424: want version 1 after the priority [col 5]"},
		{"a leap second is rejected at the seconds", "<13>1 2016-12-31T23:59:60Z h a p m -", "rfc5424: bad second: want 00-59 [col 24]"},
		{"February 30th is rejected at the day", "<13>1 2024-02-30T00:00:00Z h a p m -", "rfc5424: bad day of month: want 01-29 [col 15]"},
		{"ten fraction digits are too many", "<13>1 2024-01-01T00:00:00.1234567890Z h a p m -", "rfc5424: more than 9 fraction digits in the timestamp [col 36]"},
		{"an x between date and time is rejected", "<13>1 2024-01-01x00:00:00Z h a p m -", "rfc5424: want 'T' between date and time, not 'x' [col 17]"},
		{"a timestamp without offset is rejected", "<13>1 2024-01-01T00:00:00 h a p m -", "rfc5424: want 'Z' or a ±hh:mm offset after the time, not ' ' [col 26]"},
		{"a hostname of 256 characters is too long", "<13>1 - " + strings.Repeat("h", 256) + " a p m -", "rfc5424: hostname longer than 255 characters [col 264]"},
		{"an APP-NAME of 49 characters is too long", "<13>1 - h " + strings.Repeat("a", 49) + " p m -", "rfc5424: app-name longer than 48 characters [col 59]"},
		{"a PROCID of 129 characters is too long", "<13>1 - h a " + strings.Repeat("p", 129) + " m -", "rfc5424: procid longer than 128 characters [col 141]"},
		{"a MSGID of 33 characters is too long", "<13>1 - h a p " + strings.Repeat("m", 33) + " -", "rfc5424: msgid longer than 32 characters [col 47]"},
		{"a non-ASCII hostname is rejected at its first bad byte", "<13>1 - hôst a p m -", "rfc5424: bad hostname: want printable US-ASCII or '-', not byte 0xC3 [col 10]"},
		{"two spaces make an empty field", "<13>1 - h  p m -", "rfc5424: empty app-name: want 1-48 characters or '-' [col 11]"},
		{"a line that ends after the MSGID has no structured data", "<13>1 - h a p m", "rfc5424: line ends after the msgid [col 16]"},
		{"structured data must start with '[' or be '-'", "<13>1 - h a p m x", "rfc5424: want '-' or '[' to start the structured data [col 17]"},
		{"an empty SD element is rejected", "<13>1 - h a p m []", "rfc5424: want an SD-ID (printable US-ASCII except '=', ']', '\"'), not ']' [col 18]"},
		{"an unterminated SD element is rejected at the end of the line", "<13>1 - h a p m [a", "rfc5424: line ends inside an SD element [col 19]"},
		{"an unterminated param value is rejected at the end of the line", `<13>1 - h a p m [a x="1`, "rfc5424: line ends inside a param value [col 24]"},
		{"a duplicate SD-ID is rejected at the second one", `<13>1 - h a p m [a][b][a]`, `rfc5424: duplicate SD-ID "a" [col 24]`},
		{"an unescaped ']' in a value is rejected", `<13>1 - h a p m [a x="1]"]`, `rfc5424: unescaped ']' in a param value: want \] [col 24]`},
		{"a param value that is not UTF-8 is rejected", "<13>1 - h a p m [a x=\"\xff\"]", "rfc5424: invalid UTF-8 in a param value [col 23]"},
		{"a space before ']' is rejected", `<13>1 - h a p m [a x="1" ]`, "rfc5424: want a param name (printable US-ASCII except '=', ']', '\"'), not ']' [col 26]"},
		{"an SD-ID longer than 32 characters is rejected", "<13>1 - h a p m [" + strings.Repeat("i", 33) + "]", "rfc5424: SD-ID longer than 32 characters [col 50]"},
		{"MSG must be separated from SD by a space", "<13>1 - h a p m [a]x", "rfc5424: want '[' or ' ' after an SD element [col 20]"},
		{"MSG must be separated from a NILVALUE SD by a space", "<13>1 - h a p m -x", "rfc5424: want ' ' after the structured data [col 18]"},
		{"invalid UTF-8 after a BOM is rejected at the bad byte", "<13>1 - h a p m - " + bom + "ab\xffc", "rfc5424: invalid UTF-8 in a message that starts with a BOM [col 24]"},
		{"a BOM before the PRI is not skipped", bom + "<13>1 - h a p m -", "rfc5424: want '<' to open the priority [col 1]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := decode5424([]byte(tt.in))
			if err == nil {
				t.Fatalf("Decode(%q) = nil; want %s", tt.in, tt.want)
			}
			var de *decoder.Error
			if !errors.As(err, &de) {
				t.Fatalf("Decode(%q) error is %T; want *decoder.Error", tt.in, err)
			}
			if err.Error() != tt.want {
				t.Errorf("Decode(%q) = %s; want %s", tt.in, err, tt.want)
			}
		})
	}
}

// TestRFC5424TimestampsMatchTimeParse checks the hand-written timestamp
// arithmetic against time.Parse on many dates, valid and not, with every
// offset form and fraction length.
func TestRFC5424TimestampsMatchTimeParse(t *testing.T) {
	rng := rand.New(rand.NewPCG(5424, 3339))
	pick := func(lo, hi int) int { return lo + rng.IntN(hi-lo+1) }
	for range 20000 {
		year := pick(0, 9999)
		if rng.IntN(4) == 0 {
			year = []int{0, 1, 4, 100, 400, 1600, 1900, 1969, 1970, 2000, 2100, 9999}[rng.IntN(12)]
		}
		month, day := pick(0, 13), pick(0, 32)
		hour, minute, second := pick(0, 24), pick(0, 60), pick(0, 60)
		ts := fmt.Sprintf("%04d-%02d-%02dT%02d:%02d:%02d", year, month, day, hour, minute, second)
		if n := rng.IntN(7); n > 0 {
			ts += "." + fmt.Sprintf("%09d", rng.IntN(1e9))[:n]
		}
		switch rng.IntN(3) {
		case 0:
			ts += "Z"
		default:
			ts += fmt.Sprintf("%c%02d:%02d", "+-"[rng.IntN(2)], pick(0, 23), pick(0, 59))
		}
		want, perr := time.Parse("2006-01-02T15:04:05.999999999Z07:00", ts)
		if perr == nil && second == 60 {
			perr = errors.New("leap second") // RFC 5424 §6.2.3 forbids them; time.Parse does not
		}
		got, err := decode5424([]byte("<13>1 " + ts + " h a p m -"))
		switch {
		case perr != nil && err == nil:
			t.Errorf("timestamp %s: accepted as %v; time.Parse says %v", ts, got.Time, perr)
		case perr == nil && err != nil:
			t.Errorf("timestamp %s: %v; time.Parse gives %v", ts, err, want)
		case perr == nil && !got.Time.Equal(want):
			t.Errorf("timestamp %s = %v; want %v", ts, got.Time, want)
		}
	}
}

func TestRFC5424ReceiveTimeIsNow(t *testing.T) {
	before := time.Now()
	var r flowgo.Record
	r.Reset()
	if err := (&decoder.RFC5424{}).Decode([]byte("<13>1 - h a p m -"), &r, new(flowgo.Arena)); err != nil {
		t.Fatal(err)
	}
	after := time.Now()
	if r.Time.Before(before.Truncate(0)) || r.Time.After(after) || r.Time.Location() != time.UTC {
		t.Errorf("NILVALUE timestamp decoded as %v; want a UTC time between %v and %v", r.Time, before, after)
	}
}

// TestRFC5424ManyElements goes past the stack buffers (16 params, 8
// elements) and the linear duplicate check (32 elements).
func TestRFC5424ManyElements(t *testing.T) {
	var line strings.Builder
	line.WriteString("<13>1 - h a p m ")
	const elems = 5000
	for k := range elems {
		fmt.Fprintf(&line, `[e%d x="%d" y="%d"]`, k, k, -k)
	}
	r, err := decode5424([]byte(line.String() + " msg"))
	if err != nil {
		t.Fatalf("Decode(%d elements) = %v", elems, err)
	}
	if len(r.SD) != elems || r.Msg != "msg" {
		t.Fatalf("Decode(%d elements) gave %d elements, Msg %q", elems, len(r.SD), r.Msg)
	}
	for k, e := range r.SD {
		if want := fmt.Sprint("e", k); e.ID != want || len(e.Params) != 2 || e.Params[0].Value.Str != fmt.Sprint(k) || e.Params[1].Value.Str != fmt.Sprint(-k) {
			t.Fatalf("element %d = %+v; want ID %s with x=%d y=%d", k, e, want, k, -k)
		}
	}
	for _, dup := range []int{0, 7, 31, 32, 4999} {
		in := line.String() + fmt.Sprintf("[e%d]", dup)
		if _, err := decode5424([]byte(in)); err == nil || !strings.Contains(err.Error(), fmt.Sprintf(`duplicate SD-ID "e%d"`, dup)) {
			t.Errorf("Decode(%d elements + a repeat of e%d) = %v; want a duplicate SD-ID error", elems, dup, err)
		}
	}
}

// TestRFC5424ConcurrentDecode runs one decoder from several goroutines,
// each with its own arena, as the inputs do; -race checks it shares nothing.
func TestRFC5424ConcurrentDecode(t *testing.T) {
	dec := &decoder.RFC5424{}
	in := rfc5424BenchCases[0].in
	want, err := decode5424(in)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			var a flowgo.Arena
			for range 200 {
				var r flowgo.Record
				r.Reset()
				if err := dec.Decode(in, &r, &a); err != nil || !r.Equal(&want) {
					t.Errorf("concurrent Decode(%q) = %v\n%s", in, err, decodertest.Dump(&r))
					return
				}
			}
		})
	}
	wg.Wait()
}

// TestRFC5424DecodeDoesNotAllocate holds the decoder to its speed budget:
// with an arena that is reset as a batch would reset it, decoding costs no
// heap allocation.
func TestRFC5424DecodeDoesNotAllocate(t *testing.T) {
	for _, c := range rfc5424BenchCases {
		if !strings.HasPrefix(c.name, "ok/") {
			continue
		}
		var (
			a   flowgo.Arena
			r   flowgo.Record
			dec = &decoder.RFC5424{}
		)
		allocs := testing.AllocsPerRun(200, func() {
			a.Reset()
			r.Reset()
			if err := dec.Decode(c.in, &r, &a); err != nil {
				t.Fatal(err)
			}
		})
		if allocs != 0 {
			t.Errorf("%s: Decode costs %.1f allocations; want 0", c.name, allocs)
		}
	}
}

// rfc5424Line writes r back as a canonical RFC 5424 line: the inverse of
// the decoder for every field but FullMsg. A time whose UTC year does not
// fit in four digits is written with the offset that brings it back.
func rfc5424Line(r *flowgo.Record) []byte {
	b := fmt.Appendf(nil, "<%d>1 ", int(r.Facility)<<3|int(r.Severity))
	tm := r.Time.UTC()
	const maxOffset = 23*3600 + 59*60
	if tm.Year() < 0 {
		tm = tm.In(time.FixedZone("", maxOffset))
	} else if tm.Year() > 9999 {
		tm = tm.In(time.FixedZone("", -maxOffset))
	}
	b = tm.AppendFormat(b, "2006-01-02T15:04:05.999999999Z07:00")
	for _, f := range []string{r.Hostname, r.AppName, r.ProcID, r.MsgID} {
		if f == "" {
			f = "-"
		}
		b = append(append(b, ' '), f...)
	}
	b = append(b, ' ')
	if len(r.SD) == 0 {
		b = append(b, '-')
	}
	for _, e := range r.SD {
		b = append(append(b, '['), e.ID...)
		for _, p := range e.Params {
			b = append(append(append(b, ' '), p.Name...), '=', '"')
			for i := 0; i < len(p.Value.Str); i++ {
				if c := p.Value.Str[i]; c == '"' || c == '\\' || c == ']' {
					b = append(b, '\\')
				}
				b = append(b, p.Value.Str[i])
			}
			b = append(b, '"')
		}
		b = append(b, ']')
	}
	if r.Msg != "" {
		b = append(b, ' ')
		if strings.HasPrefix(r.Msg, bom) {
			// The decoder removes one BOM; a Msg that starts with one had two.
			b = append(b, bom...)
		}
		b = append(b, r.Msg...)
	}
	return b
}

const rfc5424Blanks = " \t\r\n\v\f"

func isPrintUSASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 33 || s[i] > 126 {
			return false
		}
	}
	return true
}

func isSDName(s string) bool {
	return s != "" && len(s) <= 32 && isPrintUSASCII(s) && !strings.ContainsAny(s, `="]`)
}

// checkRFC5424Accepted checks what must hold for any record the decoder
// accepts from in: the grammar's limits, FullMsg, and a lossless round trip
// through rfc5424Line.
func checkRFC5424Accepted(t *testing.T, in []byte, r *flowgo.Record) {
	t.Helper()
	if want := string(bytes.TrimRight(in, rfc5424Blanks)); r.FullMsg != want {
		t.Errorf("Decode(%q).FullMsg = %q; want %q", in, r.FullMsg, want)
	}
	if !strings.HasSuffix(r.FullMsg, r.Msg) {
		t.Errorf("Decode(%q).Msg = %q is not the end of the line", in, r.Msg)
	}
	if r.Facility > 23 || r.Severity > 7 {
		t.Errorf("Decode(%q): facility %d, severity %d out of range", in, r.Facility, r.Severity)
	}
	for _, f := range []struct {
		name, v string
		max     int
	}{{"hostname", r.Hostname, 255}, {"app-name", r.AppName, 48}, {"procid", r.ProcID, 128}, {"msgid", r.MsgID, 32}} {
		if len(f.v) > f.max || !isPrintUSASCII(f.v) || f.v == "-" {
			t.Errorf("Decode(%q).%s = %q breaks the RFC's rules", in, f.name, f.v)
		}
	}
	seen := map[string]bool{}
	for _, e := range r.SD {
		if !isSDName(e.ID) || seen[e.ID] {
			t.Errorf("Decode(%q): SD-ID %q is invalid or repeated", in, e.ID)
		}
		seen[e.ID] = true
		for _, p := range e.Params {
			if !isSDName(p.Name) || p.Value.Kind != flowgo.KindString || !utf8.ValidString(p.Value.Str) {
				t.Errorf("Decode(%q): param %q = %q breaks the RFC's rules", in, p.Name, p.Value.Str)
			}
		}
	}
	line := rfc5424Line(r)
	again, err := decode5424(line)
	if err != nil {
		t.Fatalf("Decode(%q) gave a record that does not round-trip: Decode(%q) = %v", in, line, err)
	}
	again.FullMsg = r.FullMsg
	if !again.Equal(r) {
		t.Errorf("Decode(%q) does not round-trip through %q:\n got %s\nwant %s", in, line, decodertest.Dump(&again), decodertest.Dump(r))
	}
}

// FuzzDecodeRFC5424 checks that no input makes the decoder panic, that
// errors are *decoder.Error with a column inside the line, and that every
// accepted record keeps the grammar's rules, does not keep the frame, and
// survives a round trip.
func FuzzDecodeRFC5424(f *testing.F) {
	for _, c := range rfc5424Files(f) {
		f.Add(c.in)
	}
	for _, c := range rfc5424BenchCases {
		f.Add(c.in)
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		frame := bytes.Clone(in)
		r, err := decode5424(frame)
		if err != nil {
			var de *decoder.Error
			if !errors.As(err, &de) || de.Format != "rfc5424" {
				t.Fatalf("Decode(%q) error %T %v; want a *decoder.Error for rfc5424", in, err, err)
			}
			if de.Col < 0 || de.Col > len(in)+1 || (de.Col == 0) != (len(bytes.TrimRight(in, rfc5424Blanks)) == 0) {
				t.Fatalf("Decode(%q) error column %d outside the line of %d bytes", in, de.Col, len(in))
			}
			return
		}
		snapshot := r.Clone()
		for i := range frame {
			frame[i] = 'X'
		}
		if !r.Equal(&snapshot) {
			t.Fatalf("Decode(%q): the record changed when the frame was overwritten", in)
		}
		checkRFC5424Accepted(t, in, &r)
	})
}
