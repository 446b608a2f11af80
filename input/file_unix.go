//go:build unix

package input

import (
	"errors"
	"os"
	"syscall"
)

// fileIdentities: Unix gives every file a device and inode number.
const fileIdentities = true

var errLocked = errors.New("locked")

// lockFile takes an exclusive lock on f, without waiting: errLocked when
// another holds it. Closing f (or the process ending) releases it.
func lockFile(f *os.File) error {
	err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
	if errors.Is(err, syscall.EWOULDBLOCK) {
		return errLocked
	}
	return err
}

func statID(st os.FileInfo) fileID {
	if s, ok := st.Sys().(*syscall.Stat_t); ok {
		return fileID{Dev: uint64(s.Dev), Ino: uint64(s.Ino)}
	}
	return fileID{}
}

// nlink returns the file's link count: 0 once it is deleted.
func nlink(st os.FileInfo) uint64 {
	if s, ok := st.Sys().(*syscall.Stat_t); ok {
		return uint64(s.Nlink)
	}
	return 1
}
