//go:build linux && 386

package input

import "errors"

// socketDrops is not available on 386, whose syscall package reaches
// getsockopt only through socketcall; /proc/net/udp is read instead.
func socketDrops(int) (uint32, error) {
	return 0, errors.ErrUnsupported
}
