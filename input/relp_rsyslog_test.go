//go:build linux

package input

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/flowgo/flowgo"
	"github.com/flowgo/flowgo/config"
	"github.com/flowgo/flowgo/decoder"
	"github.com/flowgo/flowgo/internal/syncbuf"
	"github.com/flowgo/flowgo/internal/testcerts"
)

// rsyslog's omrelp (librelp, GnuTLS) as the real peer of the relp input.
// rsyslogd runs in the foreground with its own configuration and work
// directory, reads the records from a file (imfile) and forwards them over
// RELP; it is stopped by its PID. rsyslog and rsyslog-relp are installed
// by .ci/tools: a machine without them fails these tests.

const (
	rsyslogdPath = "/usr/sbin/rsyslogd"
	omrelpPath   = "/usr/lib/x86_64-linux-gnu/rsyslog/omrelp.so"
)

// needRsyslog fails the test when rsyslogd or its omrelp module is
// missing.
func needRsyslog(t testing.TB) {
	t.Helper()
	for _, p := range []string{rsyslogdPath, omrelpPath} {
		if _, err := os.Stat(p); err != nil {
			t.Fatalf("%s is missing: install the Debian packages rsyslog and rsyslog-relp (.ci/tools does); this test needs the real omrelp", p)
		}
	}
}

// rsyslogd is an rsyslogd process run by a test.
type rsyslogd struct {
	dir    string
	cmd    *exec.Cmd
	output *syncbuf.Buffer
	done   chan error
}

// startRsyslogd runs rsyslogd in the foreground with conf (workDirectory
// is set to its own directory) until the test ends.
func startRsyslogd(t testing.TB, dir, conf string) *rsyslogd {
	t.Helper()
	needRsyslog(t)
	conf = fmt.Sprintf("global(workDirectory=%q)\n", dir) + conf
	path := filepath.Join(dir, "rsyslog.conf")
	if err := os.WriteFile(path, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	r := &rsyslogd{dir: dir, output: &syncbuf.Buffer{}, done: make(chan error, 1)}
	r.cmd = exec.Command(rsyslogdPath, "-n", "-f", path, "-i", filepath.Join(dir, "rsyslogd.pid"))
	r.cmd.Stdout, r.cmd.Stderr = r.output, r.output
	if err := r.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { r.done <- r.cmd.Wait() }()
	t.Cleanup(func() { r.stop(t) })
	return r
}

// stop ends rsyslogd with SIGTERM (it sends close on its RELP sessions),
// or SIGKILL after 20 s.
func (r *rsyslogd) stop(t testing.TB) {
	if r.cmd.ProcessState != nil {
		return
	}
	r.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-r.done:
	case <-time.After(20 * time.Second):
		r.cmd.Process.Kill()
		<-r.done
		t.Errorf("rsyslogd did not stop within 20s of SIGTERM")
	}
}

// rsyslogForward is the configuration of an rsyslogd that reads the lines
// of file and forwards them with omrelp, with the action parameters given.
func rsyslogForward(file, omrelpParams string) string {
	return fmt.Sprintf(`module(load="imfile" mode="inotify")
module(load="omrelp")
input(type="imfile" file=%q tag="relptest" ruleset="fwd" freshStartTail="off")
ruleset(name="fwd") {
	action(type="omrelp" template="RSYSLOG_SyslogProtocol23Format" %s)
}
`, file, omrelpParams)
}

// writeRecords writes n lines "rec-NNNNNN payload" to path.
func writeRecords(t testing.TB, path string, from, n int) {
	t.Helper()
	var b bytes.Buffer
	for i := from; i < from+n; i++ {
		fmt.Fprintf(&b, "rec-%06d some payload to make the line longer than a few bytes\n", i)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write(b.Bytes()); err != nil {
		t.Fatal(err)
	}
	f.Close()
}

// recordSink counts records by the id in their message and checks that
// each one decoded as rsyslog sent it.
type recordSink struct {
	streamSink
	mu  sync.Mutex
	ids map[int]int
	bad []string
}

var recID = regexp.MustCompile(`^rec-(\d{6}) some payload`)

func newRecordSink() *recordSink {
	s := &recordSink{ids: map[int]int{}}
	s.check = func(r *flowgo.Record) {
		m := recID.FindStringSubmatch(r.Msg)
		s.mu.Lock()
		defer s.mu.Unlock()
		if m == nil || r.AppName != "relptest" || r.Hostname == "" || r.Time.IsZero() {
			if len(s.bad) < 5 {
				s.bad = append(s.bad, fmt.Sprintf("%+v", *r))
			}
			return
		}
		id, _ := strconv.Atoi(m[1])
		s.ids[id]++
	}
	return s
}

// missingAndDuplicates checks ids 0..n-1.
func (s *recordSink) missingAndDuplicates(n int) (missing, dups int, bad []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := range n {
		switch c := s.ids[i]; {
		case c == 0:
			missing++
		case c > 1:
			dups += c - 1
		}
	}
	return missing, dups, append([]string(nil), s.bad...)
}

// startRELPDecoding runs a relp input decoding with the real decoder of
// format, frames limited to maxSize bytes.
func startRELPDecoding(t testing.TB, keys, format string, sink *recordSink, maxSize int) *testServer {
	t.Helper()
	f, err := config.Parse("test.toml", "[input]\ntype = \"relp\"\n"+keys+"\n")
	if err != nil {
		t.Fatal(err)
	}
	dec, err := decoder.New(format, f.Inputs[0])
	if err != nil {
		t.Fatal(err)
	}
	logs := &syncbuf.Buffer{}
	in, err := Type{Parse: parseRELP}.New(Config{
		Section: f.Inputs[0], Name: "input", Decoder: dec, MaxMessageSize: maxSize,
		BatchRecords: 1024, BatchBytes: 1 << 20,
		Log: slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	})
	if err != nil {
		t.Fatal(err)
	}
	r := in.(*RELP)
	ctx, cancel := context.WithCancel(context.Background())
	s := &testServer{in: in, st: r.streamServer, sink: &sink.streamSink, logs: logs, cancel: cancel, done: make(chan error, 1)}
	go func() { s.done <- in.Run(ctx, sink) }()
	if a := s.st.Addr(); a == nil {
		t.Fatalf("input did not listen: %v", <-s.done)
	} else {
		s.addr = a.String()
	}
	t.Cleanup(func() { s.stop(t) })
	return s
}

func (s *testServer) port() string {
	_, port, _ := strings.Cut(s.addr, ":")
	return port
}

// waitAll waits until n distinct records arrived, failing after d with
// rsyslogd's output.
func waitAll(t testing.TB, sink *recordSink, n int, d time.Duration, r *rsyslogd) {
	t.Helper()
	ok := waitFor(d, func() bool {
		sink.mu.Lock()
		defer sink.mu.Unlock()
		return len(sink.ids) >= n || len(sink.bad) > 0
	})
	missing, dups, bad := sink.missingAndDuplicates(n)
	if len(bad) > 0 {
		t.Fatalf("records not decoded as sent: %v", bad)
	}
	if !ok || missing > 0 {
		t.Fatalf("%d of %d records missing after %v; rsyslogd said:\n%s", missing, n, d, r.output.String())
	}
	if dups > 0 {
		t.Errorf("%d duplicates; want none in the normal case", dups)
	}
}

// omrelp's defaults: a window of 128 frames. omrelp corks its socket
// (TCP_CORK) for each batch of its queue, so when the window fills inside
// a batch the last frames wait for the kernel's 200 ms cork timer: about
// 1,300 records/s here whatever the receiver (imrelp too); windowSize
// 1024 lifts that.
func TestRELPFromRsyslogOmrelp(t *testing.T) {
	const n = 20000
	sink := newRecordSink()
	s := startRELPDecoding(t, `listen = "127.0.0.1:0"`, "rfc5424", sink, 64<<10)
	dir := t.TempDir()
	file := filepath.Join(dir, "in.log")
	writeRecords(t, file, 0, n)
	r := startRsyslogd(t, dir, rsyslogForward(file, fmt.Sprintf(`target="127.0.0.1" port=%q`, s.port())))
	waitAll(t, sink, n, 2*time.Minute, r)

	// rsyslogd ends its session with close.
	r.stop(t)
	s.waitCounter(t, "relp_sessions_closed_total", "close", 1)
	if got := s.counter("relp_frames_acked_total", ""); got != n {
		t.Errorf("acked = %d; want %d", got, n)
	}
	if rej := s.sink.gotRejects(); len(rej) > 0 {
		t.Errorf("rejects: %+v", rej)
	}
}

func TestRELPFromRsyslogOmrelpOverTLS(t *testing.T) {
	const n = 20000
	for _, lib := range []string{"gnutls", "openssl"} {
		t.Run(lib, func(t *testing.T) {
			dir := t.TempDir()
			ca := testcerts.NewCA(t, "flowgo test CA")
			srv := ca.Server(t)
			cl := ca.Client(t, "rsyslog client")
			caFile := testcerts.WriteFile(t, dir, "ca.pem", ca.CertPEM)
			srvFile := testcerts.WriteFile(t, dir, "server.pem", srv.CertPEM, srv.KeyPEM)
			clCert := testcerts.WriteFile(t, dir, "client.pem", cl.CertPEM)
			clKey := testcerts.WriteFile(t, dir, "client.key", cl.KeyPEM)

			sink := newRecordSink()
			s := startRELPDecoding(t, fmt.Sprintf("listen = \"127.0.0.1:0\"\nrelp_tls = true\ntls_cert = %q\ntls_ca_file = %q\ntls_verify_peer = true",
				srvFile, caFile), "rfc5424", sink, 64<<10)
			file := filepath.Join(dir, "in.log")
			writeRecords(t, file, 0, n)
			// windowSize 1024: see TestRELPFromRsyslogOmrelp.
			r := startRsyslogd(t, dir, rsyslogForward(file, fmt.Sprintf(`target="127.0.0.1" port=%q windowSize="1024" tls="on" tls.tlslib=%q
		tls.caCert=%q tls.myCert=%q tls.myPrivKey=%q tls.authMode="name" tls.permittedPeer=["localhost"]`,
				s.port(), lib, caFile, clCert, clKey)))
			waitAll(t, sink, n, 2*time.Minute, r)
			r.stop(t)
			s.waitCounter(t, "relp_sessions_closed_total", "close", 1)
			if _, _, hs := s.relp().ConnCounts(); hs != 0 {
				t.Errorf("%d failed handshakes", hs)
			}
		})
	}
}

// rsyslog with a client certificate flowgo does not trust is refused at
// the handshake, counted and logged; nothing arrives.
func TestRELPFromRsyslogWithAnUntrustedCertificateIsRefused(t *testing.T) {
	dir := t.TempDir()
	ca := testcerts.NewCA(t, "flowgo test CA")
	other := testcerts.NewCA(t, "another CA")
	srv := ca.Server(t)
	cl := other.Client(t, "stranger")
	caFile := testcerts.WriteFile(t, dir, "ca.pem", ca.CertPEM)
	srvFile := testcerts.WriteFile(t, dir, "server.pem", srv.CertPEM, srv.KeyPEM)
	clCert := testcerts.WriteFile(t, dir, "client.pem", cl.CertPEM)
	clKey := testcerts.WriteFile(t, dir, "client.key", cl.KeyPEM)

	sink := newRecordSink()
	s := startRELPDecoding(t, fmt.Sprintf("listen = \"127.0.0.1:0\"\nrelp_tls = true\ntls_cert = %q\ntls_ca_file = %q\ntls_verify_peer = true",
		srvFile, caFile), "rfc5424", sink, 64<<10)
	file := filepath.Join(dir, "in.log")
	writeRecords(t, file, 0, 10)
	startRsyslogd(t, dir, rsyslogForward(file, fmt.Sprintf(`target="127.0.0.1" port=%q tls="on"
		tls.caCert=%q tls.myCert=%q tls.myPrivKey=%q tls.authMode="name" tls.permittedPeer=["localhost"]`,
		s.port(), caFile, clCert, clKey)))
	if !waitFor(time.Minute, func() bool { _, _, hs := s.relp().ConnCounts(); return hs >= 1 }) {
		t.Fatal("no failed handshake counted")
	}
	if !waitFor(10*time.Second, func() bool {
		return strings.Contains(s.logs.String(), "TLS handshake failed") && strings.Contains(s.logs.String(), "certificate")
	}) {
		t.Errorf("the refusal was not logged with its cause:\n%s", s.logs.String())
	}
	if got := s.sink.records.Load(); got != 0 {
		t.Errorf("%d records from an untrusted client", got)
	}
}

// A message longer than max_message_size is answered 200 and rejected as
// too long (its head dead-lettered); the records around it arrive once.
// (Answered 500, it made omrelp suspend the action and send the rest of
// its batch again: 27 duplicates in one run.)
func TestRELPFromRsyslogOversizedMessageIsRejectedOnce(t *testing.T) {
	sink := newRecordSink()
	s := startRELPDecoding(t, `listen = "127.0.0.1:0"`, "rfc5424", sink, 1000)
	dir := t.TempDir()
	file := filepath.Join(dir, "in.log")
	writeRecords(t, file, 0, 100)
	f, _ := os.OpenFile(file, os.O_WRONLY|os.O_APPEND, 0o600)
	f.WriteString("huge " + strings.Repeat("x", 5000) + "\n")
	f.Close()
	writeRecords(t, file, 100, 100)
	r := startRsyslogd(t, dir, `global(maxMessageSize="64k")
`+rsyslogForward(file, fmt.Sprintf(`target="127.0.0.1" port=%q`, s.port())))
	waitAll(t, sink, 200, time.Minute, r)
	s.sink.waitRejects(t, 1, 10*time.Second)
	r.stop(t)
	rej := s.sink.gotRejects()
	if len(rej) != 1 || !strings.Contains(rej[0].err.Error(), "longer than max_message_size") || len(rej[0].frame) != 1000 {
		t.Errorf("rejects %+v; want the huge message's first 1000 bytes, too long", rej)
	}
	if strings.Contains(r.output.String(), "error") {
		t.Errorf("rsyslogd reported an error:\n%s", r.output.String())
	}
}

// omrelp writes frames after flowgo stopped reading and before it reads
// serverclose. If the omrelp client then ends, librelp frees the frames it
// had not seen answered without sending them again: only flowgo, which
// reads on after serverclose and queues them, keeps them. rsyslog ends a
// client when the worker of a disk-assisted queue's disk part runs dry
// (as in the fault test), at shutdown, and every rebindInterval messages
// (used here, to make it happen at a known moment). Record 0's batch is
// being queued (Put waits) when the input stops; rsyslog then sends
// records 1-9 and, rebinding after its 10th message, close; then Put
// returns. Without the drain after serverclose records 1-9 were lost: a
// new input on the same port gets record 10, never 1-9.
func TestRELPShutdownKeepsFramesRsyslogSentAfterTheStop(t *testing.T) {
	sink := newRecordSink()
	sink.block = make(chan struct{})
	s := startRELPDecoding(t, `listen = "127.0.0.1:0"`, "rfc5424", sink, 64<<10)
	dir := t.TempDir()
	file := filepath.Join(dir, "in.log")
	writeRecords(t, file, 0, 1)
	r := startRsyslogd(t, dir, rsyslogForward(file, fmt.Sprintf(`target="127.0.0.1" port=%q rebindInterval="10"
		action.resumeRetryCount="-1" action.resumeInterval="1"`, s.port())))
	release := func() {
		select {
		case <-sink.block:
		default:
			close(sink.block)
		}
	}
	t.Cleanup(release) // before rsyslogd's stop, which waits for answers
	if !waitFor(time.Minute, func() bool { return sink.waiting.Load() == 1 }) {
		t.Fatalf("record 0 was not handed over; rsyslogd said:\n%s", r.output.String())
	}
	s.cancel()
	if !waitFor(10*time.Second, func() bool {
		s.st.mu.Lock()
		defer s.st.mu.Unlock()
		return s.st.stopping
	}) {
		t.Fatal("the input did not stop")
	}
	writeRecords(t, file, 1, 9)
	// The 9 frames and close are in the session's socket, unread.
	if !waitFor(time.Minute, func() bool { return strings.Contains(peekConns(t, s), " close 0\n") }) {
		t.Fatalf("rsyslog did not close its session; unread: %q\nrsyslogd said:\n%s", peekConns(t, s), r.output.String())
	}
	if got := strings.Count(peekConns(t, s), " syslog "); got != 9 {
		t.Fatalf("%d syslog frames unread; want 9", got)
	}
	release()
	s.stop(t)
	if got := s.counter("relp_frames_after_serverclose_total", ""); got != 9 {
		t.Errorf("relp_frames_after_serverclose_total = %d; want 9", got)
	}

	// flowgo again, on the same port: rsyslog sends what it still has.
	s2 := startRELPDecoding(t, fmt.Sprintf("listen = %q", s.addr), "rfc5424", sink, 64<<10)
	writeRecords(t, file, 10, 1)
	ok := waitFor(time.Minute, func() bool {
		sink.mu.Lock()
		defer sink.mu.Unlock()
		return sink.ids[10] > 0
	})
	missing, dups, bad := sink.missingAndDuplicates(11)
	if !ok || missing > 0 || len(bad) > 0 {
		t.Fatalf("%d of 11 records missing (record 10 arrived: %v), bad %v; rsyslogd said:\n%s", missing, ok, bad, r.output.String())
	}
	t.Logf("11 records, %d duplicates; the second input answered %d", dups, s2.counter("relp_frames_acked_total", ""))
}
