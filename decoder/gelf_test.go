package decoder_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/flowgo/flowgo"
	"github.com/flowgo/flowgo/config"
	"github.com/flowgo/flowgo/decoder"
	"github.com/flowgo/flowgo/decoder/decodertest"
)

// gelfNow is the receive time the tests give records without a timestamp.
var gelfNow = time.Date(2024, 5, 6, 7, 8, 9, 123456789, time.UTC)

// gelfGolden decodes every testdata/<dir>/<case>.in (one trailing newline
// removed: editors add it) and compares the record dump with <case>.golden,
// or the error with <case>.err. With -update it writes the file instead.
func gelfGolden(t *testing.T, dir string, dec decoder.Decoder) {
	t.Helper()
	files, err := filepath.Glob(filepath.Join("testdata", dir, "*.in"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no golden cases in testdata/%s (%v)", dir, err)
	}
	for _, file := range files {
		base := strings.TrimSuffix(file, ".in")
		t.Run(filepath.Base(base), func(t *testing.T) {
			in, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			in = bytes.TrimSuffix(in, []byte("\n"))
			var r flowgo.Record
			r.Reset()
			var got, want, other string
			if err := dec.Decode(in, &r, new(flowgo.Arena)); err != nil {
				got, want, other = err.Error()+"\n", base+".err", base+".golden"
			} else {
				got, want, other = decodertest.Dump(&r)+"\n", base+".golden", base+".err"
			}
			if *update {
				if err := os.WriteFile(want, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
				if err := os.Remove(other); err != nil && !errors.Is(err, os.ErrNotExist) {
					t.Fatal(err)
				}
				return
			}
			w, err := os.ReadFile(want)
			if err != nil {
				t.Fatalf("Decode(%s) gave\n%s\nbut %s is missing (go test -update writes it): %v", file, got, want, err)
			}
			if got != string(w) {
				t.Errorf("Decode(%s) =\n%s\nwant (%s)\n%s", file, got, want, w)
			}
			if _, err := os.Stat(other); err == nil {
				t.Errorf("both %s and %s exist; remove the stale one", want, other)
			}
		})
	}
}

// gelfSeed adds every testdata/<dir>/*.in to the fuzz corpus.
func gelfSeed(f *testing.F, dir string) {
	files, _ := filepath.Glob(filepath.Join("testdata", dir, "*.in"))
	if len(files) == 0 {
		f.Fatalf("no seeds in testdata/%s", dir)
	}
	for _, file := range files {
		in, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(bytes.TrimSuffix(in, []byte("\n")))
	}
}

// gelfDecode decodes in with a fresh record and arena.
func gelfDecode(dec decoder.Decoder, in string) (flowgo.Record, error) {
	var r flowgo.Record
	r.Reset()
	err := dec.Decode([]byte(in), &r, new(flowgo.Arena))
	return r, err
}

// decodeErrorCase is a frame a decoder must reject, and the whole text
// of the error it must give.
type decodeErrorCase struct {
	name string
	in   string
	want string
}

// checkDecodeErrors runs each case against dec, in parallel subtests.
func checkDecodeErrors(t *testing.T, dec decoder.Decoder, tests []decodeErrorCase) {
	t.Helper()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := gelfDecode(dec, tt.in)
			if err == nil {
				t.Fatalf("Decode(%q) = nil; want %s", tt.in, tt.want)
			}
			if err.Error() != tt.want {
				t.Errorf("Decode(%q) = %s; want %s", tt.in, err, tt.want)
			}
		})
	}
}

// gelfRec builds an expected record: Facility and Severity unset unless set.
func gelfRec(host string, t time.Time, f func(r *flowgo.Record)) flowgo.Record {
	r := flowgo.Record{Hostname: host, Time: t, Facility: flowgo.Unset, Severity: flowgo.Unset}
	if f != nil {
		f(&r)
	}
	return r
}

func gelfParams(ps ...flowgo.Param) []flowgo.SDElement {
	return []flowgo.SDElement{{Params: ps}}
}

func gelfP(name string, v flowgo.Value) flowgo.Param { return flowgo.Param{Name: name, Value: v} }

func TestGELFDecode(t *testing.T) {
	t.Parallel()
	ts := time.Date(2013, 11, 21, 17, 11, 2, 307200000, time.UTC)
	tests := []struct {
		name string
		in   string
		want flowgo.Record
	}{
		{
			"the GELF 1.1 example maps every field and keeps additional fields in input order",
			`{"version":"1.1","host":"example.org","short_message":"A short message","full_message":"Backtrace here\n\nmore stuff","timestamp":1385053862.3072,"level":1,"_user_id":9001,"_some_info":"foo","_some_env_var":"bar"}`,
			gelfRec("example.org", ts, func(r *flowgo.Record) {
				r.Msg, r.FullMsg, r.Severity = "A short message", "Backtrace here\n\nmore stuff", 1
				r.SD = gelfParams(gelfP("user_id", flowgo.U64Value(9001)), gelfP("some_info", flowgo.StringValue("foo")), gelfP("some_env_var", flowgo.StringValue("bar")))
			}),
		},
		{
			"a message with only a host takes the receive time and has no SD",
			`{"host":"h"}`,
			gelfRec("h", gelfNow, nil),
		},
		{
			"GELF 1.0 facility, file and line become parameters under their own names",
			`{"version":"1.0","host":"h","timestamp":1,"facility":"mail","file":"/x.c","line":42}`,
			gelfRec("h", time.Unix(1, 0).UTC(), func(r *flowgo.Record) {
				r.SD = gelfParams(gelfP("facility", flowgo.StringValue("mail")), gelfP("file", flowgo.StringValue("/x.c")), gelfP("line", flowgo.U64Value(42)))
			}),
		},
		{
			"only one leading underscore is removed",
			`{"host":"h","timestamp":0,"__x":"a","_id":"b"}`,
			gelfRec("h", time.Unix(0, 0).UTC(), func(r *flowgo.Record) {
				r.SD = gelfParams(gelfP("_x", flowgo.StringValue("a")), gelfP("id", flowgo.StringValue("b")))
			}),
		},
		{
			"numbers become u64, i64 or f64 as they fit",
			`{"host":"h","timestamp":0,"_a":0,"_b":-5,"_c":18446744073709551615,"_d":18446744073709551616,"_e":-9223372036854775808,"_f":-9223372036854775809,"_g":1.5,"_h":1e3,"_i":-0,"_j":1E-2}`,
			gelfRec("h", time.Unix(0, 0).UTC(), func(r *flowgo.Record) {
				r.SD = gelfParams(
					gelfP("a", flowgo.U64Value(0)), gelfP("b", flowgo.I64Value(-5)),
					gelfP("c", flowgo.U64Value(math.MaxUint64)), gelfP("d", flowgo.F64Value(18446744073709551616)),
					gelfP("e", flowgo.I64Value(math.MinInt64)), gelfP("f", flowgo.F64Value(-9223372036854775809)),
					gelfP("g", flowgo.F64Value(1.5)), gelfP("h", flowgo.F64Value(1000)),
					gelfP("i", flowgo.I64Value(0)), gelfP("j", flowgo.F64Value(0.01)))
			}),
		},
		{
			"booleans and null keep their type",
			`{"host":"h","timestamp":0,"_t":true,"_f":false,"_n":null}`,
			gelfRec("h", time.Unix(0, 0).UTC(), func(r *flowgo.Record) {
				r.SD = gelfParams(gelfP("t", flowgo.BoolValue(true)), gelfP("f", flowgo.BoolValue(false)), gelfP("n", flowgo.NullValue()))
			}),
		},
		{
			"escapes are decoded, surrogate pairs joined and lone surrogates replaced",
			`{"host":"h\u00e9\/","short_message":"q\"b\\s\/\b\f\n\r\t \ud83d\ude00 \ud800 \udc00\u0041 \ud800\ud800","timestamp":0}`,
			gelfRec("hé/", time.Unix(0, 0).UTC(), func(r *flowgo.Record) {
				r.Msg = "q\"b\\s/\b\f\n\r\t 😀 \uFFFD \uFFFDA \uFFFD\uFFFD"
			}),
		},
		{
			"raw UTF-8 passes through",
			`{"host":"ホスト","short_message":"Grüße, 世界 😀","timestamp":0}`,
			gelfRec("ホスト", time.Unix(0, 0).UTC(), func(r *flowgo.Record) { r.Msg = "Grüße, 世界 😀" }),
		},
		{
			"an escaped key with a meaning is recognised",
			`{"ho\u0073t":"h","timestamp":0}`,
			gelfRec("h", time.Unix(0, 0).UTC(), nil),
		},
		{
			"white space around every token and a trailing newline are allowed",
			" \t\r\n{ \"host\" : \"h\" ,\n\"timestamp\"\t:\t2 , \"level\" : 0 }\r\n ",
			gelfRec("h", time.Unix(2, 0).UTC(), func(r *flowgo.Record) { r.Severity = 0 }),
		},
		{
			"a level written as a whole float is accepted",
			`{"host":"h","timestamp":0,"level":6.0}`,
			gelfRec("h", time.Unix(0, 0).UTC(), func(r *flowgo.Record) { r.Severity = 6 }),
		},
		{
			"a timestamp with an exponent is accepted",
			`{"host":"h","timestamp":1.5e9}`,
			gelfRec("h", time.Unix(1500000000, 0).UTC(), nil),
		},
		{
			"an empty short_message is absent",
			`{"host":"h","timestamp":0,"short_message":""}`,
			gelfRec("h", time.Unix(0, 0).UTC(), nil),
		},
		{
			"an empty string value is kept as a parameter",
			`{"host":"h","timestamp":0,"_e":""}`,
			gelfRec("h", time.Unix(0, 0).UTC(), func(r *flowgo.Record) { r.SD = gelfParams(gelfP("e", flowgo.StringValue(""))) }),
		},
		{
			"a NUL escape is kept in a string",
			`{"host":"h","timestamp":0,"short_message":"a\u0000b"}`,
			gelfRec("h", time.Unix(0, 0).UTC(), func(r *flowgo.Record) { r.Msg = "a\x00b" }),
		},
	}
	dec := decoder.GELFWithNow(gelfNow)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			decodertest.Expect(t, dec, tt.in, &tt.want)
		})
	}
}

func TestGELFDecodeErrors(t *testing.T) {
	t.Parallel()
	checkDecodeErrors(t, decoder.GELFWithNow(gelfNow), []decodeErrorCase{
		{"an array is not a GELF message", `[1]`, `gelf: a GELF message must be a JSON object, found '[' [col 1]`},
		{"a string is not a GELF message", ` "x"`, `gelf: a GELF message must be a JSON object, found '"' [col 2]`},
		{"white space only is empty", " \n", `gelf: empty frame`},
		{"an empty object has no host", `{}`, `gelf: missing host`},
		{"host is required", `{"short_message":"x"}`, `gelf: missing host`},
		{"host must be a string", `{"host":1}`, `gelf: host must be a string, not a number [col 9]`},
		{"host must not be empty", `{"host":""}`, `gelf: host is empty [col 9]`},
		{"host must not be null", `{"host":null}`, `gelf: host must be a string, not null [col 9]`},
		{"an unknown version is rejected", `{"version":"2.0","host":"h"}`, `gelf: unsupported GELF version "2.0" (want "1.0" or "1.1") [col 12]`},
		{"a numeric version is rejected", `{"version":1.1,"host":"h"}`, `gelf: version must be a string, not a number [col 12]`},
		{"short_message must be a string", `{"host":"h","short_message":1}`, `gelf: short_message must be a string, not a number [col 29]`},
		{"full_message must be a string", `{"host":"h","full_message":false}`, `gelf: full_message must be a string, not a boolean [col 28]`},
		{"timestamp must be a number", `{"host":"h","timestamp":"1"}`, `gelf: timestamp must be a number, not a string [col 25]`},
		{"a negative timestamp is rejected", `{"host":"h","timestamp":-1}`, `gelf: timestamp "-1" out of range (want seconds from 1970 to 9999) [col 25]`},
		{"a timestamp past 9999 is rejected", `{"host":"h","timestamp":1e300}`, `gelf: timestamp "1e300" out of range (want seconds from 1970 to 9999) [col 25]`},
		{"level 8 is rejected", `{"host":"h","level":8}`, `gelf: level "8" is not an integer from 0 to 7 [col 21]`},
		{"a negative level is rejected", `{"host":"h","level":-1}`, `gelf: level "-1" is not an integer from 0 to 7 [col 21]`},
		{"a fractional level is rejected", `{"host":"h","level":6.5}`, `gelf: level "6.5" is not an integer from 0 to 7 [col 21]`},
		{"a level with an exponent is rejected", `{"host":"h","level":6e0}`, `gelf: level "6e0" is not an integer from 0 to 7 [col 21]`},
		{"a level string is rejected", `{"host":"h","level":"6"}`, `gelf: level must be a number, not a string [col 21]`},
		{"an array value is rejected", `{"host":"h","_a":[1]}`, `gelf: arrays are not supported in GELF (only strings, numbers, booleans and null) [col 18]`},
		{"an object value is rejected", `{"host":"h","_a":{}}`, `gelf: nested objects are not supported in GELF (only strings, numbers, booleans and null) [col 18]`},
		{"a duplicate host is rejected", `{"host":"h","host":"i"}`, `gelf: duplicate key "host" [col 13]`},
		{"a duplicate field is rejected", `{"host":"h","_a":1,"_a":2}`, `gelf: duplicate field "a" (the keys "a" and "_a" both name it) [col 20]`},
		{"x and _x are the same field", `{"host":"h","a":1,"_a":2}`, `gelf: duplicate field "a" (the keys "a" and "_a" both name it) [col 19]`},
		{"an empty key is rejected", `{"host":"h","":1}`, `gelf: empty field name "" [col 13]`},
		{"a lone underscore key is rejected", `{"host":"h","_":1}`, `gelf: empty field name "_" [col 13]`},
		{"text after the object is rejected", `{"host":"h"} x`, `gelf: unexpected 'x' after the JSON object [col 14]`},
		{"a second object is rejected", `{"host":"h"}{}`, `gelf: unexpected '{' after the JSON object [col 13]`},
		{"a NUL after the object is rejected", "{\"host\":\"h\"}\x00", `gelf: unexpected byte 0x00 after the JSON object [col 13]`},
		{"invalid UTF-8 in a value is rejected", "{\"host\":\"h\xff\"}", `gelf: invalid UTF-8 [col 11]`},
		{"invalid UTF-8 in a key is rejected", "{\"\xc3\x28\":1,\"host\":\"h\"}", `gelf: invalid UTF-8 [col 3]`},
		{"a UTF-8 encoded surrogate is rejected", "{\"host\":\"\xed\xa0\x80\"}", `gelf: invalid UTF-8 [col 10]`},
		{"a raw newline in a string is rejected", "{\"host\":\"a\nb\"}", `gelf: control character 0x0a in string (must be escaped) [col 11]`},
		{"an unknown escape is rejected", `{"host":"\x"}`, `gelf: invalid escape '\x' [col 10]`},
		{"a bad unicode escape is rejected", `{"host":"\u12G4"}`, `gelf: invalid \u escape [col 10]`},
		{"a short unicode escape at the end is rejected", `{"host":"\u12`, `gelf: invalid \u escape [col 10]`},
		{"an unterminated string is rejected", `{"host":"h`, `gelf: unterminated string [col 11]`},
		{"an unterminated object is rejected", `{"host":"h"`, `gelf: expected ',' or '}' after the value of "host", found end of input [col 12]`},
		{"a trailing comma is rejected", `{"host":"h",}`, `gelf: expected a key string, found '}' [col 13]`},
		{"a missing colon is rejected", `{"host" "h"}`, `gelf: expected ':' after key "host", found '"' [col 9]`},
		{"a single-quoted key is rejected", `{'host':"h"}`, `gelf: expected a key string, found ''' [col 2]`},
		{"a leading zero is rejected", `{"host":"h","_a":01}`, `gelf: invalid number: leading zero [col 19]`},
		{"a trailing point is rejected", `{"host":"h","_a":1.}`, `gelf: invalid number: expected a digit after '.', found '}' [col 20]`},
		{"a leading point is rejected", `{"host":"h","_a":.5}`, `gelf: expected a value, found '.' [col 18]`},
		{"an empty exponent is rejected", `{"host":"h","_a":1e}`, `gelf: invalid number: expected a digit in the exponent, found '}' [col 20]`},
		{"a lone minus is rejected", `{"host":"h","_a":-}`, `gelf: invalid number: expected a digit, found '}' [col 19]`},
		{"a plus sign is rejected", `{"host":"h","_a":+1}`, `gelf: expected a value, found '+' [col 18]`},
		{"NaN is rejected", `{"host":"h","_a":NaN}`, `gelf: expected a value, found 'N' [col 18]`},
		{"a misspelt literal is rejected", `{"host":"h","_a":tru}`, `gelf: invalid literal (want true) [col 18]`},
		{"a number out of float64 range is rejected", `{"host":"h","_a":1e400}`, `gelf: number "1e400" out of range [col 18]`},
		{"a huge integer is rejected", `{"host":"h","_a":1` + strings.Repeat("0", 400) + `}`, `gelf: number "1000000000000000000000000000000000000000000000000000000000000000"... out of range [col 18]`},
	})
}

func TestGELFRegistered(t *testing.T) {
	t.Parallel()
	dec, err := decoder.New("gelf", config.Empty().Inputs[0])
	if err != nil {
		t.Fatalf(`New("gelf") = %v`, err)
	}
	before := time.Now()
	r, err := gelfDecode(dec, `{"host":"h"}`)
	if err != nil {
		t.Fatalf("Decode = %v", err)
	}
	if r.Time.Before(before.Add(-time.Second)) || r.Time.After(time.Now().Add(time.Second)) {
		t.Errorf("Decode without timestamp: Time = %v; want about now (%v)", r.Time, before)
	}
}

func TestGELFGolden(t *testing.T) {
	gelfGolden(t, "gelf", decoder.GELFWithNow(gelfNow))
}

func TestGELFConformance(t *testing.T) {
	good := [][]byte{
		[]byte(gelfAverage),
		[]byte(`{"host":"h","timestamp":1.5,"_esc":"a\"\u00e9\ud83d\ude00"}`),
		[]byte(`{"host":"h"}`),
	}
	bad := [][]byte{[]byte(`{}`), []byte(`{"host":"h"`), []byte(`{"host":"h","_a":[]}`), []byte("{\"host\":\"\xff\"}")}
	decodertest.Run(t, decoder.GELFWithNow(gelfNow), good, bad)
	decodertest.Run(t, &decoder.GELF{}, good, bad)
}

// gelfOracle decodes in with encoding/json and applies the GELF mapping
// rules, independently of the scanner under test. ok reports whether the
// frame is acceptable; edge marks timestamps so close to a range limit that
// float64 rounding may decide otherwise than the exact decimal conversion.
func gelfOracle(in []byte) (want flowgo.Record, ok, edge bool) {
	want.Reset()
	if !json.Valid(in) || !utf8.Valid(in) {
		return want, false, false
	}
	dec := json.NewDecoder(bytes.NewReader(in))
	dec.UseNumber()
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return want, false, false
	}
	seen := map[string]bool{}
	var params []flowgo.Param
	hasTS := false
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return want, false, false
		}
		key := tok.(string)
		val, err := dec.Token()
		if err != nil {
			return want, false, false
		}
		if _, nested := val.(json.Delim); nested {
			return want, false, false
		}
		if n, isNum := val.(json.Number); isNum {
			if _, err := strconv.ParseFloat(string(n), 64); err != nil {
				return want, false, false // outside float64 range
			}
		}
		switch key {
		case "version", "host", "short_message", "full_message", "timestamp", "level":
			if seen[key] {
				return want, false, false
			}
			seen[key] = true
		}
		str, isStr := val.(string)
		switch key {
		case "version":
			if !isStr || (str != "1.0" && str != "1.1") {
				return want, false, false
			}
		case "host":
			if !isStr || str == "" {
				return want, false, false
			}
			want.Hostname = str
		case "short_message":
			if !isStr {
				return want, false, false
			}
			want.Msg = str
		case "full_message":
			if !isStr {
				return want, false, false
			}
			want.FullMsg = str
		case "timestamp":
			n, isNum := val.(json.Number)
			if !isNum {
				return want, false, false
			}
			f, _ := strconv.ParseFloat(string(n), 64)
			edge = math.Abs(f-253402300800) < 2
			if f < 0 || f >= 253402300800 {
				return want, false, edge
			}
			sec := math.Floor(f)
			want.Time = time.Unix(int64(sec), int64((f-sec)*1e9)).UTC()
			hasTS = true
		case "level":
			n, isNum := val.(json.Number)
			if !isNum || !gelfLevelRE.MatchString(string(n)) {
				return want, false, false
			}
			want.Severity = string(n)[0] - '0'
		default:
			name := strings.TrimPrefix(key, "_")
			if name == "" || seen["_"+name] {
				return want, false, false
			}
			seen["_"+name] = true
			params = append(params, flowgo.Param{Name: name, Value: gelfOracleValue(val)})
		}
	}
	if _, err := dec.Token(); err != nil { // the closing brace
		return want, false, false
	}
	if _, err := dec.Token(); err != io.EOF {
		return want, false, false
	}
	if !seen["host"] {
		return want, false, false
	}
	if !hasTS {
		want.Time = gelfNow
	}
	if len(params) > 0 {
		want.SD = gelfParams(params...)
	}
	return want, true, edge
}

var gelfLevelRE = regexp.MustCompile(`^[0-7](\.0+)?$`)

func gelfOracleValue(v any) flowgo.Value {
	switch v := v.(type) {
	case string:
		return flowgo.StringValue(v)
	case bool:
		return flowgo.BoolValue(v)
	case nil:
		return flowgo.NullValue()
	case json.Number:
		s := string(v)
		if !strings.ContainsAny(s, ".eE") {
			if u, err := strconv.ParseUint(s, 10, 64); err == nil {
				return flowgo.U64Value(u)
			}
			if i, err := strconv.ParseInt(s, 10, 64); err == nil && strings.HasPrefix(s, "-") {
				return flowgo.I64Value(i)
			}
		}
		f, _ := strconv.ParseFloat(s, 64)
		return flowgo.F64Value(f)
	}
	panic("unexpected JSON token")
}

// FuzzDecodeGELF checks the scanner against encoding/json: whatever one
// accepts (within GELF's shapes) the other must, with the same values.
func FuzzDecodeGELF(f *testing.F) {
	gelfSeed(f, "gelf")
	for _, s := range []string{
		`{"host":"h","_a":-0,"_b":1E+2,"_c":"\ud800\udc00\ud800"}`,
		`{"host":"h","timestamp":253402300799.9999999999}`,
		`{"host":"h","timestamp":-0.0,"level":7.00}`,
		`{"host":"h","_x":1,"x":2}`,
		`{"host":"h","a":18446744073709551616,"b":-9223372036854775809}`,
	} {
		f.Add([]byte(s))
	}
	// Enough fields to use the names table and the map, with a duplicate.
	f.Add([]byte(gelfManyFields(12)[:len(gelfManyFields(12))-1] + `,"field3":1}`))
	f.Add([]byte(gelfManyFields(70)[:len(gelfManyFields(70))-1] + `,"_field69":1}`))
	f.Add([]byte(gelfManyFields(70)))
	dec := decoder.GELFWithNow(gelfNow)
	f.Fuzz(func(t *testing.T, in []byte) {
		var r flowgo.Record
		r.Reset()
		err := dec.Decode(bytes.Clone(in), &r, new(flowgo.Arena))
		if err != nil {
			var de *decoder.Error
			if !errors.As(err, &de) || de.Format != "gelf" || de.Col < 0 || de.Col > len(in)+1 {
				t.Fatalf("Decode(%q) error %#v; want a *decoder.Error for gelf with a column in the frame", in, err)
			}
		}
		want, ok, edge := gelfOracle(in)
		if edge {
			return
		}
		switch {
		case err == nil && !ok:
			t.Fatalf("Decode(%q) accepted a frame that encoding/json and the GELF rules reject:\n%s", in, decodertest.Dump(&r))
		case err != nil && ok:
			t.Fatalf("Decode(%q) = %v; encoding/json accepts it as\n%s", in, err, decodertest.Dump(&want))
		case err != nil:
			return
		}
		// Times: the decoder converts decimals exactly, the oracle through
		// float64, so allow a float64 rounding step.
		if d := r.Time.Sub(want.Time).Abs(); d > time.Microsecond+time.Duration(float64(want.Time.Unix())*3e-16*1e9) {
			t.Fatalf("Decode(%q).Time = %v; encoding/json gives %v", in, r.Time, want.Time)
		}
		want.Time = r.Time
		if !r.Equal(&want) {
			t.Fatalf("Decode(%q) =\n%s\nencoding/json gives\n%s", in, decodertest.Dump(&r), decodertest.Dump(&want))
		}
	})
}

// gelfAverage is a typical GELF message: about 300 bytes, the standard
// fields and five additional fields of mixed types.
const gelfAverage = `{"version":"1.1","host":"web-07.prod.example.com","short_message":"GET /api/v2/orders/81723 returned 200 in 23ms","timestamp":1715000000.123,"level":6,"_app":"orders-api","_request_id":"9f1c2e4a-7b3d-4e8f-a1c2-5d6e7f8a9b0c","_status":200,"_duration_ms":23.417,"_user":"alice"}`

var gelfSink flowgo.Record

func BenchmarkDecodeGELF(b *testing.B) {
	cases := []struct{ name, in string }{
		{"ok/average", gelfAverage},
		{"ok/minimal", `{"version":"1.1","host":"h","short_message":"m","timestamp":1715000000}`},
		{"ok/escapes", `{"version":"1.1","host":"web-07","short_message":"line one\nline \"two\"\tcaf\u00e9 \ud83d\ude00","full_message":"Traceback (most recent call last):\n  File \"/srv/app.py\", line 12, in <module>\n    main()\nValueError: bad \\ input","timestamp":1715000000.5,"level":3}`},
		{"ok/many_fields", gelfManyFields(40)},
		{"no/nested", `{"version":"1.1","host":"web-07.prod.example.com","short_message":"GET /api/v2/orders","timestamp":1715000000.123,"level":6,"_ctx":{"user":"alice"}}`},
	}
	dec := &decoder.GELF{}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			in := []byte(c.in)
			var a flowgo.Arena
			b.ReportAllocs()
			b.SetBytes(int64(len(in)))
			for i := 0; b.Loop(); i++ {
				if i%256 == 0 {
					a.Reset()
				}
				gelfSink.Reset()
				err := dec.Decode(in, &gelfSink, &a)
				if (err == nil) != strings.HasPrefix(c.name, "ok/") {
					b.Fatalf("Decode = %v", err)
				}
			}
		})
	}
}

func gelfManyFields(n int) string {
	var sb strings.Builder
	sb.WriteString(`{"version":"1.1","host":"h","short_message":"m","timestamp":1715000000`)
	for i := range n {
		sb.WriteString(`,"_field` + strconv.Itoa(i) + `":` + strconv.Itoa(i*7))
	}
	sb.WriteString("}")
	return sb.String()
}

func TestGELFManyFieldsDuplicates(t *testing.T) {
	t.Parallel()
	dec := decoder.GELFWithNow(gelfNow)
	for _, n := range []int{1, 8, 9, 10, 63, 64, 65, 66, 200} {
		in := gelfManyFields(n)
		r, err := gelfDecode(dec, in)
		if err != nil {
			t.Fatalf("Decode(%d fields) = %v", n, err)
		}
		if got := len(r.SD[0].Params); got != n {
			t.Errorf("Decode(%d fields) kept %d parameters", n, got)
		}
		for _, dup := range []int{0, n / 2, n - 1} {
			in := in[:len(in)-1] + `,"field` + strconv.Itoa(dup) + `":true}`
			_, err := gelfDecode(dec, in)
			want := `duplicate field "field` + strconv.Itoa(dup) + `"`
			if err == nil || !strings.Contains(err.Error(), want) {
				t.Errorf("Decode(%d fields, then field%d again) = %v; want %s", n, dup, err, want)
			}
		}
	}
}
