package input

import (
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/flowgo/flowgo"
)

type frameResult struct {
	frame string
	bad   bool
}

// framingLost is what splitAll records when the splitter ends with
// ErrFramingLost.
var framingLost = frameResult{"<framing lost>", true}

// splitAll runs a splitter over in, read through wrap, and collects what it returns.
func splitAll(t *testing.T, in string, framing flowgo.Framing, limit int, truncate bool, wrap func(io.Reader) io.Reader) ([]frameResult, error) {
	t.Helper()
	sp := NewSplitter(wrap(strings.NewReader(in)), framing, limit, truncate)
	var out []frameResult
	for i := 0; i < 10000; i++ {
		frame, err := sp.Next()
		if frame == nil && err != nil {
			if errors.Is(err, io.EOF) {
				return out, nil
			}
			if errors.Is(err, ErrFramingLost) {
				return append(out, framingLost), nil
			}
			return out, err
		}
		var fe *FrameError
		if err != nil && !errors.As(err, &fe) {
			t.Fatalf("Next returned a frame with a non-framing error %v", err)
		}
		out = append(out, frameResult{string(frame), err != nil})
	}
	t.Fatal("splitter does not end")
	return nil, nil
}

func good(frames ...string) []frameResult {
	var out []frameResult
	for _, f := range frames {
		out = append(out, frameResult{frame: f})
	}
	return out
}

func TestSplitter(t *testing.T) {
	tests := []struct {
		name     string
		framing  flowgo.Framing
		in       string
		max      int
		truncate bool
		want     []frameResult
	}{
		{"line frames end with LF", "line", "a\nbb\nccc\n", 100, false, good("a", "bb", "ccc")},
		{"line removes one trailing CR", "line", "a\r\nb\r\r\n", 100, false, good("a", "b\r")},
		{"line keeps an unterminated last frame", "line", "a\nlast", 100, false, good("a", "last")},
		{"line skips empty frames", "line", "\n\na\n\r\n", 100, false, good("a")},
		{"line rejects an oversized frame and skips its rest", "line", "123456789\nok\n", 4, false,
			[]frameResult{{"1234", true}, {"ok", false}}},
		{"line truncates an oversized frame", "line", "123456789\nok\n", 4, true, good("1234", "ok")},
		{"line oversized frame found whole in the buffer", "line", "12345\nok", 4, false,
			[]frameResult{{"1234", true}, {"ok", false}}},
		{"nul frames end with NUL", "nul", "{\"a\":1}\x00{\"b\":2}\x00", 100, false, good(`{"a":1}`, `{"b":2}`)},
		{"nul keeps LF inside frames", "nul", "a\nb\x00", 100, false, good("a\nb")},
		{"syslen counts octets", "syslen", "5 hello3 abc", 100, false, good("hello", "abc")},
		{"syslen frame may contain LF", "syslen", "6 a\nb\nc\n5 hello", 100, false, good("a\nb\nc", "hello")},
		{"syslen tolerates LF between frames", "syslen", "2 ab\n2 cd\r\n", 100, false, good("ab", "cd")},
		{"syslen strips Flowgger's counted trailing LF", "syslen", "6 hello\n", 100, false, good("hello")},
		{"syslen bad count rejects to end of line and resumes", "syslen", "x5 hello\n3 abc", 100, false,
			[]frameResult{{"x5 hello", true}, {"abc", false}}},
		{"syslen count with a leading zero is bad", "syslen", "05 hello\n2 ok", 100, false,
			[]frameResult{{"05 hello", true}, {"ok", false}}},
		{"syslen too many digits", "syslen", "12345678901 x\n2 ok", 100, false,
			[]frameResult{{"12345678901 x", true}, {"ok", false}}},
		{"syslen 10-digit count with a line break after it: rejected to the line break, and the stream goes on", "syslen",
			"9999999999 <13>1 x\n5 hello", 100, false, []frameResult{{"9999999999 <13>1 x", true}, {"hello", false}}},
		{"syslen count over 100 times max is bad, not skipped by", "syslen", "2001 abc\n2 ok", 20, false,
			[]frameResult{{"2001 abc", true}, {"ok", false}}},
		{"syslen count of 100 times max is a frame too long, skipped by its count", "syslen", "400 " + strings.Repeat("y", 400) + "2 ok", 4, false,
			[]frameResult{{"yyyy", true}, {"ok", false}}},
		{"syslen 10-digit count and no line break within max: the head is rejected and the framing lost", "syslen",
			"9999999999 <13>1 x5 hello", 8, false, []frameResult{{"99999999", true}, framingLost}},
		{"syslen bad count and no line break within max: the framing is lost", "syslen", "x5 hello3 abc", 4, false,
			[]frameResult{{"x5 h", true}, framingLost}},
		{"syslen bad count at the end of the stream is rejected whole", "syslen", "x5 hello", 100, false,
			[]frameResult{{"x5 hello", true}}},
		{"syslen oversized frame is rejected and skipped", "syslen", "10 01234567892 ok", 4, false,
			[]frameResult{{"0123", true}, {"ok", false}}},
		{"syslen oversized frame truncated", "syslen", "10 01234567892 ok", 4, true, good("0123", "ok")},
		{"syslen stream ends inside a frame", "syslen", "10 short", 100, false, []frameResult{{"10 short", true}}},
		{"auto picks syslen from a leading digit", "auto", "5 hello5 world", 100, false, good("hello", "world")},
		{"auto picks line otherwise", "auto", "<13>1 a\n<13>1 b\n", 100, false, good("<13>1 a", "<13>1 b")},
		{"auto skips leading blank lines", "auto", "\n\n3 abc", 100, false, good("abc")},
		{"auto picks nul when the first frame ends with NUL", "auto", "<14>a\x00<14>b\nc\x00", 100, false, good("<14>a", "<14>b\nc")},
		{"auto picks nul after leading blank lines, which it drops", "auto", "\r\n<14>a\x00<14>b\x00", 100, false, good("<14>a", "<14>b")},
		{"auto picks line when a LF comes before any NUL", "auto", "<14>a\n<14>b\x00\n", 100, false, good("<14>a", "<14>b\x00")},
		{"auto picks line for a first frame longer than the limit", "auto", "abc\x00", 2, false, []frameResult{{"ab", true}}},
		{"auto picks nul for an unterminated NUL stream's last frame", "auto", "{}\x00{\"a\":1}", 100, false, good("{}", `{"a":1}`)},
	}
	readers := map[string]func(io.Reader) io.Reader{
		"whole":    func(r io.Reader) io.Reader { return r },
		"one-byte": iotest.OneByteReader,
		"half":     iotest.HalfReader,
	}
	for _, tt := range tests {
		for rname, wrap := range readers {
			t.Run(tt.name+"/"+rname, func(t *testing.T) {
				got, err := splitAll(t, tt.in, tt.framing, tt.max, tt.truncate, wrap)
				if err != nil {
					t.Fatalf("error %v", err)
				}
				if fmt.Sprint(got) != fmt.Sprint(tt.want) {
					t.Errorf("split(%q) = %v; want %v", tt.in, got, tt.want)
				}
			})
		}
	}
}

func TestSplitterReportsReadError(t *testing.T) {
	boom := errors.New("connection reset")
	sp := NewSplitter(io.MultiReader(strings.NewReader("a\nb"), iotest.ErrReader(boom)), "line", 100, false)
	var frames []string
	for {
		f, err := sp.Next()
		if f == nil {
			if !errors.Is(err, boom) {
				t.Fatalf("final error = %v; want %v", err, boom)
			}
			break
		}
		frames = append(frames, string(f))
	}
	if strings.Join(frames, "|") != "a|b" {
		t.Errorf("frames = %q; want a and the partial b", frames)
	}
}

func TestSplitterLineNumbers(t *testing.T) {
	sp := NewSplitter(strings.NewReader("a\n\nb\nc"), "line", 100, false)
	var lines []int64
	for {
		f, _ := sp.Next()
		if f == nil {
			break
		}
		lines = append(lines, sp.Line())
	}
	if fmt.Sprint(lines) != "[1 3 4]" {
		t.Errorf("line numbers = %v; want [1 3 4]", lines)
	}
}

// TestSplitterMemoryIsBounded feeds a 20 MB line with no LF: the splitter
// must reject it without growing its buffer past about twice the limit.
func TestSplitterMemoryIsBounded(t *testing.T) {
	const limit = 64 << 10
	r := io.MultiReader(io.LimitReader(infiniteX{}, 20<<20), strings.NewReader("\nok\n"))
	sp := NewSplitter(r, "line", limit, false)
	var got []frameResult
	for {
		f, err := sp.Next()
		if f == nil {
			break
		}
		got = append(got, frameResult{string(f[:min(len(f), 3)]), err != nil})
		if len(sp.buf) > 2*limit+32 && len(sp.buf) > 256<<10 {
			t.Fatalf("buffer grew to %d bytes", len(sp.buf))
		}
	}
	if fmt.Sprint(got) != fmt.Sprint([]frameResult{{"xxx", true}, {"ok", false}}) {
		t.Errorf("frames = %v", got)
	}
}

type infiniteX struct{}

func (infiniteX) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = 'x'
	}
	return len(p), nil
}

func FuzzSplitter(f *testing.F) {
	for _, s := range []string{"5 hello3 abc", "a\nb\r\n", "x5 y\n2 ok", "10 short", "{}\x00{}", "\n\n3 abc", "99999999999 x", "<14>a\x00<14>b\x00", "\n<14>a\x00b\nc",
		"9999999999 <13>1 x\n5 hello", "401 x"} {
		f.Add(s, uint8(0), uint8(16))
		f.Add(s, uint8(2), uint8(3))
	}
	framings := []flowgo.Framing{flowgo.FramingLine, flowgo.FramingNUL, flowgo.FramingSyslen, flowgo.FramingAuto}
	f.Fuzz(func(t *testing.T, in string, which, max uint8) {
		framing := framings[int(which)%len(framings)]
		limit := int(max%64) + 1
		for _, truncate := range []bool{false, true} {
			whole, err1 := splitAll(t, in, framing, limit, truncate, func(r io.Reader) io.Reader { return r })
			bytewise, err2 := splitAll(t, in, framing, limit, truncate, iotest.OneByteReader)
			if err1 != nil || err2 != nil {
				t.Fatalf("errors %v %v", err1, err2)
			}
			// The result must not depend on how the stream was cut into reads.
			if fmt.Sprint(whole) != fmt.Sprint(bytewise) {
				t.Fatalf("%s %q: whole reads %v; one-byte reads %v", framing, in, whole, bytewise)
			}
			total := 0
			for i, fr := range whole {
				if fr == framingLost {
					// Only octet counting can lose its framing, and it ends the stream.
					if framing != "syslen" && framing != "auto" || i != len(whole)-1 {
						t.Fatalf("%s %q: framing lost at frame %d of %v", framing, in, i, whole)
					}
					continue
				}
				if len(fr.frame) > limit && !fr.bad {
					t.Fatalf("%s %q: good frame %q longer than %d", framing, in, fr.frame, limit)
				}
				if !fr.bad && fr.frame == "" {
					t.Fatalf("%s %q: empty good frame", framing, in)
				}
				if !fr.bad && truncate && len(fr.frame) > limit {
					t.Fatalf("truncate let a long frame through")
				}
				total += len(fr.frame)
			}
			if total > len(in) {
				t.Fatalf("%s %q: frames hold %d bytes, more than the %d input bytes", framing, in, total, len(in))
			}
			if framing == "line" || framing == "nul" {
				delim := "\n"
				if framing == "nul" {
					delim = "\x00"
				}
				// Without limits hit, line/nul frames are exactly the non-empty pieces.
				if longestPiece(in, delim) <= limit {
					var want []frameResult
					for _, p := range strings.Split(in, delim) {
						if framing == "line" {
							p = strings.TrimSuffix(p, "\r")
						}
						if p != "" {
							want = append(want, frameResult{frame: p})
						}
					}
					if fmt.Sprint(whole) != fmt.Sprint(want) {
						t.Fatalf("%s %q = %v; want %v", framing, in, whole, want)
					}
				}
			}
		}
	})
}

func longestPiece(s, delim string) int {
	n := 0
	for _, p := range strings.Split(s, delim) {
		n = max(n, len(p))
	}
	return n
}

func (fr frameResult) String() string {
	if fr.bad {
		return fmt.Sprintf("BAD(%q)", fr.frame)
	}
	return fmt.Sprintf("%q", fr.frame)
}
