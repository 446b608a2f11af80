package main

import (
	"fmt"
	"io"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/flowgo/flowgo/pipeline"
)

// progressEvery is how often pipe redraws its progress line.
var progressEvery = 500 * time.Millisecond

// statusWriter is stderr with, when a terminal shows it, a status line at
// the bottom: any other output first erases the status line, which the
// next tick draws again below it. It passes everything through unchanged
// while no status line is drawn.
type statusWriter struct {
	mu    sync.Mutex
	w     io.Writer
	shown bool // a status line is on screen
	mid   bool // other output did not end with a newline: draw nothing
}

const eraseLine = "\r\x1b[K"

func (s *statusWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.shown {
		io.WriteString(s.w, eraseLine)
		s.shown = false
	}
	n, err := s.w.Write(p)
	if n > 0 {
		s.mid = p[n-1] != '\n'
	}
	return n, err
}

// terminal returns the terminal stderr is, or nil.
func (s *statusWriter) terminal() *os.File {
	if f, ok := s.w.(*os.File); ok && isTerminal(f) {
		return f
	}
	return nil
}

// status draws line as the status line.
func (s *statusWriter) status(line string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.mid {
		return
	}
	io.WriteString(s.w, eraseLine+line)
	s.shown = true
}

// finish draws line as the last status and ends it with a newline, so that
// it stays on screen.
func (s *statusWriter) finish(line string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.mid {
		io.WriteString(s.w, "\n")
	}
	io.WriteString(s.w, eraseLine+line+"\n")
	s.shown, s.mid = false, false
}

// countingReader counts the bytes read through it.
type countingReader struct {
	r io.Reader
	n atomic.Int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n.Add(int64(n))
	return n, err
}

// progress is what pipe's progress line shows.
type progress struct {
	start   time.Time
	read    *countingReader
	base    int64 // stdin's offset at start
	size    int64 // stdin's size, when it is a regular file; else -1
	stats   *pipeline.Stats
	prevAt  time.Time
	prevRec int64
	prevIn  int64
}

// newProgress watches stdin (wrapped in the returned reader) and the
// pipeline's counters.
func newProgress(stdin io.Reader) (*progress, io.Reader) {
	p := &progress{start: time.Now(), read: &countingReader{r: stdin}, size: -1}
	p.prevAt = p.start
	if f, ok := stdin.(*os.File); ok {
		if fi, err := f.Stat(); err == nil && fi.Mode().IsRegular() {
			p.size = fi.Size()
			if off, err := f.Seek(0, io.SeekCurrent); err == nil {
				p.base = off
			}
		}
	}
	return p, p.read
}

// line returns the progress line at now: records converted and their
// rate over the last interval, input MB/s, rejections, and for a regular
// file the share read and the time left at the average rate so far.
func (p *progress) line(now time.Time, final bool) string {
	recs := p.stats.Sent.Load()
	rejected := p.stats.Rejected.Load() + p.stats.EncodeFailed.Load() + p.stats.Failed.Load()
	in := p.read.n.Load()
	from, prevRec, prevIn := p.prevAt, p.prevRec, p.prevIn
	if final {
		from, prevRec, prevIn = p.start, 0, 0
	}
	secs := max(now.Sub(from).Seconds(), 1e-3)
	p.prevAt, p.prevRec, p.prevIn = now, recs, in
	s := fmt.Sprintf("flowgo pipe: %d records, %s/s, %.1f MB/s, %d rejected",
		recs, si(float64(recs-prevRec)/secs), float64(in-prevIn)/secs/1e6, rejected)
	if final {
		s += fmt.Sprintf(", %s", now.Sub(p.start).Round(100*time.Millisecond))
	}
	if p.size > 0 {
		done := min(float64(p.base+in)/float64(p.size), 1)
		s += fmt.Sprintf(", %d%%", int(done*100))
		if elapsed := now.Sub(p.start); !final && in > 0 && done < 1 {
			left := time.Duration(float64(elapsed) * float64(p.size-p.base-in) / float64(in))
			s += ", ETA " + left.Round(time.Second).String()
		}
	}
	return s
}

// si writes a rate with a k or M suffix.
func si(v float64) string {
	switch {
	case v >= 1e6:
		return fmt.Sprintf("%.2fM", v/1e6)
	case v >= 1e3:
		return fmt.Sprintf("%.1fk", v/1e3)
	}
	return fmt.Sprintf("%.0f", v)
}

// run draws the line every progressEvery until stop is closed, then the
// final one.
func (p *progress) run(sw *statusWriter, stop <-chan struct{}, done chan<- struct{}) {
	defer close(done)
	tick := time.NewTicker(progressEvery)
	defer tick.Stop()
	for {
		select {
		case now := <-tick.C:
			sw.status(p.line(now, false))
		case <-stop:
			sw.finish(p.line(time.Now(), true))
			return
		}
	}
}
