package main

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/flowgo/flowgo/pipeline"
)

func TestProgressLineTellsRatesShareAndETA(t *testing.T) {
	start := time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC)
	p := &progress{start: start, prevAt: start, read: &countingReader{}, size: 400_000_000, stats: new(pipeline.Stats)}
	p.stats.Sent.Store(1_000_000)
	p.stats.Rejected.Store(3)
	p.read.n.Store(100_000_000)
	got := p.line(start.Add(10*time.Second), false)
	// A quarter read in 10 s: 30 s left.
	if want := "flowgo pipe: 1000000 records, 100.0k/s, 10.0 MB/s, 3 rejected, 25%, ETA 30s"; got != want {
		t.Errorf("line = %q; want %q", got, want)
	}
	p.stats.Sent.Store(1_500_000)
	p.read.n.Store(150_000_000)
	if got, want := p.line(start.Add(15*time.Second), false), "flowgo pipe: 1500000 records, 100.0k/s, 10.0 MB/s, 3 rejected, 37%, ETA 25s"; got != want {
		t.Errorf("second line = %q; want %q (rates over the last interval)", got, want)
	}
	p.size = -1 // a pipe: no share, no ETA
	if got, want := p.line(start.Add(20*time.Second), true), "flowgo pipe: 1500000 records, 75.0k/s, 7.5 MB/s, 3 rejected, 20s"; got != want {
		t.Errorf("final line = %q; want %q (averages over the run)", got, want)
	}
}

func TestStatusLineIsErasedBeforeOtherOutput(t *testing.T) {
	var buf bytes.Buffer
	sw := &statusWriter{w: &buf}
	sw.status("working")
	sw.Write([]byte("line 3: bad\n"))
	sw.Write([]byte("partial"))
	sw.status("not drawn in the middle of a line")
	sw.Write([]byte(" end\n"))
	sw.finish("done")
	want := eraseLine + "working" + eraseLine + "line 3: bad\npartial end\n" + eraseLine + "done\n"
	if got := buf.String(); got != want {
		t.Errorf("stderr = %q; want %q", got, want)
	}
	if strings.Contains(buf.String(), "not drawn") {
		t.Error("a status line was drawn after a partial line")
	}
}
