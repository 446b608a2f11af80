package output_test

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/flowgo/flowgo"
	"github.com/flowgo/flowgo/config"
	"github.com/flowgo/flowgo/decoder"
	"github.com/flowgo/flowgo/encoder"
	"github.com/flowgo/flowgo/pipeline"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Until the real codecs are merged, the pipeline tests use two tiny ones:
// "kafkatestline" takes the first word of a line as the hostname and the
// line as the message; "kafkatestmsg" writes the message back.
type kafkaTestLine struct{}

func (kafkaTestLine) Decode(frame []byte, r *flowgo.Record, a *flowgo.Arena) error {
	if len(frame) == 0 {
		return decoder.Errorf("kafkatestline", 1, "empty line")
	}
	r.Msg = a.String(frame)
	r.FullMsg = r.Msg
	if host, _, ok := strings.Cut(r.Msg, " "); ok {
		r.Hostname = host
	}
	return nil
}

type kafkaTestMsg struct{}

func (kafkaTestMsg) Encode(dst []byte, r *flowgo.Record) ([]byte, error) {
	return append(dst, r.Msg...), nil
}

func init() {
	decoder.Register("kafkatestline", func(*config.Section) (decoder.Decoder, error) { return kafkaTestLine{}, nil })
	encoder.Register("kafkatestmsg", func(*config.Section) (encoder.Encoder, error) { return kafkaTestMsg{}, nil })
}

func buildPipeline(t *testing.T, src string, stdin io.Reader) *pipeline.Pipeline {
	t.Helper()
	f, err := config.Parse("flowgo.toml", src)
	if err != nil {
		t.Fatal(err)
	}
	p, err := pipeline.Build(f, pipeline.Options{Stdin: stdin, Log: quietLog, Workers: 1})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// feeder writes numbered lines into a pipe, as a log source would, and
// counts those the pipeline took.
type feeder struct {
	w       *io.PipeWriter
	written atomic.Int64
}

func (f *feeder) feed(from, to int, hosts int, pause time.Duration) error {
	var buf bytes.Buffer
	for i := from; i < to; {
		buf.Reset()
		n := 0
		for ; i < to && n < 50; i, n = i+1, n+1 {
			fmt.Fprintf(&buf, "host-%d record %d\n", i%hosts, i)
		}
		if _, err := f.w.Write(buf.Bytes()); err != nil {
			return err
		}
		f.written.Add(int64(n))
		time.Sleep(pause)
	}
	return nil
}

// checkAtLeastOnce checks that every line 0..n-1 arrived, and that for each
// host the first copies of its lines arrived in order.
func checkAtLeastOnce(t *testing.T, got []*kgo.Record, n int) (dups int) {
	t.Helper()
	seen := make([]int, n)
	lastFirst := map[string]int{}
	for _, r := range got {
		var host string
		var i int
		if _, err := fmt.Sscanf(string(r.Value), "%s record %d", &host, &i); err != nil || i < 0 || i >= n {
			t.Fatalf("unexpected record %q", r.Value)
		}
		if string(r.Key) != host {
			t.Errorf("record %q has key %q", r.Value, r.Key)
		}
		if seen[i] == 0 {
			if prev, ok := lastFirst[host]; ok && i < prev {
				t.Errorf("%s: record %d first arrived after record %d (order lost)", host, i, prev)
			}
			lastFirst[host] = i
		} else {
			dups++
		}
		seen[i]++
	}
	missing := 0
	for i, c := range seen {
		if c == 0 {
			if missing < 3 {
				t.Errorf("record %d never arrived", i)
			}
			missing++
		}
	}
	if missing > 0 {
		t.Errorf("%d of %d records never arrived", missing, n)
	}
	return dups
}

func TestKafkaPipelineSurvivesBrokerRestartWithBoundedMemory(t *testing.T) {
	dir := t.TempDir()
	port := freePort(t)
	newCluster := func() *kfake.Cluster {
		return startCluster(t, kfake.Ports(port), kfake.DataDir(dir), kfake.SeedTopics(3, "restart"))
	}
	c := newCluster()
	addr := c.ListenAddrs()[0]
	pr, pw := io.Pipe()
	const queueSize = 3000
	p := buildPipeline(t, fmt.Sprintf(`
[input]
type = "stdin"
format = "kafkatestline"
queuesize = %d
[output]
type = "kafka"
format = "kafkatestmsg"
kafka_brokers = [%q]
kafka_topic = "restart"
kafka_key = "hostname"
kafka_compression = "lz4"
`, queueSize, addr), pr)
	done := make(chan error, 1)
	go func() { done <- p.Run(context.Background()) }()

	// The source writes steadily; the broker stops in the middle of the
	// stream, with writes in flight.
	f := &feeder{w: pw}
	const total = 20000
	fed := make(chan error, 1)
	go func() { fed <- f.feed(0, total, 40, time.Millisecond) }()
	for deadline := time.Now().Add(10 * time.Second); p.Stats().Sent.Load() < 5000; {
		if time.Now().After(deadline) {
			t.Fatalf("only %d records sent before the outage", p.Stats().Sent.Load())
		}
		time.Sleep(5 * time.Millisecond)
	}
	c.Close()
	sentAtStop := p.Stats().Sent.Load()
	var heapBefore runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&heapBefore)

	// While the broker is away the queue fills and the input stops
	// reading, so the source's writes block.
	time.Sleep(3 * time.Second)
	select {
	case err := <-done:
		t.Fatalf("pipeline stopped while the broker was away: %v", err)
	case err := <-fed:
		t.Fatalf("the source wrote everything while the broker was away (err %v): no backpressure", err)
	default:
	}
	recs, _, maxRecs, _ := p.Queue().Usage()
	if recs > maxRecs {
		t.Errorf("queue holds %d records; its budget is %d", recs, maxRecs)
	}
	// What the pipeline took beyond what was sent: the queue, plus a few
	// input chunks in hand (the stdin input holds up to 3 with one worker,
	// and its splitter a buffer).
	accepted := f.written.Load() - sentAtStop
	if limit := int64(queueSize + 5*pipeline.DefaultBatchRecords); accepted > limit {
		t.Errorf("%d records accepted while the broker was away; want at most %d", accepted, limit)
	}
	var heapDuring runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&heapDuring)
	if grew := int64(heapDuring.HeapInuse) - int64(heapBefore.HeapInuse); grew > 32<<20 {
		t.Errorf("heap grew by %d MB while the broker was away", grew>>20)
	}
	if st := p.Stats(); st.Retries.Load() == 0 {
		t.Error("no write was retried while the broker was away")
	}

	newCluster()
	if err := <-fed; err != nil {
		t.Fatal(err)
	}
	pw.Close() // end of input: the pipeline drains and stops
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("pipeline did not finish after the broker came back")
	}
	st := p.Stats()
	if st.Received.Load() != total || st.Sent.Load() != total || st.Lost.Load() != 0 || st.Failed.Load() != 0 {
		t.Errorf("received %d sent %d lost %d failed %d; want %d, %d, 0, 0",
			st.Received.Load(), st.Sent.Load(), st.Lost.Load(), st.Failed.Load(), total, total)
	}
	got := consume(t, []string{addr}, "restart", total, 20*time.Second)
	dups := checkAtLeastOnce(t, got.records, total)
	t.Logf("%d records, %d duplicates, %d write retries", total, dups, st.Retries.Load())
}

func TestKafkaPipelineBrokerDownAtStart(t *testing.T) {
	port := freePort(t)
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	pr, pw := io.Pipe()
	p := buildPipeline(t, fmt.Sprintf(`
[input]
type = "stdin"
format = "kafkatestline"
[output]
type = "kafka"
format = "kafkatestmsg"
kafka_brokers = [%q]
kafka_topic = "early"
kafka_key = "hostname"
`, addr), pr)
	done := make(chan error, 1)
	go func() { done <- p.Run(context.Background()) }()
	f := &feeder{w: pw}
	const total = 3000
	go func() {
		f.feed(0, total, 7, 0)
		pw.Close()
	}()
	time.Sleep(700 * time.Millisecond)
	select {
	case err := <-done:
		t.Fatalf("pipeline stopped with no broker: %v", err)
	default:
	}
	if p.Stats().Sent.Load() != 0 {
		t.Fatal("records counted as sent with no broker")
	}
	startCluster(t, kfake.Ports(port))
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("pipeline did not deliver after the broker came up")
	}
	if st := p.Stats(); st.Sent.Load() != total || st.Lost.Load() != 0 {
		t.Errorf("sent %d lost %d; want %d and 0", st.Sent.Load(), st.Lost.Load(), total)
	}
	got := consume(t, []string{addr}, "early", total, 10*time.Second)
	checkAtLeastOnce(t, got.records, total)
}

func TestKafkaPipelineDeadLettersTooLargeRecords(t *testing.T) {
	c := startCluster(t)
	addr := c.ListenAddrs()[0]
	dead := filepath.Join(t.TempDir(), "kafka.dead")
	big := "host-0 record 1 " + strings.Repeat("x", 3000)
	in := "host-0 record 0\n" + big + "\nhost-0 record 2\n"
	p := buildPipeline(t, fmt.Sprintf(`
[input]
type = "stdin"
format = "kafkatestline"
[output]
type = "kafka"
format = "kafkatestmsg"
kafka_brokers = [%q]
kafka_topic = "dead"
kafka_key = "hostname"
kafka_max_message_bytes = 2048
dead_letter_file = %q
`, addr, dead), strings.NewReader(in))
	if err := p.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(dead); string(got) != big+"\n" {
		t.Errorf("dead-letter file holds %q...; want the large record", got[:min(len(got), 40)])
	}
	st := p.Stats()
	if st.Sent.Load() != 2 || st.Failed.Load() != 1 || st.Lost.Load() != 0 {
		t.Errorf("sent %d failed %d lost %d; want 2, 1, 0", st.Sent.Load(), st.Failed.Load(), st.Lost.Load())
	}
	got := consume(t, []string{addr}, "dead", 2, 5*time.Second)
	if len(got.records) != 2 || string(got.records[0].Value) != "host-0 record 0" || string(got.records[1].Value) != "host-0 record 2" {
		t.Errorf("topic holds %d records; want records 0 and 2 in order", len(got.records))
	}
}

// kcatRecord is one message as kcat printed it.
type kcatRecord struct {
	partition  int
	offset     int64
	key, value []byte // nil when null
}

// readKcat parses `kcat -f '%p|%o|%K|%k|%S|%s\n'` output, by length so that
// binary keys and values survive.
func readKcat(out []byte) ([]kcatRecord, error) {
	r := bufio.NewReader(bytes.NewReader(out))
	field := func() (string, error) {
		s, err := r.ReadString('|')
		return strings.TrimSuffix(s, "|"), err
	}
	bytesOf := func(n int) ([]byte, error) {
		if n < 0 {
			return nil, nil
		}
		b := make([]byte, n)
		_, err := io.ReadFull(r, b)
		return b, err
	}
	var recs []kcatRecord
	for {
		var rec kcatRecord
		p, err := field()
		if err == io.EOF && p == "" {
			return recs, nil
		}
		if err != nil {
			return recs, fmt.Errorf("partition: %w", err)
		}
		var o, kl, vl string
		if o, err = field(); err == nil {
			kl, err = field()
		}
		if err != nil {
			return recs, err
		}
		var klen, vlen int
		fmt.Sscan(p, &rec.partition)
		fmt.Sscan(o, &rec.offset)
		fmt.Sscan(kl, &klen)
		if rec.key, err = bytesOf(klen); err != nil {
			return recs, err
		}
		if c, _ := r.ReadByte(); c != '|' {
			return recs, fmt.Errorf("offset %d: no '|' after the key", rec.offset)
		}
		if vl, err = field(); err != nil {
			return recs, err
		}
		fmt.Sscan(vl, &vlen)
		if rec.value, err = bytesOf(vlen); err != nil {
			return recs, err
		}
		if c, _ := r.ReadByte(); c != '\n' {
			return recs, fmt.Errorf("offset %d: no newline after the value", rec.offset)
		}
		recs = append(recs, rec)
	}
}

func TestKafkaReadBackWithKcat(t *testing.T) {
	kcat, err := exec.LookPath("kcat")
	if err != nil {
		t.Fatal("kcat (librdkafka's command-line client) is not installed: apt-get install kcat (test.sh does it)")
	}
	files := makeTLSFiles(t)
	tests := []struct {
		name, codec string
		tls         bool
	}{
		{"lz4 in plain text", "lz4", false},
		{"zstd over TLS", "zstd", true},
		{"gzip", "gzip", false},
		{"snappy", "snappy", false},
		{"no compression", "none", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var opts []kfake.Opt
			keys := ""
			args := []string{"-C", "-e", "-o", "beginning", "-q", "-X", "check.crcs=true", "-f", `%p|%o|%K|%k|%S|%s\n`}
			if tt.tls {
				opts = append(opts, kfake.TLS(files.server))
				keys = fmt.Sprintf("kafka_tls = true\nkafka_tls_ca_file = %q\n", files.ca)
				args = append(args, "-X", "security.protocol=ssl", "-X", "ssl.ca.location="+files.ca)
			}
			c := startCluster(t, opts...)
			addrs := c.ListenAddrs()
			const topic = "kcat"
			o := newKafka(t, fmt.Sprintf("kafka_brokers = %s\nkafka_topic = %q\nkafka_key = \"hostname\"\nkafka_compression = %q\n%s",
				brokersTOML(addrs), topic, tt.codec, keys))
			values := testValues(99, 500)
			hosts := make([]string, len(values))
			for i := range hosts {
				hosts[i] = []string{"web|1", "db\n2", "", "cache"}[i%4]
			}
			write(t, o, batchOf(values[:100], hosts[:100]))
			write(t, o, batchOf(values[100:], hosts[100:]))

			cmd := exec.Command(kcat, append([]string{"-b", strings.Join(addrs, ","), "-t", topic}, args...)...)
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			out, err := cmd.Output()
			if err != nil {
				t.Fatalf("kcat: %v\n%s", err, stderr.Bytes())
			}
			recs, err := readKcat(out)
			if err != nil {
				t.Fatalf("parsing kcat's output: %v", err)
			}
			index := map[string]int{}
			for i, v := range values {
				index[string(v)] = i
			}
			seen := map[int]bool{}
			last := map[int]int{}
			for _, r := range recs {
				i, ok := index[string(r.value)]
				if !ok {
					t.Fatalf("kcat read a value that was never sent (partition %d offset %d, %d bytes)", r.partition, r.offset, len(r.value))
				}
				if seen[i] {
					t.Errorf("record %d read twice", i)
				}
				seen[i] = true
				if hosts[i] == "" && r.key != nil || hosts[i] != "" && string(r.key) != hosts[i] {
					t.Errorf("record %d: key %q; want %q", i, r.key, hosts[i])
				}
				if prev, ok := last[r.partition]; ok && i < prev {
					t.Errorf("partition %d: record %d after record %d", r.partition, i, prev)
				}
				last[r.partition] = i
			}
			if len(seen) != len(values) {
				t.Errorf("kcat read %d distinct records; want %d", len(seen), len(values))
			}
		})
	}
}

func TestKafkaEffectiveConfigShowsDefaultsAndMasksThePassword(t *testing.T) {
	p := buildPipeline(t, `
[input]
type = "stdin"
format = "kafkatestline"
[output]
type = "kafka"
format = "kafkatestmsg"
kafka_brokers = ["kafka1:9092"]
kafka_topic = "logs"
kafka_sasl_mechanism = "scram-sha-512"
kafka_sasl_username = "flowgo"
kafka_sasl_password = "s3cret"
`, strings.NewReader(""))
	d := p.Describe()
	for _, want := range []string{
		"kafka_acks = -1", "kafka_timeout = 60000", "kafka_threads = 4", "kafka_coalesce = 1000",
		`kafka_compression = "none"`, `kafka_key = "none"`, `kafka_client_id = "flowgo"`,
		"kafka_max_message_bytes = 1000000", "kafka_tls = false", "kafka_tls_verify = true",
		`kafka_sasl_password = "********"`, "framing noop",
	} {
		if !strings.Contains(d, want) {
			t.Errorf("Describe() lacks %s:\n%s", want, d)
		}
	}
	if strings.Contains(d, "s3cret") {
		t.Error("Describe() shows the SASL password")
	}
}
