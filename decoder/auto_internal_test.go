package decoder

import "testing"

// AutoOf returns an Auto made of the given decoders; nil ones make frames
// detected as that format fail. It lets the GELF and LTSV paths be tested
// whatever other formats are registered.
func AutoOf(gelf, ltsv, rfc5424, rfc3164 Decoder) *Auto {
	return &Auto{gelf: gelf, ltsv: ltsv, rfc5424: rfc5424, rfc3164: rfc3164}
}

// AutoDetect names the format Auto hands frame to.
func AutoDetect(frame []byte) string { return autoDetect(frame) }

func TestAutoDetect(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		in   string
		want string
	}{
		{"a JSON object is GELF", `{"host":"h"}`, "gelf"},
		{"a JSON object after white space is GELF", " \r\n\t{\"host\":\"h\"}", "gelf"},
		{"a broken JSON object is still GELF", `{"host":`, "gelf"},
		{"PRI and version 1 is RFC 5424", "<34>1 2003-10-11T22:14:15.003Z mymachine su - ID47 - msg", "rfc5424"},
		{"a one-digit PRI and version 1 is RFC 5424", "<0>1 - - - - - -", "rfc5424"},
		{"a BOM before an RFC 5424 PRI is RFC 5424", "\ufeff<34>1 - h a - - -", "rfc5424"},
		{"PRI without version is RFC 3164", "<34>Oct 11 22:14:15 mymachine su: 'su root' failed", "rfc3164"},
		{"version 10 is not version 1", "<34>10 x", "rfc3164"},
		{"version 1 without a space is not RFC 5424", "<34>1", "rfc3164"},
		{"a PRI of four digits is RFC 3164", "<1234>1 x", "rfc3164"},
		{"an LTSV line with time is LTSV", "time:1\thost:h", "ltsv"},
		{"an LTSV line with host later is LTSV", "a:b\tc:d\thost:h", "ltsv"},
		{"an LTSV line with time only last is LTSV", "req:GET /\ttime:[10/Oct/2000:13:55:36 -0700]", "ltsv"},
		{"an LTSV line without time or host is RFC 3164", "a:b\tc:d", "rfc3164"},
		{"a line without TAB is RFC 3164 even with labels", "time:1 host:h", "rfc3164"},
		{"a BSD line with a TAB is RFC 3164", "Oct 11 22:14:15 host app: a\thost:x", "rfc3164"},
		{"a first field that is no label is RFC 3164", "not a label\thost:h", "rfc3164"},
		{"a first field without ':' is RFC 3164", "abc\thost:h", "rfc3164"},
		{"a BSD line without PRI is RFC 3164", "Oct 11 22:14:15 mymachine su: 'su root' failed", "rfc3164"},
		{"a '<' without digits is RFC 3164", "<x>", "rfc3164"},
		{"text is RFC 3164", "hello", "rfc3164"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := autoDetect([]byte(tt.in)); got != tt.want {
				t.Errorf("autoDetect(%q) = %s; want %s", tt.in, got, tt.want)
			}
		})
	}
}
