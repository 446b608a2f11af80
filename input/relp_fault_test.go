//go:build linux

package input

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// The fault test: rsyslog (omrelp, its action queue on disk) → flowgo, the
// built binary as a child process (relp input) → a file. flowgo is stopped
// five times at random moments while records flow, and started again on
// the same port; rsyslog resends what flowgo had not answered. Afterwards
// every record must be in the file; duplicates are counted and reported.
//
// With SIGTERM flowgo drains: whatever it answered is written before it
// exits, so nothing may be missing whatever the queue. With SIGKILL the
// answer is only as good as the queue: a disk queue with sync = "batch"
// answers once the batch is on disk, so nothing may be missing; the memory
// queue answers once the batch is in memory, and a kill loses what it had
// answered and not yet written. The test uses the disk queue when the
// binary has one (flowgo check accepts [queue] type = "disk") and then
// demands that nothing is missing; with the memory queue it reports the
// loss and checks that it stays within what the queue and one batch per
// kill can hold.

const faultRecords = 20000

func TestRELPFaultRestartsLoseNothing(t *testing.T) {
	needRsyslog(t)
	bin := buildFlowgoBinary(t)
	diskQueue := flowgoHasDiskQueue(t, bin)
	t.Logf("flowgo's queue in this test: %s", map[bool]string{true: `[queue] type = "disk", sync = "batch"`, false: "memory (no disk queue in this binary)"}[diskQueue])
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGKILL} {
		t.Run(sig.String(), func(t *testing.T) {
			runFaultTest(t, bin, sig, diskQueue)
		})
	}
}

func runFaultTest(t *testing.T, bin string, sig syscall.Signal, diskQueue bool) {
	dir := t.TempDir()
	port := freePort(t)
	metricsPort := freePort(t)
	out := filepath.Join(dir, "out.log")
	const queueSize = 4096
	cfg := filepath.Join(dir, "flowgo.toml")
	conf := faultConfig(port, metricsPort, out, queueSize, dir, diskQueue)
	if err := os.WriteFile(cfg, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	fg := &flowgoProc{t: t, bin: bin, cfg: cfg, log: filepath.Join(dir, "flowgo.log"), port: port}
	fg.start()
	t.Cleanup(fg.stop)

	rdir := filepath.Join(dir, "rsyslog")
	os.Mkdir(rdir, 0o700)
	in := filepath.Join(rdir, "in.log")
	writeRecords(t, in, 0, 0)
	// rsyslog drops a message when its action queue stays full for
	// queue.timeoutEnqueue (2 s): with the default queue.size (1000) it
	// did so in most runs while flowgo was down. queue.size holds every
	// record of the test, and impstats shows rsyslog discarded none. A
	// disk queue, not a disk-assisted one (LinkedList with a file name),
	// whose disk part rsyslog 8.2302 can leave unsent (docs/relp.md).
	stats := filepath.Join(rdir, "stats.json")
	r := startRsyslogd(t, rdir, fmt.Sprintf(`module(load="impstats" interval="1" format="json" log.syslog="off" log.file=%q)
`, stats)+rsyslogForward(in, fmt.Sprintf(`target="127.0.0.1" port="%d"
		queue.type="Disk" queue.filename="relpq" queue.size="100000" queue.saveOnShutdown="on"
		action.resumeRetryCount="-1" action.resumeInterval="1"`, port)))

	// The sender: a steady flow, 2,000 records a second for ten seconds;
	// the last 100 once the last flowgo runs, so that its metrics see them.
	const final = 100
	written := make(chan struct{})
	go func() {
		defer close(written)
		const chunk = 40
		for i := 0; i < faultRecords-final; i += chunk {
			writeRecords(t, in, i, min(chunk, faultRecords-final-i))
			time.Sleep(20 * time.Millisecond)
		}
	}()
	// The faults, at random moments while records flow.
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 11))
	for i := range 5 {
		time.Sleep(time.Duration(300+rng.IntN(1700)) * time.Millisecond)
		ids, _ := readIDs(t, out)
		t.Logf("stop %d (%v): %d distinct records in the file", i+1, sig, len(ids))
		fg.signal(sig)
		time.Sleep(time.Duration(rng.IntN(500)) * time.Millisecond)
		fg.start()
	}
	<-written
	writeRecords(t, in, faultRecords-final, final)

	// Wait until every record is there, or nothing new came for 20 s.
	last, lastChange := -1, time.Now()
	ok := waitFor(3*time.Minute, func() bool {
		ids, _ := readIDs(t, out)
		if len(ids) != last {
			last, lastChange = len(ids), time.Now()
		}
		return len(ids) >= faultRecords || time.Since(lastChange) > 20*time.Second
	})

	if n := rsyslogDiscarded(t, stats); n > 0 {
		t.Errorf("rsyslog discarded %d messages itself (its action queue was full for longer than queue.timeoutEnqueue)", n)
	}
	ids, bad := readIDs(t, out)
	missing, dups := 0, 0
	var firstMissing []int
	for i := range faultRecords {
		switch c := ids[i]; {
		case c == 0:
			missing++
			if len(firstMissing) < 10 {
				firstMissing = append(firstMissing, i)
			}
		case c > 1:
			dups += c - 1
		}
	}
	t.Logf("%v x5: %d records sent, %d missing, %d duplicates (%d lines not from the sender)", sig, faultRecords, missing, dups, bad)
	if bad > 0 {
		t.Errorf("%d lines in the output are not records the sender wrote", bad)
	}

	metrics := fg.metrics(metricsPort)
	for _, m := range []string{"flowgo_input_relp_sessions_total", "flowgo_input_relp_frames_acked_total"} {
		if !regexp.MustCompile(`(?m)^` + m + `\{[^}]*type="relp"[^}]*\} [1-9]`).MatchString(metrics) {
			t.Errorf("metrics lack %s > 0:\n%s", m, grepLines(metrics, "relp"))
		}
	}

	switch {
	case missing == 0:
	case sig == syscall.SIGTERM || diskQueue:
		held := rsyslogQueued(t, rdir)
		inRsyslog := 0
		for i := range faultRecords {
			if ids[i] == 0 && held[i] {
				inRsyslog++
			}
		}
		t.Errorf("%d of %d records missing (first: %v; %d of them in rsyslog's queue files); flowgo's log:\n%s\nrsyslogd:\n%s",
			missing, faultRecords, firstMissing, inRsyslog, tail(fg.logText(), 3000), tail(r.output.String(), 3000))
	default:
		// The memory queue: a kill loses what was answered but not
		// written, at most the queue and one batch per connection.
		limit := 5 * (queueSize + 1024)
		t.Logf("memory queue: %d records lost to kill -9 (answered once queued in memory, not yet written; the disk queue makes this 0); first: %v", missing, firstMissing)
		if missing > limit {
			t.Errorf("%d records missing; a memory queue of %d records loses at most %d in five kills", missing, queueSize, limit)
		}
		if !ok {
			t.Logf("the output still grew after 3 minutes")
		}
	}
}

// faultConfig is flowgo's configuration for the fault test.
func faultConfig(port, metricsPort int, out string, queueSize int, dir string, diskQueue bool) string {
	conf := fmt.Sprintf(`[input]
type = "relp"
listen = "127.0.0.1:%d"
format = "rfc5424"
queuesize = %d

[output]
type = "file"
file_path = %q
format = "passthrough"

[metrics]
listen = "127.0.0.1:%d"
`, port, queueSize, out, metricsPort)
	if diskQueue {
		conf += fmt.Sprintf("\n[queue]\ntype = \"disk\"\npath = %q\nsync = \"batch\"\n", filepath.Join(dir, "queue"))
	}
	return conf
}

var (
	buildOnce sync.Once
	builtBin  string
	buildErr  error
)

// buildFlowgoBinary builds cmd/flowgo once per test binary.
func buildFlowgoBinary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "flowgo-relp")
		if err != nil {
			buildErr = err
			return
		}
		builtBin = filepath.Join(dir, "flowgo")
		out, err := exec.Command("go", "build", "-o", builtBin, "github.com/flowgo/flowgo/cmd/flowgo").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return builtBin
}

// flowgoHasDiskQueue reports whether the binary accepts a disk queue.
func flowgoHasDiskQueue(t *testing.T, bin string) bool {
	dir := t.TempDir()
	check := func(disk bool) error {
		cfg := filepath.Join(dir, "check.toml")
		os.WriteFile(cfg, []byte(faultConfig(1, 2, filepath.Join(dir, "out"), 4096, dir, disk)), 0o600)
		return exec.Command(bin, "check", "-c", cfg).Run()
	}
	if err := check(false); err != nil {
		t.Fatalf("flowgo check refuses the memory-queue configuration: %v", err)
	}
	return check(true) == nil
}

// freePort returns a loopback TCP port that was free a moment ago; the
// fault test needs one port across flowgo's restarts.
func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// flowgoProc is the flowgo binary run as a child process.
type flowgoProc struct {
	t    *testing.T
	bin  string
	cfg  string
	log  string
	port int
	cmd  *exec.Cmd
	done chan struct{}
}

func (f *flowgoProc) start() {
	f.t.Helper()
	logf, err := os.OpenFile(f.log, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		f.t.Fatal(err)
	}
	f.cmd = exec.Command(f.bin, "run", "-c", f.cfg)
	f.cmd.Stdout, f.cmd.Stderr = logf, logf
	if err := f.cmd.Start(); err != nil {
		f.t.Fatal(err)
	}
	logf.Close()
	f.done = make(chan struct{})
	cmd, done := f.cmd, f.done
	go func() { cmd.Wait(); close(done) }()
	// Listening: a connection is accepted (and closed at once).
	if !waitFor(30*time.Second, func() bool {
		c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", f.port), time.Second)
		if err == nil {
			c.Close()
		}
		return err == nil
	}) {
		f.t.Fatalf("flowgo did not listen within 30s:\n%s", f.logText())
	}
}

// signal sends sig and waits for the process to end.
func (f *flowgoProc) signal(sig syscall.Signal) {
	f.t.Helper()
	f.cmd.Process.Signal(sig)
	select {
	case <-f.done:
	case <-time.After(time.Minute):
		f.cmd.Process.Kill()
		<-f.done
		f.t.Errorf("flowgo did not end within a minute of %v", sig)
	}
}

func (f *flowgoProc) stop() {
	if f.cmd != nil && f.cmd.ProcessState == nil {
		select {
		case <-f.done:
		default:
			f.signal(syscall.SIGTERM)
		}
	}
}

func (f *flowgoProc) logText() string {
	b, _ := os.ReadFile(f.log)
	return string(b)
}

func (f *flowgoProc) metrics(port int) string {
	f.t.Helper()
	resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/metrics", port))
	if err != nil {
		f.t.Errorf("metrics: %v", err)
		return ""
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

var outID = regexp.MustCompile(`\brec-(\d{6}) some payload`)

// rsyslogQueued returns the records in rsyslog's queue files (relpq.*) in
// dir: those rsyslog still holds, and some it sent already. Said when
// records are missing: those rsyslog held back are not flowgo's to lose.
func rsyslogQueued(t *testing.T, dir string) map[int]bool {
	files, _ := filepath.Glob(filepath.Join(dir, "relpq.[0-9]*"))
	held := map[int]bool{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Errorf("rsyslog's queue file: %v", err)
			continue
		}
		for _, m := range regexp.MustCompile(`rec-(\d{6}) some payload`).FindAllSubmatch(b, -1) {
			id, _ := strconv.Atoi(string(m[1]))
			held[id] = true
		}
	}
	return held
}

// rsyslogDiscarded returns how many messages rsyslog's queues discarded
// themselves, as impstats (format json) last reported them in file:
// discarded.full and discarded.nf, summed over the queues.
func rsyslogDiscarded(t *testing.T, file string) int {
	b, err := os.ReadFile(file)
	if err != nil {
		t.Errorf("rsyslog's impstats: %v", err)
		return 0
	}
	last := map[string]int{}
	for _, l := range strings.Split(string(b), "\n") {
		i := strings.IndexByte(l, '{') // after impstats' timestamp
		if i < 0 {
			continue
		}
		var q struct {
			Name   string `json:"name"`
			Origin string `json:"origin"`
			Full   int    `json:"discarded.full"`
			NF     int    `json:"discarded.nf"`
		}
		if json.Unmarshal([]byte(l[i:]), &q) == nil && q.Origin == "core.queue" {
			last[q.Name] = q.Full + q.NF
		}
	}
	n := 0
	for _, v := range last {
		n += v
	}
	return n
}

// readIDs counts the records in the output file by id; bad counts lines
// without one.
func readIDs(t *testing.T, path string) (ids map[int]int, bad int) {
	ids = map[int]int{}
	f, err := os.Open(path)
	if err != nil {
		return ids, 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		// A line torn by a kill runs into the next one: count every id.
		ms := outID.FindAllSubmatch(sc.Bytes(), -1)
		if ms == nil {
			bad++
		}
		for _, m := range ms {
			id, _ := strconv.Atoi(string(m[1]))
			ids[id]++
		}
	}
	return ids, bad
}

func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

func tail(s string, n int) string {
	if len(s) > n {
		return "..." + s[len(s)-n:]
	}
	return s
}
