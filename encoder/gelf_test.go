package encoder

import (
	"encoding/json"
	"fmt"
	"math"
	"math/big"
	"math/bits"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/flowgo/flowgo"
	"github.com/flowgo/flowgo/config"
	"github.com/flowgo/flowgo/encoder/encodertest"
)

func TestGELFConformance(t *testing.T) {
	for _, toml := range []string{"", goldenVariants[0].toml} {
		encodertest.Run(t, newTestEncoder(t, "gelf", toml), testRecords(), encodertest.ValidGELF)
	}
}

func TestJSONIsGELF(t *testing.T) {
	g, j := newTestEncoder(t, "gelf", ""), newTestEncoder(t, "json", "")
	for _, c := range testCases {
		a, _ := g.Encode(nil, &c.r)
		b, _ := j.Encode(nil, &c.r)
		if string(a) != string(b) {
			t.Errorf("%s: json = %s; want the gelf output %s", c.name, b, a)
		}
	}
}

// gelfField encodes r and returns the raw JSON text of key.
func gelfField(t *testing.T, e Encoder, r *flowgo.Record, key string) string {
	t.Helper()
	out, _ := e.Encode(nil, r)
	var m map[string]json.RawMessage
	if err := json.Unmarshal(out, &m); err != nil {
		t.Fatalf("%s: %v", out, err)
	}
	v, ok := m[key]
	if !ok {
		return "<absent>"
	}
	return string(v)
}

func TestGELFTimestamp(t *testing.T) {
	e := newTestEncoder(t, "gelf", "")
	tests := []struct {
		name string
		t    time.Time
		want string
	}{
		{"whole seconds have no decimals", time.Unix(1438790025, 0), "1438790025"},
		{"milliseconds keep their digits", time.Unix(1438790025, 382000000), "1438790025.382"},
		{"microseconds are exact", time.Unix(1438790025, 637824000), "1438790025.637824"},
		{"below a microsecond is truncated", time.Unix(1438790025, 999999999), "1438790025.999999"},
		{"a leading zero in the fraction stays", time.Unix(1, 5000), "1.000005"},
		{"the epoch is 0", time.Unix(0, 0), "0"},
		{"the last second of 9999 is kept", time.Unix(253402300799, 999999000), "253402300799.999999"},
		{"before 1970, which GELF readers refuse, takes the clock", time.Unix(-1, 500000000), "1709251198.987654"},
		{"after 9999, which GELF readers refuse, takes the clock", time.Unix(253402300800, 0), "1709251198.987654"},
		{"the zone does not matter", time.Unix(1438790025, 0).In(time.FixedZone("X", -5*3600)), "1438790025"},
		{"the zero time takes the clock", time.Time{}, "1709251198.987654"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := record(func(r *flowgo.Record) { r.Time = tt.t })
			if got := gelfField(t, e, &r, "timestamp"); got != tt.want {
				t.Errorf("timestamp = %s; want %s", got, tt.want)
			}
		})
	}
}

func TestGELFValues(t *testing.T) {
	e := newTestEncoder(t, "gelf", "")
	tests := []struct {
		name string
		v    flowgo.Value
		want string
	}{
		{"a string", flowgo.StringValue("x"), `"x"`},
		{"true", flowgo.BoolValue(true), `true`},
		{"an integral float keeps .0 so it stays a float", flowgo.F64Value(3), `3.0`},
		{"negative zero", flowgo.F64Value(math.Copysign(0, -1)), `-0.0`},
		{"a float with a fraction", flowgo.F64Value(0.1), `0.1`},
		{"a large float in exponent form", flowgo.F64Value(1.5e300), `1.5e+300`},
		{"a small float with a one-digit exponent", flowgo.F64Value(-2e-9), `-2e-9`},
		{"the largest float", flowgo.F64Value(math.MaxFloat64), `1.7976931348623157e+308`},
		{"the smallest float", flowgo.F64Value(math.SmallestNonzeroFloat64), `5e-324`},
		{"NaN becomes null", flowgo.F64Value(math.NaN()), `null`},
		{"+Inf becomes null", flowgo.F64Value(math.Inf(1)), `null`},
		{"-Inf becomes null", flowgo.F64Value(math.Inf(-1)), `null`},
		{"the smallest int64", flowgo.I64Value(math.MinInt64), `-9223372036854775808`},
		{"the largest uint64", flowgo.U64Value(math.MaxUint64), `18446744073709551615`},
		{"null", flowgo.NullValue(), `null`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := record(func(r *flowgo.Record) { r.SD = []flowgo.SDElement{{Params: []flowgo.Param{typed("v", tt.v)}}} })
			if got := gelfField(t, e, &r, "_v"); got != tt.want {
				t.Errorf("_v = %s; want %s", got, tt.want)
			}
		})
	}
}

func TestGELFStrings(t *testing.T) {
	e := newTestEncoder(t, "gelf", "")
	tests := []struct {
		name, in, want string
	}{
		{"plain ASCII is copied", "hello world", `"hello world"`},
		{"quotes and backslashes are escaped", `a"b\c`, `"a\"b\\c"`},
		{"common controls use short escapes", "\n\r\t\b\f", `"\n\r\t\b\f"`},
		{"other controls use lowercase hex", "\x00\x1b\x1f", `"\u0000\u001b\u001f"`},
		{"DEL and slash are left alone", "\x7f/</", "\"\x7f/</\""},
		{"UTF-8 is written raw, U+2028 included", "é\u2028€𝄞", "\"é\u2028€𝄞\""},
		{"each invalid byte becomes U+FFFD", "a\xffb\xc3", "\"a\ufffdb\ufffd\""},
		{"an encoded surrogate is invalid", "\xed\xa0\x80", "\"\ufffd\ufffd\ufffd\""},
		{"an escape on a word boundary", "1234567\"89", `"1234567\"89"`},
		{"an escape at the end of a long run", "abcdefghijklmnop\n", `"abcdefghijklmnop\n"`},
		{"non-ASCII inside a long run", "abcdefgé" + "hijklmno", "\"abcdefgéhijklmno\""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := record(func(r *flowgo.Record) { r.Msg = tt.in })
			if got := gelfField(t, e, &r, "short_message"); got != tt.want {
				t.Errorf("short_message of %q = %s; want %s", tt.in, got, tt.want)
			}
		})
	}
}

func TestSpecialBytes(t *testing.T) {
	special := func(c byte) bool { return c < 0x20 || c >= 0x80 || c == '"' || c == '\\' }
	for c := range 256 {
		for pos := range 8 {
			for _, fill := range []byte{'a', '"', 0xc3} {
				var b [8]byte
				for i := range b {
					b[i] = 'a'
				}
				b[pos] = byte(c)
				for i := pos + 1; i < 8; i++ {
					b[i] = fill // what follows the first special byte does not matter
				}
				m := specialBytes(load64(string(b[:])))
				want := 8 // no special byte
				if special(byte(c)) {
					want = pos
				} else if special(fill) && pos < 7 {
					want = pos + 1
				}
				got := 8
				if m != 0 {
					got = bits.TrailingZeros64(m) >> 3
				}
				if got != want {
					t.Errorf("%q: first special byte at %d; want %d", b, got, want)
				}
			}
		}
	}
}

func TestGELFFieldNames(t *testing.T) {
	e := newTestEncoder(t, "gelf", "")
	tests := []struct {
		name, param, want string
	}{
		{"a valid name gets an underscore", "user_id", "_user_id"},
		{"dots and dashes are kept", "a.b-c", "_a.b-c"},
		{"spaces and punctuation become _", "a b:c/d", "_a_b_c_d"},
		{"each non-ASCII character becomes one _", "naïve€", "_na_ve_"},
		{"each invalid byte becomes one _", "a\xff\xfeb", "_a__b"},
		{"id, reserved by Graylog, is written _id_", "id", "_id_"},
		{"an empty name is _, so the key is __", "", "__"},
		{"a name with its own underscore gets a second one", "_x", "__x"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := record(func(r *flowgo.Record) { r.SD = []flowgo.SDElement{{Params: []flowgo.Param{str(tt.param, "v")}}} })
			if got := gelfField(t, e, &r, tt.want); got != `"v"` {
				out, _ := e.Encode(nil, &r)
				t.Errorf("param %q: no key %q in %s", tt.param, tt.want, out)
			}
		})
	}
}

func TestGELFKeyOrderAndOverrides(t *testing.T) {
	e := newTestEncoder(t, "gelf", `gelf_extra = { _b = "extra" }`)
	r := record(func(r *flowgo.Record) {
		r.Time, r.Hostname, r.Msg, r.MsgID = ts, "h", "m", "mid"
		r.SD = []flowgo.SDElement{
			{ID: "one@1", Params: []flowgo.Param{str("a", "1"), str("b", "2"), str("c", "3")}},
			{ID: "two@1", Params: []flowgo.Param{str("a", "4"), str("msgid", "5")}},
		}
	})
	out, _ := e.Encode(nil, &r)
	want := `{"version":"1.1","host":"h","short_message":"m","timestamp":1438790025.637824,"_c":"3","sd_id":"two@1","_a":"4","_msgid":"5","_b":"extra"}`
	if string(out) != want {
		t.Errorf("Encode =\n%s\nwant\n%s", out, want)
	}
}

func TestGELFUnderscoreVariantsAreOneField(t *testing.T) {
	r := record(func(r *flowgo.Record) {
		r.Time, r.Hostname, r.AppName, r.ProcID = ts, "h", "app", "1"
		r.SD = []flowgo.SDElement{{ID: "x@1", Params: []flowgo.Param{
			str("application_name", "param app"), str("sd_id", "param sd"), str("env", "param env"), str("host", "kept: host is standard"),
		}}}
	})
	tests := []struct{ name, toml, want string }{
		{"a param replaces a plain key of its name", "",
			`{"version":"1.1","host":"h","short_message":"-","timestamp":1438790025.637824,"process_id":"1","_application_name":"param app","_sd_id":"param sd","_env":"param env","_host":"kept: host is standard"}`},
		{"a plain gelf_extra key replaces the param", `gelf_extra = { env = "extra env", _process_id = "extra proc" }`,
			`{"version":"1.1","host":"h","short_message":"-","timestamp":1438790025.637824,"_application_name":"param app","_sd_id":"param sd","_host":"kept: host is standard","_process_id":"extra proc","env":"extra env"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, _ := newTestEncoder(t, "gelf", tt.toml).Encode(nil, &r)
			if string(out) != tt.want {
				t.Errorf("Encode =\n%s\nwant\n%s", out, tt.want)
			}
		})
	}
	f, err := config.Parse("t.toml", "[output]\ngelf_extra = { env = \"1\", _env = \"2\" }\n")
	if err != nil {
		t.Fatal(err)
	}
	g, err := NewGELF(f.Output)
	if err != nil {
		t.Fatal(err)
	}
	if w := strings.Join(f.Warnings(), "\n"); !strings.Contains(w, `keys "_env" and "env" name the same GELF field; the value of "env" wins`) {
		t.Errorf("warnings %q; want one about _env and env", w)
	}
	if out, _ := g.Encode(nil, &r); !strings.HasSuffix(string(out), `,"env":"1"}`) || strings.Contains(string(out), `"_env"`) {
		t.Errorf("Encode = %s; want env = 1 only", out)
	}
}

// TestManyParamsPathsAgree checks that the map-based duplicate search the
// encoders use for large records gives the same bytes as the pairwise one.
func TestManyParamsPathsAgree(t *testing.T) {
	defer func(n int) { smallParams = n }(smallParams)
	for _, format := range []string{"gelf", "ltsv", "rfc5424", "rfc3164"} {
		e := newTestEncoder(t, format, "")
		for _, name := range []string{"many_params", "many_elements", "duplicate_names", "multi_sd", "long_fields"} {
			r := caseRecord(t, name)
			smallParams = hashCap
			pairwise, _ := e.Encode(nil, &r)
			smallParams = 0
			mapped, _ := e.Encode(nil, &r)
			smallParams = 24
			if string(pairwise) != string(mapped) {
				t.Errorf("%s %s: pairwise\n%s\nmap\n%s", format, name, pairwise, mapped)
			}
		}
	}
}

func caseRecord(t testing.TB, name string) flowgo.Record {
	for _, c := range testCases {
		if c.name == name {
			return c.r
		}
	}
	t.Fatalf("no test case %q", name)
	return flowgo.Record{}
}

func TestGELFExtraConfig(t *testing.T) {
	tests := []struct {
		name, toml, wantErr string
	}{
		{"a non-string value", `gelf_extra = { _n = 1 }`, "expected a string"},
		{"not a table", `gelf_extra = "x"`, "output.gelf_extra: wrong type: expected a table"},
		{"a string timestamp", `gelf_extra = { timestamp = "1" }`, "output.gelf_extra: timestamp must be a number"},
		{"a string level", `gelf_extra = { level = "1" }`, "output.gelf_extra: level must be a number"},
		{"another version", `gelf_extra = { version = "1.0" }`, `output.gelf_extra: version = "1.0"`},
		{"a blank host", `gelf_extra = { host = " " }`, "Graylog rejects"},
		{"an empty key", `gelf_extra = { "" = "x" }`, "output.gelf_extra: a key is empty"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, err := config.Parse("t.toml", "[output]\n"+tt.toml)
			if err != nil {
				t.Fatal(err)
			}
			_, err = NewGELF(f.Output)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("NewGELF(%s) = %v; want an error with %q", tt.toml, err, tt.wantErr)
			}
			if err != nil && !strings.HasPrefix(err.Error(), "t.toml:2: ") {
				t.Errorf("error %q does not name the file and line", err)
			}
		})
	}
}

func TestGELFExtraWarnings(t *testing.T) {
	f, err := config.Parse("t.toml", "[output]\ngelf_extra = { \"a b\" = \"1\", a_b = \"2\", _id = \"3\", _ok = \"4\" }\nltsv_extra = { x = \"y\" }\nsyslog_prepend_timestamp = \"%s\"\n")
	if err != nil {
		t.Fatal(err)
	}
	g, err := NewGELF(f.Output)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Check(); err != nil {
		t.Errorf("Check = %v; the other formats' keys are accepted with a warning", err)
	}
	w := strings.Join(f.Warnings(), "\n")
	for _, want := range []string{`key "a b" is written "a_b"`, `keys "a b" and "a_b" name the same GELF field; the value of "a_b" wins`, `key "_id" is written "_id_"`,
		"output.ltsv_extra: ignored: used only by output.format ltsv, not gelf", "output.syslog_prepend_timestamp: ignored"} {
		if !strings.Contains(w, want) {
			t.Errorf("warnings lack %q:\n%s", want, w)
		}
	}
	if strings.Contains(w, "_ok") {
		t.Errorf("a valid key was warned about:\n%s", w)
	}
	r := record(func(r *flowgo.Record) { r.Time = ts })
	out, _ := g.Encode(nil, &r)
	if !strings.HasSuffix(string(out), `,"_id_":"3","_ok":"4","a_b":"2"}`) {
		t.Errorf("Encode = %s; want the extras sorted, sanitised, deduplicated", out)
	}
}

func TestGELFFullMessageKey(t *testing.T) {
	r := record(func(r *flowgo.Record) {
		r.Time, r.Hostname, r.Msg, r.FullMsg, r.Severity = ts, "h", "test message", line5424, 7
	})
	tests := []struct {
		name, toml string
		want       string // the full_message written, "" for none
	}{
		{"the default writes it", "", line5424},
		{"true writes it", "gelf_full_message = true", line5424},
		{"false leaves it out", "gelf_full_message = false", ""},
		{"false keeps one from gelf_extra", "gelf_full_message = false\ngelf_extra = { full_message = \"x\" }", "x"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, err := config.Parse("t.toml", "[output]\n"+tt.toml)
			if err != nil {
				t.Fatal(err)
			}
			g, err := NewGELF(f.Output)
			if err != nil {
				t.Fatal(err)
			}
			if err := f.Check(); err != nil {
				t.Fatalf("Check = %v", err)
			}
			out, _ := g.Encode(nil, &r)
			var m map[string]any
			if err := json.Unmarshal(out, &m); err != nil {
				t.Fatalf("Encode = %s: %v", out, err)
			}
			got, _ := m["full_message"].(string)
			if got != tt.want {
				t.Errorf("full_message = %q; want %q (in %s)", got, tt.want, out)
			}
			if m["short_message"] != "test message" {
				t.Errorf("short_message = %v; want it kept (in %s)", m["short_message"], out)
			}
		})
	}
	t.Run("another format warns", func(t *testing.T) {
		f, err := config.Parse("t.toml", "[output]\nformat = \"ltsv\"\ngelf_full_message = false\n")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := New("ltsv", f.Output); err != nil {
			t.Fatal(err)
		}
		if w := strings.Join(f.Warnings(), "\n"); !strings.Contains(w, "output.gelf_full_message: ignored: used only by output.format gelf") {
			t.Errorf("warnings = %q; want gelf_full_message ignored by ltsv", w)
		}
	})
	t.Run("a wrong type is an error", func(t *testing.T) {
		f, err := config.Parse("t.toml", "[output]\ngelf_full_message = \"no\"\n")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := NewGELF(f.Output); err == nil || !strings.Contains(err.Error(), "gelf_full_message") {
			t.Errorf("NewGELF = %v; want an error naming gelf_full_message", err)
		}
	})
}

func TestGELFAllocs(t *testing.T) {
	testAllocs(t, newTestEncoder(t, "gelf", goldenVariants[0].toml))
}

// testAllocs checks that e encodes the usual test cases into a dst with
// room without allocating.
func testAllocs(t *testing.T, e Encoder) {
	t.Helper()
	dst := make([]byte, 0, 64<<10)
	for _, c := range testCases {
		if strings.HasPrefix(c.name, "many_") {
			continue // above smallParams the encoders build a map on purpose
		}
		if n := testing.AllocsPerRun(20, func() { dst, _ = e.Encode(dst[:0], &c.r) }); n != 0 {
			t.Errorf("%s: %v allocations per Encode; want 0", c.name, n)
		}
	}
	r := benchRecord()
	if n := testing.AllocsPerRun(20, func() { dst, _ = e.Encode(dst[:0], &r) }); n != 0 {
		t.Errorf("benchmark record: %v allocations per Encode; want 0", n)
	}
}

// notGELFName matches a character GELF field names may not hold.
var notGELFName = regexp.MustCompile(`[^a-zA-Z0-9_.\-]`)

// gelfModel is an independent model of what the GELF encoder must write
// for a fuzzed record: the keys and their values, built with a map, a
// regexp and []rune conversions instead of the encoder's own code.
func gelfModel(r *flowgo.Record, now time.Time) map[string]any {
	valid := func(s string) string { return string([]rune(s)) } // invalid bytes -> U+FFFD each
	// Keys that differ by one leading '_' are one field, except the
	// standard ones; a later key replaces an earlier one.
	type kv struct {
		key string
		val any
	}
	fields := map[string]kv{}
	set := func(key string, v any) {
		id := strings.TrimPrefix(key, "_")
		switch key {
		case "version", "host", "short_message", "full_message", "timestamp", "level":
			id = "\x00" + key
		}
		fields[id] = kv{key, v}
	}
	set("version", "1.1")
	set("host", "unknown")
	set("short_message", "-")
	if strings.TrimSpace(r.Hostname) != "" {
		set("host", valid(r.Hostname))
	}
	if r.Msg != "" {
		set("short_message", valid(r.Msg))
	}
	if r.FullMsg != "" {
		set("full_message", valid(r.FullMsg))
	}
	t := r.Time
	if t.IsZero() || t.Before(time.Unix(0, 0)) || !t.Before(time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)) {
		t = now
	}
	set("timestamp", new(big.Rat).Add(new(big.Rat).SetInt64(t.Unix()), big.NewRat(int64(t.Nanosecond()/1000), 1e6)))
	if r.Severity <= 7 {
		set("level", int64(r.Severity))
	}
	if r.Facility <= 23 {
		set("_facility_num", int64(r.Facility))
	}
	if r.AppName != "" {
		set("application_name", valid(r.AppName))
	}
	if r.ProcID != "" {
		set("process_id", valid(r.ProcID))
	}
	if r.MsgID != "" {
		set("_msgid", valid(r.MsgID))
	}
	lastID := ""
	for _, e := range r.SD {
		if e.ID != "" {
			lastID = e.ID
		}
	}
	for _, e := range r.SD {
		if e.ID != "" && e.ID == lastID {
			set("sd_id", valid(e.ID))
		}
		for _, p := range e.Params {
			key := "_" + notGELFName.ReplaceAllString(valid(p.Name), "_")
			switch key {
			case "_":
				key = "__"
			case "_id":
				key = "_id_"
			}
			switch v := p.Value; v.Kind {
			case flowgo.KindString:
				set(key, valid(v.Str))
			case flowgo.KindBool:
				set(key, v.Bool())
			case flowgo.KindF64:
				if math.IsNaN(v.F64()) || math.IsInf(v.F64(), 0) {
					set(key, nil)
				} else {
					set(key, v.F64())
				}
			case flowgo.KindI64:
				set(key, v.I64())
			case flowgo.KindU64:
				set(key, v.U64())
			default:
				set(key, nil)
			}
		}
	}
	m := map[string]any{}
	for _, f := range fields {
		m[f.key] = f.val
	}
	return m
}

// sameJSON reports whether the decoded JSON value got equals want from
// gelfModel, and whether a float is written as one.
func sameJSON(got, want any) error {
	switch w := want.(type) {
	case nil:
		if got != nil {
			return fmt.Errorf("%#v; want null", got)
		}
	case string, bool:
		if got != w {
			return fmt.Errorf("%#v; want %#v", got, w)
		}
	case *big.Rat:
		n, _ := got.(json.Number)
		r, ok := new(big.Rat).SetString(string(n))
		if !ok || r.Cmp(w) != 0 {
			return fmt.Errorf("%#v; want %s", got, w.FloatString(6))
		}
	case float64:
		n, _ := got.(json.Number)
		f, err := n.Float64()
		if err != nil || f != w || !strings.ContainsAny(string(n), ".eE") || math.Signbit(f) != math.Signbit(w) {
			return fmt.Errorf("%#v; want the float %v", got, w)
		}
	case int64:
		if n, _ := got.(json.Number); string(n) != fmt.Sprint(w) {
			return fmt.Errorf("%#v; want %d", got, w)
		}
	case uint64:
		if n, _ := got.(json.Number); string(n) != fmt.Sprint(w) {
			return fmt.Errorf("%#v; want %d", got, w)
		}
	default:
		return fmt.Errorf("model value %T", want)
	}
	return nil
}

// FuzzEncodeGELF builds records from fuzzed strings and numbers, and checks
// that the output is valid GELF whose fields, decoded by encoding/json,
// are those of an independent model.
func FuzzEncodeGELF(f *testing.F) {
	for _, c := range testCases {
		var p [3]flowgo.Param
		var ids [2]string
		k := 0
		for i, e := range c.r.SD {
			if i < 2 {
				ids[i] = e.ID
			}
			for _, q := range e.Params {
				if k < 3 && q.Value.Kind == flowgo.KindString {
					p[k] = q
					k++
				}
			}
		}
		r := c.r
		f.Add(r.Hostname, r.AppName, r.ProcID, r.MsgID, r.Msg, r.FullMsg, ids[0], ids[1], p[0].Name, p[0].Value.Str,
			p[1].Name, p[1].Value.Str, p[2].Name, 1.5, int64(-3), uint64(4), r.Facility, r.Severity, r.Time.Unix(), int64(r.Time.Nanosecond()))
	}
	f.Add("", "", "", "", "", "", "", "", "id", "x", "id_", "y", "ID", math.Inf(1), int64(math.MinInt64), uint64(math.MaxUint64), uint8(255), uint8(8), int64(-62135596800), int64(1))
	e := newTestEncoder(f, "gelf", "")
	f.Fuzz(func(t *testing.T, host, app, proc, msgid, msg, full, id1, id2, n1, v1, n2, v2, n3 string,
		fl float64, i64 int64, u64 uint64, fac, sev uint8, sec, nsec int64) {
		r := flowgo.Record{
			Hostname: host, AppName: app, ProcID: proc, MsgID: msgid, Msg: msg, FullMsg: full, Facility: fac, Severity: sev,
			SD: []flowgo.SDElement{
				{ID: id1, Params: []flowgo.Param{str(n1, v1), str(n2, v2), typed(n3, flowgo.F64Value(fl))}},
				{ID: id2, Params: []flowgo.Param{typed(n1+"i", flowgo.I64Value(i64)), typed(n2+"u", flowgo.U64Value(u64)),
					typed(n3+"b", flowgo.BoolValue(sec%2 == 0)), typed(n1+"n", flowgo.NullValue())}},
			},
		}
		if sec > -1e12 && sec < 1e12 { // years -29719 to 33658: enough, and Unix() stays exact
			r.Time = time.Unix(sec, nsec%1e9)
		}
		out, err := e.Encode([]byte("prefix"), &r)
		if err != nil || !strings.HasPrefix(string(out), "prefix") {
			t.Fatalf("Encode = %q, %v", out, err)
		}
		out = out[len("prefix"):]
		got, err := encodertest.GELFFields(out)
		if err != nil {
			t.Fatalf("invalid GELF %q: %v", out, err)
		}
		want := gelfModel(&r, testNow)
		for k, w := range want {
			g, ok := got[k]
			if !ok {
				t.Errorf("key %q missing from %s", k, out)
				continue
			}
			if err := sameJSON(g, w); err != nil {
				t.Errorf("%s = %v in %s", k, err, out)
			}
		}
		for k := range got {
			if _, ok := want[k]; !ok {
				t.Errorf("unexpected key %q in %s", k, out)
			}
		}
	})
}

func TestAppendUnixMicro(t *testing.T) {
	tests := []struct {
		t    time.Time
		want string
	}{
		{time.Unix(0, 0), "0"},
		{time.Unix(1, 1000), "1.000001"},
		{time.Unix(-1, 500000000), "-0.5"},
		{time.Unix(-2, 500000000), "-1.5"},
		{time.Unix(-7, 0), "-7"},
		{time.Unix(-1, 999999999), "-0.000001"},
	}
	for _, tt := range tests {
		if got := string(appendUnixMicro(nil, tt.t)); got != tt.want {
			t.Errorf("appendUnixMicro(%v) = %s; want %s", tt.t.UTC(), got, tt.want)
		}
	}
}
