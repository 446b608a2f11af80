package input_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/flowgo/flowgo"
	"github.com/flowgo/flowgo/config"
	"github.com/flowgo/flowgo/decoder"
	"github.com/flowgo/flowgo/encoder"
	"github.com/flowgo/flowgo/internal/testoutput"
	"github.com/flowgo/flowgo/pipeline"
)

// These tests run whole pipelines with UDP inputs. Their codecs are tiny:
// decoder "udpmulti-<p>" makes the message "<p>:" + frame, so the output
// shows which input's format decoded each record; encoder "udpmulti-msg"
// writes the message back.
type prefixDecoder string

func (p prefixDecoder) Decode(frame []byte, r *flowgo.Record, a *flowgo.Arena) error {
	if len(frame) == 0 {
		return decoder.Errorf("udpmulti", 1, "empty frame")
	}
	b := a.Bytes(len(p) + 1 + len(frame))
	copy(b[copy(b, p):], ":")
	copy(b[len(p)+1:], frame)
	r.Msg = flowgo.UnsafeString(b)
	r.FullMsg = r.Msg
	return nil
}

type msgEncoder struct{}

func (msgEncoder) Encode(dst []byte, r *flowgo.Record) ([]byte, error) {
	dst = append(dst, r.Msg...)
	for _, e := range r.SD {
		for _, p := range e.Params {
			dst = append(dst, " "+p.Name+"="+p.Value.Str...)
		}
	}
	return dst, nil
}

// collector is an output keeping every frame, found by its id key. Between
// hold and release its writes block: a stuck output.
type collector struct {
	mu     sync.Mutex
	frames []string
	held   chan struct{}
}

func (c *collector) hold() {
	c.mu.Lock()
	c.held = make(chan struct{})
	c.mu.Unlock()
}

func (c *collector) release() {
	c.mu.Lock()
	close(c.held)
	c.held = nil
	c.mu.Unlock()
}

func (c *collector) Write(_ context.Context, b *flowgo.Batch) error {
	c.mu.Lock()
	held := c.held
	c.mu.Unlock()
	if held != nil {
		<-held
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for i := range b.Frames() {
		c.frames = append(c.frames, string(b.Frame(i)))
	}
	return nil
}

func (c *collector) Close(context.Context) error { return nil }

func (c *collector) got() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.frames)
}

// collectors are the udpmulti-collect outputs, by the id their [output]
// table gives.
var collectors = testoutput.Register[*collector]("udpmulti-collect")

func init() {
	for _, p := range []string{"a", "b", "c"} {
		decoder.Register("udpmulti-"+p, func(*config.Section) (decoder.Decoder, error) { return prefixDecoder(p), nil })
	}
	encoder.Register("udpmulti-msg", func(*config.Section) (encoder.Encoder, error) { return msgEncoder{}, nil })
}

func newCollector(t *testing.T) (*collector, string) {
	c := &collector{}
	collectors.Add(t.Name(), c)
	return c, t.Name()
}

// freeUDPPort returns a loopback port that was free a moment ago.
func freeUDPPort(t *testing.T) int {
	t.Helper()
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	return c.LocalAddr().(*net.UDPAddr).Port
}

// startPipeline builds and runs the pipeline src describes.
func startPipeline(t *testing.T, src string, stdin io.Reader) (*pipeline.Pipeline, func() error) {
	t.Helper()
	f, err := config.Parse("multi.toml", src)
	if err != nil {
		t.Fatal(err)
	}
	p, err := pipeline.Build(f, pipeline.Options{Stdin: stdin, Workers: 2, Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	stopped := false
	stop := func() error {
		if stopped {
			return nil
		}
		stopped = true
		cancel()
		select {
		case err := <-done:
			return err
		case <-time.After(10 * time.Second):
			return fmt.Errorf("pipeline did not stop")
		}
	}
	t.Cleanup(func() { stop() })
	return p, stop
}

// waitListening sends probe datagrams to port until one comes out of the
// pipeline as want, which shows the input is listening.
func waitListening(t *testing.T, out *collector, port int, want string) *net.UDPConn {
	t.Helper()
	conn, err := net.DialUDP("udp4", nil, &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: port})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	deadline := time.Now().Add(5 * time.Second)
	for !slices.ContainsFunc(out.got(), func(f string) bool { return strings.HasPrefix(f, want) }) {
		if time.Now().After(deadline) {
			t.Fatalf("no input listening on port %d", port)
		}
		conn.Write([]byte("probe"))
		time.Sleep(20 * time.Millisecond)
	}
	return conn
}

func TestPipelineWithTwoUDPInputsAndStdin(t *testing.T) {
	out, id := newCollector(t)
	portA, portB := freeUDPPort(t), freeUDPPort(t)
	const n = 500
	var stdin strings.Builder
	var want []string
	for i := range n {
		fmt.Fprintf(&stdin, "line %d\n", i)
		want = append(want, fmt.Sprintf("c:line %d", i))
	}
	p, stop := startPipeline(t, fmt.Sprintf(`
[[input]]
type = "udp"
listen = "127.0.0.1:%d"
format = "udpmulti-a"

[[input]]
type = "udp"
listen = "127.0.0.1:%d"
format = "udpmulti-b"
peer_field = "from"

[[input]]
type = "stdin"
format = "udpmulti-c"

[output]
type = "udpmulti-collect"
id = %q
format = "udpmulti-msg"
`, portA, portB, id), strings.NewReader(stdin.String()))

	connA := waitListening(t, out, portA, "a:probe")
	connB := waitListening(t, out, portB, "b:probe")
	for i := range n {
		fmt.Fprintf(connA, "datagram %d\n", i)
		fmt.Fprintf(connB, "datagram %d", i)
		want = append(want, fmt.Sprintf("a:datagram %d", i), fmt.Sprintf("b:datagram %d from=%s", i, connB.LocalAddr()))
		if i%100 == 0 {
			time.Sleep(time.Millisecond)
		}
	}
	waitDelivered(out, len(want))
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	got := withoutProbes(out.got())
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("delivered %d records; want %d, each once", len(got), len(want))
		for _, w := range want {
			if !slices.Contains(got, w) {
				t.Errorf("missing %q", w)
				break
			}
		}
	}
	st := p.Stats()
	if st.Dropped.Load() != 0 || st.Rejected.Load() != 0 || st.Lost.Load() != 0 {
		t.Errorf("dropped %d, rejected %d, lost %d; want none", st.Dropped.Load(), st.Rejected.Load(), st.Lost.Load())
	}
}

// waitDelivered waits, 5 s at most, until out holds n records besides the
// probes; the caller then checks what it holds.
func waitDelivered(out *collector, n int) {
	for deadline := time.Now().Add(5 * time.Second); len(withoutProbes(out.got())) < n && time.Now().Before(deadline); {
		time.Sleep(5 * time.Millisecond)
	}
}

// withoutProbes leaves out the probes.
func withoutProbes(frames []string) []string {
	return slices.DeleteFunc(frames, func(f string) bool { return strings.Contains(f, ":probe") })
}

func TestPipelineWithASingleUDPInputTable(t *testing.T) {
	out, id := newCollector(t)
	port := freeUDPPort(t)
	_, stop := startPipeline(t, fmt.Sprintf(`
[input]
type = "udp"
listen = "127.0.0.1:%d"
format = "udpmulti-a"

[output]
type = "udpmulti-collect"
id = %q
format = "udpmulti-msg"
`, port, id), strings.NewReader(""))
	conn := waitListening(t, out, port, "a:probe")
	var want []string
	for i := range 100 {
		fmt.Fprintf(conn, "single %d\r\n", i)
		want = append(want, fmt.Sprintf("a:single %d", i))
	}
	waitDelivered(out, len(want))
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	got := withoutProbes(out.got())
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("delivered %q; want %q", got, want)
	}
}

// With the output stuck, the queue fills, the UDP readers wait for room and
// the socket's receive buffer (the kernel's smallest here) overflows: every
// datagram sent is either delivered once the output is back or counted as
// dropped by the kernel. Nothing is lost silently, and nothing is dropped
// that the queue and the buffer held.
func TestPipelineUDPWithAStuckOutputCountsEveryLoss(t *testing.T) {
	out, id := newCollector(t)
	port := freeUDPPort(t)
	p, stop := startPipeline(t, fmt.Sprintf(`
[input]
type = "udp"
listen = "127.0.0.1:%d"
format = "udpmulti-a"
udp_recv_buffer = 1
queuesize = 64

[output]
type = "udpmulti-collect"
id = %q
format = "udpmulti-msg"
`, port, id), nil)
	conn := waitListening(t, out, port, "a:probe")
	probes := len(out.got())
	out.hold()
	const n = 3000
	for i := range n {
		fmt.Fprintf(conn, "datagram %d", i)
		if i%50 == 0 {
			time.Sleep(time.Millisecond)
		}
	}
	time.Sleep(100 * time.Millisecond)
	out.release()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		before := len(out.got())
		time.Sleep(100 * time.Millisecond)
		if len(out.got()) == before {
			break
		}
	}
	if err := stop(); err != nil { // reads the kernel's drop counter a last time
		t.Fatal(err)
	}
	got := withoutProbes(out.got())
	late := len(out.got()) - len(got) - probes // probes that arrived after the first
	st := p.Stats()
	dropped := int(st.Dropped.Load())
	if len(got)+dropped != n+late || dropped == 0 || st.Lost.Load() != 0 || st.Rejected.Load() != 0 {
		t.Errorf("delivered %d + dropped %d = %d; want the %d sent (and %d late probes), with drops; lost %d, rejected %d",
			len(got), dropped, len(got)+dropped, n, late, st.Lost.Load(), st.Rejected.Load())
	}
	slices.Sort(got)
	if len(slices.Compact(got)) != len(got) {
		t.Error("a datagram was delivered twice")
	}
	t.Logf("%d delivered after the output came back, %d dropped by the kernel", len(got), dropped)
}
