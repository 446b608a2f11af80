//go:build linux && !386

package input

import (
	"os"
	"syscall"
	"unsafe"
)

// soMeminfo is SO_MEMINFO, which the syscall package predates; skDrops is
// SK_MEMINFO_DROPS, the index of the drop counter in the array it fills.
const (
	soMeminfo = 55
	skDrops   = 8
)

// socketDrops reads the socket's drop counter with getsockopt SO_MEMINFO.
func socketDrops(fd int) (uint32, error) {
	var info [skDrops + 1]uint32
	size := uint32(unsafe.Sizeof(info))
	_, _, errno := syscall.Syscall6(syscall.SYS_GETSOCKOPT, uintptr(fd), syscall.SOL_SOCKET, soMeminfo,
		uintptr(unsafe.Pointer(&info[0])), uintptr(unsafe.Pointer(&size)), 0)
	if errno == 0 && size < uint32(unsafe.Sizeof(info)) {
		errno = syscall.EINVAL
	}
	if errno != 0 {
		return 0, os.NewSyscallError("getsockopt SO_MEMINFO", errno)
	}
	return info[skDrops], nil
}
