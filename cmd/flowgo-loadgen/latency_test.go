package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/flowgo/flowgo/internal/sample"
	"github.com/flowgo/flowgo/internal/testcerts"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
)

func TestStampedLinesStayValidAndCarryTheirStamp(t *testing.T) {
	for _, format := range []string{"rfc5424", "rfc3164"} {
		t.Run(format, func(t *testing.T) {
			g := sample.New(3)
			gen := g.RFC5424
			if format == "rfc3164" {
				gen = g.RFC3164
			}
			chk := newChecker(t, format)
			for range 200 {
				line, at := insertStamp(gen(nil), format)
				putStamp(line[at:], 1795650404456408599)
				var r received
				chk.check(line, &r)
				if len(r.bad) > 0 {
					t.Fatalf("the stamped line does not decode: %s", r.bad[0])
				}
				if !strings.HasPrefix(chk.rec.Msg, "lt=1795650404456408599 ") {
					t.Fatalf("message %q does not start with the stamp", chk.rec.Msg)
				}
				if ts, ok := findStamp([]byte(`{"short_message":"` + chk.rec.Msg + `"}`)); !ok || ts != 1795650404456408599 {
					t.Fatalf("findStamp = %d, %v; want the stamp back", ts, ok)
				}
			}
		})
	}
	if _, ok := findStamp([]byte("lt=12345 short")); ok {
		t.Error("findStamp accepted a stamp of 5 digits")
	}
}

func TestHistogramQuantilesAreWithinTheirBucket(t *testing.T) {
	var h histogram
	for us := int64(1); us <= 100000; us++ {
		h.add(us)
	}
	for _, c := range []struct {
		q    float64
		want int64
	}{{0.5, 50000}, {0.99, 99000}, {0.001, 100}, {1, 100000}} {
		got := h.quantile(c.q)
		if d := got - c.want; d > c.want/400 || -d > c.want/400 {
			t.Errorf("quantile(%v) = %d µs; want %d within 0.25%%", c.q, got, c.want)
		}
	}
	if h.max != 100000 || h.n != 100000 {
		t.Errorf("max %d, n %d; want 100000, 100000", h.max, h.n)
	}
	for i := range len(h.counts) - 1 {
		if lowest(i) >= lowest(i+1) || bucketOf(lowest(i)) != i {
			t.Fatalf("bucket %d: lowest %d, next %d, bucketOf(lowest) %d", i, lowest(i), lowest(i+1), bucketOf(lowest(i)))
		}
	}
}

// relay is a stand-in collector: it reads the load generator's lines and,
// after holding each read for delay, hands them to forward.
func relay(t *testing.T, delay time.Duration, forward func(lines [][]byte)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Go(func() {
				defer c.Close()
				var part []byte
				buf := make([]byte, 64<<10)
				for {
					n, err := c.Read(buf)
					data := append(part, buf[:n]...)
					var lines [][]byte
					for {
						i := bytes.IndexByte(data, '\n')
						if i < 0 {
							break
						}
						lines = append(lines, append([]byte(nil), data[:i]...))
						data = data[i+1:]
					}
					part = append([]byte(nil), data...)
					if len(lines) > 0 {
						time.Sleep(delay)
						forward(lines)
					}
					if err != nil {
						return
					}
				}
			})
		}
	})
	return ln.Addr().String()
}

// checkLatency checks a -latency run's summary: every record read back,
// none faster than the relay's delay.
func checkLatency(t *testing.T, sum map[string]string, n int, delay time.Duration) {
	t.Helper()
	if sum["lat_records"] != strconv.Itoa(n) {
		t.Errorf("lat_records=%s; want %d", sum["lat_records"], n)
	}
	var q [3]float64
	for i, k := range []string{"lat_p50_ms", "lat_p99_ms", "lat_max_ms"} {
		v, err := strconv.ParseFloat(sum[k], 64)
		if err != nil {
			t.Fatalf("%s=%q: %v", k, sum[k], err)
		}
		q[i] = v
	}
	if q[0] < float64(delay.Milliseconds()) || q[0] > q[1] || q[1] > q[2] {
		t.Errorf("p50 %.3f ms, p99 %.3f ms, max %.3f ms; want %d ms ≤ p50 ≤ p99 ≤ max", q[0], q[1], q[2], delay.Milliseconds())
	}
}

const relayDelay = 30 * time.Millisecond

func TestLatencyReadBackFromAFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "out.log")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	f.WriteString("a line from before the run, without a stamp\n")
	var mu sync.Mutex
	addr := relay(t, relayDelay, func(lines [][]byte) {
		mu.Lock()
		defer mu.Unlock()
		for _, l := range lines {
			f.Write(append(l, '\n'))
		}
	})
	trace := filepath.Join(t.TempDir(), "trace.txt")
	sum := runOK(t, "-addr", addr, "-n", "3000", "-rate", "30000", "-latency", "file:"+path, "-latency-trace", trace)
	checkLatency(t, sum, 3000, relayDelay)
	if _, err := strconv.ParseFloat(sum["lat_sleep_late_ms"], 64); err != nil {
		t.Errorf("lat_sleep_late_ms=%q: %v", sum["lat_sleep_late_ms"], err)
	}
	checkTrace(t, trace, 3000, relayDelay)
}

// checkTrace checks a -latency-trace file: the windows' records add up to
// n, and the largest latency in it is at least delay.
func checkTrace(t *testing.T, path string, n int, delay time.Duration) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(data)), "\n")
	if len(lines) < 2 || !strings.HasPrefix(lines[0], "# unix_s records max_ms") {
		t.Fatalf("trace %q...: want a header and windows", data[:min(len(data), 200)])
	}
	var total int
	var top float64
	for _, l := range lines[1:] {
		f := strings.Fields(l)
		if len(f) != 5 {
			t.Fatalf("trace line %q: want 5 fields", l)
		}
		k, err1 := strconv.Atoi(f[1])
		m, err2 := strconv.ParseFloat(f[2], 64)
		if err1 != nil || err2 != nil {
			t.Fatalf("trace line %q: %v %v", l, err1, err2)
		}
		total += k
		top = max(top, m)
	}
	if total != n || top < float64(delay.Milliseconds()) {
		t.Errorf("trace: %d records, largest latency %.1f ms; want %d and at least %v", total, top, n, delay)
	}
}

func TestLatencyReadBackOverTLS(t *testing.T) {
	dir := t.TempDir()
	ca := testcerts.NewCA(t, "latency sink CA")
	srv := ca.Server(t)
	cert := testcerts.WriteFile(t, dir, "sink.pem", srv.CertPEM, srv.KeyPEM)
	// The sink's address must be known before the run starts.
	probe, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	sinkAddr := probe.Addr().String()
	probe.Close()
	var mu sync.Mutex
	var conn *tls.Conn
	addr := relay(t, relayDelay, func(lines [][]byte) {
		mu.Lock()
		defer mu.Unlock()
		if conn == nil {
			c, err := tls.Dial("tcp", sinkAddr, &tls.Config{InsecureSkipVerify: true})
			if err != nil {
				t.Errorf("dialling the sink: %v", err)
				return
			}
			conn = c
		}
		var b []byte
		for _, l := range lines {
			b = append(append(b, l...), 0) // GELF over TLS: NUL framing
		}
		conn.Write(b)
	})
	defer func() {
		if conn != nil {
			conn.Close()
		}
	}()
	sum := runOK(t, "-addr", addr, "-n", "3000", "-rate", "30000", "-latency", "tls:"+sinkAddr, "-sink-cert", cert)
	checkLatency(t, sum, 3000, relayDelay)
}

func TestLatencyAndKafkaWaitReadBackFromATopic(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(3, "logs"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	broker := c.ListenAddrs()[0]
	cl, err := kgo.NewClient(kgo.SeedBrokers(broker), kgo.DefaultProduceTopic("logs"))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	// Records from before the run are neither counted nor measured.
	if err := cl.ProduceSync(context.Background(), &kgo.Record{Value: []byte("old")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	addr := relay(t, relayDelay, func(lines [][]byte) {
		recs := make([]*kgo.Record, len(lines))
		for i, l := range lines {
			recs[i] = &kgo.Record{Value: l}
		}
		if err := cl.ProduceSync(context.Background(), recs...).FirstErr(); err != nil {
			t.Errorf("producing: %v", err)
		}
	})
	target := broker + "/logs"
	sum := runOK(t, "-addr", addr, "-n", "3000", "-rate", "30000", "-latency", "kafka:"+target, "-kafka-wait", target)
	checkLatency(t, sum, 3000, relayDelay)
	// The relay's producer stamps each record when it produces it, after
	// the delay: the delay is before the timestamp, not after.
	before, err1 := strconv.ParseFloat(sum["lat_before_ts_p99_ms"], 64)
	after, err2 := strconv.ParseFloat(sum["lat_after_ts_p99_ms"], 64)
	p99, _ := strconv.ParseFloat(sum["lat_p99_ms"], 64)
	if err1 != nil || err2 != nil || before < float64(relayDelay.Milliseconds()-1) || after > p99-float64(relayDelay.Milliseconds())+2 {
		t.Errorf("lat_before_ts_p99_ms=%s lat_after_ts_p99_ms=%s (p99 %.1f ms): want the %v relay delay before the timestamp",
			sum["lat_before_ts_p99_ms"], sum["lat_after_ts_p99_ms"], p99, relayDelay)
	}
	if sum["stored"] != "3000" {
		t.Errorf("stored=%s; want 3000", sum["stored"])
	}
	start, _ := strconv.ParseFloat(sum["start_unix"], 64)
	done, err := strconv.ParseFloat(sum["done_unix"], 64)
	if err != nil || done-start < relayDelay.Seconds() {
		t.Errorf("done_unix=%s, start_unix=%s: want the last record stored at least %v after the first was sent", sum["done_unix"], sum["start_unix"], relayDelay)
	}
}

func TestLatencyCommandLineErrors(t *testing.T) {
	for _, args := range [][]string{
		{"-addr", "127.0.0.1:1", "-n", "1", "-latency", "nowhere"},
		{"-addr", "127.0.0.1:1", "-n", "1", "-latency", "tls:127.0.0.1:0"},
		{"-addr", "127.0.0.1:1", "-n", "1", "-proto", "udp", "-latency", "file:/tmp/x"},
		{"-addr", "127.0.0.1:1", "-n", "1", "-sink-cert", "x.pem"},
		{"-addr", "127.0.0.1:1", "-n", "1", "-kafka-wait", "nohost"},
		{"-addr", "127.0.0.1:1", "-n", "1", "-latency-trace", "t.txt"},
	} {
		var stdout, stderr bytes.Buffer
		if code := run(context.Background(), args, &stdout, &stderr); code != exitUsage {
			t.Errorf("run(%q) = %d; want %d (stderr %s)", args, code, exitUsage, stderr.String())
		}
	}
}
