package dist

import (
	"bufio"
	"bytes"
	"debug/elf"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/flowgo/flowgo/internal/syncbuf"
)

// The tests use the flowgo binary that the Dockerfile's build command makes
// (TestMain runs that command), so the unit, the logrotate snippet and the
// sidecar are checked against the binary the image would hold.

const testVersion = "v9.9.9-disttest"

var (
	flowgoBin string // built by TestMain
	buildErr  error  // why it could not be built
	repoRoot  string
)

func TestMain(m *testing.M) {
	root, err := filepath.Abs("..")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	repoRoot = root
	dir, err := os.MkdirTemp("", "flowgo-dist-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	flowgoBin, buildErr = buildLikeDockerfile(dir)
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// binary returns the flowgo binary, or fails the test when it could not be
// built.
func binary(t *testing.T) string {
	t.Helper()
	if buildErr != nil {
		t.Fatalf("building flowgo with the Dockerfile's command: %v", buildErr)
	}
	return flowgoBin
}

// need returns the path of tool, failing the test with the package that
// provides it when it is missing: these checks are the point of the tests,
// so a missing tool is a failure, not a skip.
func need(t *testing.T, tool, pkg string) string {
	t.Helper()
	p, err := exec.LookPath(tool)
	if err != nil {
		t.Fatalf("%s is not installed; these checks need it: apt-get install %s", tool, pkg)
	}
	return p
}

// instruction is one Dockerfile instruction, continuation lines joined.
type instruction struct {
	Cmd  string // upper case: FROM, RUN, ...
	Args string
	Line int
}

func parseDockerfile(path string) ([]instruction, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var out []instruction
	var cur strings.Builder
	start := 0
	for i, line := range strings.Split(string(data), "\n") {
		trimmed := strings.TrimSpace(line)
		if cur.Len() == 0 && (trimmed == "" || strings.HasPrefix(trimmed, "#")) {
			continue
		}
		if cur.Len() == 0 {
			start = i + 1
		}
		if cont, ok := strings.CutSuffix(trimmed, `\`); ok {
			cur.WriteString(cont)
			cur.WriteByte(' ')
			continue
		}
		cur.WriteString(trimmed)
		cmd, args, _ := strings.Cut(cur.String(), " ")
		out = append(out, instruction{Cmd: strings.ToUpper(cmd), Args: strings.Join(strings.Fields(args), " "), Line: start})
		cur.Reset()
	}
	if cur.Len() > 0 {
		return nil, fmt.Errorf("%s: the last instruction ends with a line continuation", path)
	}
	return out, nil
}

// buildCommand returns the shell text of the Dockerfile's RUN instruction
// that runs `go build`, without its --mount options.
func buildCommand(ins []instruction) (string, error) {
	for _, in := range ins {
		if in.Cmd != "RUN" || !strings.Contains(in.Args, "go build") {
			continue
		}
		fields := strings.Fields(in.Args)
		for len(fields) > 0 && strings.HasPrefix(fields[0], "--") {
			fields = fields[1:]
		}
		return strings.Join(fields, " "), nil
	}
	return "", errors.New("no RUN instruction runs go build")
}

// buildLikeDockerfile runs the Dockerfile's go build command in the
// repository, with the build arguments set as Docker would set them, and
// returns the binary.
func buildLikeDockerfile(dir string) (string, error) {
	ins, err := parseDockerfile("Dockerfile")
	if err != nil {
		return "", err
	}
	cmdText, err := buildCommand(ins)
	if err != nil {
		return "", err
	}
	const out = "-o /out/flowgo"
	if !strings.Contains(cmdText, out) {
		return "", fmt.Errorf("the build command %q does not write %s", cmdText, out)
	}
	bin := filepath.Join(dir, "flowgo")
	cmd := exec.Command("sh", "-c", strings.Replace(cmdText, out, "-o "+bin, 1))
	cmd.Dir = repoRoot
	cmd.Env = append(os.Environ(), "TARGETOS="+runtime.GOOS, "TARGETARCH="+runtime.GOARCH, "VERSION="+testVersion)
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("%s: %v\n%s", cmdText, err, b)
	}
	return bin, nil
}

func TestDockerfile(t *testing.T) {
	ins, err := parseDockerfile("Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	var froms, copies []instruction
	last := map[string]string{} // instruction -> arguments of the last one
	for _, in := range ins {
		switch in.Cmd {
		case "FROM":
			froms = append(froms, in)
		case "COPY":
			copies = append(copies, in)
		}
		last[in.Cmd] = in.Args
	}

	t.Run("the build stage is golang:1.26 and the image is distroless static, nonroot", func(t *testing.T) {
		if len(froms) != 2 {
			t.Fatalf("got %d FROM lines; want 2 (build, image)", len(froms))
		}
		if got := froms[0].Args; !regexp.MustCompile(`(^|\s)golang:1\.26 AS build$`).MatchString(got) {
			t.Errorf("build stage: got FROM %s; want golang:1.26 AS build", got)
		}
		if got, want := froms[1].Args, "gcr.io/distroless/static:nonroot"; got != want {
			t.Errorf("image: got FROM %s; want %s", got, want)
		}
	})

	t.Run("the go build command disables cgo, trims paths, strips symbols and sets the version", func(t *testing.T) {
		cmd, err := buildCommand(ins)
		if err != nil {
			t.Fatal(err)
		}
		for _, want := range []string{"CGO_ENABLED=0", "-trimpath", `-ldflags "-s -w -X main.version=${VERSION}"`, "./cmd/flowgo"} {
			if !strings.Contains(cmd, want) {
				t.Errorf("build command %q lacks %s", cmd, want)
			}
		}
	})

	t.Run("the binary is static, stripped and holds no build-machine paths", func(t *testing.T) {
		bin := binary(t)
		f, err := elf.Open(bin)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		for _, p := range f.Progs {
			if p.Type == elf.PT_INTERP || p.Type == elf.PT_DYNAMIC {
				t.Errorf("program header %v: the binary is dynamically linked", p.Type)
			}
		}
		if libs, _ := f.ImportedLibraries(); len(libs) > 0 {
			t.Errorf("imported libraries: got %v; want none", libs)
		}
		if f.Section(".symtab") != nil {
			t.Error("the binary has a symbol table; -ldflags -s should drop it")
		}
		data, err := os.ReadFile(bin)
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Contains(data, []byte(repoRoot)) {
			t.Errorf("the binary contains the build directory %s; -trimpath should remove it", repoRoot)
		}
	})

	t.Run("flowgo version prints the version given at build time", func(t *testing.T) {
		out, err := exec.Command(binary(t), "version").CombinedOutput()
		if err != nil {
			t.Fatalf("flowgo version: %v\n%s", err, out)
		}
		if !strings.HasPrefix(string(out), "flowgo "+testVersion+" ") {
			t.Errorf("flowgo version: got %q; want it to start with %q", out, "flowgo "+testVersion)
		}
	})

	t.Run("the image runs flowgo as the nonroot user with the shipped config", func(t *testing.T) {
		if got, want := last["USER"], "65532:65532"; got != want {
			t.Errorf("USER: got %q; want %q (distroless nonroot)", got, want)
		}
		if got, want := last["ENTRYPOINT"], `["/usr/local/bin/flowgo"]`; got != want {
			t.Errorf("ENTRYPOINT: got %s; want %s", got, want)
		}
		if got, want := last["CMD"], `["run", "-c", "/etc/flowgo/flowgo.toml"]`; got != want {
			t.Errorf("CMD: got %s; want %s", got, want)
		}
		if !slices.ContainsFunc(copies, func(in instruction) bool { return in.Args == "flowgo.toml /etc/flowgo/flowgo.toml" }) {
			t.Error("no COPY flowgo.toml /etc/flowgo/flowgo.toml")
		}
		if !slices.ContainsFunc(copies, func(in instruction) bool {
			return strings.Contains(in.Args, "--chown=65532:65532") && strings.HasSuffix(in.Args, " /var/lib/flowgo")
		}) {
			t.Error("no COPY that makes /var/lib/flowgo the nonroot user's")
		}
	})

	t.Run("EXPOSE lists syslog, syslog over TLS and metrics", func(t *testing.T) {
		got := strings.Fields(last["EXPOSE"])
		for _, want := range []string{"514/tcp", "514/udp", "6514/tcp", "9281/tcp"} {
			if !slices.Contains(got, want) {
				t.Errorf("EXPOSE %v lacks %s", got, want)
			}
		}
	})

	t.Run("the shipped flowgo.toml, the image's default config, passes flowgo check", func(t *testing.T) {
		out, err := exec.Command(binary(t), "check", "-c", filepath.Join(repoRoot, "flowgo.toml")).CombinedOutput()
		if err != nil {
			t.Errorf("flowgo check flowgo.toml: %v\n%s", err, out)
		}
	})

	t.Run("every file the build reads is in the context", func(t *testing.T) {
		needed := []string{"go.mod", "go.sum"}
		for _, in := range copies {
			if strings.HasPrefix(in.Args, "--from=") {
				continue
			}
			f := strings.Fields(in.Args)
			for _, src := range f[:len(f)-1] {
				if src != "." && !strings.HasPrefix(src, "--") {
					needed = append(needed, src)
				}
			}
		}
		// The Go files and embedded files of every package of the module
		// that cmd/flowgo is built from.
		cmd := exec.Command("go", "list", "-deps", "-f",
			`{{if not .Standard}}{{$d := .Dir}}{{range .GoFiles}}{{$d}}/{{.}}{{"\n"}}{{end}}{{range .EmbedFiles}}{{$d}}/{{.}}{{"\n"}}{{end}}{{end}}`,
			"./cmd/flowgo")
		cmd.Dir = repoRoot
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("go list: %v", err)
		}
		for _, p := range strings.Fields(string(out)) {
			if rel, err := filepath.Rel(repoRoot, p); err == nil && !strings.HasPrefix(rel, "..") {
				needed = append(needed, filepath.ToSlash(rel))
			}
		}
		if len(needed) < 10 {
			t.Fatalf("only %d files found to check: %v", len(needed), needed)
		}
		patterns, err := readIgnore("Dockerfile.dockerignore")
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range needed {
			if _, err := os.Stat(filepath.Join(repoRoot, p)); err != nil {
				t.Errorf("COPY source %s: %v", p, err)
			}
			if pat, ok := ignored(patterns, p); ok {
				t.Errorf("Dockerfile.dockerignore pattern %q excludes %s, which the build needs", pat, p)
			}
		}
	})
}

// readIgnore reads a .dockerignore file's patterns. Exceptions (!) are not
// supported: the file does not use them, and the test says so if it does.
func readIgnore(path string) ([]string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, l := range strings.Split(string(data), "\n") {
		l = strings.TrimSpace(l)
		if l == "" || strings.HasPrefix(l, "#") {
			continue
		}
		if strings.HasPrefix(l, "!") {
			return nil, fmt.Errorf("%s: exception %q: this test does not implement them", path, l)
		}
		out = append(out, strings.TrimPrefix(filepath.ToSlash(filepath.Clean(l)), "/"))
	}
	return out, nil
}

// ignored reports the pattern that excludes path, Docker's way: a pattern
// is anchored at the context root, * and ? stay within a path element, **
// matches any number of elements, and excluding a directory excludes what
// is in it.
func ignored(patterns []string, path string) (string, bool) {
	for _, pat := range patterns {
		var re strings.Builder
		re.WriteString("^")
		for i := 0; i < len(pat); i++ {
			switch c := pat[i]; {
			case strings.HasPrefix(pat[i:], "**/"):
				re.WriteString("(.*/)?")
				i += 2
			case strings.HasPrefix(pat[i:], "**"):
				re.WriteString(".*")
				i++
			case c == '*':
				re.WriteString("[^/]*")
			case c == '?':
				re.WriteString("[^/]")
			default:
				re.WriteString(regexp.QuoteMeta(string(c)))
			}
		}
		re.WriteString("(/.*)?$")
		if regexp.MustCompile(re.String()).MatchString(path) {
			return pat, true
		}
	}
	return "", false
}

func TestIgnoredMatchesDockerRules(t *testing.T) {
	tests := []struct {
		name, pattern, path string
		want                bool
	}{
		{"a name excludes the file at the root", "flowgo", "flowgo", true},
		{"a name does not reach into subdirectories", "flowgo", "cmd/flowgo/main.go", false},
		{"a name is not a prefix match", "flowgo", "flowgo.toml", false},
		{"a directory excludes its contents", "bench", "bench/out/x", true},
		{"**/ matches at the root", "**/testdata", "testdata/x.log", true},
		{"**/ matches at any depth", "**/*_test.go", "input/tcp_test.go", true},
		{"* stays within one element", "*.go", "input/tcp.go", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, got := ignored([]string{tt.pattern}, tt.path); got != tt.want {
				t.Errorf("ignored(%q, %q): got %v; want %v", tt.pattern, tt.path, got, tt.want)
			}
		})
	}
}

// --- running flowgo ---

// process is a started command whose exit is awaited in the background.
type process struct {
	cmd    *exec.Cmd
	stderr *syncbuf.Buffer
	done   chan struct{}
	err    error
}

func start(t *testing.T, argv ...string) *process {
	t.Helper()
	p := &process{cmd: exec.Command(argv[0], argv[1:]...), stderr: &syncbuf.Buffer{}, done: make(chan struct{})}
	p.cmd.Stdout = p.stderr
	p.cmd.Stderr = p.stderr
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		p.err = p.cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
			<-p.done
		}
	})
	return p
}

// wait waits for the process to exit and returns its exit code.
func (p *process) wait(t *testing.T, timeout time.Duration) int {
	t.Helper()
	select {
	case <-p.done:
	case <-time.After(timeout):
		t.Fatalf("%s still running after %v; output:\n%s", p.cmd.Path, timeout, p.stderr)
	}
	var ee *exec.ExitError
	if errors.As(p.err, &ee) {
		return ee.ExitCode()
	}
	if p.err != nil {
		t.Fatal(p.err)
	}
	return 0
}

func (p *process) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// waitFor polls cond until it holds, failing the test after timeout.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// freePort returns a loopback port that was free a moment ago.
func freePort(t *testing.T, network string) int {
	t.Helper()
	switch network {
	case "udp":
		c, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		return c.LocalAddr().(*net.UDPAddr).Port
	default:
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		return l.Addr().(*net.TCPAddr).Port
	}
}

// waitListening waits until addr accepts TCP connections or p exits.
func waitListening(t *testing.T, p *process, addr string) {
	t.Helper()
	waitFor(t, 10*time.Second, "flowgo to listen on "+addr, func() bool {
		if p.exited() {
			t.Fatalf("flowgo exited before listening:\n%s", p.stderr)
		}
		c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err != nil {
			return false
		}
		c.Close()
		return true
	})
}

// sendTCP writes frames on one connection and closes it.
func sendTCP(t *testing.T, addr string, frames []string) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	w := bufio.NewWriter(c)
	for _, f := range frames {
		w.WriteString(f)
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
}

// stats reads the counters flowgo logs when a pipeline stops (the last
// line with received= and sent=).
func stats(t *testing.T, log string) map[string]string {
	t.Helper()
	var line string
	for _, l := range strings.Split(log, "\n") {
		if strings.Contains(l, " received=") && strings.Contains(l, " sent=") {
			line = l
		}
	}
	if line == "" {
		t.Fatalf("no line with the counters (received=, sent=) in flowgo's log:\n%s", log)
	}
	out := map[string]string{}
	for _, f := range strings.Fields(line) {
		if k, v, ok := strings.Cut(f, "="); ok {
			out[k] = v
		}
	}
	return out
}

// waitReloaded waits for flowgo to log the outcome of a SIGHUP, and fails
// if the reload failed.
func waitReloaded(t *testing.T, p *process) {
	t.Helper()
	var line string
	waitFor(t, 5*time.Second, "flowgo to log its SIGHUP reload", func() bool {
		log := p.stderr.String()
		i := strings.Index(log, `msg="SIGHUP:`)
		if i < 0 {
			return false
		}
		line, _, _ = strings.Cut(log[i:], "\n")
		return true
	})
	if strings.Contains(line, "failed") {
		t.Fatalf("SIGHUP: %s", line)
	}
}

// writeFile writes data to name in dir and returns its path.
func writeFile(t *testing.T, dir, name, data string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// replaceOnce replaces old by new in s, failing when old is not there: the
// tests adapt the shipped files to a test machine this way, and must notice
// when a file no longer has what they replace.
func replaceOnce(t *testing.T, what, s, old, new string) string {
	t.Helper()
	if !strings.Contains(s, old) {
		t.Fatalf("%s: %q not found", what, old)
	}
	return strings.ReplaceAll(s, old, new)
}
