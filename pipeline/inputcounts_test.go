package pipeline

import (
	"bytes"
	"compress/zlib"
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/flowgo/flowgo/config"
	"github.com/flowgo/flowgo/internal/testcerts"
)

// The counters an input exports, scraped from /metrics of a running group,
// against what the test sent: exact bytes, the reason of each reject, the
// connections that ended with data possibly lost.

// runGroup runs the pipeline of one config file with a metrics listener and
// returns the group and the address of input name ("input"; "input[0]",
// "input[1]" in an array of tables).
func runGroup(t *testing.T, body string, opts Options) (*Group, func(name string) net.Addr) {
	t.Helper()
	cfg := writeFile(t, t.TempDir(), "p.toml", body+"\n[metrics]\nlisten = \"127.0.0.1:0\"\n")
	if opts.Log == nil {
		opts.Log = quietLog()
	}
	g, err := LoadGroup([]string{cfg}, opts, "")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- g.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			t.Error("the group did not stop within 20s")
		}
	})
	waitFor(t, "the metrics listener", func() bool { return g.MetricsAddr() != nil })
	p := g.Pipelines()[0]
	addr := func(name string) net.Addr {
		var a net.Addr
		waitFor(t, name+" to listen", func() bool {
			r := p.inputNamed(name)
			if r == nil {
				return false
			}
			switch in := r.(type) {
			case interface{ Addr() net.Addr }:
				a = in.Addr()
			case interface {
				Addr(context.Context) (*net.UDPAddr, error)
			}:
				if ua, err := in.Addr(context.Background()); err == nil {
					a = ua
				}
			}
			return a != nil
		})
		return a
	}
	return g, addr
}

// metric returns the value of a series of p's, or -1.
func metric(t *testing.T, g *Group, name string, labels map[string]string) float64 {
	t.Helper()
	want := map[string]string{"pipeline": "p"}
	for k, v := range labels {
		want[k] = v
	}
	return value(scrape(t, g.MetricsAddr()), name, want)
}

// waitMetric waits until the series has value want.
func waitMetric(t *testing.T, g *Group, name string, labels map[string]string, want float64) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		got := metric(t, g, name, labels)
		if got == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s%v = %v; want %v", name, labels, got, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// sendAndClose writes data on a new connection and closes it once the
// server has closed its side (so every byte was read).
func sendAndClose(t *testing.T, c net.Conn, data string) {
	t.Helper()
	defer c.Close()
	if _, err := io.WriteString(c, data); err != nil {
		t.Fatal(err)
	}
	switch v := c.(type) {
	case *net.TCPConn:
		v.CloseWrite()
	case *tls.Conn:
		v.CloseWrite()
	}
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	io.Copy(io.Discard, c)
}

// flowgo_input_bytes_total counts every byte read, each frame once: a
// connection of one line adds that line, and rejected frames count too.
// (It ran one frame behind: each frame was charged the size of the one
// before, and a connection of one line added 0.)
func TestInputBytesAreExact(t *testing.T) {
	mem, id := newMem(t)
	dir := t.TempDir()
	ca := testcerts.NewCA(t, "ca")
	leaf := ca.Server(t)
	pem := testcerts.WriteFile(t, dir, "server.pem", leaf.CertPEM, leaf.KeyPEM)
	stdinR, stdinW := io.Pipe()
	g, addr := runGroup(t, fmt.Sprintf(`
[[input]]
name = "input[0]"
type = "tcp"
listen = "127.0.0.1:0"
format = "testline"
max_message_size = 64
[[input]]
name = "input[1]"
type = "tls"
listen = "127.0.0.1:0"
tls_cert = %q
format = "testline"
framing = "syslen"
[[input]]
name = "input[2]"
type = "stdin"
format = "testline"
[output]
type = "testmem"
id = %q
format = "testmsg"
`, pem, id), Options{Stdin: stdinR})
	tcp, tlsAddr := addr("input[0]"), addr("input[1]")
	in := func(name, typ string) map[string]string { return map[string]string{"input": name, "type": typ} }

	one := "one line\n"
	c, err := net.Dial("tcp", tcp.String())
	if err != nil {
		t.Fatal(err)
	}
	sendAndClose(t, c, one)
	waitMetric(t, g, "flowgo_input_records_total", in("input[0]", "tcp"), 1)
	waitMetric(t, g, "flowgo_input_bytes_total", in("input[0]", "tcp"), float64(len(one)))

	// Good lines, a line that fails to decode, one too long, blank lines
	// and a CR: every byte counts.
	mixed := "first\r\n\n\nBAD line\n" + strings.Repeat("x", 100) + "\nlast without LF"
	c, err = net.Dial("tcp", tcp.String())
	if err != nil {
		t.Fatal(err)
	}
	sendAndClose(t, c, mixed)
	waitMetric(t, g, "flowgo_input_records_total", in("input[0]", "tcp"), 3)
	waitMetric(t, g, "flowgo_input_bytes_total", in("input[0]", "tcp"), float64(len(one)+len(mixed)))

	pool := x509.NewCertPool()
	pool.AddCert(ca.Cert)
	tc, err := tls.Dial("tcp", tlsAddr.String(), &tls.Config{RootCAs: pool, ServerName: "localhost"})
	if err != nil {
		t.Fatal(err)
	}
	counted := "5 hello11 hello world"
	sendAndClose(t, tc, counted)
	waitMetric(t, g, "flowgo_input_records_total", in("input[1]", "tls"), 2)
	waitMetric(t, g, "flowgo_input_bytes_total", in("input[1]", "tls"), float64(len(counted)))

	stdin := "a\nBAD b\nc\n"
	io.WriteString(stdinW, stdin)
	waitMetric(t, g, "flowgo_input_records_total", in("input[2]", "stdin"), 2)
	waitMetric(t, g, "flowgo_input_bytes_total", in("input[2]", "stdin"), float64(len(stdin)))
	stdinW.Close()
	waitFor(t, "7 records delivered", func() bool { return len(mem.got()) == 1+2+2+2 })
}

// Every reject is counted under a reason the README lists: a datagram or an
// inflated payload over max_message_size is too_long (it was "other"), a bad
// GELF chunk is framing, a bad octet count is framing.
func TestRejectReasons(t *testing.T) {
	_, id := newMem(t)
	g, addr := runGroup(t, fmt.Sprintf(`
[[input]]
name = "input[0]"
type = "udp"
listen = "127.0.0.1:0"
format = "gelf"
max_message_size = 1000
[[input]]
name = "input[1]"
type = "tcp"
listen = "127.0.0.1:0"
format = "testline"
framing = "syslen"
max_message_size = 1000
[output]
type = "testmem"
id = %q
format = "testmsg"
`, id), Options{})
	udp, err := net.Dial("udp", addr("input[0]").String())
	if err != nil {
		t.Fatal(err)
	}
	defer udp.Close()
	var bomb bytes.Buffer
	zw, _ := zlib.NewWriterLevel(&bomb, zlib.BestCompression)
	zw.Write(bytes.Repeat([]byte("y"), 100000))
	zw.Close()
	chunk := append([]byte{0x1e, 0x0f, 1, 2, 3, 4, 5, 6, 7, 8, 0, 0}, "x"...) // sequence count 0
	for _, dg := range [][]byte{bytes.Repeat([]byte("x"), 1001), bomb.Bytes(), chunk, []byte(`{"version":"1.1","host":"h","short_message":"good"}`)} {
		if _, err := udp.Write(dg); err != nil {
			t.Fatal(err)
		}
	}
	udpIn := map[string]string{"input": "input[0]", "type": "udp"}
	waitMetric(t, g, "flowgo_input_records_total", udpIn, 1)
	for reason, want := range map[string]float64{"too_long": 2, "framing": 1, "decode": 0, "other": 0} {
		waitMetric(t, g, "flowgo_input_rejected_total", map[string]string{"input": "input[0]", "reason": reason}, want)
	}

	c, err := net.Dial("tcp", addr("input[1]").String())
	if err != nil {
		t.Fatal(err)
	}
	sendAndClose(t, c, "1001 "+strings.Repeat("z", 1001)+"x3 abc\n4 good")
	tcpIn := map[string]string{"input": "input[1]", "type": "tcp"}
	waitMetric(t, g, "flowgo_input_records_total", tcpIn, 1)
	for reason, want := range map[string]float64{"too_long": 1, "framing": 1, "decode": 0, "other": 0} {
		waitMetric(t, g, "flowgo_input_rejected_total", map[string]string{"input": "input[1]", "reason": reason}, want)
	}
}

// A connection that ends with what the peer sent possibly lost is counted:
// reset by the peer, or closed by flowgo with bytes unread (here: octet
// counting that cannot be followed).
func TestAbortedConnectionsAreCounted(t *testing.T) {
	mem, id := newMem(t)
	g, addr := runGroup(t, fmt.Sprintf(`
[input]
name = "input"
type = "tcp"
listen = "127.0.0.1:0"
format = "testline"
framing = "syslen"
max_message_size = 100
[output]
type = "testmem"
id = %q
format = "testmsg"
`, id), Options{})
	a := addr("input").String()
	aborted := func(reason string) map[string]string {
		return map[string]string{"input": "input", "type": "tcp", "reason": reason}
	}

	// A sender that resets its connection (as a TLS 1.3 client closing
	// with the server's session tickets unread does).
	c, err := net.Dial("tcp", a)
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(c, "5 hello")
	waitFor(t, "the record", func() bool { return len(mem.got()) == 1 })
	c.(*net.TCPConn).SetLinger(0)
	c.Close()
	waitMetric(t, g, "flowgo_input_connections_aborted_total", aborted("reset"), 1)

	// A 10-digit octet count and no line break: the frame is rejected, the
	// connection closed, and the bytes after it are counted as unread
	// rather than skipped unseen.
	c, err = net.Dial("tcp", a)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	io.WriteString(c, "5 first9999999999 <13>1 - - - - - - "+strings.Repeat("5 later", 100))
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.Read(make([]byte, 1)); err == nil || isTimeout(err) {
		t.Fatalf("the connection was not closed: %v", err)
	}
	waitMetric(t, g, "flowgo_input_rejected_total", map[string]string{"input": "input", "reason": "framing"}, 1)
	waitMetric(t, g, "flowgo_input_connections_aborted_total", aborted("unread"), 1)
	if got := mem.got(); len(got) != 2 || got[1] != "first" {
		t.Errorf("records %q; want hello and first", got)
	}
	if n := metric(t, g, "flowgo_input_connections_aborted_total", aborted("error")); n != 0 {
		t.Errorf("aborted{error} = %v; want 0", n)
	}
}

func isTimeout(err error) bool {
	ne, ok := err.(net.Error)
	return ok && ne.Timeout()
}

// stream_buffer_max_bytes sets the budget the pipeline's stream inputs
// share, defaults to 64 MiB, is checked, and changes on a reload.
func TestStreamBufferBudgetKey(t *testing.T) {
	mem, id := newMem(t)
	src := "[input]\ntype = \"stdin\"\nformat=\"testline\"\n%s\n[output]\ntype=\"testmem\"\nformat=\"testmsg\"\nid=\"" + id + "\"\n"
	limit := func(p *Pipeline) int {
		_, _, l := p.buffers.Usage()
		return l
	}
	if got := limit(build(t, fmt.Sprintf(src, ""), Options{})); got != 64<<20 {
		t.Errorf("default budget %d; want %d", got, 64<<20)
	}
	pr, pw := io.Pipe()
	defer pw.Close()
	p := build(t, fmt.Sprintf(src, "stream_buffer_max_bytes = 1048576"), Options{Stdin: pr})
	if got := limit(p); got != 1<<20 {
		t.Errorf("budget %d; want 1048576", got)
	}
	defer runBackground(t, p, nil)()
	io.WriteString(pw, "running\n")
	waitFor(t, "the pipeline to run", func() bool { return len(mem.got()) == 1 })
	for _, bad := range []string{"0", "1000", "-1", "68719476737"} {
		f, err := config.Parse("test.toml", fmt.Sprintf(src, "stream_buffer_max_bytes = "+bad))
		if err != nil {
			t.Fatal(err)
		}
		want := "test.toml:4: input.stream_buffer_max_bytes: must be between 262144 (256 KiB) and 68719476736 bytes, not " + bad
		if _, err := Build(f, Options{}); err == nil || err.Error() != want {
			t.Errorf("stream_buffer_max_bytes = %s: %v; want %s", bad, err, want)
		}
	}
	f, err := config.Parse("test.toml", fmt.Sprintf(src, "stream_buffer_max_bytes = 2097152"))
	if err != nil {
		t.Fatal(err)
	}
	u, err := p.NewUpdate(f)
	if err != nil {
		t.Fatal(err)
	}
	if u.np.buffers != p.buffers {
		t.Error("a reload builds its inputs with a budget of their own: the pipeline's would be exceeded twice over")
	}
	if got := limit(p); got != 1<<20 {
		t.Errorf("budget %d before the update is applied; want 1048576", got)
	}
	u.Stop()
	if err := u.Start(); err != nil {
		t.Fatal(err)
	}
	if got := limit(p); got != 2<<20 {
		t.Errorf("budget %d after the reload; want 2097152", got)
	}
}
