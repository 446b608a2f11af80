package main

// End-to-end tests with syslog clients nobody on the project wrote:
// Python's logging.handlers.SysLogHandler (the system python3) and rsyslog
// forwarding with omfwd. Both are installed by .ci/tools; a test fails,
// never skips, when one is missing.

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/flowgo/flowgo/internal/syncbuf"
)

// clientFlowgo is a flowgo run by a client test.
type clientFlowgo struct {
	*daemon
	out string // the output file
}

// startClientFlowgo runs flowgo with the config text, whose @TMP@ is the
// test's temp dir and whose output file must be @TMP@/out.log.
func startClientFlowgo(t *testing.T, config string) *clientFlowgo {
	t.Helper()
	tmp := t.TempDir()
	cfg := filepath.Join(tmp, "flowgo.toml")
	if err := os.WriteFile(cfg, []byte(strings.ReplaceAll(config, "@TMP@", tmp)), 0o644); err != nil {
		t.Fatal(err)
	}
	return &clientFlowgo{daemon: runDaemon(t, cfg, "", "TZ=UTC"), out: filepath.Join(tmp, "out.log")}
}

// listener waits until flowgo logs its listener of type typ (tcp, udp) and
// returns its host and port.
func (f *clientFlowgo) listener(t *testing.T, typ string) (string, string) {
	t.Helper()
	return splitHostPort(t, f.addr(typ))
}

func splitHostPort(t *testing.T, addr string) (string, string) {
	i := strings.LastIndexByte(addr, ':')
	if i < 0 {
		t.Fatalf("bad listener address %q", addr)
	}
	return addr[:i], addr[i+1:]
}

// records waits until the output holds n GELF records and returns them.
func (f *clientFlowgo) records(t *testing.T, n int) []map[string]any {
	t.Helper()
	deadline := time.Now().Add(waitOutput)
	for {
		b, _ := os.ReadFile(f.out)
		if lines := bytes.Count(b, []byte("\n")); lines >= n || time.Now().After(deadline) {
			if lines != n {
				t.Fatalf("the output holds %d records; want %d\n%s\nstderr:\n%s", lines, n, b, f.stderr.String())
			}
			var out []map[string]any
			sc := bufio.NewScanner(bytes.NewReader(b))
			for sc.Scan() {
				var m map[string]any
				if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
					t.Fatalf("output line %q: %v", sc.Text(), err)
				}
				out = append(out, m)
			}
			return out
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// stop sends SIGTERM and checks that flowgo exits 0 having logged no
// warning or error (a rejected frame would be one).
func (f *clientFlowgo) stop(t *testing.T) {
	t.Helper()
	f.stopClean()
	for _, l := range strings.Split(f.stderr.String(), "\n") {
		if strings.Contains(l, " level=WARN ") || strings.Contains(l, " level=ERROR ") {
			t.Errorf("flowgo logged: %s", l)
		}
	}
}

// gelfRecord is what a test checks of a GELF record.
type gelfRecord struct {
	host, app, pid, msg string
	level               int
}

func toGELFRecord(t *testing.T, m map[string]any, since time.Time) gelfRecord {
	t.Helper()
	str := func(k string) string {
		s, _ := m[k].(string)
		return s
	}
	level, _ := m["level"].(float64)
	// Lines without a header take the receive time.
	ts, _ := m["timestamp"].(float64)
	if at := time.Unix(0, int64(ts*1e9)); at.Before(since.Add(-2*time.Second)) || at.After(time.Now().Add(2*time.Second)) {
		t.Errorf("record %v: timestamp %v is not the receive time (the run began at %v)", m, at, since)
	}
	return gelfRecord{str("host"), str("application_name"), str("process_id"), str("short_message"), int(level)}
}

// sysLogHandlerScript sends three records with logging.handlers.SysLogHandler
// to argv[1]:argv[2] over argv[3] (udp or tcp): without ident, with an
// ident, and with a formatter writing "name[pid]: ". It prints its pid.
const sysLogHandlerScript = `
import logging, logging.handlers, os, socket, sys
host, port, proto = sys.argv[1], int(sys.argv[2]), sys.argv[3]
kind = socket.SOCK_DGRAM if proto == "udp" else socket.SOCK_STREAM
h = logging.handlers.SysLogHandler(address=(host, port), socktype=kind)
log = logging.getLogger("e2e")
log.propagate = False
log.addHandler(h)
log.setLevel(logging.DEBUG)
log.info("plain message, no ident")
h.ident = "pyapp: "
log.warning("with an ident")
h.ident = ""
h.setFormatter(logging.Formatter("%(name)s[%(process)d]: %(message)s"))
log.error("formatted with the logger's name and pid: 50% done")
h.close()
print(os.getpid())
`

// Python's SysLogHandler sends RFC 3164 lines without a header ("<14>text"),
// NUL-terminated: over UDP one a datagram, over TCP with no LF. flowgo takes
// the sender's address as hostname and the receive time, reads the TAG when
// there is one, with format rfc3164 and auto; over TCP framing "auto" finds
// the NULs.
func TestE2EPythonSysLogHandler(t *testing.T) {
	python := "/usr/bin/python3"
	if _, err := os.Stat(python); err != nil {
		t.Fatalf("this test needs the system python3 (%v); .ci/tools installs it", err)
	}
	for _, proto := range []string{"udp", "tcp"} {
		for _, format := range []string{"rfc3164", "auto"} {
			t.Run(proto+"/"+format, func(t *testing.T) {
				t.Parallel()
				framing := ""
				if proto == "tcp" {
					framing = "framing = \"auto\"\n"
				}
				f := startClientFlowgo(t, fmt.Sprintf("[input]\ntype = %q\nlisten = \"127.0.0.1:0\"\nformat = %q\n%s"+
					"[output]\ntype = \"file\"\nformat = \"gelf\"\nfile_path = \"@TMP@/out.log\"\n", proto, format, framing))
				host, port := f.listener(t, proto)
				since := time.Now()
				out, err := exec.Command(python, "-c", sysLogHandlerScript, host, port, proto).CombinedOutput()
				if err != nil {
					t.Fatalf("python3 SysLogHandler: %v\n%s", err, out)
				}
				pid := strings.TrimSpace(string(out))
				var got []gelfRecord
				for _, m := range f.records(t, 3) {
					got = append(got, toGELFRecord(t, m, since))
				}
				f.stop(t)
				want := []gelfRecord{
					{"127.0.0.1", "", "", "plain message, no ident", 6},
					{"127.0.0.1", "pyapp", "", "with an ident", 4},
					{"127.0.0.1", "e2e", pid, "formatted with the logger's name and pid: 50% done", 3},
				}
				if proto == "udp" {
					sortRecords(got) // several UDP readers: order not defined
					sortRecords(want)
				}
				if !slices.Equal(got, want) {
					t.Errorf("records\n%+v\nwant\n%+v", got, want)
				}
			})
		}
	}
}

func sortRecords(r []gelfRecord) {
	slices.SortFunc(r, func(a, b gelfRecord) int { return strings.Compare(a.msg, b.msg) })
}

// rsyslogd returns the path of rsyslogd, failing the test when it is not
// installed.
func rsyslogd(t *testing.T) string {
	t.Helper()
	if p, err := exec.LookPath("rsyslogd"); err == nil {
		return p
	}
	if _, err := os.Stat("/usr/sbin/rsyslogd"); err != nil {
		t.Fatalf("this test needs rsyslogd (Debian package rsyslog), which .ci/tools installs: %v", err)
	}
	return "/usr/sbin/rsyslogd"
}

// startRsyslog runs rsyslogd in the foreground with conf (@DIR@ is its own
// work directory) until the test ends, and returns the port of its imtcp
// input, which conf must have write to @DIR@/port.
func startRsyslog(t *testing.T, name, conf string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), name)
	if err := os.MkdirAll(filepath.Join(dir, "work"), 0o755); err != nil {
		t.Fatal(err)
	}
	conf = strings.ReplaceAll(conf, "@DIR@", dir)
	cfg := filepath.Join(dir, "rsyslog.conf")
	if err := os.WriteFile(cfg, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	var logs syncbuf.Buffer
	cmd := exec.Command(rsyslogd(t), "-n", "-f", cfg, "-i", filepath.Join(dir, "rsyslogd.pid"))
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() {
		cmd.Wait()
		close(exited)
	}()
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			<-exited
		}
	})
	deadline := time.Now().Add(waitListen)
	for {
		if b, err := os.ReadFile(filepath.Join(dir, "port")); err == nil && len(bytes.TrimSpace(b)) > 0 {
			return string(bytes.TrimSpace(b))
		}
		select {
		case <-exited:
			t.Fatalf("rsyslogd %s exited: %s", name, logs.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("rsyslogd %s did not listen within %v: %s", name, waitListen, logs.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// rsyslogForwarder receives syslog on imtcp and forwards it with omfwd, in
// omfwd's default template (RSYSLOG_TraditionalForwardFormat), over TCP to
// every "host:port" of targets. Its own messages stay out of the ruleset.
const rsyslogForwarder = `global(workDirectory="@DIR@/work")
module(load="imtcp")
input(type="imtcp" address="127.0.0.1" port="0" listenPortFileName="@DIR@/port" ruleset="forward")
ruleset(name="forward") {
%s}
`

// rsyslogReader writes, for every line it receives, the fields rsyslog reads
// in it: HOSTNAME, programname (the TAG's app), procid and MSG.
const rsyslogReader = `global(workDirectory="@DIR@/work")
module(load="imtcp")
template(name="fields" type="string" string="%%hostname%%\t%%programname%%\t%%procid%%\t%%msg%%\n")
input(type="imtcp" address="127.0.0.1" port="0" listenPortFileName="@DIR@/port" ruleset="read")
ruleset(name="read") {
	action(type="omfile" file="%s" template="fields")
}
`

// rsyslog forwards RFC 5424 messages in its default format with a TAG
// without colon ("vm rsapp second message"). With rfc3164_tag = "first_word"
// flowgo reads every forwarded line as rsyslog itself reads it: a second
// rsyslog receives the same lines, and its hostname, programname, procid
// and msg must equal flowgo's record.
func TestE2ERsyslogForwarding(t *testing.T) {
	f := startClientFlowgo(t, "[input]\ntype = \"tcp\"\nlisten = \"127.0.0.1:0\"\nformat = \"rfc3164\"\nframing = \"auto\"\n"+
		"rfc3164_tag = \"first_word\"\n[output]\ntype = \"file\"\nformat = \"gelf\"\nfile_path = \"@TMP@/out.log\"\n")
	fhost, fport := f.listener(t, "tcp")
	readOut := filepath.Join(t.TempDir(), "read.txt")
	readPort := startRsyslog(t, "reader", fmt.Sprintf(rsyslogReader, readOut))
	var actions strings.Builder
	for _, port := range []string{fport, readPort} {
		fmt.Fprintf(&actions, "\taction(type=\"omfwd\" target=%q port=%q protocol=\"tcp\")\n", fhost, port)
	}
	fwdPort := startRsyslog(t, "forwarder", fmt.Sprintf(rsyslogForwarder, actions.String()))

	sent := []string{
		// RFC 5424 from applications: rsyslog writes the TAG without colon.
		`<163>1 2023-12-07T15:25:13Z vm rsapp - RS-4 - second message`,
		`<163>1 2023-12-07T15:25:14Z vm rsapp 42 RS-4 [origin@32473 ip="192.0.2.1"] with a pid`,
		// Plain RFC 3164, a TAG with colon, and a line whose first word rsyslog takes for the TAG.
		`<13>Dec  7 15:25:15 vm plainapp[7]: plain message`,
		`<13>Dec  7 15:25:16 vm just text: here`,
	}
	conn, err := net.Dial("tcp", fhost+":"+fwdPort)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Write([]byte(strings.Join(sent, "\n") + "\n")); err != nil {
		t.Fatal(err)
	}
	conn.Close()

	recs := f.records(t, len(sent))
	var rsyslogRead []string
	deadline := time.Now().Add(waitOutput)
	for {
		b, _ := os.ReadFile(readOut)
		if rsyslogRead = strings.Split(strings.TrimSuffix(string(b), "\n"), "\n"); len(b) > 0 && len(rsyslogRead) >= len(sent) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the reading rsyslog wrote %q; want %d lines", b, len(sent))
		}
		time.Sleep(20 * time.Millisecond)
	}
	f.stop(t)

	want := []string{
		"vm\trsapp\t\tsecond message",
		"vm\trsapp\t42\twith a pid",
		"vm\tplainapp\t7\tplain message",
		"vm\tjust\t\ttext: here",
	}
	var got []string
	for _, m := range recs {
		pid, _ := m["process_id"].(string)
		got = append(got, fmt.Sprintf("%v\t%v\t%s\t%v", m["host"], m["application_name"], pid, m["short_message"]))
	}
	if !slices.Equal(got, want) {
		t.Errorf("flowgo read the forwarded lines as\n%q\nwant\n%q", got, want)
	}
	// rsyslog writes "-" for no procid and keeps the space after the TAG
	// in MSG; flowgo drops that one space.
	var asRsyslog []string
	for _, l := range rsyslogRead {
		parts := strings.SplitN(l, "\t", 4)
		if len(parts) != 4 {
			t.Fatalf("the reading rsyslog wrote %q", l)
		}
		if parts[2] == "-" {
			parts[2] = ""
		}
		parts[3] = strings.TrimPrefix(parts[3], " ")
		asRsyslog = append(asRsyslog, strings.Join(parts, "\t"))
	}
	if !slices.Equal(got, asRsyslog) {
		t.Errorf("flowgo read the forwarded lines as\n%q\nrsyslog reads them as\n%q", got, asRsyslog)
	}
}
