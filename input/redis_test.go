package input

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/flowgo/flowgo/config"
	"github.com/flowgo/flowgo/internal/redistest"
	"github.com/flowgo/flowgo/internal/syncbuf"
	"github.com/flowgo/flowgo/internal/testcerts"
	"github.com/redis/go-redis/v9"
)

// The redis input against a real redis-server (internal/redistest): each
// test starts its own on a free loopback port.

// redisConfig returns a Config for a redis input whose table holds keys.
func redisConfig(t testing.TB, keys string) Config {
	t.Helper()
	f, err := config.Parse("test.toml", "[input]\ntype = \"redis\"\n"+keys)
	if err != nil {
		t.Fatal(err)
	}
	return Config{
		Section: f.Inputs[0], Name: "input", Decoder: keepFrame{},
		MaxMessageSize: 64 << 10, BatchRecords: 1024, BatchBytes: 1 << 20, Workers: 2,
		Log: slog.New(slog.NewTextHandler(io.Discard, nil)),
	}
}

// redisRun is a redis input running in a test.
type redisRun struct {
	in     *Redis
	logs   *syncbuf.Buffer
	cancel context.CancelFunc
	done   chan error
}

// startRedis starts a redis input reading the server srv with keys.
func startRedis(t testing.TB, srv *redistest.Server, keys string, sink Sink, opts ...func(*Redis)) *redisRun {
	t.Helper()
	c := redisConfig(t, fmt.Sprintf("redis_connect = %q\n%s", srv.Addr, keys))
	logs := &syncbuf.Buffer{}
	c.Log = slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	in, err := Type{Parse: parseRedis}.New(c)
	if err != nil {
		t.Fatal(err)
	}
	r := &redisRun{in: in.(*Redis), logs: logs, done: make(chan error, 1)}
	for _, o := range opts {
		o(r.in)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r.cancel = cancel
	go func() { r.done <- in.Run(ctx, sink) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-r.done:
		case <-time.After(30 * time.Second):
			t.Error("Run did not return after cancel")
		}
	})
	return r
}

// stop cancels the input and returns Run's error.
func (r *redisRun) stop(t testing.TB) error {
	t.Helper()
	r.cancel()
	select {
	case err := <-r.done:
		r.done <- err
		return err
	case <-time.After(30 * time.Second):
		t.Fatal("Run did not return after cancel")
		return nil
	}
}

// push LPUSHes items, as producers do (the input takes from the right),
// a thousand per command.
func redisPush(t testing.TB, c *redis.Client, key string, items []string) {
	t.Helper()
	ctx := context.Background()
	for len(items) > 0 {
		n := min(len(items), 1000)
		args := make([]any, n)
		for i, v := range items[:n] {
			args[i] = v
		}
		if err := c.LPush(ctx, key, args...).Err(); err != nil {
			t.Fatal(err)
		}
		items = items[n:]
	}
}

func seqItems(prefix string, from, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("%s %08d", prefix, from+i)
	}
	return out
}

// waitFor polls cond until it holds, failing the test after d.
func redisWait(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", d, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func (s *testSink) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.msgs)
}

// checkOnce checks that msgs holds every item of want exactly once, and
// returns how many extra copies it holds (duplicates) and which items are
// missing.
func checkOnce(msgs, want []string) (dups int, missing []string) {
	seen := make(map[string]int, len(msgs))
	for _, m := range msgs {
		seen[m]++
	}
	for _, w := range want {
		switch n := seen[w]; {
		case n == 0:
			missing = append(missing, w)
		case n > 1:
			dups += n - 1
		}
		delete(seen, w)
	}
	for m, n := range seen {
		missing = append(missing, "unexpected: "+m)
		_ = n
	}
	return dups, missing
}

// llen returns the length of each key.
func llen(t testing.TB, c *redis.Client, keys ...string) []int64 {
	t.Helper()
	out := make([]int64, len(keys))
	for i, k := range keys {
		n, err := c.LLen(context.Background(), k).Result()
		if err != nil {
			t.Fatal(err)
		}
		out[i] = n
	}
	return out
}

// checkEmpty fails unless the queue and the temporary lists of threads
// workers are empty.
func checkEmpty(t testing.TB, c *redis.Client, queue string, threads int) {
	t.Helper()
	keys := []string{queue}
	for n := range threads {
		keys = append(keys, queue+".tmp."+strconv.Itoa(n))
	}
	if got := llen(t, c, keys...); slices.ContainsFunc(got, func(n int64) bool { return n != 0 }) {
		t.Errorf("lengths of %q = %v; want all 0", keys, got)
	}
}

func TestRedisDrainsEveryItemExactlyOnce(t *testing.T) {
	for _, threads := range []int{1, 4} {
		t.Run(fmt.Sprintf("%d threads", threads), func(t *testing.T) {
			srv := redistest.Start(t)
			c := srv.Client("", "")
			const n = 100_000
			want := seqItems("item", 0, n)
			redisPush(t, c, "logs", want[:n/2])
			sink := newTestSink()
			r := startRedis(t, srv, fmt.Sprintf("redis_threads = %d", threads), sink)
			redisPush(t, c, "logs", want[n/2:]) // while it is consuming
			redisWait(t, 120*time.Second, "100,000 records", func() bool { return sink.count() >= n })
			if err := r.stop(t); err != nil {
				t.Errorf("Run = %v", err)
			}
			msgs, _, rejects, _ := sink.snapshot()
			dups, missing := checkOnce(msgs, want)
			if dups != 0 || len(missing) != 0 || len(rejects) != 0 {
				t.Errorf("%d records: %d duplicates, %d missing (first %q), rejects %q", len(msgs), dups, len(missing), missing[:min(len(missing), 3)], rejects)
			}
			checkEmpty(t, c, "logs", threads)
			if threads == 1 && !slices.Equal(msgs, want) {
				t.Error("one worker did not keep the producer's order")
			}
			if r.in.Errors() != 0 {
				t.Errorf("Errors() = %d; want 0\n%s", r.in.Errors(), r.logs)
			}
		})
	}
}

// An item leaves the temporary list only after Put returned for the batch
// holding its record.
func TestRedisRemovesAnItemOnlyOnceThePipelineTookIt(t *testing.T) {
	srv := redistest.Start(t)
	c := srv.Client("", "")
	release := make(chan struct{})
	var entered sync.Once
	inPut := make(chan struct{})
	sink := newTestSink()
	sink.wait = func() {
		entered.Do(func() { close(inPut) })
		<-release
	}
	redisPush(t, c, "logs", seqItems("x", 0, 10))
	r := startRedis(t, srv, "", sink)
	select {
	case <-inPut:
	case <-time.After(20 * time.Second):
		t.Fatalf("Put was not called\n%s", r.logs)
	}
	time.Sleep(200 * time.Millisecond) // a wrong implementation would remove now
	if got := llen(t, c, "logs", "logs.tmp.0"); got[0] != 0 || got[1] != 10 {
		t.Fatalf("while Put waits: lengths of logs, logs.tmp.0 = %v; want [0 10]", got)
	}
	close(release)
	redisWait(t, 20*time.Second, "the temporary list to empty", func() bool { return llen(t, c, "logs.tmp.0")[0] == 0 })
	if n := sink.count(); n != 10 {
		t.Errorf("%d records; want 10", n)
	}
	if ok, why := r.in.Ready(); !ok {
		t.Errorf("Ready() = false, %q; want true", why)
	}
}

// What a stopping input had taken is handed over and removed; what it had
// not taken stays in the queue.
func TestRedisShutdownHandsOverAndConfirmsWhatItTook(t *testing.T) {
	srv := redistest.Start(t)
	c := srv.Client("", "")
	const n = 20_000
	want := seqItems("s", 0, n)
	redisPush(t, c, "logs", want)
	// The first three batches pass; then Put waits (a full queue) until
	// the input has been told to stop.
	var puts atomic.Int32
	stopping := make(chan struct{})
	sink := newTestSink()
	sink.wait = func() {
		if puts.Add(1) > 3 {
			<-stopping
		}
	}
	r := startRedis(t, srv, "redis_threads = 3", sink)
	redisWait(t, 60*time.Second, "a Put waiting", func() bool { return puts.Load() > 3 })
	r.cancel()
	time.Sleep(100 * time.Millisecond)
	close(stopping)
	if err := r.stop(t); err != nil {
		t.Errorf("Run = %v", err)
	}
	left, err := c.LRange(context.Background(), "logs", 0, -1).Result()
	if err != nil {
		t.Fatal(err)
	}
	msgs, _, _, _ := sink.snapshot()
	if len(left) == 0 {
		t.Fatal("the input took everything before it was stopped; the test proves nothing")
	}
	dups, missing := checkOnce(append(msgs, left...), want)
	if dups != 0 || len(missing) != 0 {
		t.Errorf("delivered %d + left %d: %d duplicates, %d missing", len(msgs), len(left), dups, len(missing))
	}
	for i := range 3 {
		if got := llen(t, c, "logs.tmp."+strconv.Itoa(i))[0]; got != 0 {
			t.Errorf("logs.tmp.%d holds %d items after the stop; want 0", i, got)
		}
	}
}

// Items left in temporary lists by an earlier run, the worker's own and
// those of workers that no longer run, are handed over first, oldest first.
func TestRedisHandsOverTemporaryListsLeftByAnEarlierRun(t *testing.T) {
	srv := redistest.Start(t)
	c := srv.Client("", "")
	// An earlier run's worker 0 moved t0-0 first (it is the rightmost).
	redisPush(t, c, "logs.tmp.0", seqItems("t0", 0, 3))
	redisPush(t, c, "logs.tmp.2", seqItems("t2", 0, 2))       // a worker beyond redis_threads
	redisPush(t, c, "logs.tmp.x", []string{"not a worker's"}) // not a temporary list
	if err := c.Set(context.Background(), "logs.tmp.7", "a string", 0).Err(); err != nil {
		t.Fatal(err)
	}
	redisPush(t, c, "logs", seqItems("q", 0, 4))
	sink := newTestSink()
	r := startRedis(t, srv, "", sink)
	redisWait(t, 20*time.Second, "9 records", func() bool { return sink.count() >= 9 })
	r.stop(t)
	msgs, _, _, _ := sink.snapshot()
	want := []string{"t0 00000000", "t0 00000001", "t0 00000002", "t2 00000000", "t2 00000001",
		"q 00000000", "q 00000001", "q 00000002", "q 00000003"}
	if !slices.Equal(msgs, want) {
		t.Errorf("records %q; want %q", msgs, want)
	}
	checkEmpty(t, c, "logs", 3)
	if got := llen(t, c, "logs.tmp.x")[0]; got != 1 {
		t.Errorf("logs.tmp.x holds %d items; want it untouched (1)", got)
	}
	if !strings.Contains(r.logs.String(), "handed over items left in a temporary list") {
		t.Errorf("no log of the recovery:\n%s", r.logs)
	}
	for _, c := range r.in.Counters() {
		if c.Name == "redis_items_recovered_total" && c.Value != 5 {
			t.Errorf("%s = %d; want 5", c.Name, c.Value)
		}
	}
}

func TestRedisRejectsItemsThatDoNotDecodeAndRemovesThem(t *testing.T) {
	srv := redistest.Start(t)
	c := srv.Client("", "")
	redisPush(t, c, "logs", []string{"good 1", "BAD one", "good 2\r\n", "", strings.Repeat("x", 100), "good 3\n"})
	sink := newTestSink()
	c2 := redisConfig(t, fmt.Sprintf("redis_connect = %q", srv.Addr))
	c2.MaxMessageSize = 50
	in, err := Type{Parse: parseRedis}.New(c2)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- in.Run(ctx, sink) }()
	redisWait(t, 20*time.Second, "6 events", func() bool { return sink.events() >= 6 })
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Run = %v", err)
	}
	msgs, _, rejects, _ := sink.snapshot()
	if want := []string{"good 1", "good 2", "good 3"}; !slices.Equal(msgs, want) {
		t.Errorf("records %q; want %q", msgs, want)
	}
	wantRej := []string{
		"list logs: keepframe: bad frame",
		"list logs: keepframe: empty frame",
		"list logs: framing: frame longer than max_message_size (50 bytes): 100 bytes",
	}
	if len(rejects) != len(wantRej) {
		t.Fatalf("rejects %q; want %d", rejects, len(wantRej))
	}
	for i, w := range wantRej {
		if !strings.HasPrefix(rejects[i], w) {
			t.Errorf("reject %d = %q; want it to start with %q", i, rejects[i], w)
		}
	}
	sink.mu.Lock()
	if sink.tooLong != 1 {
		t.Errorf("%d rejects match ErrFrameTooLong; want 1 (the item longer than max_message_size)", sink.tooLong)
	}
	sink.mu.Unlock()
	checkEmpty(t, c, "logs", 1)
}

func TestRedisACLUserAndPassword(t *testing.T) {
	srv := redistest.Start(t,
		"user default off",
		"user flowgo on >s3cret ~logs* +@list +@connection +scan +type",
		"user admin on >adm1n ~* &* +@all")
	admin := srv.Client("admin", "adm1n")
	redisPush(t, admin, "logs", seqItems("a", 0, 100))

	t.Run("a wrong password is retried, never fatal, and reported", func(t *testing.T) {
		sink := newTestSink()
		r := startRedis(t, srv, "redis_username = \"flowgo\"\nredis_password = \"wrong\"", sink)
		redisWait(t, 20*time.Second, "an error", func() bool { return r.in.Errors() > 0 })
		ok, why := r.in.Ready()
		if ok || !strings.Contains(why, "WRONGPASS") {
			t.Errorf("Ready() = %v, %q; want false with the server's reason", ok, why)
		}
		select {
		case err := <-r.done:
			t.Fatalf("Run returned %v; it must keep retrying", err)
		default:
		}
		r.stop(t)
		if !strings.Contains(r.logs.String(), "redis: command failed, retrying") {
			t.Errorf("the error was not logged:\n%s", r.logs)
		}
	})
	t.Run("the right one delivers", func(t *testing.T) {
		sink := newTestSink()
		r := startRedis(t, srv, "redis_username = \"flowgo\"\nredis_password = \"s3cret\"", sink)
		redisWait(t, 20*time.Second, "100 records", func() bool { return sink.count() >= 100 })
		if ok, why := r.in.Ready(); !ok {
			t.Errorf("Ready() = false, %q", why)
		}
		r.stop(t)
		checkEmpty(t, admin, "logs", 1)
		if strings.Contains(r.logs.String(), "cannot look for temporary lists") {
			t.Errorf("the documented ACL does not allow the hand-over of other workers' lists:\n%s", r.logs)
		}
	})
	t.Run("credentials in redis_connect, as Flowgger's URL takes them", func(t *testing.T) {
		redisPush(t, admin, "logs", seqItems("b", 0, 10))
		sink := newTestSink()
		c := redisConfig(t, fmt.Sprintf("redis_connect = \"flowgo:s3cret@%s\"", srv.Addr))
		in, err := Type{Parse: parseRedis}.New(c)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- in.Run(ctx, sink) }()
		redisWait(t, 20*time.Second, "10 records", func() bool { return sink.count() >= 10 })
		cancel()
		<-done
		if w := strings.Join(c.Section.File().Warnings(), "\n"); !strings.Contains(w, "prefer redis_password") {
			t.Errorf("no warning about the password in redis_connect: %q", w)
		}
	})
}

// No Redis older than 6.2 is at hand: these make a Redis 7 answer as one
// would (rename-command turns BLMOVE and LMOVE into unknown commands, the
// very error of a 6.0 server), or as a server whose ACL allows only
// Flowgger's commands does (NOPERM).
func TestRedisFallsBackToBRPOPLPUSH(t *testing.T) {
	tests := []struct {
		name  string
		lines []string
		user  string
	}{
		{"server without BLMOVE", []string{`rename-command BLMOVE ""`, `rename-command LMOVE ""`}, ""},
		{"ACL without BLMOVE", []string{"user flowgger on >pw ~* +@all -blmove -lmove"}, "flowgger"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := redistest.Start(t, tt.lines...)
			c := srv.Client("", "")
			want := seqItems("f", 0, 3000)
			redisPush(t, c, "logs", want)
			keys := ""
			if tt.user != "" {
				keys = fmt.Sprintf("redis_username = %q\nredis_password = \"pw\"", tt.user)
			}
			sink := newTestSink()
			r := startRedis(t, srv, keys, sink)
			redisWait(t, 30*time.Second, "3000 records", func() bool { return sink.count() >= 3000 })
			r.stop(t)
			msgs, _, _, _ := sink.snapshot()
			if !slices.Equal(msgs, want) {
				t.Errorf("%d records, not the 3000 pushed in order", len(msgs))
			}
			checkEmpty(t, c, "logs", 1)
			if !strings.Contains(r.logs.String(), "using BRPOPLPUSH and RPOPLPUSH") {
				t.Errorf("no log of the fallback:\n%s", r.logs)
			}
			if r.in.Errors() != 0 {
				t.Errorf("Errors() = %d; the fallback is not an error", r.in.Errors())
			}
		})
	}
	t.Run("forced", func(t *testing.T) {
		srv := redistest.Start(t)
		c := srv.Client("", "")
		redisPush(t, c, "logs", seqItems("g", 0, 500))
		sink := newTestSink()
		r := startRedis(t, srv, "redis_threads = 2", sink, func(in *Redis) { in.forceLegacy = true })
		redisWait(t, 30*time.Second, "500 records", func() bool { return sink.count() >= 500 })
		r.stop(t)
		msgs, _, _, _ := sink.snapshot()
		if dups, missing := checkOnce(msgs, seqItems("g", 0, 500)); dups != 0 || len(missing) != 0 {
			t.Errorf("%d duplicates, %d missing", dups, len(missing))
		}
		checkEmpty(t, c, "logs", 2)
	})
}

// Redis killed (SIGKILL) mid-stream, while the workers hold batches in
// Put, and started again on the same port with its append-only file: the
// removals that fail meanwhile are done once Redis answers, the input
// reports not ready meanwhile, keeps trying, and goes on. Nothing is lost,
// and with appendfsync always nothing comes twice: an item whose move
// reached Redis but whose reply did not is in the temporary list and
// handed over once, and an item removed twice is not found the second time.
func TestRedisKeepsGoingWhenRedisRestarts(t *testing.T) {
	srv := redistest.Start(t, "appendonly yes", "appendfsync always")
	c := srv.Client("", "")
	const n1, n2 = 30_000, 10_000
	want := seqItems("r", 0, n1+n2)
	redisPush(t, c, "logs", want[:n1])
	killed := make(chan struct{})
	sink := newTestSink()
	sink.wait = func() {
		if sink.count() >= 5000 {
			<-killed
		}
	}
	r := startRedis(t, srv, "redis_threads = 2", sink)
	redisWait(t, 60*time.Second, "5,000 records", func() bool { return sink.count() >= 5000 })
	time.Sleep(100 * time.Millisecond) // both workers waiting in Put
	srv.Kill()
	killedAt := sink.count()
	close(killed)
	redisWait(t, 30*time.Second, "not ready", func() bool { ok, _ := r.in.Ready(); return !ok })
	time.Sleep(500 * time.Millisecond) // a few failed tries
	srv.Restart()
	redisWait(t, 60*time.Second, "ready again", func() bool { ok, _ := r.in.Ready(); return ok })
	redisPush(t, c, "logs", want[n1:])
	redisWait(t, 120*time.Second, "every record", func() bool {
		msgs, _, _, _ := sink.snapshot()
		_, missing := checkOnce(msgs, want)
		return len(missing) == 0
	})
	time.Sleep(200 * time.Millisecond)
	r.stop(t)
	msgs, _, _, _ := sink.snapshot()
	dups, missing := checkOnce(msgs, want)
	t.Logf("%d records when Redis was killed, %d in all, %d duplicates, %d errors", killedAt, len(msgs), dups, r.in.Errors())
	if killedAt >= n1 {
		t.Fatal("everything was taken before Redis was killed; the test proves nothing")
	}
	if len(missing) != 0 || dups != 0 {
		t.Errorf("%d missing, %d duplicates; want none", len(missing), dups)
	}
	if r.in.Errors() == 0 {
		t.Error("no error counted while Redis was down")
	}
	if !strings.Contains(r.logs.String(), "redis: working again") || !strings.Contains(r.logs.String(), "lrem: ") {
		t.Errorf("the log does not show the failed removal and the recovery:\n%s", r.logs)
	}
	checkEmpty(t, c, "logs", 2)
}

func TestRedisConfig(t *testing.T) {
	typ, canon, err := Lookup("redis")
	if err != nil || canon != "redis" {
		t.Fatalf("Lookup(redis) = %v, %v", canon, err)
	}
	t.Run("Flowgger's defaults", func(t *testing.T) {
		in, err := typ.New(redisConfig(t, ""))
		if err != nil {
			t.Fatal(err)
		}
		r := in.(*Redis)
		if r.addr != "127.0.0.1:6379" || r.k.QueueKey != "logs" || r.k.Threads != 1 || r.k.DB != 0 || r.tlsFiles != nil {
			t.Errorf("defaults: addr %q, %+v", r.addr, r.k)
		}
		if ok, why := r.Ready(); ok || why != "not started" {
			t.Errorf("Ready() before Run = %v, %q", ok, why)
		}
		if r.tmpKey(3) != "logs.tmp.3" {
			t.Errorf("tmpKey(3) = %q; want Flowgger's logs.tmp.3", r.tmpKey(3))
		}
	})
	t.Run("redis_connect as Flowgger's URL reads it", func(t *testing.T) {
		tests := []struct {
			in, addr, user, pass string
			db                   int
		}{
			{"10.0.0.5", "10.0.0.5:6379", "", "", -1},
			{"redis.example:6380", "redis.example:6380", "", "", -1},
			{"[::1]:7000", "[::1]:7000", "", "", -1},
			{"[::1]", "[::1]:6379", "", "", -1},
			{":pw@127.0.0.1:6379", "127.0.0.1:6379", "", "pw", -1},
			{"u:p%40ss@h:1/3", "h:1", "u", "p@ss", 3},
		}
		for _, tt := range tests {
			addr, user, pass, db, err := parseRedisConnect(tt.in)
			if err != nil || addr != tt.addr || user != tt.user || pass != tt.pass || db != tt.db {
				t.Errorf("parseRedisConnect(%q) = %q, %q, %q, %d, %v; want %q, %q, %q, %d", tt.in, addr, user, pass, db, err, tt.addr, tt.user, tt.pass, tt.db)
			}
		}
	})
	t.Run("errors name the key", func(t *testing.T) {
		tests := []struct{ name, keys, want string }{
			{"an empty address", `redis_connect = ""`, "test.toml:3: input.redis_connect: must not be empty"},
			{"a URL", `redis_connect = "redis://h:6379"`, "input.redis_connect: want host:port, not a URL"},
			{"a bad port", `redis_connect = "h:port"`, "input.redis_connect: want host:port"},
			{"port 0", `redis_connect = "h:0"`, `input.redis_connect: port "0" is not a number from 1 to 65535`},
			{"a bad database", `redis_connect = "h:1/x"`, `input.redis_connect: "x" after the address is not a database number`},
			{"the database twice", "redis_connect = \"h:1/2\"\nredis_db = 3", "input.redis_connect: names database 2, and redis_db is set too"},
			{"a password twice", "redis_connect = \":a@h\"\nredis_password = \"b\"", "input.redis_connect: holds credentials"},
			{"an empty list", `redis_queue_key = ""`, "input.redis_queue_key: must not be empty"},
			{"no threads", `redis_threads = 0`, "input.redis_threads: must be between 1 and 256, not 0"},
			{"a negative database", `redis_db = -1`, "input.redis_db: must be 0 or more"},
			{"a user without password", `redis_username = "u"`, "input.redis_username: needs redis_password"},
			{"TLS keys without TLS", `redis_tls_ca_file = "/x"`, "input.redis_tls_ca_file: is set but redis_tls is not"},
			{"a missing CA file", "redis_tls = true\nredis_tls_ca_file = \"/nonexistent/ca.pem\"", "input.redis_tls_ca_file: stat /nonexistent/ca.pem"},
			{"a key without its certificate", "redis_tls = true\nredis_tls_key = \"/x\"", "input.redis_tls_key: is set without redis_tls_cert"},
			{"a string for a number", `redis_threads = "4"`, "wrong type: expected an integer"},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				_, err := typ.New(redisConfig(t, tt.keys))
				if err == nil || !strings.Contains(err.Error(), tt.want) {
					t.Errorf("New: %v; want an error containing %q", err, tt.want)
				}
			})
		}
	})
	t.Run("framing is ignored with a warning", func(t *testing.T) {
		c := redisConfig(t, `framing = "nul"`)
		if _, err := typ.New(c); err != nil {
			t.Fatal(err)
		}
		if w := strings.Join(c.Section.File().Warnings(), "\n"); !strings.Contains(w, "input.framing: ignored: each Redis list item is one record") {
			t.Errorf("warnings %q", w)
		}
	})
}

func TestRedisGlobEscape(t *testing.T) {
	if got := redisGlobEscape(`a*b?[c]\d`); got != `a\*b\?\[c\]\\d` {
		t.Errorf("redisGlobEscape = %q", got)
	}
}

// Mutual TLS with a real redis-server that speaks only TLS and requires a
// client certificate; a server the CA did not sign is refused, retried and
// reported, never fatal.
func TestRedisTLS(t *testing.T) {
	dir := t.TempDir()
	ca := testcerts.NewCA(t, "redis test CA")
	srvLeaf := ca.Server(t)
	cli := ca.Client(t, "flowgo")
	probe := ca.Client(t, "test harness")
	srv := redistest.StartTLS(t, redistest.TLS{
		CertFile:       testcerts.WriteFile(t, dir, "server.pem", srvLeaf.CertPEM),
		KeyFile:        testcerts.WriteFile(t, dir, "server.key", srvLeaf.KeyPEM),
		CAFile:         testcerts.WriteFile(t, dir, "ca.pem", ca.CertPEM),
		ClientCertFile: testcerts.WriteFile(t, dir, "probe.pem", probe.CertPEM),
		ClientKeyFile:  testcerts.WriteFile(t, dir, "probe.key", probe.KeyPEM),
	})
	c := srv.Client("", "")
	redisPush(t, c, "logs", seqItems("tls", 0, 500))
	keys := fmt.Sprintf("redis_tls = true\nredis_tls_ca_file = %q\nredis_tls_cert = %q\nredis_tls_key = %q",
		filepath.Join(dir, "ca.pem"),
		testcerts.WriteFile(t, dir, "client.pem", cli.CertPEM),
		testcerts.WriteFile(t, dir, "client.key", cli.KeyPEM))

	t.Run("a server of another CA is refused", func(t *testing.T) {
		other := testcerts.NewCA(t, "another CA")
		otherCA := testcerts.WriteFile(t, dir, "other.pem", other.CertPEM)
		k := strings.Replace(keys, filepath.Join(dir, "ca.pem"), otherCA, 1)
		sink := newTestSink()
		r := startRedis(t, srv, k, sink)
		redisWait(t, 20*time.Second, "an error", func() bool { return r.in.Errors() > 0 })
		if ok, why := r.in.Ready(); ok || !strings.Contains(why, "certificate") {
			t.Errorf("Ready() = %v, %q; want false, naming the certificate", ok, why)
		}
		r.stop(t)
		if n := sink.count(); n != 0 {
			t.Errorf("%d records through an unverified server", n)
		}
	})
	t.Run("mutual TLS delivers", func(t *testing.T) {
		sink := newTestSink()
		r := startRedis(t, srv, keys, sink)
		redisWait(t, 20*time.Second, "500 records", func() bool { return sink.count() >= 500 })
		r.stop(t)
		if !strings.Contains(r.logs.String(), "redis: consuming over TLS") {
			t.Errorf("the start is not logged as TLS:\n%s", r.logs)
		}
		checkEmpty(t, c, "logs", 1)
	})
}

// FuzzParseRedisConnect: redis_connect never panics the parser, and an
// accepted value gives a host:port with a valid port.
func FuzzParseRedisConnect(f *testing.F) {
	for _, s := range []string{"127.0.0.1", "h:6379", "[::1]:7000", ":pw@h:1/3", "u:p%40ss@h", "h:", "redis://h", "h/x", "[::1", "@", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		addr, _, _, db, err := parseRedisConnect(s)
		if err != nil {
			return
		}
		host, port, err := net.SplitHostPort(addr)
		if err != nil || host == "" {
			t.Fatalf("parseRedisConnect(%q) accepted, giving %q (%v)", s, addr, err)
		}
		if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
			t.Fatalf("parseRedisConnect(%q) gave port %q", s, port)
		}
		if db < -1 {
			t.Fatalf("parseRedisConnect(%q) gave db %d", s, db)
		}
	})
}
