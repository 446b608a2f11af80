package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

var (
	kfakedOnce sync.Once
	kfakedBin  string
	kfakedErr  error
)

// buildKfaked builds internal/kfaked, a Kafka wire-protocol broker that
// runs as a process of its own so that it can be killed and restarted.
func buildKfaked(t *testing.T) string {
	kfakedOnce.Do(func() {
		kfakedBin = filepath.Join(filepath.Dir(flowgoBin), "kfaked")
		out, err := exec.Command("go", "build", "-o", kfakedBin, "../../internal/kfaked").CombinedOutput()
		if err != nil {
			kfakedErr = fmt.Errorf("building kfaked: %v\n%s", err, out)
		}
	})
	if kfakedErr != nil {
		t.Fatal(kfakedErr)
	}
	return kfakedBin
}

// proc is a child process the test starts, kills and restarts.
type proc struct {
	t    *testing.T
	name string
	args []string
	cmd  *exec.Cmd
	log  *bytes.Buffer
	mu   sync.Mutex
	logs []string // stderr of every run
}

func (p *proc) start() {
	p.t.Helper()
	p.cmd = exec.Command(p.args[0], p.args[1:]...)
	p.log = new(bytes.Buffer)
	p.cmd.Stdout, p.cmd.Stderr = p.log, p.log
	if err := p.cmd.Start(); err != nil {
		p.t.Fatalf("starting %s: %v", p.name, err)
	}
}

// kill ends the process with sig and waits for it.
func (p *proc) kill(sig syscall.Signal) {
	if p.cmd == nil {
		return
	}
	p.cmd.Process.Signal(sig)
	p.cmd.Wait()
	p.mu.Lock()
	p.logs = append(p.logs, p.log.String())
	p.mu.Unlock()
	p.cmd = nil
}

func freeTCPPort(t *testing.T) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// waitListening waits until addr accepts TCP connections.
func waitListening(t *testing.T, addr string, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("nothing listens on %s after %v", addr, within)
}

// The disk queue's promise, from the outside: a sender writes numbered
// records over TCP into flowgo (disk queue, sync = "batch") → Kafka. flowgo
// is killed with SIGKILL at random moments, more than ten times, each time
// after the sender has paused for twice sync_interval; the broker, a
// process of its own with a data directory, is killed and down for part
// of the run. A second client (franz-go) then reads the topic, and kcat
// again: every record sent is there, duplicates are counted, and the test
// fails on any record missing.
func TestDiskQueueSurvivesKillNineAndABrokerOutage(t *testing.T) {
	kcat, err := exec.LookPath("kcat")
	if err != nil {
		t.Fatal("kcat is not installed: apt-get install kcat (.ci/tools does it)")
	}
	dir := t.TempDir()
	brokerAddr := fmt.Sprintf("127.0.0.1:%d", freeTCPPort(t))
	_, brokerPort, _ := net.SplitHostPort(brokerAddr)
	broker := &proc{t: t, name: "kfaked", args: []string{buildKfaked(t), "-port", brokerPort,
		"-data-dir", filepath.Join(dir, "kafka"), "-topic", "dq", "-partitions", "3"}}
	broker.start()
	defer broker.kill(syscall.SIGKILL)
	waitListening(t, brokerAddr, 20*time.Second)

	listen := fmt.Sprintf("127.0.0.1:%d", freeTCPPort(t))
	const syncInterval = 200 * time.Millisecond
	cfg := writeConfig(t, fmt.Sprintf(`
[input]
type = "tcp"
listen = %q
format = "rfc5424"
[output]
type = "kafka"
format = "passthrough"
kafka_brokers = [%q]
kafka_topic = "dq"
kafka_key = "hostname"
shutdown_timeout = "5s"
[queue]
type = "disk"
path = %q
sync = "batch"
sync_interval = "%s"
max_bytes = 67108864
`, listen, brokerAddr, filepath.Join(dir, "queue"), syncInterval))
	fg := &proc{t: t, name: "flowgo", args: []string{flowgoBin, "run", "-c", cfg}}
	fg.start()
	defer fg.kill(syscall.SIGKILL)
	waitListening(t, listen, 20*time.Second)

	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 1))
	t.Logf("random seed moments from %v", time.Now())
	sent := 0
	send := func(d time.Duration) {
		// A steady rate, one connection; records the sender finished
		// writing before a pause must all arrive.
		c, err := net.Dial("tcp", listen)
		if err != nil {
			t.Fatalf("connecting to flowgo: %v", err)
		}
		defer c.Close()
		w := bufio.NewWriter(c)
		end := time.Now().Add(d)
		tick := time.NewTicker(5 * time.Millisecond)
		defer tick.Stop()
		for time.Now().Before(end) {
			for range 100 { // 20,000 records/s
				fmt.Fprintf(w, "<13>1 2026-12-07T10:00:00.000Z host%d app - - - seq=%09d\n", sent%7, sent)
				sent++
			}
			if err := w.Flush(); err != nil {
				t.Fatalf("sending: %v", err)
			}
			<-tick.C
		}
	}
	const kills = 12
	brokerDown := false
	for k := range kills {
		send(time.Duration(200+rng.IntN(800)) * time.Millisecond)
		time.Sleep(2 * syncInterval) // read and synced before the kill
		fg.kill(syscall.SIGKILL)
		switch k {
		case 3:
			broker.kill(syscall.SIGKILL)
			brokerDown = true
		case 7:
			broker.start()
			waitListening(t, brokerAddr, 20*time.Second)
			brokerDown = false
		}
		fg.start()
		waitListening(t, listen, 20*time.Second)
	}
	if brokerDown {
		t.Fatal("the broker should be up again by now")
	}
	send(500 * time.Millisecond)
	t.Logf("sent %d records through %d kills of flowgo and one of the broker", sent, kills)

	// Wait until a second client sees every record, then stop flowgo.
	seen := map[int]int{}
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokerAddr), kgo.ConsumeTopics("dq"),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	seqRE := regexp.MustCompile(`seq=(\d{9})$`)
	deadline := time.Now().Add(90 * time.Second)
	for len(seen) < sent && time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		fetches := cl.PollFetches(ctx)
		cancel()
		fetches.EachRecord(func(r *kgo.Record) {
			m := seqRE.FindSubmatch(r.Value)
			if m == nil {
				t.Fatalf("a record that was never sent: %q", r.Value)
			}
			n, _ := strconv.Atoi(string(m[1]))
			seen[n]++
		})
	}
	fg.kill(syscall.SIGTERM)

	missing := 0
	for i := range sent {
		if seen[i] == 0 {
			if missing < 10 {
				t.Errorf("record %d is missing", i)
			}
			missing++
		}
	}
	dups := 0
	for _, c := range seen {
		dups += c - 1
	}
	replayed := 0
	for _, l := range fg.logs {
		for _, m := range regexp.MustCompile(`replayed the records.*records=(\d+)`).FindAllStringSubmatch(l, -1) {
			n, _ := strconv.Atoi(m[1])
			replayed += n
		}
	}
	t.Logf("%d records sent, %d distinct in Kafka, %d missing, %d duplicates; flowgo reported %d replayed",
		sent, len(seen), missing, dups, replayed)
	if missing > 0 {
		t.Fatalf("%d of %d records missing after %d kills\nlast flowgo log:\n%s", missing, sent, kills, lastLines(fg.logs, 40))
	}

	// kcat, librdkafka's client, reads the same.
	out, err := exec.Command(kcat, "-C", "-b", brokerAddr, "-t", "dq", "-o", "beginning", "-e", "-q", "-f", "%s\n").Output()
	if err != nil {
		t.Fatalf("kcat: %v", err)
	}
	kcatSeen := map[string]bool{}
	for line := range strings.Lines(string(out)) {
		if m := seqRE.FindStringSubmatch(strings.TrimSuffix(line, "\n")); m != nil {
			kcatSeen[m[1]] = true
		}
	}
	if len(kcatSeen) != sent {
		t.Errorf("kcat reads %d distinct records; want %d", len(kcatSeen), sent)
	}
}

func lastLines(logs []string, n int) string {
	if len(logs) == 0 {
		return ""
	}
	lines := strings.Split(strings.TrimSpace(logs[len(logs)-1]), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}
