package encoder

import (
	"strings"
	"testing"
	"time"

	"github.com/flowgo/flowgo"
	"github.com/flowgo/flowgo/config"
	"github.com/flowgo/flowgo/encoder/encodertest"
)

func TestRFC3164Conformance(t *testing.T) {
	for _, toml := range []string{"", goldenVariants[2].toml} {
		encodertest.Run(t, newTestEncoder(t, "rfc3164", toml), testRecords())
	}
}

func TestRFC3164(t *testing.T) {
	e := newTestEncoder(t, "rfc3164", "")
	at := func(day, hour int) time.Time { return time.Date(2015, 8, day, hour, 15, 24, 999999999, time.UTC) }
	tests := []struct {
		name string
		r    flowgo.Record
		want string
	}{
		{"a one-digit day is padded with a space", record(func(r *flowgo.Record) {
			r.Time, r.Hostname, r.AppName, r.ProcID, r.Msg, r.Facility, r.Severity = at(6, 11), "host", "sshd", "42", "text", 4, 6
		}), "<38>Aug  6 11:15:24 host sshd[42]: text"},
		{"a two-digit day is not", record(func(r *flowgo.Record) {
			r.Time, r.Hostname, r.AppName, r.Msg = at(16, 1), "host", "sshd", "text"
		}), "Aug 16 01:15:24 host sshd: text"},
		{"the time is written in UTC", caseRecord(t, "other_zone"), "Aug  5 23:15:24 h written in UTC"},
		{"no PRI without facility and severity", record(func(r *flowgo.Record) { r.Time, r.Hostname, r.Msg = at(6, 0), "h", "m" }),
			"Aug  6 00:15:24 h m"},
		{"a procid without an app name", record(func(r *flowgo.Record) { r.Time, r.Hostname, r.ProcID, r.Msg = at(6, 0), "h", "7", "m" }),
			"Aug  6 00:15:24 h -[7]: m"},
		{"an empty hostname is -", record(func(r *flowgo.Record) { r.Time, r.AppName, r.Msg = at(6, 0), "app", "m" }),
			"Aug  6 00:15:24 - app: m"},
		{"the TAG cannot be broken by its content", record(func(r *flowgo.Record) {
			r.Time, r.Hostname, r.AppName, r.ProcID, r.Msg = at(6, 0), "h", "a b:[c]", "1]: x", "m"
		}), "Aug  6 00:15:24 h a_b__c_[1___x]: m"},
		{"MSGID and SD go before the message, as in Flowgger", caseRecord(t, "all_fields"),
			`<23>Aug  5 15:53:45 testhostname appname[69]: 42 [origin@123 software="te\\st sc\"ript" swVersion="0.0.1"] test message`},
		{"no trailing space without a message", record(func(r *flowgo.Record) { r.Time, r.Hostname, r.AppName = at(6, 0), "h", "app" }),
			"Aug  6 00:15:24 h app:"},
		{"SD that writes nothing leaves no space", record(func(r *flowgo.Record) {
			r.Time, r.Hostname, r.Msg, r.SD = at(6, 0), "h", "m", []flowgo.SDElement{{}}
		}), "Aug  6 00:15:24 h m"},
		{"the zero time takes the clock", record(func(r *flowgo.Record) { r.Hostname = "h" }), "Feb 29 23:59:58 h"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := e.Encode(nil, &tt.r)
			if err != nil || string(got) != tt.want {
				t.Errorf("Encode = %q, %v;\nwant %q", got, err, tt.want)
			}
		})
	}
}

func TestPrependTimestamp(t *testing.T) {
	r := record(func(r *flowgo.Record) { r.Time, r.Hostname, r.Msg, r.FullMsg = ts, "h", "m", "raw" })
	tests := []struct {
		name, format, toml, want, wantWarn string
	}{
		{"Flowgger 0.3's format description", "rfc3164", `syslog_prepend_timestamp = "[[[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:6]Z]"`,
			"[2024-02-29T23:59:58.987654Z]Aug  5 15:53:45 h m", ""},
		{"Flowgger 0.2's strftime", "rfc3164", `syslog_prepend_timestamp = "[%Y-%m-%dT%H:%M:%S%.6fZ] "`,
			"[2024-02-29T23:59:58.987654Z] Aug  5 15:53:45 h m", ""},
		{"the old key name, with a warning", "rfc3164", `rfc3164_prepend_timestamp = "%s "`,
			"1709251198 Aug  5 15:53:45 h m", "output.rfc3164_prepend_timestamp: old name of syslog_prepend_timestamp"},
		{"both names: the new one wins", "passthrough", "syslog_prepend_timestamp = \"new \"\nrfc3164_prepend_timestamp = \"old \"",
			"new raw", "output.rfc3164_prepend_timestamp: ignored: syslog_prepend_timestamp is set as well"},
		{"an empty layout prepends nothing", "passthrough", `syslog_prepend_timestamp = ""`, "raw", ""},
		{"passthrough prepends too", "passthrough", `syslog_prepend_timestamp = "%H:%M "`, "23:59 raw", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, err := config.Parse("t.toml", "[output]\n"+tt.toml)
			if err != nil {
				t.Fatal(err)
			}
			e, err := New(tt.format, f.Output)
			if err != nil {
				t.Fatal(err)
			}
			if err := f.Check(); err != nil {
				t.Fatal(err)
			}
			setClock(e, fixedClock)
			if got, err := e.Encode(nil, &r); err != nil || string(got) != tt.want {
				t.Errorf("Encode = %q, %v; want %q", got, err, tt.want)
			}
			if w := strings.Join(f.Warnings(), "\n"); !strings.Contains(w, tt.wantWarn) || (tt.wantWarn == "" && w != "") {
				t.Errorf("warnings %q; want %q", w, tt.wantWarn)
			}
		})
	}
}

func TestPrependTimestampErrors(t *testing.T) {
	for _, format := range []string{"rfc3164", "passthrough"} {
		for _, toml := range []string{`syslog_prepend_timestamp = "[yaer]"`, `syslog_prepend_timestamp = "%Q"`, `rfc3164_prepend_timestamp = "%"`, `syslog_prepend_timestamp = 5`} {
			f, err := config.Parse("t.toml", "[output]\n"+toml)
			if err != nil {
				t.Fatal(err)
			}
			key, _, _ := strings.Cut(toml, " ")
			_, err = New(format, f.Output)
			if err == nil || !strings.Contains(err.Error(), "t.toml:2: output."+key+": ") {
				t.Errorf("%s: New(%s) = %v; want an error naming t.toml:2 and output.%s", format, toml, err, key)
			}
		}
	}
}

func TestRFC3164Allocs(t *testing.T) {
	testAllocs(t, newTestEncoder(t, "rfc3164", goldenVariants[2].toml))
}
