package pipeline

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/flowgo/flowgo"
	"github.com/flowgo/flowgo/config"
	"github.com/flowgo/flowgo/input"
	"github.com/flowgo/flowgo/internal/syncbuf"
	"github.com/flowgo/flowgo/output"
)

// The component lifecycle: a configuration is parsed and checked without
// building anything, a reload builds only what changed, and the HTTP side
// answers while a reload waits for a stuck output.

// counts counts what the pipeline does with one "testcountin" or
// "testcountout" component, found by the id key of its section.
type counts struct {
	parses, builds, reloads, closes atomic.Int64
	closeErr                        error // what the output's Close returns
}

var (
	countsMu   sync.Mutex
	countsByID = map[string]*counts{}
)

func newCounts(id string) *counts {
	c := &counts{}
	countsMu.Lock()
	countsByID[id] = c
	countsMu.Unlock()
	return c
}

// countKeys are the keys of the counting types: id picks the counts, v is
// there to change a section.
type countKeys struct {
	ID string `toml:"id"`
	V  int    `toml:"v"`
}

func parseCounts(s *config.Section) (*counts, error) {
	var k countKeys
	if err := s.Decode(&k); err != nil {
		return nil, err
	}
	countsMu.Lock()
	defer countsMu.Unlock()
	c := countsByID[k.ID]
	if c == nil {
		return nil, s.Errorf("id", "no counts %q", k.ID)
	}
	c.parses.Add(1)
	return c, nil
}

// countedInput runs until its context ends; it counts its reloads.
type countedInput struct{ c *counts }

func (in countedInput) Run(ctx context.Context, sink input.Sink) error {
	<-ctx.Done()
	return nil
}

func (in countedInput) Reload() error {
	in.c.reloads.Add(1)
	return nil
}

// countedOutput takes every batch; it counts its reloads and closes.
type countedOutput struct{ c *counts }

func (o countedOutput) Write(context.Context, *flowgo.Batch) error { return nil }

func (o countedOutput) Close(context.Context) error {
	o.c.closes.Add(1)
	return o.c.closeErr
}

func (o countedOutput) Reload() error {
	o.c.reloads.Add(1)
	return nil
}

func init() {
	input.Register("testcountin", input.Type{Parse: func(c input.Config) (input.Builder, error) {
		n, err := parseCounts(c.Section)
		if err != nil {
			return nil, err
		}
		return input.BuilderFunc(func() (input.Input, error) {
			n.builds.Add(1)
			return countedInput{n}, nil
		}), nil
	}})
	output.Register("testcountout", output.Type{
		DefaultFraming: func(string) flowgo.Framing { return flowgo.FramingLine },
		Parse: func(c output.Config) (output.Builder, error) {
			n, err := parseCounts(c.Section)
			if err != nil {
				return nil, err
			}
			return output.BuilderFunc(func() (output.Output, error) {
				n.builds.Add(1)
				return countedOutput{n}, nil
			}), nil
		},
	})
}

func TestCheckBuildsNothing(t *testing.T) {
	in, out := newCounts(t.Name()+"/in"), newCounts(t.Name()+"/out")
	src := fmt.Sprintf("[input]\ntype = \"testcountin\"\nid = %q\nformat = \"testline\"\n[output]\ntype = \"testcountout\"\nid = %q\nformat = \"testmsg\"\n",
		t.Name()+"/in", t.Name()+"/out")
	f, err := config.Parse("test.toml", src)
	if err != nil {
		t.Fatal(err)
	}
	p, err := Build(f, Options{CheckOnly: true, Log: quietLog()})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(p.Describe(), "output: type testcountout") {
		t.Errorf("Describe() of a checked pipeline:\n%s", p.Describe())
	}
	cfg := writeFile(t, t.TempDir(), "check.toml", src)
	if _, err := LoadGroup([]string{cfg}, Options{CheckOnly: true, Log: quietLog()}, ""); err != nil {
		t.Fatal(err)
	}
	if in.parses.Load() != 2 || out.parses.Load() != 2 {
		t.Errorf("parsed the input %d times and the output %d times; want 2 each", in.parses.Load(), out.parses.Load())
	}
	if in.builds.Load() != 0 || out.builds.Load() != 0 {
		t.Errorf("checking built the input %d times and the output %d times; want nothing built", in.builds.Load(), out.builds.Load())
	}
}

func TestReloadBuildsOnlyWhatChanged(t *testing.T) {
	id := func(s string) string { return t.Name() + "/" + s }
	a, b, o := newCounts(id("a")), newCounts(id("b")), newCounts(id("o"))
	o.closeErr = errors.New("the old output failed to close")
	conf := func(bv, ov int) string {
		return fmt.Sprintf(`
[[input]]
type = "testcountin"
id = %q
format = "testline"
[[input]]
type = "testcountin"
id = %q
v = %d
format = "testline"
[output]
type = "testcountout"
id = %q
v = %d
format = "testmsg"
`, id("a"), id("b"), bv, id("o"), ov)
	}
	dir := t.TempDir()
	cfg := writeFile(t, dir, "p.toml", conf(1, 1))
	var logs syncbuf.Buffer
	g, err := LoadGroup([]string{cfg}, Options{Log: slog.New(slog.NewTextHandler(&logs, nil))}, "")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- g.Run(ctx) }()
	p := g.Pipelines()[0]
	waitFor(t, "both inputs to run", func() bool { return len(p.InputNames()) == 2 })
	check := func(when string, c *counts, name string, builds, reloads, closes int64) {
		t.Helper()
		if c.builds.Load() != builds || c.reloads.Load() != reloads || c.closes.Load() != closes {
			t.Errorf("%s: %s built %d times, reloaded %d, closed %d; want %d, %d, %d", when, name,
				c.builds.Load(), c.reloads.Load(), c.closes.Load(), builds, reloads, closes)
		}
	}

	if err := g.Reload(); err != nil {
		t.Fatal(err)
	}
	check("unchanged", a, "input a", 1, 1, 0)
	check("unchanged", b, "input b", 1, 1, 0)
	check("unchanged", o, "the output", 1, 1, 0)

	writeFile(t, dir, "p.toml", conf(2, 1))
	if err := g.Reload(); err != nil {
		t.Fatal(err)
	}
	check("input b changed", a, "input a", 1, 2, 0)
	check("input b changed", b, "input b", 2, 1, 0)
	check("input b changed", o, "the output", 1, 2, 0)

	writeFile(t, dir, "p.toml", conf(2, 2))
	if err := g.Reload(); err != nil {
		t.Fatal(err)
	}
	check("output changed", a, "input a", 1, 3, 0)
	check("output changed", b, "input b", 2, 2, 0)
	check("output changed", o, "the output", 2, 2, 1)
	if !strings.Contains(logs.String(), `msg="closing the replaced output" pipeline=p output=testcountout error="the old output failed to close"`) {
		t.Errorf("the replaced output's close error was not logged:\n%s", logs.String())
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// TestHealthAnswersDuringAReloadBehindAStuckOutput: a reload that stops an
// input waits for it to hand over what it holds, which waits for room in a
// queue a stuck output does not empty. Meanwhile /healthz, /readyz and
// /metrics answer (they used to wait for the reload).
func TestHealthAnswersDuringAReloadBehindAStuckOutput(t *testing.T) {
	registerOneByOne()
	mem, id := newMem(t)
	mem.block = make(chan struct{})
	conf := func(name string) string {
		return fmt.Sprintf("[input]\nname = %q\ntype = \"testonebyone\"\nformat = \"testline\"\nqueuesize = 1000\n"+
			"[output]\ntype = \"testmem\"\nid = %q\nformat = \"testmsg\"\n[metrics]\nlisten = \"127.0.0.1:0\"\n", name, id)
	}
	dir := t.TempDir()
	cfg := writeFile(t, dir, "stuck.toml", conf("before"))
	g, err := LoadGroup([]string{cfg}, Options{Log: quietLog()}, "")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- g.Run(ctx) }()
	p := g.Pipelines()[0]
	waitFor(t, "the queue to fill", func() bool {
		n := p.Stats().Received.Load()
		time.Sleep(50 * time.Millisecond)
		return n > 100 && p.Stats().Received.Load() == n
	})
	waitFor(t, "the metrics listener", func() bool { return g.MetricsAddr() != nil })
	addr := g.MetricsAddr().String()

	writeFile(t, dir, "stuck.toml", conf("after")) // the input changes: it is stopped
	reloaded := make(chan error, 1)
	go func() { reloaded <- g.Reload() }()
	waitFor(t, "the reload to wait for the input", func() bool {
		p.in.mu.Lock()
		defer p.in.mu.Unlock()
		return p.in.reloading
	})
	client := &http.Client{Timeout: 5 * time.Second}
	for _, path := range []string{"/healthz", "/readyz", "/metrics"} {
		resp, err := client.Get("http://" + addr + path)
		if err != nil {
			t.Fatalf("%s during the reload: %v", path, err)
		}
		resp.Body.Close()
	}
	select {
	case err := <-reloaded:
		t.Fatalf("the reload ended (%v) with the output still stuck: the test proves nothing", err)
	default:
	}
	close(mem.block)
	select {
	case err := <-reloaded:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the reload did not end once the output was unstuck")
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if got := len(mem.got()); got < 20000 {
		t.Errorf("delivered %d records; want at least the 20000 of the first input", got)
	}
}

func TestDeadLetterFileWithTwoFramingsIsRefused(t *testing.T) {
	dir := t.TempDir()
	dead := filepath.Join(dir, "rejected.log")
	tcp := func(framing string) string {
		return fmt.Sprintf("[[input]]\ntype = \"tcp\"\nlisten = \"127.0.0.1:0\"\nformat = \"testline\"\nframing = %q\ndead_letter_file = %q\n", framing, dead)
	}
	out := "[output]\ntype = \"stdout\"\nformat = \"testmsg\"\n"
	t.Run("in one file", func(t *testing.T) {
		err := buildErr(t, tcp("line")+tcp("syslen")+out)
		want := fmt.Sprintf(`test.toml:12: input[1].dead_letter_file: %q is also the dead-letter file of input[0] (line 6), which writes frames framed "line", not "syslen"`, dead)
		if err == nil || !strings.HasPrefix(err.Error(), want) {
			t.Errorf("Build = %v;\nwant %s...", err, want)
		}
	})
	t.Run("one framing is fine, the output's too", func(t *testing.T) {
		if err := buildErr(t, tcp("line")+tcp("line")+out+fmt.Sprintf("dead_letter_file = %q\n", dead)); err != nil {
			t.Error(err)
		}
	})
	t.Run("across files", func(t *testing.T) {
		cfgs := t.TempDir()
		writeFile(t, cfgs, "a.toml", tcp("nul")+out)
		writeFile(t, cfgs, "b.toml", "[input]\ntype = \"stdin\"\nformat = \"testline\"\n"+out+fmt.Sprintf("dead_letter_file = %q\n", dead))
		_, err := LoadGroup([]string{cfgs}, Options{Log: quietLog(), CheckOnly: true}, "")
		re := regexp.MustCompile(`b\.toml:7: output\.dead_letter_file: ".*rejected\.log" is also the dead-letter file of input \(line 6\) in .*a\.toml, which writes frames framed "nul", not "line"`)
		if err == nil || !re.MatchString(err.Error()) {
			t.Errorf("LoadGroup = %v; want an error naming both files", err)
		}
	})
	if _, err := os.Stat(dead); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("checking created the dead-letter file: %v", err)
	}
}

// TestCloseErrorsOfOutputsThatWillNotRunAreLogged: a group that fails to
// build closes the outputs it built; their errors are logged, not dropped.
func TestCloseErrorsOfOutputsThatWillNotRunAreLogged(t *testing.T) {
	o := newCounts(t.Name())
	o.closeErr = errors.New("close failed")
	dir := t.TempDir()
	notADir := writeFile(t, t.TempDir(), "queue", "a file, not a directory")
	writeFile(t, dir, "a.toml", fmt.Sprintf("[input]\ntype = \"stdin\"\nformat = \"testline\"\n[output]\ntype = \"testcountout\"\nid = %q\nformat = \"testmsg\"\n", t.Name()))
	writeFile(t, dir, "b.toml", fmt.Sprintf("[input]\ntype = \"stdin\"\nformat = \"testline\"\n[output]\ntype = \"stdout\"\nformat = \"testmsg\"\n[queue]\ntype = \"disk\"\npath = %q\n", notADir))
	var logs syncbuf.Buffer
	_, err := LoadGroup([]string{dir}, Options{Log: slog.New(slog.NewTextHandler(&logs, nil))}, "")
	if err == nil || !strings.Contains(err.Error(), "b.toml:9: queue.path:") {
		t.Fatalf("LoadGroup = %v; want the disk queue's error", err)
	}
	if o.builds.Load() != 1 || o.closes.Load() != 1 {
		t.Errorf("output built %d times, closed %d; want 1 and 1", o.builds.Load(), o.closes.Load())
	}
	if !strings.Contains(logs.String(), `msg="closing an output that will not run" pipeline=a output=testcountout error="close failed"`) {
		t.Errorf("the close error was not logged:\n%s", logs.String())
	}
}
