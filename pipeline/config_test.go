package pipeline

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/flowgo/flowgo/config"
)

// buildErr builds src as test.toml (CheckOnly: nothing is created) and
// returns the error.
func buildErr(t *testing.T, src string) error {
	t.Helper()
	f, err := config.Parse("test.toml", src)
	if err != nil {
		t.Fatal(err)
	}
	_, err = Build(f, Options{CheckOnly: true, Log: quietLog()})
	return err
}

// TestTimeKeysOverflowIsAnError covers every key that Flowgger takes as a
// number of some unit: none may wrap around (timeout = 18446744074 seconds
// used to become 290 ms), each names its key and line.
func TestTimeKeysOverflowIsAnError(t *testing.T) {
	tcp := "[input]\ntype = \"tcp\"\nlisten = \"127.0.0.1:0\"\nformat = \"testline\"\n"
	tlsOut := "[output]\ntype = \"tls\"\nconnect = [\"127.0.0.1:1\"]\nformat = \"testmsg\"\n"
	kafka := "[output]\ntype = \"kafka\"\nkafka_brokers = [\"127.0.0.1:1\"]\nkafka_topic = \"t\"\nformat = \"testmsg\"\n"
	file := fmt.Sprintf("[output]\ntype = \"file\"\nfile_path = %q\nformat = \"testmsg\"\n", filepath.Join(t.TempDir(), "out.log"))
	stdin := "[input]\ntype = \"stdin\"\nformat = \"testline\"\n"
	for _, tt := range []struct {
		name, src, want string
	}{
		{"input timeout", tcp + "timeout = 18446744074\n" + "[output]\ntype = \"stdout\"\nformat = \"testmsg\"\n",
			"test.toml:5: input.timeout: 18446744074 seconds is out of range: at most 9223372036 (292 years)"},
		{"tls output timeout", stdin + tlsOut + "timeout = 18446744074\n",
			"test.toml:8: output.timeout: 18446744074 seconds is out of range"},
		{"tls_recovery_delay_init", stdin + tlsOut + "tls_recovery_delay_init = 9223372036855\n",
			"test.toml:8: output.tls_recovery_delay_init: 9223372036855 milliseconds is out of range"},
		{"tls_recovery_delay_max", stdin + tlsOut + "tls_recovery_delay_max = 18446744073709\n",
			"test.toml:8: output.tls_recovery_delay_max: 18446744073709 milliseconds is out of range"},
		{"tls_recovery_probe_time", stdin + tlsOut + "tls_recovery_probe_time = 9223372036855\n",
			"test.toml:8: output.tls_recovery_probe_time: 9223372036855 milliseconds is out of range"},
		{"kafka_timeout", stdin + kafka + "kafka_timeout = 18446744073709\n",
			"test.toml:9: output.kafka_timeout: 18446744073709 milliseconds is out of range"},
		{"file_rotation_time", stdin + file + "file_rotation_time = 307445734562\n",
			"test.toml:8: output.file_rotation_time: 307445734562 minutes is out of range"},
		{"a duration string out of range", tcp + "timeout = \"3000000h\"\n" + "[output]\ntype = \"stdout\"\nformat = \"testmsg\"\n",
			"test.toml:5: input.timeout: invalid duration \"3000000h\""},
		{"a bare integer for a Go duration key", stdin + "[output]\ntype = \"stdout\"\nformat = \"testmsg\"\nshutdown_timeout = 30\n",
			"test.toml:7: output.shutdown_timeout: 30 is not a duration: write it with its unit"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			err := buildErr(t, tt.src)
			if err == nil || !strings.HasPrefix(err.Error(), tt.want) {
				t.Errorf("Build error = %v;\nwant prefix %s", err, tt.want)
			}
		})
	}
}

func TestTimeKeysTakeDurationStrings(t *testing.T) {
	src := `[input]
type = "tcp"
listen = "127.0.0.1:0"
format = "testline"
timeout = "90m"
[output]
type = "tls"
connect = ["127.0.0.1:1"]
format = "testmsg"
timeout = "45s"
tls_recovery_delay_init = "5ms"
tls_recovery_delay_max = 2000
tls_recovery_probe_time = "1m"
`
	f, err := config.Parse("test.toml", src)
	if err != nil {
		t.Fatal(err)
	}
	p, err := Build(f, Options{CheckOnly: true, Log: quietLog()})
	if err != nil {
		t.Fatal(err)
	}
	d := p.Describe()
	for _, want := range []string{`timeout = "90m"`, `timeout = "45s"`, `tls_recovery_delay_init = "5ms"`, "tls_recovery_delay_max = 2000", `tls_recovery_probe_time = "1m"`} {
		if !strings.Contains(d, "\n  "+want+"\n") {
			t.Errorf("check output lacks %s:\n%s", want, d)
		}
	}
}

func TestZeroQueueSizesAreRefused(t *testing.T) {
	for _, tt := range []struct{ key, want string }{
		{"queuesize = 0", "test.toml:4: input.queuesize: must be at least 1 record, not 0 (leave it out for the default, 32768)"},
		{"queue_max_bytes = 0", "test.toml:4: input.queue_max_bytes: must be at least 1 byte, not 0 (leave it out for the default, 67108864)"},
		{"queuesize = -5", "test.toml:4: input.queuesize: must be at least 1 record, not -5"},
	} {
		err := buildErr(t, "[input]\ntype = \"stdin\"\nformat = \"testline\"\n"+tt.key+"\n[output]\ntype = \"stdout\"\nformat = \"testmsg\"\n")
		if err == nil || !strings.HasPrefix(err.Error(), tt.want) {
			t.Errorf("%s: Build error = %v;\nwant prefix %s", tt.key, err, tt.want)
		}
	}
	// Values that are set stay as they were.
	if err := buildErr(t, "[input]\ntype = \"stdin\"\nformat = \"testline\"\nqueuesize = 1\nqueue_max_bytes = 1\n[output]\ntype = \"stdout\"\nformat = \"testmsg\"\n"); err != nil {
		t.Errorf("queuesize = 1: %v", err)
	}
}

func TestDeadLetterFileCannotBeTheOutputFile(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "out.log")
	// The same file by another spelling, and through a symbolic link.
	if err := os.WriteFile(out, nil, 0o640); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "link.log")
	if err := os.Symlink(out, link); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct{ name, in, out, want string }{
		{"input dead_letter_file", "dead_letter_file = " + fmt.Sprintf("%q", dir+"/./sub/../out.log") + "\n", "",
			fmt.Sprintf("test.toml:4: input.dead_letter_file: %q is also output.file_path (line 8): rejected frames would be mixed with the records", dir+"/./sub/../out.log")},
		{"output dead_letter_file", "", fmt.Sprintf("dead_letter_file = %q\n", out),
			fmt.Sprintf("test.toml:9: output.dead_letter_file: %q is also file_path (line 8)", out)},
		{"through a link", "", fmt.Sprintf("dead_letter_file = %q\n", link),
			fmt.Sprintf("test.toml:9: output.dead_letter_file: %q is also file_path (line 8)", link)},
	} {
		t.Run(tt.name, func(t *testing.T) {
			src := "[input]\ntype = \"stdin\"\nformat = \"testline\"\n" + tt.in +
				"[output]\ntype = \"file\"\nformat = \"testmsg\"\n" + fmt.Sprintf("file_path = %q\n", out) + tt.out
			if tt.in == "" {
				src = "[input]\ntype = \"stdin\"\nformat = \"testline\"\n\n" +
					"[output]\ntype = \"file\"\nformat = \"testmsg\"\n" + fmt.Sprintf("file_path = %q\n", out) + tt.out
			}
			err := buildErr(t, src)
			if err == nil || !strings.HasPrefix(err.Error(), tt.want) {
				t.Errorf("Build error = %v;\nwant prefix %s", err, tt.want)
			}
		})
	}
	// Another file in the same directory is fine.
	src := fmt.Sprintf("[input]\ntype = \"stdin\"\nformat = \"testline\"\ndead_letter_file = %q\n[output]\ntype = \"file\"\nformat = \"testmsg\"\nfile_path = %q\ndead_letter_file = %q\n",
		filepath.Join(dir, "in.dead"), out, filepath.Join(dir, "out.dead"))
	if err := buildErr(t, src); err != nil {
		t.Errorf("distinct files: %v", err)
	}
}

func TestCheckPrintsTheMetricsTable(t *testing.T) {
	cfg := writeFile(t, t.TempDir(), "m.toml", "[input]\ntype = \"stdin\"\nformat = \"testline\"\n[output]\ntype = \"stdout\"\nformat = \"testmsg\"\n[metrics]\nlisten = \"127.0.0.1:0\"\n")
	g, err := LoadGroup([]string{cfg}, Options{CheckOnly: true, Log: quietLog()}, "")
	if err != nil {
		t.Fatal(err)
	}
	d := g.Pipelines()[0].Describe()
	want := "\n[metrics]\n  listen = \"127.0.0.1:0\"\n  stall_timeout = \"5m0s\"\n"
	if !strings.Contains(d, want) {
		t.Errorf("Describe() lacks%s\ngot:\n%s", want, d)
	}
}
