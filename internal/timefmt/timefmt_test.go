package timefmt

import (
	"testing"
	"time"
)

var ts = time.Date(2018, time.January, 8, 1, 43, 43, 637824000, time.UTC)

func TestFormat(t *testing.T) {
	tests := []struct {
		name, layout, want string
	}{
		{"flowgger 0.3 rotation default", "[year][month][day]T[hour][minute][second]Z", "20180108T014343Z"},
		{"flowgger 0.2 rotation default", "%Y%m%dT%H%M%SZ", "20180108T014343Z"},
		{"flowgger 0.3 prepend example", "[[[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:6]Z]", "[2018-01-08T01:43:43.637824Z]"},
		{"flowgger 0.2 prepend example", "[%Y-%m-%dT%H:%M:%S%.6fZ]", "[2018-01-08T01:43:43.637824Z]"},
		{"strftime month names and space-padded day", "%b %e %H:%M:%S", "Jan  8 01:43:43"},
		{"strftime flags", "%-d/%-m %_H", "8/1  1"},
		{"strftime composite specifiers", "%F %T %z", "2018-01-08 01:43:43 +0000"},
		{"strftime auto fraction", "%S%.f", "43.637824"},
		{"strftime literal percent", "100%% %Y", "100% 2018"},
		{"description with escaped percent", "\\%[year]", "%2018"},
		{"description modifiers", "[month repr:short] [day padding:space] [hour repr:12 padding:none][period]", "Jan  8 1AM"},
		{"description last two year digits and ordinal", "[year repr:last_two]-[ordinal]", "18-008"},
		{"description weekday", "[weekday repr:short] [weekday]", "Mon Monday"},
		{"description unix timestamp", "[unix_timestamp]", "1515375823"},
		{"description subsecond digits 3", "[subsecond digits:3]", "637"},
		{"no components at all", "plain", "plain"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, err := Parse(tt.layout)
			if err != nil {
				t.Fatalf("Parse(%q) = %v", tt.layout, err)
			}
			if got := f.Format(ts); got != tt.want {
				t.Errorf("Parse(%q).Format = %q; want %q", tt.layout, got, tt.want)
			}
		})
	}
}

func TestFormatWritesUTC(t *testing.T) {
	paris := time.FixedZone("CET", 3600)
	f := MustParse("%H:%M %Z")
	if got := f.Format(ts.In(paris)); got != "01:43 UTC" {
		t.Errorf("Format in CET = %q; want the UTC time 01:43 UTC", got)
	}
}

func TestParseErrors(t *testing.T) {
	for _, layout := range []string{"%Q", "%", "%.4f", "[year", "[yaer]", "[month repr:roman]", "[subsecond digits:12]", "[]", "[hour padding:dots]"} {
		if _, err := Parse(layout); err == nil {
			t.Errorf("Parse(%q) = nil error; want one", layout)
		}
	}
}

func TestSyntaxDetection(t *testing.T) {
	if s := MustParse("%Y").Syntax(); s != "strftime" {
		t.Errorf("syntax of %%Y = %q", s)
	}
	if s := MustParse("[year]\\%").Syntax(); s != "format description" {
		t.Errorf("syntax of [year]\\%% = %q", s)
	}
}

func TestAppendDoesNotAllocate(t *testing.T) {
	f := MustParse("[[[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:6]Z]")
	buf := make([]byte, 0, 64)
	if n := testing.AllocsPerRun(100, func() { buf = f.Append(buf[:0], ts) }); n != 0 {
		t.Errorf("Append allocates %v times per call; want 0", n)
	}
}

var sink []byte

func BenchmarkAppend(b *testing.B) {
	f := MustParse("[[[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:6]Z]")
	b.ReportAllocs()
	for b.Loop() {
		sink = f.Append(sink[:0], ts)
	}
}

// MustParse is Parse for layouts known to be valid; it panics otherwise.
func MustParse(layout string) *Format {
	f, err := Parse(layout)
	if err != nil {
		panic(err)
	}
	return f
}
