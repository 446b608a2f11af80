package input_test

import (
	"net"
	"testing"

	"golang.org/x/sys/unix"
)

// sendQueue returns the bytes c's kernel holds that the peer has not
// acknowledged (SIOCOUTQ).
func sendQueue(t *testing.T, c *net.TCPConn) int {
	raw, err := c.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var n int
	var ierr error
	raw.Control(func(fd uintptr) { n, ierr = unix.IoctlGetInt(int(fd), unix.SIOCOUTQ) })
	if ierr != nil {
		t.Fatal(ierr)
	}
	return n
}
