package dist

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/flowgo/flowgo/input"
	"github.com/flowgo/flowgo/internal/testcerts"
)

// daemonConfig is dist/flowgo.toml moved to a test machine: its
// directories under dir (lib for /var/lib/flowgo, log for /var/log/flowgo,
// etc for /etc/flowgo), its ports to free loopback ones.
type daemonConfig struct {
	text                       string
	dir, lib, log, etc         string
	udp, tcp, tls, metricsAddr string
}

func newDaemonConfig(t *testing.T) *daemonConfig {
	t.Helper()
	data, err := os.ReadFile("flowgo.toml")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	c := &daemonConfig{dir: dir, lib: filepath.Join(dir, "lib"), log: filepath.Join(dir, "log"), etc: filepath.Join(dir, "etc")}
	for _, d := range []string{c.lib, c.log, c.etc} {
		if err := os.Mkdir(d, 0o750); err != nil {
			t.Fatal(err)
		}
	}
	c.udp = fmt.Sprintf("127.0.0.1:%d", freePort(t, "udp"))
	c.tcp = fmt.Sprintf("127.0.0.1:%d", freePort(t, "tcp"))
	c.tls = fmt.Sprintf("127.0.0.1:%d", freePort(t, "tcp"))
	c.metricsAddr = fmt.Sprintf("127.0.0.1:%d", freePort(t, "tcp"))
	s := string(data)
	s = replaceOnce(t, "dist/flowgo.toml", s, "/var/lib/flowgo/", c.lib+"/")
	s = replaceOnce(t, "dist/flowgo.toml", s, "/var/log/flowgo/", c.log+"/")
	s = replaceOnce(t, "dist/flowgo.toml", s, "/etc/flowgo/", c.etc+"/")
	s = replaceOnce(t, "dist/flowgo.toml", s, `listen = "127.0.0.1:9281"`, fmt.Sprintf("listen = %q", c.metricsAddr))
	s = replaceOnce(t, "dist/flowgo.toml", s, `listen = "0.0.0.0:6514"`, fmt.Sprintf("listen = %q", c.tls))
	// Two inputs on 514: UDP first, then TCP.
	const port514 = `listen = "0.0.0.0:514"`
	if strings.Count(s, port514) != 2 {
		t.Fatalf("dist/flowgo.toml: want 2 inputs on 0.0.0.0:514 (udp, tcp), got %d", strings.Count(s, port514))
	}
	s = strings.Replace(s, port514, fmt.Sprintf("listen = %q", c.udp), 1)
	s = strings.Replace(s, port514, fmt.Sprintf("listen = %q", c.tcp), 1)
	c.text = s
	return c
}

// uncomment returns text with the commented-out block that starts with the
// line first uncommented: the consecutive lines "#key = ..." or "#[table]"
// from there (explanations are "# text", with a space).
func uncomment(t *testing.T, text, first string) string {
	t.Helper()
	lines := strings.Split(text, "\n")
	for i, l := range lines {
		if l != first {
			continue
		}
		for j := i; j < len(lines) && regexp.MustCompile(`^#[\[a-z]`).MatchString(lines[j]); j++ {
			lines[j] = lines[j][1:]
		}
		return strings.Join(lines, "\n")
	}
	t.Fatalf("dist/flowgo.toml: no commented-out block starting %q", first)
	return ""
}

// check runs flowgo check on text and fails the test with its output.
func (c *daemonConfig) check(t *testing.T, name, text string) string {
	t.Helper()
	cfg := writeFile(t, c.dir, name, text)
	out, err := exec.Command(binary(t), "check", "-c", cfg).CombinedOutput()
	if err != nil {
		t.Fatalf("flowgo check %s: %v\n%s", name, err, out)
	}
	return string(out)
}

// TestDaemonConfigRunsAsInstalled runs dist/flowgo.toml, ports and
// directories moved, under strace with the unit's sandbox checks, and
// sends it syslog with util-linux logger over UDP and TCP, RFC 3164 and
// RFC 5424, plus a frame that does not decode.
func TestDaemonConfigRunsAsInstalled(t *testing.T) {
	logger := need(t, "logger", "bsdutils")
	sb := newSandbox(t)
	c := newDaemonConfig(t)
	cfg := writeFile(t, c.dir, "flowgo.toml", c.text)
	out := filepath.Join(c.log, "messages.log")
	sends := []struct {
		name string
		args []string
	}{
		{"udp rfc3164", []string{"--udp", "--rfc3164", "-n", host(c.udp), "-P", port(c.udp), "-t", "app", "daemon test udp 3164"}},
		{"udp rfc5424", []string{"--udp", "--rfc5424", "-n", host(c.udp), "-P", port(c.udp), "-t", "app", "daemon test udp 5424"}},
		{"tcp rfc3164", []string{"--tcp", "--rfc3164", "-n", host(c.tcp), "-P", port(c.tcp), "-t", "app", "daemon test tcp 3164"}},
		{"tcp rfc5424 octet-counted", []string{"--tcp", "--octet-count", "--rfc5424", "-n", host(c.tcp), "-P", port(c.tcp), "-t", "app", "daemon test tcp 5424"}},
	}
	s := sb.run(t, c.dir, cfg, func(p *process) {
		waitListening(t, p, c.tcp)
		for _, snd := range sends {
			if b, err := exec.Command(logger, snd.args...).CombinedOutput(); err != nil {
				t.Fatalf("logger %s: %v\n%s", snd.name, err, b)
			}
		}
		uc, err := net.Dial("udp", c.udp)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprint(uc, "not syslog")
		uc.Close()
		waitFor(t, 15*time.Second, "the four messages in "+out, func() bool {
			b, _ := os.ReadFile(out)
			return strings.Count(string(b), "daemon test ") == len(sends)
		})
		waitFor(t, 15*time.Second, "the bad datagram in the dead-letter file", func() bool {
			b, _ := os.ReadFile(filepath.Join(c.lib, "rejected-udp.log"))
			return string(b) == "not syslog\n"
		})
		body := get(t, "http://"+c.metricsAddr+"/readyz", 200)
		if !strings.Contains(body, `"component":"output messages"`) {
			t.Errorf("/readyz does not name the output: %s", body)
		}
		metrics := get(t, "http://"+c.metricsAddr+"/metrics", 200)
		for _, want := range []string{
			`flowgo_input_records_total{input="syslog-udp",pipeline="flowgo",type="udp"} 2`,
			`flowgo_input_records_total{input="syslog-tcp",pipeline="flowgo",type="tcp"} 2`,
			`flowgo_input_rejected_total{input="syslog-udp",pipeline="flowgo",reason="decode",type="udp"} 1`,
			`flowgo_output_ready{output="messages",pipeline="flowgo"} 1`,
		} {
			if !strings.Contains(metrics, want) {
				t.Errorf("/metrics lacks %s", want)
			}
		}
	})
	if s["received"] != "4" || s["sent"] != "4" || s["rejected"] != "1" || s["lost"] != "0" {
		t.Errorf("flowgo stopped with %v; want received=4 sent=4 rejected=1 lost=0", s)
	}
	b, _ := os.ReadFile(out)
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		if !regexp.MustCompile(`^<\d+>1 \S+ \S+ app \S+ \S+ \S+ (.* )?daemon test (udp|tcp) (3164|5424)$`).MatchString(line) {
			t.Errorf("%s holds %q; want an RFC 5424 line from logger", out, line)
		}
	}
}

func host(addr string) string { h, _, _ := net.SplitHostPort(addr); return h }
func port(addr string) string { _, p, _ := net.SplitHostPort(addr); return p }

// get fetches url and checks its status.
func get(t *testing.T, url string, want int) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != want {
		t.Errorf("GET %s: %s; want %d\n%s", url, resp.Status, want, b)
	}
	return string(b)
}

// TestDaemonConfigBlocksPassCheck uncomments each optional block of
// dist/flowgo.toml in turn (TLS input, Kafka output, disk queue) and runs
// flowgo check on the result: what the file offers works when taken.
func TestDaemonConfigBlocksPassCheck(t *testing.T) {
	c := newDaemonConfig(t)
	t.Run("as shipped", func(t *testing.T) {
		out := c.check(t, "shipped.toml", c.text)
		for _, want := range []string{"name syslog-udp", "name syslog-tcp", "output: type file, format rfc5424"} {
			if !strings.Contains(out, want) {
				t.Errorf("flowgo check does not show %q:\n%s", want, out)
			}
		}
	})
	t.Run("syslog over TLS", func(t *testing.T) {
		ca := testcerts.NewCA(t, "dist test CA")
		leaf := ca.Server(t)
		if err := os.Mkdir(filepath.Join(c.etc, "tls"), 0o755); err != nil {
			t.Fatal(err)
		}
		testcerts.WriteFile(t, filepath.Join(c.etc, "tls"), "server.pem", leaf.CertPEM)
		key := testcerts.WriteFile(t, c.dir, "server.key", leaf.KeyPEM)
		text := replaceOnce(t, "dist/flowgo.toml", c.text, "/run/credentials/flowgo.service/server.key", key)
		out := c.check(t, "tls.toml", uncomment(t, text, "#[[input]]"))
		if !strings.Contains(out, "type tls, format auto, framing syslen") || !strings.Contains(out, "name syslog-tls") {
			t.Errorf("flowgo check does not show the tls input:\n%s", out)
		}
	})
	t.Run("Kafka instead of the file", func(t *testing.T) {
		text := uncomment(t, c.text, "#[output]")
		// Drop the file output's table: one [output] per pipeline.
		i := strings.Index(text, "\n[output]\n")
		j := strings.Index(text[i+1:], "\n\n")
		if i < 0 || j < 0 {
			t.Fatal("dist/flowgo.toml: no [output] table followed by a blank line")
		}
		text = text[:i+1] + text[i+1+j+2:]
		out := c.check(t, "kafka.toml", text)
		if !strings.Contains(out, "output: type kafka, format gelf") {
			t.Errorf("flowgo check does not show the kafka output:\n%s", out)
		}
	})
	t.Run("a disk queue", func(t *testing.T) {
		out := c.check(t, "disk.toml", uncomment(t, c.text, "#[queue]"))
		if !strings.Contains(out, "queue: disk at "+filepath.Join(c.lib, "queue")) {
			t.Errorf("flowgo check does not show the disk queue:\n%s", out)
		}
	})
}

// TestUnitRunsTheDaemonConfig checks that the unit's and dist/README's
// install steps put dist/flowgo.toml where ExecStart reads it: installed
// unedited, the service runs the daemon config, not the repository's
// stdin example (which would read /dev/null and exit at once).
func TestUnitRunsTheDaemonConfig(t *testing.T) {
	u := parseUnit(t, "flowgo.service")
	run := strings.Fields(u.one(t, "Service", "ExecStart"))
	cfg := run[len(run)-1]
	install := regexp.MustCompile(`install -m 0644 -D (\S+) ` + regexp.QuoteMeta(cfg))
	for _, f := range []string{"flowgo.service", "README.md"} {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		m := install.FindAllStringSubmatch(string(data), -1)
		if len(m) == 0 {
			t.Errorf("%s: no `install -m 0644 -D FILE %s` step", f, cfg)
		}
		for _, s := range m {
			if s[1] != "dist/flowgo.toml" {
				t.Errorf("%s installs %s as %s; want dist/flowgo.toml, the daemon config", f, s[1], cfg)
			}
		}
	}
}

// TestSysctlSnippetLetsUDPHaveItsBuffer checks dist/sysctl.d: every key
// exists in this kernel, and net.core.rmem_max covers the udp input's
// default udp_recv_buffer.
func TestSysctlSnippetLetsUDPHaveItsBuffer(t *testing.T) {
	files, err := filepath.Glob("sysctl.d/*.conf")
	if err != nil || len(files) != 1 {
		t.Fatalf("sysctl.d: %v %v; want one .conf file", files, err)
	}
	data, err := os.ReadFile(files[0])
	if err != nil {
		t.Fatal(err)
	}
	keys := map[string]string{}
	for i, l := range strings.Split(string(data), "\n") {
		l = strings.TrimSpace(l)
		if l == "" || l[0] == '#' || l[0] == ';' {
			continue
		}
		k, v, ok := strings.Cut(l, "=")
		if !ok {
			t.Fatalf("%s:%d: not key = value: %q", files[0], i+1, l)
		}
		k, v = strings.TrimSpace(k), strings.TrimSpace(v)
		if _, err := os.Stat(filepath.Join("/proc/sys", strings.ReplaceAll(k, ".", "/"))); err != nil {
			t.Errorf("%s:%d: %s is not a kernel setting here: %v", files[0], i+1, k, err)
		}
		keys[k] = v
	}
	n, err := strconv.Atoi(keys["net.core.rmem_max"])
	if err != nil || n < input.DefaultUDPRecvBuffer {
		t.Errorf("net.core.rmem_max = %q; want at least udp_recv_buffer's default, %d", keys["net.core.rmem_max"], input.DefaultUDPRecvBuffer)
	}
}
