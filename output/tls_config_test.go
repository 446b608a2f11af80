package output_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/flowgo/flowgo/config"
	"github.com/flowgo/flowgo/internal/testcerts"
	"github.com/flowgo/flowgo/output"
	"github.com/flowgo/flowgo/pipeline"
)

func buildTLS(keys string) (output.Output, *config.File, error) {
	f, err := config.Parse("test.toml", "[output]\ntype = \"tls\"\n"+keys)
	if err != nil {
		return nil, nil, err
	}
	typ, _, err := output.Lookup("syslog-tls")
	if err != nil {
		return nil, nil, err
	}
	o, err := typ.New(output.Config{Section: f.Output, Format: "gelf", Framing: "nul"})
	return o, f, err
}

func TestTLSConfigErrors(t *testing.T) {
	ca := testcerts.NewCA(t, "test CA")
	caFile := testcerts.WriteFile(t, t.TempDir(), "ca.pem", ca.CertPEM)
	tests := []struct {
		name, keys, want string
	}{
		{"connect is required", "", `test.toml:1: output.connect: required: a list of "host:port" servers`},
		{"connect must be a list", `connect = "a:1"`, `test.toml:3: output.connect:`},
		{"an address needs a port", `connect = ["logs.example.com"]`, `output.connect: "logs.example.com": want "host:port" ("[v6 address]:port" for IPv6): missing port in address`},
		{"an IPv6 address needs brackets and a port", `connect = ["::1"]`, `output.connect: "::1": want "host:port" ("[v6 address]:port" for IPv6): too many colons in address`},
		{"the port is a number in range", `connect = ["a:70000"]`, `output.connect: "a:70000": the port must be a number from 1 to 65535`},
		{"the host is required", `connect = [":6514"]`, `output.connect: ":6514": the host is missing`},
		{"max below init", "connect = [\"a:1\"]\ntls_recovery_delay_init = 50\ntls_recovery_delay_max = 10",
			`test.toml:5: output.tls_recovery_delay_max: cannot be less than tls_recovery_delay_init (50)`},
		{"max of 0", "connect = [\"a:1\"]\ntls_recovery_delay_init = 0\ntls_recovery_delay_max = 0",
			`output.tls_recovery_delay_max: must be at least 1 ms`},
		{"no connection", "connect = [\"a:1\"]\ntls_threads = 0", `output.tls_threads: must be between 1 and 256 connections, not 0`},
		{"negative timeout", "connect = [\"a:1\"]\ntimeout = -1", `output.timeout: must be a number of seconds, 0 for none, not -1`},
		{"a timer flush needs an interval", "connect = [\"a:1\"]\ntls_async = true\ntls_flush_interval = \"0s\"", `output.tls_flush_interval: must be positive`},
		{"an unknown compatibility level", "connect = [\"a:1\"]\ntls_compatibility_level = \"ancient\"", `output.tls_compatibility_level: "ancient" unknown: want intermediate (TLS 1.2+), modern (TLS 1.3) or old (TLS 1.0+)`},
		{"ciphers that select nothing", "connect = [\"a:1\"]\ntls_ciphers = \"RC4-MD5\"", `output.tls_ciphers: no cipher suite that Go implements is selected by "RC4-MD5"`},
		{"a certificate file that does not exist", "connect = [\"a:1\"]\ntls_cert = \"/nonexistent/client.pem\"", `output.tls_cert:`},
		{"a CA file that does not exist", "connect = [\"a:1\"]\ntls_ca_file = \"/nonexistent/ca.pem\"", `output.tls_ca_file: stat /nonexistent/ca.pem: no such file`},
		{"a key without a certificate", "connect = [\"a:1\"]\ntls_key = \"/nonexistent/client.key\"", `output.tls_key: is set without tls_cert`},
		{"a typo in a key", "connect = [\"a:1\"]\ntls_verify_per = true\ntls_ca_file = \"" + caFile + "\"", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, f, err := buildTLS(tt.keys)
			if tt.want == "" {
				// The output accepts its keys; the file check names the typo.
				if err != nil {
					t.Fatal(err)
				}
				f.Output.Accept("type") // read by the pipeline
				err = f.Check()
				tt.want = `output.tls_verify_per: unknown key (did you mean "tls_verify_peer"?)`
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error = %v;\nwant it to contain %s", err, tt.want)
			}
		})
	}
}

func TestTLSConfigDefaultsAndWarnings(t *testing.T) {
	o, f, err := buildTLS("connect = [\"[::1]:6514\", \"logs.example.com:6514\"]\ntls_verify_peer = false\ntls_ca_file = \"unused.pem\"\n")
	if err != nil {
		t.Fatal(err)
	}
	defer o.Close(context.Background())
	w := strings.Join(f.Warnings(), "\n")
	if !strings.Contains(w, "output.tls_verify_peer: false: the servers' certificates are not verified") || !strings.Contains(w, "output.tls_ca_file: not used") {
		t.Errorf("warnings = %q; want tls_verify_peer and tls_ca_file warned about", w)
	}
	eff, err := f.Output.Effective()
	if err != nil {
		t.Fatal(err)
	}
	for _, kv := range []string{"timeout = 30", "tls_threads = 1", "tls_async = false", `tls_flush_interval = "100ms"`,
		"tls_recovery_delay_init = 1", "tls_recovery_delay_max = 10000", "tls_recovery_probe_time = 30000", `tls_compatibility_level = "intermediate"`} {
		if !strings.Contains(eff, kv) {
			t.Errorf("effective config lacks %s:\n%s", kv, eff)
		}
	}
	if fl, ok := o.(output.Flusher); !ok || fl.FlushInterval() != 0 {
		t.Errorf("without tls_async the output must not ask for timed flushes")
	}
	if ok, msg := o.(output.HealthChecker).Healthy(); !ok || msg != "no record sent yet: the first one opens the connections" {
		t.Errorf("Healthy before any write = %v, %q", ok, msg)
	}
	o2, _, err := buildTLS("connect = [\"a:1\"]\ntls_async = true\ntls_flush_interval = \"250ms\"\n")
	if err != nil {
		t.Fatal(err)
	}
	if fl := o2.(output.Flusher); fl.FlushInterval() != 250*time.Millisecond {
		t.Errorf("FlushInterval = %v; want tls_flush_interval", fl.FlushInterval())
	}
	if err := o2.Close(context.Background()); err != nil {
		t.Errorf("Close before any write: %v", err)
	}
}

// Flowgger's documented [output] block for TLS loads as it is: every key is
// known, tls_compression = false is accepted, and the OpenSSL cipher list is
// understood.
func TestTLSAcceptsFlowggersOutputBlock(t *testing.T) {
	ca := testcerts.NewCA(t, "test CA")
	client := ca.Client(t, "flowgger")
	dir := t.TempDir()
	pem := testcerts.WriteFile(t, dir, "flowgger.pem", client.CertPEM, client.KeyPEM)
	caFile := testcerts.WriteFile(t, dir, "ca.pem", ca.CertPEM)
	f, err := config.Parse("flowgger.toml", `
[input]
type = "stdin"
format = "rfc5424"

[output]
type = "tls"
format = "gelf"
framing = "nul"
connect = ["127.0.0.1:6514", "[::1]:6514"]
timeout = 3600
tls_threads = 1
tls_cert = "`+pem+`"
tls_key = "`+pem+`"
tls_ca_file = "`+caFile+`"
tls_compatibility_level = "intermediate"
tls_verify_peer = true
tls_compression = false
tls_ciphers = "EECDH+AES128:EECDH+CHACHA20:RSA+AES128:EECDH+AES256:RSA+AES256:EECDH+3DES:RSA+3DES:!MD5;"
tls_async = false
tls_recovery_delay_init = 1
tls_recovery_delay_max = 10000
tls_recovery_probe_time = 30000
`)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := pipeline.Build(f, pipeline.Options{}); err != nil {
		t.Fatalf("Flowgger's TLS output block: %v", err)
	}
	if w := f.Warnings(); len(w) != 0 {
		t.Errorf("warnings %q; Flowgger's block deserves none", w)
	}
}
