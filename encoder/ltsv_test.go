package encoder

import (
	"math/bits"
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/flowgo/flowgo"
	"github.com/flowgo/flowgo/config"
	"github.com/flowgo/flowgo/encoder/encodertest"
)

func TestLTSVConformance(t *testing.T) {
	for _, toml := range []string{"", goldenVariants[1].toml} {
		encodertest.Run(t, newTestEncoder(t, "ltsv", toml), testRecords(), encodertest.ValidLTSV)
	}
}

func TestLTSV(t *testing.T) {
	tests := []struct {
		name, toml string
		r          flowgo.Record
		want       string
	}{
		{"Flowgger's order: params, extras, then the record fields", `ltsv_extra = { env = "prod" }`, caseRecord(t, "all_fields"),
			"software:te\\st sc\"ript\tswVersion:0.0.1\tenv:prod\thost:testhostname\ttime:1438790025.637824\tmessage:test message\t" +
				"full_message:" + line5424 + "\tlevel:7\tfacility:2\tappname:appname\tprocid:69\tmsgid:42"},
		{"an extra replaces a param of its label", `ltsv_extra = { a = "extra" }`, record(func(r *flowgo.Record) {
			r.Time, r.SD = ts, []flowgo.SDElement{{Params: []flowgo.Param{str("a", "param"), str("b", "kept")}}}
		}), "b:kept\ta:extra\thost:-\ttime:1438790025.637824"},
		{"an extra replaces a record field", `ltsv_extra = { host = "fixed" }`, record(func(r *flowgo.Record) { r.Time, r.Hostname = ts, "h" }),
			"host:fixed\ttime:1438790025.637824"},
		{"Flowgger strips one _ from extra labels", `ltsv_extra = { _a = "1", __b = "2" }`, record(func(r *flowgo.Record) { r.Time = ts }),
			"_b:2\ta:1\thost:-\ttime:1438790025.637824"},
		{"a record field replaces a param of its label", "", record(func(r *flowgo.Record) {
			r.Time, r.Msg, r.SD = ts, "m", []flowgo.SDElement{{Params: []flowgo.Param{str("message", "param"), str("level", "kept: no level")}}}
		}), "level:kept: no level\thost:-\ttime:1438790025.637824\tmessage:m"},
		{"the later of two params wins", "", record(func(r *flowgo.Record) {
			r.Time, r.SD = ts, []flowgo.SDElement{{Params: []flowgo.Param{str("a", "1"), str("b", "2")}}, {Params: []flowgo.Param{str("a", "3")}}}
		}), "b:2\ta:3\thost:-\ttime:1438790025.637824"},
		{"labels: tab, LF and CR become spaces, ':' becomes '_'", "", record(func(r *flowgo.Record) {
			r.Time, r.SD = ts, []flowgo.SDElement{{Params: []flowgo.Param{str("a\tb\nc\rd:e", "v")}}}
		}), "a b c d_e:v\thost:-\ttime:1438790025.637824"},
		{"values: tab, LF and CR become spaces", "", record(func(r *flowgo.Record) {
			r.Time, r.Hostname, r.Msg = ts, "h\t", "a\tb\nc\r\nd:e"
		}), "host:h \ttime:1438790025.637824\tmessage:a b c  d:e"},
		{"labels that differ before escaping can collide after it", "", record(func(r *flowgo.Record) {
			r.Time, r.SD = ts, []flowgo.SDElement{{Params: []flowgo.Param{str("a:b", "1"), str("a_b", "2")}}}
		}), "a_b:2\thost:-\ttime:1438790025.637824"},
		{"typed values as text, null empty", "", caseRecord(t, "ltsv_like"),
			"ua:curl/8.5.0\tstatus:200\thost:192.0.2.1\ttime:1438790025\tmessage:GET /"},
		{"an empty param name is _", "", record(func(r *flowgo.Record) {
			r.Time, r.SD = ts, []flowgo.SDElement{{Params: []flowgo.Param{typed("", flowgo.NullValue())}}}
		}), "_:\thost:-\ttime:1438790025.637824"},
		{"the zero time takes the clock, an empty host is -", "", record(func(r *flowgo.Record) {}), "host:-\ttime:1709251198.987654"},
		{"a time before 1970 takes the clock", "", record(func(r *flowgo.Record) { r.Time, r.Hostname = time.Unix(-1, 0), "h" }),
			"host:h\ttime:1709251198.987654"},
		{"invalid UTF-8 becomes U+FFFD in labels and values", "", record(func(r *flowgo.Record) {
			r.Time, r.Hostname, r.SD = ts, "h\xff", []flowgo.SDElement{{Params: []flowgo.Param{str("k\xc3", "v\xed\xa0\x80 é")}}}
		}), "k\ufffd:v\ufffd\ufffd\ufffd é\thost:h\ufffd\ttime:1438790025.637824"},
		{"labels that differ in invalid bytes can collide", "", record(func(r *flowgo.Record) {
			r.Time, r.Hostname, r.SD = ts, "h", []flowgo.SDElement{{Params: []flowgo.Param{str("k\xff", "1"), str("k\xfe", "2")}}}
		}), "k\ufffd:2\thost:h\ttime:1438790025.637824"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newTestEncoder(t, "ltsv", tt.toml)
			got, err := e.Encode(nil, &tt.r)
			if err != nil || string(got) != tt.want {
				t.Errorf("Encode = %q, %v;\nwant %q", got, err, tt.want)
			}
			if err := encodertest.ValidLTSV(got); err != nil {
				t.Errorf("invalid LTSV: %v", err)
			}
		})
	}
}

// TestLTSVTimeIsFlowggers checks that the exact integer rendering of the
// time is Flowgger's rendering, strconv.FormatFloat(ts, 'f', -1, 64), of
// the float64 nearest to the microsecond instant, for times from 1970 to
// 2106. (Flowgger computes ts as nanoseconds as f64 / 1e9, rounding twice,
// which adds noise in the last digit about one time in four, e.g.
// 1438790025.3820002 for .382000; flowgo writes the clean value. From 2^32
// seconds on, float64 steps are wider than half a microsecond.)
func TestLTSVTimeIsFlowggers(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	const end = 1 << 32 // 2106-02-07
	for range 200000 {
		sec, us := rng.Int64N(end), rng.Int64N(1e6)
		if rng.IntN(4) == 0 {
			us = us / 1000 * 1000 // milliseconds, as common
		}
		got := string(appendUnixMicro(nil, time.Unix(sec, us*1000)))
		want := strconv.FormatFloat(float64(sec*1e6+us)/1e6, 'f', -1, 64)
		if got != want {
			t.Fatalf("time %d.%06d written %s; Flowgger's rendering is %s", sec, us, got, want)
		}
	}
}

func TestLTSVExtraConfig(t *testing.T) {
	tests := []struct {
		name, toml, wantErr, wantWarn string
	}{
		{"a non-string value", `ltsv_extra = { n = 1 }`, "expected a string", ""},
		{"not a table", `ltsv_extra = ["x"]`, "output.ltsv_extra: wrong type: expected a table", ""},
		{"an empty label", `ltsv_extra = { "" = "x" }`, `output.ltsv_extra: key "" gives an empty label`, ""},
		{"a label with ':'", `ltsv_extra = { "a:b" = "x" }`, "", `key "a:b" is written "a_b"`},
		{"two keys, one label", `ltsv_extra = { "a:b" = "x", a_b = "y" }`, "", `keys "a:b" and "a_b" are both written "a_b"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, err := config.Parse("t.toml", "[output]\n"+tt.toml)
			if err != nil {
				t.Fatal(err)
			}
			_, err = NewLTSV(f.Output)
			if tt.wantErr == "" && err != nil {
				t.Errorf("NewLTSV = %v; want success", err)
			}
			if tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)) {
				t.Errorf("NewLTSV = %v; want an error with %q", err, tt.wantErr)
			}
			if w := strings.Join(f.Warnings(), "\n"); !strings.Contains(w, tt.wantWarn) {
				t.Errorf("warnings %q; want %q", w, tt.wantWarn)
			}
		})
	}
}

func TestLTSVAllocs(t *testing.T) { testAllocs(t, newTestEncoder(t, "ltsv", goldenVariants[1].toml)) }

// FuzzEncodeLTSV checks that the output is always one LTSV record with
// unique labels, whatever the record holds.
func FuzzEncodeLTSV(f *testing.F) {
	f.Add("h", "m", "a", "1", "b:c", "2", "a\tb", "x\ny")
	f.Add("", "", "host", "x", "time", "y", "message", "z")
	e := newTestEncoder(f, "ltsv", `ltsv_extra = { env = "prod", "x y" = "1" }`)
	f.Fuzz(func(t *testing.T, host, msg, n1, v1, n2, v2, n3, v3 string) {
		r := record(func(r *flowgo.Record) {
			r.Time, r.Hostname, r.Msg, r.FullMsg = ts, host, msg, msg
			r.SD = []flowgo.SDElement{{Params: []flowgo.Param{str(n1, v1), str(n2, v2)}}, {ID: n3, Params: []flowgo.Param{str(n3, v3), str(n1, v2)}}}
		})
		out, _ := e.Encode(nil, &r)
		if err := encodertest.ValidLTSV(out); err != nil {
			t.Errorf("Encode = %q: %v", out, err)
		}
	})
}

func TestLTSVSpecial(t *testing.T) {
	special := func(c byte) bool { return c < 0x0e || c == ':' || c >= 0x80 }
	for c := range 256 {
		for pos := range 8 {
			for _, fill := range []byte{'a', ':', 0xc3} {
				var b [8]byte
				for i := range b {
					b[i] = 'a'
				}
				b[pos] = byte(c)
				for i := pos + 1; i < 8; i++ {
					b[i] = fill
				}
				m := ltsvSpecial(load64(string(b[:])))
				want := 8
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
					t.Errorf("%q: first byte to look at %d; want %d", b, got, want)
				}
			}
		}
	}
}
