package input

import (
	"fmt"
	"net"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/flowgo/flowgo"
)

// benchDecoder does the least a decoder does: copy the frame to the arena.
type benchDecoder struct{}

func (benchDecoder) Decode(frame []byte, r *flowgo.Record, a *flowgo.Arena) error {
	r.Msg = flowgo.UnsafeString(a.Copy(frame))
	return nil
}

// countSink counts what it is handed, and takes every batch.
type countSink struct {
	records, rejected, kernel, other atomic.Int64
}

func (s *countSink) Put(b *flowgo.Batch) error {
	s.records.Add(int64(b.Len()))
	flowgo.PutBatch(b)
	return nil
}

func (s *countSink) Prepare(*flowgo.Batch) {}

func (s *countSink) Reject(string, []byte, error) { s.rejected.Add(1) }

func (s *countSink) Dropped(n int, reason string) {
	if reason == dropKernel {
		s.kernel.Add(int64(n))
	} else {
		s.other.Add(int64(n))
	}
}

// benchMessage is a realistic 250-byte RFC 5424 message.
var benchMessage = func() []byte {
	m := `<165>1 2024-05-01T12:34:56.789012+02:00 web-frontend-07.example.org nginx 4242 ACCESS [meta sequenceId="1234567" region="eu-west-1"] GET /api/v1/orders/98765 HTTP/1.1 200 5123 "-" "Mozilla/5.0 (X11; Linux x86_64)" rt=0.012`
	return []byte(m + strings.Repeat(" ", 250-len(m)))
}()

// BenchmarkUDPInput sends b.N 250-byte datagrams on loopback from several
// sockets as fast as they go, and measures what the input receives:
// datagrams/s from the first send to the last record handed over, the rate
// offered (sent/s), and the datagrams lost (drops, all reasons). The
// environment variable UDPBENCH_KEYS adds keys to the input's table, such
// as "udp_recv_buffer = 134217728" to see how much of the loss a larger
// buffer absorbs on a busy machine.
func BenchmarkUDPInput(b *testing.B) {
	for _, senders := range []int{1, 2, 4} {
		b.Run(fmt.Sprintf("senders=%d", senders), func(b *testing.B) { benchUDP(b, senders) })
	}
}

var benchSinkRate float64

func benchUDP(b *testing.B, senders int) {
	c := testConfig(b, os.Getenv("UDPBENCH_KEYS"))
	c.Decoder = benchDecoder{}
	sink := &countSink{}
	run := startUDP(b, c, sink)
	conns := make([]*net.UDPConn, senders)
	for i := range conns {
		conns[i] = dial(b, run.addr)
	}
	b.SetBytes(int64(len(benchMessage)))
	b.ReportAllocs()
	total := int64(b.N/senders) * int64(senders)
	b.ResetTimer()
	start := time.Now()
	var wg sync.WaitGroup
	for _, conn := range conns {
		wg.Go(func() {
			for range b.N / senders {
				if _, err := conn.Write(benchMessage); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	sent := time.Since(start)
	// Wait for the input to catch up, until nothing more comes.
	last, lastAt := int64(-1), time.Now()
	for {
		n := sink.records.Load() + sink.rejected.Load() + sink.other.Load()
		if n >= total {
			break
		}
		if n != last {
			last, lastAt = n, time.Now()
		} else if time.Since(lastAt) > 300*time.Millisecond {
			break
		}
		time.Sleep(time.Millisecond)
	}
	received := sink.records.Load()
	elapsed := time.Since(start)
	if n := sink.records.Load() + sink.rejected.Load() + sink.other.Load(); n < total {
		elapsed -= 300 * time.Millisecond // the quiet time waited for
	}
	b.StopTimer()
	if err := run.stop(b); err != nil {
		b.Fatal(err)
	}
	drops := sink.kernel.Load() + sink.other.Load()
	benchSinkRate = float64(received) / elapsed.Seconds()
	b.ReportMetric(benchSinkRate, "datagrams/s")
	b.ReportMetric(float64(total)/sent.Seconds(), "sent/s")
	b.ReportMetric(float64(drops), "drops")
	if lost := total - received - sink.rejected.Load(); lost != drops {
		b.Errorf("%d datagrams missing but %d counted as dropped", lost, drops)
	}
}

// gateCountSink blocks in Put until its gate opens, then counts.
type gateCountSink struct {
	countSink
	g *gate
}

func (s *gateCountSink) Prepare(*flowgo.Batch) {}

func (s *gateCountSink) Put(b *flowgo.Batch) error {
	s.g.wait()
	return s.countSink.Put(b)
}

// BenchmarkUDPInputDrain measures the input alone: b.N datagrams wait in a
// large receive buffer while the readers are blocked, and the time is how
// long the input takes to read, decode and hand them over once released.
// The sender's speed does not limit it, unlike BenchmarkUDPInput.
func BenchmarkUDPInputDrain(b *testing.B) {
	c := testConfig(b, "udp_recv_buffer = 1073741824") // as root; otherwise net.core.rmem_max caps it
	c.Decoder = benchDecoder{}
	sink := &gateCountSink{g: newGate()}
	run := startUDP(b, c, sink)
	conn := dial(b, run.addr)
	primes := 0
	sink.g.waitBlocked(b, udpReaders(c.Workers), func() {
		send(b, conn, benchMessage)
		primes++
	})
	for range b.N {
		if _, err := conn.Write(benchMessage); err != nil {
			b.Fatal(err)
		}
	}
	b.SetBytes(int64(len(benchMessage)))
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	sink.g.release()
	want := int64(b.N + primes)
	for sink.records.Load() < want {
		if time.Since(start) > 30*time.Second {
			b.Fatalf("%d of %d datagrams handed over", sink.records.Load(), want)
		}
		time.Sleep(100 * time.Microsecond)
	}
	elapsed := time.Since(start)
	b.StopTimer()
	if err := run.stop(b); err != nil {
		b.Fatal(err)
	}
	benchSinkRate = float64(b.N) / elapsed.Seconds()
	b.ReportMetric(benchSinkRate, "datagrams/s")
	b.ReportMetric(float64(sink.kernel.Load()+sink.other.Load()), "drops")
}
