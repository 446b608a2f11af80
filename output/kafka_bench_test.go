package output_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"syscall"
	"testing"
	"time"

	"github.com/flowgo/flowgo"
	"github.com/flowgo/flowgo/config"
	"github.com/flowgo/flowgo/decoder"
	"github.com/flowgo/flowgo/encoder"
	"github.com/flowgo/flowgo/internal/sample"
	"github.com/flowgo/flowgo/output"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
)

// benchSink keeps results alive so that the compiler cannot drop the work.
var benchSink error

// gelfLikeBatches returns batches of n GELF-like JSON records of about 300
// bytes, as the pipeline hands them to the output.
func gelfLikeBatches(batches, n int) ([]*flowgo.Batch, int) {
	rng := rand.New(rand.NewPCG(5, 6))
	paths := []string{"/api/v1/items", "/login", "/static/app.js", "/api/v1/orders/search", "/healthz"}
	var out []*flowgo.Batch
	total := 0
	for range batches {
		b := &flowgo.Batch{}
		for i := range n {
			r := b.Next()
			r.Hostname = fmt.Sprintf("web-%d", rng.IntN(40))
			start := len(b.Data)
			b.Data = fmt.Appendf(b.Data, `{"version":"1.1","host":%q,"short_message":"GET %s/%d HTTP/1.1 %d %d %.3f",`+
				`"timestamp":%d.%03d,"level":6,"_app":"nginx","_pid":"%d","_request_id":"%016x%016x","_upstream":"10.0.%d.%d:8080",`+
				`"_user_agent":"Mozilla/5.0 (X11; Linux x86_64) Gecko/20100101 Firefox/125.0"}`,
				r.Hostname, paths[rng.IntN(len(paths))], rng.IntN(100000), []int{200, 200, 200, 404, 500}[rng.IntN(5)],
				rng.IntN(50000), rng.Float64(), 1714564800+rng.IntN(86400), rng.IntN(1000), 1000+rng.IntN(60000),
				rng.Uint64(), rng.Uint64(), rng.IntN(256), rng.IntN(256))
			total += len(b.Data) - start
			b.Ends = append(b.Ends, len(b.Data))
			b.Index = append(b.Index, i)
		}
		out = append(out, b)
	}
	return out, total / (batches * n)
}

// sampleGELFBatches returns batches of n records as the end-to-end
// benchmarks send them (bench/kafka.sh): flowgo-loadgen's RFC 5424 lines,
// decoded and encoded to GELF by the real decoder and encoder, with
// full_message unless short is set.
func sampleGELFBatches(tb testing.TB, batches, n int, short bool) []*flowgo.Batch {
	tb.Helper()
	f := config.Empty()
	dec, err := decoder.New("rfc5424", f.Inputs[0])
	if err != nil {
		tb.Fatal(err)
	}
	enc, err := encoder.New("gelf", f.Output)
	if err != nil {
		tb.Fatal(err)
	}
	gen := sample.New(1)
	var line []byte
	out := make([]*flowgo.Batch, batches)
	for i := range out {
		b := &flowgo.Batch{}
		for j := range n {
			line = gen.RFC5424(line[:0])
			r := b.Next()
			if err := dec.Decode(line, r, &b.Arena); err != nil {
				tb.Fatal(err)
			}
			if short {
				r.FullMsg = ""
			}
			if b.Data, err = enc.Encode(b.Data, r); err != nil {
				tb.Fatal(err)
			}
			b.Ends = append(b.Ends, len(b.Data))
			b.Index = append(b.Index, j)
		}
		out[i] = b
	}
	return out
}

// BenchmarkKafkaWrite measures the kafka output writing pipeline batches of
// 1024 GELF-like records to an in-process kfake broker with 3 partitions
// that discards what it is sent (so that the broker's storage does not
// compete for the CPU). One op is one record.
//
//	go test ./output/ -run '^$' -bench KafkaWrite -benchtime 2000000x
func BenchmarkKafkaWrite(b *testing.B) {
	batches, avg := gelfLikeBatches(16, 1024)
	for _, store := range []bool{false, true} {
		for _, codec := range []string{"none", "gzip", "snappy", "lz4", "zstd"} {
			for _, acks := range []int{-1, 1, 0} {
				name := fmt.Sprintf("codec=%s/acks=%d", codec, acks)
				if store {
					name = "stored/" + name
				}
				b.Run(name, func(b *testing.B) {
					opts := []kfake.Opt{kfake.BlackholeProduce()}
					if store {
						opts = nil
					}
					c := startCluster(b, append(opts, kfake.SeedTopics(3, "bench"))...)
					o := newKafka(b, fmt.Sprintf("kafka_brokers = %s\nkafka_topic = \"bench\"\nkafka_acks = %d\nkafka_compression = %q\n",
						brokersTOML(c.ListenAddrs()), acks, codec))
					benchWrite(b, o, batches, avg)
				})
			}
		}
	}
}

// BenchmarkKafkaWriteThreads compares kafka_threads, with lz4 and acks 1.
func BenchmarkKafkaWriteThreads(b *testing.B) {
	batches, avg := gelfLikeBatches(16, 1024)
	for _, threads := range []int{1, 2, 3, 4, 8} {
		b.Run(fmt.Sprintf("threads=%d", threads), func(b *testing.B) {
			c := startCluster(b, kfake.BlackholeProduce(), kfake.SeedTopics(3, "bench"))
			o := newKafka(b, fmt.Sprintf("kafka_brokers = %s\nkafka_topic = \"bench\"\nkafka_acks = 1\nkafka_compression = \"lz4\"\nkafka_threads = %d\n",
				brokersTOML(c.ListenAddrs()), threads))
			benchWrite(b, o, batches, avg)
		})
	}
}

func benchWrite(b *testing.B, o output.Output, batches []*flowgo.Batch, avg int) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	// Warm up: the first write fetches metadata and connects.
	if err := o.Write(ctx, batches[0]); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.SetBytes(int64(avg))
	cpu0 := cpuTime()
	b.ResetTimer()
	start := time.Now()
	n := 0
	for i := 0; n < b.N; i++ {
		batch := batches[i%len(batches)]
		benchSink = o.Write(ctx, batch)
		if benchSink != nil {
			b.Fatal(benchSink)
		}
		n += batch.Frames()
	}
	b.ReportMetric(float64(n)/time.Since(start).Seconds(), "records/s")
	// CPU time of the whole process (output, kafka-go and the in-process
	// broker) per record: steadier than records/s on a shared machine.
	b.ReportMetric(float64(cpuTime()-cpu0)/float64(n), "cpu-ns/record")
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkKgoBaseline sends the same batches with franz-go's kgo (acks 1,
// lz4, synchronous 1024-record calls) to the same kind of broker: a
// yardstick for what the kafka output and kafka-go cost.
func BenchmarkKgoBaseline(b *testing.B) {
	batches, avg := gelfLikeBatches(16, 1024)
	c := startCluster(b, kfake.BlackholeProduce(), kfake.SeedTopics(3, "bench"))
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...), kgo.DefaultProduceTopic("bench"),
		kgo.RequiredAcks(kgo.LeaderAck()), kgo.DisableIdempotentWrite(),
		kgo.ProducerBatchCompression(kgo.Lz4Compression()), kgo.ProducerLinger(0))
	if err != nil {
		b.Fatal(err)
	}
	defer cl.Close()
	recs := make([][]*kgo.Record, len(batches))
	for i, batch := range batches {
		for f := range batch.Frames() {
			recs[i] = append(recs[i], &kgo.Record{Value: batch.Frame(f)})
		}
	}
	ctx := context.Background()
	if err := cl.ProduceSync(ctx, recs[0]...).FirstErr(); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.SetBytes(int64(avg))
	cpu0 := cpuTime()
	b.ResetTimer()
	start := time.Now()
	n := 0
	for i := 0; n < b.N; i++ {
		rs := recs[i%len(recs)]
		benchSink = cl.ProduceSync(ctx, rs...).FirstErr()
		if benchSink != nil {
			b.Fatal(benchSink)
		}
		n += len(rs)
	}
	b.ReportMetric(float64(n)/time.Since(start).Seconds(), "records/s")
	b.ReportMetric(float64(cpuTime()-cpu0)/float64(n), "cpu-ns/record")
}
