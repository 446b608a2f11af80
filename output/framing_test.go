package output

import (
	"testing"

	"github.com/flowgo/flowgo"
)

func TestNormalizeFraming(t *testing.T) {
	for _, tt := range []struct{ in, want flowgo.Framing }{
		{"line", flowgo.FramingLine}, {"capnp", flowgo.FramingCapnp}, {"nop", flowgo.FramingNoop}, {"none", flowgo.FramingNoop},
	} {
		if got, err := NormalizeFraming(tt.in); err != nil || got != tt.want {
			t.Errorf("NormalizeFraming(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
	_, err := NormalizeFraming("lines")
	const want = `framing "lines" unknown (known: line, nul, syslen, noop, capnp; aliases nop, none)`
	if err == nil || err.Error() != want {
		t.Errorf("NormalizeFraming(lines) = %v; want %s", err, want)
	}
}
