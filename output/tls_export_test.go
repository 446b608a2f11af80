package output

import "net"

// SetTLSSample replaces how a tls output learns what the peer has not
// acknowledged and the peer's window, so that a test can show what happens
// without them.
func SetTLSSample(o Output, f func(c *net.TCPConn, written int64) (unacked, window int64, ok bool)) {
	o.(*tlsOutput).sample = f
}

// TCPSample is what the kernel says about a connection.
var TCPSample = tcpSample

// SetTLSRand makes a tls output's back-off draws deterministic.
func SetTLSRand(o Output, f func(n int64) int64) {
	o.(*tlsOutput).rand = f
}
