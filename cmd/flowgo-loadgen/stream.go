package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
	"sync"
	"time"
)

// errInterrupted ends a run cut short by SIGINT or SIGTERM.
var errInterrupted = errors.New("interrupted")

// poolSize is how many distinct lines to generate: -pool, but no more than
// the run sends.
func poolSize(o *options) int {
	n := o.pool
	if o.count > 0 && o.count < int64(n) {
		n = int(o.count)
	}
	return n
}

// plan is what one connection or socket is to send.
type plan struct {
	first    int       // pool index of its first frame
	quota    int64     // records to send; 0: no limit
	deadline time.Time // stop here; zero: no limit
	rate     float64   // records per second; 0: no limit
}

// plans spreads the run over the connections: each starts at a different
// place in the pool, so that they do not send the same lines in step.
func plans(o *options, p *pool, start time.Time) []plan {
	ps := make([]plan, o.conns)
	for i := range ps {
		ps[i].first = i * p.len() / o.conns
		if o.count > 0 {
			ps[i].quota = share(o.count, i, o.conns)
		}
		if o.duration > 0 {
			ps[i].deadline = start.Add(o.duration)
		}
		ps[i].rate = o.rate / float64(o.conns)
	}
	return ps
}

// maxFrames is how many frames one write may carry under a rate limit: about
// 5 ms worth, so that pacing stays smooth.
func (pl plan) maxFrames(poolLen int) int {
	if pl.rate == 0 {
		return poolLen
	}
	return max(1, min(poolLen, int(pl.rate/200)))
}

// pace sleeps until records are due at the plan's rate, counted from start.
func (pl plan) pace(start time.Time, records int64) {
	if pl.rate == 0 {
		return
	}
	due := start.Add(time.Duration(float64(records) / pl.rate * float64(time.Second)))
	if d := time.Until(due); d > 0 {
		time.Sleep(d)
	}
}

// remaining returns how many records the plan still allows after sent, up to
// limit.
func (pl plan) remaining(sent int64, limit int) int {
	if pl.quota == 0 {
		return limit
	}
	return int(min(int64(limit), pl.quota-sent))
}

// done reports whether the plan is complete after sent records.
func (pl plan) done(sent int64) bool {
	return (pl.quota > 0 && sent >= pl.quota) || (!pl.deadline.IsZero() && !time.Now().Before(pl.deadline))
}

// sendStream runs a TCP or TLS load: it opens every connection, then starts
// the clock and sends on all of them at once.
func sendStream(ctx context.Context, o *options) (result, error) {
	var tlsConf *tls.Config
	if o.proto == "tls" {
		var err error
		if tlsConf, err = o.tlsConfig(); err != nil {
			return result{}, err
		}
	}
	stampFormat := ""
	if o.latency != "" {
		stampFormat = o.format
	}
	p := newPool(poolSize(o), o.generator(o.seed), o.framing, stampFormat)
	conns := make([]net.Conn, 0, o.conns)
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for range o.conns {
		c, err := dialStream(ctx, o, tlsConf)
		if err != nil {
			return result{}, err
		}
		conns = append(conns, c)
	}
	// A signal unblocks writes that wait on a server which stopped reading.
	stop := context.AfterFunc(ctx, func() {
		for _, c := range conns {
			c.SetWriteDeadline(time.Now())
		}
	})
	defer stop()

	return sendAll(ctx, o, p, len(conns), func(i int, pl plan) (records, bytes int64, err error) {
		c, cp := conns[i], p
		if p.stamps != nil && i > 0 {
			cp = p.clone() // stamped while the others send theirs
		}
		records, bytes, err = writeFrames(ctx, c, cp, pl, o.writeSize)
		// Close sends TLS's close_notify; a TCP close hands the rest of
		// the data to the kernel, which still delivers it.
		if cerr := c.Close(); cerr != nil && err == nil && ctx.Err() == nil {
			err = fmt.Errorf("close: %w", cerr)
		}
		return records, bytes, err
	})
}

// sendAll runs send for each of n connections or sockets at once, each with
// its share of the plan, and sums what they sent: the clock starts before
// the first and stops when the last returns.
func sendAll(ctx context.Context, o *options, p *pool, n int, send func(i int, pl plan) (records, bytes int64, err error)) (result, error) {
	res := result{start: time.Now()}
	ps := plans(o, p, res.start)
	records := make([]int64, n)
	bytes := make([]int64, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { records[i], bytes[i], errs[i] = send(i, ps[i]) })
	}
	wg.Wait()
	res.end = time.Now()
	for i := range n {
		res.records += records[i]
		res.bytes += bytes[i]
	}
	if ctx.Err() != nil {
		return res, errInterrupted
	}
	return res, errorsJoin(errs)
}

// writeFrames sends the plan's frames on c in chunks of about size bytes and
// returns the records and bytes the connection accepted.
func writeFrames(ctx context.Context, c net.Conn, p *pool, pl plan, size int) (records, bytes int64, err error) {
	start := time.Now()
	i := pl.first
	limit := pl.maxFrames(p.len())
	for !pl.done(records) && ctx.Err() == nil {
		buf, k := p.chunk(i, size, pl.remaining(records, limit))
		p.stamp(i, k, time.Now().UnixNano())
		n, err := c.Write(buf)
		if err != nil {
			// Only whole frames count; a frame cut by the error is lost.
			return records + int64(p.framesIn(i, n)), bytes + int64(n), err
		}
		records += int64(k)
		bytes += int64(n)
		if i += k; i == p.len() {
			i = 0
		}
		pl.pace(start, records)
	}
	return records, bytes, nil
}

// dialStream opens one TCP or TLS connection, handshake included, so that
// the handshakes happen before the clock starts.
func dialStream(ctx context.Context, o *options, tlsConf *tls.Config) (net.Conn, error) {
	d := net.Dialer{Timeout: 10 * time.Second}
	c, err := d.DialContext(ctx, "tcp", o.addr)
	if err != nil {
		return nil, err
	}
	if o.sndbuf > 0 {
		if err := c.(*net.TCPConn).SetWriteBuffer(o.sndbuf); err != nil {
			c.Close()
			return nil, err
		}
	}
	if tlsConf == nil {
		return c, nil
	}
	tc := tls.Client(c, tlsConf)
	hctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := tc.HandshakeContext(hctx); err != nil {
		c.Close()
		return nil, fmt.Errorf("tls handshake with %s: %w", o.addr, err)
	}
	return tc, nil
}

// tlsConfig builds the client's TLS configuration from the flags.
func (o *options) tlsConfig() (*tls.Config, error) {
	conf := &tls.Config{InsecureSkipVerify: o.insecure, ServerName: o.serverName}
	if conf.ServerName == "" {
		host, _, err := net.SplitHostPort(o.addr)
		if err != nil {
			return nil, fmt.Errorf("-addr %q: %w", o.addr, err)
		}
		conf.ServerName = host
	}
	switch o.tlsVersion {
	case "1.2":
		conf.MinVersion, conf.MaxVersion = tls.VersionTLS12, tls.VersionTLS12
	case "1.3":
		conf.MinVersion, conf.MaxVersion = tls.VersionTLS13, tls.VersionTLS13
	default:
		conf.MinVersion = tls.VersionTLS12
	}
	if o.ca != "" {
		pem, err := os.ReadFile(o.ca)
		if err != nil {
			return nil, fmt.Errorf("-ca: %w", err)
		}
		conf.RootCAs = x509.NewCertPool()
		if !conf.RootCAs.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("-ca %s: no PEM certificate in it", o.ca)
		}
	}
	if o.cert != "" {
		key := o.key
		if key == "" {
			key = o.cert
		}
		cert, err := tls.LoadX509KeyPair(o.cert, key)
		if err != nil {
			return nil, fmt.Errorf("-cert/-key: %w", err)
		}
		conf.Certificates = []tls.Certificate{cert}
	}
	return conf, nil
}
