package dist

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/flowgo/flowgo/input"
	"github.com/flowgo/flowgo/internal/testcerts"
	"github.com/flowgo/flowgo/pipeline"
)

// unit is a parsed systemd unit file: section -> key -> values in order.
type unit map[string]map[string][]string

func parseUnit(t *testing.T, path string) unit {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	u := unit{}
	section := ""
	for i, line := range strings.Split(string(data), "\n") {
		line = strings.TrimSpace(line)
		switch {
		case line == "" || line[0] == '#' || line[0] == ';':
		case line[0] == '[' && line[len(line)-1] == ']':
			section = line[1 : len(line)-1]
			if u[section] == nil {
				u[section] = map[string][]string{}
			}
		case strings.HasSuffix(line, `\`):
			t.Fatalf("%s:%d: line continuations are not used in this unit", path, i+1)
		default:
			k, v, ok := strings.Cut(line, "=")
			if !ok || section == "" {
				t.Fatalf("%s:%d: not a key=value line in a section: %q", path, i+1, line)
			}
			u[section][k] = append(u[section][k], v)
		}
	}
	return u
}

// one returns the single value of key in section.
func (u unit) one(t *testing.T, section, key string) string {
	t.Helper()
	v := u[section][key]
	if len(v) != 1 {
		t.Fatalf("[%s] %s: got %d values %q; want one", section, key, len(v), v)
	}
	return v[0]
}

// seconds parses a systemd time span made of one number and an optional
// s, min or ms unit (what this unit uses).
func seconds(t *testing.T, span string) time.Duration {
	t.Helper()
	m := regexp.MustCompile(`^(\d+)(ms|s|min)?$`).FindStringSubmatch(span)
	if m == nil {
		t.Fatalf("time span %q: want a number with s, min or ms", span)
	}
	n, _ := strconv.Atoi(m[1])
	switch m[2] {
	case "ms":
		return time.Duration(n) * time.Millisecond
	case "min":
		return time.Duration(n) * time.Minute
	}
	return time.Duration(n) * time.Second
}

func TestUnitDirectives(t *testing.T) {
	u := parseUnit(t, "flowgo.service")
	tests := []struct {
		name, section, key string
		want               []string
	}{
		{"it runs as a dynamic user", "Service", "DynamicUser", []string{"yes"}},
		{"its bounding set holds CAP_NET_BIND_SERVICE only", "Service", "CapabilityBoundingSet", []string{"CAP_NET_BIND_SERVICE"}},
		{"it is given CAP_NET_BIND_SERVICE as an ambient capability", "Service", "AmbientCapabilities", []string{"CAP_NET_BIND_SERVICE"}},
		{"it cannot gain privileges", "Service", "NoNewPrivileges", []string{"yes"}},
		{"the whole file system is read-only", "Service", "ProtectSystem", []string{"strict"}},
		{"its state directory is /var/lib/flowgo", "Service", "StateDirectory", []string{"flowgo"}},
		{"its logs directory is /var/log/flowgo", "Service", "LogsDirectory", []string{"flowgo"}},
		{"its configuration directory is /etc/flowgo", "Service", "ConfigurationDirectory", []string{"flowgo"}},
		{"it starts in its state directory", "Service", "WorkingDirectory", []string{"/var/lib/flowgo"}},
		{"files it creates are its own only", "Service", "UMask", []string{"0077"}},
		{"home directories are hidden", "Service", "ProtectHome", []string{"yes"}},
		{"it has a private /tmp", "Service", "PrivateTmp", []string{"yes"}},
		{"it has no devices", "Service", "PrivateDevices", []string{"yes"}},
		{"its mounts are private", "Service", "PrivateMounts", []string{"yes"}},
		{"other processes are invisible", "Service", "ProtectProc", []string{"invisible"}},
		{"kernel tunables are read-only", "Service", "ProtectKernelTunables", []string{"yes"}},
		{"it cannot load kernel modules", "Service", "ProtectKernelModules", []string{"yes"}},
		{"it cannot read the kernel log", "Service", "ProtectKernelLogs", []string{"yes"}},
		{"control groups are read-only", "Service", "ProtectControlGroups", []string{"yes"}},
		{"it cannot set the clock", "Service", "ProtectClock", []string{"yes"}},
		{"it cannot set the host name", "Service", "ProtectHostname", []string{"yes"}},
		{"it opens IPv4, IPv6 and Unix sockets only", "Service", "RestrictAddressFamilies", []string{"AF_INET AF_INET6 AF_UNIX"}},
		{"it cannot create namespaces", "Service", "RestrictNamespaces", []string{"yes"}},
		{"it cannot change its execution domain", "Service", "LockPersonality", []string{"yes"}},
		{"it cannot map memory writable and executable", "Service", "MemoryDenyWriteExecute", []string{"yes"}},
		{"it cannot use real-time scheduling", "Service", "RestrictRealtime", []string{"yes"}},
		{"it cannot create set-user-ID files", "Service", "RestrictSUIDSGID", []string{"yes"}},
		{"it makes native system calls only", "Service", "SystemCallArchitectures", []string{"native"}},
		{"its system calls are a service's, without privileged or resource calls", "Service", "SystemCallFilter",
			[]string{"@system-service", "~@privileged @resources"}},
		{"a filtered system call fails instead of killing it", "Service", "SystemCallErrorNumber", []string{"EPERM"}},
		{"reload sends SIGHUP", "Service", "ExecReload", []string{"/bin/kill -HUP $MAINPID"}},
		{"stop sends SIGTERM, which drains", "Service", "KillSignal", []string{"SIGTERM"}},
		{"it restarts when it fails", "Service", "Restart", []string{"on-failure"}},
		{"it does not restart on a config error (exit 2)", "Service", "RestartPreventExitStatus", []string{"2"}},
		{"it is started once exec succeeded", "Service", "Type", []string{"exec"}},
		{"it starts at boot", "Install", "WantedBy", []string{"multi-user.target"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := u[tt.section][tt.key]; !slices.Equal(got, tt.want) {
				t.Errorf("[%s] %s: got %q; want %q", tt.section, tt.key, got, tt.want)
			}
		})
	}

	t.Run("systemd waits longer than flowgo's default shutdown timeout before SIGKILL", func(t *testing.T) {
		got := seconds(t, u.one(t, "Service", "TimeoutStopSec"))
		if least := pipeline.DefaultShutdownTimeout + 10*time.Second; got < least {
			t.Errorf("TimeoutStopSec: got %v; want at least %v (shutdown_timeout %v and 10s to exit)", got, least, pipeline.DefaultShutdownTimeout)
		}
	})
	t.Run("the file limit fits a tcp and a tls input at their connection limits", func(t *testing.T) {
		got, err := strconv.Atoi(u.one(t, "Service", "LimitNOFILE"))
		if err != nil {
			t.Fatal(err)
		}
		if least := 2*input.DefaultMaxConnections + 1024; got < least {
			t.Errorf("LimitNOFILE: got %d; want at least %d", got, least)
		}
	})
	t.Run("ExecStartPre checks the config that ExecStart runs", func(t *testing.T) {
		pre := strings.Fields(u.one(t, "Service", "ExecStartPre"))
		run := strings.Fields(u.one(t, "Service", "ExecStart"))
		if len(pre) != 4 || len(run) != 4 || pre[1] != "check" || run[1] != "run" || pre[2] != "-c" || run[2] != "-c" {
			t.Fatalf("got ExecStartPre=%q ExecStart=%q; want BIN check -c FILE and BIN run -c FILE", pre, run)
		}
		if pre[0] != run[0] || pre[3] != run[3] {
			t.Errorf("ExecStartPre runs %s on %s, ExecStart %s on %s; want the same binary and file", pre[0], pre[3], run[0], run[3])
		}
		if want := "/etc/" + u.one(t, "Service", "ConfigurationDirectory") + "/"; !strings.HasPrefix(run[3], want) {
			t.Errorf("config %s is not in the ConfigurationDirectory %s", run[3], want)
		}
	})
}

// testUnit copies the unit to a temporary directory with its binary path
// replaced by the test binary, which systemd-analyze verify requires to
// exist, and returns the copy's path.
func testUnit(t *testing.T) string {
	t.Helper()
	data, err := os.ReadFile("flowgo.service")
	if err != nil {
		t.Fatal(err)
	}
	s := replaceOnce(t, "flowgo.service", string(data), "/usr/local/bin/flowgo", binary(t))
	return writeFile(t, t.TempDir(), "flowgo.service", s)
}

func TestUnitPassesSystemdAnalyzeVerify(t *testing.T) {
	sa := need(t, "systemd-analyze", "systemd")
	out, err := exec.Command(sa, "verify", testUnit(t)).CombinedOutput()
	// verify exits 0 on unknown keys and bad values (it only warns), so
	// any output is a failure too.
	if err != nil || len(out) > 0 {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}
}

func TestUnitExposureIsBelow2(t *testing.T) {
	sa := need(t, "systemd-analyze", "systemd")
	// --threshold is in tenths: 19 fails anything above 1.9.
	out, err := exec.Command(sa, "security", "--offline=yes", "--threshold=19", testUnit(t)).CombinedOutput()
	m := regexp.MustCompile(`Overall exposure level for flowgo\.service: (\d+\.\d)`).FindSubmatch(out)
	if m == nil {
		t.Fatalf("no overall exposure level in systemd-analyze security output (%v):\n%s", err, out)
	}
	score, _ := strconv.ParseFloat(string(m[1]), 64)
	t.Logf("systemd-analyze security --offline=yes: exposure %.1f", score)
	if err != nil || score >= 2.0 {
		t.Errorf("exposure %.1f (%v); want below 2.0:\n%s", score, err, out)
	}
}

// syscallGroups expands systemd's named system call groups (@system-service
// and the groups it includes) into sets of system call names, as this
// systemd version defines them.
func syscallGroups(t *testing.T, sa string) map[string][]string {
	t.Helper()
	out, err := exec.Command(sa, "syscall-filter").Output()
	if err != nil {
		t.Fatalf("systemd-analyze syscall-filter: %v", err)
	}
	groups := map[string][]string{}
	cur := ""
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.TrimSpace(line)
		switch {
		case f == "" || strings.HasPrefix(f, "#"):
		case !strings.HasPrefix(line, " ") && strings.HasPrefix(f, "@"):
			cur = f
		case cur != "" && strings.HasPrefix(line, " "):
			groups[cur] = append(groups[cur], f)
		}
	}
	return groups
}

func expand(groups map[string][]string, names []string, into map[string]bool) {
	for _, n := range names {
		if strings.HasPrefix(n, "@") {
			if _, ok := groups[n]; !ok && n != "@known" {
				panic("unknown system call group " + n)
			}
			expand(groups, groups[n], into)
		} else {
			into[n] = true
		}
	}
}

// allowedSyscalls applies the unit's SystemCallFilter lines the way systemd
// does: the first allow list sets the calls, later ~ lines remove from it.
func allowedSyscalls(t *testing.T, sa string, filters []string) map[string]bool {
	t.Helper()
	groups := syscallGroups(t, sa)
	allowed := map[string]bool{}
	for i, f := range filters {
		deny, ok := strings.CutPrefix(f, "~")
		if !ok {
			expand(groups, strings.Fields(f), allowed)
			continue
		}
		if i == 0 {
			t.Fatal("the first SystemCallFilter is a deny list; this check expects an allow list")
		}
		removed := map[string]bool{}
		expand(groups, strings.Fields(deny), removed)
		for n := range removed {
			delete(allowed, n)
		}
	}
	if len(allowed) < 100 {
		t.Fatalf("only %d system calls allowed: the groups were not read", len(allowed))
	}
	return allowed
}

// sandbox holds what the unit allows, to check an strace log against.
type sandbox struct {
	strace, bin string
	allowed     map[string]bool
	families    []string
}

func newSandbox(t *testing.T) *sandbox {
	t.Helper()
	sa := need(t, "systemd-analyze", "systemd")
	sb := &sandbox{strace: need(t, "strace", "strace"), bin: binary(t)}
	u := parseUnit(t, "flowgo.service")
	sb.allowed = allowedSyscalls(t, sa, u["Service"]["SystemCallFilter"])
	sb.families = strings.Fields(u.one(t, "Service", "RestrictAddressFamilies"))
	return sb
}

// run runs flowgo with cfg under strace, lets drive send traffic and wait
// for its delivery, reloads (SIGHUP) and stops (SIGTERM) flowgo, then
// checks the trace; dataDir stands for the unit's writable directories.
// It returns the counters flowgo logged when it stopped.
func (sb *sandbox) run(t *testing.T, dataDir, cfg string, drive func(p *process)) map[string]string {
	t.Helper()
	trace := filepath.Join(t.TempDir(), "trace")
	p := start(t, sb.strace, "-f", "-qq", "-o", trace, sb.bin, "run", "-c", cfg)
	drive(p)

	// Signal flowgo, not strace: flowgo's pid is on the trace's first line.
	pid := tracedPid(t, trace)
	if err := syscall.Kill(pid, syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitReloaded(t, p)
	if err := syscall.Kill(pid, syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if code := p.wait(t, 15*time.Second); code != 0 {
		t.Fatalf("flowgo exited with %d; want 0:\n%s", code, p.stderr)
	}

	calls, sockets, writes, violations := readTrace(t, trace, dataDir)
	var denied []string
	for c := range calls {
		if !sb.allowed[c] {
			denied = append(denied, c)
		}
	}
	slices.Sort(denied)
	if len(denied) > 0 {
		t.Errorf("flowgo made system calls the unit's SystemCallFilter denies: %v", denied)
	}
	if len(calls) < 20 {
		t.Errorf("only %d distinct system calls traced: the trace was not read", len(calls))
	}
	for f := range sockets {
		if !slices.Contains(sb.families, f) {
			t.Errorf("flowgo opened an %s socket; RestrictAddressFamilies allows %v", f, sb.families)
		}
	}
	for _, v := range violations {
		t.Error(v)
	}
	// At least the two dead-letter files every config here has.
	if writes < 2 {
		t.Errorf("only %d file writes traced: the trace was not read", writes)
	}
	t.Logf("traced %d distinct system calls, %d file writes, socket families %v", len(calls), writes, keys(sockets))
	return stats(t, p.stderr.String())
}

// TestUnitSandboxAllowsFlowgo runs flowgo under strace doing what a service
// does, and checks every system call against the unit's filter, every
// socket against RestrictAddressFamilies, that no memory is mapped
// executable (MemoryDenyWriteExecute), and that it writes only in its data
// directories (ProtectSystem=strict). systemd itself cannot run here, so
// this is how the unit's sandbox is shown not to break flowgo.
func TestUnitSandboxAllowsFlowgo(t *testing.T) {
	sb := newSandbox(t)

	t.Run("tcp and udp inputs, a rotated file output, dead-letter files, metrics scraped", func(t *testing.T) {
		dir := t.TempDir()
		state, logs := filepath.Join(dir, "lib"), filepath.Join(dir, "log") // StateDirectory, LogsDirectory
		for _, d := range []string{state, logs} {
			if err := os.Mkdir(d, 0o750); err != nil {
				t.Fatal(err)
			}
		}
		tcpAddr := fmt.Sprintf("127.0.0.1:%d", freePort(t, "tcp"))
		udpAddr := fmt.Sprintf("127.0.0.1:%d", freePort(t, "udp"))
		metricsAddr := fmt.Sprintf("127.0.0.1:%d", freePort(t, "tcp"))
		cfg := writeFile(t, dir, "flowgo.toml", fmt.Sprintf(`
[metrics]
listen = %q
[[input]]
type = "tcp"
listen = %q
format = "rfc5424"
framing = "auto"
dead_letter_file = %q
[[input]]
type = "udp"
listen = %q
format = "rfc5424"
[output]
type = "file"
format = "gelf"
file_path = %q
file_rotation_size = 8192
file_rotation_maxfiles = 50
dead_letter_file = %q
`, metricsAddr, tcpAddr, filepath.Join(state, "rejected.log"), udpAddr, filepath.Join(logs, "out.log"), filepath.Join(state, "undeliverable.log")))

		const n = 100
		s := sb.run(t, dir, cfg, func(p *process) {
			waitListening(t, p, tcpAddr)
			var frames []string
			for i := range n {
				m := fmt.Sprintf("<14>1 2026-01-02T03:04:05.000006Z host app 42 ID7 - tcp record %d", i)
				frames = append(frames, fmt.Sprintf("%d %s", len(m), m))
			}
			sendTCP(t, tcpAddr, append(frames, "9 not-5424\n"))
			uc, err := net.Dial("udp", udpAddr)
			if err != nil {
				t.Fatal(err)
			}
			for i := range n {
				fmt.Fprintf(uc, "<14>1 2026-01-02T03:04:05.000006Z host app 42 ID7 - udp record %d", i)
			}
			uc.Close()
			waitFor(t, 10*time.Second, "every record in the output files", func() bool {
				return countLines(t, logs) == 2*n
			})
			for _, path := range []string{"/metrics", "/healthz", "/readyz"} {
				resp, err := http.Get("http://" + metricsAddr + path)
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					t.Errorf("GET %s: %s; want 200", path, resp.Status)
				}
			}
		})
		if s["received"] != strconv.Itoa(2*n) || s["sent"] != strconv.Itoa(2*n) || s["rejected"] != "1" {
			t.Errorf("flowgo stopped with received=%s sent=%s rejected=%s; want %d, %d, 1", s["received"], s["sent"], s["rejected"], 2*n, 2*n)
		}
		if ents, _ := os.ReadDir(logs); len(ents) < 3 {
			t.Errorf("%d files in the logs directory; want out.log and rotated files (file_rotation_size)", len(ents))
		}
	})

	t.Run("a tls input and a kafka output over TLS to a broker named localhost", func(t *testing.T) {
		dir := t.TempDir()
		ca := testcerts.NewCA(t, "dist test CA")
		leaf := ca.Server(t)
		certs := t.TempDir() // stands for /etc/flowgo: read only
		caFile := testcerts.WriteFile(t, certs, "ca.pem", ca.CertPEM)
		certFile := testcerts.WriteFile(t, certs, "server.pem", leaf.CertPEM)
		keyFile := testcerts.WriteFile(t, certs, "server.key", leaf.KeyPEM)
		pair, err := tls.X509KeyPair(leaf.CertPEM, leaf.KeyPEM)
		if err != nil {
			t.Fatal(err)
		}
		cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, "logs"),
			kfake.TLS(&tls.Config{Certificates: []tls.Certificate{pair}}))
		if err != nil {
			t.Fatal(err)
		}
		defer cluster.Close()
		_, brokerPort, _ := net.SplitHostPort(cluster.ListenAddrs()[0])
		tlsAddr := fmt.Sprintf("127.0.0.1:%d", freePort(t, "tcp"))
		cfg := writeFile(t, dir, "flowgo.toml", fmt.Sprintf(`
[input]
type = "tls"
listen = %q
tls_cert = %q
tls_key = %q
format = "rfc5424"
dead_letter_file = %q
[output]
type = "kafka"
format = "gelf"
kafka_brokers = ["localhost:%s"]
kafka_topic = "logs"
kafka_tls = true
kafka_tls_ca_file = %q
dead_letter_file = %q
`, tlsAddr, certFile, keyFile, filepath.Join(dir, "rejected.log"), brokerPort, caFile, filepath.Join(dir, "undeliverable.log")))

		pool := x509.NewCertPool()
		pool.AppendCertsFromPEM(ca.CertPEM)
		const n = 50
		s := sb.run(t, dir, cfg, func(p *process) {
			waitListening(t, p, tlsAddr)
			c, err := tls.Dial("tcp", tlsAddr, &tls.Config{RootCAs: pool, ServerName: "localhost"})
			if err != nil {
				t.Fatal(err)
			}
			for i := range n {
				fmt.Fprintf(c, "<14>1 2026-01-02T03:04:05.000006Z host app 42 ID7 - tls record %d\n", i)
			}
			c.Close()
			cl, err := kgo.NewClient(kgo.SeedBrokers(cluster.ListenAddrs()...), kgo.ConsumeTopics("logs"),
				kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(100*time.Millisecond),
				kgo.DialTLSConfig(&tls.Config{RootCAs: pool}))
			if err != nil {
				t.Fatal(err)
			}
			defer cl.Close()
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			got := 0
			for got < n && ctx.Err() == nil {
				got += cl.PollFetches(ctx).NumRecords()
			}
			if got != n {
				t.Fatalf("%d records in Kafka; want %d:\n%s", got, n, p.stderr)
			}
		})
		if s["received"] != strconv.Itoa(n) || s["sent"] != strconv.Itoa(n) {
			t.Errorf("flowgo stopped with received=%s sent=%s; want %d, %d", s["received"], s["sent"], n, n)
		}
	})
}

func keys(m map[string]bool) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// countLines counts the lines of every file in dir.
func countLines(t *testing.T, dir string) int {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, e := range ents {
		data, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			continue // rotated away meanwhile
		}
		n += strings.Count(string(data), "\n")
	}
	return n
}

func tracedPid(t *testing.T, trace string) int {
	t.Helper()
	var pid int
	waitFor(t, 5*time.Second, "strace's first line", func() bool {
		f, err := os.Open(trace)
		if err != nil {
			return false
		}
		defer f.Close()
		line, err := bufio.NewReader(f).ReadString('\n')
		if err != nil {
			return false
		}
		pid, err = strconv.Atoi(strings.Fields(line)[0])
		return err == nil
	})
	return pid
}

var (
	traceCall   = regexp.MustCompile(`^\d+\s+([a-z0-9_]+)\(`)
	traceSocket = regexp.MustCompile(`^\d+\s+socket\((AF_[A-Z0-9]+)`)
	traceExec   = regexp.MustCompile(`^\d+\s+(mmap|mprotect|pkey_mprotect)\(.*PROT_EXEC`)
	// Calls that create or change files, with their first absolute path.
	traceWrite = regexp.MustCompile(`^\d+\s+(?:openat\([^,]+, "(/[^"]*)", [^)]*(?:O_WRONLY|O_RDWR|O_CREAT)|(?:renameat2?|unlinkat|mkdirat|linkat|symlinkat|fchmodat|fchownat|utimensat)\([^,]+, "(/[^"]*)")`)
)

// readTrace returns the system calls, socket families, number of calls that
// write files, and rule violations (executable mappings, writes outside
// dataDir) in an strace -f log.
func readTrace(t *testing.T, path, dataDir string) (calls, sockets map[string]bool, writes int, violations []string) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	calls, sockets = map[string]bool{}, map[string]bool{}
	for _, line := range strings.Split(string(data), "\n") {
		if m := traceCall.FindStringSubmatch(line); m != nil {
			calls[m[1]] = true
		}
		if m := traceSocket.FindStringSubmatch(line); m != nil {
			sockets[m[1]] = true
		}
		if traceExec.MatchString(line) {
			violations = append(violations, "MemoryDenyWriteExecute would refuse: "+line)
		}
		if m := traceWrite.FindStringSubmatch(line); m != nil {
			writes++
			p := m[1] + m[2]
			if !strings.HasPrefix(p, dataDir+"/") {
				violations = append(violations, "ProtectSystem=strict would refuse a write outside the data directories: "+line)
			}
		}
	}
	return calls, sockets, writes, violations
}

func TestLogrotateSnippetMakesFlowgoReopen(t *testing.T) {
	lr := need(t, "logrotate", "logrotate")
	bin := binary(t)
	dir := t.TempDir()
	logs := filepath.Join(dir, "log") // /var/log/flowgo
	if err := os.Mkdir(logs, 0o750); err != nil {
		t.Fatal(err)
	}
	addr := fmt.Sprintf("127.0.0.1:%d", freePort(t, "tcp"))
	cfg := writeFile(t, dir, "flowgo.toml", fmt.Sprintf(`
[input]
type = "tcp"
listen = %q
format = "rfc5424"
framing = "line"
[output]
type = "file"
format = "passthrough"
file_path = %q
`, addr, filepath.Join(logs, "out.log")))
	p := start(t, bin, "run", "-c", cfg)
	waitListening(t, p, addr)

	batch := func(word string) []string {
		var out []string
		for i := range 10 {
			out = append(out, fmt.Sprintf("<14>1 2026-01-02T03:04:05Z host app - - - %s %d\n", word, i))
		}
		return out
	}
	sendTCP(t, addr, batch("before"))
	waitFor(t, 5*time.Second, "10 lines in out.log", func() bool { return countLines(t, logs) == 10 })

	// The snippet as shipped, with the directory moved to the test's and
	// postrotate's reload sent straight to this flowgo (systemctl cannot
	// run here).
	data, err := os.ReadFile(filepath.Join("logrotate.d", "flowgo"))
	if err != nil {
		t.Fatal(err)
	}
	conf := replaceOnce(t, "logrotate.d/flowgo", string(data), "/var/log/flowgo/", logs+"/")
	conf = regexp.MustCompile(`(?m)^(\s*)if systemctl -q is-active flowgo\.service; then systemctl reload flowgo\.service; fi$`).
		ReplaceAllString(conf, fmt.Sprintf("${1}kill -HUP %d", p.cmd.Process.Pid))
	if !strings.Contains(conf, "kill -HUP") {
		t.Fatal("logrotate.d/flowgo: the postrotate reload line was not found")
	}
	confPath := writeFile(t, dir, "logrotate.conf", conf)
	out, err := exec.Command(lr, "--force", "--state", filepath.Join(dir, "state"), confPath).CombinedOutput()
	if err != nil {
		t.Fatalf("logrotate: %v\n%s", err, out)
	}
	waitReloaded(t, p)
	if _, err := os.Stat(filepath.Join(logs, "out.log")); err != nil {
		t.Fatalf("flowgo did not reopen out.log after the rotation: %v", err)
	}
	sendTCP(t, addr, batch("after"))
	waitFor(t, 5*time.Second, "20 lines in the log directory", func() bool { return countLines(t, logs) == 20 })
	syscall.Kill(p.cmd.Process.Pid, syscall.SIGTERM)
	if code := p.wait(t, 10*time.Second); code != 0 {
		t.Fatalf("flowgo exited with %d:\n%s", code, p.stderr)
	}

	for file, want := range map[string]string{"out.log.1": strings.Join(batch("before"), ""), "out.log": strings.Join(batch("after"), "")} {
		got, err := os.ReadFile(filepath.Join(logs, file))
		if err != nil {
			t.Fatalf("%v (delaycompress should leave out.log.1 uncompressed)", err)
		}
		if string(got) != want {
			t.Errorf("%s: got\n%s\nwant\n%s", file, got, want)
		}
	}
}
