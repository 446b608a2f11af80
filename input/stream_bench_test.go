package input

import (
	"crypto/tls"
	"fmt"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/flowgo/flowgo"
)

// streamCountSink counts records and recycles batches; done is closed when want
// records have arrived.
type streamCountSink struct {
	n       atomic.Int64
	batches atomic.Int64
	want    int64
	done    chan struct{}
	once    sync.Once
}

func (s *streamCountSink) Put(b *flowgo.Batch) error {
	s.batches.Add(1)
	if s.n.Add(int64(b.Len())) >= s.want {
		s.once.Do(func() { close(s.done) })
	}
	flowgo.PutBatch(b)
	return nil
}
func (s *streamCountSink) Prepare(*flowgo.Batch) {}

func (s *streamCountSink) Reject(origin string, frame []byte, err error) {}
func (s *streamCountSink) Dropped(n int, reason string)                  {}

// benchLine is a typical ~250-byte RFC 5424 message.
const benchLine = `<165>1 2025-03-14T15:09:26.535897+01:00 web-frontend-07.example.net nginx 21984 ACCESS [meta@32473 client="192.0.2.17" method="GET" status="200"] GET /api/v1/orders/88412?expand=items HTTP/1.1 bytes=5123 rt=0.004 ua="curl/8.5.0"`

// BenchmarkStreamInput pushes b.N messages through loopback connections
// into a tcp or tls input, with the verbatim decoder (one arena copy per
// record), a counting sink and the default stream budget: the cost of the
// input itself.
func BenchmarkStreamInput(b *testing.B) {
	for _, typ := range []string{"tcp", "tls"} {
		for _, framing := range []flowgo.Framing{flowgo.FramingLine, flowgo.FramingSyslen} {
			for _, conns := range []int{1, 4} {
				b.Run(fmt.Sprintf("%s/%s/conns=%d", typ, framing, conns), func(b *testing.B) {
					benchStream(b, typ, framing, conns)
				})
			}
		}
	}
}

func benchStream(b *testing.B, typ string, framing flowgo.Framing, conns int) {
	frame := []byte(benchLine + "\n")
	if framing == flowgo.FramingSyslen {
		frame = []byte(strconv.Itoa(len(benchLine)) + " " + benchLine)
	}
	var chunk []byte
	for range 256 {
		chunk = append(chunk, frame...)
	}
	sink := &streamCountSink{want: int64(b.N), done: make(chan struct{})}
	var s *testServer
	// With the default stream budget, as a pipeline runs it.
	o := streamOptions{framing: framing, otherSink: sink, buffers: NewBuffers(DefaultStreamBufferBytes)}
	if typ == "tls" {
		s = startTLS(b, false, "", o)
	} else {
		s = startStream(b, "tcp", `listen = "127.0.0.1:0"`, o)
	}
	var err error
	clients := make([]net.Conn, conns)
	for i := range clients {
		var c net.Conn
		if typ == "tls" {
			c, err = tls.Dial("tcp", s.addr, s.certs.clientConfig(true))
		} else {
			c, err = net.Dial("tcp", s.addr)
		}
		if err != nil {
			b.Fatal(err)
		}
		defer c.Close()
		clients[i] = c
	}

	b.SetBytes(int64(len(frame)))
	b.ReportAllocs()
	b.ResetTimer()
	began := time.Now()
	cpuBefore := cpuTime()
	var wg sync.WaitGroup
	for i, c := range clients {
		n := b.N / conns
		if i == 0 {
			n += b.N % conns
		}
		wg.Go(func() {
			for n > 0 {
				k := min(n, 256)
				if _, err := c.Write(chunk[:k*len(frame)]); err != nil {
					b.Error(err)
					return
				}
				n -= k
			}
		})
	}
	wg.Wait()
	select {
	case <-sink.done:
	case <-time.After(60 * time.Second):
		b.Fatalf("%d of %d records arrived", sink.n.Load(), b.N)
	}
	elapsed := time.Since(began)
	cpu := cpuTime() - cpuBefore
	b.StopTimer()
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "records/s")
	// The machine is shared and the sender runs in this process too: CPU
	// time per record (sender included) says more than wall time.
	b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N), "cpu-ns/record")
	b.ReportMetric(float64(b.N)/float64(sink.batches.Load()), "records/batch")
}

// cpuTime returns the CPU time (user and system) this process has used.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
