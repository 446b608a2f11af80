package decoder_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/flowgo/flowgo"
	"github.com/flowgo/flowgo/decoder"
	"github.com/flowgo/flowgo/decoder/decodertest"
	"github.com/flowgo/flowgo/encoder"
	"github.com/flowgo/flowgo/internal/capnp"
	"github.com/flowgo/flowgo/internal/capnp/capnptest"
)

// splitCapnp cuts a stream of messages into messages.
func splitCapnp(t testing.TB, stream []byte) [][]byte {
	t.Helper()
	var out [][]byte
	for len(stream) > 0 {
		size, need, err := capnp.MessageSize(stream)
		if err != nil || need > 0 || size > int64(len(stream)) {
			t.Fatalf("bad stream: MessageSize = %d, %d, %v with %d bytes", size, need, err, len(stream))
		}
		out = append(out, stream[:size])
		stream = stream[size:]
	}
	return out
}

// capnpMessages encodes Record literals with the capnp tool.
func capnpMessages(t testing.TB, literals []string, args ...string) [][]byte {
	t.Helper()
	msgs := splitCapnp(t, capnptest.Encode(t, literals, args...))
	if len(msgs) != len(literals) {
		t.Fatalf("capnp encode gave %d messages for %d literals", len(msgs), len(literals))
	}
	return msgs
}

func capnpDecoder(t testing.TB) decoder.Decoder {
	t.Helper()
	d, err := decoder.New("capnp", nil)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func capnpDecode(d decoder.Decoder, msg []byte) (flowgo.Record, error) {
	var r flowgo.Record
	r.Reset()
	err := d.Decode(bytes.Clone(msg), &r, new(flowgo.Arena))
	return r.Clone(), err
}

// The record of Flowgger's own capnp tests (capnp_splitter.rs,
// capnp_encoder.rs), as capnp's text format.
const flowggerTestRecord = `(ts = 1385053862.3072, hostname = "example.org", facility = 255, severity = 1,
 appname = "appname", procid = "44", msg = "A short message that helps you identify what is going on",
 fullMsg = "Backtrace here\n\nmore stuff", sdId = "someid",
 pairs = [(key = "_some_info", value = (string = "foo"))])`

func TestCapnpDecode(t *testing.T) {
	ts := func(s string) time.Time {
		tt, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			t.Fatal(err)
		}
		return tt
	}
	p := func(name string, v flowgo.Value) flowgo.Param { return flowgo.Param{Name: name, Value: v} }
	rec := func(when string, f func(r *flowgo.Record)) flowgo.Record {
		var r flowgo.Record
		r.Reset()
		r.Time = ts(when)
		f(&r)
		return r
	}
	tests := []struct {
		name, literal string
		want          flowgo.Record
	}{
		{"Flowgger's test record", flowggerTestRecord, rec("2013-11-21T17:11:02.3072Z", func(r *flowgo.Record) {
			r.Hostname, r.Severity, r.AppName, r.ProcID = "example.org", 1, "appname", "44"
			r.Msg, r.FullMsg = "A short message that helps you identify what is going on", "Backtrace here\n\nmore stuff"
			r.SD = []flowgo.SDElement{{ID: "someid", Params: []flowgo.Param{p("some_info", flowgo.StringValue("foo"))}}}
		})},
		{"only a timestamp", `(ts = 1)`, rec("1970-01-01T00:00:01Z", func(r *flowgo.Record) {
			r.Facility, r.Severity = 0, 0 // unset UInt8 fields read 0: kern.emerg, as in Flowgger
		})},
		{"microseconds kept", `(ts = 1438790025.637824, facility = 255, severity = 255, hostname = "h")`,
			rec("2015-08-05T15:53:45.637824Z", func(r *flowgo.Record) { r.Hostname = "h" })},
		{"facility 23, severity 7", `(ts = 1, facility = 23, severity = 7)`,
			rec("1970-01-01T00:00:01Z", func(r *flowgo.Record) { r.Facility, r.Severity = 23, 7 })},
		{"facility 24 and severity 8 are unset", `(ts = 1, facility = 24, severity = 8)`,
			rec("1970-01-01T00:00:01Z", func(*flowgo.Record) {})},
		{"every value type, pairs then extra", `(ts = 2, facility = 255, severity = 255, sdId = "x@1", pairs = [
			(key = "_s", value = (string = "v")), (key = "b", value = (bool = true)), (key = "f", value = (f64 = -1.5)),
			(key = "i", value = (i64 = -9223372036854775808)), (key = "u", value = (u64 = 18446744073709551615)),
			(key = "__n", value = (null = void)), (key = "e", value = (string = ""))],
			extra = [(key = "x-header1", value = (string = "one")), (key = "_x2", value = (bool = false))])`,
			rec("1970-01-01T00:00:02Z", func(r *flowgo.Record) {
				r.SD = []flowgo.SDElement{{ID: "x@1", Params: []flowgo.Param{
					p("s", flowgo.StringValue("v")), p("b", flowgo.BoolValue(true)), p("f", flowgo.F64Value(-1.5)),
					p("i", flowgo.I64Value(math.MinInt64)), p("u", flowgo.U64Value(math.MaxUint64)),
					p("_n", flowgo.NullValue()), p("e", flowgo.StringValue("")),
					p("x-header1", flowgo.StringValue("one")), p("x2", flowgo.BoolValue(false)),
				}}}
			})},
		{"an SD-ID alone makes an element", `(ts = 3, facility = 255, severity = 255, sdId = "meta")`,
			rec("1970-01-01T00:00:03Z", func(r *flowgo.Record) { r.SD = []flowgo.SDElement{{ID: "meta"}} })},
		{"empty texts are absent", `(ts = 4, facility = 255, severity = 255, hostname = "", msgid = "", sdId = "", pairs = [])`,
			rec("1970-01-01T00:00:04Z", func(*flowgo.Record) {})},
		{"unicode and control characters", `(ts = 5, facility = 255, severity = 255, msg = "é日本\x01\t\"\\", hostname = "h\x7f")`,
			rec("1970-01-01T00:00:05Z", func(r *flowgo.Record) { r.Msg, r.Hostname = "é日本\x01\t\"\\", "h\x7f" })},
	}
	d := capnpDecoder(t)
	var lits []string
	for _, tt := range tests {
		lits = append(lits, tt.literal)
	}
	for _, args := range [][]string{nil, {"--segment-size=3"}} {
		msgs := capnpMessages(t, lits, args...)
		for i, tt := range tests {
			got, err := capnpDecode(d, msgs[i])
			if err != nil {
				t.Errorf("%v %s: Decode = %v", args, tt.name, err)
				continue
			}
			if !got.Equal(&tt.want) {
				t.Errorf("%v %s:\n got %s\nwant %s", args, tt.name, decodertest.Dump(&got), decodertest.Dump(&tt.want))
			}
		}
	}
}

// setPairTag rewrites the union tag of the first pair of a message written
// by capnp encode (one segment, Record then the pairs list).
func setPairTag(t *testing.T, msg []byte, tag uint16) []byte {
	t.Helper()
	m := bytes.Clone(msg)
	// Table (8), root pointer (8), Record (16 + 72), then the pairs list's
	// tag word: the first pair starts after it.
	const first = 8 + 8 + 16 + 72 + 8
	if got := binary.LittleEndian.Uint64(m[first-8:]); got&3 != 0 || uint32(got)>>2 != 1 {
		t.Fatalf("the layout of capnp encode's message changed: list tag %#x", got)
	}
	binary.LittleEndian.PutUint16(m[first:], tag)
	return m
}

func TestCapnpDecodeErrors(t *testing.T) {
	lits := []string{
		`(hostname = "no timestamp")`,
		`(ts = -1)`,
		`(ts = nan)`,
		`(ts = inf)`,
		`(ts = 253402300800)`,
		`(ts = 1, hostname = "bad \xff utf-8")`,
		`(ts = 1, pairs = [(key = "k\xc3", value = (null = void))])`,
		`(ts = 1, extra = [(key = "k", value = (string = "\xe6\x97"))])`,
		`(ts = 1, pairs = [(key = "k", value = (string = "v"))])`,
	}
	msgs := capnpMessages(t, lits)
	d := capnpDecoder(t)
	tests := []struct {
		msg  []byte
		want string
	}{
		{msgs[0], "capnp: ts = 0: a timestamp is required"},
		{msgs[1], "capnp: ts = -1: a timestamp is required"},
		{msgs[2], "capnp: ts = NaN"},
		{msgs[3], "capnp: ts = +Inf"},
		{msgs[4], "capnp: ts = 2.534023008e+11"},
		{msgs[5], "capnp: hostname: invalid UTF-8 [col "},
		{msgs[6], "capnp: pairs[0].key: invalid UTF-8 [col "},
		{msgs[7], "capnp: extra[0].value.string: invalid UTF-8 [col "},
		{setPairTag(t, msgs[8], 6), "capnp: pairs[0].value: unknown value type (union tag 6; record.capnp has 0-5)"},
		{msgs[8][:len(msgs[8])-1], "capnp: truncated"},
		{append(bytes.Clone(msgs[8]), 0, 0, 0, 0, 0, 0, 0, 0), "capnp: 8 bytes after the end of the message [col "},
		{[]byte("<13>1 2024-01-01T00:00:00Z host app - - - text"), "capnp: segment table claims 1043542333 segments"},
	}
	for _, tt := range tests {
		_, err := capnpDecode(d, tt.msg)
		var de *decoder.Error
		if !errors.As(err, &de) || !strings.HasPrefix(err.Error(), tt.want) {
			t.Errorf("Decode = %v; want a *decoder.Error starting %q", err, tt.want)
		}
	}
	// The column of invalid UTF-8 is the bad byte's.
	_, err := capnpDecode(d, msgs[5])
	var de *decoder.Error
	if errors.As(err, &de) && de.Col > 0 && msgs[5][de.Col-1] != 0xff {
		t.Errorf("column %d points at %#x; want the 0xff byte", de.Col, msgs[5][de.Col-1])
	}
	// The tag rewrite itself is right: tag 5 (null) decodes.
	if r, err := capnpDecode(d, setPairTag(t, msgs[8], capnp.TagNull)); err != nil || r.SD[0].Params[0].Value.Kind != flowgo.KindNull {
		t.Errorf("tag 5: %v, %v", decodertest.Dump(&r), err)
	}
}

func TestCapnpConformance(t *testing.T) {
	good := capnpMessages(t, []string{flowggerTestRecord, `(ts = 1)`, `(ts = 1, pairs = [(key = "a", value = (u64 = 1))])`})
	bad := [][]byte{
		good[0][:8],
		good[0][:len(good[0])-8],
		append(bytes.Clone(good[1]), good[1]...), // two messages in one frame
		[]byte(`{"host":"h","short_message":"GELF"}`),
		make([]byte, 16), // a null root: no timestamp
	}
	decodertest.Run(t, capnpDecoder(t), good, bad)
}

func TestCapnpRegistered(t *testing.T) {
	for _, n := range decoder.Names() {
		if n == "capnp" {
			return
		}
	}
	t.Errorf("capnp is not among the decoders %v", decoder.Names())
}

// TestCapnpDecodeAllocs: a record decodes into the arena, without a heap
// allocation of its own.
func TestCapnpDecodeAllocs(t *testing.T) {
	msg := capnpMessages(t, []string{flowggerTestRecord})[0]
	d := capnpDecoder(t)
	var a flowgo.Arena
	var r flowgo.Record
	allocs := testing.AllocsPerRun(1000, func() {
		r.Reset()
		if err := d.Decode(msg, &r, &a); err != nil {
			t.Fatal(err)
		}
		a.Reset()
	})
	if allocs != 0 {
		t.Errorf("Decode allocates %v times per record; want 0", allocs)
	}
}

func FuzzDecodeCapnp(f *testing.F) {
	for _, m := range capnpMessages(f, []string{
		flowggerTestRecord,
		`(ts = 1)`,
		`(ts = 2, facility = 3, severity = 4, sdId = "x", pairs = [(key = "b", value = (bool = true)), (key = "n", value = (null = void)),
		  (key = "f", value = (f64 = 2.5)), (key = "i", value = (i64 = -3)), (key = "u", value = (u64 = 4))],
		  extra = [(key = "e", value = (string = "x"))])`,
	}, "--segment-size=2") {
		f.Add(m)
	}
	for _, m := range capnpMessages(f, []string{flowggerTestRecord}) {
		f.Add(m)
	}
	d := capnpDecoder(f)
	enc, err := encoder.New("capnp", nil)
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		var r flowgo.Record
		r.Reset()
		err := d.Decode(bytes.Clone(in), &r, new(flowgo.Arena))
		if err != nil {
			var de *decoder.Error
			if !errors.As(err, &de) || de.Format != "capnp" || de.Col < 0 || de.Col > len(in)+1 {
				t.Fatalf("Decode(%x) error %#v; want a *decoder.Error for capnp with a column in the frame", in, err)
			}
			return
		}
		// What decodes, encodes, and decodes again to the same record.
		out, err := enc.Encode(nil, &r)
		if err != nil {
			t.Fatalf("Encode(Decode(%x)) = %v", in, err)
		}
		var r2 flowgo.Record
		r2.Reset()
		if err := d.Decode(out, &r2, new(flowgo.Arena)); err != nil {
			t.Fatalf("Decode(Encode(Decode(%x))) = %v", in, err)
		}
		if !r.Equal(&r2) {
			t.Fatalf("round trip of %x:\n%s\n%s", in, decodertest.Dump(&r), decodertest.Dump(&r2))
		}
	})
}

func BenchmarkDecodeCapnp(b *testing.B) {
	// The encoder's benchmark record (an nginx access line with four SD
	// params), as flowgo writes it.
	msg := capnpMessages(b, []string{`(ts = 1709210096.123456, hostname = "web-frontend-03.example.net",
		facility = 20, severity = 5, appname = "nginx", procid = "24731", msgid = "ACCESS",
		msg = "192.0.2.17 \"GET /api/v1/orders/8842 HTTP/1.1\" 200 5120 \"curl/8.5.0\"",
		fullMsg = "<165>1 2024-02-29T12:34:56.123456Z web-frontend-03.example.net nginx 24731 ACCESS [request@32473 method=\"GET\" path=\"/api/v1/orders/8842\" status=\"200\" bytes=\"5120\"] 192.0.2.17 \"GET /api/v1/orders/8842 HTTP/1.1\" 200 5120 \"curl/8.5.0\"",
		sdId = "request@32473", pairs = [(key = "_method", value = (string = "GET")),
		(key = "_path", value = (string = "/api/v1/orders/8842")), (key = "_status", value = (string = "200")),
		(key = "_bytes", value = (string = "5120"))])`})[0]
	d := capnpDecoder(b)
	var a flowgo.Arena
	var r flowgo.Record
	b.ReportAllocs()
	b.SetBytes(int64(len(msg)))
	for b.Loop() {
		r.Reset()
		if err := d.Decode(msg, &r, &a); err != nil {
			b.Fatal(err)
		}
		a.Reset()
	}
}
