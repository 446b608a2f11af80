package output_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"os"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/flowgo/flowgo"
	"github.com/flowgo/flowgo/config"
	"github.com/flowgo/flowgo/internal/testcerts"
	"github.com/flowgo/flowgo/output"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/sasl"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"
)

// The kafka output is tested against kfake, an in-process cluster that
// speaks the Kafka wire protocol, and read back with franz-go's kgo, a
// client independent of kafka-go.

var quietLog = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError}))

func startCluster(t testing.TB, opts ...kfake.Opt) *kfake.Cluster {
	t.Helper()
	base := []kfake.Opt{kfake.NumBrokers(1), kfake.AllowAutoTopicCreation(), kfake.DefaultNumPartitions(3)}
	c, err := kfake.NewCluster(append(base, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

func brokersTOML(addrs []string) string {
	quoted := make([]string, len(addrs))
	for i, a := range addrs {
		quoted[i] = fmt.Sprintf("%q", a)
	}
	return "[" + strings.Join(quoted, ", ") + "]"
}

// kafkaSection parses the keys of an [output] table of type kafka.
func kafkaSection(t testing.TB, keys string) *config.File {
	t.Helper()
	f, err := config.Parse("flowgo.toml", "[output]\ntype = \"kafka\"\n"+keys)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// newKafka builds a kafka output from keys; it is closed when t ends.
func newKafka(t testing.TB, keys string) output.Output {
	t.Helper()
	o, err := buildKafka(kafkaSection(t, keys))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { o.Close(context.Background()) })
	return o
}

func buildKafka(f *config.File) (output.Output, error) {
	typ, _, err := output.Lookup("kafka")
	if err != nil {
		return nil, err
	}
	return typ.New(output.Config{Section: f.Output, Format: "gelf", Framing: flowgo.FramingNoop, Log: quietLog})
}

// testBatchIDs gives the tests' batches delivery identities, as the
// pipeline does: a Write of the same ID is a retry.
var testBatchIDs atomic.Uint64

// batchOf builds an encoded batch: frame i is values[i], from a record
// whose hostname is hosts[i] (when hosts is not nil).
func batchOf(values [][]byte, hosts []string) *flowgo.Batch {
	b := &flowgo.Batch{Source: "test", ID: testBatchIDs.Add(1)}
	for i, v := range values {
		r := b.Next()
		if hosts != nil {
			r.Hostname = hosts[i]
		}
		b.Data = append(b.Data, v...)
		b.Ends = append(b.Ends, len(b.Data))
		b.Index = append(b.Index, i)
	}
	return b
}

// testValues returns n distinct values: a 4-byte index, then text or
// random bytes (NUL, LF and '|' included), 4 to 1500 bytes long, and every
// 97th one 100 to 300 KB.
func testValues(seed uint64, n int) [][]byte {
	const text = "host=web-1 app=nginx status=200 path=/index.html\n|"
	rng := rand.New(rand.NewPCG(seed, 7))
	out := make([][]byte, n)
	for i := range out {
		size := 4 + rng.IntN(1500)
		if i%97 == 50 {
			size = 100<<10 + rng.IntN(200<<10)
		}
		v := binary.BigEndian.AppendUint32(make([]byte, 0, size), uint32(i))
		if i%2 == 0 {
			for len(v) < size {
				v = append(v, text[rng.IntN(len(text))])
			}
		} else {
			for len(v) < size {
				v = append(v, byte(rng.UintN(256)))
			}
		}
		out[i] = v
	}
	return out
}

// consumed is what a kgo consumer read from a topic.
type consumed struct {
	records []*kgo.Record
	codecs  map[uint8]int // compression codec of each batch read
}

type batchHook struct {
	mu     sync.Mutex
	codecs map[uint8]int
}

func (h *batchHook) OnFetchBatchRead(_ kgo.BrokerMetadata, _ string, _ int32, m kgo.FetchBatchMetrics) {
	h.mu.Lock()
	h.codecs[m.CompressionType]++
	h.mu.Unlock()
}

// consume reads topic from the start until it has want records and no
// more arrive for a moment (so that duplicates would be seen), or until
// timeout.
func consume(t testing.TB, addrs []string, topic string, want int, timeout time.Duration, extra ...kgo.Opt) consumed {
	t.Helper()
	hook := &batchHook{codecs: map[uint8]int{}}
	opts := append([]kgo.Opt{
		kgo.SeedBrokers(addrs...),
		kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchMaxWait(100 * time.Millisecond),
		kgo.FetchMaxBytes(64 << 20),
		kgo.WithHooks(hook),
	}, extra...)
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	var out consumed
	deadline := time.Now().Add(timeout)
	quietUntil := time.Time{}
	for time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		fs := cl.PollFetches(ctx)
		cancel()
		n := 0
		fs.EachRecord(func(r *kgo.Record) { out.records = append(out.records, r); n++ })
		for _, e := range fs.Errors() {
			if !errors.Is(e.Err, context.DeadlineExceeded) {
				t.Logf("fetch %s/%d: %v", e.Topic, e.Partition, e.Err)
			}
		}
		if len(out.records) >= want {
			if n > 0 || quietUntil.IsZero() {
				quietUntil = time.Now().Add(300 * time.Millisecond)
			} else if time.Now().After(quietUntil) {
				break
			}
		}
	}
	hook.mu.Lock()
	out.codecs = hook.codecs
	hook.mu.Unlock()
	return out
}

func write(t testing.TB, o output.Output, b *flowgo.Batch) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := o.Write(ctx, b); err != nil {
		t.Fatalf("Write: %v", err)
	}
}

// checkExactlyOnce checks that got holds every value of want once, byte
// for byte, and that each partition holds its values in the order sent.
func checkExactlyOnce(t *testing.T, got []*kgo.Record, want [][]byte) {
	t.Helper()
	index := make(map[string]int, len(want))
	for i, v := range want {
		index[string(v)] = i
	}
	seen := make([]int, len(want))
	last := map[int32]int{}
	for _, r := range got {
		i, ok := index[string(r.Value)]
		if !ok {
			t.Fatalf("partition %d offset %d: a value that was never sent (%d bytes, %q...)", r.Partition, r.Offset, len(r.Value), r.Value[:min(len(r.Value), 16)])
		}
		seen[i]++
		if prev, ok := last[r.Partition]; ok && i < prev {
			t.Errorf("partition %d: record %d stored after record %d (order lost)", r.Partition, i, prev)
		}
		last[r.Partition] = i
	}
	missing, dup := 0, 0
	for i, n := range seen {
		if n == 0 {
			missing++
			if missing <= 3 {
				t.Errorf("record %d (%d bytes) never arrived", i, len(want[i]))
			}
		}
		if n > 1 {
			dup++
		}
	}
	if missing > 0 || dup > 0 {
		t.Errorf("%d of %d records missing, %d duplicated", missing, len(want), dup)
	}
}

func TestKafkaDeliversEveryRecordByteIdenticalPerCodecAndAcks(t *testing.T) {
	c := startCluster(t, kfake.NumBrokers(3))
	addrs := c.ListenAddrs()
	codecs := []struct {
		name string
		id   uint8
	}{{"none", 0}, {"gzip", 1}, {"snappy", 2}, {"LZ4", 3}, {"zstd", 4}}
	for _, codec := range codecs {
		for _, acks := range []int{-1, 1, 0} {
			t.Run(fmt.Sprintf("compression %s, acks %d", codec.name, acks), func(t *testing.T) {
				topic := fmt.Sprintf("logs-%s-%d", strings.ToLower(codec.name), acks+1)
				o := newKafka(t, fmt.Sprintf("kafka_brokers = %s\nkafka_topic = %q\nkafka_acks = %d\nkafka_compression = %q\nkafka_coalesce = 200\n",
					brokersTOML(addrs), topic, acks, codec.name))
				values := testValues(uint64(acks+10)*uint64(codec.id+1), 1600)
				values = append(values, []byte{}) // an empty message stays a message
				// Batches of 1, 600 and the rest, as inputs hand them over.
				for _, cut := range [][2]int{{0, 1}, {1, 601}, {601, len(values)}} {
					write(t, o, batchOf(values[cut[0]:cut[1]], nil))
				}
				got := consume(t, addrs, topic, len(values), 20*time.Second)
				if acks == 0 {
					// Best effort: nothing was confirmed, so only check that
					// what arrived is what was sent, unchanged.
					sent := map[string]bool{}
					for _, v := range values {
						sent[string(v)] = true
					}
					for _, r := range got.records {
						if !sent[string(r.Value)] {
							t.Fatalf("acks 0: partition %d offset %d holds a value that was never sent", r.Partition, r.Offset)
						}
					}
					t.Logf("acks 0: %d of %d records arrived", len(got.records), len(values))
				} else {
					checkExactlyOnce(t, got.records, values)
				}
				for _, r := range got.records {
					if r.Key != nil {
						t.Fatalf("record with key %q; kafka_key is none", r.Key)
					}
				}
				if len(got.codecs) != 1 || got.codecs[codec.id] == 0 {
					t.Errorf("batches read per codec id = %v; want all %d (%s)", got.codecs, codec.id, codec.name)
				}
				parts := map[int32]int{}
				for _, r := range got.records {
					parts[r.Partition]++
				}
				if len(parts) != 3 {
					t.Errorf("records per partition = %v; want keyless records spread over all 3", parts)
				}
			})
		}
	}
}

func TestKafkaKeysRouteAsConfiguredAndKeepOrderPerKey(t *testing.T) {
	c := startCluster(t, kfake.DefaultNumPartitions(5))
	addrs := c.ListenAddrs()
	const topic = "keyed"
	o := newKafka(t, fmt.Sprintf("kafka_brokers = %s\nkafka_topic = %q\nkafka_key = \"hostname\"\nkafka_coalesce = 7\nkafka_threads = 3\n", brokersTOML(addrs), topic))
	hostNames := []string{"web-1", "web-2", "db-1", "db-2", "cache", "mail", "", "host with spaces", "ünïcode"}
	seq := map[string]int{}
	var values [][]byte
	var hosts []string
	rng := rand.New(rand.NewPCG(1, 2))
	for range 3000 {
		h := hostNames[rng.IntN(len(hostNames))]
		values = append(values, fmt.Appendf(nil, "%s #%d", h, seq[h]))
		hosts = append(hosts, h)
		seq[h]++
	}
	for i := 0; i < len(values); i += 1000 {
		write(t, o, batchOf(values[i:i+1000], hosts[i:i+1000]))
	}
	got := consume(t, addrs, topic, len(values), 20*time.Second)
	checkExactlyOnce(t, got.records, values)

	// An independent murmur2: franz-go's, as Kafka's Java client hashes keys.
	part := kgo.StickyKeyPartitioner(nil).ForTopic(topic)
	partitionOf := map[string]int32{}
	next := map[string]int{}
	for _, r := range got.records {
		host, n, ok := strings.Cut(string(r.Value), " #")
		if !ok {
			t.Fatalf("unexpected value %q", r.Value)
		}
		if host == "" {
			if r.Key != nil {
				t.Errorf("record %q without hostname has key %q; want none", r.Value, r.Key)
			}
		} else {
			if string(r.Key) != host {
				t.Errorf("record %q has key %q; want %q", r.Value, r.Key, host)
			}
			if want := int32(part.Partition(&kgo.Record{Key: []byte(host)}, 5)); r.Partition != want {
				t.Errorf("key %q went to partition %d; murmur2 says %d", host, r.Partition, want)
			}
		}
		if p, ok := partitionOf[host]; ok && p != r.Partition {
			t.Errorf("host %q records on partitions %d and %d; want one", host, p, r.Partition)
		}
		partitionOf[host] = r.Partition
		if n != fmt.Sprint(next[host]) {
			t.Errorf("host %q: got record #%s; want #%d (order lost)", host, n, next[host])
		}
		next[host]++
	}
	used := map[int32]bool{}
	for _, p := range partitionOf {
		used[p] = true
	}
	if len(used) < 3 {
		t.Errorf("9 keys landed on %d partition(s) of 5; the keys are not spread", len(used))
	}
}

func TestKafkaTooLargeMessagesFailForGoodAndTheRestIsDelivered(t *testing.T) {
	tests := []struct {
		name    string
		keys    string
		topic   map[string]string // topic configs
		wantErr string
	}{
		{"larger than kafka_max_message_bytes: never sent", "kafka_max_message_bytes = 4096\n", nil,
			"larger than kafka_max_message_bytes (4096)"},
		{"larger than the topic accepts: refused by the broker", "", map[string]string{"max.message.bytes": "3000"},
			"refused by the broker"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := startCluster(t)
			const topic = "big"
			if err := c.CreateTopic(topic, 3, tt.topic); err != nil {
				t.Fatal(err)
			}
			addrs := c.ListenAddrs()
			o := newKafka(t, fmt.Sprintf("kafka_brokers = %s\nkafka_topic = %q\nkafka_coalesce = 50\n%s", brokersTOML(addrs), topic, tt.keys))
			rng := rand.New(rand.NewPCG(3, 4))
			var values, small [][]byte
			big := map[int]bool{}
			for i := range 400 {
				v := fmt.Appendf(nil, "record %d ", i)
				if i == 0 || i == 137 || i == 399 {
					// Random bytes: compression cannot bring it under the limit.
					for len(v) < 10000 {
						v = append(v, byte(rng.UintN(256)))
					}
					big[i] = true
				} else {
					small = append(small, v)
				}
				values = append(values, v)
			}
			err := o.Write(context.Background(), batchOf(values, nil))
			var be *flowgo.BatchError
			if !errors.As(err, &be) {
				t.Fatalf("Write = %v; want a *flowgo.BatchError", err)
			}
			if fmt.Sprint(be.Failed) != "[0 137 399]" {
				t.Errorf("failed frames = %v; want [0 137 399]", be.Failed)
			}
			for i, r := range be.Reasons {
				if !strings.Contains(r.Error(), tt.wantErr) {
					t.Errorf("reason %d = %q; want it to say %q", i, r, tt.wantErr)
				}
			}
			got := consume(t, addrs, topic, len(small), 10*time.Second)
			checkExactlyOnce(t, got.records, small)
			if _, _, _, failed, _ := output.KafkaCounters(o); failed != 3 {
				t.Errorf("failed counter = %d; want 3", failed)
			}
			// The output is healthy: the brokers took everything they could.
			if ok, msg := o.(output.HealthChecker).Healthy(); !ok {
				t.Errorf("Healthy() = false, %q after a write with refused records", msg)
			}
		})
	}
}

// failPartition makes the cluster refuse the next n produce requests for
// partition p with NOT_LEADER_FOR_PARTITION, as during a leader change.
func failPartition(c *kfake.Cluster, p int32, n int) *int {
	var mu sync.Mutex
	refused := new(int)
	c.ControlKey(int16(kmsg.Produce), func(req kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		pr := req.(*kmsg.ProduceRequest)
		mu.Lock()
		defer mu.Unlock()
		if *refused >= n || len(pr.Topics) != 1 || len(pr.Topics[0].Partitions) != 1 || pr.Topics[0].Partitions[0].Partition != p {
			return nil, nil, false
		}
		*refused++
		resp := pr.ResponseKind().(*kmsg.ProduceResponse)
		rt := kmsg.NewProduceResponseTopic()
		rt.Topic = pr.Topics[0].Topic
		rp := kmsg.NewProduceResponseTopicPartition()
		rp.Partition = p
		rp.ErrorCode = 6 // NOT_LEADER_OR_FOLLOWER
		rt.Partitions = append(rt.Partitions, rp)
		resp.Topics = append(resp.Topics, rt)
		return resp, nil, true
	})
	return refused
}

func TestKafkaRetryResendsOnlyWhatWasNotAcknowledged(t *testing.T) {
	c := startCluster(t)
	const topic = "retry"
	if err := c.CreateTopic(topic, 3, nil); err != nil {
		t.Fatal(err)
	}
	addrs := c.ListenAddrs()
	o := newKafka(t, fmt.Sprintf("kafka_brokers = %s\nkafka_topic = %q\nkafka_key = \"hostname\"\nkafka_coalesce = 100\n", brokersTOML(addrs), topic))
	var values [][]byte
	var hosts []string
	for i := range 3000 {
		h := fmt.Sprintf("host-%d", i%30)
		values = append(values, fmt.Appendf(nil, "%s record %d", h, i))
		hosts = append(hosts, h)
	}
	b := batchOf(values, hosts)
	refused := failPartition(c, 1, 2)

	// The pipeline's loop: write until nil, with the same batch.
	var errs []error
	for attempt := 0; ; attempt++ {
		err := o.Write(context.Background(), b)
		if err == nil {
			break
		}
		var be *flowgo.BatchError
		if errors.As(err, &be) || attempt == 10 {
			t.Fatalf("Write attempt %d = %v; want a retryable error, then success", attempt, err)
		}
		errs = append(errs, err)
		if ok, _ := o.(output.HealthChecker).Healthy(); ok {
			t.Error("Healthy() = true after a failed write")
		}
	}
	if len(errs) != 2 || *refused != 2 {
		t.Fatalf("%d failed writes, %d refused requests; want 2 and 2: %v", len(errs), *refused, errs)
	}
	if !strings.Contains(errs[0].Error(), "not acknowledged") {
		t.Errorf("error %q does not say how many records wait", errs[0])
	}
	got := consume(t, addrs, topic, len(values), 10*time.Second)
	checkExactlyOnce(t, got.records, values)

	onP1 := 0
	for _, r := range got.records {
		if r.Partition == 1 {
			onP1++
		}
	}
	acked, resent, skipped, _, _ := output.KafkaCounters(o)
	if acked != int64(len(values)) {
		t.Errorf("acked = %d; want %d", acked, len(values))
	}
	// Only partition 1's records were re-sent, and only its first request
	// (the one refused) each time: the rest of the partition waited.
	if resent == 0 || resent > int64(onP1) {
		t.Errorf("resent = %d; want between 1 and %d (partition 1's records)", resent, onP1)
	}
	if want := int64(2 * (len(values) - onP1)); skipped < want {
		t.Errorf("skipped = %d; want at least %d: acknowledged records of the other partitions must not be re-sent", skipped, want)
	}
	if ok, msg := o.(output.HealthChecker).Healthy(); !ok || !strings.Contains(msg, "acknowledged") {
		t.Errorf("Healthy() = %v, %q after recovery", ok, msg)
	}
}

func TestKafkaAnotherBatchAfterAFailureIsSentWhole(t *testing.T) {
	c := startCluster(t)
	const topic = "abandon"
	if err := c.CreateTopic(topic, 1, nil); err != nil {
		t.Fatal(err)
	}
	addrs := c.ListenAddrs()
	o := newKafka(t, fmt.Sprintf("kafka_brokers = %s\nkafka_topic = %q\n", brokersTOML(addrs), topic))
	failPartition(c, 0, 1)
	first := [][]byte{[]byte("a1"), []byte("a2")}
	if err := o.Write(context.Background(), batchOf(first, nil)); err == nil {
		t.Fatal("Write succeeded while the partition refused it")
	}
	// The pipeline gave up on that batch (shutdown): a different batch
	// must be sent whole, not mistaken for the one that failed.
	second := [][]byte{[]byte("b1"), []byte("b2"), []byte("b3")}
	write(t, o, batchOf(second, nil))
	got := consume(t, addrs, topic, 3, 5*time.Second)
	checkExactlyOnce(t, got.records, second)
}

func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func TestKafkaBrokerDownAtStartFailsFastThenDelivers(t *testing.T) {
	port := freePort(t)
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	o := newKafka(t, fmt.Sprintf("kafka_brokers = [%q]\nkafka_topic = \"late\"\n", addr))
	values := [][]byte{[]byte("first"), []byte("second")}
	b := batchOf(values, nil)
	for range 3 {
		start := time.Now()
		err := o.Write(context.Background(), b)
		var be *flowgo.BatchError
		if err == nil || errors.As(err, &be) {
			t.Fatalf("Write with no broker = %v; want a retryable error", err)
		}
		if d := time.Since(start); d > 5*time.Second {
			t.Errorf("Write with no broker took %v; want a prompt failure", d)
		}
		if ok, msg := o.(output.HealthChecker).Healthy(); ok || !strings.Contains(msg, "failed") {
			t.Errorf("Healthy() = %v, %q with no broker", ok, msg)
		}
	}
	c := startCluster(t, kfake.Ports(port))
	deadline := time.Now().Add(10 * time.Second)
	for {
		err := o.Write(context.Background(), b)
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("Write still fails 10s after the broker came up: %v", err)
		}
		time.Sleep(100 * time.Millisecond) // the pipeline backs off too
	}
	got := consume(t, c.ListenAddrs(), "late", len(values), 5*time.Second)
	checkExactlyOnce(t, got.records, values)
}

func TestKafkaCloseReportsWhatWasNeverAcknowledged(t *testing.T) {
	port := freePort(t)
	o := newKafka(t, fmt.Sprintf("kafka_brokers = [\"127.0.0.1:%d\"]\nkafka_topic = \"t\"\n", port))
	if err := o.Write(context.Background(), batchOf([][]byte{[]byte("x"), []byte("y")}, nil)); err == nil {
		t.Fatal("Write with no broker succeeded")
	}
	err := o.Close(context.Background())
	if err == nil || !strings.Contains(err.Error(), "2 record(s) of the last batch were never acknowledged") {
		t.Errorf("Close = %v; want it to report the 2 unacknowledged records", err)
	}
	if err := o.Write(context.Background(), batchOf([][]byte{[]byte("z")}, nil)); err == nil {
		t.Error("Write after Close succeeded")
	}
}

// tlsFiles writes a CA, a server certificate for 127.0.0.1 and a client
// certificate, and returns the server's tls.Config and the file paths.
type tlsFiles struct {
	server                 *tls.Config
	ca, cert, key, otherCA string
	clientCAs              *x509.CertPool
}

func makeTLSFiles(t *testing.T) tlsFiles {
	dir := t.TempDir()
	ca := testcerts.NewCA(t, "kafka test CA")
	other := testcerts.NewCA(t, "another CA")
	srv := ca.Server(t)
	cli := ca.Client(t, "flowgo")
	pair, err := tls.X509KeyPair(srv.CertPEM, srv.KeyPEM)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca.Cert)
	return tlsFiles{
		server:    &tls.Config{Certificates: []tls.Certificate{pair}, MinVersion: tls.VersionTLS12},
		clientCAs: pool,
		ca:        testcerts.WriteFile(t, dir, "ca.pem", ca.CertPEM),
		otherCA:   testcerts.WriteFile(t, dir, "other.pem", other.CertPEM),
		cert:      testcerts.WriteFile(t, dir, "client.pem", cli.CertPEM),
		key:       testcerts.WriteFile(t, dir, "client.key", cli.KeyPEM),
	}
}

func TestKafkaTLS(t *testing.T) {
	files := makeTLSFiles(t)
	mtls := files.server.Clone()
	mtls.ClientAuth = tls.RequireAndVerifyClientCert
	mtls.ClientCAs = files.clientCAs
	tests := []struct {
		name    string
		server  *tls.Config
		keys    string
		wantErr string // "" when delivery must succeed
	}{
		{"verified against the CA file", files.server, fmt.Sprintf("kafka_tls_ca_file = %q\n", files.ca), ""},
		{"client certificate presented", mtls,
			fmt.Sprintf("kafka_tls_ca_file = %q\nkafka_tls_cert = %q\nkafka_tls_key = %q\n", files.ca, files.cert, files.key), ""},
		{"no client certificate refused", mtls, fmt.Sprintf("kafka_tls_ca_file = %q\n", files.ca), "certificate required"},
		{"wrong CA refused", files.server, fmt.Sprintf("kafka_tls_ca_file = %q\n", files.otherCA), "certificate signed by unknown authority"},
		{"wrong server name refused", files.server,
			fmt.Sprintf("kafka_tls_ca_file = %q\nkafka_tls_server_name = \"kafka.example.com\"\n", files.ca), "kafka.example.com"},
		{"unverified when asked", files.server, fmt.Sprintf("kafka_tls_ca_file = %q\nkafka_tls_verify = false\n", files.otherCA), ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := startCluster(t, kfake.TLS(tt.server))
			addrs := c.ListenAddrs()
			o := newKafka(t, fmt.Sprintf("kafka_brokers = %s\nkafka_topic = \"secure\"\nkafka_tls = true\n%s", brokersTOML(addrs), tt.keys))
			values := [][]byte{[]byte("over TLS 1"), []byte("over TLS 2")}
			err := o.Write(context.Background(), batchOf(values, nil))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Write = %v; want an error containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Write: %v", err)
			}
			clientTLS := &tls.Config{RootCAs: files.clientCAs}
			if tt.server.ClientAuth == tls.RequireAndVerifyClientCert {
				pair, _ := tls.LoadX509KeyPair(files.cert, files.key)
				clientTLS.Certificates = []tls.Certificate{pair}
			}
			got := consume(t, addrs, "secure", 2, 5*time.Second, kgo.DialTLSConfig(clientTLS))
			checkExactlyOnce(t, got.records, values)
		})
	}
}

func TestKafkaSASL(t *testing.T) {
	files := makeTLSFiles(t)
	tests := []struct {
		name, mechanism, kfakeMechanism string
		tls                             bool
	}{
		{"PLAIN", "plain", "PLAIN", false},
		{"SCRAM-SHA-256", "scram-sha-256", "SCRAM-SHA-256", false},
		{"SCRAM-SHA-512 over TLS", "SCRAM-SHA-512", "SCRAM-SHA-512", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			opts := []kfake.Opt{kfake.EnableSASL(), kfake.Superuser(tt.kfakeMechanism, "flowgo", "s3cret")}
			keys := ""
			if tt.tls {
				opts = append(opts, kfake.TLS(files.server))
				keys = fmt.Sprintf("kafka_tls = true\nkafka_tls_ca_file = %q\n", files.ca)
			}
			c := startCluster(t, opts...)
			addrs := c.ListenAddrs()
			base := fmt.Sprintf("kafka_brokers = %s\nkafka_topic = \"auth\"\nkafka_sasl_mechanism = %q\nkafka_sasl_username = \"flowgo\"\n%s",
				brokersTOML(addrs), tt.mechanism, keys)

			bad := newKafka(t, base+"kafka_sasl_password = \"wrong\"\n")
			// kfake closes the connection where a broker answers
			// SASL_AUTHENTICATION_FAILED: the error text differs, so only
			// the refusal is checked.
			if err := bad.Write(context.Background(), batchOf([][]byte{[]byte("intruder")}, nil)); err == nil {
				t.Fatal("Write with a wrong password succeeded")
			}

			good := newKafka(t, base+"kafka_sasl_password = \"s3cret\"\n")
			values := [][]byte{[]byte("authenticated 1"), []byte("authenticated 2")}
			write(t, good, batchOf(values, nil))

			mech := kfakeSASL(tt.kfakeMechanism, "flowgo", "s3cret")
			extra := []kgo.Opt{kgo.SASL(mech)}
			if tt.tls {
				extra = append(extra, kgo.DialTLSConfig(&tls.Config{RootCAs: files.clientCAs}))
			}
			got := consume(t, addrs, "auth", 2, 5*time.Second, extra...)
			checkExactlyOnce(t, got.records, values)
		})
	}
}

func TestKafkaConfigErrorsNameTheKey(t *testing.T) {
	files := makeTLSFiles(t)
	const base = "kafka_brokers = [\"127.0.0.1:9092\"]\nkafka_topic = \"logs\"\n"
	tests := []struct {
		name, keys, want string
	}{
		{"brokers missing", "kafka_topic = \"logs\"\n", `flowgo.toml:1: output.kafka_brokers: is required`},
		{"broker without port", "kafka_brokers = [\"kafka1\"]\nkafka_topic = \"logs\"\n", `flowgo.toml:3: output.kafka_brokers: "kafka1" is not a "host:port" address`},
		{"broker with a bad port", "kafka_brokers = [\"kafka1:99999\"]\nkafka_topic = \"logs\"\n", `flowgo.toml:3: output.kafka_brokers: "kafka1:99999": port "99999" must be a number from 1 to 65535`},
		{"brokers not an array", "kafka_brokers = \"kafka1:9092\"\nkafka_topic = \"logs\"\n", `flowgo.toml:3: output.kafka_brokers: wrong type: expected an array`},
		{"topic missing", "kafka_brokers = [\"kafka1:9092\"]\n", `flowgo.toml:1: output.kafka_topic: is required`},
		{"topic with a slash", "kafka_brokers = [\"kafka1:9092\"]\nkafka_topic = \"a/b\"\n", `flowgo.toml:4: output.kafka_topic: "a/b": a topic name may hold only`},
		{"acks 2", base + "kafka_acks = 2\n", `flowgo.toml:5: output.kafka_acks: must be -1 (all in-sync replicas), 1 (the leader) or 0 (no acknowledgement), not 2`},
		{"timeout zero", base + "kafka_timeout = 0\n", `flowgo.toml:5: output.kafka_timeout: must be a positive number of milliseconds`},
		{"threads zero", base + "kafka_threads = 0\n", `flowgo.toml:5: output.kafka_threads: must be from 1 to 256, not 0`},
		{"coalesce zero", base + "kafka_coalesce = 0\n", `flowgo.toml:5: output.kafka_coalesce: must be from 1 to 1000000 records, not 0`},
		{"unknown codec", base + "kafka_compression = \"brotli\"\n", `flowgo.toml:5: output.kafka_compression: "brotli" unknown (known: none, gzip, snappy, lz4, zstd)`},
		{"flush interval not a duration", base + "kafka_flush_interval = \"soon\"\n", `flowgo.toml:5: output.kafka_flush_interval: invalid duration: "soon"`},
		{"flush interval negative", base + "kafka_flush_interval = \"-1s\"\n", `flowgo.toml:5: output.kafka_flush_interval: must be a positive duration`},
		{"unknown key field", base + "kafka_key = \"severity\"\n", `flowgo.toml:5: output.kafka_key: "severity" unknown (known: none, hostname, appname, procid, msgid)`},
		{"tiny max message bytes", base + "kafka_max_message_bytes = 10\n", `flowgo.toml:5: output.kafka_max_message_bytes: must be from 1024`},
		{"TLS key without kafka_tls", base + "kafka_tls_ca_file = \"ca.pem\"\n", `flowgo.toml:5: output.kafka_tls_ca_file: is set but kafka_tls is not`},
		{"missing CA file", base + "kafka_tls = true\nkafka_tls_ca_file = \"/nonexistent/ca.pem\"\n", `flowgo.toml:6: output.kafka_tls_ca_file: `},
		{"key without certificate", base + fmt.Sprintf("kafka_tls = true\nkafka_tls_key = %q\n", files.key), `flowgo.toml:6: output.kafka_tls_key: is set without kafka_tls_cert`},
		{"unknown SASL mechanism", base + "kafka_sasl_mechanism = \"gssapi\"\nkafka_sasl_username = \"u\"\n", `flowgo.toml:5: output.kafka_sasl_mechanism: "gssapi" unknown (known: plain, scram-sha-256, scram-sha-512)`},
		{"SASL without user", base + "kafka_sasl_mechanism = \"plain\"\n", `output.kafka_sasl_username: is required with kafka_sasl_mechanism`},
		{"password without mechanism", base + "kafka_sasl_password = \"p\"\n", `flowgo.toml:5: output.kafka_sasl_password: is set but kafka_sasl_mechanism is not`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := buildKafka(kafkaSection(t, tt.keys))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error = %v;\nwant it to contain %s", err, tt.want)
			}
		})
	}
}

func TestKafkaConfigWarnings(t *testing.T) {
	const base = "kafka_brokers = [\"127.0.0.1:9092\"]\nkafka_topic = \"logs\"\n"
	tests := []struct {
		name, keys, want string
	}{
		{"acks 0 cannot confirm delivery", "kafka_acks = 0\n", "output.kafka_acks: 0: brokers do not acknowledge, so delivery cannot be confirmed"},
		{"coalesce 1", "kafka_coalesce = 1\n", "output.kafka_coalesce: 1 sends every record in a produce request of its own"},
		{"plain password in clear", "kafka_sasl_mechanism = \"PLAIN\"\nkafka_sasl_username = \"u\"\nkafka_sasl_password = \"p\"\n", "output.kafka_sasl_mechanism: plain without kafka_tls"},
		{"no verification", "kafka_tls = true\nkafka_tls_verify = false\n", "output.kafka_tls_verify: false: the brokers' certificates are not checked"},
		{"defaults warn about nothing", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := kafkaSection(t, base+tt.keys)
			o, err := buildKafka(f)
			if err != nil {
				t.Fatal(err)
			}
			o.Close(context.Background())
			got := strings.Join(f.Warnings(), "\n")
			if tt.want == "" && got != "" || !strings.Contains(got, tt.want) {
				t.Errorf("warnings = %q; want %q", got, tt.want)
			}
		})
	}
}

func TestKafkaConstructorDoesNoIO(t *testing.T) {
	// A broker address that would hang a dial: nothing may be dialled
	// before the first Write.
	start := time.Now()
	o, err := buildKafka(kafkaSection(t, "kafka_brokers = [\"10.255.255.1:9092\"]\nkafka_topic = \"logs\"\n"))
	if err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 100*time.Millisecond {
		t.Errorf("constructor took %v", d)
	}
	if ok, msg := o.(output.HealthChecker).Healthy(); !ok || msg != "no batch written yet" {
		t.Errorf("Healthy() = %v, %q before any write", ok, msg)
	}
	if err := o.Close(context.Background()); err != nil {
		t.Errorf("Close = %v", err)
	}
}

// kfakeSASL returns franz-go's client side of a SASL mechanism, for the
// consumer that reads back.
func kfakeSASL(mechanism, user, pass string) sasl.Mechanism {
	switch mechanism {
	case "PLAIN":
		return plain.Auth{User: user, Pass: pass}.AsMechanism()
	case "SCRAM-SHA-256":
		return scram.Auth{User: user, Pass: pass}.AsSha256Mechanism()
	}
	return scram.Auth{User: user, Pass: pass}.AsSha512Mechanism()
}

func TestKafkaReloadRereadsTheCAFile(t *testing.T) {
	files := makeTLSFiles(t)
	c := startCluster(t, kfake.TLS(files.server))
	addrs := c.ListenAddrs()
	caFile := testcerts.WriteFile(t, t.TempDir(), "ca.pem", mustRead(t, files.otherCA))
	o := newKafka(t, fmt.Sprintf("kafka_brokers = %s\nkafka_topic = \"rotated\"\nkafka_tls = true\nkafka_tls_ca_file = %q\n", brokersTOML(addrs), caFile))
	b := batchOf([][]byte{[]byte("after rotation")}, nil)
	if err := o.Write(context.Background(), b); err == nil || !strings.Contains(err.Error(), "unknown authority") {
		t.Fatalf("Write with the wrong CA = %v; want a certificate error", err)
	}
	// The operator installs the right CA and sends SIGHUP.
	if err := os.WriteFile(caFile, mustRead(t, files.ca), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := o.(output.Reloader).Reload(); err != nil {
		t.Fatalf("Reload: %v", err)
	}
	write(t, o, b)
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestKafkaLongOutageLeaksNoGoroutines(t *testing.T) {
	base := runtime.NumGoroutine()
	port := freePort(t)
	o := newKafka(t, fmt.Sprintf("kafka_brokers = [\"127.0.0.1:%d\"]\nkafka_topic = \"t\"\n", port))
	b := batchOf([][]byte{[]byte("x")}, nil)
	o.Write(context.Background(), b) // the first failure starts the transport
	time.Sleep(50 * time.Millisecond)
	before := runtime.NumGoroutine()
	for range 50 {
		if err := o.Write(context.Background(), b); err == nil {
			t.Fatal("Write with no broker succeeded")
		}
	}
	time.Sleep(200 * time.Millisecond)
	if after := runtime.NumGoroutine(); after > before+5 {
		t.Errorf("%d goroutines after 50 failed writes; %d before", after, before)
	}
	o.Close(context.Background())
	time.Sleep(200 * time.Millisecond)
	if after := runtime.NumGoroutine(); after > base {
		t.Errorf("%d goroutines after Close; %d before the output existed", after, base)
	}
}
