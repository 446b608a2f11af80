package output

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/flowgo/flowgo"
)

// tlsFrames builds a chunk of frames "f<i>;" padded to the given lengths.
func tlsFrames(lens ...int) (data []byte, ends []int) {
	for i, n := range lens {
		f := fmt.Sprintf("f%d;", i)
		f += strings.Repeat("x", n-len(f))
		data = append(data, f...)
		ends = append(ends, len(data))
	}
	return data, ends
}

func TestTLSStreamKeepsWholeFramesUntilTheirSegmentIsAcknowledged(t *testing.T) {
	var s stream
	data, ends := tlsFrames(10, 10, 10, 10) // ends 10 20 30 40
	s.add(data, ends, 0)
	if s.frames() != 4 || s.size() != 40 || len(s.unwritten()) != 40 {
		t.Fatalf("after add: frames %d size %d unwritten %d; want 4 40 40", s.frames(), s.size(), len(s.unwritten()))
	}
	// Two writes: plaintext 0-25 became cipher 0-60, 25-40 became 60-90.
	s.wrote(25, 60)
	s.wrote(15, 90)
	if len(s.unwritten()) != 0 {
		t.Fatalf("unwritten %d after writing all; want 0", len(s.unwritten()))
	}
	// Cipher acknowledged up to 59: the first write is not complete, so
	// nothing is known to have arrived.
	s.acked(59, 0)
	if s.frames() != 4 {
		t.Errorf("frames %d after a partial acknowledgement; want 4 (none known received)", s.frames())
	}
	// Up to 60: plaintext 0-25 arrived: frames 0 and 1 (ends 10, 20) are
	// whole; frame 2 (20-30) is cut and stays.
	s.acked(60, 0)
	if s.frames() != 2 || s.base != 20 || s.size() != 20 || s.keep != 20 {
		t.Errorf("after acknowledging the first write: frames %d base %d size %d keep %d; want 2 20 20 20", s.frames(), s.base, s.size(), s.keep)
	}
	// The connection breaks: the next one resends from frame 2's start.
	s.rewind()
	if got := string(s.unwritten()); !strings.HasPrefix(got, "f2;") || len(got) != 20 {
		t.Errorf("unwritten after rewind = %q; want frames 2 and 3", got)
	}
	if n := s.writtenFrames(s.written); n != 0 {
		t.Errorf("writtenFrames after rewind = %d; want 0", n)
	}
	// On the new connection cipher offsets start again.
	s.wrote(5, 30)
	if n := s.writtenFrames(s.written); n != 1 {
		t.Errorf("writtenFrames after writing 5 bytes of frame 2 = %d; want 1", n)
	}
	s.wrote(15, 50)
	s.acked(50, 0)
	if s.frames() != 0 || s.size() != 0 || s.base != 40 || len(s.buf) != 0 {
		t.Errorf("after everything was acknowledged: frames %d size %d base %d buffer %d; want 0 0 40 0", s.frames(), s.size(), s.base, len(s.buf))
	}
}

func TestTLSStreamKeepsAMarginOfAcknowledgedFramesAndResendsIt(t *testing.T) {
	var s stream
	data, ends := tlsFrames(10, 10, 10, 10, 10) // ends 10 20 30 40 50
	s.add(data, ends, 0)
	s.wrote(50, 100)
	// Everything acknowledged, but the server may not have read the last
	// 15 bytes: frames 3 and 4 (30-50) are kept, and frame 3 only ends 10
	// bytes before the end, so it stays too.
	s.acked(100, 15)
	if s.frames() != 0 || s.margin() != 2 || s.keep != 30 || s.base != 50 {
		t.Fatalf("frames %d margin %d keep %d base %d; want 0 2 30 50", s.frames(), s.margin(), s.keep, s.base)
	}
	// A smaller margin later (the server read on) lets frame 3 go.
	s.acked(100, 5)
	if s.margin() != 1 || s.keep != 40 {
		t.Errorf("margin %d keep %d after the margin shrank; want 1 40", s.margin(), s.keep)
	}
	// After a failure the margin is sent again, from a frame start.
	s.rewind()
	if got := string(s.unwritten()); !strings.HasPrefix(got, "f4;") || len(got) != 10 || s.frames() != 1 {
		t.Errorf("unwritten after rewind = %q (%d frames); want frame 4", got, s.frames())
	}
	if lost, bytes := s.drop(); lost != 1 || bytes != 10 || s.end() != 50 {
		t.Errorf("drop = %d frames %d bytes, end %d; want 1 10 50", lost, bytes, s.end())
	}
}

func TestTLSStreamReusesItsMemory(t *testing.T) {
	var s stream
	data, ends := tlsFrames(100, 100, 100)
	cipher := int64(0)
	for range 1000 {
		s.add(data, ends, 0)
		cipher += 400
		s.wrote(len(s.unwritten()), cipher)
		s.acked(cipher, 150)
	}
	if s.size() != 0 || s.margin() != 2 || cap(s.buf) > 2048 || cap(s.ends) > 16 || cap(s.marks) > 16 {
		t.Errorf("size %d margin %d, capacities buf %d ends %d marks %d; want the buffers reused, not grown",
			s.size(), s.margin(), cap(s.buf), cap(s.ends), cap(s.marks))
	}
	// Half acknowledged each round: memory stays bounded by what is held.
	var h stream
	for i := range 1000 {
		h.add(data, ends, 0)
		cipher += 400
		h.wrote(len(h.unwritten()), cipher)
		if i%2 == 1 {
			h.acked(cipher, 0)
		}
	}
	if h.size() != 0 || len(h.buf) != 0 {
		t.Errorf("size %d, buffer %d after the last acknowledgement; want 0 0", h.size(), len(h.buf))
	}
}

func TestTLSStreamAddsChunksFromTheMiddleOfABatch(t *testing.T) {
	var s stream
	data, ends := tlsFrames(10, 20, 30) // ends 10 30 60
	// The chunk holding frames 1 and 2 starts at byte 10 of the batch.
	s.add(data[10:60], ends[1:], 10)
	if s.frames() != 2 || s.size() != 50 || s.ends[0] != 20 || s.ends[1] != 50 {
		t.Errorf("frames %d size %d ends %v; want 2 50 [20 50]", s.frames(), s.size(), s.ends)
	}
	if lost, bytes := s.drop(); lost != 2 || bytes != 50 || s.size() != 0 || s.end() != 50 {
		t.Errorf("drop = %d frames %d bytes, then size %d end %d; want 2 50 0 50", lost, bytes, s.size(), s.end())
	}
}

func TestTLSBackoffFollowsFlowgger(t *testing.T) {
	half := func(n int64) int64 { return n / 2 } // a fixed draw: x1.5 per step
	tests := []struct {
		name      string
		init, max time.Duration
		lasted    []time.Duration
		want      []time.Duration
		probe     time.Duration
		rand      func(int64) int64
	}{
		{"grows by up to itself while attempts fail fast", 10 * time.Millisecond, time.Second,
			[]time.Duration{0, 0, 0}, []time.Duration{15 * time.Millisecond, 22500 * time.Microsecond, 33750 * time.Microsecond},
			time.Second, half},
		{"never passes max", 10 * time.Millisecond, 20 * time.Millisecond,
			[]time.Duration{0, 0, 0}, []time.Duration{15 * time.Millisecond, 20 * time.Millisecond, 20 * time.Millisecond},
			time.Second, half},
		{"goes back to init after a connection that lasted longer than the probe time", 10 * time.Millisecond, time.Second,
			[]time.Duration{0, 0, 2 * time.Second, 0}, []time.Duration{15 * time.Millisecond, 22500 * time.Microsecond, 10 * time.Millisecond, 15 * time.Millisecond},
			time.Second, half},
		{"init 0 does not panic and grows from 1 ms", 0, time.Second,
			[]time.Duration{0, 0, time.Hour, 0}, []time.Duration{time.Millisecond, 1500 * time.Microsecond, 0, time.Millisecond},
			time.Second, half},
		{"the largest draw doubles", time.Millisecond, time.Second,
			[]time.Duration{0, 0}, []time.Duration{2*time.Millisecond - 1, 4*time.Millisecond - 3},
			time.Second, func(n int64) int64 { return n - 1 }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := backoff{init: tt.init, max: tt.max, probe: tt.probe, delay: tt.init, rand: tt.rand}
			for i, l := range tt.lasted {
				if got := b.failed(l); got != tt.want[i] {
					t.Errorf("failure %d (lasted %v): delay %v; want %v", i+1, l, got, tt.want[i])
				}
			}
		})
	}
}

// The pipeline hands outputs canonical formats: "json" comes as "gelf"
// (pipeline's TestJSONIsGELFForOutputs).
func TestTLSDefaultFraming(t *testing.T) {
	for format, want := range map[string]flowgo.Framing{"gelf": "nul", "rfc5424": "line", "rfc3164": "line", "ltsv": "line", "passthrough": "line"} {
		if got := tlsDefaultFraming(format); got != want {
			t.Errorf("default framing for %s = %q; want %q", format, got, want)
		}
	}
}

func TestTLSServerNameIsTheHostPart(t *testing.T) {
	for addr, want := range map[string]string{
		"graylog.example.com:12201": "graylog.example.com",
		"127.0.0.1:6514":            "127.0.0.1",
		"[::1]:6514":                "::1",
		"[fe80::1%eth0]:6514":       "fe80::1",
	} {
		if got := serverName(addr); got != want {
			t.Errorf("serverName(%q) = %q; want %q", addr, got, want)
		}
	}
}

func TestTLSSplitSharesABatchAmongLanesInOrder(t *testing.T) {
	b := &flowgo.Batch{}
	for i := range 100 {
		b.Data = append(b.Data, []byte(fmt.Sprintf("%0999d\x00", i))...)
		b.Ends = append(b.Ends, len(b.Data))
	}
	tests := []struct {
		lanes, want int
	}{{1, 1}, {3, 3}, {8, 6}} // 100 kB: at most one chunk per 16 KiB
	for _, tt := range tests {
		o := &tlsOutput{lanes: make([]*lane, tt.lanes)}
		chunks := o.split(b, nil)
		if len(chunks) != tt.want {
			t.Errorf("%d lanes: %d chunks; want %d", tt.lanes, len(chunks), tt.want)
		}
		var got []byte
		nframes := 0
		for _, c := range chunks {
			if c.ends[len(c.ends)-1]-c.off != len(c.data) {
				t.Errorf("%d lanes: a chunk does not end on its last frame", tt.lanes)
			}
			got = append(got, c.data...)
			nframes += len(c.ends)
		}
		if string(got) != string(b.Data) || nframes != 100 {
			t.Errorf("%d lanes: chunks do not cover the batch in order (%d frames)", tt.lanes, nframes)
		}
	}
}
