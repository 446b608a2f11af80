package decoder

import (
	"strconv"
	"testing"
	"time"

	"github.com/flowgo/flowgo"
)

// GELFWithNow returns a GELF decoder that stamps records without a
// timestamp with now, so that golden files and comparisons are stable.
func GELFWithNow(now time.Time) *GELF {
	return &GELF{now: func() time.Time { return now }}
}

func TestGELFUnixTime(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		in   string
		want string // RFC 3339 in UTC; "" means rejected
	}{
		{"whole seconds convert exactly", "1385053862", "2013-11-21T17:11:02Z"},
		{"decimals convert exactly, without float rounding", "1385053862.3072", "2013-11-21T17:11:02.3072Z"},
		{"nanoseconds are kept", "1.000000001", "1970-01-01T00:00:01.000000001Z"},
		{"digits past the nanosecond are truncated", "1.0000000019", "1970-01-01T00:00:01.000000001Z"},
		{"zero is the epoch", "0", "1970-01-01T00:00:00Z"},
		{"minus zero is the epoch", "-0.000", "1970-01-01T00:00:00Z"},
		{"an exponent goes through float64", "1.5e9", "2017-07-14T02:40:00Z"},
		{"a negative exponent works", "15e-1", "1970-01-01T00:00:01.5Z"},
		{"the last second of year 9999 is accepted", "253402300799", "9999-12-31T23:59:59Z"},
		{"year 10000 is rejected", "253402300800", ""},
		{"year 10000 written with an exponent is rejected", "2.534023008e11", ""},
		{"a negative time is rejected", "-1", ""},
		{"a tiny negative time is rejected even below a nanosecond", "-0.0000000001", ""},
		{"a negative exponent form is rejected", "-1e3", ""},
		{"a huge integer part does not overflow", "99999999999999999999999999", ""},
		{"a trailing point is rejected", "1.", ""},
		{"text is rejected", "now", ""},
		{"infinity is rejected", "1e999", ""},
		{"an empty string is rejected", "", ""},
		{"a leading plus is rejected", "+1", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := gelfUnixTime(tt.in)
			if tt.want == "" {
				if ok {
					t.Errorf("gelfUnixTime(%q) = %v; want rejection", tt.in, got)
				}
				return
			}
			want, err := time.Parse(time.RFC3339Nano, tt.want)
			if err != nil {
				t.Fatal(err)
			}
			if !ok || !got.Equal(want) || got.Location() != time.UTC {
				t.Errorf("gelfUnixTime(%q) = %v, %v; want %v in UTC", tt.in, got, ok, want)
			}
		})
	}
}

func TestGELFNamesFindsEveryName(t *testing.T) {
	t.Parallel()
	var n gelfNames
	var ps []flowgo.Param
	for i := range 3 * gelfStackParams {
		name := gelfTestName(i)
		if n.has(ps, name) {
			t.Fatalf("has(%q) before add = true; want false", name)
		}
		ps = append(ps, flowgo.Param{Name: name})
		n.add(ps)
		for j := 0; j <= i; j++ {
			if !n.has(ps, gelfTestName(j)) {
				t.Fatalf("after %d adds, has(%q) = false; want true", i+1, gelfTestName(j))
			}
		}
	}
	if n.m == nil {
		t.Errorf("after %d names the set has no map; want one past %d", len(ps), gelfStackParams)
	}
}

// gelfTestName returns distinct names, some sharing a hash bucket.
func gelfTestName(i int) string { return "f" + strconv.Itoa(i) }
