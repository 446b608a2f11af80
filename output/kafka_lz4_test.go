package output_test

import (
	"bytes"
	"io"
	"math/rand/v2"
	"testing"

	"github.com/flowgo/flowgo/output"
	"github.com/pierrec/lz4/v4"
)

// lz4Inputs are inputs that reach every branch of the compressor: empty,
// shorter than a match may be, incompressible, long literal and match runs
// (lengths of 15 and 255 and more), matches at the start and end of a
// block, blocks of exactly 64 KiB and one byte more, and log records.
func lz4Inputs(t testing.TB) map[string][]byte {
	rng := rand.New(rand.NewPCG(1, 2))
	random := func(n int) []byte {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(rng.Uint32())
		}
		return b
	}
	records := sampleGELFBatches(t, 4, 1024, false)
	var logs []byte
	for _, b := range records {
		logs = append(logs, b.Data...)
	}
	return map[string][]byte{
		"empty":          {},
		"one byte":       {'x'},
		"twelve bytes":   []byte("abcdabcdabcd"),
		"thirteen bytes": []byte("abcdabcdabcda"),
		"random 100":     random(100),
		"random 70000":   random(70000),
		"zeros 64KiB":    make([]byte, 64<<10),
		"zeros 64KiB+1":  make([]byte, 64<<10+1),
		"zeros 300000":   make([]byte, 300000),
		"literals 15":    append(random(15), bytes.Repeat([]byte("0123456789"), 10)...),
		"literals 270":   append(random(270), bytes.Repeat([]byte("0123456789"), 10)...),
		"match 19":       append([]byte("0123456789abcdefghijklm"), []byte("0123456789abcdefghijklm-----------------")...),
		"mixed":          append(append(random(5000), bytes.Repeat([]byte("log line "), 3000)...), random(3000)...),
		"gelf records":   logs,
		"gelf 1 record":  records[0].Frame(0),
	}
}

// lz4Decode reads a frame with pierrec/lz4, the reader kafka-go and
// franz-go use.
func lz4Decode(t testing.TB, frame []byte) []byte {
	t.Helper()
	got, err := io.ReadAll(lz4.NewReader(bytes.NewReader(frame)))
	if err != nil {
		t.Fatalf("decoding the frame: %v", err)
	}
	return got
}

func TestKafkaLZ4FramesDecodeToTheirInput(t *testing.T) {
	for name, in := range lz4Inputs(t) {
		t.Run(name, func(t *testing.T) {
			frame := output.AppendLZ4Frame([]byte("prefix"), in)
			if string(frame[:6]) != "prefix" {
				t.Fatalf("appendFrame overwrote what dst held: %q", frame[:6])
			}
			got := lz4Decode(t, frame[6:])
			if !bytes.Equal(got, in) {
				t.Fatalf("round trip of %d bytes gave %d different bytes", len(in), len(got))
			}
		})
	}
}

func TestKafkaLZ4CompressesLogRecords(t *testing.T) {
	in := lz4Inputs(t)["gelf records"]
	ours := len(output.AppendLZ4Frame(nil, in))
	// pierrec/lz4 with the same 64 KiB independent blocks: the output
	// is within 10% of its size (LZ4's reference, at level 1, gives the
	// same size as this compressor), and far below the input's.
	var ref bytes.Buffer
	w := lz4.NewWriter(&ref)
	if err := w.Apply(lz4.BlockSizeOption(lz4.Block64Kb)); err != nil {
		t.Fatal(err)
	}
	w.Write(in)
	w.Close()
	if ours > ref.Len()*110/100 || ours > len(in)/3 {
		t.Fatalf("compressed %d bytes to %d; pierrec/lz4 gives %d", len(in), ours, ref.Len())
	}
	t.Logf("%d bytes: ours %d (%.1f%%), pierrec/lz4 %d (%.1f%%)", len(in), ours, 100*float64(ours)/float64(len(in)),
		ref.Len(), 100*float64(ref.Len())/float64(len(in)))
}

func FuzzKafkaLZ4(f *testing.F) {
	for _, in := range lz4Inputs(f) {
		if len(in) < 4096 {
			f.Add(in)
		}
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		got := lz4Decode(t, output.AppendLZ4Frame(nil, in))
		if !bytes.Equal(got, in) {
			t.Fatalf("round trip of %d bytes gave %d different bytes", len(in), len(got))
		}
	})
}

// BenchmarkKafkaLZ4 compares the output's LZ4 frames with pierrec/lz4's
// (kafka-go's codec) on GELF records, one 4096-record input per op.
func BenchmarkKafkaLZ4(b *testing.B) {
	in := lz4Inputs(b)["gelf records"]
	b.Run("flowgo", func(b *testing.B) {
		b.SetBytes(int64(len(in)))
		var out []byte
		cpu0 := cpuTime()
		for b.Loop() {
			out = output.AppendLZ4Frame(out[:0], in)
		}
		b.ReportMetric(float64(len(out))/float64(len(in)), "ratio")
		b.ReportMetric(float64(cpuTime()-cpu0)/float64(b.N), "cpu-ns/op")
	})
	b.Run("pierrec", func(b *testing.B) {
		b.SetBytes(int64(len(in)))
		var out bytes.Buffer
		w := lz4.NewWriter(&out)
		cpu0 := cpuTime()
		for b.Loop() {
			out.Reset()
			w.Reset(&out)
			w.Write(in)
			w.Close()
		}
		b.ReportMetric(float64(out.Len())/float64(len(in)), "ratio")
		b.ReportMetric(float64(cpuTime()-cpu0)/float64(b.N), "cpu-ns/op")
	})
}
