package queue

import (
	"context"
	"testing"

	"github.com/flowgo/flowgo"
	"github.com/flowgo/flowgo/decoder"
	"github.com/flowgo/flowgo/internal/sample"
)

// realisticBatch decodes n sample RFC 5424 lines (about 250 bytes, with
// structured data) as an input would.
func realisticBatch(b testing.TB, n int) *flowgo.Batch {
	dec, err := decoder.New("rfc5424", nil)
	if err != nil {
		b.Fatal(err)
	}
	g := sample.New(1)
	batch := flowgo.GetBatch()
	for range n {
		r := batch.Next()
		if err := dec.Decode(g.RFC5424(nil), r, &batch.Arena); err != nil {
			b.Fatal(err)
		}
	}
	return batch
}

// BenchmarkEncodeRecord is the producer's cost per record: the record
// written as a checksummed frame.
func BenchmarkEncodeRecord(b *testing.B) {
	batch := realisticBatch(b, 1024)
	var buf []byte
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		r := &batch.Records[i%1024]
		var start int
		buf, start = beginFrame(buf[:0], kindRecord)
		buf = appendRecord(buf, r)
		buf = endFrame(buf, start)
	}
	b.SetBytes(int64(len(buf)))
}

// BenchmarkDecodeRecord is the reader's cost per record: checksum,
// copy into the batch's arena, decode.
func BenchmarkDecodeRecord(b *testing.B) {
	batch := realisticBatch(b, 1024)
	frames := make([][]byte, 1024)
	for i := range frames {
		buf, start := beginFrame(nil, kindRecord)
		buf = appendRecord(buf, &batch.Records[i])
		frames[i] = endFrame(buf, start)
	}
	out := flowgo.GetBatch()
	var rr recordReader
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if i%1024 == 0 {
			out.Reset()
		}
		_, payload, _, ok, _ := frameAt(frames[i%1024])
		if !ok {
			b.Fatal("bad frame")
		}
		if err := rr.read(out.Arena.Copy(payload), out.Next(), &out.Arena); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDiskPutRead is the whole round trip per record: Put batches of
// 1024 records (sync = "none", page cache), read them back, confirm.
func BenchmarkDiskPutRead(b *testing.B) {
	cfg := testConfig(b, b.TempDir())
	cfg.SegmentBytes = 64 << 20
	cfg.MaxBytes = 1 << 30
	cfg.BatchRecords = 1024
	d, err := Open(cfg)
	if err != nil {
		b.Fatal(err)
	}
	d.Start()
	src := realisticBatch(b, 1024)
	done := make(chan int)
	go func() {
		n := 0
		for bt := range d.Batches() {
			n += bt.Len()
			d.Done(bt)
			flowgo.PutBatch(bt)
		}
		done <- n
	}()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i += 1024 {
		batch := flowgo.GetBatch()
		batch.Records = append(batch.Records[:0], src.Records[:min(1024, b.N-i)]...)
		if err := d.Put(context.Background(), batch); err != nil {
			b.Fatal(err)
		}
	}
	d.CloseInput()
	if n := <-done; n != b.N {
		b.Fatalf("read %d; want %d", n, b.N)
	}
	b.StopTimer()
	d.Close()
}
