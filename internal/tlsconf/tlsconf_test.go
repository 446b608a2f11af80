package tlsconf

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"io/fs"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/flowgo/flowgo/config"
	"github.com/flowgo/flowgo/internal/testcerts"
)

func TestParseCiphers(t *testing.T) {
	tests := []struct {
		name, list string
		want       []uint16
		warn       string
	}{
		{"single OpenSSL names in order, semicolon separator", "ECDHE-RSA-AES256-GCM-SHA384;ECDHE-RSA-AES128-GCM-SHA256",
			[]uint16{tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384, tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256}, ""},
		{"flowgger's example expression with a trailing semicolon", "EECDH+AES128:RSA+AES128:EECDH+AES256:RSA+AES256:EECDH+3DES:RSA+3DES:!MD5;",
			[]uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
				tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA, tls.TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA,
				tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384, tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
				tls.TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA, tls.TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA}, ""},
		{"exclusion removes a suite", "HIGH:!ECDSA:!SHA1",
			[]uint16{tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256, tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384, tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256}, ""},
		{"unknown name warned about", "ECDHE-RSA-AES128-GCM-SHA256:BOGUS-CIPHER",
			[]uint16{tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256}, "BOGUS-CIPHER is unknown"},
		{"insecure suite not enabled", "DES-CBC3-SHA:ECDHE-RSA-CHACHA20-POLY1305",
			[]uint16{tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256}, "DES-CBC3-SHA is insecure"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, warns, err := ParseCiphers(tt.list)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("ParseCiphers(%q) = %v; want %v", tt.list, names(got), names(tt.want))
			}
			joined := strings.Join(warns, "; ")
			if (tt.warn == "") != (joined == "") || !strings.Contains(joined, tt.warn) {
				t.Errorf("warnings = %q; want %q", joined, tt.warn)
			}
		})
	}
	if _, _, err := ParseCiphers("RC4-SHA:!ALL"); err == nil {
		t.Error("a list selecting nothing must be an error")
	}
}

func names(ids []uint16) []string {
	var out []string
	for _, id := range ids {
		out = append(out, tls.CipherSuiteName(id))
	}
	return out
}

func TestMinVersion(t *testing.T) {
	for level, want := range map[string]uint16{"": tls.VersionTLS12, "intermediate": tls.VersionTLS12, "Default": tls.VersionTLS12, "modern": tls.VersionTLS13, "old": tls.VersionTLS10} {
		if got, err := MinVersion(level); err != nil || got != want {
			t.Errorf("MinVersion(%q) = %x, %v; want %x", level, got, err, want)
		}
	}
	if _, err := MinVersion("paranoid"); err == nil {
		t.Error("MinVersion(paranoid) = nil error")
	}
}

// handshake runs a real handshake over a loopback TCP connection.
func handshake(t *testing.T, server *tls.Config, client *tls.Config) (*tls.ConnectionState, error) {
	t.Helper()
	ln, err := tls.Listen("tcp", "127.0.0.1:0", server)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	srvErr := make(chan error, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			srvErr <- err
			return
		}
		defer c.Close()
		err = c.(*tls.Conn).Handshake()
		if err == nil {
			_, err = c.Write([]byte("x"))
		}
		srvErr <- err
	}()
	conn, err := tls.Dial("tcp", ln.Addr().String(), client)
	if err != nil {
		<-srvErr
		return nil, err
	}
	defer conn.Close()
	buf := make([]byte, 1)
	if _, err := conn.Read(buf); err != nil {
		<-srvErr
		return nil, err
	}
	st := conn.ConnectionState()
	return &st, <-srvErr
}

func TestMutualTLS(t *testing.T) {
	dir := t.TempDir()
	ca := testcerts.NewCA(t, "flowgo test CA")
	srv := ca.Server(t)
	cli := ca.Client(t, "client-1")
	other := testcerts.NewCA(t, "someone else").Client(t, "intruder")
	pemBoth := testcerts.WriteFile(t, dir, "flowgger.pem", srv.CertPEM, srv.KeyPEM)
	caFile := testcerts.WriteFile(t, dir, "ca.pem", ca.CertPEM)

	server, _, _, err := ServerConfig(Options{CertFile: pemBoth, CAFile: caFile, VerifyPeer: true}, nil)
	if err != nil {
		t.Fatal(err)
	}
	client := func(leaf *testcerts.Leaf) *tls.Config {
		o := Options{CAFile: caFile, VerifyPeer: true, ServerName: "localhost"}
		if leaf != nil {
			o.CertFile = testcerts.WriteFile(t, t.TempDir(), "c.pem", leaf.CertPEM)
			o.KeyFile = testcerts.WriteFile(t, t.TempDir(), "k.pem", leaf.KeyPEM)
		}
		r, _, err := ClientConfig(o, nil)
		if err != nil {
			t.Fatal(err)
		}
		return r.Config()
	}
	if _, err := handshake(t, server, client(&cli)); err != nil {
		t.Errorf("handshake with a valid client certificate failed: %v", err)
	}
	if _, err := handshake(t, server, client(nil)); err == nil {
		t.Error("handshake without a client certificate succeeded; tls_verify_peer must refuse it")
	}
	if _, err := handshake(t, server, client(&other)); err == nil {
		t.Error("handshake with a certificate from another CA succeeded")
	}
}

func TestClientVerifiesServerByDefaultSettings(t *testing.T) {
	dir := t.TempDir()
	ca := testcerts.NewCA(t, "right CA")
	srv := ca.Server(t, "logs.example.com")
	server, _, _, err := ServerConfig(Options{CertFile: testcerts.WriteFile(t, dir, "s.pem", srv.CertPEM, srv.KeyPEM)}, nil)
	if err != nil {
		t.Fatal(err)
	}
	wrongCA := testcerts.WriteFile(t, dir, "wrong.pem", testcerts.NewCA(t, "wrong CA").CertPEM)
	rightCA := testcerts.WriteFile(t, dir, "right.pem", ca.CertPEM)
	for _, tc := range []struct {
		name, ca, host string
		ok             bool
	}{{"right CA and name", rightCA, "logs.example.com", true}, {"wrong CA", wrongCA, "logs.example.com", false}, {"wrong host name", rightCA, "other.example.com", false}} {
		r, _, err := ClientConfig(Options{CAFile: tc.ca, VerifyPeer: true, ServerName: tc.host}, nil)
		if err != nil {
			t.Fatal(err)
		}
		_, err = handshake(t, server, r.Config())
		if (err == nil) != tc.ok {
			t.Errorf("%s: handshake error = %v; want ok=%v", tc.name, err, tc.ok)
		}
	}
}

func TestCertificateReloadsWhenFilesChange(t *testing.T) {
	dir := t.TempDir()
	ca := testcerts.NewCA(t, "CA")
	first := ca.Server(t, "first.example")
	certFile := testcerts.WriteFile(t, dir, "cert.pem", first.CertPEM)
	keyFile := testcerts.WriteFile(t, dir, "key.pem", first.KeyPEM)
	var reloadErrs []error
	server, r, _, err := ServerConfig(Options{CertFile: certFile, KeyFile: keyFile}, func(err error) { reloadErrs = append(reloadErrs, err) })
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	r.now = func() time.Time { return now }
	serverName := func() string {
		st, err := handshake(t, server, &tls.Config{InsecureSkipVerify: true})
		if err != nil {
			t.Fatal(err)
		}
		return st.PeerCertificates[0].Subject.CommonName
	}
	if n := serverName(); n != "first.example" {
		t.Fatalf("serving %q", n)
	}
	second := ca.Server(t, "second.example")
	os.WriteFile(keyFile, second.KeyPEM, 0o600)
	os.WriteFile(certFile, second.CertPEM, 0o600)
	future := time.Now().Add(time.Hour)
	os.Chtimes(certFile, future, future)
	now = now.Add(2 * checkEvery)
	if n := serverName(); n != "second.example" {
		t.Errorf("after rotating the files the server still presents %q", n)
	}
	// A broken file keeps the previous certificate and reports the error.
	os.WriteFile(certFile, []byte("garbage"), 0o600)
	now = now.Add(2 * checkEvery)
	if n := serverName(); n != "second.example" {
		t.Errorf("after a broken rotation the server presents %q; want the previous certificate", n)
	}
	if len(reloadErrs) != 1 {
		t.Errorf("reload errors = %v; want one", reloadErrs)
	}
}

// countingCache counts the session tickets a client is given.
type countingCache struct {
	tls.ClientSessionCache
	puts int
}

func (c *countingCache) Put(key string, cs *tls.ClientSessionState) {
	if cs != nil {
		c.puts++
	}
	c.ClientSessionCache.Put(key, cs)
}

// A server sends nothing after the handshake: no TLS 1.3 session ticket a
// client that writes and closes would leave unread (its close would then be
// a reset, and the server's kernel would discard the records).
func TestServerSendsNoSessionTickets(t *testing.T) {
	dir := t.TempDir()
	ca := testcerts.NewCA(t, "flowgo test CA")
	srv := ca.Server(t)
	server, _, _, err := ServerConfig(Options{CertFile: testcerts.WriteFile(t, dir, "s.pem", srv.CertPEM, srv.KeyPEM)}, nil)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca.Cert)
	ln, err := tls.Listen("tcp", "127.0.0.1:0", server)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			// Write a byte after the handshake, then wait for the client
			// to close: a ticket would come before the byte.
			c.Write([]byte("x"))
			io.Copy(io.Discard, c)
			c.Close()
		}
	}()
	for _, v := range []uint16{tls.VersionTLS13, tls.VersionTLS12} {
		cache := &countingCache{ClientSessionCache: tls.NewLRUClientSessionCache(4)}
		c, err := tls.Dial("tcp", ln.Addr().String(), &tls.Config{RootCAs: pool, ServerName: "localhost", MinVersion: v, MaxVersion: v, ClientSessionCache: cache})
		if err != nil {
			t.Fatalf("version %x: %v", v, err)
		}
		if _, err := io.ReadFull(c, make([]byte, 1)); err != nil {
			t.Fatalf("version %x: %v", v, err)
		}
		c.Close()
		if cache.puts != 0 {
			t.Errorf("version %x: the server sent %d session tickets; want none", v, cache.puts)
		}
	}
}

func TestCipherSuitesFollowMozillaIntermediate(t *testing.T) {
	profile := []uint16{
		tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
		tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384, tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
		tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256, tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
	}
	for _, level := range []string{"", "intermediate", "modern", "any", "default"} {
		got, warns, err := CipherSuites(level, "")
		if err != nil || len(warns) > 0 || !slices.Equal(got, profile) {
			t.Errorf("CipherSuites(%q, \"\") = %v, %q, %v; want Mozilla's intermediate suites %v", level, names(got), warns, err, names(profile))
		}
	}
	old, _, err := CipherSuites("old", "")
	if err != nil || !slices.Contains(old, tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA) || !slices.Contains(old, tls.TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA) {
		t.Errorf("CipherSuites(old) = %v, %v; want the CBC suites too", names(old), err)
	}
	// Flowgger's example list: the CBC suites its expressions select stay off.
	got, warns, err := CipherSuites("intermediate", "EECDH+AES128:RSA+AES128:EECDH+AES256:RSA+AES256:EECDH+3DES:RSA+3DES:!MD5;")
	want := []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
		tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384, tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384}
	if err != nil || !slices.Equal(got, want) {
		t.Errorf("Flowgger's list = %v, %v; want %v", names(got), err, names(want))
	}
	if len(warns) > 0 {
		t.Errorf("Flowgger's list: warnings %q; want none", warns)
	}
	// A suite named one by one is warned about.
	got, warns, err = CipherSuites("", "ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES128-SHA:ECDHE-RSA-AES256-SHA")
	if w := strings.Join(warns, "; "); err != nil || !slices.Equal(got, []uint16{tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256}) ||
		!strings.Contains(w, "ECDHE-ECDSA-AES128-SHA, ECDHE-RSA-AES256-SHA not enabled: not in Mozilla's intermediate profile") {
		t.Errorf("named CBC suites = %v, %q, %v", names(got), w, err)
	}
	if _, _, err := CipherSuites("intermediate", "ECDHE-ECDSA-AES128-SHA"); err == nil || !strings.Contains(err.Error(), `no cipher suite of tls_compatibility_level "intermediate"`) {
		t.Errorf("a list of CBC suites only = %v; want an error", err)
	}
	if got, _, err := CipherSuites("old", "ECDHE-ECDSA-AES128-SHA"); err != nil || !slices.Equal(got, []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA}) {
		t.Errorf("old with a CBC suite = %v, %v", names(got), err)
	}
}

// Every error about the settings names its key as a field, with the
// caller's prefix: callers never look for a key name in the text.
func TestErrorsCarryTheirKey(t *testing.T) {
	dir := t.TempDir()
	ca := testcerts.NewCA(t, "CA")
	srv := ca.Server(t)
	pem := testcerts.WriteFile(t, dir, "s.pem", srv.CertPEM, srv.KeyPEM)
	certOnly := testcerts.WriteFile(t, dir, "c.pem", srv.CertPEM)
	notPEM := testcerts.WriteFile(t, dir, "x.pem", []byte("not PEM"))
	missing := dir + "/missing.pem"
	tests := []struct {
		name   string
		server bool
		o      Options
		key    string
	}{
		{"no certificate", true, Options{}, "tls_cert"},
		{"verify_peer without a CA", true, Options{CertFile: pem, VerifyPeer: true}, "tls_verify_peer"},
		{"a key without its certificate", false, Options{KeyFile: pem}, "tls_key"},
		{"an unknown level", false, Options{Level: "ancient"}, "tls_compatibility_level"},
		{"no usable cipher", false, Options{Ciphers: "RC4-MD5"}, "tls_ciphers"},
		{"a missing certificate", false, Options{CertFile: missing}, "tls_cert"},
		{"a missing key", false, Options{CertFile: certOnly, KeyFile: missing}, "tls_key"},
		{"a certificate without its key", false, Options{CertFile: certOnly}, "tls_cert"},
		{"a missing CA file", false, Options{CAFile: missing}, "tls_ca_file"},
		{"a CA file without PEM", false, Options{CAFile: notPEM}, "tls_ca_file"},
		{"a prefix", false, Options{CAFile: notPEM, KeyPrefix: "kafka_"}, "kafka_tls_ca_file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var err error
			if tt.server {
				_, _, _, err = ServerConfig(tt.o, nil)
			} else {
				_, _, err = ClientConfig(tt.o, nil)
			}
			var ke *config.KeyError
			if !errors.As(err, &ke) || ke.Key != tt.key {
				t.Fatalf("error %v (%T); want a *config.KeyError about %s", err, err, tt.key)
			}
			if tt.name == "a missing CA file" && !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("%v does not unwrap to fs.ErrNotExist", err)
			}
		})
	}
}
