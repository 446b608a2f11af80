// Round trips through the real decoders: decode(encode(r)) keeps what the
// format can carry.

package encoder

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/flowgo/flowgo"
	"github.com/flowgo/flowgo/config"
	"github.com/flowgo/flowgo/decoder"
	"github.com/flowgo/flowgo/decoder/decodertest"
)

// mustDecoder returns the decoder registered as name, failing the test
// (not skipping it) when there is none.
func mustDecoder(t *testing.T, name string) decoder.Decoder {
	t.Helper()
	d, err := decoder.New(name, config.Empty().Inputs[0])
	if err != nil {
		t.Fatalf("the round trip needs the %s decoder: %v", name, err)
	}
	return d
}

// decode decodes frame into a record that owns its memory.
func decode(t *testing.T, d decoder.Decoder, frame []byte) flowgo.Record {
	t.Helper()
	var r flowgo.Record
	r.Reset()
	if err := d.Decode(frame, &r, new(flowgo.Arena)); err != nil {
		t.Fatalf("Decode(%q) = %v", frame, err)
	}
	return r.Clone()
}

func encode(t *testing.T, e Encoder, r *flowgo.Record) []byte {
	t.Helper()
	out, err := e.Encode(nil, r)
	if err != nil {
		t.Fatalf("Encode = %v", err)
	}
	return out
}

// params returns the params of r as "name=kind:value" strings, sorted, for
// comparisons that ignore element boundaries and order.
func params(r *flowgo.Record) []string {
	var out []string
	for _, e := range r.SD {
		for _, p := range e.Params {
			out = append(out, fmt.Sprintf("%s=%s:%s", p.Name, p.Value.Kind, appendTextValue(nil, p.Value)))
		}
	}
	slices.Sort(out)
	return out
}

// stringParams returns the params of r with every value as text, for
// formats (LTSV) that carry only strings.
func stringParams(r *flowgo.Record) map[string]string {
	out := map[string]string{}
	for _, e := range r.SD {
		for _, p := range e.Params {
			out[p.Name] = string(appendTextValue(nil, p.Value))
		}
	}
	return out
}

var rfc5424Lines = []string{
	line5424,
	`<165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog - ID47 [exampleSDID@32473 iut="3" eventSource="Application" eventID="1011"][examplePriority@32473 class="high"] An application event log entry`,
	`<34>1 2003-10-11T22:14:15.003Z mymachine.example.com su - ID47 - 'su root' failed for lonvick on /dev/pts/8`,
	`<13>1 2015-08-05T15:53:45Z host app - - [a@1 x="y"]`,
	`<13>1 2015-08-05T15:53:45.123456Z host app 1 m [x@1 v="a\]b\\c\"d" w="ünïcode"] message with "quotes"`,
	`<191>1 2015-08-05T15:53:45+02:00 - - - - [id@1] -`,
	benchLine,
}

// TestRoundTripRFC5424 checks decode, encode, decode: every field RFC 5424
// carries comes back, the raw line aside.
func TestRoundTripRFC5424(t *testing.T) {
	d, e := mustDecoder(t, "rfc5424"), newTestEncoder(t, "rfc5424", "")
	for _, line := range rfc5424Lines {
		r1 := decode(t, d, []byte(line))
		out := encode(t, e, &r1)
		r2 := decode(t, d, out)
		r2.FullMsg = r1.FullMsg
		if !r2.Equal(&r1) {
			t.Errorf("%s\nencoded %s\n got %s\nwant %s", line, out, decodertest.Dump(&r2), decodertest.Dump(&r1))
		}
	}
}

// TestRoundTripGELF checks GELF decode, encode, decode: the fields and the
// typed values come back, and encoding again gives the same bytes.
func TestRoundTripGELF(t *testing.T) {
	d, e := mustDecoder(t, "gelf"), newTestEncoder(t, "gelf", "")
	lines := []string{
		`{"version":"1.1","host":"example.org","short_message":"A short message","full_message":"Backtrace here\n\nmore stuff","timestamp":1385053862.3072,"level":1,"_user_id":9001,"_some_info":"foo","_some_env_var":"bar"}`,
		`{"version":"1.1","host":"h","short_message":"m","timestamp":1438790025.637824,"_b":true,"_f":1.5,"_g":3.0,"_n":null,"_neg":-5,"_big":18446744073709551615}`,
		`{"host":"h","short_message":"ünïcode \u2028 \"quoted\"","timestamp":1438790025,"_a.b-c":"dots and dashes"}`,
	}
	for _, line := range lines {
		r1 := decode(t, d, []byte(line))
		out := encode(t, e, &r1)
		r2 := decode(t, d, out)
		if r2.Hostname != r1.Hostname || r2.Msg != r1.Msg || r2.FullMsg != r1.FullMsg || r2.Severity != r1.Severity {
			t.Errorf("%s\nencoded %s\n got %s\nwant %s", line, out, decodertest.Dump(&r2), decodertest.Dump(&r1))
		}
		if !r2.Time.Equal(r1.Time.Truncate(time.Microsecond)) {
			t.Errorf("%s: time %s came back as %s", line, r1.Time.Format(time.RFC3339Nano), r2.Time.Format(time.RFC3339Nano))
		}
		if p1, p2 := params(&r1), params(&r2); !slices.Equal(p1, p2) {
			t.Errorf("%s\nencoded %s\nparams %q\n  want %q", line, out, p2, p1)
		}
		if again := encode(t, e, &r2); string(again) != string(out) {
			t.Errorf("%s: encoding the decoded output again gives\n%s\nnot\n%s", line, again, out)
		}
	}
}

// TestRoundTripRFC5424ToGELF checks that a syslog record keeps its fields
// through GELF, and that GELF is then a fixed point.
func TestRoundTripRFC5424ToGELF(t *testing.T) {
	d5424, dgelf, e := mustDecoder(t, "rfc5424"), mustDecoder(t, "gelf"), newTestEncoder(t, "gelf", "")
	for _, line := range rfc5424Lines {
		r1 := decode(t, d5424, []byte(line))
		out := encode(t, e, &r1)
		r2 := decode(t, dgelf, out)
		wantHost := r1.Hostname
		if wantHost == "" {
			wantHost = "unknown"
		}
		wantMsg := r1.Msg
		if wantMsg == "" {
			wantMsg = "-"
		}
		if r2.Hostname != wantHost || r2.Msg != wantMsg || r2.FullMsg != r1.FullMsg || r2.Severity != r1.Severity ||
			!r2.Time.Equal(r1.Time.Truncate(time.Microsecond)) {
			t.Errorf("%s\nencoded %s\n got %s", line, out, decodertest.Dump(&r2))
		}
		got := stringParams(&r2)
		for _, e := range r1.SD {
			for _, p := range e.Params {
				// Several elements may share a param name; the last one is kept.
				if v, ok := got[p.Name]; !ok {
					t.Errorf("%s: param %q lost in %s", line, p.Name, out)
				} else if last := lastValue(&r1, p.Name); v != last {
					t.Errorf("%s: param %q = %q; want %q", line, p.Name, v, last)
				}
			}
		}
		out2 := encode(t, e, &r2)
		r3 := decode(t, dgelf, out2)
		if out3 := encode(t, e, &r3); string(out3) != string(out2) {
			t.Errorf("%s: GELF is not a fixed point:\n%s\n%s", line, out2, out3)
		}
	}
}

func lastValue(r *flowgo.Record, name string) string {
	var v string
	for _, e := range r.SD {
		for _, p := range e.Params {
			if p.Name == name {
				v = string(appendTextValue(nil, p.Value))
			}
		}
	}
	return v
}

// TestRoundTripLTSV checks RFC 5424 and LTSV records through LTSV.
func TestRoundTripLTSV(t *testing.T) {
	d5424, dltsv, e := mustDecoder(t, "rfc5424"), mustDecoder(t, "ltsv"), newTestEncoder(t, "ltsv", "")
	var records []flowgo.Record
	for _, line := range rfc5424Lines {
		records = append(records, decode(t, d5424, []byte(line)))
	}
	records = append(records, decode(t, dltsv, []byte("host:192.0.2.1\ttime:1438790025.5\tmessage:GET /\tlevel:6\tua:curl/8.5.0\tstatus:200")))
	for _, r1 := range records {
		out := encode(t, e, &r1)
		r2 := decode(t, dltsv, out)
		wantHost := r1.Hostname
		if wantHost == "" {
			wantHost = "-" // LTSV readers refuse an empty host
		}
		if r2.Hostname != wantHost || r2.Msg != r1.Msg || r2.Severity != r1.Severity || !r2.Time.Equal(r1.Time.Truncate(time.Microsecond)) {
			t.Errorf("encoded %s\n got %s\nwant %s", out, decodertest.Dump(&r2), decodertest.Dump(&r1))
		}
		got := stringParams(&r2)
		for _, e := range r1.SD {
			for _, p := range e.Params {
				if v := got[p.Name]; v != lastValue(&r1, p.Name) {
					t.Errorf("encoded %s: param %q = %q; want %q", out, p.Name, v, lastValue(&r1, p.Name))
				}
			}
		}
	}
}

// TestRoundTripRFC3164 checks that an RFC 3164 line keeps host, TAG,
// priority, time (to the second) and message. The time is recent because
// RFC 3164 has no year and the decoder infers it.
func TestRoundTripRFC3164(t *testing.T) {
	d, e := mustDecoder(t, "rfc3164"), newTestEncoder(t, "rfc3164", "")
	now := time.Now().UTC().Add(-time.Hour).Truncate(time.Second)
	for _, r1 := range []flowgo.Record{
		record(func(r *flowgo.Record) {
			r.Time, r.Hostname, r.AppName, r.ProcID, r.Msg, r.Facility, r.Severity = now, "host", "sshd", "42", "Accepted publickey", 4, 6
		}),
		record(func(r *flowgo.Record) {
			r.Time, r.Hostname, r.AppName, r.Msg, r.Facility, r.Severity = now, "host", "kernel", "eth0: link up", 0, 5
		}),
	} {
		out := encode(t, e, &r1)
		r2 := decode(t, d, out)
		r2.FullMsg = ""
		if !r2.Equal(&r1) {
			t.Errorf("encoded %s\n got %s\nwant %s", out, decodertest.Dump(&r2), decodertest.Dump(&r1))
		}
	}
}

// TestRoundTripPassthrough checks that the raw line goes through unchanged.
func TestRoundTripPassthrough(t *testing.T) {
	d, e := mustDecoder(t, "rfc5424"), newTestEncoder(t, "passthrough", "")
	for _, line := range rfc5424Lines {
		r := decode(t, d, []byte(line))
		if out := encode(t, e, &r); string(out) != line {
			t.Errorf("passthrough of %s = %s", line, out)
		}
	}
}

// TestEncodedOutputDecodes checks the promise that every encoder output
// parses again with the decoder of its format, for every test case.
func TestEncodedOutputDecodes(t *testing.T) {
	for _, format := range []string{"rfc5424", "rfc3164", "gelf", "ltsv"} {
		d, e := mustDecoder(t, format), newTestEncoder(t, format, "")
		for _, c := range testCases {
			out := encode(t, e, &c.r)
			var r flowgo.Record
			r.Reset()
			if err := d.Decode(out, &r, new(flowgo.Arena)); err != nil {
				t.Errorf("%s %s: the %s decoder rejects %q: %v", format, c.name, format, out, err)
			}
		}
	}
}

// firstSDParam returns the first SD-ID of r, and the name and string value
// of its first param ("" for what r lacks): the fuzz targets' seeds.
func firstSDParam(r *flowgo.Record) (id, name, val string) {
	if len(r.SD) > 0 {
		id = r.SD[0].ID
		if len(r.SD[0].Params) > 0 {
			name, val = r.SD[0].Params[0].Name, r.SD[0].Params[0].Value.Str
		}
	}
	return id, name, val
}

// FuzzEncodedOutputDecodes builds records from fuzzed strings and checks
// that the output of every encoder parses again with its format's decoder.
func FuzzEncodedOutputDecodes(f *testing.F) {
	for _, c := range testCases {
		r := c.r
		id, name, val := firstSDParam(&r)
		f.Add(r.Hostname, r.AppName, r.ProcID, r.MsgID, r.Msg, r.FullMsg, id, name, val, r.Facility, r.Severity, r.Time.Unix())
	}
	type pair struct {
		name string
		d    decoder.Decoder
		e    Encoder
	}
	var pairs []pair
	for _, format := range []string{"rfc5424", "rfc3164", "gelf", "ltsv"} {
		d, err := decoder.New(format, config.Empty().Inputs[0])
		if err != nil {
			f.Fatalf("the round trip needs the %s decoder: %v", format, err)
		}
		pairs = append(pairs, pair{format, d, newTestEncoder(f, format, "")})
	}
	f.Fuzz(func(t *testing.T, host, app, proc, msgid, msg, full, id, name, val string, fac, sev uint8, sec int64) {
		r := flowgo.Record{Hostname: host, AppName: app, ProcID: proc, MsgID: msgid, Msg: msg, FullMsg: full, Facility: fac, Severity: sev,
			SD: []flowgo.SDElement{{ID: id, Params: []flowgo.Param{str(name, val)}}, {Params: []flowgo.Param{str(val, name)}}}}
		if sec > -1e13 && sec < 1e13 {
			r.Time = time.Unix(sec, sec%1e9)
		}
		for _, p := range pairs {
			out, err := p.e.Encode(nil, &r)
			if err != nil {
				t.Fatal(err)
			}
			var back flowgo.Record
			back.Reset()
			if err := p.d.Decode(out, &back, new(flowgo.Arena)); err != nil {
				t.Errorf("the %s decoder rejects %q: %v", p.name, out, err)
			}
		}
	})
}
