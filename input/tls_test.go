package input

import (
	"crypto/tls"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/flowgo/flowgo"
	"github.com/flowgo/flowgo/config"
	"github.com/flowgo/flowgo/internal/testcerts"
)

func TestTLSDeliversEveryFraming(t *testing.T) { testFramings(t, "tls") }

func TestTLSBackpressureStopsReadingAndKeepsMemoryBounded(t *testing.T) {
	testBackpressure(t, func(sink *streamSink) *testServer { return startTLS(t, false, "", streamOptions{sink: sink}) })
}

func TestTLSIdleConnectionIsClosedAfterTimeout(t *testing.T) {
	testIdleTimeout(t, startTLS(t, false, "timeout = 1", streamOptions{}))
}

func TestTLSMutualTLS(t *testing.T) {
	other := testcerts.NewCA(t, "some other CA").Client(t, "intruder")
	otherCert, err := tls.X509KeyPair(other.CertPEM, other.KeyPEM)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name      string
		cert      func(c *certs) []tls.Certificate
		delivered bool
		reason    string
	}{
		{"a client certificate signed by tls_ca_file is accepted",
			func(c *certs) []tls.Certificate { return []tls.Certificate{c.clientCert} }, true, ""},
		{"a client without a certificate is refused",
			func(*certs) []tls.Certificate { return nil }, false, "client didn't provide a certificate"},
		{"a client certificate from another CA is refused",
			func(*certs) []tls.Certificate { return []tls.Certificate{otherCert} }, false, "certificate signed by unknown authority"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := startTLS(t, true, "peer_field = \"peer\"", streamOptions{})
			cfg := s.certs.clientConfig(false)
			// Go's client leaves out a certificate whose issuer the server
			// did not name; send it anyway, as a misconfigured client would.
			cfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
				if cs := tc.cert(s.certs); len(cs) > 0 {
					return &cs[0], nil
				}
				return &tls.Certificate{}, nil
			}
			c, err := tls.Dial("tcp", s.addr, cfg)
			if err != nil {
				// TLS 1.3 clients learn of the refusal after the handshake,
				// so reaching here is not required, only allowed.
				t.Fatalf("dial: %v", err)
			}
			defer c.Close()
			c.Write([]byte("hello over mutual TLS\n"))
			if !tc.delivered {
				if err := readsEOF(c, 5*time.Second); err != nil {
					t.Fatal(err)
				}
				if !waitFor(5*time.Second, func() bool { return strings.Contains(s.logs.String(), "TLS handshake failed") }) {
					t.Fatalf("no log line about the failed handshake:\n%s", s.logs)
				}
				logs := s.logs.String()
				if !strings.Contains(logs, "peer="+c.LocalAddr().String()) || !strings.Contains(logs, tc.reason) {
					t.Errorf("the log does not name the peer %s and the reason %q:\n%s", c.LocalAddr(), tc.reason, logs)
				}
				time.Sleep(50 * time.Millisecond)
				if n := s.sink.records.Load(); n != 0 {
					t.Errorf("%d records delivered from a refused client", n)
				}
				return
			}
			s.sink.waitRecords(t, 1, 5*time.Second)
			if got := s.sink.got(); !slices.Equal(got, []string{"hello over mutual TLS"}) {
				t.Errorf("records = %q", got)
			}
			if p := s.sink.peers[0]; p != c.LocalAddr().String() {
				t.Errorf("peer = %q; want %q", p, c.LocalAddr())
			}
		})
	}
}

func TestTLSFailedHandshakeCostsNothingElse(t *testing.T) {
	s := startTLS(t, false, `tls_handshake_timeout = "300ms"`, streamOptions{})

	// Plain syslog sent to the TLS port.
	plain, err := net.Dial("tcp", s.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer plain.Close()
	plain.Write([]byte("<13>1 - - - - - - not TLS\n"))
	if err := readsEOF(plain, 5*time.Second); err != nil {
		t.Fatalf("plain-text client: %v", err)
	}
	// A client that connects and says nothing is dropped after the
	// handshake timeout.
	silent, err := net.Dial("tcp", s.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	began := time.Now()
	if err := readsEOF(silent, 5*time.Second); err != nil {
		t.Fatalf("silent client: %v", err)
	}
	if d := time.Since(began); d < 250*time.Millisecond || d > 3*time.Second {
		t.Errorf("silent client dropped after %v; want about 300ms", d)
	}
	if !waitFor(2*time.Second, func() bool { return s.openConns() == 0 }) {
		t.Fatalf("%d connections still open", s.openConns())
	}
	logs := s.logs.String()
	for _, c := range []net.Conn{plain, silent} {
		if !strings.Contains(logs, `msg="TLS handshake failed" peer=`+c.LocalAddr().String()) {
			t.Errorf("no handshake failure logged for %s:\n%s", c.LocalAddr(), logs)
		}
	}
	if !strings.Contains(logs, "timeout") {
		t.Errorf("the silent client's failure does not say timeout:\n%s", logs)
	}
	// And the next client is served.
	c := s.dial(t)
	c.Write([]byte("after the failures\n"))
	s.sink.waitRecords(t, 1, 5*time.Second)
	if n := s.sink.records.Load(); n != 1 {
		t.Errorf("%d records; want 1", n)
	}
}

// serverCN connects and returns the common name of the server's certificate.
func serverCN(t *testing.T, s *testServer, ca *testcerts.CA) string {
	t.Helper()
	cfg := s.certs.clientConfig(true)
	cfg.RootCAs.AddCert(ca.Cert)
	c, err := tls.Dial("tcp", s.addr, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	return c.ConnectionState().PeerCertificates[0].Subject.CommonName
}

func TestTLSCertificateReload(t *testing.T) {
	s := startTLS(t, false, "", streamOptions{})
	if cn := serverCN(t, s, s.certs.ca); cn != "localhost" {
		t.Fatalf("server certificate CN = %q; want localhost", cn)
	}
	// A rotated certificate, same CA, another name first.
	rotate := func(name string) {
		leaf := s.certs.ca.Server(t, name, "localhost", "127.0.0.1")
		testcerts.WriteFile(t, s.certs.dir, "server.pem", leaf.CertPEM, leaf.KeyPEM)
	}
	rotate("rotated-by-sighup")
	if err := s.in.(Reloader).Reload(); err != nil {
		t.Fatal(err)
	}
	if cn := serverCN(t, s, s.certs.ca); cn != "rotated-by-sighup" {
		t.Errorf("after Reload, CN = %q; want rotated-by-sighup", cn)
	}
	if !strings.Contains(s.logs.String(), "TLS certificates reloaded") {
		t.Errorf("no log line about the reload:\n%s", s.logs)
	}

	// A broken file keeps the previous certificate.
	os.WriteFile(s.certs.serverPEM, []byte("not PEM"), 0o600)
	if err := s.in.(Reloader).Reload(); err == nil || !strings.Contains(err.Error(), "tls input") {
		t.Errorf("Reload with a broken file = %v; want an error", err)
	}
	if cn := serverCN(t, s, s.certs.ca); cn != "rotated-by-sighup" {
		t.Errorf("after a failed Reload, CN = %q; want the previous certificate", cn)
	}

	// Files that change are picked up without Reload (checked at most once
	// a second, at a handshake).
	time.Sleep(1100 * time.Millisecond)
	rotate("rotated-on-disk")
	if !waitFor(3*time.Second, func() bool { return serverCN(t, s, s.certs.ca) == "rotated-on-disk" }) {
		t.Errorf("the certificate changed on disk was not picked up")
	}
}

func TestTLSKeyErrorsNameTheKey(t *testing.T) {
	c := newCerts(t)
	missing := filepath.Join(c.dir, "missing.pem")
	for _, tc := range []struct{ name, keys, want string }{
		{"the default flowgger.pem missing", ``, "input.tls_cert: stat flowgger.pem"},
		{"a missing certificate", fmt.Sprintf("tls_cert = %q", missing), "input.tls_cert: stat " + missing},
		{"a missing key", fmt.Sprintf("tls_cert = %q\ntls_key = %q", c.serverPEM, missing), "input.tls_key: stat"},
		{"a key that is not a key", fmt.Sprintf("tls_cert = %q\ntls_key = %q", c.serverPEM, c.caFile), "input.tls_cert:"},
		{"a missing CA file", fmt.Sprintf("tls_cert = %q\ntls_ca_file = %q", c.serverPEM, missing), "input.tls_ca_file: stat"},
		{"verify_peer without a CA file", fmt.Sprintf("tls_cert = %q\ntls_verify_peer = true", c.serverPEM), "input.tls_verify_peer"},
		{"an unknown compatibility level", fmt.Sprintf("tls_cert = %q\ntls_compatibility_level = \"ancient\"", c.serverPEM), "input.tls_compatibility_level: \"ancient\" unknown"},
		{"no usable cipher", fmt.Sprintf("tls_cert = %q\ntls_ciphers = \"RC4-MD5\"", c.serverPEM), "input.tls_ciphers: no cipher suite"},
		{"a zero handshake timeout", fmt.Sprintf("tls_cert = %q\ntls_handshake_timeout = \"0s\"", c.serverPEM), "input.tls_handshake_timeout"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := buildStream("tls", tc.keys, streamOptions{})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error = %v; want it to contain %q", err, tc.want)
			}
		})
	}
}

func TestTLSUnknownCiphersAreWarnedAbout(t *testing.T) {
	c := newCerts(t)
	f, err := config.Parse("test.toml", fmt.Sprintf("[input]\ntype = \"tls\"\ntls_cert = %q\ntls_ciphers = \"ECDHE-RSA-AES128-GCM-SHA256:NO-SUCH-CIPHER:!MD5;\"\n", c.serverPEM))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := (Type{Parse: parseTLS}).New(Config{Section: f.Inputs[0], Framing: flowgo.FramingLine, Decoder: verbatim{}}); err != nil {
		t.Fatal(err)
	}
	w := f.Warnings()
	if len(w) != 1 || !strings.Contains(w[0], "input.tls_ciphers") || !strings.Contains(w[0], "NO-SUCH-CIPHER") {
		t.Errorf("warnings = %q; want one about NO-SUCH-CIPHER", w)
	}
}

func TestTLSKeyDefaultsToTheCertificateFile(t *testing.T) {
	// One PEM holding chain and key, as Flowgger's flowgger.pem, in the
	// working directory where the default names it.
	c := newCerts(t)
	pem, err := os.ReadFile(c.serverPEM)
	if err != nil {
		t.Fatal(err)
	}
	t.Chdir(t.TempDir())
	if err := os.WriteFile("flowgger.pem", pem, 0o600); err != nil {
		t.Fatal(err)
	}
	s := startStream(t, "tls", `listen = "127.0.0.1:0"`, streamOptions{})
	s.certs = c
	if cn := serverCN(t, s, c.ca); cn != "localhost" {
		t.Errorf("CN = %q; want localhost", cn)
	}
}
