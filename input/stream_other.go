//go:build !linux

package input

import "net"

// inQueue returns -1: outside Linux the bytes waiting in a socket are not
// counted, and a stopping connection reads for shutdownGrace instead.
func inQueue(net.Conn) int { return -1 }
