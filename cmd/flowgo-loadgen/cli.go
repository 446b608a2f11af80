package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/flowgo/flowgo"
	"github.com/flowgo/flowgo/internal/sample"
)

// Exit codes.
const (
	exitOK      = 0
	exitFailure = 1 // the run failed part way (connection refused or broken)
	exitUsage   = 2 // bad command line
)

// options is the parsed command line.
type options struct {
	addr      string
	proto     string
	format    string
	framing   flowgo.Framing
	conns     int
	count     int64
	duration  time.Duration
	rate      float64
	pool      int
	writeSize int
	batch     int
	seed      uint64
	out       string
	sndbuf    int

	tlsVersion string
	cert, key  string
	ca         string
	insecure   bool
	serverName string

	kafkaWait string        // host:port/topic whose end offsets tell when the records arrived
	waitStall time.Duration // how long the sink may see nothing new before the run counts as lossy

	latency           string // the sink that reads records back: file:PATH, tls:ADDR, kafka:HOST:PORT/TOPIC
	sinkCert, sinkKey string
	latencyTrace      string // a file for the latency per 10 ms of reading
}

const usageHead = `flowgo-loadgen sends realistic syslog traffic to a server, or writes it to a file.

Usage:
  flowgo-loadgen -addr HOST:PORT [-proto tcp|tls|udp] [-format rfc5424|rfc3164]
                 [-framing line|syslen|nul] [-c N] (-n N | -d DURATION) [-rate R] ...
  flowgo-loadgen -o FILE -n N [-format F] [-framing F]

Examples:
  flowgo-loadgen -addr 127.0.0.1:5514 -c 4 -n 10000000                  # TCP, line framing
  flowgo-loadgen -addr 127.0.0.1:5514 -framing syslen -d 30s -rate 200000
  flowgo-loadgen -addr localhost:6514 -proto tls -tls-version 1.3 -ca ca.pem -n 1000000
  flowgo-loadgen -addr 127.0.0.1:5514 -proto udp -c 2 -batch 64 -n 5000000
  flowgo-loadgen -o /tmp/in.log -n 10000000                             # a 2.4 GB input file

The summary goes to stderr, and as one key=value line to stdout (for scripts):
  records=N bytes=N seconds=S records_per_s=R mb_per_s=M start_unix=T end_unix=T
MB is 10^6 bytes. The clock starts at the first write, after every connection
is up and every line is generated, and stops when the last write returned.

Flags:
`

// parse reads the command line. It returns flag.ErrHelp for -h.
func parse(args []string, stderr io.Writer) (*options, error) {
	o := &options{}
	fs := flag.NewFlagSet("flowgo-loadgen", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), usageHead)
		fs.PrintDefaults()
	}
	fs.StringVar(&o.addr, "addr", "", "server address `host:port` (IPv6: [::1]:5514)")
	fs.StringVar(&o.proto, "proto", "tcp", "transport: tcp, tls or udp")
	fs.StringVar(&o.format, "format", "rfc5424", "message format: rfc5424 or rfc3164")
	fs.StringVar((*string)(&o.framing), "framing", string(flowgo.FramingLine), "stream framing: line (LF), syslen (RFC 6587 octet counting) or nul; UDP sends one message per datagram, unframed")
	fs.IntVar(&o.conns, "c", 1, "number of connections (tcp, tls) or sockets (udp), each in its own goroutine")
	fs.Int64Var(&o.count, "n", 0, "total records to send, spread evenly over the connections (0: no limit, needs -d)")
	fs.DurationVar(&o.duration, "d", 0, "send for this long (e.g. 30s); with -n too, stop at whichever comes first")
	fs.Float64Var(&o.rate, "rate", 0, "total records per second, spread over the connections (0: as fast as possible)")
	fs.IntVar(&o.pool, "pool", 200000, "distinct lines generated in advance and sent round-robin (at most -n)")
	fs.IntVar(&o.writeSize, "write-size", 256<<10, "bytes per write on tcp and tls (whole frames; at least one)")
	fs.IntVar(&o.batch, "batch", 64, "udp: datagrams per sendmmsg call (1: one write per datagram)")
	fs.IntVar(&o.sndbuf, "sndbuf", 0, "socket send buffer in bytes (0: the system's default)")
	fs.Uint64Var(&o.seed, "seed", 1, "seed of the line generator (runs with the same flags send the same lines)")
	fs.StringVar(&o.out, "o", "", "write -n records to this `file` instead of sending them (-: stdout)")
	fs.StringVar(&o.tlsVersion, "tls-version", "", "tls: 1.2 or 1.3 (both minimum and maximum; empty: negotiate, up to 1.3)")
	fs.StringVar(&o.cert, "cert", "", "tls: client certificate `file` (PEM), for servers that verify peers")
	fs.StringVar(&o.key, "key", "", "tls: client key `file` (PEM; default: the -cert file)")
	fs.StringVar(&o.ca, "ca", "", "tls: CA `file` (PEM) that verifies the server's certificate")
	fs.BoolVar(&o.insecure, "insecure", false, "tls: do not verify the server's certificate")
	fs.StringVar(&o.serverName, "server-name", "", "tls: name to verify and send as SNI (default: the host of -addr)")
	fs.StringVar(&o.kafkaWait, "kafka-wait", "", "after sending, poll this Kafka topic's end offsets (`host:port/topic`) every 5 ms until they grew by the records sent; prints stored= and done_unix=")
	fs.DurationVar(&o.waitStall, "wait-stall", 20*time.Second, "with -kafka-wait or -latency: give up when nothing new arrived for this long")
	fs.StringVar(&o.latency, "latency", "", "stamp each record with its send time and measure end-to-end latency where the collector delivers it: file:PATH (tailed), tls:ADDR (a TLS listener for its TLS output; -sink-cert), kafka:HOST:PORT/TOPIC (consumed); prints p50, p99 and max")
	fs.StringVar(&o.latencyTrace, "latency-trace", "", "-latency: write the records read and their largest latency per 10 ms of reading to this `file`")
	fs.StringVar(&o.sinkCert, "sink-cert", "", "-latency tls: the listener's certificate `file` (PEM)")
	fs.StringVar(&o.sinkKey, "sink-key", "", "-latency tls: the listener's key `file` (PEM; default: the -sink-cert file)")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	return o, o.validate()
}

func (o *options) validate() error {
	switch o.format {
	case "rfc5424", "rfc3164":
	default:
		return fmt.Errorf("-format %q: want rfc5424 or rfc3164", o.format)
	}
	switch o.framing {
	case flowgo.FramingLine, flowgo.FramingSyslen, flowgo.FramingNUL:
	default:
		return fmt.Errorf("-framing %q: want line, syslen or nul", o.framing)
	}
	if o.count < 0 || o.duration < 0 || o.rate < 0 {
		return errors.New("-n, -d and -rate must not be negative")
	}
	if o.pool < 1 || o.writeSize < 1 || o.batch < 1 || o.conns < 1 || o.sndbuf < 0 {
		return errors.New("-c, -pool, -write-size and -batch must be at least 1")
	}
	if o.out != "" {
		if o.addr != "" {
			return errors.New("-o and -addr exclude each other")
		}
		if o.count == 0 {
			return errors.New("-o needs -n")
		}
		return nil
	}
	if o.addr == "" {
		return errors.New("-addr or -o is required")
	}
	switch o.proto {
	case "tcp", "tls", "udp":
	default:
		return fmt.Errorf("-proto %q: want tcp, tls or udp", o.proto)
	}
	if o.count == 0 && o.duration == 0 {
		return errors.New("-n or -d is required")
	}
	if o.kafkaWait != "" {
		if _, err := parseKafkaTarget(o.kafkaWait); err != nil {
			return fmt.Errorf("-kafka-wait %w", err)
		}
	}
	if o.waitStall <= 0 {
		return errors.New("-wait-stall must be positive")
	}
	if o.latency != "" {
		kind, arg, _ := strings.Cut(o.latency, ":")
		switch {
		case o.proto == "udp":
			return errors.New("-latency works with -proto tcp and tls")
		case kind != "file" && kind != "tls" && kind != "kafka" || arg == "":
			return fmt.Errorf("-latency %q: want file:PATH, tls:ADDR or kafka:HOST:PORT/TOPIC", o.latency)
		case kind == "tls" && o.sinkCert == "":
			return errors.New("-latency tls: needs -sink-cert")
		}
	}
	if o.latencyTrace != "" && o.latency == "" {
		return errors.New("-latency-trace needs -latency")
	}
	if (o.sinkCert != "" || o.sinkKey != "") && !strings.HasPrefix(o.latency, "tls:") {
		return errors.New("-sink-cert and -sink-key need -latency tls:ADDR")
	}
	if o.count > 0 && o.count < int64(o.conns) {
		return fmt.Errorf("-n %d is less than -c %d: every connection sends at least one record", o.count, o.conns)
	}
	switch o.tlsVersion {
	case "", "1.2", "1.3":
	default:
		return fmt.Errorf("-tls-version %q: want 1.2 or 1.3", o.tlsVersion)
	}
	tlsFlags := o.tlsVersion != "" || o.cert != "" || o.key != "" || o.ca != "" || o.insecure || o.serverName != ""
	if tlsFlags && o.proto != "tls" {
		return errors.New("-tls-version, -cert, -key, -ca, -insecure and -server-name need -proto tls")
	}
	if o.key != "" && o.cert == "" {
		return errors.New("-key needs -cert")
	}
	if o.proto == "tls" && o.ca == "" && !o.insecure {
		return errors.New("-proto tls needs -ca FILE to verify the server, or -insecure")
	}
	return nil
}

// generator returns the line generator for the format, seeded with seed.
func (o *options) generator(seed uint64) func([]byte) []byte {
	g := sample.New(seed)
	if o.format == "rfc3164" {
		return g.RFC3164
	}
	return g.RFC5424
}

// result is what a run sent.
type result struct {
	records, bytes int64
	start, end     time.Time
	// With -kafka-wait: the records the topic gained, and when the last
	// of them was seen.
	stored *int64
	done   time.Time
	// With -latency: what the sink measured.
	latency *latencyResult
}

func (r result) seconds() float64 { return r.end.Sub(r.start).Seconds() }

// summary prints the human line to stderr and, unless stdout carries data,
// the key=value line to stdout.
func (r result) summary(stdout, stderr io.Writer, verb, over string) {
	s := r.seconds()
	var rps, mbps float64
	if s > 0 {
		rps = float64(r.records) / s
		mbps = float64(r.bytes) / s / 1e6
	}
	fmt.Fprintf(stderr, "flowgo-loadgen: %s %d records (%.1f MB)%s in %.3f s: %.0f records/s, %.1f MB/s\n",
		verb, r.records, float64(r.bytes)/1e6, over, s, rps, mbps)
	if r.stored != nil {
		fmt.Fprintf(stderr, "flowgo-loadgen: the topic gained %d records, the last %.3f s after the first was sent\n",
			*r.stored, r.done.Sub(r.start).Seconds())
	}
	if l := r.latency; l != nil {
		fmt.Fprintf(stderr, "flowgo-loadgen: latency of %d records read back: p50 %.2f ms, p99 %.2f ms, max %.2f ms",
			l.n, ms(l.p50), ms(l.p99), ms(l.max))
		if l.unknown > 0 {
			fmt.Fprintf(stderr, " (%d records without a stamp)", l.unknown)
		}
		fmt.Fprintf(stderr, "; the load generator's 1 ms sleeps woke up to %.1f ms late\n", ms(l.late))
		if l.split {
			fmt.Fprintf(stderr, "flowgo-loadgen: up to the records' Kafka timestamp (the producer built their batch): p99 %.0f ms, max %.0f ms; "+
				"after it (produce, broker, consumer): p50 %.0f ms, p99 %.0f ms, max %.0f ms\n",
				ms(l.beforeP99), ms(l.beforeMax), ms(l.afterP50), ms(l.afterP99), ms(l.afterMax))
		}
		if l.traceErr != nil {
			fmt.Fprintf(stderr, "flowgo-loadgen: -latency-trace: %v\n", l.traceErr)
		}
	}
	if stdout != nil {
		fmt.Fprintf(stdout, "records=%d bytes=%d seconds=%.6f records_per_s=%.0f mb_per_s=%.2f start_unix=%s end_unix=%s",
			r.records, r.bytes, s, rps, mbps, unixString(r.start), unixString(r.end))
		if r.stored != nil {
			fmt.Fprintf(stdout, " stored=%d done_unix=%s", *r.stored, unixString(r.done))
		}
		if l := r.latency; l != nil {
			fmt.Fprintf(stdout, " lat_records=%d lat_p50_ms=%.3f lat_p99_ms=%.3f lat_max_ms=%.3f lat_sleep_late_ms=%.1f",
				l.n, ms(l.p50), ms(l.p99), ms(l.max), ms(l.late))
			if l.split {
				fmt.Fprintf(stdout, " lat_before_ts_p99_ms=%.0f lat_after_ts_p50_ms=%.0f lat_after_ts_p99_ms=%.0f lat_after_ts_max_ms=%.0f",
					ms(l.beforeP99), ms(l.afterP50), ms(l.afterP99), ms(l.afterMax))
			}
		}
		fmt.Fprintln(stdout)
	}
}

// unixString formats t as seconds since the epoch with nanoseconds, the
// precision `date +%s.%N` and `stat -c %.9Y` give to scripts.
func unixString(t time.Time) string {
	return fmt.Sprintf("%d.%09d", t.Unix(), t.Nanosecond())
}

// run runs one command line and returns the exit code.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	o, err := parse(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return exitOK
	}
	if err != nil {
		fmt.Fprintf(stderr, "flowgo-loadgen: %v (see -h)\n", err)
		return exitUsage
	}
	if o.out != "" {
		res, err := writeFile(ctx, o, stdout)
		if err != nil {
			fmt.Fprintf(stderr, "flowgo-loadgen: %v\n", err)
			return exitFailure
		}
		if o.out == "-" {
			stdout = nil
		}
		res.summary(stdout, stderr, "wrote", "")
		return exitOK
	}
	var kc *kafkaClient
	var base int64
	if o.kafkaWait != "" {
		t, _ := parseKafkaTarget(o.kafkaWait)
		kc = newKafkaClient(t)
		m, err := kc.endOffsets(ctx)
		if err != nil {
			fmt.Fprintf(stderr, "flowgo-loadgen: -kafka-wait: %v\n", err)
			return exitFailure
		}
		base = sumOffsets(m)
	}
	var sink *latencySink
	if o.latency != "" {
		if sink, err = startSink(ctx, o); err != nil {
			fmt.Fprintf(stderr, "flowgo-loadgen: -latency: %v\n", err)
			return exitFailure
		}
	}
	var res result
	if o.proto == "udp" {
		res, err = sendUDP(ctx, o)
	} else {
		res, err = sendStream(ctx, o)
	}
	if kc != nil && err == nil {
		var w kafkaWait
		w, err = kc.waitKafka(ctx, base, res.records, o.waitStall)
		res.stored, res.done = &w.stored, w.done
	}
	if sink != nil {
		if err == nil {
			err = sink.wait(ctx, res.records, o.waitStall)
		}
		lat := sink.close()
		res.latency = &lat
	}
	over := fmt.Sprintf(" over %d %s %s", o.conns, o.proto, plural(o.conns, "connection", "connections"))
	if o.proto == "udp" {
		over = fmt.Sprintf(" over %d udp %s", o.conns, plural(o.conns, "socket", "sockets"))
	}
	if !res.start.IsZero() {
		res.summary(stdout, stderr, "sent", over)
	}
	if err != nil {
		fmt.Fprintf(stderr, "flowgo-loadgen: %v\n", err)
		return exitFailure
	}
	return exitOK
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

// share returns connection i's part of total records out of n connections:
// the remainder goes to the first ones, so the parts add up to total.
func share(total int64, i, n int) int64 {
	s := total / int64(n)
	if int64(i) < total%int64(n) {
		s++
	}
	return s
}

// errorsJoin joins the distinct errors of several connections, so that one
// failure repeated on every connection is reported once.
func errorsJoin(errs []error) error {
	seen := map[string]bool{}
	var msgs []string
	for _, err := range errs {
		if err == nil || seen[err.Error()] {
			continue
		}
		seen[err.Error()] = true
		msgs = append(msgs, err.Error())
	}
	if len(msgs) == 0 {
		return nil
	}
	return errors.New(strings.Join(msgs, "; "))
}
