package pipeline

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

func quietLog() *slog.Logger {
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

func writeFile(t testing.TB, dir, name, body string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// scrape fetches /metrics and parses it as Prometheus text exposition.
func scrape(t *testing.T, addr net.Addr) map[string]*dto.MetricFamily {
	t.Helper()
	resp, err := http.Get("http://" + addr.String() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
		t.Errorf("Content-Type = %q", ct)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("/metrics is not valid Prometheus text exposition: %v", err)
	}
	return fams
}

// value returns the value of the series of family name whose labels
// include want, or -1.
func value(fams map[string]*dto.MetricFamily, name string, want map[string]string) float64 {
	f := fams[name]
	if f == nil {
		return -1
	}
next:
	for _, m := range f.Metric {
		have := map[string]string{}
		for _, l := range m.Label {
			have[l.GetName()] = l.GetValue()
		}
		for k, v := range want {
			if have[k] != v {
				continue next
			}
		}
		switch {
		case m.Counter != nil:
			return m.Counter.GetValue()
		case m.Gauge != nil:
			return m.Gauge.GetValue()
		case m.Histogram != nil:
			return float64(m.Histogram.GetSampleCount())
		}
	}
	return -1
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestMetricsReportExactCounts(t *testing.T) {
	mem, id := newMem(t)
	dir := t.TempDir()
	cfg := writeFile(t, dir, "web.toml", fmt.Sprintf(`
[input]
type = "stdin"
format = "testline"
[output]
type = "testmem"
id = %q
format = "testmsg"
framing = "line"
[metrics]
listen = "127.0.0.1:0"
`, id))
	pr, pw := io.Pipe()
	g, err := LoadGroup([]string{cfg}, Options{Stdin: pr, Log: quietLog()}, "v-test")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- g.Run(ctx) }()
	w := bufio.NewWriter(pw)
	for i := range 1007 {
		if i%150 == 3 {
			fmt.Fprintf(w, "BAD %d\n", i)
		} else {
			fmt.Fprintf(w, "record %d\n", i)
		}
	}
	w.Flush()
	waitFor(t, "1000 records delivered", func() bool { return len(mem.got()) == 1000 })
	waitFor(t, "the metrics listener", func() bool { return g.MetricsAddr() != nil })
	fams := scrape(t, g.MetricsAddr())
	in := map[string]string{"pipeline": "web", "input": "stdin", "type": "stdin"}
	checks := []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"flowgo_input_records_total", in, 1000},
		{"flowgo_input_rejected_total", map[string]string{"pipeline": "web", "reason": "decode"}, 7},
		{"flowgo_input_rejected_total", map[string]string{"pipeline": "web", "reason": "too_long"}, 0},
		{"flowgo_output_records_total", map[string]string{"pipeline": "web", "output": "testmem"}, 1000},
		{"flowgo_pipeline_lost_total", map[string]string{"pipeline": "web"}, 0},
		{"flowgo_queue_capacity_records", map[string]string{"pipeline": "web"}, DefaultQueueSize},
		{"flowgo_build_info", map[string]string{"version": "v-test"}, 1},
	}
	for _, c := range checks {
		if got := value(fams, c.name, c.labels); got != c.want {
			t.Errorf("%s%v = %v; want %v", c.name, c.labels, got, c.want)
		}
	}
	if n := value(fams, "flowgo_output_write_duration_seconds", map[string]string{"pipeline": "web"}); n < 1 {
		t.Errorf("write duration histogram has %v samples", n)
	}
	if fams["go_goroutines"] == nil || fams["process_resident_memory_bytes"] == nil {
		t.Error("Go runtime and process metrics are missing")
	}
	for _, path := range []string{"/healthz", "/readyz"} {
		resp, err := http.Get("http://" + g.MetricsAddr().String() + path)
		if err != nil {
			t.Fatal(err)
		}
		var body healthBody
		json.NewDecoder(resp.Body).Decode(&body)
		resp.Body.Close()
		if resp.StatusCode != 200 || body.Status != "ok" || len(body.Components) != 2 {
			t.Errorf("%s = %d %+v", path, resp.StatusCode, body)
		}
	}
	pw.Close()
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func TestReadinessFollowsTheOutput(t *testing.T) {
	mem, id := newMem(t)
	mem.failures = 1 << 30 // every write fails until we say
	dir := t.TempDir()
	cfg := writeFile(t, dir, "p.toml", fmt.Sprintf(`
[input]
type = "stdin"
format = "testline"
[output]
type = "testmem"
id = %q
format = "testmsg"
[metrics]
listen = "127.0.0.1:0"
`, id))
	pr, pw := io.Pipe()
	g, err := LoadGroup([]string{cfg}, Options{Stdin: pr, Log: quietLog()}, "")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error)
	go func() { done <- g.Run(context.Background()) }()
	fmt.Fprintln(pw, "one")
	waitFor(t, "the metrics listener", func() bool { return g.MetricsAddr() != nil })
	get := func() (int, healthBody) {
		resp, err := http.Get("http://" + g.MetricsAddr().String() + "/readyz")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var b healthBody
		json.NewDecoder(resp.Body).Decode(&b)
		return resp.StatusCode, b
	}
	waitFor(t, "/readyz to report the failing output", func() bool { c, _ := get(); return c == 503 })
	_, b := get()
	if len(b.Unhealthy) != 1 || b.Unhealthy[0].Component != "output testmem" || !strings.Contains(b.Unhealthy[0].Reason, "transient failure") {
		t.Errorf("unhealthy = %+v", b.Unhealthy)
	}
	mem.mu.Lock()
	mem.failures = 0
	mem.mu.Unlock()
	waitFor(t, "/readyz to recover", func() bool { c, _ := get(); return c == 200 })
	pw.Close()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if got := mem.got(); len(got) != 1 {
		t.Errorf("delivered %q", got)
	}
}

func TestTwoPipelinesAreIsolated(t *testing.T) {
	blocked, idA := newMem(t)
	blocked.block = make(chan struct{})
	t.Run("b", func(t *testing.T) {}) // a distinct name for the second memory output
	flowing, idB := newMemNamed(t.Name() + "/flowing")
	dir := t.TempDir()
	a := writeFile(t, dir, "a.toml", fmt.Sprintf("[input]\ntype=\"testonebyone\"\nformat=\"testline\"\n[output]\ntype=\"testmem\"\nid=%q\nformat=\"testmsg\"\n", idA))
	b := writeFile(t, dir, "b.toml", fmt.Sprintf("[input]\ntype=\"testonebyone\"\nformat=\"testline\"\n[output]\ntype=\"testmem\"\nid=%q\nformat=\"testmsg\"\n", idB))
	registerOneByOne()
	g, err := LoadGroup([]string{dir}, Options{Log: quietLog()}, "")
	if err != nil {
		t.Fatal(err)
	}
	if ps := g.Pipelines(); len(ps) != 2 || ps[0].Name != "a" || ps[1].Name != "b" {
		t.Fatalf("pipelines from the directory: %v", ps)
	}
	_, _ = a, b
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- g.Run(ctx) }()
	waitFor(t, "pipeline b to deliver everything while a is stuck", func() bool { return len(flowing.got()) == 20000 })
	if n := len(blocked.got()); n != 0 {
		t.Fatalf("the blocked pipeline delivered %d", n)
	}
	close(blocked.block)
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if n := len(blocked.got()); n != 20000 {
		t.Errorf("after unblocking, pipeline a delivered %d of 20000", n)
	}
}

func TestAddressesMayNotCollideAcrossFiles(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "a.toml", "[input]\ntype=\"tcp\"\nformat=\"testline\"\nlisten=\"0.0.0.0:15514\"\n[output]\ntype=\"stdout\"\nformat=\"testmsg\"\n")
	writeFile(t, dir, "b.toml", "[input]\ntype=\"tcp\"\nformat=\"testline\"\nlisten=\"127.0.0.1:15514\"\n[output]\ntype=\"stdout\"\nformat=\"testmsg\"\n")
	_, err := LoadGroup([]string{dir}, Options{Log: quietLog()}, "")
	re := regexp.MustCompile(`b\.toml: input\.listen: tcp 127\.0\.0\.1:15514 is also used by input in .*a\.toml`)
	if err == nil || !re.MatchString(err.Error()) {
		t.Errorf("LoadGroup = %v; want an error naming both files", err)
	}
	// UDP and TCP on one port do not collide.
	writeFile(t, dir, "b.toml", "[input]\ntype=\"udp\"\nformat=\"testline\"\nlisten=\"127.0.0.1:15514\"\n[output]\ntype=\"stdout\"\nformat=\"testmsg\"\n")
	g, err := LoadGroup([]string{dir}, Options{Log: quietLog()}, "")
	if err != nil {
		t.Fatalf("tcp and udp on one port: %v", err)
	}
	g.release()
}

// TestReloadLosesNothing sends continuously over TCP while the output is
// reconfigured twice, once with a broken file in between: the connection
// stays, every record arrives, the broken file changes nothing.
func TestReloadLosesNothing(t *testing.T) {
	dir := t.TempDir()
	out1, out2 := filepath.Join(dir, "out1.log"), filepath.Join(dir, "out2.log")
	conf := func(out, extra string) string {
		return fmt.Sprintf(`
[input]
type = "tcp"
format = "testline"
listen = "127.0.0.1:0"
[output]
type = "file"
format = "testmsg"
file_path = %q
%s
`, out, extra)
	}
	cfg := writeFile(t, dir, "p.toml", conf(out1, ""))
	g, err := LoadGroup([]string{cfg}, Options{Log: quietLog()}, "")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- g.Run(ctx) }()
	p := g.Pipelines()[0]
	var addr net.Addr
	waitFor(t, "the tcp input to listen", func() bool {
		in := p.inputNamed("tcp:127.0.0.1:0")
		if in == nil {
			return false
		}
		addr = in.(interface{ Addr() net.Addr }).Addr()
		return addr != nil
	})
	conn, err := net.Dial("tcp", addr.String())
	if err != nil {
		t.Fatal(err)
	}
	var sent atomic.Int64
	stop := make(chan struct{})
	sender := make(chan error)
	go func() {
		w := bufio.NewWriter(conn)
		for i := 0; ; i++ {
			select {
			case <-stop:
				w.Flush()
				sender <- conn.Close()
				return
			default:
			}
			fmt.Fprintf(w, "r%d\n", i)
			if i%100 == 0 {
				if err := w.Flush(); err != nil {
					sender <- err
					return
				}
				sent.Store(int64(i + 1))
				time.Sleep(time.Millisecond)
			}
		}
	}()
	time.Sleep(200 * time.Millisecond)
	// A changed output: new file, buffered.
	writeFile(t, dir, "p.toml", conf(out2, "file_buffer_size = 4096"))
	if err := g.Reload(); err != nil {
		t.Fatalf("reload: %v", err)
	}
	time.Sleep(200 * time.Millisecond)
	// A broken file: reported, nothing changes.
	writeFile(t, dir, "p.toml", conf(out1, "file_bufer_size = 1"))
	if err := g.Reload(); err == nil || !strings.Contains(err.Error(), `did you mean "file_buffer_size"`) {
		t.Errorf("reload of a broken file = %v", err)
	}
	time.Sleep(200 * time.Millisecond)
	close(stop)
	if err := <-sender; err != nil {
		t.Fatalf("the sender saw %v: the connection did not survive the reload", err)
	}
	time.Sleep(100 * time.Millisecond) // let the last bytes arrive
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	b1, _ := os.ReadFile(out1)
	b2, _ := os.ReadFile(out2)
	seen := map[string]bool{}
	for _, l := range strings.Split(string(b1)+string(b2), "\n") {
		if l != "" {
			seen[l] = true
		}
	}
	n := sent.Load()
	for i := range n {
		if !seen[fmt.Sprintf("r%d", i)] {
			t.Fatalf("record r%d of the %d sent is missing (out1 %d bytes, out2 %d bytes)", i, n, len(b1), len(b2))
		}
	}
	if len(b2) == 0 {
		t.Error("nothing went to the new output file")
	}
	if st := p.Stats(); st.Lost.Load() != 0 {
		t.Errorf("lost %d", st.Lost.Load())
	}
	t.Logf("%d records sent, %d in out1, %d in out2", n, strings.Count(string(b1), "\n"), strings.Count(string(b2), "\n"))
}
