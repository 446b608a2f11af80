package decoder_test

import (
	"bytes"
	"errors"
	"testing"
	"time"

	"github.com/flowgo/flowgo"
	"github.com/flowgo/flowgo/config"
	"github.com/flowgo/flowgo/decoder"
	"github.com/flowgo/flowgo/decoder/decodertest"
)

// autoNeed returns the decoder registered as name, or fails the test
// saying which format is missing: auto's tests of a path run once that
// format's decoder is in the build.
func autoNeed(t testing.TB, name string, s *config.Section) decoder.Decoder {
	t.Helper()
	dec, err := decoder.New(name, s)
	if err != nil {
		t.Fatalf("the %s decoder is not available (auto's tests need all four formats registered): %v", name, err)
	}
	return dec
}

// autoPartial is an Auto of the GELF and LTSV decoders only, with a fixed
// receive time: the paths this branch can test on its own, whatever else
// is registered. Frames detected as RFC 5424 or RFC 3164 fail.
func autoPartial(t testing.TB) decoder.Decoder {
	t.Helper()
	ltsv, _ := ltsvNew(t, ltsvSchemaTOML)
	return decoder.AutoOf(decoder.GELFWithNow(gelfNow), ltsv, nil, nil)
}

func TestAutoRegistered(t *testing.T) {
	t.Parallel()
	f, err := config.Parse("t.toml", ltsvSchemaTOML)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := decoder.New("auto", f.Inputs[0]); err != nil {
		t.Fatalf(`New("auto") = %v; want success (it needs gelf, ltsv, rfc3164 and rfc5424 registered)`, err)
	}
	f.Inputs[0].Accept("type", "format")
	if err := f.Check(); err != nil {
		t.Errorf("Check() = %v; auto must accept the keys of the formats it wraps", err)
	}
}

func TestAutoConfigErrorsPassThrough(t *testing.T) {
	t.Parallel()
	f, err := config.Parse("t.toml", "[input]\n[input.ltsv_schema]\ncounter = \"u32\"\n")
	if err != nil {
		t.Fatal(err)
	}
	_, err = decoder.New("auto", f.Inputs[0])
	var ce *config.Error
	if !errors.As(err, &ce) || ce.Key != "input.ltsv_schema.counter" {
		t.Errorf(`New("auto") with a bad ltsv_schema = %v; want the ltsv config error naming input.ltsv_schema.counter`, err)
	}
}

// TestAutoMatchesEachFormat checks that auto gives, for frames of every
// format, exactly what that format's own decoder gives.
func TestAutoMatchesEachFormat(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, format, in string
	}{
		{"a GELF object goes to gelf", "gelf", gelfAverage},
		{"a broken GELF object fails as gelf", "gelf", `{"host":`},
		{"an LTSV line goes to ltsv", "ltsv", ltsvAverage},
		{"a bad LTSV line fails as ltsv", "ltsv", "time:x\thost:h"},
		{"an RFC 5424 line goes to rfc5424", "rfc5424", `<165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog - ID47 [exampleSDID@32473 iut="3" eventSource="Application" eventID="1011"] An application event log entry`},
		{"an RFC 5424 line with NILVALUEs goes to rfc5424", "rfc5424", "<34>1 2003-10-11T22:14:15.003Z mymachine su - - - 'su root' failed"},
		{"an RFC 3164 line with PRI goes to rfc3164", "rfc3164", "<34>Oct 11 22:14:15 mymachine su[42]: 'su root' failed for lonvick on /dev/pts/8"},
		{"an RFC 3164 line without PRI goes to rfc3164", "rfc3164", "Oct 11 22:14:15 mymachine su: 'su root' failed for lonvick on /dev/pts/8"},
		{"text goes to rfc3164", "rfc3164", "hello world"},
	}
	s := config.Empty().Inputs[0]
	auto := autoNeed(t, "auto", s)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := decoder.AutoDetect([]byte(tt.in)); got != tt.format {
				t.Fatalf("AutoDetect(%q) = %s; want %s", tt.in, got, tt.format)
			}
			direct := autoNeed(t, tt.format, s)
			got, gotErr := gelfDecode(auto, tt.in)
			want, wantErr := gelfDecode(direct, tt.in)
			autoCompare(t, tt.format, tt.in, got, gotErr, want, wantErr)
		})
	}
}

// autoCompare checks auto's result against the chosen decoder's. Times may
// differ by the moment of decoding (receive-time stamps), nothing else.
func autoCompare(t testing.TB, format string, in string, got flowgo.Record, gotErr error, want flowgo.Record, wantErr error) {
	t.Helper()
	if wantErr != nil {
		var de *decoder.Error
		if !errors.As(wantErr, &de) {
			t.Fatalf("%s Decode(%q) error %T; want *decoder.Error", format, in, wantErr)
		}
		wantText := (&decoder.Error{Format: "auto", Col: de.Col, Reason: "tried " + format + ": " + de.Reason}).Error()
		if gotErr == nil || gotErr.Error() != wantText {
			t.Fatalf("auto Decode(%q) = %v; want %s", in, gotErr, wantText)
		}
		return
	}
	if gotErr != nil {
		t.Fatalf("auto Decode(%q) = %v; %s accepts it", in, gotErr, format)
	}
	if d := got.Time.Sub(want.Time).Abs(); d < time.Second {
		got.Time = want.Time
	}
	if !got.Equal(&want) {
		t.Fatalf("auto Decode(%q) =\n%s\n%s gives\n%s", in, decodertest.Dump(&got), format, decodertest.Dump(&want))
	}
}

func TestAutoGELFAndLTSVPaths(t *testing.T) {
	t.Parallel()
	ltsv, _ := ltsvNew(t, ltsvSchemaTOML)
	direct := map[string]decoder.Decoder{"gelf": decoder.GELFWithNow(gelfNow), "ltsv": ltsv}
	auto := autoPartial(t)
	for _, in := range []string{
		gelfAverage,
		` {"host":"h"}`,
		`{"host":"h","_a":[1]}`,
		ltsvAverage,
		"status:200\ttime:1\thost:h",
		"a.b-c_d:1\thost:h\ttime:1",
		"time:1\thost:h\tstatus:x",
		"time:1\thost:h\tbroken",
	} {
		format := decoder.AutoDetect([]byte(in))
		got, gotErr := gelfDecode(auto, in)
		want, wantErr := gelfDecode(direct[format], in)
		autoCompare(t, format, in, got, gotErr, want, wantErr)
	}
}

func TestAutoErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, in, want string
	}{
		{"an empty frame is rejected before detection", " \r\n", "auto: empty frame"},
		{"a GELF failure names gelf and its reason", `{"host":"h","level":9}`, `auto: tried gelf: level "9" is not an integer from 0 to 7 [col 21]`},
		{"a GELF failure without column names gelf", `{"short_message":"m"}`, "auto: tried gelf: missing host"},
		{"an LTSV failure names ltsv and its reason", "time:1\tmessage:m\tlevel:1", "auto: tried ltsv: missing host"},
		{"a format that is not configured is named", "<34>1 - - - - - -", "auto: detected rfc5424, but no rfc5424 decoder is configured"},
	}
	auto := autoPartial(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := gelfDecode(auto, tt.in)
			if err == nil || err.Error() != tt.want {
				t.Errorf("Decode(%q) = %v; want %s", tt.in, err, tt.want)
			}
		})
	}
}

func TestAutoGolden(t *testing.T) {
	gelfGolden(t, "auto", autoPartial(t))
}

func TestAutoConformance(t *testing.T) {
	good := [][]byte{[]byte(gelfAverage), []byte(ltsvAverage), []byte(`{"host":"h"}`)}
	bad := [][]byte{[]byte(`{"host":1}`), []byte("time:1\tmessage:x")}
	decodertest.Run(t, autoPartial(t), good, bad)
}

func TestAutoConformanceAllFormats(t *testing.T) {
	good := [][]byte{
		[]byte(gelfAverage), []byte(ltsvAverage),
		[]byte("<34>1 2003-10-11T22:14:15.003Z mymachine su - - - 'su root' failed"),
		[]byte("<34>Oct 11 22:14:15 mymachine su: 'su root' failed"),
	}
	decodertest.Run(t, autoNeed(t, "auto", config.Empty().Inputs[0]), good, [][]byte{[]byte(`{"host":1}`)})
}

// FuzzDecodeAuto checks that auto never panics, that its errors are
// *decoder.Error for auto, and that it gives what the decoder of the
// detected format gives. It needs all four formats registered.
func FuzzDecodeAuto(f *testing.F) {
	gelfSeed(f, "auto")
	gelfSeed(f, "gelf")
	gelfSeed(f, "ltsv")
	for _, s := range []string{
		"<165>1 2003-10-11T22:14:15.003Z host app - ID47 [id@1 a=\"b\"] msg",
		"<34>Oct 11 22:14:15 mymachine su[42]: 'su root' failed",
		"Oct 11 22:14:15 mymachine su: text",
		"\ufeff<34>1 - - - - - -",
		"<0>",
	} {
		f.Add([]byte(s))
	}
	s := config.Empty().Inputs[0]
	direct := map[string]decoder.Decoder{}
	for _, name := range []string{"gelf", "ltsv", "rfc3164", "rfc5424"} {
		direct[name] = autoNeed(f, name, s)
	}
	auto := decoder.AutoOf(direct["gelf"], direct["ltsv"], direct["rfc5424"], direct["rfc3164"])
	f.Fuzz(func(t *testing.T, in []byte) {
		var got flowgo.Record
		got.Reset()
		gotErr := auto.Decode(bytes.Clone(in), &got, new(flowgo.Arena))
		if gotErr != nil {
			var de *decoder.Error
			if !errors.As(gotErr, &de) || de.Format != "auto" {
				t.Fatalf("Decode(%q) error %#v; want a *decoder.Error for auto", in, gotErr)
			}
		}
		if len(bytes.TrimSpace(in)) == 0 {
			if gotErr == nil {
				t.Fatalf("Decode(%q) accepted an empty frame", in)
			}
			return
		}
		format := decoder.AutoDetect(in)
		var want flowgo.Record
		want.Reset()
		wantErr := direct[format].Decode(bytes.Clone(in), &want, new(flowgo.Arena))
		autoCompare(t, format, string(in), got, gotErr, want, wantErr)
	})
}

var autoSink flowgo.Record

func BenchmarkDecodeAuto(b *testing.B) {
	cases := []struct{ name, format, in string }{
		{"ok/gelf", "gelf", gelfAverage},
		{"ok/ltsv", "ltsv", ltsvAverage},
		{"ok/rfc5424", "rfc5424", `<165>1 2024-05-06T07:08:09.123Z web-07.prod.example.com orders-api 4123 ID47 [req@32473 id="9f1c2e4a-7b3d-4e8f" status="200" user="alice"] GET /api/v2/orders/81723 returned 200 in 23ms`},
		{"ok/rfc3164", "rfc3164", "<34>May  6 07:08:09 web-07.prod.example.com orders-api[4123]: GET /api/v2/orders/81723 returned 200 in 23ms for alice, request 9f1c2e4a-7b3d-4e8f-a1c2-5d6e7f8a9b0c"},
	}
	s := config.Empty().Inputs[0]
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			sub := autoNeed(b, c.format, s)
			var auto decoder.Decoder
			switch c.format {
			case "gelf":
				auto = decoder.AutoOf(sub, nil, nil, nil)
			case "ltsv":
				auto = decoder.AutoOf(nil, sub, nil, nil)
			case "rfc5424":
				auto = decoder.AutoOf(nil, nil, sub, nil)
			default:
				auto = decoder.AutoOf(nil, nil, nil, sub)
			}
			in := []byte(c.in)
			var a flowgo.Arena
			b.ReportAllocs()
			b.SetBytes(int64(len(in)))
			for i := 0; b.Loop(); i++ {
				if i%256 == 0 {
					a.Reset()
				}
				autoSink.Reset()
				if err := auto.Decode(in, &autoSink, &a); err != nil {
					b.Fatalf("Decode = %v", err)
				}
			}
		})
	}
}
