package pipeline

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/flowgo/flowgo/config"
	"github.com/flowgo/flowgo/internal/capnp/capnptest"
)

// TestCapnpFramings: format capnp takes framing capnp by default on both
// sides; framings that would break binary messages, and framing capnp
// with another format, are errors that name the key.
func TestCapnpFramings(t *testing.T) {
	tests := []struct {
		name, src string
		want      string // Describe lines, or the error's start
	}{
		{"capnp in and out by default", "[input]\ntype=\"tcp\"\nlisten=\"127.0.0.1:0\"\nformat=\"capnp\"\n[output]\ntype=\"stdout\"\nformat=\"capnp\"\n",
			"format capnp, framing capnp|output: type stdout, format capnp, framing capnp"},
		{"Flowgger's keys", "[input]\ntype=\"stdin\"\nformat=\"capnp\"\nframing=\"capnp\"\n[output]\ntype=\"file\"\nfile_path=\"/dev/null\"\nformat=\"capnp\"\nframing=\"capnp\"\n",
			"format capnp, framing capnp|output: type file, format capnp, framing capnp"},
		{"octet counting and noop carry messages", "[input]\ntype=\"stdin\"\nformat=\"capnp\"\n[output]\ntype=\"stdout\"\nformat=\"capnp\"\nframing=\"syslen\"\n",
			"output: type stdout, format capnp, framing syslen"},
		{"noop", "[input]\ntype=\"stdin\"\nformat=\"capnp\"\n[output]\ntype=\"stdout\"\nformat=\"capnp\"\nframing=\"none\"\n",
			"output: type stdout, format capnp, framing noop"},
		{"no capnp on datagrams", "[input]\ntype=\"udp\"\nlisten=\"127.0.0.1:0\"\nformat=\"capnp\"\n[output]\ntype=\"stdout\"\nformat=\"gelf\"\n",
			`test.toml:4: input.format: format "capnp" needs a stream input (stdin, tcp or tls), where framing "capnp" cuts the messages; not type "udp"`},
		{"line framing cannot cut capnp", "[input]\ntype=\"tcp\"\nlisten=\"127.0.0.1:0\"\nformat=\"capnp\"\nframing=\"line\"\n[output]\ntype=\"stdout\"\n",
			`test.toml:5: input.framing: format "capnp" reads binary messages, which only framing = "capnp"`},
		{"framed = true is syslen", "[input]\ntype=\"tcp\"\nlisten=\"127.0.0.1:0\"\nformat=\"capnp\"\nframed=true\n[output]\ntype=\"stdout\"\n",
			`test.toml:5: input.framed: format "capnp" reads binary messages`},
		{"framing capnp needs format capnp", "[input]\ntype=\"stdin\"\nframing=\"capnp\"\n[output]\ntype=\"stdout\"\n",
			`test.toml:3: input.framing: framing "capnp" cuts Cap'n Proto messages: set format = "capnp" too (format is "rfc5424")`},
		{"line output breaks capnp", "[input]\ntype=\"stdin\"\n[output]\ntype=\"stdout\"\nformat=\"capnp\"\nframing=\"line\"\n",
			`test.toml:6: output.framing: framing "line" would break binary Cap'n Proto messages`},
		{"nul output breaks capnp", "[input]\ntype=\"stdin\"\n[output]\ntype=\"stdout\"\nformat=\"capnp\"\nframing=\"nul\"\n",
			`test.toml:6: output.framing: framing "nul" would break`},
		{"capnp output framing needs format capnp", "[input]\ntype=\"stdin\"\n[output]\ntype=\"stdout\"\nformat=\"gelf\"\nframing=\"capnp\"\n",
			`test.toml:6: output.framing: framing "capnp" carries Cap'n Proto messages; set format = "capnp"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, err := config.Parse("test.toml", tt.src)
			if err != nil {
				t.Fatal(err)
			}
			p, err := Build(f, Options{CheckOnly: true})
			if strings.HasPrefix(tt.want, "test.toml:") {
				if err == nil || !strings.HasPrefix(err.Error(), tt.want) {
					t.Errorf("Build error = %v;\nwant prefix %s", err, tt.want)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			d := p.Describe()
			for _, w := range strings.Split(tt.want, "|") {
				if !strings.Contains(d, w) {
					t.Errorf("Describe() = %s\nwant it to contain %q", d, w)
				}
			}
		})
	}
}

// TestCapnpDeadLetterFileReplays: the dead-letter file of a capnp input
// holds the rejected messages back to back, byte for byte, so that it can
// be fed to flowgo (or capnp decode) again.
func TestCapnpDeadLetterFileReplays(t *testing.T) {
	good := capnptest.Encode(t, []string{`(ts = 1, msg = "one")`})
	bad1 := capnptest.Encode(t, []string{`(msg = "no time")`})
	bad2 := capnptest.Encode(t, []string{`(ts = -5, msg = "before 1970")`})
	mem, id := newMem(t)
	dead := filepath.Join(t.TempDir(), "in.dead")
	p := build(t, fmt.Sprintf("[input]\ntype = \"stdin\"\nformat = \"capnp\"\ndead_letter_file = %q\n[output]\ntype = \"testmem\"\nid = %q\nformat = \"testmsg\"\n", dead, id),
		Options{Stdin: bytes.NewReader(bytes.Join([][]byte{good, bad1, good, bad2}, nil))})
	if err := p.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := mem.got(); strings.Join(got, "|") != "one|one" {
		t.Errorf("delivered %q", got)
	}
	got, err := os.ReadFile(dead)
	if err != nil {
		t.Fatal(err)
	}
	if want := append(bytes.Clone(bad1), bad2...); !bytes.Equal(got, want) {
		t.Errorf("dead letters = %x; want the two rejected messages %x", got, want)
	}
	if lines := capnptest.Decode(t, got); len(lines) != 2 {
		t.Errorf("capnp decode reads %q from the dead-letter file", lines)
	}
}
