package input_test

import (
	"net"
	"testing"

	"golang.org/x/sys/unix"
)

// bytesAcked returns how many bytes of c the peer's kernel acknowledged
// (TCP_INFO tcpi_bytes_acked); it stays readable after a reset.
func bytesAcked(t *testing.T, c *net.TCPConn) int {
	raw, err := c.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var info *unix.TCPInfo
	var ierr error
	raw.Control(func(fd uintptr) { info, ierr = unix.GetsockoptTCPInfo(int(fd), unix.IPPROTO_TCP, unix.TCP_INFO) })
	if ierr != nil {
		t.Fatal(ierr)
	}
	// The count includes the SYN's sequence number.
	return int(info.Bytes_acked) - 1
}
