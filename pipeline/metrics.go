package pipeline

import (
	"time"

	"github.com/flowgo/flowgo/queue"

	"github.com/flowgo/flowgo/input"

	"github.com/prometheus/client_golang/prometheus"
)

// pipelineMetrics holds the distributions a pipeline observes per output
// write (never per record): how many records a write carried and how long
// it took.
type pipelineMetrics struct {
	writeRecords prometheus.Histogram
	writeSeconds prometheus.Histogram
}

func newPipelineMetrics(pipeline string) *pipelineMetrics {
	labels := prometheus.Labels{"pipeline": pipeline}
	return &pipelineMetrics{
		writeRecords: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:        "flowgo_output_write_records",
			Help:        "Records per output write (queued batches are written together).",
			Buckets:     prometheus.ExponentialBuckets(1, 4, 9), // 1 .. 65536
			ConstLabels: labels,
		}),
		writeSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:        "flowgo_output_write_duration_seconds",
			Help:        "Time an output write took, failed writes included.",
			Buckets:     prometheus.ExponentialBuckets(0.0001, 4, 10), // 100µs .. 26s
			ConstLabels: labels,
		}),
	}
}

func (m *pipelineMetrics) observeWrite(records int, d time.Duration) {
	m.writeRecords.Observe(float64(records))
	m.writeSeconds.Observe(d.Seconds())
}

// metricsCollector exports the counters of a set of pipelines at scrape
// time: the hot path only bumps atomics, once per batch.
type metricsCollector struct {
	pipelines func() []*Pipeline
}

// The labels of input metrics; an input's own counters use them too.
var (
	inputLabels       = []string{"pipeline", "input", "type"}
	inputReasonLabels = []string{"pipeline", "input", "type", "reason"}
)

var (
	descInRecords   = prometheus.NewDesc("flowgo_input_records_total", "Records decoded and queued.", []string{"pipeline", "input", "type"}, nil)
	descInBytes     = prometheus.NewDesc("flowgo_input_bytes_total", "Raw bytes read by the input.", []string{"pipeline", "input", "type"}, nil)
	descInBatches   = prometheus.NewDesc("flowgo_input_batches_total", "Batches the input handed to the queue.", []string{"pipeline", "input", "type"}, nil)
	descInRejected  = prometheus.NewDesc("flowgo_input_rejected_total", "Frames rejected (kept in the dead-letter file when configured), by reason.", []string{"pipeline", "input", "type", "reason"}, nil)
	descInDropped   = prometheus.NewDesc("flowgo_input_dropped_total", "Records lost before the queue, by reason (UDP: kernel_receive_buffer; chunked GELF: incomplete messages expired or evicted).", []string{"pipeline", "input", "type", "reason"}, nil)
	descInLost      = prometheus.NewDesc("flowgo_input_lost_total", "Records decoded but not queued because the pipeline stopped for good.", []string{"pipeline", "input", "type"}, nil)
	descInConns     = prometheus.NewDesc("flowgo_input_connections", "Connections open now.", []string{"pipeline", "input", "type"}, nil)
	descInRefused   = prometheus.NewDesc("flowgo_input_connections_refused_total", "Connections refused because max_connections were open.", []string{"pipeline", "input", "type"}, nil)
	descInHandshake = prometheus.NewDesc("flowgo_input_tls_handshake_failures_total", "TLS handshakes that failed.", []string{"pipeline", "input", "type"}, nil)
	descInAborted   = prometheus.NewDesc("flowgo_input_connections_aborted_total", "Connections that ended with what the peer sent possibly lost, by reason (reset: reset by the peer; unread: closed by flowgo with bytes unread; error: another read error).", []string{"pipeline", "input", "type", "reason"}, nil)
	descInUp        = prometheus.NewDesc("flowgo_input_up", "1 while the input runs, 0 when it stopped on an error (as /readyz says).", []string{"pipeline", "input", "type"}, nil)
	descOutReady    = prometheus.NewDesc("flowgo_output_ready", "1 when the output proved it can deliver (a probe or a write succeeded) and nothing failed since, as /readyz says; else 0.", []string{"pipeline", "output"}, nil)

	descOutRecords = prometheus.NewDesc("flowgo_output_records_total", "Records the output delivered.", []string{"pipeline", "output"}, nil)
	descOutBytes   = prometheus.NewDesc("flowgo_output_bytes_total", "Bytes the output delivered.", []string{"pipeline", "output"}, nil)
	descOutWrites  = prometheus.NewDesc("flowgo_output_writes_total", "Output writes that succeeded.", []string{"pipeline", "output"}, nil)
	descOutRetries = prometheus.NewDesc("flowgo_output_write_retries_total", "Output writes that failed and were retried.", []string{"pipeline", "output"}, nil)
	descOutFailed  = prometheus.NewDesc("flowgo_output_rejected_total", "Records the output side gave up on for good, by reason (encode, refused).", []string{"pipeline", "output", "reason"}, nil)
	descLost       = prometheus.NewDesc("flowgo_pipeline_lost_total", "Records accepted but not delivered when the pipeline stopped.", []string{"pipeline"}, nil)

	descQueueRecords = prometheus.NewDesc("flowgo_queue_records", "Records held by the queue and the output stage.", []string{"pipeline"}, nil)
	descQueueBytes   = prometheus.NewDesc("flowgo_queue_bytes", "Bytes held by the queue and the output stage.", []string{"pipeline"}, nil)
	descQueueMaxRecs = prometheus.NewDesc("flowgo_queue_capacity_records", "Most records the queue holds (queuesize).", []string{"pipeline"}, nil)
	descQueueMaxByte = prometheus.NewDesc("flowgo_queue_capacity_bytes", "Most bytes the queue holds (queue_max_bytes).", []string{"pipeline"}, nil)
)

func (c *metricsCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descInRecords, descInBytes, descInBatches, descInRejected, descInDropped, descInLost,
		descInConns, descInRefused, descInHandshake, descInAborted, descInUp, descOutReady, descOutRecords, descOutBytes, descOutWrites, descOutRetries,
		descOutFailed, descLost, descQueueRecords, descQueueBytes, descQueueMaxRecs, descQueueMaxByte,
		descDiskRecords, descDiskBytes, descDiskMaxBytes, descDiskSegments, descDiskAge, descDiskReplayed,
		descDiskDamRecs, descDiskDamBytes, descDiskWriteErr, descDiskResets, descDiskMissing, descDiskSync} {
		ch <- d
	}
	// The histograms' descriptors vary with the pipelines; an unchecked
	// collector for them is fine.
}

func (c *metricsCollector) Collect(ch chan<- prometheus.Metric) {
	counter := func(d *prometheus.Desc, v int64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	gauge := func(d *prometheus.Desc, v int64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, float64(v), labels...)
	}
	for _, p := range c.pipelines() {
		name := p.Name
		outName := p.out.name()
		for _, in := range p.in.countersSnapshot() {
			ctr, l := in.ctr, []string{name, in.name, in.typ}
			counter(descInRecords, ctr.received.Load(), l...)
			counter(descInBytes, ctr.bytes.Load(), l...)
			counter(descInBatches, ctr.batches.Load(), l...)
			counter(descInLost, ctr.lost.Load(), l...)
			if in.running {
				gauge(descInUp, boolValue(in.up), l...)
			}
			for reason, v := range map[string]int64{"decode": ctr.rejDecode.Load(), "too_long": ctr.rejTooLong.Load(),
				"framing": ctr.rejFraming.Load(), "other": ctr.rejOther.Load()} {
				counter(descInRejected, v, append(l, reason)...)
			}
			ctr.dropMu.Lock()
			for reason, v := range ctr.dropped {
				counter(descInDropped, v.Load(), append(l, reason)...)
			}
			if _, seen := ctr.dropped[kernelDrops]; !seen && in.typ == "udp" {
				// From the start, so that an alert on its increase sees
				// the first drop.
				counter(descInDropped, 0, append(l, kernelDrops)...)
			}
			ctr.dropMu.Unlock()
			if in.conns != nil {
				open, refused, hs := in.conns.ConnCounts()
				gauge(descInConns, open, l...)
				counter(descInRefused, refused, l...)
				counter(descInHandshake, hs, l...)
			}
			if ac, ok := in.conns.(input.ConnAbortCounter); ok {
				reset, unread, readErr := ac.ConnsAborted()
				counter(descInAborted, reset, append(l, "reset")...)
				counter(descInAborted, unread, append(l, "unread")...)
				counter(descInAborted, readErr, append(l, "error")...)
			}
			if in.own != nil {
				for _, c := range in.own.Counters() {
					names, values := inputLabels, l
					if c.Reason != "" {
						names, values = inputReasonLabels, append(l[:len(l):len(l)], c.Reason)
					}
					d := prometheus.NewDesc("flowgo_input_"+c.Name, c.Help, names, nil)
					counter(d, c.Value, values...)
				}
			}
		}
		st := &p.stats
		ready, _ := p.outputReady()
		gauge(descOutReady, boolValue(ready), name, outName)
		counter(descOutRecords, st.Sent.Load(), name, outName)
		counter(descOutBytes, st.BytesOut.Load(), name, outName)
		counter(descOutWrites, st.Writes.Load(), name, outName)
		counter(descOutRetries, st.Retries.Load(), name, outName)
		counter(descOutFailed, st.EncodeFailed.Load(), name, outName, "encode")
		counter(descOutFailed, st.Failed.Load(), name, outName, "refused")
		counter(descLost, st.Lost.Load(), name)
		if p.disk != nil {
			collectDisk(ch, name, p.disk)
		} else {
			recs, bytes, maxRecs, maxBytes := p.mem.Usage()
			gauge(descQueueRecords, int64(recs), name)
			gauge(descQueueBytes, int64(bytes), name)
			gauge(descQueueMaxRecs, int64(maxRecs), name)
			gauge(descQueueMaxByte, int64(maxBytes), name)
		}
		p.out.metrics.writeRecords.Collect(ch)
		p.out.metrics.writeSeconds.Collect(ch)
	}
}

// kernelDrops is the drop reason of datagrams the kernel dropped (UDP).
const kernelDrops = "kernel_receive_buffer"

func boolValue(b bool) int64 {
	if b {
		return 1
	}
	return 0
}

// The disk queue's metrics, per pipeline ([queue] type = "disk").
var (
	descDiskRecords  = prometheus.NewDesc("flowgo_queue_disk_records", "Records in the disk queue not yet confirmed by the output.", []string{"pipeline"}, nil)
	descDiskBytes    = prometheus.NewDesc("flowgo_queue_disk_bytes", "Bytes of the disk queue's segment files.", []string{"pipeline"}, nil)
	descDiskMaxBytes = prometheus.NewDesc("flowgo_queue_disk_capacity_bytes", "The disk queue's budget ([queue] max_bytes).", []string{"pipeline"}, nil)
	descDiskSegments = prometheus.NewDesc("flowgo_queue_disk_segments", "Segment files of the disk queue.", []string{"pipeline"}, nil)
	descDiskAge      = prometheus.NewDesc("flowgo_queue_disk_oldest_age_seconds", "How long the oldest record read and not yet confirmed has waited since it was queued.", []string{"pipeline"}, nil)
	descDiskReplayed = prometheus.NewDesc("flowgo_queue_replayed_total", "Records delivered again after a restart: sent before it but not confirmed (possible duplicates).", []string{"pipeline"}, nil)
	descDiskDamRecs  = prometheus.NewDesc("flowgo_queue_damaged_records_total", "Records the disk queue lost to damage (failed checksums), as far as batch headers tell.", []string{"pipeline"}, nil)
	descDiskDamBytes = prometheus.NewDesc("flowgo_queue_damaged_bytes_total", "Bytes of the disk queue skipped as damaged, including torn writes truncated at start.", []string{"pipeline"}, nil)
	descDiskWriteErr = prometheus.NewDesc("flowgo_queue_write_errors_total", "Disk queue appends that failed (disk full, I/O error) and were retried.", []string{"pipeline"}, nil)
	descDiskResets   = prometheus.NewDesc("flowgo_queue_position_resets_total", "Read positions recovered at start: missing or damaged position file, or a missing segment.", []string{"pipeline"}, nil)
	descDiskMissing  = prometheus.NewDesc("flowgo_queue_missing_segments_total", "Segments found missing between others at start (deleted behind flowgo's back): their records are lost.", []string{"pipeline"}, nil)
	descDiskSync     = prometheus.NewDesc("flowgo_queue_sync_duration_seconds", "How long each fsync of a disk queue segment took.", []string{"pipeline"}, nil)
)

func collectDisk(ch chan<- prometheus.Metric, name string, d *queue.Disk) {
	u := d.Usage()
	st := &d.Stats
	g := func(desc *prometheus.Desc, v float64) {
		ch <- prometheus.MustNewConstMetric(desc, prometheus.GaugeValue, v, name)
	}
	c := func(desc *prometheus.Desc, v int64) {
		ch <- prometheus.MustNewConstMetric(desc, prometheus.CounterValue, float64(v), name)
	}
	g(descQueueRecords, float64(u.Records))
	g(descQueueBytes, float64(u.Bytes))
	g(descQueueMaxByte, float64(u.MaxBytes))
	g(descDiskRecords, float64(u.Records))
	g(descDiskBytes, float64(u.Bytes))
	g(descDiskMaxBytes, float64(u.MaxBytes))
	g(descDiskSegments, float64(u.Segments))
	g(descDiskAge, u.OldestAge.Seconds())
	c(descDiskReplayed, st.Replayed.Load())
	c(descDiskDamRecs, st.DamagedRecords.Load())
	c(descDiskDamBytes, st.DamagedBytes.Load()+st.TornBytes.Load())
	c(descDiskWriteErr, st.WriteErrors.Load())
	c(descDiskResets, st.PositionResets.Load())
	c(descDiskMissing, st.MissingSegments.Load())
	count, sum, buckets := st.SyncSeconds.Snapshot()
	ch <- prometheus.MustNewConstHistogram(descDiskSync, count, sum, buckets, name)
}
