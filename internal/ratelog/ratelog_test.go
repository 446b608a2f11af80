package ratelog

import (
	"bytes"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestBurstThenOneSummaryPerInterval(t *testing.T) {
	var out bytes.Buffer
	l := New(slog.New(slog.NewTextHandler(&out, &slog.HandlerOptions{
		ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
			if a.Key == slog.TimeKey {
				return slog.Attr{}
			}
			return a
		},
	})), "frames rejected", "origin", 10*time.Second, 2)
	clock := time.Date(2026, 11, 26, 0, 0, 0, 0, time.UTC)
	l.now = func() time.Time { return clock }
	for i := range 5 {
		l.Event(slog.LevelWarn, "frame rejected", "line "+string(rune('1'+i)), errors.New("bad"), "n", i)
	}
	clock = clock.Add(10 * time.Second)
	l.Event(slog.LevelWarn, "frame rejected", "", errors.New("worse")) // a new interval: logged
	l.Flush()                                                          // nothing suppressed since
	want := []string{
		`level=WARN msg="frame rejected" origin="line 1" error=bad n=0`,
		`level=WARN msg="frame rejected" origin="line 2" error=bad n=1`,
		`level=WARN msg="5 frames rejected in the last 10s (3 not logged one by one)" count=5 last_origin="line 5" last_error=bad`,
		`level=WARN msg="frame rejected" error=worse`,
	}
	if got := strings.Split(strings.TrimSpace(out.String()), "\n"); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("log:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// fakeTimers records the timers a Log arms; the test fires them.
type fakeTimers struct {
	armed []fakeTimer
}

type fakeTimer struct {
	d       time.Duration
	f       func()
	stopped *bool
}

func (ft *fakeTimers) afterFunc(d time.Duration, f func()) stopper {
	stopped := new(bool)
	ft.armed = append(ft.armed, fakeTimer{d, f, stopped})
	return fakeStopper{stopped}
}

type fakeStopper struct{ stopped *bool }

func (s fakeStopper) Stop() bool { was := !*s.stopped; *s.stopped = true; return was }

func testLog(out *bytes.Buffer, interval time.Duration, burst int) (*Log, *time.Time, *fakeTimers) {
	l := New(slog.New(slog.NewTextHandler(out, &slog.HandlerOptions{
		ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
			if a.Key == slog.TimeKey {
				return slog.Attr{}
			}
			return a
		},
	})), "frames rejected", "origin", interval, burst)
	clock := time.Date(2026, 11, 26, 0, 0, 0, 0, time.UTC)
	l.now = func() time.Time { return clock }
	ft := &fakeTimers{}
	l.afterFunc = ft.afterFunc
	return l, &clock, ft
}

// The summary is written when the interval ends, by a timer, with no
// further event and no Flush: not minutes later with the next event.
func TestSummaryIsWrittenByATimerAtTheEndOfTheInterval(t *testing.T) {
	var out bytes.Buffer
	l, clock, ft := testLog(&out, 10*time.Second, 2)
	l.Event(slog.LevelWarn, "frame rejected", "line 1", errors.New("bad"))
	*clock = clock.Add(3 * time.Second)
	for i := 2; i <= 6; i++ {
		l.Event(slog.LevelWarn, "frame rejected", "line "+string(rune('0'+i)), errors.New("bad"))
	}
	if len(ft.armed) != 1 {
		t.Fatalf("%d timers armed; want 1 for the summary", len(ft.armed))
	}
	if d := ft.armed[0].d; d != 7*time.Second {
		t.Errorf("summary timer armed for %v; want the 7s left of the interval", d)
	}
	if strings.Contains(out.String(), "in the last") {
		t.Fatalf("summary written before the interval ended:\n%s", &out)
	}
	*clock = clock.Add(7 * time.Second)
	ft.armed[0].f()
	want := `level=WARN msg="6 frames rejected in the last 10s (4 not logged one by one)" count=6 last_origin="line 6" last_error=bad`
	if lines := strings.Split(strings.TrimSpace(out.String()), "\n"); lines[len(lines)-1] != want {
		t.Errorf("last line %q; want %q", lines[len(lines)-1], want)
	}
	// A new interval: its first events are logged one by one again, and
	// no summary is due until some are suppressed.
	out.Reset()
	*clock = clock.Add(time.Hour)
	l.Event(slog.LevelWarn, "frame rejected", "line 7", errors.New("worse"))
	if got := strings.TrimSpace(out.String()); got != `level=WARN msg="frame rejected" origin="line 7" error=worse` {
		t.Errorf("after the summary: %q", got)
	}
	if len(ft.armed) != 1 {
		t.Errorf("%d timers armed; want no new one while nothing is suppressed", len(ft.armed))
	}
}

// Flush (at exit) writes the summary at once, naming the window it covers,
// and stops the timer, which then writes nothing.
func TestFlushWritesTheSummaryOfAShortWindowAndStopsTheTimer(t *testing.T) {
	var out bytes.Buffer
	l, clock, ft := testLog(&out, 10*time.Second, 1)
	l.Event(slog.LevelWarn, "frame rejected", "line 1", errors.New("bad"))
	l.Event(slog.LevelWarn, "frame rejected", "line 2", errors.New("bad"))
	*clock = clock.Add(3200 * time.Millisecond)
	l.Flush()
	if !strings.Contains(out.String(), `msg="2 frames rejected in the last 3.2s (1 not logged one by one)"`) {
		t.Errorf("log:\n%s", &out)
	}
	if len(ft.armed) != 1 || !*ft.armed[0].stopped {
		t.Fatalf("timers %+v; want the one armed, stopped", ft.armed)
	}
	out.Reset()
	*clock = clock.Add(10 * time.Second)
	ft.armed[0].f() // a timer that fires although stopped
	if out.Len() != 0 {
		t.Errorf("a stopped timer wrote %q", &out)
	}
}

// With the real timer and a short interval, the summary comes on its own.
func TestSummaryComesWithoutAnotherEvent(t *testing.T) {
	var out syncBuffer
	l := New(slog.New(slog.NewTextHandler(&out, nil)), "frames rejected", "origin", 50*time.Millisecond, 1)
	for range 3 {
		l.Event(slog.LevelWarn, "frame rejected", "x", errors.New("bad"))
	}
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(out.String(), "3 frames rejected in the last 50ms (2 not logged one by one)") {
		if time.Now().After(deadline) {
			t.Fatalf("no summary within 10s of a 50ms interval:\n%s", out.String())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
