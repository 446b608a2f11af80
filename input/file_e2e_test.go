package input

// The file input in the built flowgo binary, as users run it: logrotate
// rotating the file under a steady writer, kill -9 and a restart, and a
// Flowgger configuration run unchanged.

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/flowgo/flowgo/internal/syncbuf"
)

// TestMain removes the flowgo binary the end-to-end tests built
// (buildFlowgoBinary, shared with the relp tests).
func TestMain(m *testing.M) {
	code := m.Run()
	if builtBin != "" {
		os.RemoveAll(filepath.Dir(builtBin))
	}
	os.Exit(code)
}

// fileFlowgo is a flowgo process run by a file input test, in its own directory.
type fileFlowgo struct {
	t      *testing.T
	cmd    *exec.Cmd
	stderr *syncbuf.Buffer
	done   chan error
}

func startFileFlowgo(t *testing.T, dir string, args ...string) *fileFlowgo {
	t.Helper()
	cmd := exec.Command(buildFlowgoBinary(t), args...)
	cmd.Dir = dir
	p := &fileFlowgo{t: t, cmd: cmd, stderr: &syncbuf.Buffer{}, done: make(chan error, 1)}
	cmd.Stderr = p.stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.done <- cmd.Wait() }()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			cmd.Process.Kill()
			<-p.done
		}
	})
	if !waitFor(fileWait, func() bool { return strings.Contains(p.stderr.String(), `msg="tailing files"`) || len(p.done) > 0 }) {
		t.Fatalf("flowgo did not start tailing:\n%s", p.stderr)
	}
	if len(p.done) > 0 {
		t.Fatalf("flowgo exited: %v\n%s", <-p.done, p.stderr)
	}
	return p
}

// stop sends SIGTERM and waits for a clean exit.
func (p *fileFlowgo) stop() {
	p.t.Helper()
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-p.done:
		p.done <- err
		if err != nil {
			p.t.Fatalf("flowgo exited with %v:\n%s", err, p.stderr)
		}
	case <-time.After(fileWait):
		p.t.Fatalf("flowgo did not stop:\n%s", p.stderr)
	}
}

// kill sends SIGKILL and waits until the process is gone.
func (p *fileFlowgo) kill() {
	p.cmd.Process.Signal(syscall.SIGKILL)
	err := <-p.done
	p.done <- err
}

var seqRE = regexp.MustCompile(`seq (\d+)$`)

// seqCounts reads a line-framed output of RFC 5424 or raw lines and counts
// each sequence number.
func seqCounts(t *testing.T, path string) map[int]int {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	counts := map[int]int{}
	for _, l := range strings.Split(string(data), "\n") {
		if m := seqRE.FindStringSubmatch(l); m != nil {
			n, _ := strconv.Atoi(m[1])
			counts[n]++
		}
	}
	return counts
}

func waitAllSeq(t *testing.T, out string, n int, stderr fmt.Stringer) map[int]int {
	t.Helper()
	var counts map[int]int
	ok := waitFor(2*fileWait, func() bool {
		counts = seqCounts(t, out)
		for i := range n {
			if counts[i] == 0 {
				return false
			}
		}
		return true
	})
	if !ok {
		var missing []int
		for i := range n {
			if counts[i] == 0 {
				missing = append(missing, i)
			}
		}
		t.Fatalf("%d of %d lines missing from the output, the first %v\nflowgo:\n%s", len(missing), n, missing[:min(len(missing), 10)], stderr)
	}
	return counts
}

// syslogLine is the writers' line: RFC 5424, numbered.
const syslogLine = "<13>1 2026-11-30T10:00:00.000000Z web01 app 42 - - seq"

func TestFileLogrotate(t *testing.T) {
	for _, mode := range []string{"create", "copytruncate"} {
		t.Run(mode, func(t *testing.T) { testLogrotate(t, mode) })
	}
}

// testLogrotate runs Debian's logrotate, for real, four times while a
// writer appends 2,000 lines a second.
func testLogrotate(t *testing.T, mode string) {
	lr := needTool(t, "logrotate", "logrotate")
	dir := t.TempDir()
	logs := filepath.Join(dir, "logs")
	if err := os.Mkdir(logs, 0o755); err != nil {
		t.Fatal(err)
	}
	app := filepath.Join(logs, "app.log")
	appendString(t, app, "")
	// create: the renamed file is compressed and deleted at once (no
	// delaycompress), so flowgo reads the rest of it from a deleted file.
	// copytruncate: with delaycompress, as its users are told to.
	extra := "compress"
	if mode == "copytruncate" {
		extra = "compress\n    delaycompress"
	}
	conf := filepath.Join(dir, "logrotate.conf")
	if err := os.WriteFile(conf, []byte(fmt.Sprintf("%s {\n    rotate 10\n    %s\n    %s\n}\n", app, mode, extra)), 0o644); err != nil {
		t.Fatal(err)
	}
	// src matches the rotated names too: the renamed file is followed
	// under its new name, and the compressed ones are not read.
	out := filepath.Join(dir, "out.log")
	cfg := filepath.Join(dir, "flowgo.toml")
	if err := os.WriteFile(cfg, []byte(fmt.Sprintf(`
[input]
type = "file"
src = "%s*"
file_rotate_wait = "2s"
[output]
type = "file"
file_path = %q
format = "passthrough"
`, app, out)), 0o644); err != nil {
		t.Fatal(err)
	}
	p := startFileFlowgo(t, dir, "run", "-c", cfg)
	w := startWriter(t, app, syslogLine, 5*time.Millisecond)
	for i := range 4 {
		time.Sleep(700 * time.Millisecond)
		if out, err := exec.Command(lr, "-f", "-s", filepath.Join(dir, "state"), conf).CombinedOutput(); err != nil {
			t.Fatalf("logrotate (run %d): %v\n%s", i+1, err, out)
		}
	}
	time.Sleep(500 * time.Millisecond)
	n := w.stop(t)

	counts := waitAllOrLogrotateLost(t, out, n, logs, mode, p.stderr)
	p.stop()
	var dup []int
	for s, c := range counts {
		if c > 1 {
			dup = append(dup, s)
		}
	}
	if len(dup) > 0 {
		sort.Ints(dup)
		t.Errorf("%d lines delivered more than once, the first %v\nflowgo:\n%s", len(dup), dup[:min(10, len(dup))], p.stderr)
	}
	if !strings.Contains(p.stderr.String(), "rejected=0") {
		t.Errorf("frames rejected (compressed files read as lines?):\n%s", p.stderr)
	}
	if !strings.Contains(p.stderr.String(), "gzip-compressed") {
		t.Errorf("no compressed file noticed:\n%s", p.stderr)
	}
	if mode == "copytruncate" && !strings.Contains(p.stderr.String(), "file truncated") {
		t.Errorf("flowgo did not notice a truncation:\n%s", p.stderr)
	}
	if mode == "create" && !strings.Contains(p.stderr.String(), "file released") {
		t.Errorf("flowgo did not notice a rotation:\n%s", p.stderr)
	}
}

// waitAllOrLogrotateLost waits until every line the writer wrote is in the
// output. With copytruncate, logrotate itself loses the lines written
// between its copy and its truncation: those are in no file on disk. Only
// lines that are, and never came out, are flowgo's fault.
func waitAllOrLogrotateLost(t *testing.T, out string, n int, logs, mode string, stderr fmt.Stringer) map[int]int {
	t.Helper()
	if mode != "copytruncate" {
		return waitAllSeq(t, out, n, stderr)
	}
	onDisk := map[int]bool{}
	ents, err := os.ReadDir(logs)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		data, err := os.ReadFile(filepath.Join(logs, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if strings.HasSuffix(e.Name(), ".gz") {
			zr, err := gzip.NewReader(bytes.NewReader(data))
			if err != nil {
				t.Fatal(err)
			}
			if data, err = io.ReadAll(zr); err != nil {
				t.Fatal(err)
			}
		}
		for _, l := range strings.Split(string(data), "\n") {
			if m := seqRE.FindStringSubmatch(l); m != nil {
				s, _ := strconv.Atoi(m[1])
				onDisk[s] = true
			}
		}
	}
	var counts map[int]int
	lostByLogrotate := 0
	ok := waitFor(2*fileWait, func() bool {
		counts = seqCounts(t, out)
		lostByLogrotate = 0
		for i := range n {
			if counts[i] == 0 {
				if onDisk[i] {
					return false
				}
				lostByLogrotate++
			}
		}
		return true
	})
	if !ok {
		var missing []int
		for i := range n {
			if counts[i] == 0 && onDisk[i] {
				missing = append(missing, i)
			}
		}
		t.Fatalf("%d lines that logrotate kept never came out of flowgo, the first %v\nflowgo:\n%s", len(missing), missing[:min(len(missing), 10)], stderr)
	}
	t.Logf("%d lines: every line logrotate kept arrived; %d were lost by logrotate between its copy and its truncation", n, lostByLogrotate)
	return counts
}

// kill -9 in the middle of a file, and a restart: reading resumes at the
// checkpoint, so no line is missing and the lines read twice are exactly
// those past the checkpoint that had already been written out.
func TestFileKill9AndRestart(t *testing.T) {
	dir := t.TempDir()
	app := filepath.Join(dir, "app.log")
	const n = 300000
	var buf bytes.Buffer
	starts := make([]int64, 0, n+1) // offset where each line begins
	for i := range n {
		starts = append(starts, int64(buf.Len()))
		fmt.Fprintf(&buf, "%s %d\n", syslogLine, i)
	}
	starts = append(starts, int64(buf.Len()))
	if err := os.WriteFile(app, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "out.log")
	ck := filepath.Join(dir, "ck.json")
	cfg := filepath.Join(dir, "flowgo.toml")
	if err := os.WriteFile(cfg, []byte(fmt.Sprintf(`
[input]
type = "file"
src = %q
read_from = "beginning"
file_checkpoint_path = %q
file_checkpoint_interval = "100ms"
[output]
type = "file"
file_path = %q
format = "passthrough"
`, app, ck, out)), 0o644); err != nil {
		t.Fatal(err)
	}
	p := startFileFlowgo(t, dir, "run", "-c", cfg)
	if !waitFor(2*fileWait, func() bool { st, err := os.Stat(out); return err == nil && st.Size() > int64(len(buf.Bytes())/5) }) {
		t.Fatalf("flowgo wrote little:\n%s", p.stderr)
	}
	// Freeze flowgo and look: the checkpoint on disk, the output. With the
	// memory queue, a record confirmed (queued) but not yet written is lost
	// by kill -9, as the README says; the disk queue keeps it. To test the
	// input alone, kill at a moment when every line before the checkpoint
	// is written.
	var offset int64
	var before map[int]int
	frozen := false
	for range 100 {
		p.cmd.Process.Signal(syscall.SIGSTOP)
		offset = checkpointOffset(t, ck, app)
		before = seqCounts(t, out)
		complete := true
		for i := 0; i < n && starts[i] < offset; i++ {
			if before[i] == 0 {
				complete = false
				break
			}
		}
		if complete && offset > 0 && offset < starts[n] {
			frozen = true
			break
		}
		p.cmd.Process.Signal(syscall.SIGCONT)
		time.Sleep(20 * time.Millisecond)
	}
	if !frozen {
		t.Fatalf("no moment found with the file half read and everything before the checkpoint written:\n%s", p.stderr)
	}
	p.kill()
	// Lines written while flowgo is down are read too.
	appendLines(t, app, syslogLine, n, n+1000)

	p2 := startFileFlowgo(t, dir, "run", "-c", cfg)
	counts := waitAllSeq(t, out, n+1000, p2.stderr)
	p2.stop()

	wantDup := 0
	for i := 0; i < n; i++ {
		if starts[i] >= offset && before[i] > 0 {
			wantDup++
		}
	}
	dup := 0
	for s, c := range counts {
		switch {
		case c > 2:
			t.Errorf("seq %d delivered %d times", s, c)
		case c == 2:
			dup++
			if starts[s] < offset {
				t.Errorf("seq %d, before the checkpoint (%d), delivered twice", s, offset)
			}
		}
	}
	if dup != wantDup {
		t.Errorf("%d lines delivered twice; want %d, those past the checkpoint already written", dup, wantDup)
	}
	t.Logf("killed at checkpoint %d of %d bytes; %d lines read twice (the unconfirmed tail), none missing", offset, starts[n], dup)
}

func checkpointOffset(t *testing.T, ck, path string) int64 {
	t.Helper()
	data, err := os.ReadFile(ck)
	if err != nil {
		t.Fatal(err)
	}
	var v struct {
		Files []struct {
			Path   string `json:"path"`
			Offset int64  `json:"offset"`
		} `json:"files"`
	}
	if err := json.Unmarshal(data, &v); err != nil {
		t.Fatalf("%v\n%s", err, data)
	}
	for _, f := range v.Files {
		if f.Path == path {
			return f.Offset
		}
	}
	return 0
}

// A Flowgger configuration with the file input runs unchanged: Flowgger's
// keys, its default of reading existing files from their end, and a
// checkpoint file in the working directory named after the pipeline.
func TestFileFlowggerConfigRunsUnchanged(t *testing.T) {
	dir := t.TempDir()
	logs := filepath.Join(dir, "containers", "abc")
	if err := os.MkdirAll(logs, 0o755); err != nil {
		t.Fatal(err)
	}
	app := filepath.Join(logs, "abc-json.log")
	appendLines(t, app, syslogLine, 0, 100) // before the start: skipped, as Flowgger does
	out := filepath.Join(dir, "output.log")
	cfg := filepath.Join(dir, "flowgger.toml")
	if err := os.WriteFile(cfg, []byte(fmt.Sprintf(`[input]
type = "file"
src = "%s/containers/*/*.log"
format = "rfc5424"
queuesize = 1000000

[output]
type = "file"
file_path = "output.log"
file_buffer_size = 512
format = "gelf"
framing = "line"
`, dir)), 0o644); err != nil {
		t.Fatal(err)
	}
	check := exec.Command(buildFlowgoBinary(t), "check", "-c", cfg)
	check.Dir = dir
	if msg, err := check.CombinedOutput(); err != nil {
		t.Fatalf("flowgo check: %v\n%s", err, msg)
	}
	p := startFileFlowgo(t, dir, cfg) // Flowgger's command line: the file as the only argument
	appendLines(t, app, syslogLine, 100, 200)
	later := filepath.Join(dir, "containers", "def", "def-json.log")
	if err := os.MkdirAll(filepath.Dir(later), 0o755); err != nil {
		t.Fatal(err)
	}
	appendLines(t, later, syslogLine, 200, 250) // a new container: read from its beginning
	var got []string
	if !waitFor(2*fileWait, func() bool {
		got = nil
		data, _ := os.ReadFile(out)
		sc := bufio.NewScanner(bytes.NewReader(data))
		for sc.Scan() {
			var m map[string]any
			if err := json.Unmarshal(sc.Bytes(), &m); err == nil {
				got = append(got, fmt.Sprint(m["short_message"]))
			}
		}
		return len(got) >= 150
	}) {
		t.Fatalf("%d GELF records; want 150\n%s", len(got), p.stderr)
	}
	p.stop()
	checkExactlyOnce(t, got, append(lines("seq", 100, 200), lines("seq", 200, 250)...))
	// Named after the pipeline and the input's name (by default the type
	// and src: "file:<src>", made a file name).
	if m, _ := filepath.Glob(filepath.Join(dir, "flowgger.file-*.checkpoints.json")); len(m) != 1 {
		entries, _ := os.ReadDir(dir)
		t.Errorf("want one checkpoint file flowgger.file-*.checkpoints.json in the working directory; it holds %v", entries)
	}
}

// A reload (SIGHUP) that changes the file input stops it, which writes its
// checkpoints and releases its lock, and starts the new one, which resumes
// there: nothing missing, nothing twice.
func TestFileReloadResumes(t *testing.T) {
	dir := t.TempDir()
	app := filepath.Join(dir, "app.log")
	appendString(t, app, "")
	out := filepath.Join(dir, "out.log")
	cfg := filepath.Join(dir, "flowgo.toml")
	write := func(extra string) {
		t.Helper()
		if err := os.WriteFile(cfg, []byte(fmt.Sprintf(`
[input]
type = "file"
src = %q
%s
[output]
type = "file"
file_path = %q
format = "rfc5424"
`, app, extra, out)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("")
	p := startFileFlowgo(t, dir, "run", "-c", cfg)
	w := startWriter(t, app, syslogLine, 5*time.Millisecond)
	time.Sleep(300 * time.Millisecond)
	write(`path_field = "file"`)
	p.cmd.Process.Signal(syscall.SIGHUP)
	if !waitFor(fileWait, func() bool { return strings.Count(p.stderr.String(), `msg="tailing files"`) == 2 }) {
		t.Fatalf("the changed input did not start again:\n%s", p.stderr)
	}
	time.Sleep(300 * time.Millisecond)
	n := w.stop(t)
	counts := waitAllSeq(t, out, n, p.stderr)
	p.stop()
	for s, c := range counts {
		if c > 1 {
			t.Errorf("seq %d delivered %d times", s, c)
		}
	}
	data, _ := os.ReadFile(out)
	if !bytes.Contains(data, []byte(`file="`+app+`"`)) {
		t.Errorf("no record carries the path after the reload")
	}
}

// With the disk queue, Put returns once the batch is on disk (sync =
// "batch"), so the checkpoint never passes a line the queue could lose:
// kill -9 at any moment, several times, and every line arrives.
func TestFileKill9WithDiskQueue(t *testing.T) {
	dir := t.TempDir()
	app := filepath.Join(dir, "app.log")
	const n = 200000
	var buf bytes.Buffer
	for i := range n {
		fmt.Fprintf(&buf, "%s %d\n", syslogLine, i)
	}
	if err := os.WriteFile(app, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "out.log")
	cfg := filepath.Join(dir, "flowgo.toml")
	if err := os.WriteFile(cfg, []byte(fmt.Sprintf(`
[input]
type = "file"
src = %q
read_from = "beginning"
file_checkpoint_interval = "100ms"
[queue]
type = "disk"
path = %q
sync = "batch"
[output]
type = "file"
file_path = %q
format = "passthrough"
`, app, filepath.Join(dir, "queue"), out)), 0o644); err != nil {
		t.Fatal(err)
	}
	written := 0
	for kill := range 3 {
		p := startFileFlowgo(t, dir, "run", "-c", cfg)
		// Kill once more of the output is written, at whatever moment that is.
		target := (kill + 1) * n / 5
		if !waitFor(2*fileWait, func() bool { written = len(seqCounts(t, out)); return written >= target }) {
			t.Fatalf("kill %d: %d distinct lines written; want %d\n%s", kill+1, written, target, p.stderr)
		}
		p.kill()
	}
	appendLines(t, app, syslogLine, n, n+1000)
	p := startFileFlowgo(t, dir, "run", "-c", cfg)
	counts := waitAllSeq(t, out, n+1000, p.stderr)
	p.stop()
	dup := 0
	for _, c := range counts {
		dup += c - 1
	}
	t.Logf("3 kills: none of %d lines missing, %d delivered again (past a checkpoint or replayed by the queue)", n+1000, dup)
}
