package input

import (
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/flowgo/flowgo"
	"github.com/flowgo/flowgo/config"
	"github.com/flowgo/flowgo/decoder"
)

// hostSink keeps "hostname|appname|msg" of every record it is handed.
type hostSink struct {
	mu      sync.Mutex
	recs    []string
	rejects []string
}

func (s *hostSink) Put(b *flowgo.Batch) error {
	s.mu.Lock()
	for i := range b.Records {
		r := &b.Records[i]
		s.recs = append(s.recs, r.Hostname+"|"+r.AppName+"|"+r.Msg)
	}
	s.mu.Unlock()
	flowgo.PutBatch(b)
	return nil
}

func (s *hostSink) Prepare(*flowgo.Batch) {}

func (s *hostSink) Reject(origin string, frame []byte, err error) {
	s.mu.Lock()
	s.rejects = append(s.rejects, fmt.Sprintf("%s: %q: %v", origin, frame, err))
	s.mu.Unlock()
}

func (s *hostSink) Dropped(int, string) {}

// wait waits until the sink holds n records and returns them sorted.
func (s *hostSink) wait(t *testing.T, n int) []string {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		s.mu.Lock()
		recs, rejects := slices.Clone(s.recs), slices.Clone(s.rejects)
		s.mu.Unlock()
		if len(recs) >= n {
			slices.Sort(recs)
			return recs
		}
		if time.Now().After(deadline) {
			t.Fatalf("got %d records %q and rejects %q; want %d records", len(recs), recs, rejects, n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// originConfig is the Config of an input of type typ with format (the
// real decoder) and framing, built from keys as the program does.
func originConfig(t *testing.T, typ, format string, framing flowgo.Framing, keys string) Config {
	t.Helper()
	f, err := config.Parse("test.toml", fmt.Sprintf("[input]\ntype = %q\nformat = %q\nlisten = \"127.0.0.1:0\"\n%s", typ, format, keys))
	if err != nil {
		t.Fatal(err)
	}
	dec, err := decoder.New(format, f.Inputs[0])
	if err != nil {
		t.Fatal(err)
	}
	return Config{
		Section: f.Inputs[0], Name: "input", Decoder: dec, Framing: framing,
		MaxMessageSize: 64 << 10, BatchRecords: 1024, BatchBytes: 1 << 20, Workers: 2,
		Log: slog.New(slog.NewTextHandler(io.Discard, nil)),
	}
}

// An RFC 3164 line without a header (Python's SysLogHandler) names no host:
// the record gets the sender's address, over UDP and TCP, with format
// rfc3164 and auto. A line with a header keeps its own hostname.
func TestHeaderlessRFC3164GetsTheSenderAsHostname(t *testing.T) {
	for _, format := range []string{"rfc3164", "auto"} {
		t.Run("udp/"+format, func(t *testing.T) {
			sink := &hostSink{}
			run := startUDP(t, originConfig(t, "udp", format, "", ""), sink)
			conn := dial(t, run.addr)
			send(t, conn, []byte("<14>python: from SysLogHandler\x00"), []byte("<14>no tag at all\x00"),
				[]byte("<14>Aug  6 11:15:24 web01 app[1]: with a header"))
			got := sink.wait(t, 3)
			want := []string{"127.0.0.1|python|from SysLogHandler", "127.0.0.1||no tag at all", "web01|app|with a header"}
			if !slices.Equal(got, want) {
				t.Errorf("records %q; want %q", got, want)
			}
		})
		t.Run("tcp/"+format, func(t *testing.T) {
			sink := &hostSink{}
			c := originConfig(t, "tcp", format, flowgo.FramingAuto, "")
			tp, _, err := Lookup("tcp")
			if err != nil {
				t.Fatal(err)
			}
			in, err := tp.New(c)
			if err != nil {
				t.Fatal(err)
			}
			s := runStream(t, in, nil, streamOptions{otherSink: sink})
			conn := s.dial(t)
			// NUL-terminated with no LF, as SysLogHandler(socktype=SOCK_STREAM)
			// writes: framing auto must see NUL framing.
			sendPieces(t, conn, "<14>python: one\x00<11>worker[42]: two\x00<14>Aug  6 11:15:24 web01 app: three\x00", 0)
			closeWrite(t, conn)
			got := sink.wait(t, 3)
			want := []string{"127.0.0.1|python|one", "127.0.0.1|worker|two", "web01|app|three"}
			if !slices.Equal(got, want) {
				t.Errorf("records %q; want %q", got, want)
			}
		})
	}
}

// The sender's address reaches the decoder with no allocation: the origin
// is the batcher itself, asked only for a line without a header.
func TestBatcherOriginAllocatesNothing(t *testing.T) {
	f, err := config.Parse("test.toml", "[input]\ntype = \"tcp\"\nformat = \"rfc3164\"\n")
	if err != nil {
		t.Fatal(err)
	}
	dec, err := decoder.New("rfc3164", f.Inputs[0])
	if err != nil {
		t.Fatal(err)
	}
	sink := &hostSink{}
	bt := NewBatcher(dec, sink, "input", 1<<20, 1<<30)
	bt.SetPeer("", "[2001:db8::7]:5140")
	for _, line := range []string{"<14>python: no header", "<14>Aug  6 11:15:24 web01 app: header"} {
		frame := []byte(line)
		if err := bt.Add(frame, len(frame)); err != nil { // warm up the arena
			t.Fatal(err)
		}
		allocs := testing.AllocsPerRun(100, func() {
			if err := bt.Add(frame, len(frame)); err != nil {
				t.Fatal(err)
			}
		})
		if allocs != 0 {
			t.Errorf("Add(%q) allocates %.1f times; want 0", line, allocs)
		}
	}
	bt.Flush()
	got := sink.wait(t, 1)
	if !strings.HasPrefix(got[0], "2001:db8::7|python|no header") {
		t.Errorf("first record %q; want the peer 2001:db8::7 as hostname", got[0])
	}
}
