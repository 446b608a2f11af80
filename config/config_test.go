package config

import (
	"errors"
	"strings"
	"testing"
	"time"
)

type tcpKeys struct {
	Type    string        `toml:"type"`
	Listen  string        `toml:"listen"`
	Timeout int           `toml:"timeout"`
	Flush   time.Duration `toml:"flush_interval"`
}

func TestUnknownKeyNamesLineAndClosestKey(t *testing.T) {
	src := `# a comment
[input]
type = "tcp"
listen = "127.0.0.1:514"
timeuot = 10

[output]
type = "stdout"
`
	f, err := Parse("flowgo.toml", src)
	if err != nil {
		t.Fatal(err)
	}
	var k tcpKeys
	if err := f.Inputs[0].Decode(&k); err != nil {
		t.Fatal(err)
	}
	var o struct {
		Type string `toml:"type"`
	}
	if err := f.Output.Decode(&o); err != nil {
		t.Fatal(err)
	}
	err = f.Check()
	want := `flowgo.toml:5: input.timeuot: unknown key (did you mean "timeout"?) (typo, or not supported by input type "tcp")`
	if err == nil || err.Error() != want {
		t.Errorf("Check() = %v;\nwant %s", err, want)
	}
}

func TestUppercaseKeyIsNotSilentlyAccepted(t *testing.T) {
	f, err := Parse("c.toml", "[input]\nLISTEN = \"x\"\n")
	if err != nil {
		t.Fatal(err)
	}
	var k tcpKeys
	f.Inputs[0].Decode(&k)
	err = f.Check()
	if err == nil || !strings.Contains(err.Error(), `c.toml:2: input.LISTEN: unknown key (did you mean "listen"?)`) {
		t.Errorf("Check() = %v; want an unknown-key error for LISTEN", err)
	}
}

func TestWrongTypeNamesKeyLineAndExpectedType(t *testing.T) {
	f, err := Parse("c.toml", "[input]\ntype = \"tcp\"\n\ntimeout = \"ten\"\n")
	if err != nil {
		t.Fatal(err)
	}
	var k tcpKeys
	err = f.Inputs[0].Decode(&k)
	var ce *Error
	if !errors.As(err, &ce) {
		t.Fatalf("Decode error %T %v; want *Error", err, err)
	}
	if ce.Line != 4 || ce.Key != "input.timeout" || ce.Msg != "wrong type: expected an integer, got a string" {
		t.Errorf("Decode error = %+v", ce)
	}
}

func TestBadDuration(t *testing.T) {
	f, _ := Parse("c.toml", "[input]\nflush_interval = \"fast\"\n")
	var k tcpKeys
	err := f.Inputs[0].Decode(&k)
	if err == nil || !strings.Contains(err.Error(), "c.toml:2: input.flush_interval:") || !strings.Contains(err.Error(), "invalid duration") {
		t.Errorf("Decode = %v; want an invalid-duration error at line 2", err)
	}
}

func TestSyntaxErrorHasPosition(t *testing.T) {
	_, err := Parse("c.toml", "[input]\ntype = \"tcp\nx=1\n")
	var ce *Error
	if !errors.As(err, &ce) || ce.Line != 2 || !strings.Contains(ce.Msg, "syntax error") {
		t.Errorf("Parse = %v; want a syntax error at line 2", err)
	}
}

func TestDefaultsSurviveAbsentKeys(t *testing.T) {
	f, _ := Parse("c.toml", "[input]\nlisten = \"a\"\n")
	k := tcpKeys{Timeout: 3600, Flush: time.Second}
	if err := f.Inputs[0].Decode(&k); err != nil {
		t.Fatal(err)
	}
	if k.Timeout != 3600 || k.Flush != time.Second || k.Listen != "a" {
		t.Errorf("decoded %+v; want defaults kept and listen set", k)
	}
}

func TestLegacyKeyWarns(t *testing.T) {
	f, _ := Parse("old.toml", "[output]\ntype = \"stdout\"\ntls_method = \"tlsv1.2\"\n")
	var o struct {
		Type string `toml:"type"`
	}
	f.Output.Decode(&o)
	f.Output.Legacy("Flowgger no longer reads it", "tls_method")
	if err := f.Check(); err != nil {
		t.Fatalf("Check() = %v; legacy keys must not be errors", err)
	}
	w := f.Warnings()
	if len(w) != 1 || w[0] != "old.toml:3: output.tls_method: ignored: Flowgger no longer reads it" {
		t.Errorf("Warnings() = %q", w)
	}
}

func TestInputArrayTablesAreCheckedOneByOne(t *testing.T) {
	src := `[[input]]
type = "tcp"
timeout = 5

[[input]]
type = "udp"
timeout = 5
`
	f, err := Parse("m.toml", src)
	if err != nil {
		t.Fatal(err)
	}
	if len(f.Inputs) != 2 || f.Inputs[1].Name() != "input[1]" {
		t.Fatalf("got %d inputs", len(f.Inputs))
	}
	var tcp tcpKeys
	f.Inputs[0].Decode(&tcp)
	var udp struct {
		Type string `toml:"type"`
	}
	f.Inputs[1].Decode(&udp)
	err = f.Check()
	// timeout is known to the tcp table, not to the udp one.
	want := `m.toml:7: input[1].timeout: unknown key (typo, or not supported by input type "udp")`
	if err == nil || err.Error() != want {
		t.Errorf("Check() = %v;\nwant %s", err, want)
	}
}

func TestUnknownTopLevelTable(t *testing.T) {
	f, _ := Parse("c.toml", "[input]\n[outptu]\ntype=\"x\"\n")
	err := f.Check("metrics")
	if err == nil || !strings.Contains(err.Error(), `c.toml:2: outptu: unknown table (did you mean "output"?)`) {
		t.Errorf("Check() = %v", err)
	}
}

func TestTopLevelKeyIsAnError(t *testing.T) {
	_, err := Parse("c.toml", "queuesize = 5\n[input]\n")
	if err == nil || !strings.Contains(err.Error(), "c.toml:1: queuesize:") {
		t.Errorf("Parse = %v; want an error naming the top-level key and line", err)
	}
}

func TestDistance(t *testing.T) {
	for _, tc := range []struct {
		a, b string
		want int
	}{{"listen", "listen", 0}, {"lsiten", "listen", 1}, {"timeuot", "timeout", 1}, {"x", "listen", 6}} {
		if got := distance(tc.a, tc.b); got != tc.want {
			t.Errorf("distance(%q, %q) = %d; want %d", tc.a, tc.b, got, tc.want)
		}
	}
}

func TestScalarWhereATableBelongsIsAnError(t *testing.T) {
	f, _ := Parse("c.toml", "[output]\ntype = \"stdout\"\ngelf_extra = \"x\"\n")
	var k struct {
		Extra map[string]string `toml:"gelf_extra"`
	}
	err := f.Output.Decode(&k)
	if err == nil || err.Error() != "c.toml:3: output.gelf_extra: wrong type: expected a table, got a string" {
		t.Errorf("Decode = %v", err)
	}
}

func TestSubTableKeyLines(t *testing.T) {
	f, _ := Parse("c.toml", "[input]\ntype = \"stdin\"\n\n[input.ltsv_schema]\nsize = \"u64\"\ncounter = \"u32\"\n[output]\n")
	if got := f.Inputs[0].Line("ltsv_schema.counter"); got != 6 {
		t.Errorf("Line(ltsv_schema.counter) = %d; want 6", got)
	}
	if got := f.Inputs[0].Line("ltsv_schema.nothere"); got != 4 {
		t.Errorf("Line of a missing sub-key = %d; want the sub-table's header, line 4", got)
	}
	if got := f.Inputs[0].Line("ltsv_schema"); got != 4 {
		t.Errorf("Line(ltsv_schema) = %d; want its header, line 4", got)
	}
}

func TestMisspeltTableIsReportedFirst(t *testing.T) {
	f, _ := Parse("c.toml", "[input]\ntype=\"stdin\"\n[ouput]\ntype=\"stdout\"\n")
	err := f.CheckTables("metrics")
	if err == nil || err.Error() != `c.toml:3: ouput: unknown table (did you mean "output"?)` {
		t.Errorf("CheckTables = %v", err)
	}
}

func TestKeyAfterASubTableHeaderIsExplained(t *testing.T) {
	src := "[output]\ntype = \"file\"\n[output.gelf_extra]\n_env = \"prod\"\nfile_path = \"/tmp/x\"\n"
	f, _ := Parse("c.toml", src)
	var k struct {
		Type  string            `toml:"type"`
		Path  string            `toml:"file_path"`
		Extra map[string]string `toml:"gelf_extra"`
	}
	if err := f.Output.Decode(&k); err != nil {
		t.Fatal(err)
	}
	err := f.Check()
	want := `c.toml:5: output.gelf_extra.file_path: "file_path" is a key of [output], but it follows the [output.gelf_extra] header, so TOML put it in that table: move it above the header`
	if err == nil || err.Error() != want {
		t.Errorf("Check() = %v;\nwant %s", err, want)
	}
}

// Wrap turns an error that knows only its key into one that names the
// file, line and section, and keeps its cause reachable.
func TestWrapNamesTheKeyOfAKeyError(t *testing.T) {
	f, err := Parse("w.toml", "[input]\ntype = \"tls\"\ntls_cert = \"x.pem\"\n")
	if err != nil {
		t.Fatal(err)
	}
	s := f.Inputs[0]
	cause := errors.New("no such file")
	err = s.Wrap("type", &KeyError{Key: "tls_cert", Err: cause})
	if got, want := err.Error(), "w.toml:3: input.tls_cert: no such file"; got != want {
		t.Errorf("Wrap(KeyError) = %q; want %q", got, want)
	}
	var ce *Error
	if !errors.As(err, &ce) || ce.Key != "input.tls_cert" || ce.Line != 3 || !errors.Is(err, cause) {
		t.Errorf("Wrap(KeyError) = %#v; want an *Error about input.tls_cert, line 3, wrapping the cause", err)
	}
	if got, want := s.Wrap("type", cause).Error(), "w.toml:2: input.type: no such file"; got != want {
		t.Errorf("Wrap(plain error) = %q; want %q", got, want)
	}
	if again := s.Wrap("type", err); again != err {
		t.Errorf("Wrap(*Error) = %v; want it unchanged", again)
	}
	if s.Wrap("type", nil) != nil {
		t.Error("Wrap(nil) is not nil")
	}
}
