package encoder

import (
	"strings"
	"testing"
	"time"

	"github.com/flowgo/flowgo"
	"github.com/flowgo/flowgo/config"
	"github.com/flowgo/flowgo/encoder/encodertest"
)

func TestRFC5424Conformance(t *testing.T) {
	encodertest.Run(t, newTestEncoder(t, "rfc5424", ""), testRecords(), encodertest.ValidRFC5424)
}

func TestRFC5424(t *testing.T) {
	e := newTestEncoder(t, "rfc5424", "")
	tests := []struct {
		name string
		r    flowgo.Record
		want string
	}{
		{"Flowgger's test record, with the SD escaped", caseRecord(t, "all_fields"),
			`<23>1 2015-08-05T15:53:45.637824Z testhostname appname 69 42 [origin@123 software="te\\st sc\"ript" swVersion="0.0.1"] test message`},
		{"every missing field is a NILVALUE, APP-NAME too", record(func(r *flowgo.Record) { r.Time = ts }),
			`<13>1 2015-08-05T15:53:45.637824Z - - - - -`},
		{"the zero time is a NILVALUE", record(func(r *flowgo.Record) { r.Msg = "m" }),
			`<13>1 - - - - - - m`},
		{"milliseconds lose their trailing zeros", record(func(r *flowgo.Record) { r.Time = time.Unix(1438790025, 500000000) }),
			`<13>1 2015-08-05T15:53:45.5Z - - - - -`},
		{"whole seconds have no fraction", record(func(r *flowgo.Record) { r.Time = time.Unix(1438790025, 999) }),
			`<13>1 2015-08-05T15:53:45Z - - - - -`},
		{"the time is written in UTC", caseRecord(t, "other_zone"),
			`<13>1 2015-08-05T23:15:24.12Z h - - - - written in UTC`},
		{"a missing severity defaults to notice", caseRecord(t, "facility_only"),
			`<37>1 2015-08-05T15:53:45.637824Z h - - - - no severity`},
		{"a missing facility defaults to user", caseRecord(t, "severity_only"),
			`<8>1 2015-08-05T15:53:45.637824Z h - - - - no facility`},
		{"kern.emerg is 0", record(func(r *flowgo.Record) { r.Time, r.Facility, r.Severity = ts, 0, 0 }),
			`<0>1 2015-08-05T15:53:45.637824Z - - - - -`},
		{"local7.debug is 191", record(func(r *flowgo.Record) { r.Time, r.Facility, r.Severity = ts, 23, 7 }),
			`<191>1 2015-08-05T15:53:45.637824Z - - - - -`},
		{"header fields keep printable ASCII only", record(func(r *flowgo.Record) {
			r.Time, r.Hostname, r.AppName, r.ProcID, r.MsgID = ts, "a b", "c\td", "é", "x\xffy"
		}), `<13>1 2015-08-05T15:53:45.637824Z a_b c_d _ x_y -`},
		{"SD names lose '=', ']', '\"' and space; values escape '\"', '\\' and ']'", record(func(r *flowgo.Record) {
			r.Time = ts
			r.SD = []flowgo.SDElement{{ID: "a=b]c\"d e", Params: []flowgo.Param{str("n=]\" x", `"\]`)}}}
		}), `<13>1 2015-08-05T15:53:45.637824Z - - - - [a_b_c_d_e n____x="\"\\\]"]`},
		{"an element without params is kept", record(func(r *flowgo.Record) {
			r.Time, r.SD = ts, []flowgo.SDElement{{ID: "x@1"}}
		}), `<13>1 2015-08-05T15:53:45.637824Z - - - - [x@1]`},
		{"an element without an ID or params is left out", record(func(r *flowgo.Record) {
			r.Time, r.SD = ts, []flowgo.SDElement{{}}
		}), `<13>1 2015-08-05T15:53:45.637824Z - - - - -`},
		{"GELF fields get the default SD-ID", caseRecord(t, "gelf_like"),
			`<9>1 2015-08-05T15:53:45.637824Z example.org - - - [fields@32473 user_id="9001" some_info="foo" some_env_var="bar"] A short message`},
		{"elements with one SD-ID are merged into the first", caseRecord(t, "multi_sd"),
			`<134>1 2015-08-05T15:53:45.637824Z h app - - [origin@123 ip="192.0.2.1" software="x" ip="192.0.2.2"][meta sequenceId="7"][empty@1][fields@32473 loose="field"] several elements`},
		{"IDs that are the same once cut to 32 bytes are merged", caseRecord(t, "long_fields"),
			`<13>1 2015-08-05T15:53:45.637824Z ` + strings.Repeat("h", 255) + " " + strings.Repeat("a", 48) + " " + strings.Repeat("p", 128) + " " +
				strings.Repeat("m", 32) + " [" + strings.Repeat("i", 32) + " " + strings.Repeat("n", 32) + `="v" same="written ID"] cut to the RFC 5424 lengths`},
		{"a message made only of SD has no trailing space", caseRecord(t, "only_sd"),
			`<13>1 2015-08-05T15:53:45.637824Z h - - - [exampleSDID@32473 iut="3"]`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := e.Encode(nil, &tt.r)
			if err != nil || string(got) != tt.want {
				t.Errorf("Encode = %q, %v;\nwant %q", got, err, tt.want)
			}
			if err := encodertest.ValidRFC5424(got); err != nil {
				t.Errorf("invalid RFC 5424: %v", err)
			}
		})
	}
}

func TestSDIDConfig(t *testing.T) {
	tests := []struct {
		name, toml, wantErr, wantWarn string
	}{
		{"a private enterprise number", `syslog_sd_id = "mine@4242"`, "", ""},
		{"an IANA name warns", `syslog_sd_id = "meta"`, "", "RFC 5424 reserves such names for IANA"},
		{"a space", `syslog_sd_id = "a b@1"`, "output.syslog_sd_id: \"a b@1\" is not an SD-ID", ""},
		{"too long", `syslog_sd_id = "` + strings.Repeat("x", 30) + `@123"`, "is not an SD-ID", ""},
		{"no number after @", `syslog_sd_id = "x@y"`, "private enterprise number", ""},
		{"empty", `syslog_sd_id = ""`, "is not an SD-ID", ""},
	}
	for _, tt := range tests {
		for _, format := range []string{"rfc5424", "rfc3164"} {
			t.Run(format+" "+tt.name, func(t *testing.T) {
				f, err := config.Parse("t.toml", "[output]\n"+tt.toml)
				if err != nil {
					t.Fatal(err)
				}
				_, err = New(format, f.Output)
				if tt.wantErr == "" && err != nil {
					t.Errorf("New = %v; want success", err)
				}
				if tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)) {
					t.Errorf("New = %v; want an error with %q", err, tt.wantErr)
				}
				if w := strings.Join(f.Warnings(), "\n"); !strings.Contains(w, tt.wantWarn) || (tt.wantWarn == "" && w != "") {
					t.Errorf("warnings %q; want %q", w, tt.wantWarn)
				}
			})
		}
	}
}

func TestRFC5424Allocs(t *testing.T) { testAllocs(t, newTestEncoder(t, "rfc5424", "")) }

// FuzzEncodeRFC5424 checks that whatever a record holds, the RFC 5424
// output keeps the grammar, so that it always parses again.
func FuzzEncodeRFC5424(f *testing.F) {
	for _, c := range testCases {
		r := c.r
		id, name, val := firstSDParam(&r)
		f.Add(r.Hostname, r.AppName, r.ProcID, r.MsgID, r.Msg, id, name, val, r.Facility, r.Severity, r.Time.Unix())
	}
	e := newTestEncoder(f, "rfc5424", "")
	f.Fuzz(func(t *testing.T, host, app, proc, msgid, msg, id, name, val string, fac, sev uint8, sec int64) {
		r := flowgo.Record{Hostname: host, AppName: app, ProcID: proc, MsgID: msgid, Msg: msg, Facility: fac, Severity: sev,
			SD: []flowgo.SDElement{{ID: id, Params: []flowgo.Param{str(name, val)}}, {ID: name, Params: []flowgo.Param{str(id, val)}}, {}}}
		if sec > -1e13 && sec < 1e13 {
			r.Time = time.Unix(sec, sec%1e9)
		}
		out, err := e.Encode(nil, &r)
		if err != nil {
			t.Fatal(err)
		}
		if err := encodertest.ValidRFC5424(out); err != nil {
			t.Errorf("Encode = %q: %v", out, err)
		}
	})
}
