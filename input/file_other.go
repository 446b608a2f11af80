//go:build !unix

package input

import (
	"errors"
	"os"
)

// fileIdentities: without device and inode numbers the file input cannot
// tell a rotated file from a new one; it refuses to start.
const fileIdentities = false

var errLocked = errors.New("locked")

func lockFile(*os.File) error { return errors.ErrUnsupported }

func statID(os.FileInfo) fileID { return fileID{} }

func nlink(os.FileInfo) uint64 { return 1 }
