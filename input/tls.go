package input

import (
	"crypto/tls"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/flowgo/flowgo/config"
	"github.com/flowgo/flowgo/internal/tlsconf"
)

func init() {
	// tls_co and its spellings were Flowgger's coroutine variant; with one
	// goroutine per connection they are the same input.
	Register("tls", Type{Parse: parseTLS, Stream: true},
		"syslog-tls", "tls_co", "syslog-tls_co", "tlsco", "syslog-tlsco")
}

// Defaults of the tls input's own keys.
const (
	DefaultTLSCert             = "flowgger.pem" // Flowgger's; holds the chain and the key
	DefaultTLSHandshakeTimeout = 10 * time.Second
)

// TLS is the tls input: the tcp input behind TLS, mutual TLS when
// tls_verify_peer is set.
//
// Besides the tcp input's keys (listen defaults to "0.0.0.0:6514"):
// tls_cert (default "flowgger.pem", a PEM chain that may hold the key too),
// tls_key (default: the tls_cert file), tls_ca_file (the CAs that sign
// client certificates), tls_verify_peer (require and verify a client
// certificate, default false), tls_compatibility_level (intermediate = TLS
// 1.2+, modern = TLS 1.3, old = TLS 1.0+), tls_ciphers (an OpenSSL cipher
// list; default Go's suites) and tls_handshake_timeout (default "10s").
//
// Certificates, key and CAs are re-read when their files change (checked at
// most once a second, at a handshake) and on Reload (SIGHUP); connections
// already open keep the certificate they started with.
type TLS struct {
	*streamServer
	certs *tlsconf.Reloader
}

// tlsKeys are the tls input's own keys.
type tlsKeys struct {
	Cert             string        `toml:"tls_cert"`
	Key              string        `toml:"tls_key"`
	CAFile           string        `toml:"tls_ca_file"`
	VerifyPeer       bool          `toml:"tls_verify_peer"`
	Level            string        `toml:"tls_compatibility_level"`
	Ciphers          string        `toml:"tls_ciphers"`
	HandshakeTimeout time.Duration `toml:"tls_handshake_timeout"`
}

// tlsBuilder is a parsed tls input.
type tlsBuilder struct {
	tcpBuilder
	t streamTLS
}

func parseTLS(c Config) (Builder, error) {
	k, err := decodeStreamKeys(c, DefaultTLSListen)
	if err != nil {
		return nil, err
	}
	t, err := parseStreamTLS(c.Section, c.Log)
	if err != nil {
		return nil, err
	}
	return &tlsBuilder{tcpBuilder{c: c, k: k}, t}, nil
}

// Build implements Builder.
func (b *tlsBuilder) Build() (Input, error) {
	srv := newStreamServer(b.c, b.k, "tls")
	b.t.apply(srv)
	return &TLS{streamServer: srv, certs: b.t.certs}, nil
}

// streamTLS is how a stream server serves TLS: the tls input, and the relp
// input with relp_tls = true.
type streamTLS struct {
	cfg       *tls.Config
	certs     *tlsconf.Reloader
	handshake time.Duration
}

func (t streamTLS) apply(srv *streamServer) {
	srv.tls = t.cfg
	srv.handshake = t.handshake
}

// parseStreamTLS reads the tls_* keys of s (nil: the defaults) and loads
// the certificates they name, which checks them; it opens nothing that
// stays open.
func parseStreamTLS(s *config.Section, log *slog.Logger) (streamTLS, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	t := tlsKeys{Cert: DefaultTLSCert, Level: "intermediate", HandshakeTimeout: DefaultTLSHandshakeTimeout}
	errorf := func(key, format string, args ...any) error {
		if s == nil {
			return config.KeyErrorf(key, format, args...)
		}
		return s.Errorf(key, format, args...)
	}
	if s != nil {
		if err := s.Decode(&t); err != nil {
			return streamTLS{}, err
		}
	}
	if s == nil || !s.Has("tls_key") {
		t.Key = t.Cert
	}
	if t.HandshakeTimeout <= 0 {
		return streamTLS{}, errorf("tls_handshake_timeout", "must be a positive duration such as \"10s\", not %v", t.HandshakeTimeout)
	}
	// Name the key whose file is missing rather than let the TLS loader
	// report a bare path.
	for _, f := range []struct{ key, path string }{{"tls_cert", t.Cert}, {"tls_key", t.Key}, {"tls_ca_file", t.CAFile}} {
		if f.path == "" {
			if f.key != "tls_ca_file" {
				return streamTLS{}, errorf(f.key, "must name a PEM file")
			}
			continue
		}
		if _, err := os.Stat(f.path); err != nil {
			return streamTLS{}, errorf(f.key, "%v", err)
		}
	}

	cfg, certs, warnings, err := tlsconf.ServerConfig(tlsconf.Options{
		CertFile: t.Cert, KeyFile: t.Key, CAFile: t.CAFile, VerifyPeer: t.VerifyPeer,
		Ciphers: t.Ciphers, Level: t.Level,
	}, func(err error) { log.Error("TLS certificates", "error", err) })
	for _, w := range warnings {
		if s != nil {
			s.Warn("tls_ciphers", "%s", w)
		} else {
			log.Warn(w, "key", "tls_ciphers")
		}
	}
	if err != nil {
		if s == nil {
			return streamTLS{}, err // a *config.KeyError
		}
		return streamTLS{}, s.Wrap("tls_cert", err)
	}
	return streamTLS{cfg: cfg, certs: certs, handshake: t.HandshakeTimeout}, nil
}

// Reload re-reads the certificate, key and CA files; new handshakes use
// them. On error the previous ones stay in use.
func (t *TLS) Reload() error {
	if err := t.certs.Reload(); err != nil {
		return fmt.Errorf("tls input: reloading certificates: %w", err)
	}
	t.c.Log.Info("TLS certificates reloaded", "subject", t.certs.Leaf().Subject.String())
	return nil
}

var (
	_ Input    = (*TCP)(nil)
	_ Input    = (*TLS)(nil)
	_ Reloader = (*TLS)(nil)
)
