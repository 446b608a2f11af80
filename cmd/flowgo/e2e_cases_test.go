package main

// Golden end-to-end cases: testdata/e2e/<case>/ holds a config, what real
// clients send, and what must come out. TestE2ECases runs the built binary
// (flowgoBin, from TestMain in e2e_test.go) on each case as a user would:
// config file, logger/openssl/raw sockets, signals, exit code, output files
// and stderr. testdata/e2e/README.md documents the layout, the case.toml keys
// and the normalisation of the fields that legitimately vary.

import (
	"bytes"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/BurntSushi/toml"

	"github.com/flowgo/flowgo/internal/syncbuf"
	"github.com/flowgo/flowgo/internal/testcerts"
)

var update = flag.Bool("update", false, "rewrite the golden files of testdata/e2e from the actual output")

const e2eDir = "../../testdata/e2e"

// How long the runner waits for flowgo to listen, for records to arrive,
// and for flowgo to exit. Generous: a shared CI machine can be slow, and a
// passing case never waits this long.
const (
	waitListen = 10 * time.Second
	waitOutput = 10 * time.Second
	waitExit   = 15 * time.Second
)

// e2eCase is a case's case.toml.
type e2eCase struct {
	// Description says what the case proves.
	Description string `toml:"description"`
	// Config is the config file in the case directory (default
	// flowgo.toml, or flowgger.toml when only that one exists).
	Config string `toml:"config"`
	// Args are flowgo's arguments; @CONFIG@ is the config's path.
	// Default: run -c @CONFIG@.
	Args []string `toml:"args"`
	// ExitCode is the exit code flowgo must end with.
	ExitCode int `toml:"exit_code"`
	// Exits means flowgo must stop by itself (config errors, stdin at EOF,
	// a port in use): the runner never signals it.
	Exits bool `toml:"exits"`
	// Certs makes a CA and certificates in the temp dir (see README).
	Certs bool `toml:"certs"`
	// Output says where the records go: "stdout", or a glob of files in
	// the temp dir, concatenated in name order (default "out.log").
	Output string `toml:"output"`
	// Files maps more golden files of the case directory to files of the
	// temp dir.
	Files map[string]string `toml:"files"`
	// Sort sorts the output lines before comparing: for senders whose
	// relative order is not defined (two inputs, UDP readers).
	Sort bool `toml:"sort"`
	// Normalize names the normalisations applied to every compared file.
	Normalize []string `toml:"normalize"`
	// Replace are extra regexp replacements, applied after Normalize.
	Replace []struct {
		Pattern string `toml:"pattern"`
		With    string `toml:"with"`
	} `toml:"replace"`
	// Steps run in order, while flowgo runs.
	Steps []e2eStep `toml:"step"`
}

// e2eStep is one [[step]] of a case.
type e2eStep struct {
	// Client sends Input: stdin, logger, openssl, tcp, udp, or udp-hex
	// (each line one datagram written in hex, for binary payloads).
	Client string `toml:"client"`
	// To is the listener the client connects to: tcp, tls or udp, as
	// flowgo logs it. Default: the client's own (logger: --udp → udp).
	To string `toml:"to"`
	// Args are the client's extra arguments (@TMP@ is the temp dir).
	Args []string `toml:"args"`
	// Input is the file of the case directory the client sends
	// (default input.txt).
	Input string `toml:"input"`
	// Env adds variables to the client's environment (TZ=...).
	Env []string `toml:"env"`
	// ClientExit is the exit code the client must end with (default 0);
	// -1 accepts any, for a client whose exit races the server (openssl
	// refused by TLS 1.3 after its side of the handshake is done).
	ClientExit int `toml:"client_exit"`
	// Background runs the client without waiting for it, so that the
	// next step's client sends at the same time; every background client
	// has ended before flowgo is stopped.
	Background bool `toml:"background"`
	// Records waits until the output holds this many records in total.
	Records int `toml:"records"`
	// RecordsIn makes Records count the records of this file of the temp
	// dir instead of the output (a file renamed away, say).
	RecordsIn string `toml:"records_in"`
	// Stderr waits until flowgo's stderr matches this regexp.
	Stderr string `toml:"stderr"`
	// Rename renames a file of the temp dir: [from, to].
	Rename []string `toml:"rename"`
	// Signal sends a signal to flowgo: HUP, TERM or INT.
	Signal string `toml:"signal"`
}

func TestE2ECases(t *testing.T) {
	dirs, err := filepath.Glob(filepath.Join(e2eDir, "*", "case.toml"))
	if err != nil {
		t.Fatal(err)
	}
	if len(dirs) == 0 {
		t.Fatalf("no cases under %s", e2eDir)
	}
	for _, f := range dirs {
		dir := filepath.Dir(f)
		t.Run(filepath.Base(dir), func(t *testing.T) {
			t.Parallel()
			runE2ECase(t, dir)
		})
	}
}

// e2eRun is one running case.
type e2eRun struct {
	t      *testing.T
	dir    string // the case directory
	tmp    string // the temp dir: output files, certificates
	c      e2eCase
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	stdout syncbuf.Buffer
	stderr syncbuf.Buffer
	exited chan struct{}
	// background holds the clients of background steps.
	background sync.WaitGroup
	waitErr    error
	start      time.Time
}

func runE2ECase(t *testing.T, dir string) {
	var c e2eCase
	md, err := toml.DecodeFile(filepath.Join(dir, "case.toml"), &c)
	if err != nil {
		t.Fatalf("case.toml: %v", err)
	}
	// A misspelt key would silently skip a check.
	if u := md.Undecoded(); len(u) > 0 {
		t.Fatalf("case.toml: unknown keys %v", u)
	}
	if c.Description == "" {
		t.Fatal("case.toml: description is missing")
	}
	r := &e2eRun{t: t, dir: dir, tmp: t.TempDir(), c: c, exited: make(chan struct{}), start: time.Now()}
	if r.c.Output == "" {
		r.c.Output = "out.log"
	}
	r.checkClients()
	if c.Certs {
		r.makeCerts()
	}
	cfg := r.writeConfig()
	args := c.Args
	if len(args) == 0 {
		args = []string{"run", "-c", "@CONFIG@"}
	}
	for i := range args {
		args[i] = strings.ReplaceAll(args[i], "@CONFIG@", cfg)
	}
	r.cmd = exec.Command(flowgoBin, args...)
	r.cmd.Dir = r.tmp
	r.cmd.Env = append(os.Environ(), "TZ=UTC")
	r.cmd.Stdout, r.cmd.Stderr = &r.stdout, &r.stderr
	if r.stdin, err = r.cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	if err := r.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		r.waitErr = r.cmd.Wait()
		close(r.exited)
	}()
	t.Cleanup(func() {
		select {
		case <-r.exited:
		default:
			r.cmd.Process.Kill()
			<-r.exited
		}
	})
	// A step that fails must not leave a background client reporting
	// after the test has ended.
	t.Cleanup(r.background.Wait)

	usesStdin := false
	for i, s := range c.Steps {
		r.step(i+1, s)
		usesStdin = usesStdin || s.Client == "stdin"
	}
	r.background.Wait()
	if !c.Exits && !usesStdin && !r.hasExited() {
		r.cmd.Process.Signal(syscall.SIGTERM)
	}
	select {
	case <-r.exited:
	case <-time.After(waitExit):
		r.cmd.Process.Kill()
		<-r.exited
		t.Fatalf("flowgo did not exit within %v\nstderr:\n%s", waitExit, r.stderr.String())
	}
	code := 0
	var ee *exec.ExitError
	if errors.As(r.waitErr, &ee) {
		code = ee.ExitCode()
	} else if r.waitErr != nil {
		t.Fatal(r.waitErr)
	}
	if code != c.ExitCode {
		t.Errorf("exit code = %d; want %d\nstderr:\n%s", code, c.ExitCode, r.stderr.String())
	}
	r.checkStderr(cfg)
	r.compare("expected.out", r.output(), true)
	rejected := filepath.Join(r.tmp, "rejected.log")
	if b, err := os.ReadFile(rejected); err == nil || fileExists(filepath.Join(dir, "expected.rejected")) {
		r.compare("expected.rejected", string(b), false)
	}
	for golden, name := range c.Files {
		b, err := os.ReadFile(filepath.Join(r.tmp, name))
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			t.Fatal(err)
		}
		r.compare(golden, string(b), false)
	}
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

func (r *e2eRun) hasExited() bool {
	select {
	case <-r.exited:
		return true
	default:
		return false
	}
}

// checkClients fails the case early and clearly when a client program is
// missing (test.sh installs them).
func (r *e2eRun) checkClients() {
	for _, s := range r.c.Steps {
		if s.Client != "logger" && s.Client != "openssl" {
			continue
		}
		if _, err := exec.LookPath(s.Client); err != nil {
			r.t.Fatalf("this case needs %s (util-linux logger, OpenSSL); ./test.sh installs it: %v", s.Client, err)
		}
	}
}

// makeCerts writes, in the temp dir: ca.pem (the CA that signs both
// sides), server.pem/server.key (for localhost and 127.0.0.1),
// client.pem/client.key (CN "e2e-client", signed by ca.pem) and
// rogue.pem/rogue.key (a client certificate of another CA).
func (r *e2eRun) makeCerts() {
	ca := testcerts.NewCA(r.t, "flowgo e2e CA")
	srv := ca.Server(r.t)
	cli := ca.Client(r.t, "e2e-client")
	rogue := testcerts.NewCA(r.t, "rogue CA").Client(r.t, "rogue-client")
	testcerts.WriteFile(r.t, r.tmp, "ca.pem", ca.CertPEM)
	testcerts.WriteFile(r.t, r.tmp, "server.pem", srv.CertPEM)
	testcerts.WriteFile(r.t, r.tmp, "server.key", srv.KeyPEM)
	testcerts.WriteFile(r.t, r.tmp, "client.pem", cli.CertPEM)
	testcerts.WriteFile(r.t, r.tmp, "client.key", cli.KeyPEM)
	testcerts.WriteFile(r.t, r.tmp, "rogue.pem", rogue.CertPEM)
	testcerts.WriteFile(r.t, r.tmp, "rogue.key", rogue.KeyPEM)
}

// writeConfig copies the case's config into the temp dir with its
// placeholders filled: @TMP@ (the temp dir) and @BUSY_TCP@ (the address of
// a TCP port this test holds open for the whole case).
func (r *e2eRun) writeConfig() string {
	name := r.c.Config
	if name == "" {
		name = "flowgo.toml"
		if !fileExists(filepath.Join(r.dir, name)) && fileExists(filepath.Join(r.dir, "flowgger.toml")) {
			name = "flowgger.toml"
		}
	}
	b, err := os.ReadFile(filepath.Join(r.dir, name))
	if err != nil {
		r.t.Fatal(err)
	}
	src := strings.ReplaceAll(string(b), "@TMP@", r.tmp)
	if strings.Contains(src, "@BUSY_TCP@") {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			r.t.Fatal(err)
		}
		r.t.Cleanup(func() { ln.Close() })
		src = strings.ReplaceAll(src, "@BUSY_TCP@", ln.Addr().String())
	}
	p := filepath.Join(r.tmp, name)
	if err := os.WriteFile(p, []byte(src), 0o644); err != nil {
		r.t.Fatal(err)
	}
	return p
}

var (
	streamListenRE = regexp.MustCompile(`msg=listening .*\btype=(\w+) address=(\S+)`)
	udpListenRE    = regexp.MustCompile(`msg=listening .*\btype=udp address=(\S+)`)
)

// listener waits until flowgo logs that the listener of type typ (tcp,
// tls, udp) is bound, and returns its address.
func (r *e2eRun) listener(typ string) string {
	deadline := time.Now().Add(waitListen)
	for {
		for _, l := range strings.Split(r.stderr.String(), "\n") {
			if m := streamListenRE.FindStringSubmatch(l); m != nil && m[1] == typ {
				return m[2]
			}
			if m := udpListenRE.FindStringSubmatch(l); m != nil && typ == "udp" {
				return m[1]
			}
		}
		if r.hasExited() || time.Now().After(deadline) {
			r.t.Fatalf("flowgo did not log a %s listener\nstderr:\n%s", typ, r.stderr.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func (r *e2eRun) step(n int, s e2eStep) {
	t := r.t
	if s.Client != "" {
		send := r.send(n, s)
		if s.Background {
			r.background.Go(func() {
				if err := send(); err != nil {
					t.Errorf("step %d (background): %v", n, err)
				}
			})
		} else if err := send(); err != nil {
			t.Fatalf("step %d: %v\nflowgo stderr:\n%s", n, err, r.stderr.String())
		}
	}
	if len(s.Rename) > 0 {
		if len(s.Rename) != 2 {
			t.Fatalf("step %d: rename wants [from, to]", n)
		}
		if err := os.Rename(filepath.Join(r.tmp, s.Rename[0]), filepath.Join(r.tmp, s.Rename[1])); err != nil {
			t.Fatalf("step %d: %v", n, err)
		}
	}
	if s.Signal != "" {
		sig := map[string]syscall.Signal{"HUP": syscall.SIGHUP, "TERM": syscall.SIGTERM, "INT": syscall.SIGINT}[s.Signal]
		if sig == 0 {
			t.Fatalf("step %d: unknown signal %q", n, s.Signal)
		}
		r.cmd.Process.Signal(sig)
	}
	if s.Stderr != "" {
		re := regexp.MustCompile(s.Stderr)
		r.poll(n, func() bool { return re.MatchString(r.stderr.String()) }, "stderr to match "+s.Stderr)
	}
	if s.Records > 0 {
		count, what := r.records, "the output"
		if s.RecordsIn != "" {
			what = s.RecordsIn
			count = func() int {
				b, _ := os.ReadFile(filepath.Join(r.tmp, s.RecordsIn))
				return bytes.Count(b, []byte("\n"))
			}
		}
		r.poll(n, func() bool { return count() >= s.Records }, fmt.Sprintf("%d records in %s", s.Records, what))
		if got := count(); got != s.Records {
			t.Fatalf("step %d: %s holds %d records; want %d\n%s", n, what, got, s.Records, r.output())
		}
	}
}

func (r *e2eRun) poll(n int, ok func() bool, what string) {
	deadline := time.Now().Add(waitOutput)
	for !ok() {
		if time.Now().After(deadline) {
			r.t.Fatalf("step %d: waited %v for %s; have %d records\noutput:\n%s\nstderr:\n%s",
				n, waitOutput, what, r.records(), r.output(), r.stderr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// send runs step s's client and returns what went wrong. The listener's
// address is looked up first, on the test's goroutine.
func (r *e2eRun) send(n int, s e2eStep) func() error {
	in := s.Input
	if in == "" {
		in = "input.txt"
	}
	data, err := os.ReadFile(filepath.Join(r.dir, in))
	if err != nil {
		r.t.Fatalf("step %d: %v", n, err)
	}
	args := make([]string, len(s.Args))
	for i, a := range s.Args {
		args[i] = strings.ReplaceAll(a, "@TMP@", r.tmp)
	}
	switch s.Client {
	case "stdin":
		return func() error {
			if _, err := r.stdin.Write(data); err != nil {
				return fmt.Errorf("writing stdin: %w", err)
			}
			return r.stdin.Close()
		}
	case "tcp":
		addr := r.listener(orDefault(s.To, "tcp"))
		return func() error {
			conn, err := net.Dial("tcp", addr)
			if err != nil {
				return err
			}
			if _, err := conn.Write(data); err != nil {
				return err
			}
			return conn.Close()
		}
	case "udp", "udp-hex":
		var datagrams [][]byte
		if s.Client == "udp" {
			for _, l := range strings.SplitAfter(strings.TrimSuffix(string(data), "\n"), "\n") {
				datagrams = append(datagrams, []byte(strings.TrimSuffix(l, "\n")))
			}
		} else if datagrams, err = hexDatagrams(data); err != nil {
			r.t.Fatalf("step %d: %s: %v", n, in, err)
		}
		addr := r.listener(orDefault(s.To, "udp"))
		return func() error {
			conn, err := net.Dial("udp", addr)
			if err != nil {
				return err
			}
			defer conn.Close()
			for _, d := range datagrams {
				if _, err := conn.Write(d); err != nil {
					return err
				}
			}
			return nil
		}
	case "logger":
		to := s.To
		if to == "" {
			to = "tcp"
			if slices.Contains(args, "--udp") || slices.Contains(args, "-d") {
				to = "udp"
			}
		}
		host, port, _ := net.SplitHostPort(r.listener(to))
		return r.client(s, data, "logger", append([]string{"-n", host, "-P", port}, args...)...)
	case "openssl":
		addr := r.listener(orDefault(s.To, "tls"))
		return r.client(s, data, "openssl", append([]string{"s_client", "-connect", addr, "-quiet", "-no_ign_eof"}, args...)...)
	}
	r.t.Fatalf("step %d: unknown client %q", n, s.Client)
	return nil
}

// hexDatagrams reads one datagram a line, in hex; spaces are ignored, and
// empty lines and lines starting with '#' skipped.
func hexDatagrams(data []byte) ([][]byte, error) {
	var out [][]byte
	for i, l := range strings.Split(string(data), "\n") {
		l = strings.ReplaceAll(strings.TrimSpace(l), " ", "")
		if l == "" || strings.HasPrefix(l, "#") {
			continue
		}
		d, err := hex.DecodeString(l)
		if err != nil {
			return nil, fmt.Errorf("line %d: %v", i+1, err)
		}
		out = append(out, d)
	}
	return out, nil
}

func orDefault(v, def string) string {
	if v == "" {
		return def
	}
	return v
}

// client returns a func that runs a client program with data on its stdin.
func (r *e2eRun) client(s e2eStep, data []byte, name string, args ...string) func() error {
	return func() error {
		cmd := exec.Command(name, args...)
		cmd.Stdin = bytes.NewReader(data)
		cmd.Env = append(append(os.Environ(), "TZ=UTC"), s.Env...)
		out, err := cmd.CombinedOutput()
		code := 0
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			code = ee.ExitCode()
		} else if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		if s.ClientExit >= 0 && code != s.ClientExit {
			return fmt.Errorf("%s %s: exit %d; want %d\n%s", name, strings.Join(args, " "), code, s.ClientExit, out)
		}
		return nil
	}
}

// output returns the records: stdout, or the output files concatenated.
func (r *e2eRun) output() string {
	if r.c.Output == "stdout" {
		return r.stdout.String()
	}
	names, _ := filepath.Glob(filepath.Join(r.tmp, r.c.Output))
	slices.Sort(names)
	var b strings.Builder
	for _, n := range names {
		data, _ := os.ReadFile(n)
		b.Write(data)
	}
	return b.String()
}

func (r *e2eRun) records() int { return strings.Count(r.output(), "\n") }

// checkStderr checks that every regexp of expected.err matches stderr, and
// that every line of stderr that is not an INFO log line (warnings, errors,
// plain text) is matched by one of them: nothing surprising goes unseen.
func (r *e2eRun) checkStderr(cfg string) {
	stderr := r.stderr.String()
	var res []*regexp.Regexp
	if b, err := os.ReadFile(filepath.Join(r.dir, "expected.err")); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if strings.TrimSpace(l) == "" || strings.HasPrefix(l, "#") {
				continue
			}
			l = strings.ReplaceAll(l, "@CONFIG@", regexp.QuoteMeta(cfg))
			l = strings.ReplaceAll(l, "@TMP@", regexp.QuoteMeta(r.tmp))
			re, err := regexp.Compile("(?m)" + l)
			if err != nil {
				r.t.Fatalf("expected.err: %v", err)
			}
			res = append(res, re)
			if !re.MatchString(stderr) {
				r.t.Errorf("stderr does not match %s\nstderr:\n%s", l, stderr)
			}
		}
	}
	for _, l := range strings.Split(strings.TrimSuffix(stderr, "\n"), "\n") {
		if l == "" || strings.HasPrefix(l, "time=") && strings.Contains(l, " level=INFO ") {
			continue
		}
		if !slices.ContainsFunc(res, func(re *regexp.Regexp) bool { return re.MatchString(l) }) {
			r.t.Errorf("unexpected stderr line (add a regexp to expected.err if it is right):\n%s", l)
		}
	}
}

// compare compares got, normalised, with the golden file, or rewrites the
// golden file with -update. A golden file that does not exist is only an
// error when required.
func (r *e2eRun) compare(golden, got string, required bool) {
	got = r.normalize(got)
	p := filepath.Join(r.dir, golden)
	if *update {
		if err := os.WriteFile(p, []byte(got), 0o644); err != nil {
			r.t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(p)
	if err != nil {
		if required || got != "" {
			r.t.Errorf("%s: %v (run go test -run TestE2ECases -update to create it)\ngot:\n%s", golden, err, got)
		}
		return
	}
	if got != string(want) {
		r.t.Errorf("%s differs (-update rewrites it)\n%s", golden, lineDiff(string(want), got))
	}
}

// lineDiff shows the first differing line of want and got, and both in full.
func lineDiff(want, got string) string {
	w, g := strings.Split(want, "\n"), strings.Split(got, "\n")
	for i := 0; i < max(len(w), len(g)); i++ {
		var wl, gl string
		if i < len(w) {
			wl = w[i]
		}
		if i < len(g) {
			gl = g[i]
		}
		if wl != gl {
			return fmt.Sprintf("first difference at line %d:\n got: %q\nwant: %q\n--- got:\n%s--- want:\n%s", i+1, gl, wl, got, want)
		}
	}
	return fmt.Sprintf("--- got:\n%s--- want:\n%s", got, want)
}

var (
	epochRE   = regexp.MustCompile(`\b1\d{9}(?:\.\d{1,9})?\b`)
	rfc3339RE = regexp.MustCompile(`\b\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d{1,9})?(?:Z|[+-]\d\d:\d\d)`)
	rfc3164RE = regexp.MustCompile(`\b(?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) [ \d]\d \d\d:\d\d:\d\d\b`)
	peerRE    = regexp.MustCompile(`\b127\.0\.0\.1:\d+\b`)
)

// normalize rewrites what legitimately varies from run to run; see
// README.md for each normalisation.
func (r *e2eRun) normalize(s string) string {
	s = strings.ReplaceAll(s, r.tmp, "@TMP@")
	// Stamps are "now" when they fall in the case's run, rounded out to
	// whole seconds (RFC 3164 stamps have no fraction).
	lo := r.start.Add(-2 * time.Second).Truncate(time.Second)
	hi := time.Now().Add(2 * time.Second)
	now := func(t time.Time) bool { return !t.Before(lo) && !t.After(hi) }
	zones := []*time.Location{time.UTC}
	for _, n := range r.c.Normalize {
		if z, ok := strings.CutPrefix(n, "now_in:"); ok {
			loc, err := time.LoadLocation(z)
			if err != nil {
				r.t.Fatalf("normalize %q: %v", n, err)
			}
			zones = append(zones, loc)
		}
	}
	for _, n := range r.c.Normalize {
		switch {
		case n == "now":
			s = epochRE.ReplaceAllStringFunc(s, func(m string) string {
				f, err := strconv.ParseFloat(m, 64)
				sec, frac := math.Modf(f)
				if err == nil && now(time.Unix(int64(sec), int64(frac*1e9))) {
					return "<NOW>"
				}
				return m
			})
			s = rfc3339RE.ReplaceAllStringFunc(s, func(m string) string {
				if t, err := time.Parse(time.RFC3339Nano, m); err == nil && now(t) {
					return "<NOW>"
				}
				return m
			})
			s = rfc3164RE.ReplaceAllStringFunc(s, func(m string) string {
				for _, z := range zones {
					for _, y := range []int{r.start.Year(), r.start.Year() - 1} {
						if t, err := time.ParseInLocation("2006 Jan _2 15:04:05", fmt.Sprint(y, " ", m), z); err == nil && now(t) {
							return "<NOW>"
						}
					}
				}
				return m
			})
		case strings.HasPrefix(n, "now_in:"):
		case n == "hostname":
			h, err := os.Hostname()
			if err != nil {
				r.t.Fatal(err)
			}
			s = regexp.MustCompile(`\b`+regexp.QuoteMeta(h)+`\b`).ReplaceAllString(s, "<HOSTNAME>")
		case n == "peer_port":
			s = peerRE.ReplaceAllString(s, "127.0.0.1:<PORT>")
		case n == "year":
			y := strconv.Itoa(time.Now().Year())
			s = regexp.MustCompile(`\b`+y+`-(\d\d-\d\dT)`).ReplaceAllString(s, "<YEAR>-$1")
		default:
			r.t.Fatalf("unknown normalisation %q", n)
		}
	}
	for _, rp := range r.c.Replace {
		s = regexp.MustCompile(rp.Pattern).ReplaceAllString(s, rp.With)
	}
	if r.c.Sort && s != "" {
		lines := strings.Split(strings.TrimSuffix(s, "\n"), "\n")
		slices.Sort(lines)
		s = strings.Join(lines, "\n") + "\n"
	}
	return s
}
