package pipeline

import (
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/flowgo/flowgo/config"
)

// names builds src and returns its inputs' names and its output's name.
func names(t *testing.T, src string) ([]string, string) {
	t.Helper()
	f, err := config.Parse("test.toml", src)
	if err != nil {
		t.Fatal(err)
	}
	p, err := Build(f, Options{CheckOnly: true, Log: quietLog()})
	if err != nil {
		t.Fatal(err)
	}
	var in []string
	for _, ip := range p.plan.Load().inputs {
		in = append(in, ip.name)
	}
	return in, p.plan.Load().out.name
}

func TestComponentNames(t *testing.T) {
	out := filepath.Join(t.TempDir(), "out.log")
	file := fmt.Sprintf("[output]\ntype = \"file\"\nfile_path = %q\nformat = \"testmsg\"\n", out)
	t.Run("by default a component is named by its type and address or path", func(t *testing.T) {
		in, o := names(t, `
[[input]]
type = "udp"
listen = "127.0.0.1:5514"
format = "testline"
[[input]]
type = "syslog-tcp"
listen = "127.0.0.1:5514"
format = "testline"
[[input]]
type = "stdin"
format = "testline"
`+file)
		if want := []string{"udp:127.0.0.1:5514", "tcp:127.0.0.1:5514", "stdin"}; !slices.Equal(in, want) {
			t.Errorf("inputs named %q; want %q", in, want)
		}
		if want := "file:" + out; o != want {
			t.Errorf("output named %q; want %q", o, want)
		}
	})
	t.Run("the name key names a component", func(t *testing.T) {
		in, o := names(t, `
[[input]]
name = "syslog udp"
type = "udp"
listen = "127.0.0.1:5514"
format = "testline"
[[input]]
type = "tcp"
listen = "127.0.0.1:5514"
format = "testline"
`+file+"name = \"archive\"\n")
		if want := []string{"syslog udp", "tcp:127.0.0.1:5514"}; !slices.Equal(in, want) {
			t.Errorf("inputs named %q; want %q", in, want)
		}
		if o != "archive" {
			t.Errorf("output named %q; want archive", o)
		}
	})
	t.Run("names do not depend on the order of the inputs", func(t *testing.T) {
		a, _ := names(t, "[[input]]\ntype = \"udp\"\nlisten = \"127.0.0.1:1\"\nformat = \"testline\"\n[[input]]\ntype = \"tcp\"\nlisten = \"127.0.0.1:2\"\nformat = \"testline\"\n"+file)
		b, _ := names(t, "[[input]]\ntype = \"tcp\"\nlisten = \"127.0.0.1:2\"\nformat = \"testline\"\n[[input]]\ntype = \"udp\"\nlisten = \"127.0.0.1:1\"\nformat = \"testline\"\n"+file)
		slices.Reverse(b)
		if !slices.Equal(a, b) {
			t.Errorf("reordered inputs are named %q and %q", a, b)
		}
	})
	t.Run("equal default names are told apart", func(t *testing.T) {
		in, _ := names(t, "[[input]]\ntype = \"tcp\"\nlisten = \"127.0.0.1:0\"\nformat = \"testline\"\n[[input]]\ntype = \"tcp\"\nlisten = \"127.0.0.1:0\"\nformat = \"testline\"\n"+file)
		if want := []string{"tcp:127.0.0.1:0", "tcp:127.0.0.1:0#2"}; !slices.Equal(in, want) {
			t.Errorf("inputs named %q; want %q", in, want)
		}
	})
	for _, tt := range []struct {
		name, src, want string
	}{
		{"a name given twice is an error naming both lines",
			"[[input]]\nname = \"web\"\ntype = \"udp\"\nlisten = \"127.0.0.1:1\"\nformat = \"testline\"\n[[input]]\ntype = \"tcp\"\nname = \"web\"\nlisten = \"127.0.0.1:2\"\nformat = \"testline\"\n" + file,
			`test.toml:8: input[1].name: "web" is also the name of input[0] (line 2): names must be unique in a pipeline`},
		{"a name that is another input's default is an error",
			"[[input]]\ntype = \"udp\"\nlisten = \"127.0.0.1:1\"\nformat = \"testline\"\n[[input]]\nname = \"udp:127.0.0.1:1\"\ntype = \"tcp\"\nlisten = \"127.0.0.1:2\"\nformat = \"testline\"\n" + file,
			`test.toml:6: input[1].name: "udp:127.0.0.1:1" is also the name of input[0] (line 1)`},
		{"an empty name is an error", "[input]\nname = \"\"\ntype = \"stdin\"\nformat = \"testline\"\n" + file,
			`test.toml:2: input.name: must be 1 to 128 printable characters`},
		{"a name with a control character is an error", "[input]\ntype = \"stdin\"\nformat = \"testline\"\n" + file + "name = \"a\\nb\"\n",
			`test.toml:8: output.name: must be 1 to 128 printable characters`},
		{"a name that is not a string is an error", "[input]\ntype = \"stdin\"\nname = 3\nformat = \"testline\"\n" + file,
			`test.toml:3`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			err := buildErr(t, tt.src)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Build = %v; want an error containing %q", err, tt.want)
			}
		})
	}
}

// "json" is an alias of "gelf": outputs get the canonical name, so the
// TLS output frames it with NUL as it does GELF.
func TestJSONIsGELFForOutputs(t *testing.T) {
	f, err := config.Parse("test.toml", "[input]\ntype = \"stdin\"\n[output]\ntype = \"tls\"\nconnect = [\"127.0.0.1:9\"]\nformat = \"json\"\n")
	if err != nil {
		t.Fatal(err)
	}
	p, err := Build(f, Options{CheckOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Release()
	if got := p.plan.Load().out.framing; got != "nul" {
		t.Errorf("tls output with format json: framing %q; want nul, as for gelf", got)
	}
}
