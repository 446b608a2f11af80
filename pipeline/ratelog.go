package pipeline

import (
	"fmt"
	"log/slog"
	"sync"
	"time"
)

// rateLog logs a kind of per-record problem without flooding stderr: the
// first burst events of each interval are logged one by one, the rest are
// summarised once the interval is over ("1234 records rejected in the last
// 10s, last reason: ..."). Safe for concurrent use.
type rateLog struct {
	log      *slog.Logger
	what     string // "records rejected"
	interval time.Duration
	burst    int

	mu         sync.Mutex
	start      time.Time
	inWindow   int
	suppressed int
	lastReason string
	lastOrigin string
	now        func() time.Time
}

func newRateLog(log *slog.Logger, what string, interval time.Duration, burst int) *rateLog {
	return &rateLog{log: log, what: what, interval: interval, burst: burst, now: time.Now}
}

// Event logs or counts one event.
func (r *rateLog) Event(msg, origin string, err error, attrs ...any) {
	r.mu.Lock()
	now := r.now()
	if now.Sub(r.start) >= r.interval {
		r.flushLocked(now)
	}
	r.inWindow++
	if r.inWindow <= r.burst {
		r.mu.Unlock()
		args := append([]any{"origin", origin, "error", err}, attrs...)
		r.log.Warn(msg, args...)
		return
	}
	r.suppressed++
	r.lastReason = err.Error()
	r.lastOrigin = origin
	r.mu.Unlock()
}

func (r *rateLog) flushLocked(now time.Time) {
	if r.suppressed > 0 {
		total := r.inWindow
		r.log.Warn(fmt.Sprintf("%d %s in the last %s (%d not logged one by one)", total, r.what, r.interval, r.suppressed),
			"count", total, "last_origin", r.lastOrigin, "last_reason", r.lastReason)
	}
	r.start = now
	r.inWindow = 0
	r.suppressed = 0
}

// Flush logs the summary of the current interval, if any.
func (r *rateLog) Flush() {
	r.mu.Lock()
	r.flushLocked(r.now())
	r.mu.Unlock()
}
