// Package logfile opens the files flowgo writes (file outputs, rotated and
// compressed files, dead-letter files, pipe mode's --errors) the one safe
// way: a file it creates gets exactly the configured mode (0640 by
// default), and as root a symbolic link at the last component is not
// followed unless only root can write the directory that holds it, so
// that whoever can write a log directory cannot redirect root's writes to
// another file.
package logfile

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// DefaultMode is the mode of the files flowgo creates: its user reads and
// writes, its group reads.
const DefaultMode fs.FileMode = 0o640

// asRoot reports whether links must be checked; tests replace it.
var asRoot = func() bool { return os.Geteuid() == 0 }

// SymlinkError is returned, as root, for a symbolic link at the last
// component of a path in a directory that users other than root can write.
type SymlinkError struct {
	Path string
}

func (e *SymlinkError) Error() string {
	return fmt.Sprintf("%s is a symbolic link in a directory that users other than root can write: flowgo runs as root and does not follow it, since whoever can write %s could point it at any file (name the link's target instead)",
		e.Path, filepath.Dir(e.Path))
}

// OpenAppend opens path for appending, creating it with mode when it does
// not exist.
func OpenAppend(path string, mode fs.FileMode) (*os.File, error) {
	return open(path, os.O_WRONLY|os.O_APPEND, mode)
}

// Create opens path for writing from the start, truncating it, creating it
// with mode when it does not exist.
func Create(path string, mode fs.FileMode) (*os.File, error) {
	return open(path, os.O_WRONLY|os.O_TRUNC, mode)
}

// CreateNew creates path with mode, failing if anything (a link too) is
// there: for temporary files.
func CreateNew(path string, mode fs.FileMode) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
	if err != nil {
		return nil, err
	}
	if err := f.Chmod(mode); err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

func open(path string, flag int, mode fs.FileMode) (*os.File, error) {
	root := asRoot()
	var err error
	for range 3 {
		// O_EXCL never follows a link: a file made here is a new one,
		// whose mode is set exactly (the umask would narrow it).
		var f *os.File
		if f, err = CreateNew(path, mode); err == nil || !errors.Is(err, fs.ErrExist) {
			return f, err
		}
		if !root {
			if f, err = os.OpenFile(path, flag, 0); !errors.Is(err, fs.ErrNotExist) {
				return f, err
			}
			// A dangling link: created through, as before this check.
			return os.OpenFile(path, flag|os.O_CREATE, mode)
		}
		if f, err = os.OpenFile(path, flag|oNoFollow, 0); err == nil {
			return f, nil
		}
		if isLink(err) {
			if !trustedDir(filepath.Dir(path)) {
				return nil, &SymlinkError{Path: path}
			}
			return os.OpenFile(path, flag, 0)
		}
		if !errors.Is(err, fs.ErrNotExist) {
			return nil, err
		}
		// Removed since: try again.
	}
	return nil, err
}

// Check reports, without creating or opening anything, what open would
// refuse for the link at path: nil when path is no link, does not exist, or
// may be followed.
func Check(path string) error {
	if !asRoot() {
		return nil
	}
	st, err := os.Lstat(path)
	if err != nil || st.Mode()&fs.ModeSymlink == 0 {
		return nil
	}
	if !trustedDir(filepath.Dir(path)) {
		return &SymlinkError{Path: path}
	}
	return nil
}
