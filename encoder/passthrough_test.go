package encoder

import (
	"errors"
	"testing"

	"github.com/flowgo/flowgo"
	"github.com/flowgo/flowgo/encoder/encodertest"
)

func TestPassthroughConformance(t *testing.T) {
	for _, toml := range []string{"", goldenVariants[4].toml} {
		encodertest.Run(t, newTestEncoder(t, "passthrough", toml), testRecords())
	}
}

func TestPassthrough(t *testing.T) {
	e := newTestEncoder(t, "passthrough", "")
	r := record(func(r *flowgo.Record) { r.Msg, r.FullMsg = "ignored", "raw \xff\x00 bytes\n kept" })
	if got, err := e.Encode([]byte("x"), &r); err != nil || string(got) != "xraw \xff\x00 bytes\n kept" {
		t.Errorf("Encode = %q, %v; want the raw message byte for byte", got, err)
	}
	r.FullMsg = ""
	got, err := e.Encode([]byte("x"), &r)
	if !errors.Is(err, ErrNoFullMsg) || string(got) != "x" {
		t.Errorf("Encode without FullMsg = %q, %v; want dst unchanged and ErrNoFullMsg", got, err)
	}
}

func TestPassthroughAllocs(t *testing.T) {
	e := newTestEncoder(t, "passthrough", goldenVariants[4].toml)
	dst := make([]byte, 0, 4096)
	r := benchRecord()
	if n := testing.AllocsPerRun(20, func() { dst, _ = e.Encode(dst[:0], &r) }); n != 0 {
		t.Errorf("%v allocations per Encode; want 0", n)
	}
	r.FullMsg = ""
	if n := testing.AllocsPerRun(20, func() { dst, _ = e.Encode(dst[:0], &r) }); n != 0 {
		t.Errorf("%v allocations per failed Encode; want 0", n)
	}
}
