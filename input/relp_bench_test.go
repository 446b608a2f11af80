package input

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"testing"
	"time"
)

// BenchmarkRELPInput pushes b.N syslog frames through one loopback RELP
// session into the relp input (verbatim decoder, a counting sink), as a
// sender with a window of `window` frames does: it sends while fewer than
// window frames are unanswered and reads the answers on its own
// goroutine. The cost of the input itself, answers included; ns/op is per
// record.
func BenchmarkRELPInput(b *testing.B) {
	for _, window := range []int{128, 1024} {
		b.Run(fmt.Sprintf("window=%d", window), func(b *testing.B) { benchRELP(b, window) })
	}
}

func benchRELP(b *testing.B, window int) {
	sink := &streamCountSink{want: int64(b.N), done: make(chan struct{})}
	s := startRELP(b, `listen = "127.0.0.1:0"`, streamOptions{otherSink: sink})
	c, err := net.Dial("tcp", s.addr)
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	r := bufio.NewReaderSize(c, 64<<10)
	if _, err := io.WriteString(c, relpText(1, "open", librelpOffers)); err != nil {
		b.Fatal(err)
	}
	if _, err := r.ReadString('\n'); err != nil { // "1 rsp 68 200 OK"
		b.Fatal(err)
	}
	for range 3 { // the offers
		if _, err := r.ReadString('\n'); err != nil {
			b.Fatal(err)
		}
	}
	// Answers come back on their own goroutine; each frees a window slot.
	slots := make(chan struct{}, window)
	for range window {
		slots <- struct{}{}
	}
	answered := make(chan error, 1)
	go func() {
		for i := 0; i < b.N; i++ {
			line, err := r.ReadSlice('\n')
			if err != nil || len(line) < 10 {
				answered <- fmt.Errorf("answer %d: %q, %v", i, line, err)
				return
			}
			slots <- struct{}{}
		}
		answered <- nil
	}()

	b.SetBytes(int64(len(benchLine)))
	b.ReportAllocs()
	b.ResetTimer()
	w := bufio.NewWriterSize(c, 64<<10)
	buf := make([]byte, 0, 512)
	for i := 0; i < b.N; i++ {
		select {
		case <-slots:
		default:
			w.Flush() // the window is full: let the server see what is buffered
			<-slots
		}
		buf = appendRELPFrame(buf[:0], relpNextTxnr(i+1), "syslog", []byte(benchLine))
		w.Write(buf)
	}
	w.Flush()
	select {
	case err := <-answered:
		if err != nil {
			b.Fatal(err)
		}
	case <-time.After(time.Minute):
		b.Fatalf("%d of %d answered after a minute", sink.n.Load(), b.N)
	}
	b.StopTimer()
}
