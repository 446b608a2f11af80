package main

import (
	"bytes"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/flowgo/flowgo/internal/testcerts"
)

// sClient runs openssl s_client against addr with args and reports whether
// the handshake agreed on cipher.
func sClient(t *testing.T, addr, cipher string, args ...string) (bool, string) {
	t.Helper()
	bin, err := exec.LookPath("openssl")
	if err != nil {
		t.Fatal("openssl is not installed: .ci/tools installs it (Debian package openssl)")
	}
	cmd := exec.Command(bin, append([]string{"s_client", "-connect", addr, "-servername", "localhost"}, args...)...)
	cmd.Stdin = strings.NewReader("")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err = cmd.Run()
	return err == nil && strings.Contains(out.String(), "Cipher is "+cipher), out.String()
}

// TestTLSInputMatchesMozillaIntermediate drives OpenSSL's s_client against
// the tls input of the built binary: with tls_compatibility_level
// "intermediate" (the default) TLS 1.2 CBC suites with SHA-1 are refused
// and the profile's AES-GCM and ChaCha20-Poly1305 suites accepted, as is
// TLS 1.3; "old" still accepts CBC, for devices that need it.
func TestTLSInputMatchesMozillaIntermediate(t *testing.T) {
	dir := t.TempDir()
	ca := testcerts.NewCA(t, "flowgo profile CA")
	srv := ca.Server(t)
	cert := testcerts.WriteFile(t, dir, "server.pem", srv.CertPEM)
	key := testcerts.WriteFile(t, dir, "server.key", srv.KeyPEM)
	for _, level := range []string{"", "intermediate", "old"} {
		t.Run("level "+level, func(t *testing.T) {
			keys := ""
			if level != "" {
				keys = fmt.Sprintf("tls_compatibility_level = %q\n", level)
			}
			d := startDaemon(t, t.TempDir(), fmt.Sprintf(`[input]
type = "tls"
listen = "127.0.0.1:0"
tls_cert = %q
tls_key = %q
%s[output]
type = "file"
file_path = %q
`, cert, key, keys, filepath.Join(t.TempDir(), "out.log")))
			addr := d.addr("tls")
			for _, tt := range []struct {
				cipher string
				args   []string
				ok     bool
			}{
				{"ECDHE-ECDSA-AES128-SHA", []string{"-tls1_2", "-cipher", "ECDHE-ECDSA-AES128-SHA"}, level == "old"},
				{"ECDHE-ECDSA-AES256-SHA", []string{"-tls1_2", "-cipher", "ECDHE-ECDSA-AES256-SHA"}, level == "old"},
				{"ECDHE-ECDSA-AES128-SHA256", []string{"-tls1_2", "-cipher", "ECDHE-ECDSA-AES128-SHA256"}, false},
				{"AES256-SHA", []string{"-tls1_2", "-cipher", "AES256-SHA"}, false},
				{"ECDHE-ECDSA-AES128-GCM-SHA256", []string{"-tls1_2", "-cipher", "ECDHE-ECDSA-AES128-GCM-SHA256"}, true},
				{"ECDHE-ECDSA-AES256-GCM-SHA384", []string{"-tls1_2", "-cipher", "ECDHE-ECDSA-AES256-GCM-SHA384"}, true},
				{"ECDHE-ECDSA-CHACHA20-POLY1305", []string{"-tls1_2", "-cipher", "ECDHE-ECDSA-CHACHA20-POLY1305"}, true},
				{"TLS_AES_128_GCM_SHA256", []string{"-tls1_3", "-ciphersuites", "TLS_AES_128_GCM_SHA256"}, true},
				{"TLS_CHACHA20_POLY1305_SHA256", []string{"-tls1_3", "-ciphersuites", "TLS_CHACHA20_POLY1305_SHA256"}, true},
			} {
				got, out := sClient(t, addr, tt.cipher, tt.args...)
				if got != tt.ok {
					t.Errorf("%s: handshake succeeded = %v; want %v\nopenssl:\n%s", tt.cipher, got, tt.ok, out)
				}
			}
			d.stop()
		})
	}
}
