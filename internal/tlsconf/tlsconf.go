// Package tlsconf builds the crypto/tls configurations of flowgo's TLS input
// and output from Flowgger's keys (tls_cert, tls_key, tls_ca_file,
// tls_verify_peer, tls_ciphers, tls_compatibility_level), and reloads
// certificates, keys and CAs when their files change or on request (SIGHUP),
// so that certificate rotation needs no restart.
package tlsconf

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/flowgo/flowgo/config"
)

// Options are the TLS keys of a config section.
type Options struct {
	CertFile   string // PEM certificate chain; may also hold the key (Flowgger's flowgger.pem)
	KeyFile    string // PEM private key; defaults to CertFile
	CAFile     string // PEM CAs: client CAs on a server, root CAs on a client
	VerifyPeer bool   // server: require and verify client certificates; client: verify the server
	Ciphers    string // OpenSSL cipher list; empty = Go's defaults
	Level      string // tls_compatibility_level
	ServerName string // client: name to verify and send as SNI
	// KeyPrefix is put before the key names of errors ("kafka_" for
	// kafka_tls_cert): errors are *config.KeyError naming the key at
	// fault, so that a caller never looks for a key in an error's text.
	KeyPrefix string
}

// keyError returns a *config.KeyError about key (a name without o's prefix).
func (o Options) keyError(key string, err error) error {
	return &config.KeyError{Key: o.KeyPrefix + key, Err: err}
}

// checkEvery bounds how often handshakes look at the files' modification times.
const checkEvery = time.Second

// Reloader holds the current certificate and CA pool and reloads them. It is
// safe for concurrent use.
type Reloader struct {
	opts Options
	base *tls.Config

	mu        sync.Mutex
	cert      *tls.Certificate
	pool      *x509.CertPool
	stamps    map[string]stamp
	lastCheck time.Time
	current   *tls.Config // server: the config handed to handshakes
	onError   func(error)
	now       func() time.Time
}

type stamp struct {
	mod  time.Time
	size int64
}

// ServerConfig returns a server tls.Config for o. Warnings report cipher
// names that were ignored. Every TLS listener of flowgo gets its
// configuration here.
//
// Session tickets are off. A TLS 1.3 server sends its tickets after the
// handshake; a client that writes its records and closes without reading
// (Python's ssl with sendall and close, graypy's GELFTLSHandler, many
// short-lived senders) leaves them unread, so its kernel turns the close
// into a TCP reset, and a reset makes the server's kernel discard what the
// client sent and flowgo had not read yet: every record of the connection.
// With no tickets the server sends nothing after the handshake. The cost is
// a full handshake for every connection, which a log sender's long-lived
// connections hardly notice.
func ServerConfig(o Options, onReloadError func(error)) (*tls.Config, *Reloader, []string, error) {
	if o.CertFile == "" {
		return nil, nil, nil, o.keyError("tls_cert", errors.New("a certificate is required"))
	}
	r, warnings, err := newReloader(o, onReloadError)
	if err != nil {
		return nil, nil, warnings, err
	}
	if o.VerifyPeer {
		if o.CAFile == "" {
			return nil, nil, warnings, o.keyError("tls_verify_peer", fmt.Errorf("needs %stls_ca_file, the CAs that sign client certificates", o.KeyPrefix))
		}
		r.base.ClientAuth = tls.RequireAndVerifyClientCert
	} else if o.CAFile != "" {
		r.base.ClientAuth = tls.VerifyClientCertIfGiven
	}
	r.base.SessionTicketsDisabled = true
	r.rebuildServer()
	cfg := &tls.Config{
		MinVersion:             r.base.MinVersion,
		SessionTicketsDisabled: true,
		GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) {
			return r.serverConfig(), nil
		},
	}
	return cfg, r, warnings, nil
}

// ClientConfig returns a reloader whose Config method gives a client
// tls.Config for o, reflecting the files as they are at that moment; call
// it for every dial.
func ClientConfig(o Options, onReloadError func(error)) (*Reloader, []string, error) {
	if (o.CertFile == "") != (o.KeyFile == "") && o.KeyFile != "" {
		return nil, nil, o.keyError("tls_key", fmt.Errorf("is set without %stls_cert", o.KeyPrefix))
	}
	r, warnings, err := newReloader(o, onReloadError)
	if err != nil {
		return nil, warnings, err
	}
	return r, warnings, nil
}

func newReloader(o Options, onErr func(error)) (*Reloader, []string, error) {
	if o.KeyFile == "" {
		o.KeyFile = o.CertFile
	}
	minV, err := MinVersion(o.Level)
	if err != nil {
		return nil, nil, o.keyError("tls_compatibility_level", err)
	}
	base := &tls.Config{MinVersion: minV}
	var warnings []string
	ids, w, err := CipherSuites(o.Level, o.Ciphers)
	if len(w) > 0 {
		// One line for the whole list: an old OpenSSL string can name
		// twenty suites Go does not have.
		warnings = []string{strings.Join(w, "; ")}
	}
	if err != nil {
		return nil, warnings, o.keyError("tls_ciphers", err)
	}
	base.CipherSuites = ids
	if onErr == nil {
		onErr = func(error) {}
	}
	r := &Reloader{opts: o, base: base, stamps: map[string]stamp{}, onError: onErr, now: time.Now}
	if err := r.load(); err != nil {
		return nil, warnings, err
	}
	r.lastCheck = r.now()
	return r, warnings, nil
}

// load reads the files; on error the previous certificate and pool stay.
func (r *Reloader) load() error {
	o := r.opts
	stamps := map[string]stamp{}
	for _, f := range []struct{ key, path string }{{"tls_cert", o.CertFile}, {"tls_key", o.KeyFile}, {"tls_ca_file", o.CAFile}} {
		if f.path == "" {
			continue
		}
		fi, err := os.Stat(f.path)
		if err != nil {
			return o.keyError(f.key, err)
		}
		stamps[f.path] = stamp{fi.ModTime(), fi.Size()}
	}
	var cert *tls.Certificate
	if o.CertFile != "" {
		c, err := tls.LoadX509KeyPair(o.CertFile, o.KeyFile)
		if err != nil {
			return o.keyError("tls_cert", fmt.Errorf("%s / %stls_key %s: %w", o.CertFile, o.KeyPrefix, o.KeyFile, err))
		}
		cert = &c
	}
	var pool *x509.CertPool
	if o.CAFile != "" {
		pem, err := os.ReadFile(o.CAFile)
		if err != nil {
			return o.keyError("tls_ca_file", err)
		}
		pool = x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return o.keyError("tls_ca_file", fmt.Errorf("%s: no PEM certificate found", o.CAFile))
		}
	}
	r.cert, r.pool, r.stamps = cert, pool, stamps
	return nil
}

// Reload re-reads the files now. On error the previous certificate stays in use.
func (r *Reloader) Reload() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := r.load(); err != nil {
		return err
	}
	r.rebuildServer()
	return nil
}

// maybeReload reloads when a file changed since the last look, at most once
// per checkEvery. Called with r.mu held.
func (r *Reloader) maybeReload() {
	now := r.now()
	if now.Sub(r.lastCheck) < checkEvery {
		return
	}
	r.lastCheck = now
	for f, st := range r.stamps {
		fi, err := os.Stat(f)
		if err != nil || !fi.ModTime().Equal(st.mod) || fi.Size() != st.size {
			if err := r.load(); err != nil {
				r.onError(fmt.Errorf("reloading TLS files (keeping the previous ones): %w", err))
				// Do not retry on every handshake: wait for the next change.
				for f2 := range r.stamps {
					if fi2, e := os.Stat(f2); e == nil {
						r.stamps[f2] = stamp{fi2.ModTime(), fi2.Size()}
					}
				}
				return
			}
			r.rebuildServer()
			return
		}
	}
}

func (r *Reloader) rebuildServer() {
	c := r.base.Clone()
	if r.cert != nil {
		c.Certificates = []tls.Certificate{*r.cert}
	}
	c.ClientCAs = r.pool
	r.current = c
}

func (r *Reloader) serverConfig() *tls.Config {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.maybeReload()
	return r.current
}

// Config returns a client tls.Config with the current files.
func (r *Reloader) Config() *tls.Config {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.maybeReload()
	c := r.base.Clone()
	c.ServerName = r.opts.ServerName
	c.RootCAs = r.pool // nil: the system roots
	c.InsecureSkipVerify = !r.opts.VerifyPeer
	if r.cert != nil {
		c.Certificates = []tls.Certificate{*r.cert}
	}
	return c
}

// Leaf returns the current certificate's leaf, for tests and logs.
func (r *Reloader) Leaf() *x509.Certificate {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.cert == nil {
		return nil
	}
	if r.cert.Leaf != nil {
		return r.cert.Leaf
	}
	l, _ := x509.ParseCertificate(r.cert.Certificate[0])
	return l
}
