package input_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/flowgo/flowgo/config"
	"github.com/flowgo/flowgo/internal/sample"
	"github.com/flowgo/flowgo/pipeline"
)

// BenchmarkFileTail tails one file of realistic RFC 5424 lines (~243 bytes)
// into a GELF file through a whole pipeline: the file input (framing,
// decoding, checkpoints), the queue, the GELF encoder and the file output.
// One op is one line; run it with a fixed count, such as
//
//	go test ./input -run '^$' -bench FileTail -benchtime 2000000x
//
// It reports lines/s and the CPU time per line (user + system, of the whole
// process), which a shared machine disturbs less.
func BenchmarkFileTail(b *testing.B) {
	dir := b.TempDir()
	src := filepath.Join(dir, "app.log")
	if err := os.WriteFile(src, sample.Lines(b.N, sample.New(1).RFC5424), 0o644); err != nil {
		b.Fatal(err)
	}
	out := filepath.Join(dir, "out.json")
	f, err := config.Parse("bench.toml", fmt.Sprintf(`
[input]
type = "file"
src = %q
read_from = "beginning"
file_checkpoint_path = %q
[output]
type = "file"
file_path = %q
format = "gelf"
`, src, filepath.Join(dir, "ck.json"), out))
	if err != nil {
		b.Fatal(err)
	}
	p, err := pipeline.Build(f, pipeline.Options{Name: "bench", Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	b.ResetTimer()
	began := time.Now()
	cpuBefore := processCPU()
	go func() { done <- p.Run(ctx) }()
	deadline := time.Now().Add(10*time.Minute + time.Duration(b.N)*time.Microsecond*10)
	for p.Stats().Sent.Load() < int64(b.N) {
		if time.Now().After(deadline) {
			b.Fatalf("%d of %d lines written", p.Stats().Sent.Load(), b.N)
		}
		time.Sleep(time.Millisecond)
	}
	elapsed := time.Since(began)
	cpu := processCPU() - cpuBefore
	b.StopTimer()
	cancel()
	if err := <-done; err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "lines/s")
	b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N), "cpu-ns/line")
}

// processCPU returns the CPU time (user and system) this process has used.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
