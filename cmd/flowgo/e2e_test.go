package main

// End-to-end tests: they build the flowgo binary and run it as a user would,
// with real stdin/stdout/stderr, files, signals and exit codes.

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/flowgo/flowgo/internal/sample"
	"github.com/flowgo/flowgo/internal/testcerts"
)

var flowgoBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "flowgo-e2e")
	if err != nil {
		panic(err)
	}
	flowgoBin = filepath.Join(dir, "flowgo")
	out, err := exec.Command("go", "build", "-o", flowgoBin, ".").CombinedOutput()
	if err != nil {
		fmt.Fprintf(os.Stderr, "building flowgo: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

type result struct {
	stdout, stderr string
	code           int
}

func flowgo(t *testing.T, stdin []byte, args ...string) result {
	t.Helper()
	cmd := exec.Command(flowgoBin, args...)
	cmd.Stdin = bytes.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return result{out.String(), errb.String(), code}
}

func TestPipeMixedGoodAndBadInput(t *testing.T) {
	g := sample.New(7)
	var in bytes.Buffer
	var bad []string
	badLines := map[int]string{
		3:    "this is not syslog",
		17:   "<13>1 2026-13-45T99:00:00Z host app - - - bad timestamp",
		500:  "<999>1 - - - - - - bad priority",
		1000: "<13>1 2026-11-25T10:00:00Z host app - - [unterminated sd",
	}
	const total = 1200
	good := 0
	for i := 1; i <= total; i++ {
		if l, ok := badLines[i]; ok {
			in.WriteString(l + "\n")
			bad = append(bad, l)
			continue
		}
		in.Write(g.RFC5424(nil))
		in.WriteByte('\n')
		good++
	}
	errFile := filepath.Join(t.TempDir(), "rejected.log")
	r := flowgo(t, in.Bytes(), "pipe", "--from", "rfc5424", "--to", "gelf", "--errors", errFile)
	if r.code != 1 {
		t.Errorf("exit code = %d; want 1 (some records rejected)\nstderr: %s", r.code, r.stderr)
	}
	outLines := strings.Split(strings.TrimSuffix(r.stdout, "\n"), "\n")
	if len(outLines) != good {
		t.Fatalf("stdout has %d lines; want %d", len(outLines), good)
	}
	for i, l := range outLines {
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("stdout line %d is not JSON: %v: %s", i+1, err, l)
		}
		if m["version"] != "1.1" || m["host"] == nil || m["short_message"] == nil || m["timestamp"] == nil {
			t.Fatalf("stdout line %d lacks GELF keys: %s", i+1, l)
		}
	}
	for n := range badLines {
		re := regexp.MustCompile(fmt.Sprintf(`(?m)^line %d: rfc5424: .+\[col \d+\]$`, n))
		if !re.MatchString(r.stderr) {
			t.Errorf("stderr does not report line %d with the reason and column:\n%s", n, r.stderr)
		}
	}
	want := fmt.Sprintf("%d records converted, %d rejected", good, len(bad))
	if !strings.Contains(r.stderr, want) {
		t.Errorf("stderr lacks the summary %q:\n%s", want, r.stderr)
	}
	// Bad lines are kept byte for byte, in input order.
	var wantErr []string
	for _, n := range []int{3, 17, 500, 1000} {
		wantErr = append(wantErr, badLines[n])
	}
	if got, _ := os.ReadFile(errFile); string(got) != strings.Join(wantErr, "\n")+"\n" {
		t.Errorf("--errors file = %q; want %q", got, strings.Join(wantErr, "\n")+"\n")
	}
}

func TestPipeAllGoodExitsZeroAndStderrStaysQuiet(t *testing.T) {
	in := sample.Lines(1000, sample.New(1).RFC3164)
	r := flowgo(t, in, "pipe", "--from", "rfc3164", "--to", "rfc5424")
	if r.code != 0 || r.stderr != "" {
		t.Fatalf("exit %d, stderr %q; want 0 and nothing", r.code, r.stderr)
	}
	if n := strings.Count(r.stdout, "\n"); n != 1000 {
		t.Errorf("%d output lines; want 1000", n)
	}
	// The RFC 5424 output decodes again with no loss.
	again := flowgo(t, []byte(r.stdout), "pipe", "--from", "rfc5424", "--to", "rfc5424")
	if again.code != 0 || again.stdout != r.stdout {
		t.Errorf("re-decoding flowgo's own RFC 5424 output changed it (exit %d): %s", again.code, again.stderr)
	}
}

func TestPipeUsageErrors(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"missing --to", []string{"pipe", "--from", "rfc5424"}, "--from and --to are required"},
		{"unknown input format", []string{"pipe", "--from", "rfc9999", "--to", "gelf"}, `--from: input format "rfc9999" unknown (known: `},
		{"unknown output format", []string{"pipe", "--from", "rfc5424", "--to", "xml"}, `--to: output format "xml" unknown (known: `},
		{"unknown framing", []string{"pipe", "--from", "rfc5424", "--to", "gelf", "--framing", "lines"}, `--framing: framing "lines" unknown`},
		{"unknown flag", []string{"pipe", "--form", "rfc5424"}, "flag provided but not defined: -form"},
		{"unknown command", []string{"frobnicate", "x"}, `unknown command or flag "frobnicate"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := flowgo(t, nil, tt.args...)
			if r.code != 2 || !strings.Contains(r.stderr, tt.want) {
				t.Errorf("exit %d, stderr %q; want 2 and %q", r.code, r.stderr, tt.want)
			}
		})
	}
}

func TestHelpListsFormatsFramingsAndTypes(t *testing.T) {
	r := flowgo(t, nil, "-h")
	for _, want := range []string{"rfc5424", "rfc3164", "gelf", "ltsv", "auto", "passthrough", "syslen", "nul", "stdin", "stdout", "file"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("help lacks %q:\n%s", want, r.stdout)
		}
	}
	if r.code != 0 {
		t.Errorf("exit %d", r.code)
	}
}

func writeConfig(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "flowgo.toml")
	if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestConfigErrorsExitTwoWithFileAndLine(t *testing.T) {
	cfg := writeConfig(t, "[input]\ntype = \"stdin\"\nformat = \"rfc5424\"\nqueusize = 10\n[output]\ntype = \"stdout\"\n")
	r := flowgo(t, nil, "run", "-c", cfg)
	want := cfg + `:4: input.queusize: unknown key (did you mean "queuesize"?)`
	if r.code != 2 || !strings.Contains(r.stderr, want) {
		t.Errorf("exit %d, stderr %q; want 2 and %q", r.code, r.stderr, want)
	}
	// Flowgger's positional form and check give the same error.
	if r2 := flowgo(t, nil, cfg); r2.code != 2 || !strings.Contains(r2.stderr, want) {
		t.Errorf("flowgo FILE: exit %d, stderr %q", r2.code, r2.stderr)
	}
	if r3 := flowgo(t, nil, "check", "-c", cfg); r3.code != 2 || !strings.Contains(r3.stderr, want) {
		t.Errorf("flowgo check: exit %d, stderr %q", r3.code, r3.stderr)
	}
}

func TestRunStdinToRotatedFilesLosesNothing(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "out.log")
	cfg := writeConfig(t, fmt.Sprintf(`
[input]
type = "stdin"
format = "rfc5424"
[output]
type = "file"
format = "rfc5424"
file_path = %q
file_buffer_size = 65536
file_rotation_size = 1000000
file_rotation_maxfiles = 100
`, out))
	const n = 40000
	in := sample.Lines(n, sample.New(3).RFC5424)
	r := flowgo(t, in, "run", "-c", cfg)
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	// Size rotation: out.log is the newest, then out.0, out.1, ... older and older.
	var files []string
	for i := 99; i >= 0; i-- {
		p := filepath.Join(dir, fmt.Sprintf("out.%d", i))
		if _, err := os.Stat(p); err == nil {
			files = append(files, p)
		}
	}
	files = append(files, out)
	if len(files) < 5 {
		t.Fatalf("only %d files: rotation did not happen", len(files))
	}
	var all []string
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if fi, _ := os.Stat(f); f != out && fi.Size() > 1000000 {
			t.Errorf("%s is %d bytes, over file_rotation_size", f, fi.Size())
		}
		all = append(all, strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")...)
	}
	if len(all) != n {
		t.Fatalf("the files hold %d records; want %d", len(all), n)
	}
	// Same records, same order: compare the structured-data sequence numbers.
	seq := regexp.MustCompile(`seq="(\d+)"`)
	for i, l := range all {
		m := seq.FindStringSubmatch(l)
		if m == nil || m[1] != fmt.Sprint(i+1) {
			t.Fatalf("record %d is %q; want seq %d (lost, duplicated or out of order)", i, l, i+1)
		}
	}
}

func TestSIGTERMDrainsAndFlushes(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "out.log")
	cfg := writeConfig(t, fmt.Sprintf(`
[input]
type = "stdin"
format = "rfc5424"
[output]
type = "file"
format = "gelf"
file_path = %q
file_buffer_size = 1048576
file_flush_interval = "1h"
`, out))
	cmd := exec.Command(flowgoBin, "run", "-c", cfg)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	var errb bytes.Buffer
	cmd.Stderr = &errb
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	const n = 5000
	w := bufio.NewWriter(stdin)
	w.Write(sample.Lines(n, sample.New(9).RFC5424))
	w.Flush()
	time.Sleep(500 * time.Millisecond) // read and queued; stdin stays open
	cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan error)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("exit: %v\n%s", err, errb.String())
		}
	case <-time.After(20 * time.Second):
		cmd.Process.Kill()
		t.Fatal("flowgo did not exit after SIGTERM")
	}
	b, _ := os.ReadFile(out)
	if got := bytes.Count(b, []byte("\n")); got != n {
		t.Errorf("after SIGTERM the file holds %d records; want %d (the buffer was not flushed?)\n%s", got, n, errb.String())
	}
	if !strings.Contains(errb.String(), "lost=0") {
		t.Errorf("the exit report does not say lost=0:\n%s", errb.String())
	}
}

func TestShippedConfigRunsWithoutRootOrKafka(t *testing.T) {
	r := flowgo(t, nil, "check", "-c", "../../flowgo.toml")
	if r.code != 0 {
		t.Fatalf("flowgo check flowgo.toml: exit %d: %s", r.code, r.stderr)
	}
	in, err := os.ReadFile("../../testdata/sample.log")
	if err != nil {
		t.Fatal(err)
	}
	r = flowgo(t, in, "run", "-c", "../../flowgo.toml")
	if r.code != 0 || strings.Count(r.stdout, "\n") != bytes.Count(in, []byte("\n")) {
		t.Errorf("run on the shipped config: exit %d, %d output lines for %d input lines\n%s", r.code,
			strings.Count(r.stdout, "\n"), bytes.Count(in, []byte("\n")), r.stderr)
	}
}

// TestShippedConfigDocumentsEveryKey builds a config of every input and
// output type, asks `flowgo check` for every effective key, and requires each
// one to appear in the shipped flowgo.toml, set or commented out.
func TestShippedConfigDocumentsEveryKey(t *testing.T) {
	shipped, err := os.ReadFile("../../flowgo.toml")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	ca := testcerts.NewCA(t, "ca")
	leaf := ca.Server(t)
	cert := testcerts.WriteFile(t, dir, "c.pem", leaf.CertPEM, leaf.KeyPEM)
	inputs := []string{`type = "stdin"`, `type = "tcp"`, `type = "udp"` + "\nformat = \"gelf\"", fmt.Sprintf("type = \"tls\"\ntls_cert = %q", cert),
		`type = "file"` + "\nsrc = \"/var/log/app/*.log\""}
	outputs := []string{`type = "stdout"`, fmt.Sprintf("type = \"file\"\nfile_path = %q", filepath.Join(dir, "o.log")),
		"type = \"kafka\"\nkafka_brokers = [\"127.0.0.1:9\"]\nkafka_topic = \"t\"", "type = \"tls\"\nconnect = [\"127.0.0.1:9\"]"}
	formats := []string{"gelf", "rfc5424", "rfc3164", "ltsv", "passthrough"}
	keyRE := regexp.MustCompile(`(?m)^\s+(\w+) = `)
	seen := map[string]bool{}
	for i, in := range inputs {
		for j, out := range outputs {
			cfg := writeConfig(t, fmt.Sprintf("[input]\n%s\n[output]\n%s\nformat = %q\n[metrics]\nlisten = \"127.0.0.1:0\"\n[queue]\ntype = \"disk\"\npath = %q\n",
				in, out, formats[(i+j)%len(formats)], filepath.Join(dir, "queue")))
			r := flowgo(t, nil, "check", "-c", cfg)
			if r.code != 0 {
				t.Fatalf("check %s / %s: %s", in, out, r.stderr)
			}
			for _, m := range keyRE.FindAllStringSubmatch(r.stdout, -1) {
				seen[m[1]] = true
			}
		}
	}
	for _, extra := range []string{"ltsv_schema", "ltsv_suffixes", "gelf_extra", "ltsv_extra", "capnp_extra", "syslog_prepend_timestamp", "syslog_sd_id", "rfc3164_timezone", "listen", "stall_timeout", "max_bytes", "sync", "sync_interval", "path"} {
		seen[extra] = true
	}
	if len(seen) < 60 {
		t.Fatalf("only %d keys seen: the check output changed?", len(seen))
	}
	for key := range seen {
		if !regexp.MustCompile(`(?m)^#?\[?\w*\.?` + key + `\]?( = |$)`).Match(shipped) {
			t.Errorf("flowgo.toml does not document %q", key)
		}
	}
}

// flowgo check validates dead-letter paths without creating the files, and
// names the key of one that cannot be created.
func TestCheckCreatesNoDeadLetterFile(t *testing.T) {
	dir := t.TempDir()
	in, out := filepath.Join(dir, "in-dead.log"), filepath.Join(dir, "out-dead.log")
	cfg := writeConfig(t, fmt.Sprintf("[input]\ntype = \"udp\"\nlisten = \"127.0.0.1:0\"\ndead_letter_file = %q\n"+
		"[output]\ntype = \"file\"\nfile_path = %q\ndead_letter_file = %q\n", in, filepath.Join(dir, "out.log"), out))
	if r := flowgo(t, nil, "check", "-c", cfg); r.code != 0 {
		t.Fatalf("check: exit %d: %s", r.code, r.stderr)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		t.Errorf("flowgo check created %s", e.Name())
	}

	missing := filepath.Join(dir, "no-such-dir", "dead.log")
	cfg = writeConfig(t, fmt.Sprintf("[input]\ntype = \"stdin\"\ndead_letter_file = %q\n[output]\ntype = \"stdout\"\n", missing))
	r := flowgo(t, nil, "check", "-c", cfg)
	if r.code != 2 || !strings.Contains(r.stderr, "dead_letter_file") || !strings.Contains(r.stderr, "no-such-dir") {
		t.Errorf("check with a dead-letter file in a missing directory: exit %d, stderr %q; want exit 2 naming the key and the directory", r.code, r.stderr)
	}
	if r := flowgo(t, nil, "run", "-c", cfg); r.code != 2 || !strings.Contains(r.stderr, "dead_letter_file") {
		t.Errorf("run with a dead-letter file in a missing directory: exit %d, stderr %q; want exit 2 naming the key", r.code, r.stderr)
	}
}
