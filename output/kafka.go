package output

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/flowgo/flowgo"
	"github.com/flowgo/flowgo/config"
	"github.com/flowgo/flowgo/internal/tlsconf"
	"github.com/segmentio/kafka-go"
	"github.com/segmentio/kafka-go/sasl"
	"github.com/segmentio/kafka-go/sasl/plain"
	"github.com/segmentio/kafka-go/sasl/scram"
)

func init() {
	Register("kafka", Type{
		Parse:          parseKafka,
		DefaultFraming: func(string) flowgo.Framing { return flowgo.FramingNoop },
		FixedFraming:   flowgo.FramingNoop,
	})
}

// Defaults of the kafka output's keys.
const (
	DefaultKafkaAcks            = -1 // all in-sync replicas; Flowgger's default is 0
	DefaultKafkaTimeout         = 60000
	DefaultKafkaThreads         = 4
	DefaultKafkaCoalesce        = 1000
	DefaultKafkaCompression     = "none"
	DefaultKafkaFlushInterval   = 100 * time.Millisecond
	DefaultKafkaKey             = "none"
	DefaultKafkaClientID        = "flowgo"
	DefaultKafkaMaxMessageBytes = 1_000_000 // librdkafka's message.max.bytes; brokers accept 1048588
)

// kafkaMetadataTTL bounds how long the transport trusts its cached view of
// the topic (partitions, leaders). A failed write drops the cache at once
// (see Write), so the TTL only matters for changes nothing failed on, such
// as added partitions.
const kafkaMetadataTTL = 5 * time.Second

// kafkaKeys holds the [output] keys of the kafka type. Flowgger's keys
// keep their meaning, except that kafka_acks defaults to -1 (Flowgger: 0).
type kafkaKeys struct {
	// Brokers are the bootstrap brokers, "host:port" (required).
	Brokers []string `toml:"kafka_brokers"`
	// Topic is the one topic written to (required). Brokers that allow it
	// create it on first use.
	Topic string `toml:"kafka_topic"`
	// Acks is what a broker waits for before acknowledging: -1 every
	// in-sync replica, 1 the leader, 0 nothing (best effort: losses and
	// refusals go unnoticed, order is not kept; a startup warning says so).
	Acks int `toml:"kafka_acks"`
	// Timeout (an integer counts milliseconds) is the longest one produce request may take,
	// from sending to acknowledgement; the brokers are given half of it to
	// gather replica acknowledgements, kafka-go's rule, leaving the rest for
	// the network. A request that times out is retried.
	Timeout config.Duration[config.Milliseconds] `toml:"kafka_timeout"`
	// Threads is the most produce requests in flight at once for a batch.
	// A partition never has more than one, so order per partition (and
	// per key) holds for any value.
	Threads int `toml:"kafka_threads"`
	// Coalesce is the most records in one Kafka record batch (one produce
	// request per partition). flowgo never waits to fill one: each batch
	// the pipeline hands over is sent at once.
	Coalesce int `toml:"kafka_coalesce"`
	// Compression is none, gzip, snappy, lz4 or zstd (any case).
	Compression string `toml:"kafka_compression"`
	// FlushInterval is the longest a record may wait in the output before
	// it is sent. The output holds no records (a batch is sent as soon as
	// the pipeline hands it over), so the bound is always met; the key is
	// kept for configs written for the time-based flush Flowgger lacked.
	FlushInterval time.Duration `toml:"kafka_flush_interval"`
	// Key names the record field used as message key: none, hostname,
	// appname, procid or msgid. Records with the same key go to the same
	// partition and stay in order; a record without that field has no key
	// and goes where an empty key goes.
	Key string `toml:"kafka_key"`
	// ClientID is the client.id brokers see in their logs and quotas.
	ClientID string `toml:"kafka_client_id"`
	// MaxMessageBytes bounds a record batch before compression, and so
	// the largest record sent; larger records fail at once and go to the
	// dead-letter file. Keep it at or under the topic's max.message.bytes.
	MaxMessageBytes int `toml:"kafka_max_message_bytes"`
	// TLS connects to the brokers over TLS, verifying their certificates
	// against TLSCAFile (system roots when empty) unless TLSVerify is
	// false; TLSCert and TLSKey are the client certificate, if the brokers
	// ask for one; TLSServerName overrides the name checked (and sent as
	// SNI), by default each broker's host.
	TLS           bool   `toml:"kafka_tls"`
	TLSCAFile     string `toml:"kafka_tls_ca_file"`
	TLSCert       string `toml:"kafka_tls_cert"`
	TLSKey        string `toml:"kafka_tls_key"`
	TLSVerify     bool   `toml:"kafka_tls_verify"`
	TLSServerName string `toml:"kafka_tls_server_name"`
	// SASLMechanism is plain, scram-sha-256 or scram-sha-512, with
	// SASLUsername and SASLPassword.
	SASLMechanism string `toml:"kafka_sasl_mechanism"`
	SASLUsername  string `toml:"kafka_sasl_username"`
	SASLPassword  string `toml:"kafka_sasl_password"`
}

// kafkaCodecs maps kafka_compression to kafka-go's codecs; none is 0.
var kafkaCodecs = map[string]kafka.Compression{
	"none": 0, "gzip": kafka.Gzip, "snappy": kafka.Snappy, "lz4": kafka.Lz4, "zstd": kafka.Zstd,
}

// kafkaKeyFields maps kafka_key to the record field that becomes the message
// key. Records with the same key go to the same partition, in order.
var kafkaKeyFields = map[string]func(*flowgo.Record) string{
	"none":     nil,
	"hostname": func(r *flowgo.Record) string { return r.Hostname },
	"appname":  func(r *flowgo.Record) string { return r.AppName },
	"procid":   func(r *flowgo.Record) string { return r.ProcID },
	"msgid":    func(r *flowgo.Record) string { return r.MsgID },
}

// Kafka is the kafka output: each frame becomes one Kafka message, and a
// batch counts as delivered only once the brokers acknowledged every
// message of it (with kafka_acks -1 or 1).
//
// Write sends a batch as produce requests built here, one record batch per
// partition run, through a kafka-go Client and a Transport of its own,
// rather than through kafka.Writer: the Writer holds a partial batch for
// BatchTimeout on every synchronous call, retries internally while ignoring
// the caller's context, and fails a whole call for one oversized message.
// Building the requests here sends every batch at once, keeps at most one
// request in flight per partition (so order per partition holds even
// across retries), and tells exactly which messages were acknowledged, so
// a retried batch re-sends only the rest.
//
// The record sets themselves are built here too, straight from the batch's
// frames into Kafka's record batch format, compressed in one pass, and
// handed to kafka-go's RawProduce: kafka-go's own encoder takes records
// one by one through interfaces and copies each value twice (see
// bench/kafka.md for what that cost).
type Kafka struct {
	kafkaSettings
	addr      net.Addr
	transport *kafka.Transport
	client    *kafka.Client
	stop      context.CancelFunc // ends the transport's goroutines

	// Written only by Write and Close, which the pipeline calls from one
	// goroutine.
	pend     *kafkaBatch // the unacknowledged rest of a batch whose Write failed
	spare    *kafkaBatch // a finished batch whose buffers can be reused
	next     int         // partition rotation for keyless messages
	byPart   map[int][]int
	pending  []int
	closed   bool
	failures int // consecutive failed writes

	// builders holds kafka_threads record-set builders: taking one is
	// the right to build and send a produce request.
	builders chan *kafkaBuilder

	health atomic.Pointer[kafkaHealth]
	stats  kafkaStats
}

// kafkaStats counts messages; they only grow.
type kafkaStats struct {
	acked   atomic.Int64 // acknowledged by the brokers (or sent, with acks 0)
	resent  atomic.Int64 // sent again after a failed request
	skipped atomic.Int64 // not re-sent on retry: already acknowledged
	failed  atomic.Int64 // refused for good (too large, invalid)
	// abandoned counts requests left in flight when their context ended:
	// the brokers may or may not store their messages.
	abandoned atomic.Int64
}

type kafkaHealth struct {
	ok  bool
	msg string
}

// kafkaSettings are the kafka output's keys, validated: what parseKafka
// makes of a section, and a Kafka never changes. The TLS files are loaded
// (a value); nothing is connected or started.
type kafkaSettings struct {
	cfg      kafkaKeys
	log      *slog.Logger
	acks     kafka.RequiredAcks
	codec    kafka.Compression
	key      func(*flowgo.Record) string
	timeout  time.Duration
	tlsFiles *tlsconf.Reloader // nil without kafka_tls
	sasl     sasl.Mechanism    // nil without kafka_sasl_mechanism
}

// Build implements Builder: the transport and client, which connect on
// the first Write.
func (k *kafkaSettings) Build() (Output, error) {
	o := &Kafka{kafkaSettings: *k}
	ctx, stop := context.WithCancel(context.Background())
	o.stop = stop
	o.transport = &kafka.Transport{
		ClientID:    k.cfg.ClientID,
		MetadataTTL: kafkaMetadataTTL,
		// Only this topic's metadata: a cluster may hold thousands.
		MetadataTopics: []string{k.cfg.Topic},
		Context:        ctx,
		SASL:           k.sasl,
	}
	if k.tlsFiles != nil {
		o.transport.Dial = tlsDialer(k.tlsFiles)
	}
	o.addr = kafka.TCP(k.cfg.Brokers...)
	o.client = &kafka.Client{Addr: o.addr, Transport: o.transport, Timeout: k.timeout}
	o.builders = make(chan *kafkaBuilder, k.cfg.Threads)
	for range k.cfg.Threads {
		o.builders <- newKafkaBuilder(k.codec)
	}
	o.health.Store(&kafkaHealth{ok: true, msg: "no batch written yet"})
	return o, nil
}

func parseKafka(c Config) (Builder, error) {
	s := c.Section
	cfg := kafkaKeys{
		Acks:            DefaultKafkaAcks,
		Timeout:         config.Count[config.Milliseconds](DefaultKafkaTimeout),
		Threads:         DefaultKafkaThreads,
		Coalesce:        DefaultKafkaCoalesce,
		Compression:     DefaultKafkaCompression,
		FlushInterval:   DefaultKafkaFlushInterval,
		Key:             DefaultKafkaKey,
		ClientID:        DefaultKafkaClientID,
		MaxMessageBytes: DefaultKafkaMaxMessageBytes,
		TLSVerify:       true,
	}
	if err := s.Decode(&cfg); err != nil {
		return nil, err
	}
	log := c.Log
	if log == nil {
		log = slog.Default()
	}
	k := &kafkaSettings{cfg: cfg, log: log}
	if err := k.validate(s); err != nil {
		return nil, err
	}
	return k, nil
}

// validate checks the keys and warns about risky ones.
func (k *kafkaSettings) validate(s *config.Section) error {
	cfg := &k.cfg
	if len(cfg.Brokers) == 0 {
		return s.Errorf("kafka_brokers", `is required: a list of "host:port" addresses, such as ["kafka1:9092", "kafka2:9092"]`)
	}
	for _, b := range cfg.Brokers {
		host, port, err := net.SplitHostPort(b)
		if err != nil || host == "" {
			return s.Errorf("kafka_brokers", `%q is not a "host:port" address`, b)
		}
		if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
			return s.Errorf("kafka_brokers", "%q: port %q must be a number from 1 to 65535", b, port)
		}
	}
	if err := validTopic(cfg.Topic); err != nil {
		return s.Errorf("kafka_topic", "%v", err)
	}
	switch cfg.Acks {
	case -1:
		k.acks = kafka.RequireAll
	case 1:
		k.acks = kafka.RequireOne
	case 0:
		k.acks = kafka.RequireNone
		s.Warn("kafka_acks", "0: brokers do not acknowledge, so delivery cannot be confirmed: records are lost "+
			"without notice when a broker is down or refuses them, and order is not guaranteed (use -1 or 1 to confirm delivery)")
	default:
		return s.Errorf("kafka_acks", "must be -1 (all in-sync replicas), 1 (the leader) or 0 (no acknowledgement), not %d", cfg.Acks)
	}
	if cfg.Timeout.Get() <= 0 {
		return s.Errorf("kafka_timeout", "must be a positive number of milliseconds, not %v", cfg.Timeout)
	}
	k.timeout = cfg.Timeout.Get()
	if cfg.Threads < 1 || cfg.Threads > 256 {
		return s.Errorf("kafka_threads", "must be from 1 to 256, not %d", cfg.Threads)
	}
	if cfg.Coalesce < 1 || cfg.Coalesce > 1_000_000 {
		return s.Errorf("kafka_coalesce", "must be from 1 to 1000000 records, not %d", cfg.Coalesce)
	}
	if cfg.Coalesce == 1 && s.Has("kafka_coalesce") {
		s.Warn("kafka_coalesce", "1 sends every record in a produce request of its own; flowgo never waits to fill a "+
			"Kafka batch, so a larger value such as %d costs no latency", DefaultKafkaCoalesce)
	}
	codec, ok := kafkaCodecs[strings.ToLower(cfg.Compression)]
	if !ok {
		return s.Errorf("kafka_compression", "%q unknown (known: none, gzip, snappy, lz4, zstd)", cfg.Compression)
	}
	k.codec = codec
	if cfg.FlushInterval <= 0 {
		return s.Errorf("kafka_flush_interval", "must be a positive duration such as \"100ms\"")
	}
	key, ok := kafkaKeyFields[strings.ToLower(cfg.Key)]
	if !ok {
		return s.Errorf("kafka_key", "%q unknown (known: none, hostname, appname, procid, msgid)", cfg.Key)
	}
	k.key = key
	if cfg.MaxMessageBytes < 1024 || cfg.MaxMessageBytes > 256<<20 {
		return s.Errorf("kafka_max_message_bytes", "must be from 1024 to %d, not %d", 256<<20, cfg.MaxMessageBytes)
	}
	if cfg.ClientID == "" {
		cfg.ClientID = DefaultKafkaClientID
	}
	if err := k.configureTLS(s); err != nil {
		return err
	}
	return k.configureSASL(s)
}

// validTopic applies Kafka's rules for topic names.
func validTopic(t string) error {
	if t == "" {
		return errors.New(`is required: the topic to write to, such as "logs"`)
	}
	if t == "." || t == ".." || len(t) > 249 {
		return fmt.Errorf("%q is not a valid topic name", t)
	}
	for _, c := range t {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			return fmt.Errorf("%q: a topic name may hold only ASCII letters, digits, '.', '_' and '-'", t)
		}
	}
	return nil
}

// configureTLS loads the TLS files when kafka_tls is set; Build then dials
// the brokers over TLS (tlsDialer).
func (k *kafkaSettings) configureTLS(s *config.Section) error {
	cfg := &k.cfg
	if !cfg.TLS {
		for _, key := range []string{"kafka_tls_ca_file", "kafka_tls_cert", "kafka_tls_key", "kafka_tls_verify", "kafka_tls_server_name"} {
			if s.Has(key) {
				return s.Errorf(key, "is set but kafka_tls is not: set kafka_tls = true to connect to the brokers over TLS")
			}
		}
		return nil
	}
	if cfg.TLSKey != "" && cfg.TLSCert == "" {
		return s.Errorf("kafka_tls_key", "is set without kafka_tls_cert, the client certificate it belongs to")
	}
	if !cfg.TLSVerify {
		s.Warn("kafka_tls_verify", "false: the brokers' certificates are not checked, so anyone in the path can impersonate them")
	}
	for _, f := range []struct{ key, path string }{
		{"kafka_tls_ca_file", cfg.TLSCAFile}, {"kafka_tls_cert", cfg.TLSCert}, {"kafka_tls_key", cfg.TLSKey},
	} {
		if f.path == "" {
			continue
		}
		if _, err := os.Stat(f.path); err != nil {
			return s.Errorf(f.key, "%v", err)
		}
	}
	r, _, err := tlsconf.ClientConfig(tlsconf.Options{
		CertFile: cfg.TLSCert, KeyFile: cfg.TLSKey, CAFile: cfg.TLSCAFile,
		VerifyPeer: cfg.TLSVerify, ServerName: cfg.TLSServerName, KeyPrefix: "kafka_",
	}, func(err error) { k.log.Error("kafka TLS files", "error", err) })
	if err != nil {
		return s.Wrap("kafka_tls_cert", err)
	}
	k.tlsFiles = r
	return nil
}

// tlsDialer dials brokers over TLS. The handshake is done with a
// configuration taken from the reloader at each dial, so that renewed
// certificates and CAs are used by new connections without a restart.
func tlsDialer(r *tlsconf.Reloader) func(ctx context.Context, network, address string) (net.Conn, error) {
	dialer := &net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}
	return func(ctx context.Context, network, address string) (net.Conn, error) {
		raw, err := dialer.DialContext(ctx, network, address)
		if err != nil {
			return nil, err
		}
		tc := r.Config()
		if tc.ServerName == "" {
			tc.ServerName = serverName(address)
		}
		conn := tls.Client(raw, tc)
		if err := conn.HandshakeContext(ctx); err != nil {
			raw.Close()
			return nil, fmt.Errorf("TLS handshake with %s: %w", address, err)
		}
		return conn, nil
	}
}

// configureSASL picks the SASL mechanism.
func (k *kafkaSettings) configureSASL(s *config.Section) error {
	cfg := &k.cfg
	mech := strings.ToLower(cfg.SASLMechanism)
	if mech == "" {
		for _, key := range []string{"kafka_sasl_username", "kafka_sasl_password"} {
			if s.Has(key) {
				return s.Errorf(key, "is set but kafka_sasl_mechanism is not (plain, scram-sha-256 or scram-sha-512)")
			}
		}
		return nil
	}
	if cfg.SASLUsername == "" {
		return s.Errorf("kafka_sasl_username", "is required with kafka_sasl_mechanism")
	}
	var (
		m   sasl.Mechanism
		err error
	)
	switch mech {
	case "plain":
		m = plain.Mechanism{Username: cfg.SASLUsername, Password: cfg.SASLPassword}
		if !cfg.TLS {
			s.Warn("kafka_sasl_mechanism", "plain without kafka_tls sends the password in clear text")
		}
	case "scram-sha-256":
		m, err = scram.Mechanism(scram.SHA256, cfg.SASLUsername, cfg.SASLPassword)
	case "scram-sha-512":
		m, err = scram.Mechanism(scram.SHA512, cfg.SASLUsername, cfg.SASLPassword)
	default:
		return s.Errorf("kafka_sasl_mechanism", "%q unknown (known: plain, scram-sha-256, scram-sha-512)", cfg.SASLMechanism)
	}
	if err != nil {
		return s.Errorf("kafka_sasl_mechanism", "%v", err)
	}
	k.sasl = m
	return nil
}

// Healthy reports whether the last write was acknowledged, with a short
// explanation, for health checks.
func (k *Kafka) Healthy() (bool, string) {
	h := k.health.Load()
	return h.ok, h.msg
}

// Probe proves the brokers can take records for the topic: a metadata
// round trip for it, on a connection of its own (with the output's TLS and
// SASL settings), to the first bootstrap broker that answers. The topic
// must exist (brokers that create topics on first use create it now) and
// every partition must have a leader.
func (k *Kafka) Probe(ctx context.Context) error {
	d := &kafka.Dialer{ClientID: k.cfg.ClientID, DialFunc: k.transport.Dial, SASLMechanism: k.transport.SASL}
	var errs []error
	for _, b := range k.cfg.Brokers {
		err := k.probeBroker(ctx, d, b)
		if err == nil {
			return nil
		}
		errs = append(errs, err)
		if ctx.Err() != nil {
			break
		}
	}
	return fmt.Errorf("kafka: topic %q: %w", k.cfg.Topic, errors.Join(errs...))
}

func (k *Kafka) probeBroker(ctx context.Context, d *kafka.Dialer, broker string) error {
	conn, err := d.DialContext(ctx, "tcp", broker)
	if err != nil {
		return fmt.Errorf("%s: %w", broker, err)
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { conn.SetDeadline(time.Now()) })
	defer stop()
	if dl, ok := ctx.Deadline(); ok {
		conn.SetDeadline(dl)
	}
	parts, err := conn.ReadPartitions(k.cfg.Topic)
	if err != nil {
		return fmt.Errorf("%s: metadata: %w", broker, err)
	}
	if len(parts) == 0 {
		return fmt.Errorf("%s: the topic has no partitions", broker)
	}
	for _, p := range parts {
		if p.Leader.Host == "" {
			return fmt.Errorf("%s: partition %d has no leader", broker, p.ID)
		}
	}
	return nil
}

func (k *Kafka) setHealth(ok bool, msg string) {
	k.health.Store(&kafkaHealth{ok: ok, msg: msg})
}

// Reload re-reads the TLS certificate, key and CA files, and drops the open
// connections so that the next write uses them.
func (k *Kafka) Reload() error {
	if k.tlsFiles == nil {
		return nil
	}
	if err := k.tlsFiles.Reload(); err != nil {
		return fmt.Errorf("kafka: %w", err)
	}
	k.transport.CloseIdleConnections()
	return nil
}

// Close releases the connections. Write is synchronous, so nothing is
// buffered here; what Close reports is what a Write gave up on when its
// context ended: messages never acknowledged, and requests still in flight
// whose fate is unknown.
func (k *Kafka) Close(ctx context.Context) error {
	if k.closed {
		return nil
	}
	k.closed = true
	k.transport.CloseIdleConnections()
	k.stop()
	var errs []error
	if p := k.pend; p != nil {
		errs = append(errs, fmt.Errorf("kafka: %d record(s) of the last batch were never acknowledged", p.unfinished()))
	}
	if n := k.stats.abandoned.Load(); n > 0 {
		errs = append(errs, fmt.Errorf("kafka: %d produce request(s) were abandoned in flight; their records may or may not be stored", n))
	}
	return errors.Join(errs...)
}

// kafkaBatch is what Write knows of a pipeline batch while it sends it and
// across its retries: which frames are finished (acknowledged, or failed
// for good). Produce requests never read the batch itself: each carries a
// record set built from the frames beforehand (see kafkaBuilder), so a
// request left in flight when its context ended never reads a batch the
// pipeline has recycled.
type kafkaBatch struct {
	// id is the pipeline batch's delivery identity (flowgo.Batch.ID): a
	// Write with the same one is the retry of this batch; size is the
	// length of its frames, a check on that.
	id   uint64
	size int

	done  []bool
	todo  int // frames not finished
	sent  []bool
	perms []kafkaFailure // failed for good, in the order found

	mu sync.Mutex // guards todo and perms while requests run
}

type kafkaFailure struct {
	frame int
	err   error
}

func (kb *kafkaBatch) unfinished() int { return kb.todo }

// load starts kb over for batch b: no frame finished.
func (kb *kafkaBatch) load(b *flowgo.Batch) {
	n := b.Frames()
	kb.id, kb.size = b.ID, len(b.Data)
	kb.done = resetBools(kb.done, n)
	kb.sent = resetBools(kb.sent, n)
	kb.todo = n
	kb.perms = kb.perms[:0]
}

func resetBools(s []bool, n int) []bool {
	if cap(s) < n {
		return make([]bool, n)
	}
	s = s[:n]
	clear(s)
	return s
}

// same reports whether b is the batch kb was loaded from: the pipeline
// retries a batch by calling Write again with the same identity.
func (kb *kafkaBatch) same(b *flowgo.Batch) bool {
	return b.ID != 0 && b.ID == kb.id && len(b.Ends) == len(kb.done) && len(b.Data) == kb.size
}

// Write sends every frame of b not yet acknowledged and returns nil once
// the brokers acknowledged them all; a *flowgo.BatchError listing frames
// that can never be accepted (too large, invalid), the others being
// acknowledged; or another error, and then the pipeline calls Write again
// with the same batch and only the frames not yet acknowledged are sent.
func (k *Kafka) Write(ctx context.Context, b *flowgo.Batch) error {
	if k.closed {
		return errors.New("kafka: output closed")
	}
	kb := k.pend
	if kb != nil && !kb.same(b) {
		// The pipeline gave up on that batch (it counted it lost).
		k.log.Debug("kafka: a batch that failed was not retried", "unacknowledged", kb.todo)
		k.pend, kb = nil, nil
	}
	if kb == nil {
		kb = k.spare
		k.spare = nil
		if kb == nil {
			kb = &kafkaBatch{}
		}
		kb.load(b)
	} else {
		k.stats.skipped.Add(int64(len(kb.done) - kb.todo))
	}

	err := k.send(ctx, b, kb)
	if err != nil {
		k.pend = kb
		k.failures++
		if k.failures == 1 {
			k.log.Warn("kafka: write failed; retrying until the brokers acknowledge", "error", err)
		}
		k.setHealth(false, fmt.Sprintf("%d write(s) failed in a row since %s: %v", k.failures, time.Now().UTC().Format(time.RFC3339), err))
		// kafka-go refreshes its metadata only on a timer: drop the cache
		// and the connections so that the retry asks the cluster afresh
		// (a new leader, a broker back on its address).
		k.transport.CloseIdleConnections()
		return err
	}
	if k.failures > 0 {
		k.log.Info("kafka: writes acknowledged again", "failed_writes", k.failures,
			"records_resent", k.stats.resent.Load(), "records_not_resent", k.stats.skipped.Load())
		k.failures = 0
	}
	k.setHealth(true, "last write acknowledged at "+time.Now().UTC().Format(time.RFC3339))
	k.pend = nil
	var be *flowgo.BatchError
	if len(kb.perms) > 0 {
		be = &flowgo.BatchError{}
		sortFailures(kb.perms)
		for _, f := range kb.perms {
			be.Failed = append(be.Failed, f.frame)
			be.Reasons = append(be.Reasons, f.err)
		}
		k.stats.failed.Add(int64(len(kb.perms)))
	}
	kb.id = 0
	k.spare = kb
	if be != nil {
		return be
	}
	return nil
}

func sortFailures(f []kafkaFailure) {
	// Few entries: insertion sort keeps this allocation-free.
	for i := 1; i < len(f); i++ {
		for j := i; j > 0 && f[j].frame < f[j-1].frame; j-- {
			f[j], f[j-1] = f[j-1], f[j]
		}
	}
}

// kafkaWriteError summarises a failed Write.
type kafkaWriteError struct {
	pending, total int
	err            error
}

func (e *kafkaWriteError) Error() string {
	return fmt.Sprintf("kafka: %d of %d record(s) not acknowledged: %v", e.pending, e.total, e.err)
}

func (e *kafkaWriteError) Unwrap() error { return e.err }

var _ interface {
	Output
	Reloader
	Prober
} = (*Kafka)(nil)

// mutexErr keeps the first error reported by concurrent senders.
type mutexErr struct {
	mu  sync.Mutex
	err error
}

func (m *mutexErr) set(err error) {
	m.mu.Lock()
	if m.err == nil {
		m.err = err
	}
	m.mu.Unlock()
}
