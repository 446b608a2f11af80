package ratelog

import (
	"bytes"
	"errors"
	"log/slog"
	"strings"
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
