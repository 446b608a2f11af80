//go:build unix

package queue

import (
	"os"
	"syscall"
)

// flock takes an exclusive lock on f without waiting. The lock belongs to
// the open file: a second open of the same queue, in this process or
// another, fails, and the lock goes with the process however it ends.
func flock(f *os.File) error {
	return syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
}
