//go:build linux

package output_test

import (
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"testing"

	"github.com/flowgo/flowgo"
)

// gelfBatch returns n GELF records of about 300 bytes, NUL-framed, as the
// pipeline hands them to the output.
func gelfBatch(n int) *flowgo.Batch {
	hosts := []string{"web-01.prod.example.com", "db-master.prod.example.com", "k8s-node-12.cluster.local", "10.20.30.40"}
	apps := []string{"nginx", "postgres", "kubelet", "app-server"}
	msgs := []string{
		"GET /api/v1/orders/12345 HTTP/1.1 200 1532 \\\"-\\\" \\\"Mozilla/5.0 (X11; Linux x86_64)\\\" rt=0.023",
		"connection received: host=10.1.2.3 port=53122 user=app_rw database=orders",
		"Successfully probed container readiness: pod default/api-7d9f8c6b5-x2lqz",
		"order 812733 processed in 41 ms: 3 items, total 129.90 EUR, payment authorised",
	}
	b := &flowgo.Batch{ID: testBatchIDs.Add(1)}
	for i := range n {
		b.Data = fmt.Appendf(b.Data, `{"version":"1.1","host":%q,"short_message":"%s","timestamp":1732579200.%06d,"level":6,`+
			`"application_name":%q,"process_id":"%d","_msgid":"REQ","_facility":"local0","_request_id":"%016x"}`+"\x00",
			hosts[i%len(hosts)], msgs[i%len(msgs)], i%1000000, apps[i%len(apps)], 1000+i%5000, uint64(i)*0x9e3779b97f4a7c15)
		b.Ends = append(b.Ends, len(b.Data))
	}
	return b
}

// discardSink accepts TLS connections and reads everything, discarding it.
func discardSink(b *testing.B) string {
	p := newPKI(b)
	ln, err := tls.Listen("tcp4", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{serverCert(b, p.server)}})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func(c net.Conn) {
				defer c.Close()
				buf := make([]byte, 256<<10)
				io.CopyBuffer(io.Discard, struct{ io.Reader }{c}, buf)
			}(c)
		}
	}()
	return fmt.Sprintf("connect = [%q]\ntls_ca_file = %q\n", ln.Addr(), p.caFile)
}

// BenchmarkTLSOutput sends ~300-byte GELF records in batches of 1024 (the
// pipeline's batch size), or one record at a time (a quiet source), to a
// local TLS server that reads and discards them; an op is one record, and
// the time includes Close, which waits until the server acknowledged
// everything.
func BenchmarkTLSOutput(b *testing.B) {
	full := gelfBatch(1024)
	for _, bm := range []struct {
		name, keys string
		per        int
	}{
		{"sync", "", 1024},
		{"async", "tls_async = true\n", 1024},
		{"threads=2", "tls_threads = 2\n", 1024},
		{"sync,1-record-batches", "", 1},
		{"async,1-record-batches", "tls_async = true\n", 1},
	} {
		batch := &flowgo.Batch{Data: full.Data[:full.Ends[bm.per-1]], Ends: full.Ends[:bm.per]}
		b.Run(bm.name, func(b *testing.B) {
			keys := discardSink(b) + bm.keys
			o := newTLS(b, keys)
			// Connect before timing.
			if err := o.Write(b.Context(), &flowgo.Batch{Data: batch.Data[:batch.Ends[0]], Ends: batch.Ends[:1]}); err != nil {
				b.Fatal(err)
			}
			b.SetBytes(int64(len(batch.Data) / len(batch.Ends)))
			b.ReportAllocs()
			b.ResetTimer()
			part := &flowgo.Batch{}
			for sent := 0; sent < b.N; {
				k := min(b.N-sent, len(batch.Ends))
				part.Data, part.Ends = batch.Data[:batch.Ends[k-1]], batch.Ends[:k]
				if err := o.Write(b.Context(), part); err != nil {
					b.Fatal(err)
				}
				sent += k
			}
			if err := o.Close(b.Context()); err != nil {
				b.Fatal(err)
			}
			b.StopTimer()
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "records/s")
		})
	}
}
