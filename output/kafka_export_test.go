package output

// KafkaCounters exposes the kafka output's message counters to the
// black-box tests in package output_test.
func KafkaCounters(o Output) (acked, resent, skipped, failed, abandoned int64) {
	k := o.(*Kafka)
	s := &k.stats
	return s.acked.Load(), s.resent.Load(), s.skipped.Load(), s.failed.Load(), s.abandoned.Load()
}

// AppendLZ4Frame compresses src as the kafka output does, for the tests of
// the LZ4 compressor.
func AppendLZ4Frame(dst, src []byte) []byte {
	var c lz4Compressor
	return c.appendFrame(dst, src)
}
