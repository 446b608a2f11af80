package main

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// sendTCP writes data to a tcp input and closes the connection.
func sendTCP(t *testing.T, addr, data string) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Write([]byte(data)); err != nil {
		t.Fatal(err)
	}
	c.Close()
}

// TestDeadLetterFileIsWrittenWhileRunningAndSurvivesKill: bad lines reach
// the dead-letter file while flowgo runs, without a shutdown, so a kill -9
// loses none of them.
func TestDeadLetterFileIsWrittenWhileRunningAndSurvivesKill(t *testing.T) {
	dir := t.TempDir()
	dead := filepath.Join(dir, "rejected.log")
	d := startDaemon(t, dir, fmt.Sprintf(`[input]
type = "tcp"
listen = "127.0.0.1:0"
format = "rfc5424"
dead_letter_file = %q
[output]
type = "file"
file_path = %q
`, dead, filepath.Join(dir, "out.log")))
	var bad strings.Builder
	for i := range 37 {
		fmt.Fprintf(&bad, "bad line %d\n", i)
	}
	sendTCP(t, d.addr("tcp"), bad.String())
	waitUntil(t, "the 37 bad lines in the dead-letter file while flowgo runs", func() bool {
		b, _ := os.ReadFile(dead)
		return string(b) == bad.String()
	})
	d.kill()
	if b, _ := os.ReadFile(dead); string(b) != bad.String() {
		t.Errorf("after kill -9 the dead-letter file holds %q", b)
	}
}

// requireRoot fails a test about what flowgo does as root when it does not
// run as root (CI and test.sh run as root).
func requireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Fatal("this test checks what flowgo does as root: run it as root (CI does)")
	}
}

// TestFilesAreCreated0640 checks the mode of every file flowgo creates: the
// output, the files size rotation makes, and the dead-letter files, under a
// permissive umask.
func TestFilesAreCreated0640(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "out.log")
	inDead := filepath.Join(dir, "in.dead")
	d := startDaemon(t, dir, fmt.Sprintf(`[input]
type = "tcp"
listen = "127.0.0.1:0"
format = "rfc5424"
dead_letter_file = %q
[output]
type = "file"
format = "passthrough"
file_path = %q
file_rotation_size = 200
file_rotation_maxfiles = 3
`, inDead, out))
	var in strings.Builder
	for i := range 10 {
		fmt.Fprintf(&in, "<13>1 2024-01-01T00:00:00Z host app - - - record %d with enough text to rotate\n", i)
	}
	in.WriteString("not syslog\n")
	sendTCP(t, d.addr("tcp"), in.String())
	waitUntil(t, "a rotated file and the dead letter", func() bool {
		_, e1 := os.Stat(filepath.Join(dir, "out.0"))
		_, e2 := os.Stat(inDead)
		return e1 == nil && e2 == nil
	})
	d.stop()
	for _, p := range []string{out, filepath.Join(dir, "out.0"), inDead} {
		st, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode().Perm() != 0o640 {
			t.Errorf("%s: mode %v; want 0640", p, st.Mode().Perm())
		}
	}
}

func TestFileModeKey(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "out.log")
	r := flowgo(t, []byte("<13>1 - h a - - - x\n"), "run", "-c", writeConfig(t, fmt.Sprintf(`[input]
type = "stdin"
[output]
type = "file"
file_path = %q
file_mode = "0600"
`, out)))
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	if st, err := os.Stat(out); err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("file_mode = \"0600\": mode %v, %v", st.Mode().Perm(), err)
	}
}

// TestRootRefusesSymlinkedOutputFiles: whoever can write a log directory
// must not redirect root's writes by planting a link at the output's or a
// dead-letter file's path.
func TestRootRefusesSymlinkedOutputFiles(t *testing.T) {
	requireRoot(t)
	victim := filepath.Join(t.TempDir(), "shadow")
	if err := os.WriteFile(victim, []byte("root:secret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	logDir := t.TempDir()
	// A directory others can write, as an application's log directory is.
	if err := os.Chmod(logDir, 0o777); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(logDir, "out.log")
	dead := filepath.Join(logDir, "rejected.log")

	t.Run("at start", func(t *testing.T) {
		for _, tt := range []struct{ link, key string }{{out, "output.file_path"}, {dead, "input.dead_letter_file"}} {
			os.Remove(out)
			os.Remove(dead)
			if err := os.Symlink(victim, tt.link); err != nil {
				t.Fatal(err)
			}
			cfg := writeConfig(t, fmt.Sprintf("[input]\ntype = \"stdin\"\ndead_letter_file = %q\n[output]\ntype = \"file\"\nfile_path = %q\n", dead, out))
			for _, cmd := range []string{"check", "run"} {
				r := flowgo(t, []byte("not syslog\n<13>1 - h a - - - x\n"), cmd, "-c", cfg)
				if r.code != 2 || !strings.Contains(r.stderr, tt.key+": "+tt.link+" is a symbolic link") {
					t.Errorf("flowgo %s with a link at %s: exit %d; want 2 and an error naming %s\n%s", cmd, tt.key, r.code, tt.key, r.stderr)
				}
			}
			os.Remove(tt.link)
		}
	})

	t.Run("planted while running", func(t *testing.T) {
		os.Remove(out)
		d := startDaemon(t, t.TempDir(), fmt.Sprintf("[input]\ntype = \"tcp\"\nlisten = \"127.0.0.1:0\"\n[output]\ntype = \"file\"\nfile_path = %q\nshutdown_timeout = \"1s\"\n", out))
		addr := d.addr("tcp")
		if err := os.Symlink(victim, out); err != nil {
			t.Fatal(err)
		}
		sendTCP(t, addr, "<13>1 - h a - - - written through the link?\n")
		waitUntil(t, "the refusal in the log", func() bool {
			return strings.Contains(d.stderr.String(), out+" is a symbolic link")
		})
		d.stop()
	})
	if b, _ := os.ReadFile(victim); string(b) != "root:secret\n" {
		t.Errorf("the link's target was written: %q", b)
	}
}
