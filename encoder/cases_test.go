package encoder

import (
	"math"
	"strings"
	"testing"
	"time"

	"github.com/flowgo/flowgo"
	"github.com/flowgo/flowgo/config"
)

// testNow is the fixed clock of the tests: prepend timestamps and records
// without a time read it.
var testNow = time.Date(2024, time.February, 29, 23, 59, 58, 987654321, time.UTC)

func fixedClock() time.Time { return testNow }

// setClock gives e the test clock, if it has a clock.
func setClock(e Encoder, c clock) {
	switch e := e.(type) {
	case *GELF:
		e.now = c
	case *RFC3164:
		e.now = c
	case *LTSV:
		e.now = c
	case *Passthrough:
		e.now = c
	case *Capnp:
		e.now = c
	}
}

// newTestEncoder builds the encoder registered as format from the [output]
// keys in toml, with the test clock, and fails the test if the config has
// an error or a key nobody read.
func newTestEncoder(t testing.TB, format, toml string) Encoder {
	t.Helper()
	f, err := config.Parse("test.toml", "[output]\n"+toml)
	if err != nil {
		t.Fatalf("config: %v", err)
	}
	e, err := New(format, f.Output)
	if err != nil {
		t.Fatalf("New(%q, %q) = %v", format, toml, err)
	}
	if err := f.Check(); err != nil {
		t.Fatalf("config check: %v", err)
	}
	setClock(e, fixedClock)
	return e
}

func str(name, v string) flowgo.Param { return flowgo.Param{Name: name, Value: flowgo.StringValue(v)} }

func typed(name string, v flowgo.Value) flowgo.Param { return flowgo.Param{Name: name, Value: v} }

// record returns a record with Facility and Severity unset, changed by fn.
func record(fn func(r *flowgo.Record)) flowgo.Record {
	var r flowgo.Record
	r.Reset()
	fn(&r)
	return r
}

var ts = time.Date(2015, time.August, 5, 15, 53, 45, 637824000, time.UTC)

const line5424 = `<23>1 2015-08-05T15:53:45.637824Z testhostname appname 69 42 [origin@123 software="te\st sc\"ript" swVersion="0.0.1"] test message`

// testCases are the records of the golden files, the conformance runs and
// the round trips: one per feature an encoder must get right.
var testCases = []struct {
	name string
	r    flowgo.Record
}{
	{"all_fields", record(func(r *flowgo.Record) {
		r.Time, r.Hostname, r.AppName, r.ProcID, r.MsgID = ts, "testhostname", "appname", "69", "42"
		r.Msg, r.FullMsg, r.Facility, r.Severity = "test message", line5424, 2, 7
		r.SD = []flowgo.SDElement{{ID: "origin@123", Params: []flowgo.Param{str("software", `te\st sc"ript`), str("swVersion", "0.0.1")}}}
	})},
	{"empty", record(func(r *flowgo.Record) {})},
	{"only_sd", record(func(r *flowgo.Record) {
		r.Time, r.Hostname = ts, "h"
		r.SD = []flowgo.SDElement{{ID: "exampleSDID@32473", Params: []flowgo.Param{str("iut", "3")}}}
	})},
	{"multi_sd", record(func(r *flowgo.Record) {
		r.Time, r.Hostname, r.AppName, r.Msg, r.Facility, r.Severity = ts, "h", "app", "several elements", 16, 6
		r.SD = []flowgo.SDElement{
			{ID: "origin@123", Params: []flowgo.Param{str("ip", "192.0.2.1"), str("software", "x")}},
			{ID: "meta", Params: []flowgo.Param{typed("sequenceId", flowgo.U64Value(7))}},
			{ID: "empty@1"},
			{ID: "origin@123", Params: []flowgo.Param{str("ip", "192.0.2.2")}},
			{Params: []flowgo.Param{str("loose", "field")}},
		}
	})},
	{"typed_values", record(func(r *flowgo.Record) {
		r.Time, r.Hostname, r.Msg, r.Severity = ts, "h", "typed", 3
		r.SD = []flowgo.SDElement{{Params: []flowgo.Param{
			typed("yes", flowgo.BoolValue(true)), typed("no", flowgo.BoolValue(false)),
			typed("half", flowgo.F64Value(1.5)), typed("three", flowgo.F64Value(3)),
			typed("negzero", flowgo.F64Value(math.Copysign(0, -1))), typed("big", flowgo.F64Value(1e21)),
			typed("tiny", flowgo.F64Value(1e-7)), typed("pi", flowgo.F64Value(math.Pi)),
			typed("nan", flowgo.F64Value(math.NaN())), typed("inf", flowgo.F64Value(math.Inf(1))),
			typed("neginf", flowgo.F64Value(math.Inf(-1))),
			typed("neg", flowgo.I64Value(-42)), typed("minint", flowgo.I64Value(math.MinInt64)),
			typed("maxuint", flowgo.U64Value(math.MaxUint64)), typed("nothing", flowgo.NullValue()),
			str("empty", ""),
		}}}
	})},
	{"unicode", record(func(r *flowgo.Record) {
		r.Time, r.Hostname, r.AppName, r.ProcID, r.MsgID = ts, "hôte", "café", "№1", "ünï"
		r.Msg, r.FullMsg, r.Facility, r.Severity = "日本語 ✓ \u2028 \U0001D11E", "raw ünicode", 1, 5
		r.SD = []flowgo.SDElement{{ID: "exämple@1", Params: []flowgo.Param{str("naïve", "ü€𝄞")}}}
	})},
	{"invalid_utf8", record(func(r *flowgo.Record) {
		r.Time, r.Hostname, r.AppName = ts, "h\x80st", "a\xffp"
		r.Msg, r.FullMsg = "bad \xff\xfe bytes \xe2\x82", "raw \xc3\x28"
		r.SD = []flowgo.SDElement{{Params: []flowgo.Param{str("k\xff", "\xc3\x28 \xed\xa0\x80 surrogate")}}}
	})},
	{"control_chars", record(func(r *flowgo.Record) {
		r.Time, r.Hostname, r.AppName, r.ProcID, r.MsgID = ts, "my host", "my app:[x]", "1 2]", "id with space"
		r.Msg = "line1\nline2\r\n\ttab \"quoted\" back\\slash ]bracket \x00\x01\x1f\x7f"
		r.FullMsg = "full\nline"
		r.SD = []flowgo.SDElement{{ID: "a b=c]", Params: []flowgo.Param{
			str("a b=c]d\"e:f\tg", "v\"a]l\\u\ne\tx\r"),
			str("", "empty name"),
		}}}
	})},
	{"id_param", record(func(r *flowgo.Record) {
		r.Time, r.Hostname, r.Msg = ts, "h", "the _id field is Graylog's"
		r.SD = []flowgo.SDElement{{Params: []flowgo.Param{str("id", "mine"), str("ID", "upper"), str("_id", "underscored")}}}
	})},
	{"duplicate_names", record(func(r *flowgo.Record) {
		r.Time, r.Hostname, r.Msg, r.MsgID, r.Facility, r.Severity = ts, "h", "later wins", "MSG1", 3, 4
		r.SD = []flowgo.SDElement{
			{ID: "first@1", Params: []flowgo.Param{str("a", "1"), str("b", "2"), str("a b", "3")}},
			{ID: "second@1", Params: []flowgo.Param{str("a", "4"), str("a_b", "5"), str("msgid", "from param"),
				typed("facility_num", flowgo.I64Value(9)), str("host", "param host"), str("id", "x"), str("id_", "y")}},
		}
	})},
	{"gelf_like", record(func(r *flowgo.Record) {
		r.Time, r.Hostname, r.Msg, r.FullMsg, r.Severity = ts, "example.org", "A short message", "Backtrace here\n\nmore stuff", 1
		r.SD = []flowgo.SDElement{{Params: []flowgo.Param{typed("user_id", flowgo.I64Value(9001)), str("some_info", "foo"), str("some_env_var", "bar")}}}
	})},
	{"ltsv_like", record(func(r *flowgo.Record) {
		r.Time, r.Hostname, r.Msg = time.Date(2015, 8, 5, 15, 53, 45, 0, time.UTC), "192.0.2.1", "GET /"
		r.SD = []flowgo.SDElement{{Params: []flowgo.Param{str("ua", "curl/8.5.0"), typed("status", flowgo.U64Value(200)), typed("time", flowgo.F64Value(0.25))}}}
	})},
	{"facility_only", record(func(r *flowgo.Record) {
		r.Time, r.Hostname, r.Msg, r.Facility = ts, "h", "no severity", 4
	})},
	{"severity_only", record(func(r *flowgo.Record) {
		r.Time, r.Hostname, r.Msg, r.Severity = ts, "h", "no facility", 0
	})},
	{"out_of_range_pri", record(func(r *flowgo.Record) {
		r.Time, r.Hostname, r.Msg, r.Facility, r.Severity = ts, "h", "facility 31 and severity 9 are not valid", 31, 9
	})},
	{"blank_host", record(func(r *flowgo.Record) {
		r.Time, r.Hostname, r.Msg = ts, " \t", "Graylog rejects a blank host"
	})},
	{"negative_time", record(func(r *flowgo.Record) {
		r.Time, r.Hostname, r.Msg = time.Date(1969, 12, 31, 23, 59, 58, 500000000, time.UTC), "h", "before 1970"
	})},
	{"far_future", record(func(r *flowgo.Record) {
		r.Time, r.Hostname, r.Msg = time.Date(12345, 1, 2, 3, 4, 5, 6000, time.UTC), "h", "RFC 3339 has four year digits"
	})},
	{"other_zone", record(func(r *flowgo.Record) {
		r.Time, r.Hostname, r.Msg = time.Date(2015, 8, 6, 1, 15, 24, 120000000, time.FixedZone("CEST", 2*3600)), "h", "written in UTC"
	})},
	{"long_fields", record(func(r *flowgo.Record) {
		r.Time, r.Hostname, r.AppName = ts, strings.Repeat("h", 300), strings.Repeat("a", 60)
		r.ProcID, r.MsgID, r.Msg = strings.Repeat("p", 130), strings.Repeat("m", 40), "cut to the RFC 5424 lengths"
		r.SD = []flowgo.SDElement{
			{ID: strings.Repeat("i", 40) + "1", Params: []flowgo.Param{str(strings.Repeat("n", 40), "v")}},
			{ID: strings.Repeat("i", 40) + "2", Params: []flowgo.Param{str("same", "written ID")}},
		}
	})},
	{"many_params", record(func(r *flowgo.Record) {
		r.Time, r.Hostname, r.Msg, r.MsgID = ts, "h", "above smallParams", "m"
		var ps []flowgo.Param
		for i := range 30 {
			ps = append(ps, str(string(rune('a'+i%13)), strings.Repeat("v", i)))
		}
		ps = append(ps, str("msgid", "param"), str("host", "param"))
		r.SD = []flowgo.SDElement{{ID: "x@1", Params: ps[:10]}, {Params: ps[10:]}}
	})},
	{"many_elements", record(func(r *flowgo.Record) {
		r.Time, r.Hostname, r.Msg = ts, "h", "above smallParams elements"
		for i := range 30 {
			r.SD = append(r.SD, flowgo.SDElement{ID: string(rune('a'+i%7)) + "@1", Params: []flowgo.Param{str("n", string(rune('A'+i)))}})
		}
		r.SD = append(r.SD, flowgo.SDElement{}, flowgo.SDElement{Params: []flowgo.Param{str("f", "1")}})
	})},
}

// testRecords returns the records of testCases.
func testRecords() []flowgo.Record {
	out := make([]flowgo.Record, len(testCases))
	for i, c := range testCases {
		out[i] = c.r
	}
	return out
}
