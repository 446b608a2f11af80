package encoder

import (
	"bytes"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/flowgo/flowgo"
	"github.com/flowgo/flowgo/config"
	"github.com/flowgo/flowgo/decoder/decodertest"
	"github.com/flowgo/flowgo/encoder/encodertest"
	"github.com/flowgo/flowgo/internal/capnp"
	"github.com/flowgo/flowgo/internal/capnp/capnptest"
)

// capnpRecords are the records the capnp tests encode: every field, every
// value kind, missing values, several SD elements.
func capnpRecords() []flowgo.Record {
	r := benchRecord()
	none := flowgo.Record{Facility: flowgo.Unset, Severity: flowgo.Unset}
	kinds := flowgo.Record{
		Time: time.Date(2015, 8, 5, 15, 53, 45, 637824000, time.UTC), Hostname: "h", Facility: 0, Severity: 0,
		SD: []flowgo.SDElement{{Params: []flowgo.Param{
			str("s", "v\n\"é"), {Name: "b", Value: flowgo.BoolValue(true)}, {Name: "f", Value: flowgo.F64Value(-1.5)},
			{Name: "i", Value: flowgo.I64Value(math.MinInt64)}, {Name: "u", Value: flowgo.U64Value(math.MaxUint64)},
			{Name: "_n", Value: flowgo.NullValue()}, str("", ""), {Name: "nan", Value: flowgo.F64Value(math.Inf(-1))},
		}}},
	}
	multi := flowgo.Record{
		Time: time.Date(2003, 10, 11, 22, 14, 15, 3000000, time.UTC), Hostname: "mymachine.example.com",
		AppName: "evntslog", MsgID: "ID47", Msg: "An application event log entry", Facility: 20, Severity: 5,
		SD: []flowgo.SDElement{
			{ID: "exampleSDID@32473", Params: []flowgo.Param{str("iut", "3"), str("eventSource", "Application")}},
			{ID: "examplePriority@32473", Params: []flowgo.Param{str("class", "high")}},
		},
	}
	noParams := flowgo.Record{Time: time.Unix(1, 0), Facility: 1, Severity: flowgo.Unset, SD: []flowgo.SDElement{{ID: "id@1"}}}
	return []flowgo.Record{r, none, kinds, multi, noParams}
}

// TestCapnpEncodeReadByCapnpTool: capnp decode reads what the encoder
// writes, field by field.
func TestCapnpEncodeReadByCapnpTool(t *testing.T) {
	e := newTestEncoder(t, "capnp", `capnp_extra = { x-header2 = "two", x-header1 = "one \"1\"" }`)
	var stream []byte
	for _, r := range capnpRecords() {
		var err error
		if stream, err = e.Encode(stream, &r); err != nil {
			t.Fatal(err)
		}
	}
	extra := `extra = [(key = "x-header1", value = (string = "one \"1\"")), (key = "x-header2", value = (string = "two"))]`
	want := []string{
		`(ts = 1709210096.123456, hostname = "web-frontend-03.example.net", facility = 20, severity = 5, appname = "nginx", procid = "24731", msgid = "ACCESS", ` +
			`msg = "192.0.2.17 \"GET /api/v1/orders/8842 HTTP/1.1\" 200 5120 \"curl/8.5.0\"", fullMsg = "` + strings.ReplaceAll(benchLine, `"`, `\"`) + `", ` +
			`sdId = "request@32473", pairs = [(key = "_method", value = (string = "GET")), (key = "_path", value = (string = "/api/v1/orders/8842")), ` +
			`(key = "_status", value = (string = "200")), (key = "_bytes", value = (string = "5120"))], ` + extra + `)`,
		// No time: the encoding time (the test clock), to the microsecond.
		`(ts = 1709251198.987654, facility = 255, severity = 255, ` + extra + `)`,
		`(ts = 1438790025.6378241, hostname = "h", facility = 0, severity = 0, pairs = [(key = "_s", value = (string = "v\n\"é")), ` +
			`(key = "_b", value = (bool = true)), (key = "_f", value = (f64 = -1.5)), (key = "_i", value = (i64 = -9223372036854775808)), ` +
			`(key = "_u", value = (u64 = 18446744073709551615)), (key = "__n", value = (null = void)), (key = "_", value = (string = "")), ` +
			`(key = "_nan", value = (f64 = -inf))], ` + extra + `)`,
		// Every element's params; the first element's ID.
		`(ts = 1065910455.003, hostname = "mymachine.example.com", facility = 20, severity = 5, appname = "evntslog", msgid = "ID47", ` +
			`msg = "An application event log entry", sdId = "exampleSDID@32473", pairs = [(key = "_iut", value = (string = "3")), ` +
			`(key = "_eventSource", value = (string = "Application")), (key = "_class", value = (string = "high"))], ` + extra + `)`,
		`(ts = 1, facility = 1, severity = 255, sdId = "id@1", ` + extra + `)`,
	}
	got := capnptest.Decode(t, stream)
	if len(got) != len(want) {
		t.Fatalf("capnp decode read %d messages; want %d:\n%s", len(got), len(want), strings.Join(got, "\n"))
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("record %d:\n got %s\nwant %s", i, got[i], want[i])
		}
	}
}

// TestCapnpFlowggerTestMessage: the record of Flowgger's capnp tests comes
// out as Flowgger writes it, field for field.
func TestCapnpFlowggerTestMessage(t *testing.T) {
	e := newTestEncoder(t, "capnp", "")
	r := flowgo.Record{
		Time: time.UnixMicro(1385053862307200), Hostname: "example.org", Facility: flowgo.Unset, Severity: 1,
		AppName: "appname", ProcID: "44", Msg: "A short message that helps you identify what is going on",
		FullMsg: "Backtrace here\n\nmore stuff",
		SD:      []flowgo.SDElement{{ID: "someid", Params: []flowgo.Param{str("some_info", "foo")}}},
	}
	out, err := e.Encode(nil, &r)
	if err != nil {
		t.Fatal(err)
	}
	// What capnp decode prints for the message of Flowgger's splitter test
	// (capnp_splitter.rs, written by Flowgger's encoder), but for its
	// msgid = "": that record had an empty msgid, which flowgo does not
	// write (empty is absent, and an unset Text reads as "").
	want := `(ts = 1385053862.3072, hostname = "example.org", facility = 255, severity = 1, appname = "appname", procid = "44", ` +
		`msg = "A short message that helps you identify what is going on", fullMsg = "Backtrace here\n\nmore stuff", ` +
		`sdId = "someid", pairs = [(key = "_some_info", value = (string = "foo"))])`
	if got := capnptest.Decode(t, out); len(got) != 1 || got[0] != want {
		t.Errorf("capnp decode:\n got %q\nwant %q", got, want)
	}
}

// validCapnp checks that out is exactly one message that flowgo's decoder
// reads.
func validCapnp(out []byte) error {
	var m capnp.Message
	if err := m.Init(out); err != nil {
		return err
	}
	_, err := m.Root()
	return err
}

func TestCapnpConformance(t *testing.T) {
	e := newTestEncoder(t, "capnp", `capnp_extra = { k = "v" }`)
	encodertest.Run(t, e, capnpRecords(), validCapnp)
}

// TestCapnpRoundTrip: the decoder gives back every record the encoder
// wrote, params of all elements in one element with the first ID, time to
// the microsecond; capnp_extra comes back as params after the pairs.
func TestCapnpRoundTrip(t *testing.T) {
	e := newTestEncoder(t, "capnp", `capnp_extra = { x-env = "prod" }`)
	d := mustDecoder(t, "capnp")
	for i, r := range capnpRecords() {
		got := decode(t, d, encode(t, e, &r))
		want := r.Clone()
		if want.Time.IsZero() {
			want.Time = testNow
		}
		want.Time = want.Time.Truncate(time.Microsecond)
		var ps []flowgo.Param
		id := ""
		for _, el := range want.SD {
			ps = append(ps, el.Params...)
			if id == "" {
				id = el.ID
			}
		}
		ps = append(ps, str("x-env", "prod"))
		want.SD = []flowgo.SDElement{{ID: id, Params: ps}}
		if !got.Equal(&want) {
			t.Errorf("record %d:\n got %s\nwant %s", i, decodertest.Dump(&got), decodertest.Dump(&want))
		}
	}
}

func TestCapnpExtraConfig(t *testing.T) {
	for _, tt := range []struct{ toml, want string }{
		{`capnp_extra = { n = 1 }`, "expected a string"},
		{`capnp_extra = "x"`, "output.capnp_extra: wrong type: expected a table"},
	} {
		f, err := config.Parse("t.toml", "[output]\n"+tt.toml+"\n")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := New("capnp", f.Output); err == nil || !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), "t.toml:2") {
			t.Errorf("%s: New = %v; want an error at t.toml:2 containing %q", tt.toml, err, tt.want)
		}
	}
	// Other formats accept capnp_extra with a warning, as Flowgger ignores it.
	f, err := config.Parse("t.toml", "[output]\n[output.capnp_extra]\nk = \"v\"\n")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := New("gelf", f.Output); err != nil {
		t.Fatal(err)
	}
	if err := f.Check(); err != nil {
		t.Fatal(err)
	}
	if w := strings.Join(f.Warnings(), "\n"); !strings.Contains(w, "capnp_extra") || !strings.Contains(w, "used only by output.format capnp") {
		t.Errorf("warnings %q; want one about capnp_extra", w)
	}
}

func TestCapnpEncodeAllocs(t *testing.T) {
	e := newTestEncoder(t, "capnp", `capnp_extra = { k = "v" }`)
	r := benchRecord()
	dst := make([]byte, 0, 4096)
	if n := testing.AllocsPerRun(1000, func() { dst, _ = e.Encode(dst[:0], &r) }); n != 0 {
		t.Errorf("Encode allocates %v times per record; want 0", n)
	}
	if !bytes.HasPrefix(dst, []byte{0, 0, 0, 0}) {
		t.Errorf("output %x does not start with a one-segment table", dst[:8])
	}
}

func BenchmarkEncodeCapnp(b *testing.B) { benchmarkEncode(b, "capnp", "") }
