package input

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/iotest"
	"time"

	"github.com/flowgo/flowgo"
)

// waitStalled waits until n() stops changing for a second: the input
// reads no more.
func waitStalled(t *testing.T, what string, n func() int64) int64 {
	t.Helper()
	last, since := int64(-1), time.Now()
	deadline := time.Now().Add(30 * time.Second)
	for time.Since(since) < time.Second {
		if time.Now().After(deadline) {
			t.Fatalf("%s never stopped changing: %d", what, n())
		}
		time.Sleep(20 * time.Millisecond)
		if v := n(); v != last {
			last, since = v, time.Now()
		}
	}
	return last
}

// Connections that each send most of a frame and no delimiter hold only
// their own small buffer, plus what the budget has: past it they are not
// read, and once their frames are finished every one of them arrives.
func TestPartialFramesStayWithinTheBudget(t *testing.T) {
	t.Run("tcp", func(t *testing.T) {
		mem := NewBuffers(1 << 20)
		testPartialFrames(t, mem, startStream(t, "tcp", `listen = "127.0.0.1:0"`, streamOptions{buffers: mem}))
	})
	t.Run("tls", func(t *testing.T) {
		mem := NewBuffers(1 << 20)
		testPartialFrames(t, mem, startTLS(t, false, "", streamOptions{buffers: mem}))
	})
}

func testPartialFrames(t *testing.T, mem *Buffers, s *testServer) {
	const (
		conns  = 200
		size   = 60000
		budget = 1 << 20
	)
	finish := make(chan struct{})
	var wg sync.WaitGroup
	frame := bytes.Repeat([]byte("p"), size)
	for range conns {
		c := s.dial(t)
		wg.Go(func() {
			if _, err := c.Write(frame); err != nil {
				t.Errorf("write: %v", err)
				return
			}
			<-finish
			if _, err := io.WriteString(c, "\n"); err != nil {
				t.Errorf("write: %v", err)
			}
		})
	}
	read := waitStalled(t, "bytes read", s.sink.read.Load)
	used, peak, _ := mem.Usage()
	t.Logf("%d connections of %d bytes: %d bytes read, budget %d used, %d at most", conns, size, read, used, peak)
	if peak > budget {
		t.Errorf("the budget reached %d bytes; limit %d", peak, budget)
	}
	if most := int64(budget + conns*baseBufferSize); read > most {
		t.Errorf("%d bytes read; want at most the budget and each connection's own buffer, %d", read, most)
	}
	if s.sink.records.Load() != 0 {
		t.Fatalf("%d records from unfinished frames", s.sink.records.Load())
	}

	close(finish)
	wg.Wait()
	s.sink.waitRecords(t, conns, 30*time.Second)
	for _, m := range s.sink.got() {
		if len(m) != size {
			t.Fatalf("a record of %d bytes; want %d", len(m), size)
		}
	}
	if !waitFor(10*time.Second, func() bool { used, _, _ := mem.Usage(); return used == 0 }) {
		used, _, _ := mem.Usage()
		t.Errorf("%d bytes of budget still held with every frame delivered", used)
	}
}

// countingDecoder counts the frames it decoded.
type countingDecoder struct{ n atomic.Int64 }

func (d *countingDecoder) Decode(frame []byte, r *flowgo.Record, a *flowgo.Arena) error {
	d.n.Add(1)
	return verbatim{}.Decode(frame, r, a)
}

// With the queue full, what connections decode and cannot hand over is
// held by the budget too: past it they stop reading, rather than each of
// them holding batches of its own. Nothing is lost once the queue has room.
func TestRecordsWaitingForTheQueueStayWithinTheBudget(t *testing.T) {
	const (
		conns  = 50
		lines  = 2000
		line   = 200
		budget = 1 << 20
	)
	mem := NewBuffers(budget)
	dec := &countingDecoder{}
	sink := &streamSink{block: make(chan struct{})}
	s := startStream(t, "tcp", `listen = "127.0.0.1:0"`, streamOptions{buffers: mem, sink: sink, decoder: dec})
	var wg sync.WaitGroup
	for i := range conns {
		c := s.dial(t)
		wg.Go(func() {
			var b strings.Builder
			for j := range lines {
				fmt.Fprintf(&b, "%03d %06d %s\n", i, j, strings.Repeat("r", line-len("000 000000 ")-1))
			}
			if _, err := io.WriteString(c, b.String()); err != nil {
				t.Errorf("write: %v", err)
			}
		})
	}
	checkBlockedWithinBudget(t, mem, dec, budget, line, conns*lines)

	close(sink.block)
	wg.Wait()
	checkDeliveredInOrder(t, sink, mem, conns, lines, 60*time.Second, "connection")
}

// checkBlockedWithinBudget waits until streams sending total frames of
// line bytes each to a blocked queue stall, and checks that the budget
// (of budget bytes) held their partial frames and decoded records: beyond
// its limit only the reserve, a few frames of one stream.
func checkBlockedWithinBudget(t *testing.T, mem *Buffers, dec *countingDecoder, budget, line, total int) {
	t.Helper()
	decoded := waitStalled(t, "frames decoded", dec.n.Load)
	used, peak, _ := mem.Usage()
	slack := 4 * (2*line + recordCharge + chargeStep)
	t.Logf("queue blocked: %d of %d frames decoded, budget %d used, %d at most", decoded, total, used, peak)
	if peak > budget+slack {
		t.Errorf("the budget reached %d bytes; limit %d", peak, budget)
	}
	if most := int64((budget + slack) / (2*line + recordCharge)); decoded > most {
		t.Errorf("%d frames decoded while the queue was blocked; the budget holds %d", decoded, most)
	}
}

// checkDeliveredInOrder waits for each of streams streams' each records
// ("SSS NNNNNN ...": stream, then sequence number) and checks that every
// stream's came in order, and that the budget is all given back.
func checkDeliveredInOrder(t *testing.T, sink *streamSink, mem *Buffers, streams, each int, wait time.Duration, stream string) {
	t.Helper()
	sink.waitRecords(t, streams*each, wait)
	next := make([]int, streams)
	for _, m := range sink.got() {
		var c, j int
		if _, err := fmt.Sscanf(m, "%d %d", &c, &j); err != nil || j != next[c] {
			t.Fatalf("record %q out of order (want %d of %s %d)", m[:10], next[c], stream, c)
		}
		next[c]++
	}
	if !waitFor(10*time.Second, func() bool { used, _, _ := mem.Usage(); return used == 0 }) {
		used, _, _ := mem.Usage()
		t.Errorf("%d bytes of budget still held with every record delivered", used)
	}
}

// The reserve lets one waiting stream go past the limit, and only one;
// it is given back when that stream holds nothing.
func TestBufferReserveGoesToOneStreamAtATime(t *testing.T) {
	b := NewBuffers(100)
	a, c, d := &bufHolder{}, &bufHolder{}, &bufHolder{}
	b.acquire(a, 80, queuedRecords)
	if b.tryAcquire(c, 30, queuedRecords) {
		t.Fatal("tryAcquire went past the limit")
	}
	b.acquire(c, 30, queuedRecords) // does not fit: takes the reserve
	if b.reserve != c {
		t.Fatalf("reserve held by %p; want %p", b.reserve, c)
	}
	b.acquire(c, 50, queuedRecords) // its holder never waits
	granted := make(chan struct{})
	go func() {
		b.acquire(d, 10, queuedRecords)
		close(granted)
	}()
	waitFor(time.Second, func() bool { b.mu.Lock(); defer b.mu.Unlock(); return b.waiting[queuedRecords].Len() == 1 })
	select {
	case <-granted:
		t.Fatal("a second stream went past the limit")
	default:
	}
	b.release(c, 80) // the reserve comes free; 80 of 100 used by a: d fits
	<-granted
	if used, peak, _ := b.Usage(); used != 90 || peak != 160 || b.reserve != nil {
		t.Errorf("used %d, peak %d, reserve %p; want 90, 160, none", used, peak, b.reserve)
	}
	// Partial frames may take three quarters of the budget only.
	b.release(a, 80)
	b.release(d, 10)
	if b.tryAcquire(a, 76, partialFrames) || !b.tryAcquire(a, 75, partialFrames) || !b.tryAcquire(c, 25, queuedRecords) {
		t.Error("partial frames are not held to three quarters of the budget")
	}
}

// FuzzSplitterWithBudget checks that taking buffers from a budget, and
// giving them back before every read (as an idle connection does), changes
// nothing in what the splitter returns, and that it gives back all it took.
func FuzzSplitterWithBudget(f *testing.F) {
	for _, s := range []string{"5 hello3 abc", "a\nb\r\n", "x5 y\n2 ok", "{}\x00{}", strings.Repeat("long line ", 600) + "\nok\n",
		"9999999999 <13>1 x\n5 hello", "7000 " + strings.Repeat("z", 7000) + "2 ok"} {
		f.Add(s, uint8(0), uint16(100))
		f.Add(s, uint8(2), uint16(5000))
	}
	framings := []flowgo.Framing{flowgo.FramingLine, flowgo.FramingNUL, flowgo.FramingSyslen, flowgo.FramingAuto}
	f.Fuzz(func(t *testing.T, in string, which uint8, maxSize uint16) {
		framing := framings[int(which)%len(framings)]
		limit := int(maxSize%20000) + 1
		plain, err := splitAll(t, in, framing, limit, false, iotest.HalfReader)
		if err != nil {
			t.Fatal(err)
		}
		mem := NewBuffers(64 << 10)
		sp := NewSplitter(iotest.HalfReader(strings.NewReader(in)), framing, limit, false)
		sp.useBudget(mem, &bufHolder{})
		sp.BeforeRead = sp.Shrink
		var got []frameResult
		for {
			frame, err := sp.Next()
			if frame == nil && err != nil {
				if errors.Is(err, ErrFramingLost) {
					got = append(got, framingLost)
				} else if !errors.Is(err, io.EOF) {
					t.Fatal(err)
				}
				break
			}
			got = append(got, frameResult{string(frame), err != nil})
		}
		if fmt.Sprint(got) != fmt.Sprint(plain) {
			t.Fatalf("%s %q: with a budget %v; without %v", framing, in, got, plain)
		}
		sp.Close()
		if used, _, _ := mem.Usage(); used != 0 {
			t.Fatalf("%d bytes of budget still held after Close", used)
		}
	})
}
