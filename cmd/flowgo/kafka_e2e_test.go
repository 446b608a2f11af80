package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os/exec"
	"slices"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kfake"

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
