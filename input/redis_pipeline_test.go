package input_test

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/flowgo/flowgo/config"
	"github.com/flowgo/flowgo/internal/redistest"
	"github.com/flowgo/flowgo/pipeline"
)

// The redis input in a real pipeline: a Redis that is down at start does
// not stop the pipeline (Flowgger panics); /readyz says the input is not
// ready, and why, until Redis answers; then records flow.
func TestPipelineRedisNotReadyWhileRedisIsDown(t *testing.T) {
	srv := redistest.Start(t)
	srv.Kill()
	f, err := config.Parse("flowgo.toml", fmt.Sprintf(`
[input]
type = "redis"
redis_connect = %q
redis_queue_key = "app"
redis_threads = 2
format = "tcptest"

[output]
type = "stdout"
format = "tcptest"
`, srv.Addr))
	if err != nil {
		t.Fatal(err)
	}
	out := &lockedBuffer{}
	logs := &lockedBuffer{}
	p, err := pipeline.Build(f, pipeline.Options{Stdout: out, Log: slog.New(slog.NewTextHandler(logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Check(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	defer func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run = %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Error("the pipeline did not stop")
		}
	}()

	inputHealth := func() pipeline.ComponentHealth {
		for _, ch := range p.Ready() {
			if strings.HasPrefix(ch.Component, "input redis") {
				return ch
			}
		}
		t.Fatalf("no input in %+v", p.Ready())
		return pipeline.ComponentHealth{}
	}
	waitUntil := func(what string, cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for !cond() {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s; logs:\n%s", what, logs)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	waitUntil("a failed connection", func() bool { return strings.Contains(logs.String(), "redis: command failed, retrying") })
	ch := inputHealth()
	if ch.Healthy || !strings.Contains(ch.Reason, "redis "+srv.Addr) || !strings.Contains(ch.Reason, "app.tmp.1") {
		t.Errorf("readiness while Redis is down = %+v; want unhealthy, naming the address and the worker", ch)
	}
	for _, ch := range p.Live(time.Minute, time.Now()) {
		if !ch.Healthy {
			t.Errorf("liveness %+v: a Redis outage is not a reason to restart flowgo", ch)
		}
	}
	select {
	case err := <-done:
		t.Fatalf("the pipeline stopped: %v", err)
	default:
	}

	srv.Restart()
	redisPushFromOutside(t, srv, "app", 50)
	waitUntil("ready", func() bool { return inputHealth().Healthy })
	waitUntil("50 records", func() bool { return strings.Count(out.String(), "\n") >= 50 })
	if !strings.Contains(out.String(), "item 0000\n") || !strings.Contains(out.String(), "item 0049\n") {
		t.Errorf("output:\n%s", out)
	}
}

func redisPushFromOutside(t *testing.T, srv *redistest.Server, key string, n int) {
	t.Helper()
	c := srv.Client("", "")
	for i := range n {
		if err := c.LPush(context.Background(), key, fmt.Sprintf("item %04d", i)).Err(); err != nil {
			t.Fatal(err)
		}
	}
}
