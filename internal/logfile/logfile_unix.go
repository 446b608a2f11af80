//go:build unix

package logfile

import (
	"errors"
	"os"
	"syscall"
)

const oNoFollow = syscall.O_NOFOLLOW

// isLink reports whether err is what open with O_NOFOLLOW gives for a link
// (ELOOP; EMLINK on FreeBSD).
func isLink(err error) bool {
	return errors.Is(err, syscall.ELOOP) || errors.Is(err, syscall.EMLINK)
}

// trustedDir reports whether only root can create or replace entries of
// dir: owned by root and not writable by group or others (/dev, where
// /dev/stdout is a link).
func trustedDir(dir string) bool {
	st, err := os.Lstat(dir)
	if err != nil || !st.IsDir() {
		return false
	}
	sys, ok := st.Sys().(*syscall.Stat_t)
	return ok && sys.Uid == 0 && st.Mode().Perm()&0o022 == 0
}
