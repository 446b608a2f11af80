package encoder

import (
	"encoding/json"
	"strings"
	"testing"
	"unicode/utf8"
	"unsafe"
)

// FuzzAppendJSONString checks the SIMD path (escapeBlocks, on amd64)
// against the word-at-a-time one (appendJSONBody) and against
// encoding/json's reading of the result, with dst at every alignment and
// with and without spare capacity.
func FuzzAppendJSONString(f *testing.F) {
	for _, s := range []string{
		"", "plain ascii text that is longer than one block",
		benchLine,
		`"""""""""""""""""""""""""""""""""`,
		`\\\\\\\\\\\\\\\\\\\\\\\\\\\\\\\\\\`,
		"0123456789abcde\x00after a NUL at the end of a block",
		"0123456789abcdé straddles the block end",
		"0123456789abcd\xe2\x82\xac euro at 14-16, then more text here",
		"invalid \xff\xfe bytes in the first block and \xc3 more later on",
		"tab\tnewline\nquote\"backslash\\ctrl\x1f del\x7f" + strings.Repeat("x", 40),
		strings.Repeat("日本語のログメッセージ", 5),
	} {
		f.Add(s, uint8(0), false)
	}
	f.Fuzz(func(t *testing.T, s string, offset uint8, tight bool) {
		prefix := strings.Repeat("p", int(offset%32))
		var dst []byte
		if tight {
			dst = []byte(prefix) // no spare capacity: every path grows dst
		} else {
			dst = make([]byte, len(prefix), len(prefix)+4*len(s)+64)
			copy(dst, prefix)
		}
		got := appendJSONString(dst, s)
		if !strings.HasPrefix(string(got), prefix) {
			t.Fatalf("prefix overwritten: %q", got)
		}
		got = got[len(prefix):]
		want := append(append([]byte{'"'}, appendJSONBody(nil, s)...), '"')
		if string(got) != string(want) {
			t.Fatalf("appendJSONString(%q)\n got %q\nwant %q", s, got, want)
		}
		var back string
		if err := json.Unmarshal(got, &back); err != nil {
			t.Fatalf("%q is not a JSON string: %v", got, err)
		}
		// Each byte that is not part of valid UTF-8 becomes one U+FFFD.
		var model strings.Builder
		for i := 0; i < len(s); {
			r, size := utf8.DecodeRuneInString(s[i:])
			if r == utf8.RuneError && size == 1 {
				model.WriteRune(utf8.RuneError)
			} else {
				model.WriteString(s[i : i+size])
			}
			i += size
		}
		if back != model.String() {
			t.Fatalf("%q reads back as %q, want %q", got, back, model.String())
		}
	})
}

// A short string is escaped from a 16-byte window read from its start,
// which may run past the string (never past its memory page): what lies
// past it, quotes and control characters here, must not show, and near the
// end of a page the window is not read at all.
func TestAppendJSONStringWindowPastTheString(t *testing.T) {
	const page = 4096
	buf := make([]byte, 3*page)
	const around = "\"\\\x00\xff" // whatever is next to a string
	for i := range buf {
		buf[i] = around[i%len(around)]
	}
	base := uintptr(unsafe.Pointer(&buf[0]))
	pageStart := int((page - base%page) % page) // offset of a page boundary in buf
	if pageStart < 32 {
		pageStart += page
	}
	contents := []string{"a", `"`, "ab\\cd", "0123456789abcde", `q"q"q"q"q"q"q"q`, "tab\there", "caf\xc3\xa9", "bad\xff"}
	for _, c := range contents {
		for back := 1; back <= 32; back++ { // the string starts back bytes before the page boundary
			off := pageStart - back
			copy(buf[off:], c)
			s := unsafe.String(&buf[off], len(c))
			got := string(appendJSONString(nil, s))
			want := `"` + string(appendJSONBody(nil, c)) + `"`
			if got != want {
				t.Errorf("%q starting %d bytes before a page end: got %q, want %q", c, back, got, want)
			}
			for i := range len(c) { // restore the surroundings
				buf[off+i] = around[(off+i)%len(around)]
			}
		}
	}
}
