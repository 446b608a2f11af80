//go:build unix

package logfile

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

func withRoot(t *testing.T, root bool) {
	old := asRoot
	asRoot = func() bool { return root }
	t.Cleanup(func() { asRoot = old })
}

func TestNewFilesGetTheModeExactly(t *testing.T) {
	old := syscall.Umask(0o077)
	defer syscall.Umask(old)
	dir := t.TempDir()
	for _, mode := range []fs.FileMode{0o640, 0o644, 0o600} {
		p := filepath.Join(dir, mode.String())
		f, err := OpenAppend(p, mode)
		if err != nil {
			t.Fatal(err)
		}
		f.Close()
		if st, _ := os.Stat(p); st.Mode().Perm() != mode {
			t.Errorf("created with %v under umask 077: mode %v", mode, st.Mode().Perm())
		}
	}
	// An existing file keeps its mode and content.
	p := filepath.Join(dir, "old")
	os.WriteFile(p, []byte("kept\n"), 0o600)
	f, err := OpenAppend(p, 0o640)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString("added\n")
	f.Close()
	if b, _ := os.ReadFile(p); string(b) != "kept\nadded\n" {
		t.Errorf("content %q", b)
	}
	if st, _ := os.Stat(p); st.Mode().Perm() != 0o600 {
		t.Errorf("existing file's mode changed to %v", st.Mode().Perm())
	}
}

func TestRootDoesNotFollowALinkInADirectoryOthersCanWrite(t *testing.T) {
	withRoot(t, true)
	dir := t.TempDir()
	if err := os.Chmod(dir, 0o777); err != nil {
		t.Fatal(err)
	}
	target := filepath.Join(t.TempDir(), "shadow")
	os.WriteFile(target, []byte("secret\n"), 0o600)
	link := filepath.Join(dir, "out.log")
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
	var se *SymlinkError
	for name, open := range map[string]func(string, fs.FileMode) (*os.File, error){"OpenAppend": OpenAppend, "Create": Create} {
		f, err := open(link, 0o640)
		if !errors.As(err, &se) || se.Path != link {
			t.Errorf("%s through a link = %v, %v; want a *SymlinkError naming %s", name, f, err, link)
		}
		if f != nil {
			f.Close()
		}
	}
	if b, _ := os.ReadFile(target); string(b) != "secret\n" {
		t.Errorf("the link's target changed: %q", b)
	}
	if err := Check(link); !errors.As(err, &se) {
		t.Errorf("Check = %v; want a *SymlinkError", err)
	}
	// A dangling link is not created through either.
	dangling := filepath.Join(dir, "dangling.log")
	os.Symlink(filepath.Join(t.TempDir(), "new"), dangling)
	if _, err := OpenAppend(dangling, 0o640); !errors.As(err, &se) {
		t.Errorf("OpenAppend through a dangling link = %v; want a *SymlinkError", err)
	}
	// /dev/stdout is a link in a directory only root can write.
	if err := Check("/dev/stdout"); err != nil {
		t.Errorf("Check(/dev/stdout) = %v; want nil", err)
	}
}

func TestLinksAreFollowedWhenNotRoot(t *testing.T) {
	withRoot(t, false)
	dir := t.TempDir()
	target := filepath.Join(dir, "target")
	link := filepath.Join(dir, "out.log")
	os.Symlink(target, link)
	f, err := OpenAppend(link, 0o640)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString("x\n")
	f.Close()
	if b, _ := os.ReadFile(target); string(b) != "x\n" {
		t.Errorf("target = %q", b)
	}
	if err := Check(link); err != nil {
		t.Errorf("Check = %v", err)
	}
}
