//go:build linux

package output_test

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/flowgo/flowgo"
	"github.com/flowgo/flowgo/internal/syncbuf"
)

// opensslServer runs openssl s_server with args on a free port and returns
// its address and what it prints (with -quiet: the bytes it received).
// openssl is required: test.sh installs it; a machine without it fails.
func opensslServer(t *testing.T, p *pki, args ...string) (string, *syncbuf.Buffer, *syncbuf.Buffer) {
	t.Helper()
	bin, err := exec.LookPath("openssl")
	if err != nil {
		t.Fatal("openssl is not installed: install the Debian package openssl (apt-get install openssl); this test needs a TLS server that is not Go's")
	}
	cert := writeFile(t, p.dir, "server.pem", p.server.CertPEM)
	key := writeFile(t, p.dir, "server.key", p.server.KeyPEM)
	addr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	cmd := exec.Command(bin, append([]string{"s_server", "-accept", addr, "-cert", cert, "-key", key, "-quiet"}, args...)...)
	// s_server stops at the end of its standard input: keep it open.
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdin = pr
	out, errOut := &syncbuf.Buffer{}, &syncbuf.Buffer{}
	cmd.Stdout, cmd.Stderr = out, errOut
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pr.Close()
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		pw.Close()
	})
	// A plain connection shows it listens (s_server logs the failed
	// handshake and goes on).
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("openssl s_server does not listen: %v\n%s", err, errOut.String())
		}
	}
	return addr, out, errOut
}

func TestTLSInteroperatesWithOpenSSL(t *testing.T) {
	p := newPKI(t)
	for _, tt := range []struct {
		name, keys string
		server     []string
		wantErr    string
	}{
		{"TLS 1.3 with the defaults", "", nil, ""},
		{"TLS 1.2 with the cipher tls_ciphers names", "tls_ciphers = \"ECDHE-ECDSA-CHACHA20-POLY1305\"\n",
			[]string{"-tls1_2", "-cipher", "ECDHE-ECDSA-CHACHA20-POLY1305"}, ""},
		{"no cipher in common is refused", "tls_ciphers = \"ECDHE-ECDSA-AES128-GCM-SHA256\"\n",
			[]string{"-tls1_2", "-cipher", "ECDHE-ECDSA-AES256-GCM-SHA384"}, "handshake failure"},
		{"modern refuses a TLS 1.2 server", "tls_compatibility_level = \"modern\"\n",
			[]string{"-tls1_2"}, "protocol version"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			addr, out, errOut := opensslServer(t, p, tt.server...)
			o := newTLS(t, fmt.Sprintf("connect = [%q]\ntls_ca_file = %q\ntls_recovery_delay_max = 50\n%s", addr, p.caFile, tt.keys))
			if tt.wantErr != "" {
				ctx, cancel := context.WithTimeout(context.Background(), time.Second)
				defer cancel()
				b := gelfBatch(1)
				if err := o.Write(ctx, b); err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Errorf("Write error = %v; want %q", err, tt.wantErr)
				}
				return
			}
			want := gelfBatch(2000)
			for i := 0; i < 2000; i += 100 {
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				err := o.Write(ctx, frameRange(want, i, i+100))
				cancel()
				if err != nil {
					t.Fatal(err)
				}
			}
			closeOutput(t, o)
			waitFor(t, func() bool { return out.String() == string(want.Data) },
				"openssl to print every frame, in order")
			if strings.Contains(errOut.String(), "alert") {
				t.Errorf("openssl reported an alert:\n%s", errOut.String())
			}
		})
	}
}

// frameRange returns frames i..j-1 of b as a batch of their own.
func frameRange(b *flowgo.Batch, i, j int) *flowgo.Batch {
	start := 0
	if i > 0 {
		start = b.Ends[i-1]
	}
	sub := &flowgo.Batch{Data: b.Data[start:b.Ends[j-1]]}
	for _, e := range b.Ends[i:j] {
		sub.Ends = append(sub.Ends, e-start)
	}
	return sub
}
