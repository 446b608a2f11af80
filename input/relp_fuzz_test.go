package input

import (
	"bytes"
	"errors"
	"io"
	"testing"
	"testing/iotest"
)

// FuzzRELPFrame feeds any bytes to the RELP frame reader: it must never
// panic, must cut the same frames whatever the read sizes, and every frame
// it returns must be well formed and written back to the same bytes.
func FuzzRELPFrame(f *testing.F) {
	f.Add([]byte("1 open 86 "+librelpOffers+"\n2 syslog 5 hello\n3 close 0\n"), uint16(64))
	f.Add([]byte("1 syslog 10 0123456789\n2 syslog 3 abc\n"), uint16(4))
	f.Add([]byte("999999999 syslog 1 x\n1 syslog 0\n"), uint16(1))
	f.Add([]byte("1 rsp 6 200 OK\n0 serverclose 0\n"), uint16(16))
	f.Add([]byte("1 syslog 5 helloX"), uint16(16))
	f.Add([]byte("GET / HTTP/1.1\r\n"), uint16(16))
	f.Add([]byte("1 abcdefghijklmnopqrstuvwxyzabcdefg 0\n"), uint16(16))
	f.Add([]byte("1234567890 syslog 1 x\n"), uint16(16))
	f.Fuzz(func(t *testing.T, in []byte, limit uint16) {
		most := int(limit%512) + 1
		whole := readAllFrames(t, bytes.NewReader(in), most)
		pieces := readAllFrames(t, iotest.OneByteReader(bytes.NewReader(in)), most)
		if len(whole.frames) != len(pieces.frames) || !errors.Is(whole.err, pieces.err) && whole.err.Error() != pieces.err.Error() {
			t.Fatalf("whole: %d frames, %v; byte by byte: %d frames, %v", len(whole.frames), whole.err, len(pieces.frames), pieces.err)
		}
		var back []byte
		for i, fr := range whole.frames {
			if !bytes.Equal(fr, pieces.frames[i]) {
				t.Fatalf("frame %d: %q whole, %q byte by byte", i, fr, pieces.frames[i])
			}
			back = append(back, fr...)
		}
		// Frames written back read as the same frames (numbers may have
		// had leading zeros).
		again := readAllFrames(t, bytes.NewReader(back), most)
		if len(again.frames) != len(whole.frames) {
			t.Fatalf("frames written back %q read as %d frames; want %d", back, len(again.frames), len(whole.frames))
		}
		for i := range again.frames {
			if whole.complete && !bytes.Equal(again.frames[i], whole.frames[i]) {
				t.Fatalf("frame %d written back and read again: %q; want %q", i, again.frames[i], whole.frames[i])
			}
		}
	})
}

type fuzzResult struct {
	frames   [][]byte // each frame written back
	err      error
	complete bool // no frame was longer than the limit
}

func readAllFrames(t *testing.T, r io.Reader, limit int) fuzzResult {
	rr := newRELPReader(r, limit)
	res := fuzzResult{complete: true}
	for {
		f, err := rr.next()
		if err != nil {
			var fe *relpFrameError
			if err != io.EOF && err != io.ErrUnexpectedEOF && !errors.As(err, &fe) {
				t.Fatalf("unexpected error %v", err)
			}
			res.err = err
			return res
		}
		if f.txnr < 0 || f.txnr > relpMaxTxnr || f.size < 0 || f.size > relpMaxTxnr ||
			len(f.cmd) == 0 || len(f.cmd) > relpMaxCommand || len(f.data) != min(f.size, limit) {
			t.Fatalf("malformed frame %+v (limit %d)", f, limit)
		}
		for _, c := range f.cmd {
			if !isAlpha(c) {
				t.Fatalf("command %q", f.cmd)
			}
		}
		if f.truncated() {
			res.complete = false
		}
		res.frames = append(res.frames, appendRELPFrame(nil, f.txnr, string(f.cmd), f.data))
	}
}

// FuzzRELPOffers: the offers of an open command never panic the parser,
// and what it returns keeps the grammar's limits.
func FuzzRELPOffers(f *testing.F) {
	f.Add([]byte(librelpOffers))
	f.Add([]byte("relp_version=1\ncommands=syslog,eventlog\n\nx"))
	f.Add([]byte("=\n,,,\nname="))
	f.Fuzz(func(t *testing.T, in []byte) {
		offers, err := parseRELPOffers(in)
		if err != nil {
			return
		}
		for _, o := range offers {
			if len(o.name) == 0 || len(o.name) > 32 || bytes.ContainsAny([]byte(o.name), "=\n") {
				t.Fatalf("offer name %q", o.name)
			}
			for _, v := range o.values {
				if len(v) == 0 || len(v) > 255 || bytes.ContainsAny([]byte(v), ",\n") {
					t.Fatalf("offer %s value %q", o.name, v)
				}
			}
		}
	})
}
