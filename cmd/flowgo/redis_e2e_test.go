package main

// The redis input end to end: the built binary against a real
// redis-server (internal/redistest), as a user would run it.

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/flowgo/flowgo/internal/redistest"
	"github.com/redis/go-redis/v9"
)

// redisItems returns n RFC 5424 lines, each with its sequence number.
func redisItems(n int) []any {
	out := make([]any, n)
	for i := range out {
		out[i] = fmt.Sprintf("<13>1 2026-12-07T10:00:00.%06dZ web-%d app %d - - seq %08d", i%1000000, i%7, 100+i%5, i)
	}
	return out
}

func redisLPush(t *testing.T, c *redis.Client, key string, items []any) {
	t.Helper()
	for len(items) > 0 {
		n := min(len(items), 1000)
		if err := c.LPush(context.Background(), key, items[:n]...).Err(); err != nil {
			t.Fatal(err)
		}
		items = items[n:]
	}
}

var seqRe = regexp.MustCompile(`seq (\d{8})`)

// seqs counts the records of each sequence number in out, one a line.
func seqs(out []byte) map[int]int {
	m := map[int]int{}
	for line := range bytes.Lines(out) {
		if s := seqRe.FindSubmatch(line); s != nil {
			n, _ := strconv.Atoi(string(s[1]))
			m[n]++
		}
	}
	return m
}

func lens(t *testing.T, c *redis.Client, keys ...string) (total int64) {
	t.Helper()
	for _, k := range keys {
		n, err := c.LLen(context.Background(), k).Result()
		if err != nil {
			t.Fatal(err)
		}
		total += n
	}
	return total
}

// A flowgger.toml with the redis input, written as Flowgger takes it, is
// checked and runs unchanged (flowgo FILE, Flowgger's command line).
func TestRedisFlowggerConfigRunsUnchanged(t *testing.T) {
	srv := redistest.Start(t)
	c := srv.Client("", "")
	dir := t.TempDir()
	out := filepath.Join(dir, "output.log")
	cfg := filepath.Join(dir, "flowgger.toml")
	if err := os.WriteFile(cfg, fmt.Appendf(nil, `[input]
type = "redis"
redis_connect = %q
redis_queue_key = "logs"
redis_threads = 2
format = "rfc5424"
queuesize = 1000000

[output]
type = "file"
format = "gelf"
framing = "line"
file_path = %q
`, srv.Addr, out), 0o644); err != nil {
		t.Fatal(err)
	}
	r := flowgo(t, nil, "check", "-c", cfg)
	if r.code != 0 || !strings.Contains(r.stdout, "input: type redis, format rfc5424, framing list item") || !strings.Contains(r.stdout, "redis_threads = 2") {
		t.Fatalf("flowgo check: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	const n = 5000
	redisLPush(t, c, "logs", redisItems(n))
	d := spawn(t, "", nil, cfg)
	waitTrue(t, 60*time.Second, "every record in the file", func() bool {
		b, _ := os.ReadFile(out)
		return bytes.Count(b, []byte("\n")) >= n
	})
	d.stopClean()
	b, _ := os.ReadFile(out)
	got := seqs(b)
	for i := range n {
		if got[i] != 1 {
			t.Fatalf("seq %d is in the output %d times; want once", i, got[i])
		}
	}
	if !bytes.Contains(b, []byte(`"short_message":"seq 00000000"`)) {
		t.Errorf("the output is not GELF: %.300s", b)
	}
	if n := lens(t, c, "logs", "logs.tmp.0", "logs.tmp.1"); n != 0 {
		t.Errorf("%d items left in Redis", n)
	}
	if !strings.Contains(d.stderr.String(), "lost=0") {
		t.Errorf("no lost=0 in the exit report:\n%s", d.stderr.String())
	}
}

// flowgo killed with SIGKILL while its workers hold items in their
// temporary lists (the output is stuck, the queue full, Put waiting): the
// next start hands those items over first. With the memory queue, what it
// held is lost at the kill, as for every input; with the disk queue
// nothing is.
func TestRedisKill9LeavesTemporaryListsThatTheNextStartHandsOver(t *testing.T) {
	t.Run("memory queue", func(t *testing.T) { redisKill9(t, 30_000, "queuesize = 2000\n", "") })
	t.Run("disk queue", func(t *testing.T) {
		q := fmt.Sprintf("[queue]\ntype = \"disk\"\npath = %q\nmax_bytes = 4194304\nsync = \"batch\"\n", filepath.Join(t.TempDir(), "queue"))
		redisKill9(t, 60_000, "", q)
	})
}

func redisKill9(t *testing.T, n int, inputKeys, queueTable string) {
	srv := redistest.Start(t)
	c := srv.Client("", "")
	dir := t.TempDir()
	redisLPush(t, c, "logs", redisItems(n))
	tmps := []string{"logs.tmp.0", "logs.tmp.1"}

	// Run 1 writes to a pipe nobody reads: once the pipe is full the
	// output blocks, the queue fills, and each worker waits in Put with a
	// batch taken.
	cfg1 := writeConfig(t, fmt.Sprintf(`[input]
type = "redis"
redis_connect = %q
redis_threads = 2
format = "rfc5424"
%s[output]
type = "stdout"
format = "rfc5424"
%s`, srv.Addr, inputKeys, queueTable))
	cmd := exec.Command(flowgoBin, "run", "-c", cfg1)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr1 bytes.Buffer
	cmd.Stderr = &stderr1
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var last int64 = -1
	stable := 0
	waitTrue(t, 90*time.Second, "the workers to hold items, blocked", func() bool {
		held := lens(t, c, tmps...)
		left := lens(t, c, "logs")
		if held > 0 && left == last {
			stable++
		} else {
			stable = 0
		}
		last = left
		return stable >= 25 // 0.5 s without a move
	})
	syscall.Kill(cmd.Process.Pid, syscall.SIGKILL)
	out1, _ := io.ReadAll(stdout)
	cmd.Wait()
	// What the killed process left in its temporary lists.
	held := map[int]bool{}
	for _, k := range tmps {
		items, err := c.LRange(context.Background(), k, 0, -1).Result()
		if err != nil {
			t.Fatal(err)
		}
		for s := range seqs([]byte(strings.Join(items, "\n"))) {
			held[s] = true
		}
	}
	if len(held) == 0 {
		t.Fatal("nothing was held in the temporary lists at the kill; the test proves nothing")
	}

	// Run 2, to a file, with metrics.
	out := filepath.Join(dir, "out.log")
	port := freeTCPPort(t)
	cfg2 := writeConfig(t, fmt.Sprintf(`[input]
type = "redis"
redis_connect = %q
redis_threads = 2
format = "rfc5424"
[output]
type = "file"
format = "rfc5424"
file_path = %q
%s[metrics]
listen = "127.0.0.1:%d"
`, srv.Addr, out, queueTable, port))
	d := runDaemon(t, cfg2, "")
	waitTrue(t, 90*time.Second, "Redis to be empty", func() bool { return lens(t, c, append(tmps, "logs")...) == 0 })
	var got1, got2 map[int]int
	waitTrue(t, 90*time.Second, "the output to stop growing", func() bool {
		b, _ := os.ReadFile(out)
		g := seqs(b)
		done := got2 != nil && len(g) == len(got2)
		got2 = g
		if !done {
			time.Sleep(300 * time.Millisecond)
		}
		return done
	})
	metrics := httpGet(t, fmt.Sprintf("http://127.0.0.1:%d/metrics", port))
	ready := httpGet(t, fmt.Sprintf("http://127.0.0.1:%d/readyz", port))
	d.stopClean()
	out2, _ := os.ReadFile(out)
	got1, got2 = seqs(out1), seqs(out2)

	for s := range held {
		if got2[s] == 0 {
			t.Errorf("seq %d was in a temporary list at the kill and is not in the next run's output", s)
		}
	}
	if !strings.Contains(d.stderr.String(), "handed over items left in a temporary list by an earlier run") {
		t.Errorf("the second run does not report the hand-over:\n%s", d.stderr.String())
	}
	m := regexp.MustCompile(`(?m)^flowgo_input_redis_items_recovered_total\{[^}]*type="redis"[^}]*\} (\d+)`).FindStringSubmatch(metrics)
	if m == nil || m[1] != strconv.Itoa(len(held)) {
		t.Errorf("flowgo_input_redis_items_recovered_total = %v; want %d:\n%s", m, len(held), metrics)
	}
	if !strings.Contains(ready, `"status":"ok"`) {
		t.Errorf("/readyz after the hand-over: %s", ready)
	}
	// The accounting: what neither run wrote had been confirmed by the
	// queue before the kill (the memory queue does not survive a kill -9;
	// the disk queue does); a duplicate is a record written by run 1 that
	// its queue or its temporary list still held.
	var lost, dups int
	for i := range n {
		switch c := got1[i] + got2[i]; {
		case c == 0:
			lost++
		case c > 1:
			dups += c - 1
		}
	}
	t.Logf("%d held in temporary lists at the kill; run 1 wrote %d, run 2 %d; %d lost, %d duplicates",
		len(held), len(got1), len(got2), lost, dups)
	if queueTable != "" {
		if lost != 0 {
			t.Errorf("%d records lost with the disk queue; want none", lost)
		}
	} else if lost > 2000+1024 {
		t.Errorf("%d records lost; the memory queue holds at most 2000, and the stuck output one batch", lost)
	}
}

func httpGet(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

// Every key of the redis input (as flowgo check prints them) is documented
// in the shipped flowgo.toml (TestShippedConfigDocumentsEveryKey does this
// for the other types).
func TestRedisKeysAreInTheShippedConfig(t *testing.T) {
	shipped, err := os.ReadFile("../../flowgo.toml")
	if err != nil {
		t.Fatal(err)
	}
	r := flowgo(t, nil, "check", "-c", writeConfig(t, "[input]\ntype = \"redis\"\n[output]\ntype = \"stdout\"\n"))
	if r.code != 0 {
		t.Fatalf("check: %s", r.stderr)
	}
	keys := regexp.MustCompile(`(?m)^\s+(redis_\w+) = `).FindAllStringSubmatch(r.stdout, -1)
	if len(keys) < 12 {
		t.Fatalf("only %d redis_ keys in:\n%s", len(keys), r.stdout)
	}
	for _, m := range keys {
		if !regexp.MustCompile(`(?m)^#?` + m[1] + ` = `).Match(shipped) {
			t.Errorf("flowgo.toml does not document %q", m[1])
		}
	}
}
