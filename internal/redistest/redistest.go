// Package redistest runs a real redis-server for tests: in the foreground,
// on a free loopback port, with its own directory and configuration file,
// stopped (or killed, and started again) by its PID.
package redistest

import (
	"bufio"
	"crypto/tls"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// Server is a redis-server started by a test.
type Server struct {
	t    testing.TB
	Addr string // 127.0.0.1:port
	Port int
	Dir  string // its working directory: configuration, AOF, log
	conf string
	cmd  *exec.Cmd
	done chan struct{}
	tls  *tls.Config // set when the server speaks only TLS
}

// TLS names the PEM files of a server that speaks only TLS.
type TLS struct {
	CertFile, KeyFile string
	// CAFile holds the CAs that sign client certificates; with it the
	// server requires one (tls-auth-clients yes), and the harness shows
	// ClientCertFile and ClientKeyFile.
	CAFile                        string
	ClientCertFile, ClientKeyFile string
}

// Start runs redis-server with the given configuration lines after the
// defaults (no persistence; "appendonly yes" turns AOF on). It fails the
// test, never skips it, when redis-server is missing: .ci/tools installs it.
func Start(t testing.TB, lines ...string) *Server {
	t.Helper()
	return start(t, nil, lines)
}

// StartTLS is Start for a server that speaks only TLS, on its port.
func StartTLS(t testing.TB, o TLS, lines ...string) *Server {
	t.Helper()
	auth := "no"
	if o.CAFile != "" {
		auth = "yes"
	}
	pre := []string{
		"tls-cert-file " + o.CertFile,
		"tls-key-file " + o.KeyFile,
		"tls-auth-clients " + auth,
	}
	if o.CAFile != "" {
		pre = append(pre, "tls-ca-cert-file "+o.CAFile)
	}
	return start(t, &o, append(pre, lines...))
}

func start(t testing.TB, o *TLS, lines []string) *Server {
	t.Helper()
	if _, err := exec.LookPath("redis-server"); err != nil {
		t.Fatalf("redis-server is needed (Debian package redis-server, installed by .ci/tools): %v", err)
	}
	s := &Server{t: t, Dir: t.TempDir()}
	if o != nil {
		s.tls = &tls.Config{InsecureSkipVerify: true}
		if o.CAFile != "" {
			cert, err := tls.LoadX509KeyPair(o.ClientCertFile, o.ClientKeyFile)
			if err != nil {
				t.Fatal(err)
			}
			s.tls.Certificates = []tls.Certificate{cert}
		}
	}
	var err error
	for range 5 {
		if s.Port, err = freePort(); err != nil {
			t.Fatal(err)
		}
		s.Addr = fmt.Sprintf("127.0.0.1:%d", s.Port)
		port := fmt.Sprintf("port %d", s.Port)
		if s.tls != nil {
			port = fmt.Sprintf("port 0\ntls-port %d", s.Port)
		}
		conf := []string{
			"bind 127.0.0.1",
			port,
			"dir " + s.Dir,
			"logfile " + filepath.Join(s.Dir, "redis.log"),
			"daemonize no",
			"save \"\"",
			"appendonly no",
			"protected-mode yes",
		}
		s.conf = filepath.Join(s.Dir, "redis.conf")
		if err := os.WriteFile(s.conf, []byte(strings.Join(append(conf, lines...), "\n")+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		if err = s.start(); err == nil {
			break
		}
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Kill() })
	return s
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// start runs the server and waits until it answers.
func (s *Server) start() error {
	cmd := exec.Command("redis-server", s.conf)
	cmd.Dir = s.Dir
	dieWithParent(cmd)
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("redis-server: %w", err)
	}
	s.cmd = cmd
	s.done = make(chan struct{})
	go func() { cmd.Wait(); close(s.done) }()
	deadline := time.Now().Add(20 * time.Second)
	for {
		select {
		case <-s.done:
			return fmt.Errorf("redis-server exited at start:\n%s", s.Log())
		default:
		}
		if s.answers() {
			return nil
		}
		if time.Now().After(deadline) {
			s.Kill()
			return fmt.Errorf("redis-server did not answer on %s:\n%s", s.Addr, s.Log())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// answers reports whether the server replies to PING, done loading (a
// NOAUTH error counts: it is up).
func (s *Server) answers() bool {
	c, err := net.DialTimeout("tcp", s.Addr, time.Second)
	if err != nil {
		return false
	}
	if s.tls != nil {
		c = tls.Client(c, s.tls)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(2 * time.Second))
	if _, err := c.Write([]byte("PING\r\n")); err != nil {
		return false
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return false
	}
	return strings.HasPrefix(line, "+PONG") || strings.HasPrefix(line, "-NOAUTH")
}

// PID is the running server's process id.
func (s *Server) PID() int { return s.cmd.Process.Pid }

// Stop ends the server with SIGTERM (it saves if persistence is on) and
// waits for it.
func (s *Server) Stop() { s.signal(syscall.SIGTERM) }

// Kill ends the server with SIGKILL and waits for it.
func (s *Server) Kill() { s.signal(syscall.SIGKILL) }

func (s *Server) signal(sig syscall.Signal) {
	if s.cmd == nil {
		return
	}
	select {
	case <-s.done:
		return
	default:
	}
	syscall.Kill(s.cmd.Process.Pid, sig)
	select {
	case <-s.done:
	case <-time.After(20 * time.Second):
		syscall.Kill(s.cmd.Process.Pid, syscall.SIGKILL)
		<-s.done
	}
}

// Restart starts the server again, on the same port, directory and
// configuration, after Stop or Kill.
func (s *Server) Restart() {
	s.t.Helper()
	var err error
	for range 50 { // the port may take a moment to be free again
		if err = s.start(); err == nil {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	s.t.Fatal(err)
}

// Log returns the server's log file.
func (s *Server) Log() string {
	b, _ := os.ReadFile(filepath.Join(s.Dir, "redis.log"))
	return string(b)
}

// Client returns a client of the server (authenticated as user, when
// given), closed at the end of the test.
func (s *Server) Client(user, password string) *redis.Client {
	c := redis.NewClient(&redis.Options{Addr: s.Addr, Username: user, Password: password, Protocol: 2, DisableIdentity: true, TLSConfig: s.tls})
	s.t.Cleanup(func() { c.Close() })
	return c
}
