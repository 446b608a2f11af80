package config

import (
	"io/fs"
	"strings"
	"testing"
)

type modeKeys struct {
	Mode FileMode `toml:"file_mode"`
}

func TestFileModeTakesOctal(t *testing.T) {
	for _, tt := range []struct {
		src  string
		want fs.FileMode
	}{
		{"", 0o640},
		{`file_mode = "0640"`, 0o640},
		{`file_mode = "600"`, 0o600},
		{`file_mode = "0o644"`, 0o644},
		{"file_mode = 0o660 # group writes", 0o660},
	} {
		f, err := Parse("c.toml", "[output]\n"+tt.src+"\n")
		if err != nil {
			t.Fatal(err)
		}
		k := modeKeys{Mode: Mode(0o640)}
		if err := f.Output.Decode(&k); err != nil || k.Mode.Get() != tt.want {
			t.Errorf("%q: %v, %v; want %v", tt.src, k.Mode.Get(), err, tt.want)
		}
	}
}

func TestFileModeErrors(t *testing.T) {
	for _, tt := range []struct{ src, want string }{
		{"file_mode = 640", `c.toml:2: output.file_mode: 640 is a decimal integer, not an octal mode: write "0640" or 0o640`},
		{`file_mode = "0648"`, `c.toml:2: output.file_mode: "0648" is not an octal file mode`},
		{`file_mode = "04755"`, `c.toml:2: output.file_mode: 4755 is not a permission mode`},
		{`file_mode = "0440"`, `c.toml:2: output.file_mode: 0440 does not let flowgo's user read and write`},
		{`file_mode = "0666"`, `c.toml:2: output.file_mode: 0666 lets every user write the file`},
		{`file_mode = true`, `c.toml:2: output.file_mode: wrong type: expected an octal file mode such as "0640", got a boolean`},
	} {
		f, err := Parse("c.toml", "[output]\n"+tt.src+"\n")
		if err != nil {
			t.Fatal(err)
		}
		k := modeKeys{Mode: Mode(0o640)}
		if err := f.Output.Decode(&k); err == nil || !strings.HasPrefix(err.Error(), tt.want) {
			t.Errorf("%q: Decode = %v; want %s", tt.src, err, tt.want)
		}
	}
}

func TestFileModeEffectiveIsOctal(t *testing.T) {
	f, _ := Parse("c.toml", "[output]\nfile_mode = 0o600\n")
	k := modeKeys{Mode: Mode(0o640)}
	if err := f.Output.Decode(&k); err != nil {
		t.Fatal(err)
	}
	eff, err := f.Output.Effective()
	if err != nil || !strings.Contains(eff, `file_mode = "0600"`) {
		t.Errorf("Effective() = %q, %v", eff, err)
	}
}
