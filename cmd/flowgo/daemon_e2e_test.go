package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/flowgo/flowgo/internal/syncbuf"
)

// daemon is a `flowgo run` started by a test, stopped by its PID when the
// test ends.
type daemon struct {
	t      *testing.T
	cmd    *exec.Cmd
	stderr syncbuf.Buffer
	exited chan struct{}
	err    error
}

// startDaemon runs flowgo with a config file holding src in dir.
func startDaemon(t *testing.T, dir, src string) *daemon {
	t.Helper()
	cfg := filepath.Join(dir, "flowgo.toml")
	if err := os.WriteFile(cfg, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	return runDaemon(t, cfg, dir)
}

// runDaemon runs `flowgo run -c cfg` in dir (the test's directory when
// ""), with env added to its environment, until the test ends.
func runDaemon(t *testing.T, cfg, dir string, env ...string) *daemon {
	t.Helper()
	return spawn(t, dir, env, "run", "-c", cfg)
}

// spawn runs flowgo with args in dir, with env added to its environment,
// until the test ends.
func spawn(t *testing.T, dir string, env []string, args ...string) *daemon {
	t.Helper()
	d := &daemon{t: t, cmd: exec.Command(flowgoBin, args...), exited: make(chan struct{})}
	d.cmd.Dir = dir
	if len(env) > 0 {
		d.cmd.Env = append(os.Environ(), env...)
	}
	d.cmd.Stderr = &d.stderr
	if err := d.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		d.err = d.cmd.Wait()
		close(d.exited)
	}()
	t.Cleanup(func() {
		select {
		case <-d.exited:
		default:
			d.cmd.Process.Kill()
			<-d.exited
		}
	})
	return d
}

// startFlowgo runs flowgo on cfg and waits for its listener of type typ:
// its address.
func startFlowgo(t *testing.T, cfg, typ string) (*daemon, string) {
	t.Helper()
	d := runDaemon(t, cfg, "")
	return d, d.addr(typ)
}

// addr waits until flowgo logs its listener of type typ and returns the address.
func (d *daemon) addr(typ string) string {
	d.t.Helper()
	deadline := time.Now().Add(waitListen)
	for {
		for _, l := range strings.Split(d.stderr.String(), "\n") {
			if m := streamListenRE.FindStringSubmatch(l); m != nil && m[1] == typ {
				return m[2]
			}
		}
		select {
		case <-d.exited:
			d.t.Fatalf("flowgo exited (%v) without listening\nstderr:\n%s", d.err, d.stderr.String())
		default:
		}
		if time.Now().After(deadline) {
			d.t.Fatalf("flowgo did not log a %s listener\nstderr:\n%s", typ, d.stderr.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// stop sends SIGTERM and waits for the exit.
func (d *daemon) stop() {
	d.t.Helper()
	d.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-d.exited:
	case <-time.After(waitExit):
		d.cmd.Process.Kill()
		<-d.exited
		d.t.Fatalf("flowgo did not exit within %v after SIGTERM\nstderr:\n%s", waitExit, d.stderr.String())
	}
}

// stopClean stops flowgo as stop does, and fails the test unless it
// exited 0.
func (d *daemon) stopClean() {
	d.t.Helper()
	d.stop()
	if d.err != nil {
		d.t.Errorf("flowgo: %v\nstderr:\n%s", d.err, d.stderr.String())
	}
}

// kill sends SIGKILL and waits for the exit: nothing is flushed.
func (d *daemon) kill() {
	d.cmd.Process.Kill()
	<-d.exited
}

// waitUntil polls ok with a generous deadline.
func waitUntil(t *testing.T, what string, ok func() bool) {
	t.Helper()
	waitTrue(t, waitOutput, what, ok)
}

// waitTrue polls ok every 20 ms for up to d.
func waitTrue(t *testing.T, d time.Duration, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("waited %v for %s", d, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
