package main

import (
	"context"
	"fmt"
	"net"
	"slices"
	"strings"
	"time"

	"github.com/segmentio/kafka-go"
)

// kafkaTarget is a topic on a broker, written "host:port/topic".
type kafkaTarget struct {
	broker, topic string
}

func parseKafkaTarget(s string) (kafkaTarget, error) {
	i := strings.LastIndexByte(s, '/')
	if i < 0 {
		return kafkaTarget{}, fmt.Errorf("%q: want host:port/topic", s)
	}
	t := kafkaTarget{broker: s[:i], topic: s[i+1:]}
	if _, _, err := net.SplitHostPort(t.broker); err != nil || t.topic == "" {
		return kafkaTarget{}, fmt.Errorf("%q: want host:port/topic", s)
	}
	return t, nil
}

// kafkaClient reads a topic's layout and end offsets.
type kafkaClient struct {
	t      kafkaTarget
	client *kafka.Client
	parts  []int
}

func newKafkaClient(t kafkaTarget) *kafkaClient {
	return &kafkaClient{t: t, client: &kafka.Client{Addr: kafka.TCP(t.broker), Timeout: 10 * time.Second,
		Transport: &kafka.Transport{MetadataTTL: time.Second}}}
}

// partitions returns the topic's partitions, asking the broker once.
func (k *kafkaClient) partitions(ctx context.Context) ([]int, error) {
	if k.parts != nil {
		return k.parts, nil
	}
	md, err := k.client.Metadata(ctx, &kafka.MetadataRequest{Topics: []string{k.t.topic}})
	if err != nil {
		return nil, fmt.Errorf("kafka metadata: %w", err)
	}
	for _, t := range md.Topics {
		if t.Name != k.t.topic {
			continue
		}
		if t.Error != nil {
			return nil, fmt.Errorf("kafka topic %s: %w", t.Name, t.Error)
		}
		var ps []int
		for _, p := range t.Partitions {
			ps = append(ps, p.ID)
		}
		slices.Sort(ps)
		if len(ps) == 0 {
			return nil, fmt.Errorf("kafka topic %s has no partitions", t.Name)
		}
		k.parts = ps
		return ps, nil
	}
	return nil, fmt.Errorf("kafka topic %s: not found", k.t.topic)
}

// endOffsets returns the end offset of every partition, by partition.
func (k *kafkaClient) endOffsets(ctx context.Context) (map[int]int64, error) {
	ps, err := k.partitions(ctx)
	if err != nil {
		return nil, err
	}
	reqs := make([]kafka.OffsetRequest, len(ps))
	for i, p := range ps {
		reqs[i] = kafka.LastOffsetOf(p)
	}
	res, err := k.client.ListOffsets(ctx, &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{k.t.topic: reqs}})
	if err != nil {
		return nil, fmt.Errorf("kafka offsets: %w", err)
	}
	out := make(map[int]int64, len(ps))
	for _, po := range res.Topics[k.t.topic] {
		if po.Error != nil {
			return nil, fmt.Errorf("kafka offsets of partition %d: %w", po.Partition, po.Error)
		}
		out[po.Partition] = po.LastOffset
	}
	if len(out) != len(ps) {
		return nil, fmt.Errorf("kafka offsets: %d of %d partitions answered", len(out), len(ps))
	}
	return out, nil
}

func sumOffsets(m map[int]int64) int64 {
	var s int64
	for _, v := range m {
		s += v
	}
	return s
}

// kafkaWait is what waitKafka saw: records stored since the base, and when
// the last of them was first seen.
type kafkaWait struct {
	stored int64
	done   time.Time
}

// waitKafka polls the topic's end offsets every 5 ms until they sum to
// base+want, or have not moved for stall. The time it returns is the poll
// that first saw the last record: at most 5 ms after the broker stored it.
func (k *kafkaClient) waitKafka(ctx context.Context, base, want int64, stall time.Duration) (kafkaWait, error) {
	var w kafkaWait
	last := time.Now()
	w.done = last
	for {
		m, err := k.endOffsets(ctx)
		if err != nil {
			return w, err
		}
		now := time.Now()
		if n := sumOffsets(m) - base; n != w.stored {
			w.stored, w.done, last = n, now, now
		}
		if w.stored >= want {
			return w, nil
		}
		if now.Sub(last) >= stall {
			return w, fmt.Errorf("kafka: %d of %d records stored, none for %s", w.stored, want, stall)
		}
		select {
		case <-ctx.Done():
			return w, errInterrupted
		case <-time.After(5 * time.Millisecond):
		}
	}
}
