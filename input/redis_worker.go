package input

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/flowgo/flowgo"
	"github.com/redis/go-redis/v9"
)

// errSinkClosed says the pipeline refused a batch: it is stopping for good.
var errSinkClosed = errors.New("the pipeline is stopping")

// redisWorker is one of the input's redis_threads workers: one client, one
// temporary list. Its items go through three states:
//
//   - taken: moved to the temporary list, not yet handed to the pipeline;
//   - confirmed: the pipeline took the batch holding their records (or
//     they were rejected), to be removed from the temporary list;
//   - removed.
//
// After an error, the confirmed items are removed first; then everything
// still in the temporary list (items whose move reached Redis but whose
// reply did not reach the worker, or that an earlier run left) is handed
// over again before anything new is taken.
type redisWorker struct {
	in     *Redis
	queue  string
	tmp    string
	origin string // of rejected items: "list <queue>"
	client *redis.Client
	legacy bool // BRPOPLPUSH and RPOPLPUSH: the server is older than 6.2

	// The keys and count as command arguments, boxed once rather than for
	// every item's command.
	queueArg, tmpArg, minusOne any

	followUps int // non-blocking moves after a blocking one; adapts to the load
	confirmed []string
	cmds      []*redis.StringCmd
	buf       []byte

	delay  time.Duration // before the next try after an error
	failed bool          // since the last time the worker worked
	// recovered is set once the temporary list was handed over since the
	// start or the last error.
	recovered bool

	// notReady holds why the worker cannot work, nil once it does.
	notReady atomic.Pointer[string]
	// orphansDone is set once worker 0 handed over the temporary lists of
	// workers that no longer run.
	orphansDone bool
}

func newRedisWorker(in *Redis, n int) *redisWorker {
	w := &redisWorker{
		in: in, queue: in.k.QueueKey, tmp: in.tmpKey(n), origin: "list " + in.k.QueueKey,
		client: in.newClient(), legacy: in.forceLegacy,
		followUps: redisMinFollowUps, orphansDone: n != 0,
	}
	w.queueArg, w.tmpArg, w.minusOne = w.queue, w.tmp, int64(-1)
	why := "connecting"
	w.notReady.Store(&why)
	return w
}

// run works until ctx ends; it never gives up on Redis errors.
func (w *redisWorker) run(ctx context.Context, sink Sink) {
	// Commands run under a context that is not cancelled, so that no
	// command is cut off between Redis acting and the worker learning of
	// it; the blocking move waits at most redisBlock, and ctx is checked
	// between commands.
	cctx := context.WithoutCancel(ctx)
	w.delay = redisRetryFirst
	for {
		err := w.cycle(ctx, cctx, sink)
		if err == nil || errors.Is(err, errSinkClosed) {
			return
		}
		w.recovered = false
		w.failed = true
		n := w.in.errCount.Add(1)
		why := err.Error()
		w.notReady.Store(&why)
		wait := w.delay/2 + rand.N(w.delay/2+1)
		w.in.errLog.Event(slog.LevelWarn, "redis: command failed, retrying", w.tmp, err,
			"address", w.in.addr, "retry_in", wait.String(), "errors_total", n)
		t := time.NewTimer(wait)
		select {
		case <-t.C:
			w.delay = min(2*w.delay, redisRetryMax)
		case <-ctx.Done():
			t.Stop()
			w.stopFailing()
			return
		}
	}
}

// stopFailing tries once more, briefly, to remove confirmed items when
// the worker stops while Redis fails. What it cannot remove stays in the
// temporary list and is handed over again at the next start.
func (w *redisWorker) stopFailing() {
	if len(w.confirmed) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), redisStopTimeout)
	defer cancel()
	if err := w.remove(ctx); err != nil {
		w.in.c.Log.Warn("redis: stopping with confirmed items still in the temporary list; they will be handed over again at the next start",
			"list", w.tmp, "items", len(w.confirmed), "error", err)
	}
}

// cycle removes what is confirmed, recovers the temporary list if needed,
// then takes, hands over and removes batches until ctx ends. It returns
// nil when ctx ended with nothing left to confirm.
func (w *redisWorker) cycle(ctx, cctx context.Context, sink Sink) error {
	if err := w.remove(cctx); err != nil {
		return err
	}
	if !w.recovered {
		if err := w.recover(cctx, sink, w.tmp); err != nil {
			return err
		}
		if !w.orphansDone {
			if err := w.recoverOrphans(cctx, sink); err != nil {
				return err
			}
			w.orphansDone = true
		}
		w.recovered = true
		w.notReady.Store(nil)
		if w.failed {
			w.failed = false
			w.in.c.Log.Info("redis: working again", "list", w.tmp, "address", w.in.addr)
		}
	}
	for ctx.Err() == nil {
		taken, err := w.take(cctx)
		if err != nil {
			return err
		}
		w.delay = redisRetryFirst
		if len(taken) == 0 {
			continue
		}
		if err := w.deliver(sink, taken, w.origin); err != nil {
			return err
		}
		if err := w.remove(cctx); err != nil {
			return err
		}
	}
	return nil
}

// take moves at least one item (waiting up to redisBlock for it) and as
// many more as are there, up to a batch, from the queue to the temporary
// list, oldest first.
func (w *redisWorker) take(ctx context.Context) ([]string, error) {
	v, err := w.moveBlocking(ctx)
	if errors.Is(err, redis.Nil) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	taken := []string{v}
	if w.followUps == 0 {
		return taken, nil
	}
	pipe := w.client.Pipeline()
	cmds := slices.Grow(w.cmds[:0], w.followUps)[:w.followUps]
	w.cmds = cmds
	for i := range cmds {
		if w.legacy {
			cmds[i] = redis.NewStringCmd(ctx, "rpoplpush", w.queueArg, w.tmpArg)
		} else {
			cmds[i] = redis.NewStringCmd(ctx, "lmove", w.queueArg, w.tmpArg, "RIGHT", "LEFT")
		}
		_ = pipe.Process(ctx, cmds[i])
	}
	_, _ = pipe.Exec(ctx)
	bytes := len(v)
	for _, c := range cmds {
		v, err := c.Result()
		if errors.Is(err, redis.Nil) {
			continue
		}
		if err != nil {
			if redisLacksCommand(err) && !w.legacy {
				w.legacy = true
				w.in.c.Log.Info("redis: the server refuses LMOVE: using RPOPLPUSH", "list", w.tmp, "error", err)
			}
			// The items already moved are in the temporary list; the
			// recovery that follows the error hands them over.
			return nil, fmt.Errorf("%s: %w", c.Name(), err)
		}
		taken = append(taken, v)
		bytes += len(v)
	}
	clear(cmds)
	w.adapt(len(taken)-1, bytes/len(taken))
	return taken, nil
}

// adapt sizes the next run of non-blocking moves: double while every move
// found an item, else twice what was found, within a batch's records and
// bytes.
func (w *redisWorker) adapt(got, avgSize int) {
	c := w.in.c
	limit := max(c.BatchRecords-1, 0)
	if avgSize > 0 && c.BatchBytes > 0 {
		limit = min(limit, max(c.BatchBytes/avgSize, 1))
	}
	next := 2 * got
	if got == w.followUps {
		next = 2 * w.followUps
	}
	w.followUps = min(max(next, redisMinFollowUps), limit)
}

// moveBlocking moves one item, waiting up to redisBlock; redis.Nil means
// none came. On a server without BLMOVE (older than 6.2, or an ACL that
// allows only Flowgger's commands) it switches to BRPOPLPUSH for good.
func (w *redisWorker) moveBlocking(ctx context.Context) (string, error) {
	if !w.legacy {
		v, err := w.client.BLMove(ctx, w.queue, w.tmp, "RIGHT", "LEFT", redisBlock).Result()
		if !redisLacksCommand(err) {
			return v, err
		}
		w.legacy = true
		w.in.c.Log.Info("redis: the server refuses BLMOVE (older than 6.2, or not allowed by its ACL): using BRPOPLPUSH and RPOPLPUSH",
			"list", w.tmp, "error", err)
	}
	//lint:ignore SA1019 BLMOVE's replacement is what servers before 6.2 lack: this is the fallback for them
	return w.client.BRPopLPush(ctx, w.queue, w.tmp, redisBlock).Result()
}

// redisLacksCommand tells the errors of a server that does not know a
// command, or whose ACL does not let this user run it.
func redisLacksCommand(err error) bool {
	return err != nil && (redis.HasErrorPrefix(err, "unknown command") || redis.IsPermissionError(err))
}

// deliver decodes items (oldest first) into one batch, rejects those that
// do not decode, hands the batch to the pipeline and, once it took it,
// marks every item confirmed.
func (w *redisWorker) deliver(sink Sink, items []string, origin string) error {
	c := w.in.c
	b := flowgo.GetBatch()
	b.Source = c.Name
	for _, v := range items {
		frame := redisFrame(v)
		if len(frame) > c.MaxMessageSize && c.MaxMessageSize > 0 {
			if !c.Truncate {
				sink.Reject(origin, []byte(v), &FrameError{Reason: fmt.Sprintf("%v (%d bytes): %d bytes", ErrFrameTooLong, c.MaxMessageSize, len(frame)), Err: ErrFrameTooLong})
				continue
			}
			frame = frame[:c.MaxMessageSize]
		}
		w.buf = append(w.buf[:0], frame...)
		b.BytesIn += len(v)
		r := b.Next()
		if err := c.Decoder.Decode(w.buf, r, &b.Arena); err != nil {
			b.Drop()
			sink.Reject(origin, w.buf, err)
		}
	}
	if b.Len() > 0 {
		if err := sink.Put(b); err != nil {
			// The items stay in the temporary list, for the next start.
			return errSinkClosed
		}
	} else {
		flowgo.PutBatch(b)
	}
	w.confirmed = append(w.confirmed, items...)
	return nil
}

// redisFrame is an item without one trailing LF or CRLF.
func redisFrame(v string) string {
	v = strings.TrimSuffix(v, "\n")
	if len(v) < 1 || v[len(v)-1] != '\r' {
		return v
	}
	return v[:len(v)-1]
}

// remove deletes the confirmed items from the temporary list, each
// searched from the right (oldest) end, where it is. If it fails part way
// it is simply done again: the list then holds only confirmed items, and
// an item removed twice is not found the second time.
func (w *redisWorker) remove(ctx context.Context) error {
	if len(w.confirmed) == 0 {
		return nil
	}
	pipe := w.client.Pipeline()
	for _, v := range w.confirmed {
		_ = pipe.Process(ctx, redis.NewIntCmd(ctx, "lrem", w.tmpArg, w.minusOne, v))
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return fmt.Errorf("lrem: %w", err)
	}
	clear(w.confirmed)
	w.confirmed = w.confirmed[:0]
	return nil
}

// recover hands over everything in the list tmp, oldest first, a batch at
// a time, and removes it.
func (w *redisWorker) recover(ctx context.Context, sink Sink, tmp string) error {
	total := 0
	n := int64(max(w.in.c.BatchRecords, 1))
	for {
		items, err := w.client.LRange(ctx, tmp, -n, -1).Result()
		if err != nil {
			return fmt.Errorf("lrange %s: %w", tmp, err)
		}
		if len(items) == 0 {
			break
		}
		slices.Reverse(items)
		if err := w.deliver(sink, items, "list "+tmp); err != nil {
			return err
		}
		// deliver confirmed them for w.tmp; remove them from tmp.
		if err := w.removeFrom(ctx, tmp); err != nil {
			return err
		}
		total += len(items)
		w.in.recovered.Add(int64(len(items)))
	}
	if total > 0 {
		w.in.c.Log.Info("redis: handed over items left in a temporary list by an earlier run", "list", tmp, "items", total)
	}
	return nil
}

// removeFrom is remove for another worker's list.
func (w *redisWorker) removeFrom(ctx context.Context, tmp string) error {
	if tmp == w.tmp {
		return w.remove(ctx)
	}
	pipe := w.client.Pipeline()
	for _, v := range w.confirmed {
		pipe.LRem(ctx, tmp, -1, v)
	}
	if _, err := pipe.Exec(ctx); err != nil {
		// These items were handed over; the next try hands them over
		// again (duplicates, not loss): forget them here, since remove
		// would look for them in the worker's own list.
		clear(w.confirmed)
		w.confirmed = w.confirmed[:0]
		return fmt.Errorf("lrem %s: %w", tmp, err)
	}
	clear(w.confirmed)
	w.confirmed = w.confirmed[:0]
	return nil
}

// recoverOrphans hands over the temporary lists <queue>.tmp.<n> with n at
// or beyond redis_threads: left by a run with more workers (flowgo's or
// Flowgger's). It finds them with SCAN; a user whose ACL forbids SCAN
// gets a warning instead.
func (w *redisWorker) recoverOrphans(ctx context.Context, sink Sink) error {
	prefix := w.queue + ".tmp."
	var cursor uint64
	var orphans []string
	for {
		keys, next, err := w.client.Scan(ctx, cursor, redisGlobEscape(prefix)+"*", 1000).Result()
		if redis.IsPermissionError(err) {
			w.in.c.Log.Warn("redis: cannot look for temporary lists of workers beyond redis_threads (SCAN not allowed)",
				"list", w.queue, "error", err)
			return nil
		}
		if err != nil {
			return fmt.Errorf("scan: %w", err)
		}
		for _, k := range keys {
			suffix := strings.TrimPrefix(k, prefix)
			n, err := strconv.Atoi(suffix)
			if err != nil || n < w.in.k.Threads || strconv.Itoa(n) != suffix {
				continue
			}
			typ, err := w.client.Type(ctx, k).Result()
			if err != nil {
				return fmt.Errorf("type %s: %w", k, err)
			}
			if typ == "list" {
				orphans = append(orphans, k)
			}
		}
		if cursor = next; cursor == 0 {
			break
		}
	}
	slices.Sort(orphans)
	orphans = slices.Compact(orphans)
	for _, k := range orphans {
		if err := w.recover(ctx, sink, k); err != nil {
			return err
		}
	}
	return nil
}

// redisGlobEscape escapes the characters SCAN MATCH patterns give a
// meaning to.
func redisGlobEscape(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '*', '?', '[', ']', '\\', '^', '-':
			b.WriteByte('\\')
		}
		b.WriteByte(s[i])
	}
	return b.String()
}
