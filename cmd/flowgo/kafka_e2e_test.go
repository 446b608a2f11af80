package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/flowgo/flowgo/internal/sample"
)

// The built binary ships stdin to a Kafka wire-protocol peer (kfake, in
// this process), and kcat, librdkafka's client, reads the topic back: every
// record arrives once, keyed by its host, and each value is byte for byte
// what the same config writes to stdout.
func TestKafkaOutputThroughTheBinaryReadBackWithKcat(t *testing.T) {
	kcat, err := exec.LookPath("kcat")
	if err != nil {
		t.Fatal("kcat (librdkafka's command-line client) is not installed: apt-get install kcat (.ci/tools does it)")
	}
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.AllowAutoTopicCreation(), kfake.DefaultNumPartitions(3))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	broker := c.ListenAddrs()[0]

	const n = 5000
	g := sample.New(42)
	var in bytes.Buffer
	for range n {
		in.Write(g.RFC5424(nil))
		in.WriteByte('\n')
	}
	input := "[input]\ntype = \"stdin\"\nformat = \"rfc5424\"\n"
	cfg := writeConfig(t, input+fmt.Sprintf(`[output]
type = "kafka"
format = "gelf"
kafka_brokers = [%q]
kafka_topic = "logs"
kafka_key = "hostname"
`, broker))
	r := flowgo(t, in.Bytes(), "run", "-c", cfg)
	if r.code != 0 || !strings.Contains(r.stderr, "lost=0") {
		t.Fatalf("flowgo run: exit %d; want 0 and lost=0 in the report\n%s", r.code, r.stderr)
	}
	// The same records through the stdout output: what Kafka must hold.
	ref := flowgo(t, in.Bytes(), "run", "-c", writeConfig(t, input+"[output]\ntype = \"stdout\"\nformat = \"gelf\"\n"))
	if ref.code != 0 {
		t.Fatalf("reference run: exit %d\n%s", ref.code, ref.stderr)
	}
	want := strings.Split(strings.TrimSuffix(ref.stdout, "\n"), "\n")
	if len(want) != n {
		t.Fatalf("the reference run wrote %d records; want %d", len(want), n)
	}

	cmd := exec.Command(kcat, "-C", "-b", broker, "-t", "logs", "-o", "beginning", "-e", "-q", "-f", "%p\t%k\t%s\n")
	var out, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("kcat: %v\n%s", err, stderr.Bytes())
	}
	var got []string
	partitionOf := map[string]string{} // host -> partition
	for line := range strings.Lines(out.String()) {
		f := strings.SplitN(strings.TrimSuffix(line, "\n"), "\t", 3)
		if len(f) != 3 {
			t.Fatalf("kcat line %q: want partition, key and value", line)
		}
		part, key, value := f[0], f[1], f[2]
		var m struct {
			Host string `json:"host"`
		}
		if err := json.Unmarshal([]byte(value), &m); err != nil {
			t.Fatalf("value is not GELF JSON: %v: %s", err, value)
		}
		if key != m.Host {
			t.Errorf("record keyed %q holds host %q; kafka_key = \"hostname\" keys by host", key, m.Host)
		}
		if p, ok := partitionOf[key]; ok && p != part {
			t.Errorf("host %q is in partitions %s and %s; one key goes to one partition", key, p, part)
		}
		partitionOf[key] = part
		got = append(got, value)
	}
	if len(partitionOf) < 2 {
		t.Errorf("%d distinct keys; the sample generator has several hosts", len(partitionOf))
	}
	slices.Sort(got)
	slices.Sort(want)
	if len(got) != len(want) {
		t.Fatalf("kcat read %d records; want %d", len(got), len(want))
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("Kafka holds other records than stdout gets; first difference:\n kafka:  %s\n stdout: %s", got[i], want[i])
		}
	}
}

// syslogLines returns n RFC 5424 lines from a few hosts, and the message
// and host of each.
func syslogLines(n int) (string, []string, []string) {
	var in strings.Builder
	msgs, hosts := make([]string, n), make([]string, n)
	for i := range n {
		hosts[i] = fmt.Sprintf("host-%d", i%5)
		msgs[i] = fmt.Sprintf("request %d served in %d ms", i, i%97)
		fmt.Fprintf(&in, "<165>1 2024-05-01T12:00:%02d.123Z %s nginx 42 ID%d - %s\n", i%60, hosts[i], i%7, msgs[i])
	}
	return in.String(), msgs, hosts
}

// startKafka starts kfake, an in-process cluster that speaks the Kafka wire
// protocol, with three partitions per topic.
func startKafka(t *testing.T) []string {
	t.Helper()
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.AllowAutoTopicCreation(), kfake.DefaultNumPartitions(3))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c.ListenAddrs()
}

// consumeKafka reads topic from the start with franz-go (a client
// independent of the output's) until it has want records and no more
// arrive for a moment (so that duplicates would be seen), or until timeout.
func consumeKafka(t *testing.T, addrs []string, topic string, want int, timeout time.Duration) []*kgo.Record {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addrs...), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchMaxWait(100*time.Millisecond), kgo.FetchMaxBytes(64<<20))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	var got []*kgo.Record
	deadline := time.Now().Add(timeout)
	quietUntil := time.Time{}
	for time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		fs := cl.PollFetches(ctx)
		cancel()
		n := 0
		fs.EachRecord(func(r *kgo.Record) { got = append(got, r); n++ })
		for _, e := range fs.Errors() {
			if !errors.Is(e.Err, context.DeadlineExceeded) {
				t.Logf("fetch %s/%d: %v", e.Topic, e.Partition, e.Err)
			}
		}
		if len(got) >= want {
			if n > 0 || quietUntil.IsZero() {
				quietUntil = time.Now().Add(300 * time.Millisecond)
			} else if time.Now().After(quietUntil) {
				break
			}
		}
	}
	return got
}

// checkKafkaGELF checks that the topic holds one GELF message per line,
// keyed by host, in order per host.
func checkKafkaGELF(t *testing.T, addrs []string, topic string, msgs, hosts []string) {
	t.Helper()
	got := consumeKafka(t, addrs, topic, len(msgs), 20*time.Second)
	index := map[string]int{}
	for i, m := range msgs {
		index[m] = i
	}
	seen := map[int]bool{}
	last := map[string]int{}
	for _, r := range got {
		var g struct {
			Host         string `json:"host"`
			ShortMessage string `json:"short_message"`
			Version      string `json:"version"`
		}
		if err := json.Unmarshal(r.Value, &g); err != nil {
			t.Fatalf("message %q is not GELF JSON: %v", r.Value, err)
		}
		i, ok := index[g.ShortMessage]
		if !ok || g.Host != hosts[i] || string(r.Key) != g.Host || g.Version != "1.1" {
			t.Fatalf("message %s (key %q) does not match a line sent", r.Value, r.Key)
		}
		if seen[i] {
			t.Errorf("line %d arrived twice", i)
		}
		seen[i] = true
		if prev, ok := last[g.Host]; ok && i < prev {
			t.Errorf("%s: line %d after line %d", g.Host, i, prev)
		}
		last[g.Host] = i
	}
	if len(seen) != len(msgs) {
		t.Errorf("%d of %d lines arrived", len(seen), len(msgs))
	}
}

func TestKafkaBinaryEndToEnd(t *testing.T) {
	t.Run("stdin RFC 5424 to Kafka GELF", func(t *testing.T) {
		addrs := startKafka(t)
		cfg := writeConfig(t, fmt.Sprintf(`
[input]
type = "stdin"
format = "rfc5424"
[output]
type = "kafka"
format = "gelf"
kafka_brokers = [%q]
kafka_topic = "from-stdin"
kafka_key = "hostname"
kafka_compression = "lz4"
`, addrs[0]))
		in, msgs, hosts := syslogLines(5000)
		if r := flowgo(t, []byte(in), "run", "-c", cfg); r.code != 0 {
			t.Fatalf("flowgo run: exit %d\n%s", r.code, r.stderr)
		}
		checkKafkaGELF(t, addrs, "from-stdin", msgs, hosts)
	})

	t.Run("syslog over TCP to Kafka GELF, drained on SIGTERM", func(t *testing.T) {
		addrs := startKafka(t)
		cfg := writeConfig(t, fmt.Sprintf(`
[input]
type = "tcp"
listen = "127.0.0.1:0"
format = "rfc5424"
[output]
type = "kafka"
format = "gelf"
kafka_brokers = [%q]
kafka_topic = "from-tcp"
kafka_key = "hostname"
`, addrs[0]))
		p, addr := startFlowgo(t, cfg, "tcp")
		in, msgs, hosts := syslogLines(5000)
		sendTCP(t, addr, in)
		// Wait until everything is in Kafka or SIGTERM may race the
		// input's reads; then SIGTERM must drain and exit 0.
		consumeKafka(t, addrs, "from-tcp", len(msgs), 20*time.Second)
		p.stopClean()
		checkKafkaGELF(t, addrs, "from-tcp", msgs, hosts)
	})
}
