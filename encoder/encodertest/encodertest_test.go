package encodertest

import (
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"
	"unsafe"

	"github.com/flowgo/flowgo"
)

// encoderFunc makes an Encoder of a function.
type encoderFunc func(dst []byte, r *flowgo.Record) ([]byte, error)

func (f encoderFunc) Encode(dst []byte, r *flowgo.Record) ([]byte, error) { return f(dst, r) }

// good writes Hostname and Msg, as a correct encoder does.
func good(dst []byte, r *flowgo.Record) ([]byte, error) {
	if r.Msg == "" {
		return dst, errors.New("no message")
	}
	dst = append(dst, r.Hostname...)
	dst = append(dst, ' ')
	return append(dst, r.Msg...), nil
}

var records = []flowgo.Record{
	{Time: time.Unix(1, 0), Hostname: "h", Msg: "first", Facility: flowgo.Unset, Severity: flowgo.Unset},
	{Hostname: "other", Msg: "second", Facility: 1, Severity: 2,
		SD: []flowgo.SDElement{{ID: "a@1", Params: []flowgo.Param{{Name: "k", Value: flowgo.StringValue("v")}}}}},
	{Hostname: "no message", Facility: flowgo.Unset, Severity: flowgo.Unset},
}

// TestCheckFindsBrokenRules checks that each rule of the suite catches an
// encoder that breaks it, and passes one that keeps them all.
func TestCheckFindsBrokenRules(t *testing.T) {
	// The broken encoders stay free of data races: Check runs them from
	// several goroutines, and the race detector would fail the test.
	var first atomic.Pointer[flowgo.Record]
	var changed atomic.Bool
	tests := []struct {
		name string
		enc  encoderFunc
		want string // in one of the errors; "" means no error
	}{
		{"a correct encoder", good, ""},
		{"overwriting dst", func(dst []byte, r *flowgo.Record) ([]byte, error) { return good(dst[:0], r) }, "want the prefix then"},
		{"returning the record's memory", func(dst []byte, r *flowgo.Record) ([]byte, error) {
			if len(dst) == 0 && r.Msg != "" {
				return unsafe.Slice(unsafe.StringData(r.Msg), len(r.Msg)), nil
			}
			return good(dst, r)
		}, "it points into the record"},
		{"keeping the first record", func(dst []byte, r *flowgo.Record) ([]byte, error) {
			if r.Msg == "first" {
				first.CompareAndSwap(nil, r)
			}
			if f := first.Load(); f != nil && r.Hostname == "h" {
				r = f // the record seen first, whatever its memory holds now
			}
			return good(dst, r)
		}, "the encoder keeps the record"},
		{"changing the record", func(dst []byte, r *flowgo.Record) ([]byte, error) {
			if changed.CompareAndSwap(false, true) {
				r.Severity = 0
			}
			return good(dst, r)
		}, "Encode changed the record"},
		{"a failure that changes dst", func(dst []byte, r *flowgo.Record) ([]byte, error) {
			if r.Msg == "" {
				return append(dst, '!'), errors.New("no message")
			}
			return good(dst, r)
		}, "want it unchanged"},
		{"an invalid output", good, "invalid output"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var valid []func([]byte) error
			if tt.name == "an invalid output" {
				valid = append(valid, func(b []byte) error {
					if strings.Contains(string(b), "second") {
						return errors.New("second is not allowed")
					}
					return nil
				})
			}
			errs := Check(tt.enc, records, valid...)
			if tt.want == "" && len(errs) > 0 {
				t.Errorf("Check = %v; want no error", errs)
			}
			if tt.want != "" && !strings.Contains(joinErrs(errs), tt.want) {
				t.Errorf("Check = %v; want an error with %q", errs, tt.want)
			}
		})
	}
}

func TestCheckFindsNondeterminism(t *testing.T) {
	var n atomic.Int64
	enc := encoderFunc(func(dst []byte, r *flowgo.Record) ([]byte, error) {
		dst, err := good(dst, r)
		if n.Add(1)%2 == 0 {
			dst = append(dst, '~')
		}
		return dst, err
	})
	if errs := Check(enc, records[:1]); !strings.Contains(joinErrs(errs), "not deterministic") {
		t.Errorf("Check = %v; want a determinism error", errs)
	}
}

func joinErrs(errs []error) string {
	var b strings.Builder
	for _, e := range errs {
		b.WriteString(e.Error())
		b.WriteByte('\n')
	}
	return b.String()
}

func TestValidGELF(t *testing.T) {
	const ok = `{"version":"1.1","host":"h","short_message":"m","timestamp":1.5,"level":3,"_a.b-c":null,"x":1}`
	if err := ValidGELF([]byte(ok)); err != nil {
		t.Errorf("ValidGELF(%s) = %v; want nil", ok, err)
	}
	for _, bad := range []string{
		`{"version":"1.1","host":"h","short_message":"m","_a":1,"_a":2}`,
		`{"version":"1.1","host":"h","short_message":"m","_id":1}`,
		`{"version":"1.1","host":"h","short_message":"m","_a b":1}`,
		`{"version":"1.1","host":" ","short_message":"m"}`,
		`{"version":"1.1","short_message":"m"}`,
		`{"version":"1.1","host":"h","short_message":""}`,
		`{"version":"1.0","host":"h","short_message":"m"}`,
		`{"version":"1.1","host":"h","short_message":"m","level":8}`,
		`{"version":"1.1","host":"h","short_message":"m","level":1.5}`,
		`{"version":"1.1","host":"h","short_message":"m","timestamp":"1"}`,
		`{"version":"1.1","host":"h","short_message":"m","_o":{}}`,
		`{"version":"1.1","host":"h","short_message":"m"} {}`,
		"{\"version\":\"1.1\",\"host\":\"h\\xff\",\"short_message\":\"m\"}",
		"{\"version\":\"1.1\",\"host\":\"h\",\"short_message\":\"\xff\"}",
		`[1]`,
	} {
		if err := ValidGELF([]byte(bad)); err == nil {
			t.Errorf("ValidGELF(%s) = nil; want an error", bad)
		}
	}
}

func TestValidRFC5424(t *testing.T) {
	for _, ok := range []string{
		`<0>1 - - - - - -`,
		`<191>1 2003-10-11T22:14:15.003Z host app 1 ID47 [a@1 x="\"\\\]" y=""][b] msg`,
		`<13>1 2003-10-11T22:14:15+02:00 h a p m -`,
	} {
		if err := ValidRFC5424([]byte(ok)); err != nil {
			t.Errorf("ValidRFC5424(%s) = %v; want nil", ok, err)
		}
	}
	for _, bad := range []string{
		`<192>1 - - - - - -`,
		`<13>2 - - - - - -`,
		`<13>1 2003-10-11T22:14:15.0000001Z - - - - -`,
		`<13>1 2003-13-11T22:14:15Z - - - - -`,
		`<13>1 - ` + strings.Repeat("h", 256) + ` - - - -`,
		`<13>1 - h ` + strings.Repeat("a", 49) + ` - - -`,
		`<13>1 - h a p ` + strings.Repeat("m", 33) + ` -`,
		`<13>1 - h é p m -`,
		`<13>1 - h a p m [a x="]"]`,
		`<13>1 - h a p m [a x="\n"]`,
		`<13>1 - h a p m [a x="1"][a y="2"]`,
		`<13>1 - h a p m [a x=1]`,
		`<13>1 - h a p m [a x="1"`,
		"<13>1 - h a p m [a x=\"\xff\"]",
		`<13>1 - h a p m -msg`,
		`<13>1 - h a p m`,
	} {
		if err := ValidRFC5424([]byte(bad)); err == nil {
			t.Errorf("ValidRFC5424(%s) = nil; want an error", bad)
		}
	}
}

func TestValidLTSV(t *testing.T) {
	if err := ValidLTSV([]byte("a:1\tb:x:y\tc:")); err != nil {
		t.Errorf("ValidLTSV = %v; want nil", err)
	}
	for _, bad := range []string{"a:1\ta:2", "a:1\tb", ":1", "a:1\nb:2", "a:\r"} {
		if err := ValidLTSV([]byte(bad)); err == nil {
			t.Errorf("ValidLTSV(%q) = nil; want an error", bad)
		}
	}
}
