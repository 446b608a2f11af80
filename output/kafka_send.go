package output

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"

	"github.com/flowgo/flowgo"
	"github.com/segmentio/kafka-go"
	metadataAPI "github.com/segmentio/kafka-go/protocol/metadata"
)

// Sizes used to keep a produce request's record batch under
// kafka_max_message_bytes before compression: the v2 batch header, and the
// most a record adds to its key and value (length, attributes, timestamp
// and offset deltas, key and value lengths, header count, as varints).
const (
	kafkaBatchOverhead  = 61
	kafkaRecordOverhead = 1 + 5 + 10 + 5 + 5 + 5 + 1
)

// keylessRun is the fewest keyless records worth a produce request of
// their own when a batch is spread over partitions to send in parallel.
const keylessRun = 128

// kafkaPartitions is the topic's layout as the transport last saw it.
type kafkaPartitions struct {
	all  []int // every partition, for keyed messages: a key keeps its partition
	live []int // partitions with a leader, for keyless messages
}

// partitions asks the transport for the topic's partitions. The transport
// answers from its cache; the first call (and the first after a failure)
// asks the brokers, which may create the topic if they allow it.
func (k *Kafka) partitions(ctx context.Context) (kafkaPartitions, error) {
	ctx, cancel := context.WithTimeout(ctx, k.timeout)
	defer cancel()
	r, err := k.transport.RoundTrip(ctx, k.addr, &metadataAPI.Request{
		TopicNames:             []string{k.cfg.Topic},
		AllowAutoTopicCreation: true,
	})
	if err != nil {
		return kafkaPartitions{}, fmt.Errorf("metadata: %w", err)
	}
	res, ok := r.(*metadataAPI.Response)
	if !ok {
		return kafkaPartitions{}, fmt.Errorf("metadata: unexpected response %T", r)
	}
	for _, t := range res.Topics {
		if t.Name != k.cfg.Topic {
			continue
		}
		if t.ErrorCode != 0 {
			return kafkaPartitions{}, fmt.Errorf("topic %s: %w", t.Name, kafka.Error(t.ErrorCode))
		}
		var p kafkaPartitions
		for _, tp := range t.Partitions {
			p.all = append(p.all, int(tp.PartitionIndex))
			if tp.LeaderID >= 0 && tp.ErrorCode == 0 {
				p.live = append(p.live, int(tp.PartitionIndex))
			}
		}
		// A key's partition is its hash modulo the partition count, as an
		// index into the partitions in order; the response that created
		// the topic may list them in any order.
		slices.Sort(p.all)
		slices.Sort(p.live)
		if len(p.all) == 0 {
			return p, fmt.Errorf("topic %s: no partitions", t.Name)
		}
		if len(p.live) == 0 {
			return p, fmt.Errorf("topic %s: no partition has a leader", t.Name)
		}
		return p, nil
	}
	return kafkaPartitions{}, fmt.Errorf("topic %s: %w", k.cfg.Topic, kafka.UnknownTopicOrPartition)
}

// send delivers the unfinished frames of b (kb says which) and marks each
// one finished as soon as it is acknowledged or refused for good. It
// returns an error when some frames are still unfinished.
func (k *Kafka) send(ctx context.Context, b *flowgo.Batch, kb *kafkaBatch) error {
	k.checkSizes(b, kb)
	if kb.todo == 0 {
		return nil
	}
	parts, err := k.partitions(ctx)
	if err != nil {
		return &kafkaWriteError{pending: kb.todo, total: len(kb.done), err: err}
	}
	byPart := k.assign(b, kb, parts)

	var first mutexErr
	busy := 0
	for _, frames := range byPart {
		if len(frames) > 0 {
			busy++
		}
	}
	var wg sync.WaitGroup
	for p, frames := range byPart {
		switch {
		case len(frames) == 0:
		case busy == 1: // one partition: no goroutine needed
			first.set(k.sendPartition(ctx, b, kb, p, frames))
		default:
			wg.Go(func() { first.set(k.sendPartition(ctx, b, kb, p, frames)) })
		}
	}
	wg.Wait()
	if first.err != nil || kb.todo > 0 {
		err := first.err
		if err == nil {
			err = errors.New("records left unsent")
		}
		return &kafkaWriteError{pending: kb.todo, total: len(kb.done), err: err}
	}
	return nil
}

// checkSizes fails, for good, the frames too large for one produce request.
func (k *Kafka) checkSizes(b *flowgo.Batch, kb *kafkaBatch) {
	limit := k.cfg.MaxMessageBytes - kafkaBatchOverhead
	for i, done := range kb.done {
		if done {
			continue
		}
		if n := k.recordSize(b, i); n > limit {
			kb.finish(i, fmt.Errorf("kafka: a message of %d bytes is larger than kafka_max_message_bytes (%d)",
				n+kafkaBatchOverhead, k.cfg.MaxMessageBytes))
		}
	}
}

// keyOf returns the message key of frame i of b, "" for none.
func (k *Kafka) keyOf(b *flowgo.Batch, i int) string {
	if k.key == nil {
		return ""
	}
	return k.key(&b.Records[b.Index[i]])
}

func (k *Kafka) recordSize(b *flowgo.Batch, i int) int {
	return b.Ends[i] - frameStart(b, i) + len(k.keyOf(b, i)) + kafkaRecordOverhead
}

// finish marks frame i finished; err is nil when it was acknowledged.
func (kb *kafkaBatch) finish(i int, err error) {
	kb.mu.Lock()
	kb.done[i] = true
	kb.todo--
	if err != nil {
		kb.perms = append(kb.perms, kafkaFailure{frame: i, err: err})
	}
	kb.mu.Unlock()
}

// assign maps every unfinished frame to a partition, in frame order, and
// returns the frames of each partition (indexed by partition number).
//
// A keyed message goes where the key hashes (murmur2 as Kafka's Java client
// and librdkafka's murmur2 partitioner, over all partitions, so that a key
// keeps its partition while a leader is away). Keyless messages are cut
// into a few even runs, each sent to the next partition that has a leader:
// one record batch per run, several runs in parallel, and over time an
// even spread.
func (k *Kafka) assign(b *flowgo.Batch, kb *kafkaBatch, parts kafkaPartitions) map[int][]int {
	// The partition lists are reused from one batch to the next.
	if k.byPart == nil {
		k.byPart = map[int][]int{}
	}
	byPart := k.byPart
	for p, frames := range byPart {
		byPart[p] = frames[:0]
	}
	if k.key != nil {
		balancer := kafka.Murmur2Balancer{Consistent: true}
		var msg kafka.Message
		var key []byte
		for i, done := range kb.done {
			if done {
				continue
			}
			if s := k.keyOf(b, i); s != "" {
				key = append(key[:0], s...)
				msg.Key = key
			} else {
				msg.Key = nil
			}
			p := balancer.Balance(msg, parts.all...)
			byPart[p] = append(byPart[p], i)
		}
		return byPart
	}
	pending := k.pending[:0]
	for i, done := range kb.done {
		if !done {
			pending = append(pending, i)
		}
	}
	k.pending = pending
	n := len(pending)
	runs := (n + k.cfg.Coalesce - 1) / k.cfg.Coalesce
	if parallel := min(k.cfg.Threads, len(parts.live), n/keylessRun); parallel > runs {
		runs = parallel
	}
	runs = max(runs, 1)
	for r := range runs {
		p := parts.live[(k.next+r)%len(parts.live)]
		lo, hi := r*n/runs, (r+1)*n/runs
		byPart[p] = append(byPart[p], pending[lo:hi]...)
	}
	k.next = (k.next + runs) % len(parts.live)
	return byPart
}

// sendPartition sends the frames of one partition in order, in record
// batches of at most kafka_coalesce messages and kafka_max_message_bytes.
// It stops at the first request that fails, so that no later message of
// the partition is stored before an earlier one.
func (k *Kafka) sendPartition(ctx context.Context, b *flowgo.Batch, kb *kafkaBatch, p int, frames []int) error {
	limit := k.cfg.MaxMessageBytes - kafkaBatchOverhead
	for len(frames) > 0 {
		n, size := 0, 0
		for n < len(frames) && n < k.cfg.Coalesce {
			s := k.recordSize(b, frames[n])
			if n > 0 && size+s > limit {
				break
			}
			size += s
			n++
		}
		if err := k.sendChunk(ctx, b, kb, p, frames[:n]); err != nil {
			return err
		}
		frames = frames[n:]
	}
	return nil
}

// sendChunk sends frames as one produce request. When the broker refuses
// the request as too large or invalid, the chunk is split in two and each
// half sent in turn, down to the single message that is then failed for
// good: the others still get through.
func (k *Kafka) sendChunk(ctx context.Context, b *flowgo.Batch, kb *kafkaBatch, p int, frames []int) error {
	var bd *kafkaBuilder
	select {
	case bd = <-k.builders:
	case <-ctx.Done():
		return ctx.Err()
	}
	var resent int64
	for _, f := range frames {
		if kb.sent[f] {
			resent++
		}
		kb.sent[f] = true
	}
	k.stats.resent.Add(resent)
	set := bd.build(b, frames, k.keyOf)
	res, err := k.client.RawProduce(ctx, &kafka.RawProduceRequest{
		Topic:        k.cfg.Topic,
		Partition:    p,
		RequiredAcks: k.acks,
		RawRecords:   set,
	})
	if err != nil && (errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)) {
		// kafka-go may still be encoding or sending this request: its
		// record set must not be reused.
		bd = newKafkaBuilder(k.codec)
	}
	k.builders <- bd
	if err == nil && res != nil {
		err = res.Error
	}
	switch {
	case err == nil:
		for _, f := range frames {
			kb.finish(f, nil)
		}
		k.stats.acked.Add(int64(len(frames)))
		return nil
	case errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded):
		k.stats.abandoned.Add(1)
		return fmt.Errorf("partition %d: %w", p, err)
	case refusedForGood(err):
		if len(frames) == 1 {
			kb.finish(frames[0], fmt.Errorf("kafka: refused by the broker: %w", err))
			return nil
		}
		half := len(frames) / 2
		if err := k.sendChunk(ctx, b, kb, p, frames[:half]); err != nil {
			return err
		}
		return k.sendChunk(ctx, b, kb, p, frames[half:])
	}
	return fmt.Errorf("partition %d: %w", p, err)
}

// refusedForGood reports broker errors that are about the records, not
// about the cluster's state: sending the same records again cannot help.
func refusedForGood(err error) bool {
	return errors.Is(err, kafka.MessageSizeTooLarge) || errors.Is(err, kafka.RecordListTooLarge) ||
		errors.Is(err, kafka.InvalidRecord)
}
