package output_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/flowgo/flowgo/pipeline"
	"github.com/twmb/franz-go/pkg/kfake"
)

// TestReadyzFollowsTheKafkaBroker runs a pipeline with a metrics listener
// and stops the test broker under it: /readyz must turn 503 naming the Kafka
// output, then 200 again once the broker is back on the same address.
func TestReadyzFollowsTheKafkaBroker(t *testing.T) {
	dir := t.TempDir()
	port := freePort(t)
	c := startCluster(t, kfake.Ports(port), kfake.DataDir(dir), kfake.SeedTopics(1, "ready"))
	addr := c.ListenAddrs()[0]
	cfg := filepath.Join(dir, "ready.toml")
	os.WriteFile(cfg, []byte(fmt.Sprintf(`
[input]
type = "stdin"
format = "kafkatestline"
[output]
type = "kafka"
format = "kafkatestmsg"
kafka_brokers = [%q]
kafka_topic = "ready"
kafka_timeout = 2000
[metrics]
listen = "127.0.0.1:0"
`, addr)), 0o644)
	pr, pw := io.Pipe()
	g, err := pipeline.LoadGroup([]string{cfg}, pipeline.Options{Stdin: pr, Log: slog.New(slog.NewTextHandler(io.Discard, nil))}, "")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- g.Run(context.Background()) }()
	stopFeed := make(chan struct{})
	fed := make(chan int)
	go func() {
		n := 0
		for {
			select {
			case <-stopFeed:
				pw.Close()
				fed <- n
				return
			case <-time.After(20 * time.Millisecond):
				fmt.Fprintf(pw, "host%d record %d\n", n%3, n)
				n++
			}
		}
	}()
	readyz := func() (int, string) {
		for g.MetricsAddr() == nil {
			time.Sleep(10 * time.Millisecond)
		}
		resp, err := http.Get("http://" + g.MetricsAddr().String() + "/readyz")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var body struct {
			Unhealthy []pipeline.ComponentHealth `json:"unhealthy"`
		}
		json.NewDecoder(resp.Body).Decode(&body)
		reason := ""
		if len(body.Unhealthy) > 0 {
			reason = body.Unhealthy[0].Component + ": " + body.Unhealthy[0].Reason
		}
		return resp.StatusCode, reason
	}
	wait := func(want int) string {
		deadline := time.Now().Add(30 * time.Second)
		for {
			code, reason := readyz()
			if code == want {
				return reason
			}
			if time.Now().After(deadline) {
				t.Fatalf("/readyz stayed %d (%s); want %d", code, reason, want)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	wait(200)
	sent := func() int64 { return g.Pipelines()[0].Stats().Sent.Load() }
	for sent() < 5 {
		time.Sleep(10 * time.Millisecond)
	}
	c.Close()
	reason := wait(503)
	before := sent()
	if len(reason) < len("output kafka") || reason[:len("output kafka")] != "output kafka" {
		t.Errorf("unhealthy component = %q; want the kafka output", reason)
	}
	time.Sleep(300 * time.Millisecond) // records pile up while the broker is away
	c2 := startCluster(t, kfake.Ports(port), kfake.DataDir(dir))
	wait(200)
	for sent() <= before {
		time.Sleep(10 * time.Millisecond)
	}
	close(stopFeed)
	n := <-fed
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	st := g.Pipelines()[0].Stats()
	if st.Sent.Load() != int64(n) || st.Lost.Load() != 0 {
		t.Errorf("fed %d records; sent %d, lost %d", n, st.Sent.Load(), st.Lost.Load())
	}
	_ = c2
}
