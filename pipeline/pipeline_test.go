package pipeline

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/flowgo/flowgo"
	"github.com/flowgo/flowgo/config"
	"github.com/flowgo/flowgo/decoder"
	"github.com/flowgo/flowgo/encoder"
	"github.com/flowgo/flowgo/input"
	"github.com/flowgo/flowgo/internal/testoutput"
	"github.com/flowgo/flowgo/output"
)

// The pipeline is tested with tiny codecs of its own, so that its tests do
// not depend on the real formats: "testline" keeps the frame as Msg and
// rejects frames starting with BAD; "testmsg" writes Msg back and refuses
// records starting with NOENC.
type testLine struct{}

func (testLine) Decode(frame []byte, r *flowgo.Record, a *flowgo.Arena) error {
	if bytes.HasPrefix(frame, []byte("BAD")) {
		return decoder.Errorf("testline", 1, "bad frame")
	}
	r.Msg = a.String(frame)
	r.FullMsg = r.Msg
	return nil
}

type testMsg struct{}

func (testMsg) Encode(dst []byte, r *flowgo.Record) ([]byte, error) {
	if strings.HasPrefix(r.Msg, "NOENC") {
		return dst, errors.New("cannot encode")
	}
	return append(dst, r.Msg...), nil
}

// memOutput collects frames; it can fail a number of writes first, or
// block until released.
type memOutput struct {
	mu       sync.Mutex
	frames   []string
	failures int
	block    chan struct{}
	writes   int
	most     int // most frames one write carried
	closed   bool
	permFail string // frames with this prefix fail for good
}

// mems are the testmem outputs, by the id their [output] table gives.
var mems = testoutput.Register[*memOutput]("testmem")

func init() {
	decoder.Register("testline", func(*config.Section) (decoder.Decoder, error) { return testLine{}, nil })
	encoder.Register("testmsg", func(*config.Section) (encoder.Encoder, error) { return testMsg{}, nil })
}

func newMem(t *testing.T) (*memOutput, string) {
	return newMemNamed(t.Name())
}

func newMemNamed(id string) (*memOutput, string) {
	m := &memOutput{}
	mems.Add(id, m)
	return m, id
}

func (m *memOutput) Write(ctx context.Context, b *flowgo.Batch) error {
	if m.block != nil {
		select {
		case <-m.block:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.writes++
	m.most = max(m.most, b.Frames())
	if m.failures > 0 {
		m.failures--
		return errors.New("transient failure")
	}
	var be flowgo.BatchError
	for i := range b.Frames() {
		f := string(b.Frame(i))
		if m.permFail != "" && strings.HasPrefix(f, m.permFail) {
			be.Failed = append(be.Failed, i)
			be.Reasons = append(be.Reasons, errors.New("too large"))
			continue
		}
		m.frames = append(m.frames, f)
	}
	if len(be.Failed) > 0 {
		return &be
	}
	return nil
}

func (m *memOutput) Close(context.Context) error {
	m.mu.Lock()
	m.closed = true
	m.mu.Unlock()
	return nil
}

func (m *memOutput) got() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]string(nil), m.frames...)
}

// runBackground runs p on a goroutine of its own. The function it returns
// stops it: it cancels Run, closes stdin (when not nil) and checks that Run
// returned no error.
func runBackground(t *testing.T, p *Pipeline, stdin io.Closer) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	return func() {
		t.Helper()
		cancel()
		if stdin != nil {
			stdin.Close()
		}
		if err := <-done; err != nil {
			t.Error(err)
		}
	}
}

func build(t *testing.T, src string, opts Options) *Pipeline {
	t.Helper()
	f, err := config.Parse("test.toml", src)
	if err != nil {
		t.Fatal(err)
	}
	if opts.Log == nil {
		opts.Log = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError}))
	}
	p, err := Build(f, opts)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func lines(n int, bad func(i int) bool) (string, []string) {
	var in strings.Builder
	var want []string
	for i := range n {
		if bad != nil && bad(i) {
			fmt.Fprintf(&in, "BAD %d\n", i)
			continue
		}
		s := fmt.Sprintf("record %d", i)
		in.WriteString(s + "\n")
		want = append(want, s+"\n")
	}
	return in.String(), want
}

func TestStdinToOutputKeepsOrderAndReportsRejects(t *testing.T) {
	mem, id := newMem(t)
	in, want := lines(50000, func(i int) bool { return i%1000 == 7 })
	var rejects []string
	p := build(t, fmt.Sprintf(`
[input]
type = "stdin"
format = "testline"
[output]
type = "testmem"
id = %q
format = "testmsg"
framing = "line"
`, id), Options{Stdin: strings.NewReader(in), Workers: 4, OnReject: func(_, origin string, frame []byte, err error) {
		rejects = append(rejects, fmt.Sprintf("%s: %v: %s", origin, err, frame))
	}})
	if err := p.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	got := mem.got()
	if len(got) != len(want) {
		t.Fatalf("delivered %d records; want %d", len(got), len(want))
	}
	for i := range got {
		if got[i] != want[i] {
			t.Fatalf("record %d = %q; want %q (order lost)", i, got[i], want[i])
		}
	}
	if len(rejects) != 50 || rejects[0] != "line 8: testline: bad frame [col 1]: BAD 7" || rejects[49] != "line 49008: testline: bad frame [col 1]: BAD 49007" {
		t.Errorf("rejects: %d, first %q, last %q", len(rejects), rejects[0], rejects[len(rejects)-1])
	}
	st := p.Stats()
	if st.Received.Load() != int64(len(want)) || st.Sent.Load() != int64(len(want)) || st.Rejected.Load() != 50 || st.Lost.Load() != 0 {
		t.Errorf("stats received %d sent %d rejected %d lost %d", st.Received.Load(), st.Sent.Load(), st.Rejected.Load(), st.Lost.Load())
	}
	if !mem.closed {
		t.Error("output not closed")
	}
}

func TestDeadLetterFilesKeepRejectedFrames(t *testing.T) {
	mem, id := newMem(t)
	mem.permFail = "record 5"
	dir := t.TempDir()
	inDead := filepath.Join(dir, "in.dead")
	outDead := filepath.Join(dir, "out.dead")
	p := build(t, fmt.Sprintf(`
[input]
type = "stdin"
format = "testline"
dead_letter_file = %q
[output]
type = "testmem"
id = %q
format = "testmsg"
dead_letter_file = %q
`, inDead, id, outDead), Options{Stdin: strings.NewReader("record 1\nBAD one\nNOENC x\nrecord 5\nBAD two\nrecord 6\n")})
	if err := p.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(inDead); string(got) != "BAD one\nBAD two\n" {
		t.Errorf("input dead letters = %q", got)
	}
	if got, _ := os.ReadFile(outDead); string(got) != "NOENC x\nrecord 5\n" {
		t.Errorf("output dead letters = %q", got)
	}
	if got := mem.got(); strings.Join(got, "|") != "record 1|record 6" {
		t.Errorf("delivered %q", got)
	}
	st := p.Stats()
	if st.Rejected.Load() != 2 || st.EncodeFailed.Load() != 1 || st.Failed.Load() != 1 || st.Sent.Load() != 2 {
		t.Errorf("stats rejected %d encode_failed %d failed %d sent %d", st.Rejected.Load(), st.EncodeFailed.Load(), st.Failed.Load(), st.Sent.Load())
	}
}

func TestOutputFailuresAreRetriedUntilDelivered(t *testing.T) {
	mem, id := newMem(t)
	mem.failures = 3
	in, want := lines(100, nil)
	p := build(t, fmt.Sprintf("[input]\ntype=\"stdin\"\nformat=\"testline\"\n[output]\ntype=\"testmem\"\nid=%q\nformat=\"testmsg\"\nframing=\"line\"\n", id),
		Options{Stdin: strings.NewReader(in)})
	start := time.Now()
	if err := p.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := mem.got(); len(got) != len(want) {
		t.Fatalf("delivered %d; want %d", len(got), len(want))
	}
	if r := p.Stats().Retries.Load(); r != 3 {
		t.Errorf("retries = %d; want 3", r)
	}
	// Back-off: 3 retries wait at least 50+100+200 ms (half of each delay, jittered).
	if d := time.Since(start); d < 350*time.Millisecond {
		t.Errorf("3 retries took %v; the back-off is missing", d)
	}
}

func TestShutdownTimeoutCountsUndeliveredRecordsAsLost(t *testing.T) {
	mem, id := newMem(t)
	mem.block = make(chan struct{}) // never released
	in, _ := lines(5000, nil)
	p := build(t, fmt.Sprintf(`
[input]
type = "stdin"
format = "testline"
[output]
type = "testmem"
id = %q
format = "testmsg"
shutdown_timeout = "200ms"
`, id), Options{Stdin: strings.NewReader(in)})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- p.Run(ctx) }()
	time.Sleep(100 * time.Millisecond)
	cancel()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return after the shutdown timeout")
	}
	st := p.Stats()
	if st.Lost.Load() != st.Received.Load() || st.Received.Load() != 5000 || st.Sent.Load() != 0 {
		t.Errorf("received %d lost %d sent %d; want every received record counted lost", st.Received.Load(), st.Lost.Load(), st.Sent.Load())
	}
}

func TestBackpressureBoundsTheQueue(t *testing.T) {
	mem, id := newMem(t)
	mem.block = make(chan struct{})
	in, want := lines(200000, nil)
	p := build(t, fmt.Sprintf(`
[input]
type = "stdin"
format = "testline"
queuesize = 5000
[output]
type = "testmem"
id = %q
format = "testmsg"
framing = "line"
`, id), Options{Stdin: strings.NewReader(in)})
	done := make(chan error)
	go func() { done <- p.Run(context.Background()) }()
	time.Sleep(300 * time.Millisecond)
	recs, _, maxRecs, _ := p.Queue().Usage()
	if recs > maxRecs || maxRecs != 5000 {
		t.Errorf("queue holds %d records; limit %d", recs, maxRecs)
	}
	if got := p.Stats().Received.Load(); got > 5000+int64(DefaultBatchRecords) {
		t.Errorf("%d records accepted while the output was blocked; the input did not wait", got)
	}
	close(mem.block)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if got := mem.got(); len(got) != len(want) {
		t.Errorf("delivered %d; want %d", len(got), len(want))
	}
}

func TestBuildErrors(t *testing.T) {
	tests := []struct {
		name, src, want string
	}{
		{"unknown input type", "[input]\ntype = \"tpc\"\nformat=\"testline\"\n[output]\ntype=\"stdout\"\nformat=\"testmsg\"\n",
			`test.toml:2: input.type: input type "tpc" unknown (known: `},
		{"unknown format", "[input]\ntype = \"stdin\"\nformat=\"rfc9999\"\n[output]\ntype=\"stdout\"\nformat=\"testmsg\"\n",
			`test.toml:3: input.format: input format "rfc9999" unknown`},
		{"bad framing", "[input]\ntype = \"stdin\"\nformat=\"testline\"\nframing=\"lines\"\n[output]\ntype=\"stdout\"\nformat=\"testmsg\"\n",
			`test.toml:4: input.framing: framing "lines" unknown (known: line, nul, syslen, auto, capnp)`},
		{"typo in a key", "[input]\ntype = \"stdin\"\nformat=\"testline\"\nqueusize=5\n[output]\ntype=\"stdout\"\nformat=\"testmsg\"\n",
			`test.toml:4: input.queusize: unknown key (did you mean "queuesize"?)`},
		{"unknown output framing", "[input]\ntype = \"stdin\"\nformat=\"testline\"\n[output]\ntype=\"stdout\"\nformat=\"testmsg\"\nframing=\"crlf\"\n",
			`test.toml:7: output.framing: framing "crlf" unknown`},
		{"bad max message action", "[input]\ntype = \"stdin\"\nformat=\"testline\"\nmax_message_action=\"drop\"\n[output]\ntype=\"stdout\"\nformat=\"testmsg\"\n",
			`test.toml:4: input.max_message_action: must be "reject" or "truncate", not "drop"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, err := config.Parse("test.toml", tt.src)
			if err != nil {
				t.Fatal(err)
			}
			_, err = Build(f, Options{})
			if err == nil || !strings.HasPrefix(err.Error(), tt.want) {
				t.Errorf("Build error = %v;\nwant prefix %s", err, tt.want)
			}
		})
	}
}

func TestFramedKeySelectsSyslen(t *testing.T) {
	mem, id := newMem(t)
	p := build(t, fmt.Sprintf("[input]\ntype=\"stdin\"\nformat=\"testline\"\nframed=true\n[output]\ntype=\"testmem\"\nid=%q\nformat=\"testmsg\"\n", id),
		Options{Stdin: strings.NewReader("3 abc5 hello")})
	if err := p.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := mem.got(); strings.Join(got, "|") != "abc|hello" {
		t.Errorf("delivered %q; want abc and hello", got)
	}
}

type reloadingOutput struct {
	memOutput
	reloads int
}

func (r *reloadingOutput) Reload() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.reloads++
	return nil
}

var (
	reloadingNow       *reloadingOutput
	registerTestReload sync.Once
)

func TestReloadReachesTheOutputBetweenWrites(t *testing.T) {
	ro := &reloadingOutput{}
	reloadingNow = ro
	registerTestReload.Do(func() {
		output.Register("testreload", output.Type{
			DefaultFraming: func(string) flowgo.Framing { return flowgo.FramingLine },
			Parse: func(output.Config) (output.Builder, error) {
				return output.BuilderFunc(func() (output.Output, error) { return reloadingNow, nil }), nil
			},
		})
	})
	pr, pw := io.Pipe()
	p := build(t, "[input]\ntype=\"stdin\"\nformat=\"testline\"\n[output]\ntype=\"testreload\"\nformat=\"testmsg\"\n", Options{Stdin: pr})
	done := make(chan error)
	go func() { done <- p.Run(context.Background()) }()
	fmt.Fprintln(pw, "before")
	if err := p.Reload(); err != nil {
		t.Fatal(err)
	}
	fmt.Fprintln(pw, "after")
	pw.Close()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if ro.reloads != 1 {
		t.Errorf("output reloaded %d times; want 1", ro.reloads)
	}
	if got := ro.got(); strings.Join(got, "|") != "before\n|after\n" {
		t.Errorf("delivered %q", got)
	}
}

// oneByOne is an input that hands over every record in a batch of its own,
// as quiet connections do.
type oneByOne struct{ n int }

func (o oneByOne) Run(ctx context.Context, sink input.Sink) error {
	for i := range o.n {
		b := flowgo.GetBatch()
		r := b.Next()
		r.Msg = b.Arena.String([]byte(fmt.Sprintf("r%d", i)))
		if err := sink.Put(b); err != nil {
			return err
		}
	}
	return nil
}

var registerOneByOneOnce sync.Once

func registerOneByOne() {
	registerOneByOneOnce.Do(func() {
		input.Register("testonebyone", input.Type{Parse: func(c input.Config) (input.Builder, error) {
			return input.BuilderFunc(func() (input.Input, error) { return oneByOne{n: 20000}, nil }), nil
		}})
	})
}

func TestQueuedBatchesAreWrittenTogether(t *testing.T) {
	registerOneByOne()
	mem, id := newMem(t)
	mem.block = make(chan struct{})
	p := build(t, fmt.Sprintf("[input]\ntype=\"testonebyone\"\nformat=\"testline\"\n[output]\ntype=\"testmem\"\nid=%q\nformat=\"testmsg\"\nframing=\"line\"\n", id), Options{})
	done := make(chan error)
	go func() { done <- p.Run(context.Background()) }()
	// The queue fills while the output is blocked; wait until it is full.
	waitFor(t, "the queue to fill", func() bool {
		n := p.Stats().Received.Load()
		time.Sleep(50 * time.Millisecond)
		return n > 100 && p.Stats().Received.Load() == n
	})
	close(mem.block)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	got := mem.got()
	if len(got) != 20000 {
		t.Fatalf("delivered %d; want 20000", len(got))
	}
	for i, g := range got {
		if g != fmt.Sprintf("r%d\n", i) {
			t.Fatalf("record %d = %q: order lost", i, g)
		}
	}
	// Once the output is back, the batches waiting in the queue go out
	// together: groupAloneRecords of them in one write.
	if mem.most < groupAloneRecords {
		t.Errorf("the largest write carried %d records; queued one-record batches were not written together (%d writes)", mem.most, mem.writes)
	}
	t.Logf("%d writes, the largest %d records", mem.writes, mem.most)
}

func TestReloadReopensDeadLetterFiles(t *testing.T) {
	_, id := newMem(t)
	dir := t.TempDir()
	dead := filepath.Join(dir, "rejected.log")
	pr, pw := io.Pipe()
	p := build(t, fmt.Sprintf("[input]\ntype=\"stdin\"\nformat=\"testline\"\ndead_letter_file=%q\n[output]\ntype=\"testmem\"\nid=%q\nformat=\"testmsg\"\n", dead, id), Options{Stdin: pr})
	done := make(chan error)
	go func() { done <- p.Run(context.Background()) }()
	fmt.Fprintln(pw, "BAD before")
	waitFor(t, "the first rejection", func() bool { return p.Stats().Rejected.Load() == 1 })
	if err := os.Rename(dead, dead+".1"); err != nil {
		t.Fatal(err)
	}
	if err := p.Reload(); err != nil {
		t.Fatal(err)
	}
	fmt.Fprintln(pw, "BAD after")
	pw.Close()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(dead + ".1"); string(got) != "BAD before\n" {
		t.Errorf("rotated dead-letter file = %q", got)
	}
	if got, _ := os.ReadFile(dead); string(got) != "BAD after\n" {
		t.Errorf("new dead-letter file = %q", got)
	}
}

// inputNamed returns the running input named name, nil if there is none.
func (p *Pipeline) inputNamed(name string) input.Input {
	p.in.mu.Lock()
	defer p.in.mu.Unlock()
	if r := p.in.runs[name]; r != nil {
		return r.in
	}
	return nil
}
