package pipeline

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/flowgo/flowgo"
	"github.com/flowgo/flowgo/config"
	"github.com/flowgo/flowgo/encoder"
)

// TestATapNobodyReadsNeitherBlocksNorLoses attaches taps whose reader
// never reads to a pipeline fed 200,000 records: every record is
// delivered, each tap holds at most its buffer, and each counts what it
// did not show, so that shown + not shown is everything it saw.
func TestATapNobodyReadsNeitherBlocksNorLoses(t *testing.T) {
	const n = 200_000
	mem, id := newMem(t)
	var in strings.Builder
	for i := range n {
		fmt.Fprintf(&in, "record %d\n", i)
	}
	f, err := config.Parse("t.toml", fmt.Sprintf("[input]\ntype = \"stdin\"\nformat = \"testline\"\n[output]\ntype = \"testmem\"\nid = %q\nformat = \"testmsg\"\n", id))
	if err != nil {
		t.Fatal(err)
	}
	p, err := Build(f, Options{Name: "p", Stdin: strings.NewReader(in.String()), Log: quietLog()})
	if err != nil {
		t.Fatal(err)
	}
	enc, err := encoder.New("testmsg", nil)
	if err != nil {
		t.Fatal(err)
	}
	inTap := NewTap(TapFilter{Encoder: enc})
	outTap := NewTap(TapFilter{Output: "testmem"})
	defer p.Tap(inTap)()
	defer p.Tap(outTap)()
	if err := p.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := len(mem.got()); got != n {
		t.Fatalf("delivered %d of %d records with a stuck tap", got, n)
	}
	for name, tp := range map[string]*Tap{"input tap": inTap, "output tap": outTap} {
		shown := int64(len(tp.Events()))
		if shown == 0 || shown > tapBuffer {
			t.Errorf("%s holds %d events; want 1 to %d", name, shown, tapBuffer)
		}
		if shown+tp.Lost() != n {
			t.Errorf("%s: %d shown + %d not shown = %d; want %d", name, shown, tp.Lost(), shown+tp.Lost(), n)
		}
		e := <-tp.Events()
		if e.Pipeline != "p" || !strings.HasPrefix(e.Record, "record ") {
			t.Errorf("%s: first event %+v; want a record of pipeline p", name, e)
		}
	}
	if !p.taps.on.Load() {
		t.Error("taps attached but the hub is off")
	}
}

func TestTapHubTurnsOffWithTheLastTap(t *testing.T) {
	var p Pipeline
	stopA := p.Tap(NewTap(TapFilter{}))
	stopB := p.Tap(NewTap(TapFilter{}))
	stopA()
	if !p.taps.on.Load() {
		t.Error("one tap left, and the hub is off")
	}
	stopB()
	if p.taps.on.Load() || len(p.taps.taps) != 0 {
		t.Errorf("no tap left, and the hub is on (%d taps)", len(p.taps.taps))
	}
}

func TestSpreadSamplesTheWholeBatch(t *testing.T) {
	if got, want := spread(4, 1024), []int{0, 256, 512, 768}; !slices.Equal(got, want) {
		t.Errorf("spread(4, 1024) = %v; want %v", got, want)
	}
	if got := spread(3, 3); !slices.Equal(got, []int{0, 1, 2}) {
		t.Errorf("spread(3, 3) = %v", got)
	}
}

func TestUnframe(t *testing.T) {
	for _, tt := range []struct {
		framing  flowgo.Framing
		in, want string
	}{
		{"line", "a\\nb\n", "a\\nb"},
		{"nul", "gelf\x00", "gelf"},
		{"syslen", "5 hello", "hello"},
		{"noop", "raw", "raw"},
	} {
		if got := string(unframe(tt.framing, []byte(tt.in))); got != tt.want {
			t.Errorf("unframe(%s, %q) = %q; want %q", tt.framing, tt.in, got, tt.want)
		}
	}
}
