//go:build unix

package output

import (
	"os"

	"golang.org/x/sys/unix"
)

// writableDir reports whether a file can be created in dir, without
// creating one (access(2): permissions, a read-only file system).
func writableDir(dir string) error {
	if err := unix.Access(dir, unix.W_OK|unix.X_OK); err != nil {
		return &os.PathError{Op: "access", Path: dir, Err: err}
	}
	return nil
}
