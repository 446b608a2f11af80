package input

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"testing/iotest"
	"time"

	"github.com/flowgo/flowgo"
	"github.com/flowgo/flowgo/internal/capnp"
	"github.com/flowgo/flowgo/internal/capnp/capnptest"
)

// capnpFrames runs the capnp splitter over in, read through wrap, and
// returns the frames and the error that ended the stream (nil for EOF).
func capnpFrames(t *testing.T, in []byte, limit int, wrap func(io.Reader) io.Reader) ([]frameResult, error) {
	t.Helper()
	sp := NewSplitter(wrap(bytes.NewReader(in)), flowgo.FramingCapnp, limit, false)
	var out []frameResult
	for range 10000 {
		frame, err := sp.Next()
		if frame == nil && err != nil {
			if errors.Is(err, io.EOF) {
				return out, nil
			}
			return out, err
		}
		var fe *FrameError
		if err != nil && !errors.As(err, &fe) {
			t.Fatalf("Next returned a frame with a non-framing error %v", err)
		}
		out = append(out, frameResult{string(frame), err != nil})
	}
	t.Fatal("splitter does not end")
	return nil, nil
}

var readers = map[string]func(io.Reader) io.Reader{
	"whole":    func(r io.Reader) io.Reader { return r },
	"one byte": iotest.OneByteReader,
	"half":     iotest.HalfReader,
}

// toolMessages returns messages written by capnp encode, one per literal.
func toolMessages(t testing.TB, literals []string, args ...string) [][]byte {
	t.Helper()
	stream := capnptest.Encode(t, literals, args...)
	var msgs [][]byte
	for len(stream) > 0 {
		size, _, err := capnp.MessageSize(stream)
		if err != nil {
			t.Fatal(err)
		}
		msgs = append(msgs, stream[:size])
		stream = stream[size:]
	}
	return msgs
}

func TestSplitterCapnp(t *testing.T) {
	lits := []string{`(ts = 1, hostname = "a")`, `(ts = 2, msg = "` + strings.Repeat("x", 3000) + `")`, `(ts = 3)`}
	single := toolMessages(t, lits)
	multi := toolMessages(t, lits, "--segment-size=3")
	if bytes.Equal(single[1], multi[1]) {
		t.Fatal("--segment-size did not change the messages")
	}
	join := func(ms ...[]byte) []byte { return bytes.Join(ms, nil) }
	want := func(ms ...[]byte) []frameResult {
		var out []frameResult
		for _, m := range ms {
			out = append(out, frameResult{frame: string(m)})
		}
		return out
	}
	big := single[1] // about 3 kB
	tests := []struct {
		name    string
		in      []byte
		max     int
		want    []frameResult
		wantErr string
	}{
		{"messages back to back", join(single...), 65536, want(single...), ""},
		{"multi-segment messages", join(multi...), 65536, want(multi...), ""},
		{"a message over the limit is rejected, its head kept, the next read", join(single[0], big, single[2]), 1000,
			[]frameResult{{frame: string(single[0])}, {frame: string(big[:1000]), bad: true}, {frame: string(single[2])}}, ""},
		{"the stream ends inside a message", join(single[0], single[2][:20]), 65536,
			[]frameResult{{frame: string(single[0])}, {frame: string(single[2][:20]), bad: true}}, ""},
		{"the stream ends inside a segment table", join(single[0], []byte{1, 0, 0, 0, 2}), 65536,
			[]frameResult{{frame: string(single[0])}, {frame: "\x01\x00\x00\x00\x02", bad: true}}, ""},
		{"a bad segment table ends the stream", join(single[0], []byte("<13>1 text\n"), single[2]), 65536,
			[]frameResult{{frame: string(single[0])}, {frame: "<13>1 text\n" + string(single[2]), bad: true}},
			"capnp: segment table claims 1043542333 segments (at most 512); the rest of the stream cannot be framed"},
	}
	for _, tt := range tests {
		for rname, wrap := range readers {
			t.Run(tt.name+"/"+rname, func(t *testing.T) {
				got, err := capnpFrames(t, tt.in, tt.max, wrap)
				if rname == "whole" || tt.wantErr == "" {
					// One-byte reads see the bad table alone, before what follows.
					if fmt.Sprint(got) != fmt.Sprint(tt.want) {
						t.Errorf("frames:\n got %v\nwant %v", got, tt.want)
					}
				}
				if tt.wantErr == "" && err != nil || tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)) {
					t.Errorf("end = %v; want %q", err, tt.wantErr)
				}
			})
		}
	}
}

// TestSplitterCapnpOversizeIsSkippedInBoundedMemory: a message announcing
// 32 MiB is skipped as it arrives, with a buffer of about
// twice the limit, and the splitter is in step again after it.
func TestSplitterCapnpOversizeIsSkippedInBoundedMemory(t *testing.T) {
	const limit = 64 << 10
	next := toolMessages(t, []string{`(ts = 9, hostname = "after")`})[0]
	var hdr [8]byte
	binary.LittleEndian.PutUint32(hdr[4:], 4<<20) // one segment of 4 Mi words
	r := io.MultiReader(bytes.NewReader(hdr[:]), io.LimitReader(infiniteX{}, 32<<20), bytes.NewReader(next))
	sp := NewSplitter(r, flowgo.FramingCapnp, limit, false)
	var got []frameResult
	for {
		f, err := sp.Next()
		if f == nil {
			if !errors.Is(err, io.EOF) {
				t.Fatalf("end = %v", err)
			}
			break
		}
		got = append(got, frameResult{string(f[:min(len(f), 8)]), err != nil})
		if len(sp.buf) > 2*limit+32 && len(sp.buf) > 256<<10 {
			t.Fatalf("buffer grew to %d bytes", len(sp.buf))
		}
	}
	if fmt.Sprint(got) != fmt.Sprint([]frameResult{{string(hdr[:]), true}, {string(next[:8]), false}}) {
		t.Errorf("frames = %v", got)
	}
}

// TestSplitterCapnpHugeTable: a table announcing more than a gigabyte is
// garbage, not a message to skip.
func TestSplitterCapnpHugeTable(t *testing.T) {
	in := []byte{1, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0}
	got, err := capnpFrames(t, in, 100, readers["whole"])
	if len(got) != 1 || !got[0].bad || err == nil || !strings.Contains(err.Error(), "segment table announces a message of 68719476736 bytes") {
		t.Errorf("frames %v, end %v", got, err)
	}
}

func FuzzSplitCapnp(f *testing.F) {
	msgs := toolMessages(f, []string{`(ts = 1, hostname = "a")`, `(ts = 2, pairs = [(key = "k", value = (u64 = 1))])`}, "--segment-size=2")
	msgs = append(msgs, toolMessages(f, []string{`(ts = 3, msg = "hello")`})...)
	f.Add(bytes.Join(msgs, nil), uint16(1000))
	f.Add(bytes.Join(msgs, nil), uint16(40))
	f.Add(append(bytes.Clone(msgs[0]), 7, 0, 0), uint16(1000))
	f.Add([]byte("not capnp at all\n"), uint16(1000))
	f.Fuzz(func(t *testing.T, in []byte, maxSize uint16) {
		limit := int(maxSize%4096) + 1
		whole, err1 := capnpFrames(t, in, limit, readers["whole"])
		bytewise, err2 := capnpFrames(t, in, limit, iotest.OneByteReader)
		// A bad segment table ends the stream; what the splitter had
		// buffered then depends on the reads. Up to it, nothing may.
		if err1 == nil && err2 == nil && fmt.Sprint(whole) != fmt.Sprint(bytewise) {
			t.Fatalf("%x: whole reads %v; one-byte reads %v", in, whole, bytewise)
		}
		if (err1 == nil) != (err2 == nil) {
			t.Fatalf("%x: ends %v and %v", in, err1, err2)
		}
		total := 0
		for _, fr := range whole {
			if !fr.bad {
				size, need, err := capnp.MessageSize([]byte(fr.frame))
				if err != nil || need != 0 || size != int64(len(fr.frame)) || len(fr.frame) > limit {
					t.Fatalf("%x: good frame %x is not one whole message of at most %d bytes", in, fr.frame, limit)
				}
			}
			total += len(fr.frame)
		}
		if total > len(in) {
			t.Fatalf("frames hold %d bytes, more than the %d input bytes", total, len(in))
		}
		// Whole messages within the limit come out exactly.
		rest := in
		var want []frameResult
		for len(rest) > 0 {
			size, need, err := capnp.MessageSize(rest)
			if err != nil || need > 0 || size > int64(len(rest)) || size > int64(limit) {
				want = nil
				break
			}
			want = append(want, frameResult{frame: string(rest[:size])})
			rest = rest[size:]
		}
		if want != nil && len(rest) == 0 && fmt.Sprint(whole) != fmt.Sprint(want) {
			t.Fatalf("%x = %v; want %v", in, whole, want)
		}
	})
}

// TestCapnpFramingOverTCPAndTLS sends capnp messages, one segment and
// several, over real connections, whole and in small writes: each record
// is one whole message (the test decoder keeps the frame as it is).
func TestCapnpFramingOverTCPAndTLS(t *testing.T) {
	lits := []string{`(ts = 1, hostname = "a")`, `(ts = 2, msg = "two", pairs = [(key = "k", value = (string = "v"))])`}
	msgs := append(toolMessages(t, lits), toolMessages(t, lits, "--segment-size=2")...)
	var want []string
	for _, m := range msgs {
		want = append(want, string(m))
	}
	stream := strings.Join(want, "")
	for _, typ := range []string{"tcp", "tls"} {
		for _, piece := range []int{0, 7} {
			t.Run(fmt.Sprintf("%s, pieces of %d bytes", typ, piece), func(t *testing.T) {
				o := streamOptions{framing: flowgo.FramingCapnp}
				var s *testServer
				if typ == "tls" {
					s = startTLS(t, false, "", o)
				} else {
					s = startStream(t, typ, `listen = "127.0.0.1:0"`, o)
				}
				c := s.dial(t)
				sendPieces(t, c, stream, piece)
				closeWrite(t, c)
				s.sink.waitRecords(t, len(want), 10*time.Second)
				if got := s.sink.got(); fmt.Sprint(got) != fmt.Sprint(want) {
					t.Errorf("records = %q; want %q", got, want)
				}
				if rj := s.sink.gotRejects(); len(rj) != 0 {
					t.Errorf("rejects = %v; want none", rj)
				}
			})
		}
	}
}

// TestCapnpBadSegmentTableClosesTheConnection: past a segment table that
// starts no message the stream cannot be framed, so the input rejects what
// it holds and closes the connection instead of waiting for more.
func TestCapnpBadSegmentTableClosesTheConnection(t *testing.T) {
	good := toolMessages(t, []string{`(ts = 1, hostname = "a")`})[0]
	s := startStream(t, "tcp", `listen = "127.0.0.1:0"`, streamOptions{framing: flowgo.FramingCapnp})
	c := s.dial(t)
	defer c.Close()
	sendPieces(t, c, string(good)+"<13>1 a syslog line\n", 0)
	s.sink.waitRecords(t, 1, 10*time.Second)
	s.sink.waitRejects(t, 1, 10*time.Second)
	if !waitFor(10*time.Second, func() bool { return s.openConns() == 0 }) {
		t.Fatal("the connection is still open")
	}
	rj := s.sink.gotRejects()
	if len(rj) != 1 || !strings.HasPrefix(rj[0].frame, "<13>1") || !strings.Contains(rj[0].err.Error(), "cannot be framed") {
		t.Errorf("rejects = %v", rj)
	}
	if got := s.sink.got(); len(got) != 1 || got[0] != string(good) {
		t.Errorf("records = %q", got)
	}
}
