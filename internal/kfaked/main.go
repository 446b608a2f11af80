// Command kfaked runs an in-process Kafka cluster (franz-go's kfake) as a
// process of its own, for tests and benchmarks that need a broker to kill,
// restart and read back with other clients (kcat). It is not a Kafka: it
// speaks the wire protocol well enough for kafka-go, franz-go and
// librdkafka, keeps its data in -data-dir across restarts (kill -9
// included: it writes through the page cache), and listens on loopback.
//
//	kfaked -port 19092 -data-dir /tmp/k -topic logs -partitions 3
//
// It prints "kfaked listening on ADDR ..." on stdout once it accepts
// connections, and stops on SIGINT or SIGTERM.
package main

import (
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/twmb/franz-go/pkg/kfake"
)

func main() {
	port := flag.Int("port", 0, "port of the first broker (0: any free port)")
	brokers := flag.Int("brokers", 1, "brokers (on consecutive ports when -port is set)")
	dataDir := flag.String("data-dir", "", "keep the data here across restarts (none: in memory only)")
	topics := flag.String("topic", "", "topics to create at start, comma-separated")
	partitions := flag.Int("partitions", 1, "partitions of each -topic, and of auto-created topics")
	blackhole := flag.Bool("blackhole", false, "acknowledge produce requests without storing them (benchmarks)")
	syncWrites := flag.Bool("sync", false, "fsync each produced batch")
	maxMessageBytes := flag.Int("message-max-bytes", 0, "broker message.max.bytes (0: kfake's default)")
	flag.Parse()

	opts := []kfake.Opt{kfake.NumBrokers(*brokers), kfake.AllowAutoTopicCreation(), kfake.DefaultNumPartitions(*partitions)}
	if *port != 0 {
		ports := make([]int, *brokers)
		for i := range ports {
			ports[i] = *port + i
		}
		opts = append(opts, kfake.Ports(ports...))
	}
	if *dataDir != "" {
		opts = append(opts, kfake.DataDir(*dataDir))
	}
	if *topics != "" {
		opts = append(opts, kfake.SeedTopics(int32(*partitions), strings.Split(*topics, ",")...))
	}
	if *blackhole {
		opts = append(opts, kfake.BlackholeProduce())
	}
	if *syncWrites {
		opts = append(opts, kfake.SyncWrites())
	}
	if *maxMessageBytes > 0 {
		opts = append(opts, kfake.BrokerConfigs(map[string]string{"message.max.bytes": fmt.Sprint(*maxMessageBytes)}))
	}
	c, err := kfake.NewCluster(opts...)
	if err != nil {
		fmt.Fprintf(os.Stderr, "kfaked: %v\n", err)
		os.Exit(1)
	}
	fmt.Printf("kfaked listening on %s pid %d\n", strings.Join(c.ListenAddrs(), ","), os.Getpid())
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	<-sigs
	c.Close()
}
