//go:build !linux

package output

import (
	"net"
	"time"
)

// fallbackWindow bounds what a socket may hold unacknowledged where the
// kernel cannot be asked: larger than the send buffers that macOS, the BSDs
// and Windows grow to by default.
const fallbackWindow = 8 << 20

// tcpSample assumes, where the kernel cannot be asked, that the last
// fallbackWindow bytes written may not have reached the peer; the peer's
// window is unknown.
func tcpSample(c *net.TCPConn, written int64) (unacked, window int64, ok bool) {
	return min(written, fallbackWindow), -1, true
}

// setUserTimeout does nothing where TCP_USER_TIMEOUT is not known: the
// write deadline still bounds each write.
func setUserTimeout(c *net.TCPConn, d time.Duration) error { return nil }

// exactAcks is false: Close cannot know when the peer acknowledged
// everything, so it flushes and closes without waiting.
const exactAcks = false
