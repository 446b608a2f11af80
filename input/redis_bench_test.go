package input_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/flowgo/flowgo/config"
	"github.com/flowgo/flowgo/internal/redistest"
	"github.com/flowgo/flowgo/internal/sample"
	"github.com/flowgo/flowgo/pipeline"
)

// BenchmarkRedisToFile drains b.N realistic RFC 5424 items (~250 bytes),
// pushed beforehand, from a real redis-server through a pipeline into a
// GELF file, with 1 and 4 redis_threads. It reports items/s, and the CPU
// time per item of this process (flowgo) and of redis-server, which is
// less sensitive than items/s to other work on a shared machine. Run with
// a fixed count, for instance:
//
//	go test ./input -run '^$' -bench RedisToFile -benchtime 200000x -count 3
func BenchmarkRedisToFile(b *testing.B) {
	for _, threads := range []int{1, 4} {
		b.Run(fmt.Sprintf("threads=%d", threads), func(b *testing.B) {
			srv := redistest.Start(b)
			c := srv.Client("", "")
			g := sample.New(1)
			var line []byte
			args := make([]any, 0, 1000)
			flush := func() {
				if err := c.LPush(context.Background(), "logs", args...).Err(); err != nil {
					b.Fatal(err)
				}
				args = args[:0]
			}
			for range b.N {
				line = g.RFC5424(line[:0])
				args = append(args, string(line))
				if len(args) == cap(args) {
					flush()
				}
			}
			if len(args) > 0 {
				flush()
			}
			out := filepath.Join(b.TempDir(), "out.log")
			f, err := config.Parse("flowgo.toml", fmt.Sprintf(`
[input]
type = "redis"
redis_connect = %q
redis_threads = %d
format = "rfc5424"
[output]
type = "file"
format = "gelf"
file_path = %q
file_buffer_size = 1048576
`, srv.Addr, threads, out))
			if err != nil {
				b.Fatal(err)
			}
			p, err := pipeline.Build(f, pipeline.Options{Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
			if err != nil {
				b.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			cpu0, rcpu0 := selfCPU(), procCPU(srv.PID())
			b.ResetTimer()
			start := time.Now()
			go func() { done <- p.Run(ctx) }()
			for p.Stats().Sent.Load() < int64(b.N) {
				time.Sleep(time.Millisecond)
			}
			elapsed := time.Since(start)
			b.StopTimer()
			cpu, rcpu := selfCPU()-cpu0, procCPU(srv.PID())-rcpu0
			cancel()
			if err := <-done; err != nil {
				b.Fatal(err)
			}
			if n, err := c.LLen(context.Background(), "logs").Result(); err != nil || n != 0 {
				b.Fatalf("%d items left in the queue (%v)", n, err)
			}
			b.ReportMetric(float64(b.N)/elapsed.Seconds(), "items/s")
			b.ReportMetric(float64(cpu.Microseconds())/float64(b.N), "cpu-µs/item")
			b.ReportMetric(float64(rcpu.Microseconds())/float64(b.N), "redis-cpu-µs/item")
		})
	}
}

// selfCPU is this process's user and system CPU time so far.
func selfCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// procCPU is process pid's user and system CPU time so far, from
// /proc/<pid>/stat (Linux; 0 elsewhere).
func procCPU(pid int) time.Duration {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0
	}
	// Fields after the command name, which is in parentheses.
	s := string(b)
	fields := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(fields) < 13 {
		return 0
	}
	ut, _ := strconv.ParseInt(fields[11], 10, 64)
	st, _ := strconv.ParseInt(fields[12], 10, 64)
	const ticks = 100 // USER_HZ on Linux
	return time.Duration(ut+st) * time.Second / ticks
}
