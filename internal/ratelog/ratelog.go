// Package ratelog logs a kind of event, such as a rejected frame or a
// refused connection, without flooding the log: the first events of each
// interval are logged one by one, the rest are counted and summarised when
// the interval is over ("1234 frames rejected in the last 10s (1224 not
// logged one by one)", with the last place and error). A timer writes the
// summary at the end of the interval, whether or not another event comes.
// The pipeline's and the stream inputs' logs share it.
package ratelog

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"
)

// Log is one kind of event's log. Safe for concurrent use.
type Log struct {
	log      *slog.Logger
	what     string // "frames rejected"
	key      string // what the place is called: "origin", "peer"
	interval time.Duration
	burst    int
	now      func() time.Time
	// afterFunc arms the timer that writes a summary; time.AfterFunc
	// outside tests.
	afterFunc func(time.Duration, func()) stopper

	mu         sync.Mutex
	start      time.Time
	inWindow   int
	suppressed int
	lastWhere  string
	lastErr    string
	timer      stopper // armed while a summary is due
	gen        uint64  // tells the armed timer from stopped ones
}

// stopper is a timer as Log uses it.
type stopper interface{ Stop() bool }

func afterFunc(d time.Duration, f func()) stopper { return time.AfterFunc(d, f) }

// New returns a log that writes the first burst events of each interval
// to log. what names the events in the summary; key names the place an
// event comes from in every line.
func New(log *slog.Logger, what, key string, interval time.Duration, burst int) *Log {
	return &Log{log: log, what: what, key: key, interval: interval, burst: burst, now: time.Now, afterFunc: afterFunc}
}

// Event logs msg at level, with where (under the log's key, when not empty),
// err (when not nil) and attrs, or counts it if this interval's burst is
// spent.
func (l *Log) Event(level slog.Level, msg, where string, err error, attrs ...any) {
	l.mu.Lock()
	now := l.now()
	if now.Sub(l.start) >= l.interval {
		l.flushLocked(now)
	}
	l.inWindow++
	if l.inWindow > l.burst {
		l.suppressed++
		l.lastWhere = where
		if err != nil {
			l.lastErr = err.Error()
		}
		if l.timer == nil {
			l.armLocked(l.start.Add(l.interval).Sub(now))
		}
		l.mu.Unlock()
		return
	}
	l.mu.Unlock()
	args := make([]any, 0, 4+len(attrs))
	if where != "" {
		args = append(args, l.key, where)
	}
	if err != nil {
		args = append(args, "error", err)
	}
	l.log.Log(context.Background(), level, msg, append(args, attrs...)...)
}

// armLocked has the summary written in d.
func (l *Log) armLocked(d time.Duration) {
	l.gen++
	gen := l.gen
	l.timer = l.afterFunc(max(d, 0), func() { l.fire(gen) })
}

// fire is the timer's: it writes the summary once the interval is over.
func (l *Log) fire(gen uint64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.timer == nil || l.gen != gen {
		return // a flush came first and stopped it
	}
	l.timer = nil
	now := l.now()
	if left := l.start.Add(l.interval).Sub(now); left > 0 {
		l.armLocked(left) // early (a clock set back): wait for the rest
		return
	}
	l.flushLocked(now)
}

func (l *Log) flushLocked(now time.Time) {
	if l.timer != nil {
		l.timer.Stop()
		l.timer = nil
	}
	if l.suppressed > 0 {
		// The window the count covers: the interval, or less when the
		// summary is asked for early (at exit).
		window := now.Sub(l.start)
		switch {
		case window >= l.interval:
			window = l.interval
		case window >= time.Second:
			window = window.Round(100 * time.Millisecond)
		default:
			window = window.Round(time.Millisecond)
		}
		l.log.Warn(fmt.Sprintf("%d %s in the last %s (%d not logged one by one)", l.inWindow, l.what, window, l.suppressed),
			"count", l.inWindow, "last_"+l.key, l.lastWhere, "last_error", l.lastErr)
	}
	l.start, l.inWindow, l.suppressed = now, 0, 0
}

// Flush logs the summary of the current interval, if any, now.
func (l *Log) Flush() {
	l.mu.Lock()
	l.flushLocked(l.now())
	l.mu.Unlock()
}
