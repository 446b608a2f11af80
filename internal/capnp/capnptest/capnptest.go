// Package capnptest drives the reference Cap'n Proto tool, `capnp` (Debian
// package capnproto, installed by .ci/tools), with Flowgger's record.capnp,
// for the tests of flowgo's Cap'n Proto reader, decoder, encoder and
// binaries. A test that calls it fails, not skips, when the tool is missing.
package capnptest

import (
	"bytes"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// Schema returns the path of testdata/capnp/record.capnp.
func Schema(t testing.TB) string {
	t.Helper()
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		t.Fatal("capnptest: cannot locate the package source")
	}
	return filepath.Join(filepath.Dir(file), "..", "..", "..", "testdata", "capnp", "record.capnp")
}

// Tool returns the path of the capnp tool.
func Tool(t testing.TB) string {
	t.Helper()
	p, err := exec.LookPath("capnp")
	if err != nil {
		t.Fatalf("the capnp tool is needed (Debian package capnproto; .ci/tools installs it): %v", err)
	}
	return p
}

// Run runs capnp with args and stdin, and returns its stdout; it fails the
// test if capnp fails.
func Run(t testing.TB, stdin []byte, args ...string) []byte {
	t.Helper()
	cmd := exec.Command(Tool(t), args...)
	cmd.Stdin = bytes.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("capnp %s: %v\nstderr: %s", strings.Join(args, " "), err, errb.String())
	}
	return out.Bytes()
}

// Encode turns Record literals in capnp's text format, such as
// `(ts = 1.5, hostname = "web1")`, into binary messages in the standard
// stream framing, one after the other. args are extra options of capnp
// encode (--segment-size=N makes multi-segment messages with far pointers).
func Encode(t testing.TB, literals []string, args ...string) []byte {
	t.Helper()
	a := append([]string{"encode"}, args...)
	a = append(a, Schema(t), "Record")
	return Run(t, []byte(strings.Join(literals, "\n")), a...)
}

// Decode turns a stream of binary Record messages into capnp's text format,
// one message a line.
func Decode(t testing.TB, stream []byte) []string {
	t.Helper()
	out := Run(t, stream, "decode", "--short", Schema(t), "Record")
	s := strings.TrimSuffix(string(out), "\n")
	if s == "" {
		return nil
	}
	return strings.Split(s, "\n")
}

// Layout returns `capnp compile -ocapnp record.capnp`: the schema with the
// offset of every field in comments.
func Layout(t testing.TB) string {
	t.Helper()
	return string(Run(t, nil, "compile", "-ocapnp", Schema(t)))
}
