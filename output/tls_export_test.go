package output

import "net"

// SetTLSUnacked replaces how a tls output learns what the peer has not
// acknowledged, so that a test can show what happens without that.
func SetTLSUnacked(o Output, f func(c *net.TCPConn, written int64) (int64, bool)) {
	o.(*tlsOutput).unacked = f
}

// SetTLSRand makes a tls output's back-off draws deterministic.
func SetTLSRand(o Output, f func(n int64) int64) {
	o.(*tlsOutput).rand = f
}
