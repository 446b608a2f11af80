package decoder_test

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/flowgo/flowgo"
	"github.com/flowgo/flowgo/config"
	"github.com/flowgo/flowgo/decoder"
	"github.com/flowgo/flowgo/decoder/decodertest"
)

// ltsvSchemaTOML is the input section the schema tests and the golden
// files use.
const ltsvSchemaTOML = `[input]
type = "stdin"
format = "ltsv"

[input.ltsv_schema]
status = "u64"
size = "U64"
reqtime = "f64"
delta = "i64"
cached = "bool"
counter_u64 = "u64"
note = "string"

[input.ltsv_suffixes]
u64 = "_u64"
F64 = "_f64"
`

// ltsvNew builds an LTSV decoder from the [input] section of src.
func ltsvNew(t testing.TB, src string) (decoder.Decoder, *config.File) {
	t.Helper()
	f, err := config.Parse("t.toml", src)
	if err != nil {
		t.Fatalf("config.Parse: %v", err)
	}
	dec, err := decoder.New("ltsv", f.Inputs[0])
	if err != nil {
		t.Fatalf(`New("ltsv") = %v`, err)
	}
	return dec, f
}

func ltsvTime(s string) time.Time {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		panic(err)
	}
	return t
}

func TestLTSVDecode(t *testing.T) {
	t.Parallel()
	t0 := ltsvTime("2000-10-10T20:55:36Z")
	tests := []struct {
		name string
		in   string
		want flowgo.Record
	}{
		{
			"an Apache access line maps time, host and keeps the other labels in order",
			"time:[10/Oct/2000:13:55:36 -0700]\thost:192.168.0.1\treq:GET /apache_pb.gif HTTP/1.0\tstatus:200\tua:Mozilla/4.08",
			gelfRec("192.168.0.1", t0, func(r *flowgo.Record) {
				r.FullMsg = "time:[10/Oct/2000:13:55:36 -0700]\thost:192.168.0.1\treq:GET /apache_pb.gif HTTP/1.0\tstatus:200\tua:Mozilla/4.08"
				r.SD = gelfParams(gelfP("req", flowgo.StringValue("GET /apache_pb.gif HTTP/1.0")), gelfP("status", flowgo.StringValue("200")), gelfP("ua", flowgo.StringValue("Mozilla/4.08")))
			}),
		},
		{
			"message and level map to Msg and Severity",
			"host:h\ttime:971211336\tmessage:hello world\tlevel:3",
			gelfRec("h", t0, func(r *flowgo.Record) {
				r.Msg, r.Severity, r.FullMsg = "hello world", 3, "host:h\ttime:971211336\tmessage:hello world\tlevel:3"
			}),
		},
		{
			"Unix seconds keep their decimals exactly",
			"time:1385053862.3072\thost:h",
			gelfRec("h", ltsvTime("2013-11-21T17:11:02.3072Z"), func(r *flowgo.Record) { r.FullMsg = "time:1385053862.3072\thost:h" }),
		},
		{
			"an RFC 3339 time with an offset is converted to UTC",
			"time:2000-10-10T13:55:36.25-07:00\thost:h",
			gelfRec("h", ltsvTime("2000-10-10T20:55:36.25Z"), func(r *flowgo.Record) { r.FullMsg = "time:2000-10-10T13:55:36.25-07:00\thost:h" }),
		},
		{
			"an RFC 3339 time in brackets with a lowercase z is accepted",
			"time:[2000-10-10t20:55:36z]\thost:h",
			gelfRec("h", t0, func(r *flowgo.Record) { r.FullMsg = "time:[2000-10-10t20:55:36z]\thost:h" }),
		},
		{
			"an Apache time with a one-digit day, fraction and lowercase month is accepted",
			"time:1/oct/2000:13:55:36.5 +0200\thost:h",
			gelfRec("h", ltsvTime("2000-10-01T11:55:36.5Z"), func(r *flowgo.Record) { r.FullMsg = "time:1/oct/2000:13:55:36.5 +0200\thost:h" }),
		},
		{
			"a value is split at the first colon and kept verbatim with its spaces",
			"time:0\thost:h\turl:http://x:8080/a\tname 2: value 2 ",
			gelfRec("h", time.Unix(0, 0).UTC(), func(r *flowgo.Record) {
				r.FullMsg = "time:0\thost:h\turl:http://x:8080/a\tname 2: value 2"
				r.SD = gelfParams(gelfP("url", flowgo.StringValue("http://x:8080/a")), gelfP("name 2", flowgo.StringValue(" value 2 ")))
			}),
		},
		{
			"a trailing CR LF is not part of the record",
			"time:0\thost:h\tk:v\r\n",
			gelfRec("h", time.Unix(0, 0).UTC(), func(r *flowgo.Record) {
				r.FullMsg = "time:0\thost:h\tk:v"
				r.SD = gelfParams(gelfP("k", flowgo.StringValue("v")))
			}),
		},
		{
			"empty values are kept for parameters and absent for message",
			"time:0\thost:h\tmessage:\tk:",
			gelfRec("h", time.Unix(0, 0).UTC(), func(r *flowgo.Record) {
				r.FullMsg = "time:0\thost:h\tmessage:\tk:"
				r.SD = gelfParams(gelfP("k", flowgo.StringValue("")))
			}),
		},
		{
			"labels that Flowgger does not map stay parameters",
			"time:0\thost:h\tfacility:mail\tappname:x",
			gelfRec("h", time.Unix(0, 0).UTC(), func(r *flowgo.Record) {
				r.FullMsg = "time:0\thost:h\tfacility:mail\tappname:x"
				r.SD = gelfParams(gelfP("facility", flowgo.StringValue("mail")), gelfP("appname", flowgo.StringValue("x")))
			}),
		},
		{
			"a level with leading zeros is accepted",
			"time:0\thost:h\tlevel:007",
			gelfRec("h", time.Unix(0, 0).UTC(), func(r *flowgo.Record) { r.Severity, r.FullMsg = 7, "time:0\thost:h\tlevel:007" }),
		},
		{
			"UTF-8 passes through",
			"time:0\thost:ホスト\tmessage:Grüße 😀",
			gelfRec("ホスト", time.Unix(0, 0).UTC(), func(r *flowgo.Record) {
				r.Msg, r.FullMsg = "Grüße 😀", "time:0\thost:ホスト\tmessage:Grüße 😀"
			}),
		},
	}
	dec, _ := ltsvNew(t, "")
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			decodertest.Expect(t, dec, tt.in, &tt.want)
		})
	}
}

func TestLTSVSchema(t *testing.T) {
	t.Parallel()
	dec, _ := ltsvNew(t, ltsvSchemaTOML)
	in := "time:0\thost:h\tstatus:200\tsize:0\treqtime:0.25\tdelta:-3\tcached:true\tcounter_u64:7\tnote:12\tother:x"
	got, err := gelfDecode(dec, in)
	if err != nil {
		t.Fatalf("Decode(%q) = %v", in, err)
	}
	want := gelfRec("h", time.Unix(0, 0).UTC(), func(r *flowgo.Record) {
		r.FullMsg = in
		r.SD = gelfParams(
			gelfP("status_u64", flowgo.U64Value(200)),
			gelfP("size_u64", flowgo.U64Value(0)),
			gelfP("reqtime_f64", flowgo.F64Value(0.25)),
			gelfP("delta", flowgo.I64Value(-3)),
			gelfP("cached", flowgo.BoolValue(true)),
			gelfP("counter_u64", flowgo.U64Value(7)), // already ends with the suffix
			gelfP("note", flowgo.StringValue("12")),
			gelfP("other", flowgo.StringValue("x")),
		)
	})
	if !got.Equal(&want) {
		t.Errorf("Decode(%q) =\n%s\nwant\n%s", in, decodertest.Dump(&got), decodertest.Dump(&want))
	}
}

func TestLTSVDecodeErrors(t *testing.T) {
	t.Parallel()
	dec, _ := ltsvNew(t, "")
	checkDecodeErrors(t, dec, []decodeErrorCase{
		{"white space only is empty", " \t \r\n", "ltsv: empty frame"},
		{"time is required", "host:h\tk:v", "ltsv: missing time"},
		{"host is required", "time:0\tk:v", "ltsv: missing host"},
		{"an empty host is rejected", "time:0\thost:", "ltsv: host is empty [col 13]"},
		{"a field without a colon is rejected", "time:0\thost:h\toops", `ltsv: field "oops" has no ':' (want label:value) [col 15]`},
		{"a trailing TAB is rejected", "time:0\thost:h\t", "ltsv: empty field (two TABs in a row, or a TAB at the start or end) [col 15]"},
		{"two TABs in a row are rejected", "time:0\t\thost:h", "ltsv: empty field (two TABs in a row, or a TAB at the start or end) [col 8]"},
		{"an empty label is rejected", "time:0\thost:h\t:v", "ltsv: empty label [col 15]"},
		{"a duplicate label is rejected", "time:0\thost:h\tk:1\tk:2", `ltsv: duplicate label "k" [col 19]`},
		{"a duplicate time is rejected", "time:0\thost:h\ttime:1", `ltsv: duplicate label "time" [col 15]`},
		{"an unparsable time is rejected", "time:yesterday\thost:h", `ltsv: time "yesterday" is not Unix seconds, RFC 3339 or Apache time (10/Oct/2000:13:55:36 -0700) between 1970 and 9999 [col 6]`},
		{"a negative Unix time is rejected", "time:-5\thost:h", `ltsv: time "-5" is not Unix seconds, RFC 3339 or Apache time (10/Oct/2000:13:55:36 -0700) between 1970 and 9999 [col 6]`},
		{"February 30 is rejected", "time:2001-02-30T00:00:00Z\thost:h", `ltsv: time "2001-02-30T00:00:00Z" is not Unix seconds, RFC 3339 or Apache time (10/Oct/2000:13:55:36 -0700) between 1970 and 9999 [col 6]`},
		{"an RFC 3339 time without zone is rejected", "time:2001-02-03T00:00:00\thost:h", `ltsv: time "2001-02-03T00:00:00" is not Unix seconds, RFC 3339 or Apache time (10/Oct/2000:13:55:36 -0700) between 1970 and 9999 [col 6]`},
		{"an Apache time without zone is rejected", "time:[10/Oct/2000:13:55:36]\thost:h", `ltsv: time "[10/Oct/2000:13:55:36]" is not Unix seconds, RFC 3339 or Apache time (10/Oct/2000:13:55:36 -0700) between 1970 and 9999 [col 6]`},
		{"an unknown month is rejected", "time:10/Okt/2000:13:55:36 -0700\thost:h", `ltsv: time "10/Okt/2000:13:55:36 -0700" is not Unix seconds, RFC 3339 or Apache time (10/Oct/2000:13:55:36 -0700) between 1970 and 9999 [col 6]`},
		{"a level above 7 is rejected", "time:0\thost:h\tlevel:8", `ltsv: level "8" is not an integer from 0 to 7 [col 21]`},
		{"a level name is rejected", "time:0\thost:h\tlevel:info", `ltsv: level "info" is not an integer from 0 to 7 [col 21]`},
		{"an empty level is rejected", "time:0\thost:h\tlevel:", `ltsv: level "" is not an integer from 0 to 7 [col 21]`},
		{"invalid UTF-8 is rejected", "time:0\thost:h\xff", "ltsv: invalid UTF-8 [col 14]"},
	})
}

func TestLTSVSchemaErrors(t *testing.T) {
	t.Parallel()
	dec, _ := ltsvNew(t, ltsvSchemaTOML)
	checkDecodeErrors(t, dec, []decodeErrorCase{
		{"a u64 field with a letter is rejected", "time:0\thost:h\tstatus:20x", `ltsv: status: "20x" is not a u64 (a decimal integer) [col 22]`},
		{"a negative u64 is rejected", "time:0\thost:h\tstatus:-1", `ltsv: status: "-1" is not a u64 (a decimal integer) [col 22]`},
		{"a u64 past 2^64 is rejected", "time:0\thost:h\tstatus:18446744073709551616", `ltsv: status: "18446744073709551616" is not a u64 (out of range) [col 22]`},
		{"an i64 past 2^63 is rejected", "time:0\thost:h\tdelta:9223372036854775808", `ltsv: delta: "9223372036854775808" is not an i64 (out of range) [col 21]`},
		{"an f64 NaN is rejected", "time:0\thost:h\treqtime:NaN", `ltsv: reqtime: "NaN" is not an f64 (a decimal number) [col 23]`},
		{"an f64 infinity is rejected", "time:0\thost:h\treqtime:1e999", `ltsv: reqtime: "1e999" is not an f64 (out of range) [col 23]`},
		{"a hex float is rejected", "time:0\thost:h\treqtime:0x1p3", `ltsv: reqtime: "0x1p3" is not an f64 (a decimal number) [col 23]`},
		{"a bool must be true or false", "time:0\thost:h\tcached:yes", `ltsv: cached: "yes" is not a bool (true or false) [col 22]`},
		{"an empty typed value is rejected", "time:0\thost:h\tsize:", `ltsv: size: "" is not a u64 (a decimal integer) [col 20]`},
		{"a field that collides with a suffixed name is rejected", "time:0\thost:h\tstatus:1\tstatus_u64:2", `ltsv: duplicate label "status_u64" [col 24]`},
	})
}

func TestLTSVConfig(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		src     string
		wantErr string // "" means it must build
		warning string // a warning that must be given
	}{
		{
			"an unknown schema type names the key and the known types",
			"[input]\n[input.ltsv_schema]\ncounter = \"u32\"\n",
			`t.toml:3: input.ltsv_schema.counter: unsupported type "u32" (known: bool, f64, i64, string, u64)`, "",
		},
		{
			"a string suffix is rejected",
			"[input]\n[input.ltsv_suffixes]\nstring = \"_s\"\n",
			`t.toml:3: input.ltsv_suffixes.string: strings cannot be suffixed (suffixes apply to bool, f64, i64 and u64)`, "",
		},
		{
			"a suffix for an unknown type is rejected",
			"[input]\n[input.ltsv_suffixes]\nint = \"_i\"\n",
			`t.toml:3: input.ltsv_suffixes.int: unsupported type "int" (known: bool, f64, i64, u64)`, "",
		},
		{
			"the same type twice in different case is rejected",
			"[input]\n[input.ltsv_suffixes]\nu64 = \"_a\"\nU64 = \"_b\"\n",
			`t.toml:3: input.ltsv_suffixes.u64: suffix for u64 given twice`, "",
		},
		{
			"a schema that is not a table is a type error",
			"[input]\nltsv_schema = \"u64\"\n",
			`t.toml:2: input.ltsv_schema: wrong type: expected a table, got a string`, "",
		},
		{
			"suffixes that are not a table are rejected",
			"[input]\nltsv_suffixes = 1\n",
			`t.toml:2: input.ltsv_suffixes: wrong type: expected a table, got an integer`, "",
		},
		{
			"a schema type that is not a string is a type error",
			"[input]\n[input.ltsv_schema]\ncounter = 1\n",
			"t.toml:3: input.ltsv_schema.counter: wrong type: expected a string, got an integer", "",
		},
		{
			"a schema entry for a record field is ignored with a warning",
			"[input]\n[input.ltsv_schema]\nlevel = \"u64\"\n",
			"", `input.ltsv_schema.level: ignored: "level" maps to a record field, not a typed parameter`,
		},
		{
			"the flowgger.toml example builds",
			"[input]\ntype = \"udp\"\nformat = \"ltsv\"\n[input.ltsv_schema]\ncounter = \"u64\"\n[input.ltsv_suffixes]\nu64 = \"_u64\"\n",
			"", "",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f, err := config.Parse("t.toml", tt.src)
			if err != nil {
				t.Fatalf("config.Parse: %v", err)
			}
			_, err = decoder.New("ltsv", f.Inputs[0])
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf(`New("ltsv") = %v; want success`, err)
				}
				f.Inputs[0].Accept("type", "format") // the input's own keys
				if err := f.Check(); err != nil {
					t.Errorf("Check() = %v; want the ltsv keys known", err)
				}
			} else {
				if err == nil || err.Error() != tt.wantErr {
					t.Fatalf(`New("ltsv") = %v; want %s`, err, tt.wantErr)
				}
				var ce *config.Error
				if !errors.As(err, &ce) {
					t.Errorf("error is %T; want *config.Error", err)
				}
			}
			if tt.warning != "" && !strings.Contains(strings.Join(f.Warnings(), "\n"), tt.warning) {
				t.Errorf("warnings %q; want one containing %q", f.Warnings(), tt.warning)
			}
		})
	}
}

func TestLTSVGolden(t *testing.T) {
	dec, _ := ltsvNew(t, ltsvSchemaTOML)
	gelfGolden(t, "ltsv", dec)
}

func TestLTSVConformance(t *testing.T) {
	dec, _ := ltsvNew(t, ltsvSchemaTOML)
	good := [][]byte{
		[]byte(ltsvAverage),
		[]byte("time:1\thost:h\tstatus:200\tcached:false"),
		[]byte("time:[10/Oct/2000:13:55:36 -0700]\thost:h\tmessage:x\n"),
	}
	bad := [][]byte{[]byte("host:h"), []byte("time:1\thost:h\tstatus:x"), []byte("time:1\thost:h\t"), []byte("\t")}
	decodertest.Run(t, dec, good, bad)
	decodertest.Run(t, &decoder.LTSV{}, good[:1], bad[:1])
}

// FuzzDecodeLTSV checks that the decoder never panics, reports errors as
// *decoder.Error within the frame, and, when it accepts a line, that the
// record says what a plain split of the line says, and that its time
// agrees with the standard library's parse of the same text.
func FuzzDecodeLTSV(f *testing.F) {
	gelfSeed(f, "ltsv")
	for _, s := range []string{
		"time:2000-10-10T13:55:36.25-07:00\thost:h\tstatus:1",
		"time:10/Oct/2000:13:55:36 -0700\thost:h\treqtime:1.5e3",
		"time:0\thost:h\tcached:true\tdelta:-1\tsize:18446744073709551615",
	} {
		f.Add([]byte(s))
	}
	dec, _ := ltsvNew(f, ltsvSchemaTOML)
	f.Fuzz(func(t *testing.T, in []byte) {
		var r flowgo.Record
		r.Reset()
		err := dec.Decode(bytes.Clone(in), &r, new(flowgo.Arena))
		if err != nil {
			var de *decoder.Error
			if !errors.As(err, &de) || de.Format != "ltsv" || de.Col < 0 || de.Col > len(in)+1 {
				t.Fatalf("Decode(%q) error %#v; want a *decoder.Error for ltsv with a column in the frame", in, err)
			}
			return
		}
		line := strings.TrimRight(string(in), "\r\n")
		if r.FullMsg != strings.TrimRight(line, " \t\r\n\v\f") {
			t.Fatalf("Decode(%q).FullMsg = %q; want the line", in, r.FullMsg)
		}
		var params []flowgo.Param
		if len(r.SD) == 1 {
			params = r.SD[0].Params
		} else if len(r.SD) > 1 {
			t.Fatalf("Decode(%q) gave %d SD elements; want at most 1", in, len(r.SD))
		}
		seen := map[string]bool{}
		n := 0
		for _, field := range strings.Split(line, "\t") {
			label, value, ok := strings.Cut(field, ":")
			if !ok || label == "" || seen[label] {
				t.Fatalf("Decode(%q) accepted field %q (or a repeated label)", in, field)
			}
			seen[label] = true
			switch label {
			case "host":
				if r.Hostname != value {
					t.Fatalf("Decode(%q).Hostname = %q; want %q", in, r.Hostname, value)
				}
			case "message":
				if r.Msg != value {
					t.Fatalf("Decode(%q).Msg = %q; want %q", in, r.Msg, value)
				}
			case "time":
				v := strings.TrimSuffix(strings.TrimPrefix(value, "["), "]")
				for _, layout := range []string{time.RFC3339Nano, "02/Jan/2006:15:04:05 -0700"} {
					if std, err := time.Parse(layout, v); err == nil && !std.Equal(r.Time) {
						t.Fatalf("Decode(%q).Time = %v; time.Parse(%q) gives %v", in, r.Time, layout, std)
					}
				}
			case "level":
			default:
				if n >= len(params) || !strings.HasPrefix(params[n].Name, label) {
					t.Fatalf("Decode(%q): parameter %d is %v; want label %q", in, n, params, label)
				}
				if params[n].Value.Kind == flowgo.KindString && params[n].Value.Str != value {
					t.Fatalf("Decode(%q): parameter %q = %q; want %q", in, label, params[n].Value.Str, value)
				}
				n++
			}
		}
		if n != len(params) || !seen["time"] || !seen["host"] {
			t.Fatalf("Decode(%q) = %s; want %d parameters, time and host", in, decodertest.Dump(&r), n)
		}
	})
}

// ltsvAverage is a typical LTSV access-log line of about 250 bytes.
const ltsvAverage = "time:[06/May/2024:07:08:09 +0000]\thost:10.1.2.3\tforwardedfor:-\treq:GET /api/v2/orders/81723?expand=items HTTP/1.1\tstatus:200\tsize:5124\treferer:https://shop.example.com/cart\tua:Mozilla/5.0 (X11; Linux x86_64)\treqtime:0.023\tcache:HIT"

var ltsvSink flowgo.Record

func BenchmarkDecodeLTSV(b *testing.B) {
	plain, _ := ltsvNew(b, "")
	typed, _ := ltsvNew(b, ltsvSchemaTOML)
	cases := []struct {
		name string
		dec  decoder.Decoder
		in   string
	}{
		{"ok/average", plain, ltsvAverage},
		{"ok/schema", typed, ltsvAverage},
		{"ok/unix_time", plain, "time:1715000000.123\thost:10.1.2.3\tmessage:GET /api/v2/orders/81723 returned 200 in 23ms\tlevel:6\tapp:orders-api\trequest_id:9f1c2e4a-7b3d-4e8f-a1c2-5d6e7f8a9b0c\tstatus:200\tuser:alice"},
		{"ok/rfc3339", plain, "time:2024-05-06T07:08:09.123+02:00\thost:10.1.2.3\tmessage:GET /api/v2/orders/81723 returned 200 in 23ms\tlevel:6\tapp:orders-api\trequest_id:9f1c2e4a-7b3d-4e8f-a1c2-5d6e7f8a9b0c\tstatus:200\tuser:alice"},
		{"no/no_colon", plain, strings.Replace(ltsvAverage, "cache:HIT", "cacheHIT", 1)},
	}
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
				ltsvSink.Reset()
				err := c.dec.Decode(in, &ltsvSink, &a)
				if (err == nil) != strings.HasPrefix(c.name, "ok/") {
					b.Fatalf("Decode = %v", err)
				}
			}
		})
	}
}
