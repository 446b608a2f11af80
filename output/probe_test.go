package output_test

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/flowgo/flowgo/internal/testcerts"
	"github.com/flowgo/flowgo/pipeline"
)

// readiness runs the [output] table out in a pipeline with a stdin input
// that sends nothing and a metrics listener, and returns a function that
// reads /readyz (status and the output's reason) and the
// flowgo_output_ready gauge.
func readiness(t *testing.T, out string) func() (code int, reason string, gauge string) {
	t.Helper()
	cfg := filepath.Join(t.TempDir(), "ready.toml")
	if err := os.WriteFile(cfg, []byte("[input]\ntype = \"stdin\"\nformat = \"kafkatestline\"\n"+out+"[metrics]\nlisten = \"127.0.0.1:0\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	pr, pw := io.Pipe()
	g, err := pipeline.LoadGroup([]string{cfg}, pipeline.Options{Stdin: pr, Log: slog.New(slog.NewTextHandler(io.Discard, nil))}, "")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	ctx, cancel := context.WithCancel(context.Background())
	go func() { done <- g.Run(ctx) }()
	t.Cleanup(func() {
		pw.Close()
		cancel()
		<-done
	})
	for deadline := time.Now().Add(30 * time.Second); g.MetricsAddr() == nil; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("no metrics listener")
		}
	}
	base := "http://" + g.MetricsAddr().String()
	return func() (int, string, string) {
		resp, err := http.Get(base + "/readyz")
		if err != nil {
			t.Fatal(err)
		}
		code := resp.StatusCode
		var body struct {
			Unhealthy []pipeline.ComponentHealth `json:"unhealthy"`
		}
		json.NewDecoder(resp.Body).Decode(&body)
		resp.Body.Close()
		reason := ""
		for _, u := range body.Unhealthy {
			reason += u.Component + ": " + u.Reason
		}
		resp, err = http.Get(base + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		gauge := "absent"
		for _, l := range strings.Split(string(b), "\n") {
			if strings.HasPrefix(l, "flowgo_output_ready{") {
				gauge = l[strings.LastIndexByte(l, ' ')+1:]
			}
		}
		return code, reason, gauge
	}
}

// certBox holds the certificate a test server presents; the test changes it.
type certBox struct {
	mu   sync.Mutex
	cert tls.Certificate
}

func (b *certBox) set(c tls.Certificate) { b.mu.Lock(); b.cert = c; b.mu.Unlock() }
func (b *certBox) get() tls.Certificate  { b.mu.Lock(); defer b.mu.Unlock(); return b.cert }

// waitReady polls until /readyz answers want with a reason containing
// each of why, and returns the reason and gauge seen then.
func waitReady(t *testing.T, get func() (int, string, string), want int, why ...string) (string, string) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		code, reason, gauge := get()
		if code == want && containsAll(reason, why) {
			return reason, gauge
		}
		if time.Now().After(deadline) {
			t.Fatalf("/readyz stayed %d (%s); want %d and %q", code, reason, want, why)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func containsAll(s string, subs []string) bool {
	for _, sub := range subs {
		if !strings.Contains(s, sub) {
			return false
		}
	}
	return true
}

func TestReadyzWaitsForAKafkaMetadataRoundTrip(t *testing.T) {
	port := freePort(t)
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	get := readiness(t, fmt.Sprintf("[output]\ntype = \"kafka\"\nformat = \"kafkatestmsg\"\nkafka_brokers = [%q]\nkafka_topic = \"logs\"\n", addr))
	// Nothing listens on the broker's address: not ready, and why.
	if code, reason, _ := get(); code != 503 {
		t.Errorf("/readyz at start = %d (%s); want 503 until a probe succeeds", code, reason)
	}
	_, gauge := waitReady(t, get, 503, "output kafka:logs: not proven yet that it can deliver", "connection refused")
	if gauge != "0" {
		t.Errorf("flowgo_output_ready = %s; want 0", gauge)
	}
	// A cluster without the topic, which does not create topics: still not ready.
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.Ports(port))
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		_, reason, _ := get()
		if strings.Contains(reason, "metadata") {
			if !strings.Contains(reason, "Unknown Topic") {
				t.Errorf("/readyz reason %q; want the unknown topic", reason)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("/readyz never reported the metadata answer: %s", reason)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if code, _, _ := get(); code != 503 {
		t.Errorf("/readyz = %d with the topic missing; want 503", code)
	}
	c.Close()
	// The topic exists: ready, without a record written.
	startCluster(t, kfake.Ports(port), kfake.SeedTopics(2, "logs"))
	if _, gauge := waitReady(t, get, 200); gauge != "1" {
		t.Errorf("flowgo_output_ready = %s; want 1", gauge)
	}
}

func TestReadyzWaitsForATLSHandshake(t *testing.T) {
	dir := t.TempDir()
	ca := testcerts.NewCA(t, "probe CA")
	caFile := testcerts.WriteFile(t, dir, "ca.pem", ca.CertPEM)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	// First a server with a certificate of another CA.
	var cert certBox
	cert.set(serverCert(t, testcerts.NewCA(t, "other CA").Server(t)))
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				tc := tlsServer(c, cert.get())
				tc.Handshake()
				io.Copy(io.Discard, tc)
				tc.Close()
			}()
		}
	}()
	get := readiness(t, fmt.Sprintf("[output]\ntype = \"tls\"\nformat = \"kafkatestmsg\"\nconnect = [%q]\ntls_ca_file = %q\n", ln.Addr(), caFile))
	waitReady(t, get, 503, "TLS handshake with "+ln.Addr().String(), "certificate signed by unknown authority")
	cert.set(serverCert(t, ca.Server(t)))
	waitReady(t, get, 200)
}

func TestReadyzWaitsForAWritableFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "out.log")
	if err := os.Mkdir(path, 0o755); err != nil { // a directory where the file should be
		t.Fatal(err)
	}
	get := readiness(t, fmt.Sprintf("[output]\ntype = \"file\"\nformat = \"kafkatestmsg\"\nfile_path = %q\n", path))
	waitReady(t, get, 503, "out.log: is a directory")
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	waitReady(t, get, 200)
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Errorf("the probe created %s (%v); it must not touch the output's file", path, err)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Errorf("the probe left %v in the directory", ents)
	}
}
