package decoder_test

import (
	"testing"

	"github.com/flowgo/flowgo"
	"github.com/flowgo/flowgo/decoder"
	syslog "github.com/influxdata/go-syslog/v3"
	"github.com/influxdata/go-syslog/v3/rfc5424"
)

// rfc5424BenchCases are realistic lines: "average" is the ~250-byte line
// with two SD elements that the speed budget is set on.
var rfc5424BenchCases = []struct {
	name string
	in   []byte
}{
	{"ok/average", []byte(`<165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog 1234 ID47 [exampleSDID@32473 iut="3" eventSource="Application" eventID="1011"][examplePriority@32473 class="high"] An application event log entry that is about 120 bytes long, so that the whole line is about 250 bytes.`)},
	{"ok/minimal", []byte(`<13>1 - - - - - -`)},
	{"ok/no_sd", []byte(`<165>1 2003-08-24T05:14:15.000003-07:00 192.0.2.1 myproc 8710 - - %% It's time to make the do-nuts. A longer message body follows here, as real applications write a sentence or two of text per line.`)},
	{"ok/sd_only", []byte(`<165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog - ID47 [exampleSDID@32473 iut="3" eventSource="Application" eventID="1011"][examplePriority@32473 class="high"]`)},
	{"ok/escapes", []byte(`<165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog 1234 ID47 [req@32473 path="C:\\Program Files\\app" query="q=\"a b\"" list="[1,2\]"] An entry whose SD values need unescaping, which costs a second copy of each value.`)},
	{"ok/bom_utf8", []byte("<165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog 1234 ID47 [i18n@32473 city=\"Zürich\"] \xef\xbb\xbfGrüße aus Köln: ein Ereignis mit Umlauten, das als UTF-8 geprüft werden muss, weil es mit einer BOM beginnt.")},
	{"bad/version", []byte(`<165>2 2003-10-11T22:14:15.003Z mymachine.example.com evntslog 1234 ID47 [exampleSDID@32473 iut="3"] a message in a future version`)},
	{"bad/sd", []byte(`<165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog 1234 ID47 [exampleSDID@32473 iut="3" eventSource="Application" eventID="1011"`)},
}

var (
	rfc5424SinkRecord flowgo.Record
	rfc5424SinkErr    error
	rfc5424SinkMsg    syslog.Message
)

// rfc5424BatchSize is how many records share an arena between resets in
// the benchmark, as a batch of the pipeline would.
const rfc5424BatchSize = 256

// BenchmarkDecodeRFC5424 measures the decoder on its own.
//
//	go test ./decoder -run '^$' -bench 'RFC5424' -benchmem
func BenchmarkDecodeRFC5424(b *testing.B) {
	for _, c := range rfc5424BenchCases {
		b.Run(c.name, func(b *testing.B) {
			var (
				a   flowgo.Arena
				r   flowgo.Record
				dec = &decoder.RFC5424{}
			)
			b.ReportAllocs()
			b.SetBytes(int64(len(c.in)))
			for i := 0; b.Loop(); i++ {
				if i%rfc5424BatchSize == 0 {
					a.Reset()
				}
				r.Reset()
				rfc5424SinkErr = dec.Decode(c.in, &r, &a)
			}
			rfc5424SinkRecord = r
		})
	}
}

// BenchmarkGoSyslogRFC5424 is the baseline: go-syslog's strict RFC 5424
// parser on the same lines.
func BenchmarkGoSyslogRFC5424(b *testing.B) {
	for _, c := range rfc5424BenchCases {
		b.Run(c.name, func(b *testing.B) {
			p := rfc5424.NewParser()
			b.ReportAllocs()
			b.SetBytes(int64(len(c.in)))
			for b.Loop() {
				rfc5424SinkMsg, rfc5424SinkErr = p.Parse(c.in)
			}
		})
	}
}
