package output

// KafkaCounters exposes the kafka output's message counters to the
// black-box tests in package output_test.
func KafkaCounters(o Output) (acked, resent, skipped, failed, abandoned int64) {
	k := o.(*Kafka)
	s := &k.stats
	return s.acked.Load(), s.resent.Load(), s.skipped.Load(), s.failed.Load(), s.abandoned.Load()
}
