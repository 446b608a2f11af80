package pipeline

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/flowgo/flowgo/internal/sample"
)

// benchLines caches realistic RFC 5424 lines (~243 bytes each).
var benchLines = map[int][]byte{}

func linesFor(n int) []byte {
	if b, ok := benchLines[n]; ok {
		return b
	}
	b := sample.Lines(n, sample.New(1).RFC5424)
	benchLines[n] = b
	return b
}

// runGroupBench runs the pipelines of dir once over in (the stdin of
// every stdin input) and returns when they are done.
func runGroupBench(b *testing.B, paths []string, in []byte, scrape bool) *Group {
	b.Helper()
	g, err := LoadGroup(paths, Options{Stdin: bytes.NewReader(in), Stdout: io.Discard, Log: quietLog()}, "")
	if err != nil {
		b.Fatal(err)
	}
	stop := make(chan struct{})
	scraped := make(chan int)
	if scrape {
		go func() {
			n := 0
			tick := time.NewTicker(time.Second)
			defer tick.Stop()
			for {
				select {
				case <-stop:
					scraped <- n
					return
				case <-tick.C:
					if a := g.MetricsAddr(); a != nil {
						if resp, err := http.Get("http://" + a.String() + "/metrics"); err == nil {
							io.Copy(io.Discard, resp.Body)
							resp.Body.Close()
							n++
						}
					}
				}
			}
		}()
	}
	if err := g.Run(context.Background()); err != nil {
		b.Fatal(err)
	}
	if scrape {
		close(stop)
		<-scraped
	}
	return g
}

// BenchmarkPipelineMetrics measures stdin RFC 5424 → GELF → discarded
// stdout with the metrics listener off, and on with a scrape every second (Prometheus scrapes every 15-60 s).
// One op is one record. For an A/B without an order bias, run the two as
// separate processes and alternate them: -bench 'PipelineMetrics/on' and
// -bench 'PipelineMetrics/off'.
func BenchmarkPipelineMetrics(b *testing.B) {
	for _, on := range []bool{false, true} {
		name := "off"
		extra := ""
		if on {
			name = "on"
			extra = "[metrics]\nlisten = \"127.0.0.1:0\"\n"
		}
		b.Run(name, func(b *testing.B) {
			cfg := writeFile(b, b.TempDir(), "bench.toml", "[input]\ntype=\"stdin\"\nformat=\"rfc5424\"\n[output]\ntype=\"stdout\"\nformat=\"gelf\"\n"+extra)
			in := linesFor(b.N)
			b.SetBytes(int64(len(in) / b.N))
			b.ResetTimer()
			g := runGroupBench(b, []string{cfg}, in, on)
			b.StopTimer()
			if sent := g.Pipelines()[0].Stats().Sent.Load(); sent != int64(b.N) {
				b.Fatalf("sent %d of %d", sent, b.N)
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "records/s")
		})
	}
}

// BenchmarkPipelineNextToABlockedOne measures one pipeline alone, then
// next to a second pipeline whose output is stuck with a full queue.
func BenchmarkPipelineNextToABlockedOne(b *testing.B) {
	for _, withBlocked := range []bool{false, true} {
		name := "alone"
		if withBlocked {
			name = "next_to_blocked"
		}
		b.Run(name, func(b *testing.B) {
			dir := b.TempDir()
			paths := []string{writeFile(b, dir, "fast.toml", "[input]\ntype=\"stdin\"\nformat=\"rfc5424\"\n[output]\ntype=\"stdout\"\nformat=\"gelf\"\n")}
			var stuck *memOutput
			if withBlocked {
				registerOneByOne()
				var id string
				stuck, id = newMemNamed(b.Name())
				stuck.block = make(chan struct{})
				paths = append(paths, writeFile(b, dir, "stuck.toml", fmt.Sprintf(
					"[input]\ntype=\"testonebyone\"\nformat=\"testline\"\nqueuesize=1000\n[output]\ntype=\"testmem\"\nid=%q\nformat=\"testmsg\"\n", id)))
			}
			in := linesFor(b.N)
			g, err := LoadGroup(paths, Options{Stdin: bytes.NewReader(in), Stdout: io.Discard, Log: quietLog()}, "")
			if err != nil {
				b.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error)
			b.ResetTimer()
			go func() { done <- g.Run(ctx) }()
			fast := g.Pipelines()[0]
			for fast.Stats().Sent.Load() < int64(b.N) {
				time.Sleep(time.Millisecond)
			}
			b.StopTimer()
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "records/s")
			if stuck != nil {
				close(stuck.block)
			}
			cancel()
			<-done
		})
	}
}

// BenchmarkScrape measures one /metrics scrape of a running pipeline: the
// whole cost of metrics beyond the per-batch atomics, which run either way.
// One op is one HTTP scrape, parsed by nothing.
func BenchmarkScrape(b *testing.B) {
	cfg := writeFile(b, b.TempDir(), "bench.toml", "[input]\ntype=\"stdin\"\nformat=\"rfc5424\"\n[output]\ntype=\"stdout\"\nformat=\"gelf\"\n[metrics]\nlisten = \"127.0.0.1:0\"\n")
	pr, pw := io.Pipe()
	g, err := LoadGroup([]string{cfg}, Options{Stdin: pr, Stdout: io.Discard, Log: quietLog()}, "")
	if err != nil {
		b.Fatal(err)
	}
	done := make(chan error)
	go func() { done <- g.Run(context.Background()) }()
	pw.Write(linesFor(10000))
	for g.MetricsAddr() == nil {
		time.Sleep(time.Millisecond)
	}
	url := "http://" + g.MetricsAddr().String() + "/metrics"
	client := &http.Client{}
	b.ResetTimer()
	for b.Loop() {
		resp, err := client.Get(url)
		if err != nil {
			b.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	b.StopTimer()
	pw.Close()
	<-done
}
