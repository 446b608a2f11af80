package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"math/bits"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// End-to-end latency: with -latency, each record carries the time it was
// handed to the kernel, as "lt=" and 19 digits of Unix nanoseconds at the
// start of its message (the digits are rewritten just before each write),
// and a sink reading what the collector delivered subtracts it from the
// time it read the record. The sender and the sink are this one process,
// so they share a clock.
const (
	stampPrefix = "lt="
	stampDigits = 19
)

// insertStamp puts a stamp placeholder at the start of line's message: after
// the structured data of an RFC 5424 line, after the tag of an RFC 3164 one.
// It returns the line and the offset of the stamp's digits.
func insertStamp(line []byte, format string) ([]byte, int) {
	var at int
	if format == "rfc3164" {
		at = bytes.Index(line, []byte(": ")) + 2
	} else {
		at = bytes.LastIndex(line, []byte("] ")) + 2
	}
	if at < 2 {
		at = len(line)
	}
	stamp := stampPrefix + strings.Repeat("0", stampDigits) + " "
	out := make([]byte, 0, len(line)+len(stamp))
	out = append(out, line[:at]...)
	out = append(out, stamp...)
	out = append(out, line[at:]...)
	return out, at + len(stampPrefix)
}

// putStamp writes t (Unix nanoseconds) as 19 digits at dst[0:19].
func putStamp(dst []byte, t int64) {
	for i := stampDigits - 1; i >= 0; i-- {
		dst[i] = byte('0' + t%10)
		t /= 10
	}
}

// findStamp returns the stamp in a record read back, or false.
func findStamp(rec []byte) (int64, bool) {
	i := bytes.Index(rec, []byte(stampPrefix))
	if i < 0 || len(rec)-i-len(stampPrefix) < stampDigits {
		return 0, false
	}
	var t int64
	for _, c := range rec[i+len(stampPrefix) : i+len(stampPrefix)+stampDigits] {
		if c < '0' || c > '9' {
			return 0, false
		}
		t = t*10 + int64(c-'0')
	}
	return t, true
}

// histogram counts latencies in microseconds: exactly below 1024 µs, then
// in buckets 1/512 of their value wide (0.2%).
type histogram struct {
	counts [1024 + 44*512]int64
	n      int64
	max    int64
}

func bucketOf(us int64) int {
	if us < 1024 {
		return int(max(us, 0))
	}
	e := bits.Len64(uint64(us)) - 10 // ≥ 1
	return 1024 + (e-1)*512 + int(us>>e) - 512
}

// lowest returns the smallest value of bucket i.
func lowest(i int) int64 {
	if i < 1024 {
		return int64(i)
	}
	e := (i-1024)/512 + 1
	return int64((i-1024)%512+512) << e
}

func (h *histogram) add(us int64) {
	h.counts[min(bucketOf(us), len(h.counts)-1)]++
	h.n++
	h.max = max(h.max, us)
}

// quantile returns the q-quantile (0 < q ≤ 1), in microseconds.
func (h *histogram) quantile(q float64) int64 {
	if h.n == 0 {
		return 0
	}
	rank := int64(q*float64(h.n) + 0.5)
	rank = max(1, min(rank, h.n))
	var seen int64
	for i, c := range h.counts {
		seen += c
		if seen >= rank {
			return min(lowest(i), h.max)
		}
	}
	return h.max
}

// latencySink reads back what a collector delivered and measures each
// stamped record's latency.
type latencySink struct {
	mu sync.Mutex
	h  histogram
	// With Kafka, the latency is also cut in two at the record's
	// timestamp, which the producer sets when it builds the record batch:
	// before (collector: input, queue, output until the batch is built)
	// and after (produce request, broker, this consumer), in milliseconds
	// as Kafka's timestamps are.
	before, after histogram
	split         bool
	trace         *latencyTrace // nil without -latency-trace
	lateMax       int64         // the latest a 1 ms sleep woke up, µs (watchStalls)
	seen          atomic.Int64  // stamped records read
	unknown       atomic.Int64  // records without a stamp
	errs          chan error
	stop          func()
	wg            sync.WaitGroup
}

// record measures one record read at now.
func (s *latencySink) record(now int64, rec []byte) {
	s.recordAt(now, rec, 0) // 0: no timestamp, never the producer's clock
}

// recordAt measures one record read at now whose producer stamped it at
// ts (Unix milliseconds, the Kafka record's timestamp). A timestamp from
// before the record was sent, or after it was read, is not the
// producer's clock (a producer may set none): the record is then
// measured without the cut.
func (s *latencySink) recordAt(now int64, rec []byte, ts int64) {
	t, ok := findStamp(rec)
	if !ok {
		s.unknown.Add(1)
		return
	}
	us, afterUS := (now-t)/1000, int64(-1)
	s.mu.Lock()
	s.h.add(us)
	if after := now/1e6 - ts; ts >= t/1e6-1000 && after >= -1000 {
		afterUS = after * 1000
		s.split = true
		s.before.add((ts - t/1e6) * 1000)
		s.after.add(afterUS)
	}
	s.trace.add(now, us, afterUS)
	s.mu.Unlock()
	s.seen.Add(1)
}

// records measures each frame of data, read at now, that ends in one of
// seps; part holds a frame begun in an earlier read and is returned with
// the start of the next one. Empty frames are skipped.
func (s *latencySink) records(now int64, part, data []byte, seps string) []byte {
	for {
		i := bytes.IndexAny(data, seps)
		if i < 0 {
			return append(part, data...)
		}
		if len(part) > 0 {
			part = append(part, data[:i]...)
			s.record(now, part)
			part = part[:0]
		} else if i > 0 {
			s.record(now, data[:i])
		}
		data = data[i+1:]
	}
}

// latencyTrace keeps, for each 10 ms of reading, how many records were read
// and their largest latency, to line the slow moments up with other traces
// (a collector's or a broker's GC, its write durations).
type latencyTrace struct {
	path    string
	windows []traceWindow
	first   int64 // the window index of windows[0]
}

type traceWindow struct {
	n, max, maxAfter int64
	// lateUS is the most a 1 ms sleep of this process overslept in the
	// window: when the machine, not the collector, stalled everyone.
	lateUS int64
}

const traceWindowNS = 10_000_000

func (t *latencyTrace) add(now, us, afterUS int64) {
	if w := t.window(now); w != nil {
		w.n++
		w.max = max(w.max, us)
		w.maxAfter = max(w.maxAfter, afterUS)
	}
}

// window returns the window of now, nil without a trace.
func (t *latencyTrace) window(now int64) *traceWindow {
	if t == nil {
		return nil
	}
	i := now / traceWindowNS
	if len(t.windows) == 0 {
		t.first = i
	}
	j := i - t.first
	if j < 0 || j > 1e6 {
		return nil
	}
	for int64(len(t.windows)) <= j {
		t.windows = append(t.windows, traceWindow{maxAfter: -1})
	}
	return &t.windows[j]
}

// watchStalls sleeps 1 ms at a time until ctx ends and keeps how late the
// wake-ups came: the most overall, and in the trace per window. A late
// wake-up is this process waiting for a CPU, which on a shared machine
// stalls the collector and the broker too.
func (s *latencySink) watchStalls(ctx context.Context) {
	for ctx.Err() == nil {
		t0 := time.Now()
		time.Sleep(time.Millisecond)
		now := time.Now()
		late := now.Sub(t0).Microseconds() - 1000
		if s.seen.Load() == 0 {
			continue // the run has not started: lines are still being generated
		}
		s.mu.Lock()
		s.lateMax = max(s.lateMax, late)
		if w := s.trace.window(now.UnixNano()); w != nil {
			w.lateUS = max(w.lateUS, late)
		}
		s.mu.Unlock()
	}
}

// write saves the trace: one line per window, its start (Unix seconds),
// records read, the largest latency and, with Kafka, the largest part of
// it after the producer's timestamp (ms); "-" when unknown.
func (t *latencyTrace) write() error {
	if t == nil {
		return nil
	}
	var b strings.Builder
	b.WriteString("# unix_s records max_ms max_after_ts_ms sleep_late_ms\n")
	for j, w := range t.windows {
		at := (t.first + int64(j)) * traceWindowNS
		after := "-"
		if w.maxAfter >= 0 {
			after = fmt.Sprintf("%.0f", ms(w.maxAfter))
		}
		fmt.Fprintf(&b, "%d.%02d %d %.1f %s %.1f\n", at/1e9, at%1e9/1e7, w.n, ms(w.max), after, ms(w.lateUS))
	}
	return os.WriteFile(t.path, []byte(b.String()), 0o644)
}

// startSink starts the sink -latency names: file:PATH, tls:ADDR or
// kafka:HOST:PORT/TOPIC. It is reading (the file at its current end, the
// topic at its end offsets, the listener bound) when it returns.
func startSink(ctx context.Context, o *options) (*latencySink, error) {
	kind, arg, _ := strings.Cut(o.latency, ":")
	ctx, cancel := context.WithCancel(ctx)
	s := &latencySink{errs: make(chan error, 1), stop: cancel}
	if o.latencyTrace != "" {
		s.trace = &latencyTrace{path: o.latencyTrace}
	}
	var err error
	switch kind {
	case "file":
		err = s.startFile(ctx, arg)
	case "tls":
		err = s.startTLS(ctx, arg, o.sinkCert, o.sinkKey)
	case "kafka":
		err = s.startKafka(ctx, arg)
	default:
		err = fmt.Errorf("-latency %q: want file:PATH, tls:ADDR or kafka:HOST:PORT/TOPIC", o.latency)
	}
	if err != nil {
		cancel()
		return nil, err
	}
	s.wg.Go(func() { s.watchStalls(ctx) })
	return s, nil
}

func (s *latencySink) fail(err error) {
	select {
	case s.errs <- err:
	default:
	}
}

// startFile tails path from its current end (it may not exist yet),
// polling every millisecond, and measures each complete line.
func (s *latencySink) startFile(ctx context.Context, path string) error {
	var off int64
	if fi, err := os.Stat(path); err == nil {
		off = fi.Size()
	}
	s.wg.Go(func() {
		var f *os.File
		defer func() {
			if f != nil {
				f.Close()
			}
		}()
		buf := make([]byte, 1<<20)
		var part []byte // a line not yet complete
		for ctx.Err() == nil {
			if f == nil {
				var err error
				if f, err = os.Open(path); err != nil {
					f = nil
					time.Sleep(time.Millisecond)
					continue
				}
			}
			n, err := f.ReadAt(buf, off)
			if n == 0 {
				if err != nil && !errors.Is(err, io.EOF) {
					s.fail(err)
					return
				}
				time.Sleep(time.Millisecond)
				continue
			}
			off += int64(n)
			part = s.records(time.Now().UnixNano(), part, buf[:n], "\n")
		}
	})
	return nil
}

// startTLS accepts TLS connections on addr (a collector's TLS output) and
// measures each frame, NUL- or LF-terminated.
func (s *latencySink) startTLS(ctx context.Context, addr, cert, key string) error {
	if key == "" { // validate has made sure of cert
		key = cert
	}
	pair, err := tls.LoadX509KeyPair(cert, key)
	if err != nil {
		return fmt.Errorf("-sink-cert/-sink-key: %w", err)
	}
	ln, err := tls.Listen("tcp", addr, &tls.Config{Certificates: []tls.Certificate{pair}, MinVersion: tls.VersionTLS12})
	if err != nil {
		return err
	}
	context.AfterFunc(ctx, func() { ln.Close() })
	s.wg.Go(func() {
		var conns sync.WaitGroup
		defer conns.Wait()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			context.AfterFunc(ctx, func() { c.Close() })
			conns.Go(func() {
				defer c.Close()
				var part []byte
				buf := make([]byte, 1<<20)
				for {
					n, err := c.Read(buf)
					part = s.records(time.Now().UnixNano(), part, buf[:n], "\x00\n")
					if err != nil {
						return
					}
				}
			})
		}
	})
	return nil
}

// startKafka consumes the topic from its current end offsets and measures
// each record's value.
func (s *latencySink) startKafka(ctx context.Context, arg string) error {
	t, err := parseKafkaTarget(arg)
	if err != nil {
		return fmt.Errorf("-latency kafka:%w", err)
	}
	ends, err := newKafkaClient(t).endOffsets(ctx)
	if err != nil {
		return err
	}
	at := map[int32]kgo.Offset{}
	for p, off := range ends {
		at[int32(p)] = kgo.NewOffset().At(off)
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(t.broker),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{t.topic: at}),
		kgo.FetchMaxWait(100*time.Millisecond))
	if err != nil {
		return err
	}
	s.wg.Go(func() {
		defer cl.Close()
		for ctx.Err() == nil {
			fs := cl.PollFetches(ctx)
			now := time.Now().UnixNano()
			if err := fs.Err0(); err != nil && ctx.Err() == nil && !errors.Is(err, context.Canceled) {
				s.fail(err)
				return
			}
			fs.EachRecord(func(r *kgo.Record) { s.recordAt(now, r.Value, r.Timestamp.UnixMilli()) })
		}
	})
	return nil
}

// wait returns once want stamped records were read, or none came for stall.
func (s *latencySink) wait(ctx context.Context, want int64, stall time.Duration) error {
	last, lastAt := s.seen.Load(), time.Now()
	for {
		n := s.seen.Load()
		if n >= want {
			return nil
		}
		if n != last {
			last, lastAt = n, time.Now()
		}
		if time.Since(lastAt) >= stall {
			return fmt.Errorf("latency sink: %d of %d records read back, none for %s", n, want, stall)
		}
		select {
		case err := <-s.errs:
			return fmt.Errorf("latency sink: %w", err)
		case <-ctx.Done():
			return errInterrupted
		case <-time.After(5 * time.Millisecond):
		}
	}
}

// close stops the sink and returns what it measured.
func (s *latencySink) close() latencyResult {
	s.stop()
	s.wg.Wait()
	s.mu.Lock()
	defer s.mu.Unlock()
	r := latencyResult{n: s.h.n, p50: s.h.quantile(0.5), p99: s.h.quantile(0.99), max: s.h.max, unknown: s.unknown.Load(), late: s.lateMax}
	if s.split {
		r.split = true
		r.beforeP99, r.beforeMax = s.before.quantile(0.99), s.before.max
		r.afterP50, r.afterP99, r.afterMax = s.after.quantile(0.5), s.after.quantile(0.99), s.after.max
	}
	r.traceErr = s.trace.write()
	return r
}

// latencyResult is what a sink measured, in microseconds.
type latencyResult struct {
	n, p50, p99, max, unknown int64
	late                      int64 // the latest a 1 ms sleep of this process woke up
	// With Kafka: the part before the record's timestamp and after it.
	split                        bool
	beforeP99, beforeMax         int64
	afterP50, afterP99, afterMax int64
	traceErr                     error
}

func ms(us int64) float64 { return float64(us) / 1000 }
