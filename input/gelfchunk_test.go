package input

import (
	"bytes"
	"encoding/binary"
	"net/netip"
	"strings"
	"testing"
	"time"
)

// gelfChunk builds the datagram of chunk seq of count of message id.
func gelfChunk(id uint64, seq, count int, data []byte) []byte {
	dg := []byte{gelfMagic0, gelfMagic1}
	dg = binary.BigEndian.AppendUint64(dg, id)
	dg = append(dg, byte(seq), byte(count))
	return append(dg, data...)
}

// splitGELF cuts msg into chunks of at most size bytes.
func splitGELF(id uint64, msg []byte, size int) [][]byte {
	count := (len(msg) + size - 1) / size
	var out [][]byte
	for seq := range count {
		out = append(out, gelfChunk(id, seq, count, msg[seq*size:min((seq+1)*size, len(msg))]))
	}
	return out
}

// drops collects what a reassembler reports as dropped.
type drops map[string]int

func (d drops) add(n int, reason string) { d[reason] += n }

var (
	senderA = netip.MustParseAddrPort("192.0.2.1:5000")
	senderB = netip.MustParseAddrPort("[2001:db8::2]:5000")
	senderC = netip.MustParseAddrPort("192.0.2.1:5001") // senderA's host, another socket
	t0      = time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)
)

func newTestChunks(d drops) *gelfChunks {
	return newGELFChunks(5*time.Second, 128, 1000, 64<<20, 1<<20, d.add)
}

// feed gives the datagrams to g in order and returns the messages completed.
func feed(t *testing.T, g *gelfChunks, from netip.AddrPort, now time.Time, dgs ...[]byte) []string {
	t.Helper()
	var out []string
	for i, dg := range dgs {
		msg, raw, done, err := g.add(dg, from, now, nil)
		if err != nil {
			t.Fatalf("chunk %d: %v", i, err)
		}
		if done {
			out = append(out, string(msg))
			if raw <= len(msg) {
				t.Errorf("raw size %d; want more than the message's %d (headers)", raw, len(msg))
			}
		}
	}
	return out
}

func TestGELFChunksReassemble(t *testing.T) {
	msg := []byte(strings.Repeat(`{"short_message":"chunked"}`, 20))
	chunks := splitGELF(42, msg, 100)
	tests := []struct {
		name  string
		order []int
	}{
		{"chunks in order", []int{0, 1, 2, 3, 4, 5}},
		{"chunks in reverse order", []int{5, 4, 3, 2, 1, 0}},
		{"chunks shuffled", []int{3, 0, 5, 1, 4, 2}},
		{"a duplicated chunk is ignored", []int{0, 1, 1, 2, 3, 0, 4, 5}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := drops{}
			g := newTestChunks(d)
			var dgs [][]byte
			for _, i := range tt.order {
				dgs = append(dgs, chunks[i])
			}
			got := feed(t, g, senderA, t0, dgs...)
			if len(got) != 1 || got[0] != string(msg) {
				t.Errorf("completed %q; want the message once", got)
			}
			if n, b := g.usage(); n != 0 || b != 0 || len(d) != 0 {
				t.Errorf("after completion: %d messages, %d bytes held, drops %v; want none", n, b, d)
			}
		})
	}
}

func TestGELFChunksOfOneChunkNeedNoState(t *testing.T) {
	g := newTestChunks(drops{})
	got := feed(t, g, senderA, t0, gelfChunk(1, 0, 1, []byte("whole")))
	if len(got) != 1 || got[0] != "whole" {
		t.Errorf("completed %q; want [whole]", got)
	}
}

func TestGELFChunksFromTwoSendersDoNotMix(t *testing.T) {
	g := newTestChunks(drops{})
	a := splitGELF(7, []byte("message from sender A, in three chunks"), 13)
	b := splitGELF(7, []byte("message from sender B, also in chunks!"), 13) // the same id
	c := splitGELF(7, []byte("message from sender C, on A's host!!!!"), 13)
	var got []string
	for i := range a {
		got = append(got, feed(t, g, senderA, t0, a[i])...)
		got = append(got, feed(t, g, senderB, t0, b[len(b)-1-i])...)
		got = append(got, feed(t, g, senderC, t0, c[i])...)
	}
	want := []string{"message from sender A, in three chunks", "message from sender B, also in chunks!", "message from sender C, on A's host!!!!"}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("completed %q; want %q", got, want)
	}
}

func TestGELFChunksExpire(t *testing.T) {
	d := drops{}
	g := newTestChunks(d)
	chunks := splitGELF(9, []byte("this one loses its last chunk"), 10)
	feed(t, g, senderA, t0, chunks[:len(chunks)-1]...)
	g.expire(t0.Add(4 * time.Second))
	if n, _ := g.usage(); n != 1 || len(d) != 0 {
		t.Fatalf("before the timeout: %d messages held, drops %v; want 1 held", n, d)
	}
	g.expire(t0.Add(5 * time.Second))
	if n, b := g.usage(); n != 0 || b != 0 || d[dropChunkTimeout] != 1 {
		t.Errorf("after the timeout: %d messages, %d bytes held, drops %v; want one dropped for the timeout", n, b, d)
	}
	// The late last chunk starts a new message, which expires in turn.
	if got := feed(t, g, senderA, t0.Add(6*time.Second), chunks[len(chunks)-1]); len(got) != 0 {
		t.Errorf("late chunk completed %q", got)
	}
	g.close()
	if d[dropChunkShutdown] != 1 {
		t.Errorf("drops %v; want the late chunk's message dropped at shutdown", d)
	}
}

func TestGELFChunksRejectMalformedChunks(t *testing.T) {
	tests := []struct {
		name string
		dg   []byte
		want string
	}{
		{"a chunk shorter than its header", []byte{0x1e, 0x0f, 1, 2, 3}, "shorter than the 12-byte chunk header"},
		{"a count of zero", gelfChunk(1, 0, 0, []byte("x")), "sequence count is 0"},
		{"a count over gelf_max_chunks", gelfChunk(1, 0, 129, []byte("x")), "message of 129 chunks exceeds gelf_max_chunks (128)"},
		{"a sequence number out of range", gelfChunk(1, 3, 3, []byte("x")), "sequence number 3 out of range for 3 chunks"},
		{"a count that changes", gelfChunk(5, 1, 4, []byte("x")), "sequence count 4 differs from the 3 of earlier chunks"},
		{"a message over the size limit", gelfChunk(6, 1, 2, make([]byte, 1<<20)), "message of at least 1048577 bytes exceeds the limit of 1048576 bytes"},
		{"a one-chunk message over the size limit", gelfChunk(8, 0, 1, make([]byte, 1<<20+1)), "message of at least 1048577 bytes exceeds the limit"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := drops{}
			g := newTestChunks(d)
			feed(t, g, senderA, t0, gelfChunk(5, 0, 3, []byte("first")), gelfChunk(6, 0, 2, []byte("a")))
			_, _, done, err := g.add(tt.dg, senderA, t0, nil)
			if err == nil || !strings.Contains(err.Error(), tt.want) || done {
				t.Errorf("add: done %v, error %v; want an error containing %q", done, err, tt.want)
			}
		})
	}
}

func TestGELFChunksOfARejectedMessageAreAbsorbed(t *testing.T) {
	d := drops{}
	g := newGELFChunks(time.Second, 128, 1000, 64<<20, 100, d.add)
	chunks := splitGELF(3, bytes.Repeat([]byte("z"), 300), 40)
	feed(t, g, senderA, t0, chunks[0])
	if _, _, _, err := g.add(chunks[1], senderA, t0, nil); err != nil {
		t.Fatal(err)
	}
	if _, _, _, err := g.add(chunks[2], senderA, t0, nil); err == nil {
		t.Fatal("the chunk that makes the message too large was accepted")
	}
	// The rest are neither errors nor a new message.
	got := feed(t, g, senderA, t0, chunks[3:]...)
	if _, b := g.usage(); len(got) != 0 || b != messageOverhead {
		t.Errorf("completed %q, %d bytes held; want nothing but the tombstone", got, b)
	}
	g.expire(t0.Add(time.Second))
	if n, _ := g.usage(); n != 0 || len(d) != 0 {
		t.Errorf("after the timeout %d messages, drops %v; want none (the message was rejected, not dropped)", n, d)
	}
}

func TestGELFChunksEvictTheOldestWhenFull(t *testing.T) {
	t.Run("by message count", func(t *testing.T) {
		d := drops{}
		g := newGELFChunks(time.Minute, 128, 3, 64<<20, 1000, d.add)
		for id := range 5 {
			feed(t, g, senderA, t0.Add(time.Duration(id)*time.Millisecond), gelfChunk(uint64(id), 0, 2, []byte("half")))
		}
		if n, _ := g.usage(); n != 3 || d[dropChunkPending] != 2 {
			t.Fatalf("%d messages held, drops %v; want 3 held and 2 evicted", n, d)
		}
		// The newest three survive: completing id 4 works, id 0 starts over.
		if got := feed(t, g, senderA, t0, gelfChunk(4, 1, 2, []byte("!"))); len(got) != 1 || got[0] != "half!" {
			t.Errorf("completed %q; want [half!]", got)
		}
		if got := feed(t, g, senderA, t0, gelfChunk(0, 1, 2, []byte("!"))); len(got) != 0 {
			t.Errorf("evicted message completed: %q", got)
		}
	})
	t.Run("by bytes", func(t *testing.T) {
		d := drops{}
		budget := minPendingBytes(1000, 4)
		g := newGELFChunks(time.Minute, 4, 1000, budget, 1000, d.add)
		for id := range 10 {
			feed(t, g, senderA, t0, gelfChunk(uint64(id), 0, 4, make([]byte, 300)))
			if _, b := g.usage(); b > budget {
				t.Fatalf("%d bytes held; want at most %d", b, budget)
			}
		}
		n, _ := g.usage()
		if d[dropChunkBytes] == 0 || d[dropChunkBytes]+n != 10 {
			t.Errorf("%d messages held, drops %v; want the rest evicted for bytes", n, d)
		}
	})
}

// FuzzGELFChunks feeds arbitrary datagrams to a small reassembler: it must
// not panic, must keep within its bounds, and the memory it accounts for
// must cover what it really holds.
func FuzzGELFChunks(f *testing.F) {
	for _, msg := range []string{"short", strings.Repeat("0123456789", 30)} {
		var seed []byte
		for _, c := range splitGELF(77, []byte(msg), 40) {
			seed = append(seed, byte(len(c)), 0)
			seed = append(seed, c...)
		}
		f.Add(seed)
	}
	f.Add([]byte{12, 1, 0x1e, 0x0f, 0, 0, 0, 0, 0, 0, 0, 1, 0, 200})
	f.Fuzz(func(t *testing.T, data []byte) {
		const (
			maxChunks  = 8
			maxPending = 4
			maxSize    = 256
		)
		budget := minPendingBytes(maxSize, maxChunks) + 200
		dropped := 0
		g := newGELFChunks(time.Second, maxChunks, maxPending, budget, maxSize, func(n int, _ string) { dropped += n })
		now := t0
		// Each datagram is "length, control, bytes": control picks the
		// sender and how far the clock moves.
		for len(data) >= 2 {
			n, ctl := int(data[0]), data[1]
			data = data[2:]
			n = min(n, len(data))
			dg := data[:n]
			data = data[n:]
			from := senderA
			if ctl&1 == 1 {
				from = senderB
			}
			now = now.Add(time.Duration(ctl>>1) * 20 * time.Millisecond)
			msg, _, done, err := g.add(dg, from, now, nil)
			if done && (err != nil || len(msg) > maxSize) {
				t.Fatalf("completed a message of %d bytes (error %v); limit %d", len(msg), err, maxSize)
			}
			held, accounted := g.usage()
			if held > maxPending || accounted > budget || accounted < 0 {
				t.Fatalf("%d messages, %d bytes held; limits %d, %d", held, accounted, maxPending, budget)
			}
			real := 0
			g.mu.Lock()
			count := 0
			for p := g.oldest; p != nil; p = p.next {
				count++
				for _, part := range p.parts {
					real += len(part)
				}
				if g.pending[p.key] != p {
					t.Fatal("list and map disagree")
				}
			}
			g.mu.Unlock()
			if count != held || real > accounted {
				t.Fatalf("list of %d, map of %d; %d payload bytes held, %d accounted", count, held, real, accounted)
			}
		}
		g.close()
		if held, accounted := g.usage(); held != 0 || accounted != 0 {
			t.Fatalf("after close: %d messages, %d bytes", held, accounted)
		}
	})
}

// usage returns the messages and accounted bytes held, for tests.
func (g *gelfChunks) usage() (messages, bytes int) {
	g.mu.Lock()
	defer g.mu.Unlock()
	return len(g.pending), g.bytes
}

// A chunk that arrives again after its message completed (a sender's
// retransmission, or two reader goroutines taking a message's datagrams
// out of order) is absorbed: it neither starts a message that later counts
// as dropped nor yields the message twice. After the chunk timeout the id
// is free again.
func TestGELFChunksLateDuplicateOfACompletedMessage(t *testing.T) {
	d := drops{}
	g := newTestChunks(d)
	msg := []byte(strings.Repeat("x", 3000))
	dgs := splitGELF(7, msg, 1000)
	if got := feed(t, g, senderA, t0, dgs...); len(got) != 1 || got[0] != string(msg) {
		t.Fatalf("completed %d messages; want the message once", len(got))
	}
	if got := feed(t, g, senderA, t0.Add(time.Second), dgs[1], dgs[2]); len(got) != 0 {
		t.Fatalf("late duplicates completed %d messages; want none", len(got))
	}
	if n, _ := g.usage(); n != 0 {
		t.Errorf("%d messages pending after late duplicates; want 0", n)
	}
	// Another sender with the same id is another message.
	if got := feed(t, g, senderB, t0.Add(time.Second), dgs[0]); len(got) != 0 {
		t.Fatalf("completed %d; want 0", len(got))
	}
	g.close()
	if d[dropChunkShutdown] != 1 || len(d) != 1 {
		t.Errorf("dropped %v; want only senderB's incomplete message at shutdown", d)
	}
	// After the timeout the id starts a new message.
	d2 := drops{}
	g2 := newTestChunks(d2)
	feed(t, g2, senderA, t0, dgs...)
	if got := feed(t, g2, senderA, t0.Add(6*time.Second), dgs...); len(got) != 1 {
		t.Errorf("the id reused after the chunk timeout completed %d messages; want 1", len(got))
	}
	if len(d2) != 0 {
		t.Errorf("dropped %v; want nothing", d2)
	}
}

// The memory of completed messages is bounded: the oldest is forgotten.
func TestGELFChunksCompletedMemoryIsBounded(t *testing.T) {
	g := newTestChunks(drops{})
	for id := range uint64(maxCompleted + 500) {
		feed(t, g, senderA, t0, splitGELF(id, []byte("0123456789"), 5)...)
	}
	if n := len(g.completed); n != maxCompleted {
		t.Errorf("%d completed messages remembered; want %d", n, maxCompleted)
	}
	if _, ok := g.completed[chunkKey{from: senderA, id: 0}]; ok {
		t.Error("the oldest completed message is still remembered")
	}
	if _, ok := g.completed[chunkKey{from: senderA, id: maxCompleted + 499}]; !ok {
		t.Error("the newest completed message is not remembered")
	}
}

// An id that completes again is remembered by its newest completion: the
// ring forgetting its older entry does not forget it.
func TestGELFChunksCompletedIDReusedIsNotForgottenEarly(t *testing.T) {
	g := newTestChunks(drops{})
	dgs := splitGELF(42, []byte("0123456789"), 5)
	feed(t, g, senderA, t0, dgs...)
	for id := range uint64(maxCompleted - 2) { // the ring's last place is left for id 42 again
		feed(t, g, senderA, t0, splitGELF(1000+id, []byte("0123456789"), 5)...)
	}
	// id 42 again, once its first completion's window has passed.
	if got := feed(t, g, senderA, t0.Add(6*time.Second), dgs...); len(got) != 1 {
		t.Fatalf("id 42 reused after the window completed %d messages; want 1", len(got))
	}
	feed(t, g, senderA, t0.Add(6*time.Second), splitGELF(9999, []byte("0123456789"), 5)...)
	// The ring has now passed over id 42's first entry.
	if got := feed(t, g, senderA, t0.Add(7*time.Second), dgs[0]); len(got) != 0 {
		t.Fatal("a late chunk completed a message")
	}
	if n, _ := g.usage(); n != 0 {
		t.Errorf("a late chunk of id 42 started a message (%d pending); want it absorbed", n)
	}
}
