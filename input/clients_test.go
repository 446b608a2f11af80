package input

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/flowgo/flowgo"
)

// Real syslog clients against the inputs: logger from util-linux over TCP,
// openssl s_client over TLS. The tools are required: a machine without them
// fails these tests with the package to install, it does not skip them.

// tool returns the path of name, failing the test when it is missing.
func needTool(t *testing.T, name, debianPackage string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		t.Fatalf("%s is not installed: install the Debian package %s (apt-get install %s); this test needs the real client", name, debianPackage, debianPackage)
	}
	return p
}

// runTool runs a command with stdin and a time limit, returning its output.
func runTool(t *testing.T, stdin string, name string, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Stdin = strings.NewReader(stdin)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return out.String(), err
}

func TestLoggerOverTCP(t *testing.T) {
	logger := needTool(t, "logger", "bsdutils")
	rfc5424 := `^<13>1 \d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}[+-]\d\d:\d\d \S+ flowgotest - - \[timeQuality tzKnown="1" isSynced="[01]"( syncAccuracy="\d+")?\] `
	rfc3164 := `^<13>[A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d \S+ flowgotest: `
	for _, tc := range []struct {
		name    string
		framing flowgo.Framing
		args    []string
		format  string
	}{
		{"RFC 5424, one per line", flowgo.FramingLine, []string{"--rfc5424"}, rfc5424},
		{"RFC 5424, octet-counted", flowgo.FramingSyslen, []string{"--rfc5424", "--octet-count"}, rfc5424},
		{"RFC 5424, octet-counted, framing auto", flowgo.FramingAuto, []string{"--rfc5424", "--octet-count"}, rfc5424},
		{"RFC 5424, one per line, framing auto", flowgo.FramingAuto, []string{"--rfc5424"}, rfc5424},
		{"RFC 3164, one per line", flowgo.FramingLine, []string{"--rfc3164"}, rfc3164},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := startStream(t, "tcp", `listen = "127.0.0.1:0"`, streamOptions{framing: tc.framing})
			_, port, _ := strings.Cut(s.addr, ":")
			msgs := filepath.Join(t.TempDir(), "msgs")
			os.WriteFile(msgs, []byte("first message\nsecond message with [brackets] and = signs\nthird\n"), 0o600)
			args := append([]string{"--tcp", "--server", "127.0.0.1", "--port", port, "-t", "flowgotest", "-p", "user.notice", "--file", msgs}, tc.args...)
			if out, err := runTool(t, "", logger, args...); err != nil {
				t.Fatalf("logger: %v\n%s", err, out)
			}
			s.sink.waitRecords(t, 3, 5*time.Second)
			got := s.sink.got()
			for i, want := range []string{"first message", "second message with \\[brackets\\] and = signs", "third"} {
				if re := regexp.MustCompile(tc.format + want + "$"); i >= len(got) || !re.MatchString(got[i]) {
					t.Errorf("record %d = %q; want it to match %s", i, got, re)
				}
			}
			if len(got) != 3 || len(s.sink.gotRejects()) != 0 {
				t.Errorf("%d records, %d rejects; want 3 and 0", len(got), len(s.sink.gotRejects()))
			}
		})
	}
}

func TestOpenSSLClientOverTLS(t *testing.T) {
	openssl := needTool(t, "openssl", "openssl")
	for _, tc := range []struct {
		name       string
		verifyPeer bool
		clientCert bool
		delivered  bool
	}{
		{"with a valid client certificate, tls_verify_peer on: delivered", true, true, true},
		{"without a client certificate, tls_verify_peer off: delivered", false, false, true},
		{"without a client certificate, tls_verify_peer on: refused", true, false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := startTLS(t, tc.verifyPeer, "", streamOptions{})
			args := []string{"s_client", "-connect", s.addr, "-CAfile", s.certs.caFile, "-verify_return_error", "-quiet", "-no_ign_eof"}
			if tc.clientCert {
				args = append(args, "-cert", s.certs.clientPEM)
			}
			out, err := runTool(t, "<13>1 - host app - - - over openssl\n", openssl, args...)
			if !tc.delivered {
				if !waitFor(5*time.Second, func() bool { return strings.Contains(s.logs.String(), "TLS handshake failed") }) {
					t.Fatalf("no failed handshake logged (openssl: %v)\n%s\nlogs:\n%s", err, out, s.logs)
				}
				time.Sleep(50 * time.Millisecond)
				if n := s.sink.records.Load(); n != 0 {
					t.Errorf("%d records delivered from a refused client", n)
				}
				if !strings.Contains(s.logs.String(), "certificate") {
					t.Errorf("the log does not give the reason:\n%s", s.logs)
				}
				return
			}
			if err != nil {
				t.Fatalf("openssl: %v\n%s", err, out)
			}
			s.sink.waitRecords(t, 1, 5*time.Second)
			if got := s.sink.got(); len(got) != 1 || got[0] != "<13>1 - host app - - - over openssl" {
				t.Errorf("records = %q", got)
			}
		})
	}
}
