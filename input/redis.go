package input

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/flowgo/flowgo/config"
	"github.com/flowgo/flowgo/internal/ratelog"
	"github.com/flowgo/flowgo/internal/tlsconf"
	"github.com/redis/go-redis/v9"
)

func init() {
	Register("redis", Type{Parse: parseRedis, Framing: "list item"})
}

// Defaults of the redis input's keys: Flowgger's.
const (
	DefaultRedisConnect  = "127.0.0.1"
	DefaultRedisQueueKey = "logs"
	DefaultRedisThreads  = 1
	defaultRedisPort     = "6379"
	maxRedisThreads      = 256
)

// Timing of the redis input. A blocking move waits at most redisBlock for
// an item, so that a worker notices the end of its context within that
// time (go-redis does not interrupt a read when a context is cancelled).
const (
	redisBlock        = time.Second
	redisDialTimeout  = 5 * time.Second
	redisIOTimeout    = 10 * time.Second
	redisRetryFirst   = 100 * time.Millisecond
	redisRetryMax     = 10 * time.Second
	redisStopTimeout  = 5 * time.Second // to remove confirmed items at shutdown
	redisMinFollowUps = 15
)

// redisKeys are the keys of input.type redis.
type redisKeys struct {
	// Connect is Flowgger's redis_connect: host[:port], port 6379 by
	// default. Flowgger makes it the URL redis://<value>/, so user:password@
	// before the host and /db after it are accepted too.
	Connect string `toml:"redis_connect"`
	// QueueKey is the list records are taken from; worker n moves each item
	// to <QueueKey>.tmp.<n> until its record is safe in the queue.
	QueueKey string `toml:"redis_queue_key"`
	// Threads is the number of workers, each with its own connection and
	// temporary list.
	Threads int `toml:"redis_threads"`
	// Username and Password authenticate (AUTH, or an ACL user with both).
	Username string `toml:"redis_username"`
	Password string `toml:"redis_password"`
	// DB is the database number (SELECT).
	DB int `toml:"redis_db"`
	// TLS connects over TLS, verifying the server's certificate against
	// TLSCAFile (the system roots when empty) unless TLSVerify is false;
	// TLSCert and TLSKey are a client certificate, if the server asks for
	// one; TLSServerName overrides the name checked and sent as SNI (by
	// default the host of redis_connect).
	TLS           bool   `toml:"redis_tls"`
	TLSCAFile     string `toml:"redis_tls_ca_file"`
	TLSCert       string `toml:"redis_tls_cert"`
	TLSKey        string `toml:"redis_tls_key"`
	TLSVerify     bool   `toml:"redis_tls_verify"`
	TLSServerName string `toml:"redis_tls_server_name"`
}

// Redis is the redis input: it consumes a Redis list the way Flowgger
// does, so that either can take over a queue the other left.
//
// Producers push records on the left of the list redis_queue_key (LPUSH);
// each item is one record, in input.format, with no framing (one trailing
// LF or CRLF is removed). Worker n (0 ≤ n < redis_threads) moves items from
// the right of the list to the left of its own list <redis_queue_key>.tmp.<n>
// (BLMOVE, or BRPOPLPUSH before Redis 6.2), decodes them into a batch, hands
// the batch to the pipeline, and only once the pipeline has taken it
// (Sink.Put returned) removes the items from the temporary list (LREM). A
// frame that does not decode is rejected (counted, logged, dead-lettered)
// and removed the same way.
//
// Whatever is in a worker's temporary list when it starts, when it
// reconnects, or when a restart follows a crash or kill -9, is handed over
// again, oldest first, before anything new is taken: delivery is at least
// once. Temporary lists of workers that no longer run (redis_threads was
// lowered, or Flowgger ran more threads) are handed over by worker 0 at
// start.
//
// Redis errors never stop the input: each worker retries with capped
// exponential back-off, counts and logs the errors (rate-limited), and the
// input reports itself not ready (/readyz) until every worker works again.
type Redis struct {
	c    Config
	k    redisKeys
	addr string

	tlsFiles *tlsconf.Reloader

	// forceLegacy makes the workers use BRPOPLPUSH and RPOPLPUSH from the
	// start, as on a server older than 6.2 (tests).
	forceLegacy bool

	errCount  atomic.Int64
	recovered atomic.Int64 // items handed over from temporary lists
	errLog    *ratelog.Log
	workers   []*redisWorker
	started   atomic.Bool
	mu        sync.Mutex // guards workers while Run builds them
}

// redisBuilder is a parsed redis input.
type redisBuilder struct {
	c        Config
	k        redisKeys
	addr     string
	tlsFiles *tlsconf.Reloader
}

// Build implements Builder.
func (b *redisBuilder) Build() (Input, error) {
	return &Redis{c: b.c, k: b.k, addr: b.addr, tlsFiles: b.tlsFiles,
		errLog: ratelog.New(b.c.Log, "Redis errors", "list", 10*time.Second, 5)}, nil
}

func parseRedis(c Config) (Builder, error) {
	k := redisKeys{
		Connect:   DefaultRedisConnect,
		QueueKey:  DefaultRedisQueueKey,
		Threads:   DefaultRedisThreads,
		TLSVerify: true,
	}
	if c.Log == nil {
		c.Log = slog.New(slog.DiscardHandler)
	}
	in := &redisBuilder{c: c, k: k}
	s := c.Section
	if s != nil {
		if err := s.Decode(&in.k); err != nil {
			return nil, err
		}
	}
	k = in.k
	errorf := func(key, format string, args ...any) error {
		if s == nil {
			return config.KeyErrorf(key, format, args...)
		}
		return s.Errorf(key, format, args...)
	}
	has := func(key string) bool { return s != nil && s.Has(key) }

	addr, user, pass, db, err := parseRedisConnect(k.Connect)
	if err != nil {
		return nil, errorf("redis_connect", "%v", err)
	}
	in.addr = addr
	if user != "" || pass != "" {
		if has("redis_username") || has("redis_password") {
			return nil, errorf("redis_connect", "holds credentials, and so does redis_username or redis_password: give them in one place")
		}
		in.k.Username, in.k.Password = user, pass
		if pass != "" && s != nil {
			s.Warn("redis_connect", "holds a password, which `flowgo check` prints: prefer redis_password")
		}
	}
	if db >= 0 {
		if has("redis_db") {
			return nil, errorf("redis_connect", "names database %d, and redis_db is set too: give it in one place", db)
		}
		in.k.DB = db
	}
	k = in.k
	if k.QueueKey == "" {
		return nil, errorf("redis_queue_key", "must not be empty")
	}
	if k.Threads < 1 || k.Threads > maxRedisThreads {
		return nil, errorf("redis_threads", "must be between 1 and %d, not %d", maxRedisThreads, k.Threads)
	}
	if k.DB < 0 {
		return nil, errorf("redis_db", "must be 0 or more, not %d", k.DB)
	}
	if k.Username != "" && k.Password == "" {
		return nil, errorf("redis_username", "needs redis_password (for a user with nopass, any password)")
	}
	if err := in.configureTLS(errorf, has); err != nil {
		return nil, err
	}
	if s != nil && (s.Has("framing") || s.Has("framed")) {
		s.Warn("framing", "ignored: each Redis list item is one record")
	}
	return in, nil
}

// parseRedisConnect reads redis_connect the way Flowgger's URL
// redis://<value>/ is read: [user[:password]@]host[:port][/db]. db is -1
// when not given.
func parseRedisConnect(v string) (addr, user, pass string, db int, err error) {
	db = -1
	if v == "" {
		return "", "", "", db, errors.New("must not be empty: want host:port, such as \"127.0.0.1:6379\"")
	}
	if strings.Contains(v, "://") {
		return "", "", "", db, fmt.Errorf("want host:port, not a URL (%q): Flowgger adds redis:// itself", v)
	}
	u, err := url.Parse("redis://" + v)
	if err != nil {
		return "", "", "", db, fmt.Errorf("want host:port, such as \"127.0.0.1:6379\" or \"[::1]:6379\", not %q", v)
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return "", "", "", db, fmt.Errorf("want host:port, not %q", v)
	}
	if u.User != nil {
		user = u.User.Username()
		pass, _ = u.User.Password()
	}
	if p := strings.Trim(u.Path, "/"); p != "" {
		n, err := strconv.Atoi(p)
		if err != nil || n < 0 {
			return "", "", "", db, fmt.Errorf("%q after the address is not a database number", p)
		}
		db = n
	}
	host, port := u.Hostname(), u.Port()
	if host == "" {
		return "", "", "", db, fmt.Errorf("no host in %q", v)
	}
	if _, err := netip.ParseAddr(host); err != nil && (strings.ContainsAny(host, "[]:%") || strings.TrimSpace(host) != host) {
		return "", "", "", db, fmt.Errorf("%q is not a host name or IP address", host)
	}
	if port == "" {
		if strings.HasSuffix(u.Host, ":") {
			return "", "", "", db, fmt.Errorf("empty port in %q", v)
		}
		port = defaultRedisPort
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return "", "", "", db, fmt.Errorf("port %q is not a number from 1 to 65535", port)
	}
	return net.JoinHostPort(host, port), user, pass, db, nil
}

// configureTLS checks the TLS keys and loads the files, which are reloaded
// when they change (and on SIGHUP) for new connections.
func (in *redisBuilder) configureTLS(errorf func(key, format string, args ...any) error, has func(string) bool) error {
	k := in.k
	if !k.TLS {
		for _, key := range []string{"redis_tls_ca_file", "redis_tls_cert", "redis_tls_key", "redis_tls_verify", "redis_tls_server_name"} {
			if has(key) {
				return errorf(key, "is set but redis_tls is not: set redis_tls = true to connect over TLS")
			}
		}
		return nil
	}
	if k.TLSKey != "" && k.TLSCert == "" {
		return errorf("redis_tls_key", "is set without redis_tls_cert, the client certificate it belongs to")
	}
	if !k.TLSVerify && in.c.Section != nil {
		in.c.Section.Warn("redis_tls_verify", "false: the server's certificate is not checked, so anyone in the path can impersonate it")
	}
	for _, f := range []struct{ key, path string }{
		{"redis_tls_ca_file", k.TLSCAFile}, {"redis_tls_cert", k.TLSCert}, {"redis_tls_key", k.TLSKey},
	} {
		if f.path == "" {
			continue
		}
		if _, err := os.Stat(f.path); err != nil {
			return errorf(f.key, "%v", err)
		}
	}
	r, _, err := tlsconf.ClientConfig(tlsconf.Options{
		CertFile: k.TLSCert, KeyFile: k.TLSKey, CAFile: k.TLSCAFile,
		VerifyPeer: k.TLSVerify, ServerName: k.TLSServerName, KeyPrefix: "redis_",
	}, func(err error) { in.c.Log.Error("redis TLS files", "error", err) })
	if err != nil {
		if s := in.c.Section; s != nil {
			return s.Wrap("redis_tls_cert", err)
		}
		return err // a *config.KeyError
	}
	in.tlsFiles = r
	return nil
}

// Reload re-reads the TLS files now (SIGHUP); new connections use them.
func (in *Redis) Reload() error {
	if in.tlsFiles == nil {
		return nil
	}
	return in.tlsFiles.Reload()
}

// Errors returns how many Redis commands have failed since the start.
func (in *Redis) Errors() int64 { return in.errCount.Load() }

// Counters implements CounterSource.
func (in *Redis) Counters() []Counter {
	return []Counter{
		{Name: "redis_errors_total", Help: "Redis commands that failed; each is retried after a back-off.", Value: in.errCount.Load()},
		{Name: "redis_items_recovered_total", Help: "Items handed over again from temporary lists: left by an earlier run or a crash, or moved by a command whose reply was lost. Some may be duplicates.", Value: in.recovered.Load()},
	}
}

// Ready implements ReadyReporter: the input is ready when every worker
// has reached Redis and its last command succeeded.
func (in *Redis) Ready() (bool, string) {
	if !in.started.Load() {
		return false, "not started"
	}
	in.mu.Lock()
	defer in.mu.Unlock()
	var why []string
	for _, w := range in.workers {
		if r := w.notReady.Load(); r != nil {
			why = append(why, w.tmp+": "+*r)
		}
	}
	if len(why) > 0 {
		return false, "redis " + in.addr + ": " + strings.Join(why, "; ")
	}
	return true, ""
}

// newClient returns a client for one worker: no retries inside go-redis
// (a retried move could leave an item in the temporary list unknown to the
// worker), one connection for blocking commands and one for pipelines.
func (in *Redis) newClient() *redis.Client {
	o := &redis.Options{
		Addr:     in.addr,
		Username: in.k.Username,
		Password: in.k.Password,
		DB:       in.k.DB,
		// RESP2 is all a list consumer needs, and what every server speaks.
		Protocol:        2,
		DisableIdentity: true,
		MaxRetries:      -1,
		// A deadline on a command's context (the removal at shutdown)
		// bounds its reads and writes too.
		ContextTimeoutEnabled: true,
		DialTimeout:           redisDialTimeout,
		DialerRetries:         1,
		ReadTimeout:           redisIOTimeout,
		WriteTimeout:          redisIOTimeout,
		PoolSize:              1,
		PipelinePoolSize:      1,
		ConnMaxIdleTime:       -1,
	}
	if in.tlsFiles != nil {
		host, _, _ := net.SplitHostPort(in.addr)
		dialer := &net.Dialer{Timeout: redisDialTimeout, KeepAlive: 30 * time.Second}
		o.Dialer = func(ctx context.Context, network, addr string) (net.Conn, error) {
			raw, err := dialer.DialContext(ctx, network, addr)
			if err != nil {
				return nil, err
			}
			tc := in.tlsFiles.Config()
			if tc.ServerName == "" {
				tc.ServerName = host
			}
			conn := tls.Client(raw, tc)
			if err := conn.HandshakeContext(ctx); err != nil {
				raw.Close()
				return nil, fmt.Errorf("TLS handshake with %s: %w", addr, err)
			}
			return conn, nil
		}
	}
	return redis.NewClient(o)
}

// tmpKey is the temporary list of worker n: Flowgger's name for it, so that
// a flowgo and a Flowgger can take over each other's queue.
func (in *Redis) tmpKey(n int) string {
	return in.k.QueueKey + ".tmp." + strconv.Itoa(n)
}

// Run implements Input. It returns nil when ctx ends, after every worker
// has handed over and confirmed what it had taken.
func (in *Redis) Run(ctx context.Context, sink Sink) error {
	redisQuietLogger()
	in.mu.Lock()
	in.workers = make([]*redisWorker, in.k.Threads)
	for n := range in.workers {
		in.workers[n] = newRedisWorker(in, n)
	}
	workers := in.workers
	in.mu.Unlock()
	in.started.Store(true)
	over := ""
	if in.tlsFiles != nil {
		over = " over TLS"
	}
	in.c.Log.Info("redis: consuming"+over, "address", in.addr, "db", in.k.DB, "list", in.k.QueueKey, "threads", in.k.Threads)

	var wg sync.WaitGroup
	for _, w := range workers {
		wg.Go(func() {
			defer w.client.Close()
			w.run(ctx, sink)
		})
	}
	wg.Wait()
	in.errLog.Flush()
	return nil
}

// redisLogger hands go-redis's own diagnostics to slog at debug level: the
// input logs every error it sees itself, rate-limited.
type redisLogger struct{}

func (redisLogger) Printf(ctx context.Context, format string, v ...any) {
	slog.Default().DebugContext(ctx, "go-redis: "+fmt.Sprintf(format, v...))
}

var quietOnce sync.Once

func redisQuietLogger() { quietOnce.Do(func() { redis.SetLogger(redisLogger{}) }) }
