package encoder

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/flowgo/flowgo"
)

// benchLine is a realistic RFC 5424 line of about 250 bytes: an access log
// event with four SD params.
const benchLine = `<165>1 2024-02-29T12:34:56.123456Z web-frontend-03.example.net nginx 24731 ACCESS [request@32473 method="GET" path="/api/v1/orders/8842" status="200" bytes="5120"] 192.0.2.17 "GET /api/v1/orders/8842 HTTP/1.1" 200 5120 "curl/8.5.0"`

// benchRecord is what the RFC 5424 decoder makes of benchLine.
func benchRecord() flowgo.Record {
	return flowgo.Record{
		Time:     time.Date(2024, 2, 29, 12, 34, 56, 123456000, time.UTC),
		Hostname: "web-frontend-03.example.net", AppName: "nginx", ProcID: "24731", MsgID: "ACCESS",
		Msg:      `192.0.2.17 "GET /api/v1/orders/8842 HTTP/1.1" 200 5120 "curl/8.5.0"`,
		FullMsg:  benchLine,
		Facility: 20, Severity: 5,
		SD: []flowgo.SDElement{{ID: "request@32473", Params: []flowgo.Param{
			str("method", "GET"), str("path", "/api/v1/orders/8842"), str("status", "200"), str("bytes", "5120"),
		}}},
	}
}

var sink []byte

func benchmarkEncode(b *testing.B, format, toml string) {
	e := newTestEncoder(b, format, toml)
	r := benchRecord()
	b.Run("average", func(b *testing.B) {
		dst := make([]byte, 0, 4096)
		b.ReportAllocs()
		b.SetBytes(int64(len(benchLine)))
		for b.Loop() {
			dst, _ = e.Encode(dst[:0], &r)
		}
		sink = dst
	})
}

func BenchmarkEncodeGELF(b *testing.B)    { benchmarkEncode(b, "gelf", "") }
func BenchmarkEncodeRFC5424(b *testing.B) { benchmarkEncode(b, "rfc5424", "") }
func BenchmarkEncodeRFC3164(b *testing.B) { benchmarkEncode(b, "rfc3164", "") }
func BenchmarkEncodeLTSV(b *testing.B)    { benchmarkEncode(b, "ltsv", "") }
func BenchmarkEncodePassthrough(b *testing.B) {
	benchmarkEncode(b, "passthrough", "")
}

func BenchmarkAppendJSONString(b *testing.B) {
	dst := make([]byte, 0, 1024)
	b.ReportAllocs()
	b.SetBytes(int64(len(benchLine)))
	for b.Loop() {
		dst = appendJSONString(dst[:0], benchLine)
	}
	sink = dst
}

// BenchmarkEncodeJSONMap is the yardstick: encoding/json marshalling the
// same GELF fields from a map, as a naive encoder would.
func BenchmarkEncodeJSONMap(b *testing.B) {
	r := benchRecord()
	b.ReportAllocs()
	b.SetBytes(int64(len(benchLine)))
	for b.Loop() {
		m := map[string]any{
			"version": "1.1", "host": r.Hostname, "short_message": r.Msg, "full_message": r.FullMsg,
			"timestamp": float64(r.Time.UnixMicro()) / 1e6, "level": r.Severity, "_facility_num": r.Facility,
			"application_name": r.AppName, "process_id": r.ProcID, "_msgid": r.MsgID, "sd_id": r.SD[0].ID,
		}
		for _, p := range r.SD[0].Params {
			m["_"+p.Name] = p.Value.Str
		}
		sink, _ = json.Marshal(m)
	}
}
