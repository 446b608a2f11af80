package input

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/flowgo/flowgo"
)

// Real TLS clients that write their records and close without reading:
// Python's ssl (sendall, close) and Debian's python3-graypy GELFTLSHandler.
// Over TLS 1.3 the server's session tickets reached such a client after
// the handshake, unread, so its close became a TCP reset and every record
// of the connection was discarded by the server's kernel.

// debianPython is the system Python, which python3-graypy installs into (a
// python3 earlier in PATH, such as pyenv's, may not see it).
const debianPython = "/usr/bin/python3"

// needPython fails the test unless the system Python can import modules.
func needPython(t *testing.T, modules ...string) {
	t.Helper()
	if _, err := os.Stat(debianPython); err != nil {
		t.Fatalf("%s is missing: install the Debian package python3 (.ci/tools does)", debianPython)
	}
	for _, m := range modules {
		if out, err := exec.Command(debianPython, "-c", "import "+m).CombinedOutput(); err != nil {
			t.Fatalf("%s cannot import %s: install the Debian package python3-%s (.ci/tools does): %v\n%s", debianPython, m, m, err, out)
		}
	}
}

// runPython runs a script with arguments and returns its output.
func runPython(t *testing.T, script string, args ...string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "client.py")
	if err := os.WriteFile(path, []byte(script), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := runTool(t, "", debianPython, append([]string{path}, args...)...)
	if err != nil {
		t.Fatalf("python: %v\n%s", err, out)
	}
	return out
}

// sslSendAndClose connects conns times, checks that TLS 1.3 was negotiated,
// sends n lines with sendall and closes at once, reading nothing.
const sslSendAndClose = `
import socket, ssl, sys
host, port, ca, n, conns, cert = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4]), int(sys.argv[5]), sys.argv[6]
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
ctx.load_verify_locations(ca)
ctx.minimum_version = ssl.TLSVersion.TLSv1_3
if cert:
    ctx.load_cert_chain(cert)
for c in range(conns):
    s = ctx.wrap_socket(socket.create_connection((host, port)), server_hostname="localhost")
    print(s.version())
    s.sendall(b"".join(b"conn %d line %d\n" % (c, i) for i in range(n)))
    s.close()
`

func TestPythonSSLSendAllAndCloseOverTLS13LosesNothing(t *testing.T) {
	needPython(t, "ssl")
	for _, tc := range []struct {
		name       string
		verifyPeer bool
	}{
		{"server certificate only", false},
		{"mutual TLS (the tickets would follow the client's Finished)", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := startTLS(t, tc.verifyPeer, "", streamOptions{})
			host, port, _ := strings.Cut(s.addr, ":")
			cert := ""
			if tc.verifyPeer {
				cert = s.certs.clientPEM
			}
			const n, conns = 1000, 20
			out := runPython(t, sslSendAndClose, host, port, s.certs.caFile, fmt.Sprint(n), fmt.Sprint(conns), cert)
			if got := strings.Count(out, "TLSv1.3"); got != conns {
				t.Fatalf("TLS 1.3 on %d of %d connections:\n%s", got, conns, out)
			}
			if !waitFor(10*time.Second, func() bool { return s.sink.records.Load() == n*conns }) {
				t.Fatalf("%d of %d records arrived\nlogs:\n%s", s.sink.records.Load(), n*conns, s.logs)
			}
			if !waitFor(5*time.Second, func() bool { return s.openConns() == 0 }) {
				t.Fatal("connections still open after the client closed them")
			}
			if reset, unread, readErr := s.st.ConnsAborted(); reset+unread+readErr != 0 {
				t.Errorf("connections aborted: %d reset, %d unread, %d errors; want none", reset, unread, readErr)
			}
		})
	}
}

// graypyTLS sends n records on each of conns GELFTLSHandlers (one
// connection each), prints the TLS version of each and closes them.
const graypyTLS = `
import logging, sys, graypy
host, port, ca, n, conns = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
for c in range(conns):
    h = graypy.GELFTLSHandler(host, port, validate=True, ca_certs=ca)
    log = logging.getLogger("flowgotest%d" % c)
    log.propagate = False
    log.addHandler(h)
    log.setLevel(logging.INFO)
    for i in range(n):
        log.info("graypy conn %d record %d", c, i)
    print(h.sock.version())
    h.close()
`

func TestGraypyGELFTLSHandlerLosesNothing(t *testing.T) {
	needPython(t, "graypy")
	s := startTLS(t, false, "", streamOptions{framing: flowgo.FramingNUL})
	host, port, _ := strings.Cut(s.addr, ":")
	const n, conns = 50, 10
	out := runPython(t, graypyTLS, host, port, s.certs.caFile, fmt.Sprint(n), fmt.Sprint(conns))
	if got := strings.Count(out, "TLSv1.3"); got != conns {
		t.Fatalf("TLS 1.3 on %d of %d connections:\n%s", got, conns, out)
	}
	if !waitFor(10*time.Second, func() bool { return s.sink.records.Load() == n*conns }) {
		t.Fatalf("%d of %d records arrived\nlogs:\n%s", s.sink.records.Load(), n*conns, s.logs)
	}
	got := s.sink.got()
	for _, want := range []string{`"short_message":"graypy conn 0 record 0"`, fmt.Sprintf(`"short_message":"graypy conn %d record %d"`, conns-1, n-1)} {
		if !strings.Contains(strings.Join(got, "\n"), want) {
			t.Errorf("no record holds %s; first: %s", want, got[0])
		}
	}
	if reset, _, _ := s.st.ConnsAborted(); reset != 0 {
		t.Errorf("%d connections reset", reset)
	}
}
