package output

import (
	"testing"
	"github.com/pierrec/lz4/v4"
	"bytes"
	"os"
	"io"
)

func TestLZ4Stats(t *testing.T) {
	var data []byte
	for _, b := range sampleForStats(t) { data = append(data, b...) }
	var c lz4Compressor
	out := c.appendFrame(nil, data)
	// parse the blocks to count sequences and literals
	seqs, lits := 0, 0
	p := out[7:]
	for {
		n := int(uint32(p[0]) | uint32(p[1])<<8 | uint32(p[2])<<16 | uint32(p[3])<<24)
		p = p[4:]
		if n == 0 { break }
		if n&(1<<31) != 0 { n &^= 1<<31; p = p[n:]; continue }
		blk := p[:n]; p = p[n:]
		for i := 0; i < len(blk); {
			tok := blk[i]; i++
			ll := int(tok >> 4)
			if ll == 15 { for { b := blk[i]; i++; ll += int(b); if b != 255 { break } } }
			i += ll; lits += ll; seqs++
			if i >= len(blk) { break }
			i += 2
			if tok&15 == 15 { for { b := blk[i]; i++; if b != 255 { break } } }
		}
	}
	got, _ := io.ReadAll(lz4.NewReader(bytes.NewReader(out)))
	t.Logf("in %d out %d records %d seqs/rec %.1f lits/rec %.1f ok=%v", len(data), len(out), 4096, float64(seqs)/4096, float64(lits)/4096, bytes.Equal(got, data))
}

func sampleForStats(t *testing.T) [][]byte {
	b, err := os.ReadFile("/tmp/gelf4096.txt")
	if err != nil { t.Fatal(err) }
	return [][]byte{b}
}
