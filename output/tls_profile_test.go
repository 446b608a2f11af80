//go:build linux

package output_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"
)

// TestTLSOutputOffersMozillaIntermediateSuites connects the tls output to
// OpenSSL servers that accept a single TLS 1.2 suite: with the default
// tls_compatibility_level (intermediate) the output must refuse the CBC
// suites with SHA-1 that Mozilla's intermediate profile leaves out, and
// deliver over the profile's AES-GCM and ChaCha20-Poly1305 suites; "old"
// still reaches a CBC-only server.
func TestTLSOutputOffersMozillaIntermediateSuites(t *testing.T) {
	p := newPKI(t)
	for _, tt := range []struct {
		cipher, keys string
		ok           bool
	}{
		{"ECDHE-ECDSA-AES128-SHA", "", false},
		{"ECDHE-ECDSA-AES256-SHA", "", false},
		// Flowgger's example list selects CBC suites too: they stay off.
		{"ECDHE-ECDSA-AES128-SHA", "tls_ciphers = \"EECDH+AES128:RSA+AES128:EECDH+AES256:RSA+AES256:EECDH+3DES:RSA+3DES:!MD5;\"\n", false},
		{"ECDHE-ECDSA-AES128-GCM-SHA256", "", true},
		{"ECDHE-ECDSA-AES256-GCM-SHA384", "", true},
		{"ECDHE-ECDSA-CHACHA20-POLY1305", "", true},
		{"ECDHE-ECDSA-AES128-SHA", "tls_compatibility_level = \"old\"\n", true},
	} {
		t.Run(tt.cipher+" "+strings.TrimSpace(tt.keys), func(t *testing.T) {
			addr, out, errOut := opensslServer(t, p, "-tls1_2", "-cipher", tt.cipher)
			o := newTLS(t, fmt.Sprintf("connect = [%q]\ntls_ca_file = %q\ntls_recovery_delay_max = 50\n%s", addr, p.caFile, tt.keys))
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			b := gelfBatch(3)
			err := o.Write(ctx, b)
			if !tt.ok {
				if err == nil || !strings.Contains(err.Error(), "handshake failure") {
					t.Errorf("Write error = %v; want a handshake failure (no suite in common)\nopenssl: %s", err, errOut.String())
				}
				return
			}
			if err != nil {
				t.Fatalf("Write: %v\nopenssl: %s", err, errOut.String())
			}
			closeOutput(t, o)
			waitFor(t, func() bool { return out.String() == string(b.Data) }, "openssl to print every frame")
		})
	}
}
