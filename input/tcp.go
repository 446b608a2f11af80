package input

func init() {
	// tcp_co and its spellings were Flowgger's coroutine variant; with one
	// goroutine per connection they are the same input.
	Register("tcp", Type{Parse: parseTCP, Stream: true},
		"syslog-tcp", "tcp_co", "syslog-tcp_co", "tcpco", "syslog-tcpco")
}

// TCP is the tcp input: syslog (or any framed format) over plain TCP.
//
// Keys: listen (default "0.0.0.0:514"; "[::]:514" for IPv6), timeout (idle
// seconds, default 3600, 0 = never), max_connections (default 10000, 0 = no
// limit; connections beyond it are reset at once), tcp_keepalive (idle time
// before keepalive probes, default "60s", "0s" = off) and peer_field (off
// when empty: otherwise every record gets the sender's "ip:port" as a
// parameter of that name).
//
// Each connection has its own goroutine, splitter and batch; the batch is
// handed over before every read that may block, so batches grow under load
// and latency stays low when traffic is quiet. While the queue is full the
// connection stops reading and TCP pushes back on the sender.
type TCP struct {
	*streamServer
}

// tcpBuilder is a parsed tcp input.
type tcpBuilder struct {
	c Config
	k streamKeys
}

func parseTCP(c Config) (Builder, error) {
	k, err := decodeStreamKeys(c, DefaultTCPListen)
	if err != nil {
		return nil, err
	}
	return &tcpBuilder{c: c, k: k}, nil
}

// ListenAddress implements Listener.
func (b *tcpBuilder) ListenAddress() (string, string) { return "tcp", b.k.Listen }

// Build implements Builder.
func (b *tcpBuilder) Build() (Input, error) { return &TCP{newStreamServer(b.c, b.k, "tcp")}, nil }
