package main

// End-to-end tests of Cap'n Proto through the built binary, with the
// reference tool, capnp (Debian's capnproto), on both sides: capnp encode
// writes what flowgo reads, capnp decode reads what flowgo writes.

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/flowgo/flowgo/internal/capnp"
	"github.com/flowgo/flowgo/internal/capnp/capnptest"
	"github.com/flowgo/flowgo/internal/sample"
)

// capnpLiterals are the records the tests send: every field and value
// type, the missing-value sentinels, a long message.
var capnpLiterals = []string{
	`(ts = 1438790025.637824, hostname = "web1", facility = 3, severity = 6, appname = "nginx", procid = "4242", msgid = "ACCESS",
	  msg = "GET /index.html 200", fullMsg = "<30>1 raw line", sdId = "request@32473",
	  pairs = [(key = "_path", value = (string = "/index.html")), (key = "_status", value = (u64 = 200)),
	           (key = "_cached", value = (bool = true)), (key = "_ratio", value = (f64 = 0.25)),
	           (key = "_delta", value = (i64 = -7)), (key = "_none", value = (null = void))],
	  extra = [(key = "x-env", value = (string = "prod"))])`,
	`(ts = 1700000000.5, hostname = "db2", facility = 255, severity = 255, msg = "` + strings.Repeat("long text ", 1000) + `")`,
	`(ts = 1, hostname = "epoch")`,
}

// gelfLines parses GELF JSON lines.
func gelfLines(t *testing.T, out string) []map[string]any {
	t.Helper()
	var recs []map[string]any
	for line := range strings.Lines(out) {
		var m map[string]any
		d := json.NewDecoder(strings.NewReader(line))
		d.UseNumber()
		if err := d.Decode(&m); err != nil {
			t.Fatalf("not GELF JSON: %v: %s", err, line)
		}
		recs = append(recs, m)
	}
	return recs
}

// checkGELF compares the fields of a GELF record with want (values as
// JSON text).
func checkGELF(t *testing.T, i int, got map[string]any, want map[string]string) {
	t.Helper()
	for k, w := range want {
		if g := fmt.Sprint(got[k]); g != w {
			t.Errorf("record %d: %s = %s; want %s", i, k, g, w)
		}
	}
	if len(got) != len(want) {
		t.Errorf("record %d has keys %v; want exactly %d", i, slices.Sorted(mapsKeys(got)), len(want))
	}
}

func mapsKeys(m map[string]any) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

var capnpWantGELF = []map[string]string{
	{"version": "1.1", "host": "web1", "short_message": "GET /index.html 200", "full_message": "<30>1 raw line",
		"timestamp": "1438790025.637824", "level": "6", "_facility_num": "3", "application_name": "nginx", "process_id": "4242",
		"_msgid": "ACCESS", "sd_id": "request@32473", "_path": "/index.html", "_status": "200", "_cached": "true",
		"_ratio": "0.25", "_delta": "-7", "_none": "<nil>", "_x-env": "prod"},
	{"version": "1.1", "host": "db2", "short_message": strings.Repeat("long text ", 1000), "timestamp": "1700000000.5"},
	{"version": "1.1", "host": "epoch", "short_message": "-", "timestamp": "1", "level": "0", "_facility_num": "0"},
}

// TestCapnpE2EStdinToGELF: messages from capnp encode, one segment and
// several, on stdin; flowgo prints them as GELF and rejects a message
// without a timestamp, naming the frame.
func TestCapnpE2EStdinToGELF(t *testing.T) {
	stream := capnptest.Encode(t, capnpLiterals[:2])
	stream = append(stream, capnptest.Encode(t, []string{`(hostname = "no time")`})...)
	stream = append(stream, capnptest.Encode(t, capnpLiterals[2:], "--segment-size=2")...)
	cfg := writeConfig(t, "[input]\ntype = \"stdin\"\nformat = \"capnp\"\n[output]\ntype = \"stdout\"\nformat = \"gelf\"\n")
	r := flowgo(t, stream, "run", "-c", cfg)
	if r.code != 0 {
		t.Fatalf("exit %d\n%s", r.code, r.stderr)
	}
	recs := gelfLines(t, r.stdout)
	if len(recs) != len(capnpWantGELF) {
		t.Fatalf("%d GELF records; want %d\n%s", len(recs), len(capnpWantGELF), r.stdout)
	}
	for i, w := range capnpWantGELF {
		checkGELF(t, i, recs[i], w)
	}
	if !strings.Contains(r.stderr, `origin="frame 3" error="capnp: ts = 0: a timestamp is required`) || !strings.Contains(r.stderr, "rejected=1") {
		t.Errorf("stderr does not report the message without a timestamp:\n%s", r.stderr)
	}
}

// TestCapnpE2EPipeRFC5424ToCapnp: syslog lines in, Cap'n Proto out;
// capnp decode reads every field.
func TestCapnpE2EPipeRFC5424ToCapnp(t *testing.T) {
	in := "<165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog - ID47 " +
		`[exampleSDID@32473 iut="3" eventSource="Application"][examplePriority@32473 class="high"] An application event log entry` + "\n" +
		"<13>1 2024-02-29T12:34:56.123456Z h - - - - message with\ttab\n"
	r := flowgo(t, []byte(in), "pipe", "--from", "rfc5424", "--to", "capnp")
	if r.code != 0 {
		t.Fatalf("exit %d\n%s", r.code, r.stderr)
	}
	lines := strings.Split(in, "\n")
	want := []string{
		`(ts = 1065910455.003, hostname = "mymachine.example.com", facility = 20, severity = 5, appname = "evntslog", msgid = "ID47", ` +
			`msg = "An application event log entry", fullMsg = "` + strings.ReplaceAll(lines[0], `"`, `\"`) + `", sdId = "exampleSDID@32473", ` +
			`pairs = [(key = "_iut", value = (string = "3")), (key = "_eventSource", value = (string = "Application")), (key = "_class", value = (string = "high"))])`,
		`(ts = 1709210096.123456, hostname = "h", facility = 1, severity = 5, msg = "message with\ttab", fullMsg = "` + strings.ReplaceAll(lines[1], "\t", `\t`) + `")`,
	}
	got := capnptest.Decode(t, []byte(r.stdout))
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("capnp decode:\n got %q\nwant %q", got, want)
	}
}

// TestCapnpE2EFlowggerConfigTCPToCapnpFile: Flowgger's capnp keys as its
// example config has them (syslog-tcp, format and framing capnp on both
// sides, [output.capnp_extra]) run unchanged: messages sent over TCP land
// in the file as messages capnp decode reads, with the extra pairs.
func TestCapnpE2EFlowggerConfigTCPToCapnpFile(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "out.capnp")
	cfg := writeConfig(t, fmt.Sprintf(`[input]
type = "syslog-tcp"
listen = "127.0.0.1:0"
format = "capnp"
framing = "capnp"

[output]
type = "file"
file_path = %q
format = "capnp"
framing = "capnp"

[output.capnp_extra]
x-header1 = "x-header1 value"
x-header2 = "x-header2 value"
`, out))
	if r := flowgo(t, nil, "check", "-c", cfg); r.code != 0 {
		t.Fatalf("flowgo check: exit %d\n%s", r.code, r.stderr)
	}
	p, addr := startFlowgo(t, cfg, "tcp")
	lits := append(slices.Clone(capnpLiterals), `(ts = 2, hostname = "multi", pairs = [(key = "k", value = (string = "v"))])`)
	stream := capnptest.Encode(t, lits[:3])
	stream = append(stream, capnptest.Encode(t, lits[3:], "--segment-size=2")...)
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	for len(stream) > 0 { // in pieces, so that messages straddle reads
		n := min(len(stream), 333)
		if _, err := c.Write(stream[:n]); err != nil {
			t.Fatal(err)
		}
		stream = stream[n:]
	}
	c.Close()
	// Wait for the four messages in the file, then stop.
	deadline := time.Now().Add(waitOutput)
	for countMessages(out) < 4 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	p.stopClean()
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	got := capnptest.Decode(t, b)
	// Each message as capnp decode prints the input, with the extra pairs
	// in place of the input's, and Flowgger's naming: keys "_"-prefixed.
	extra := `extra = [(key = "x-header1", value = (string = "x-header1 value")), (key = "x-header2", value = (string = "x-header2 value"))]`
	want := []string{
		`(ts = 1438790025.6378241, hostname = "web1", facility = 3, severity = 6, appname = "nginx", procid = "4242", msgid = "ACCESS", ` +
			`msg = "GET /index.html 200", fullMsg = "<30>1 raw line", sdId = "request@32473", pairs = [(key = "_path", value = (string = "/index.html")), ` +
			`(key = "_status", value = (u64 = 200)), (key = "_cached", value = (bool = true)), (key = "_ratio", value = (f64 = 0.25)), ` +
			`(key = "_delta", value = (i64 = -7)), (key = "_none", value = (null = void)), (key = "_x-env", value = (string = "prod"))], ` + extra + `)`,
		`(ts = 1700000000.5, hostname = "db2", facility = 255, severity = 255, msg = "` + strings.Repeat("long text ", 1000) + `", ` + extra + `)`,
		`(ts = 1, hostname = "epoch", facility = 0, severity = 0, ` + extra + `)`,
		`(ts = 2, hostname = "multi", facility = 0, severity = 0, pairs = [(key = "_k", value = (string = "v"))], ` + extra + `)`,
	}
	if len(got) != len(want) {
		t.Fatalf("the file holds %d messages; want %d\n%s", len(got), len(want), p.stderr.String())
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("message %d:\n got %s\nwant %s", i, got[i], want[i])
		}
	}
}

// countMessages returns how many whole messages the file holds.
func countMessages(path string) int {
	b, _ := os.ReadFile(path)
	n := 0
	for {
		size, need, err := capnp.MessageSize(b)
		if err != nil || need > 0 || size > int64(len(b)) {
			return n
		}
		b = b[size:]
		n++
	}
}

// TestCapnpE2ERoundTripThroughGELF: capnp → GELF → capnp through two
// flowgo processes keeps every field. Those GELF has a key for come back in
// place; the others come back as the pairs GELF carries them in, named
// after their GELF keys (Flowgger's GELF decoder does the same), and
// capnp → capnp keeps everything in place (extra becomes pairs).
func TestCapnpE2ERoundTripThroughGELF(t *testing.T) {
	in := capnptest.Encode(t, capnpLiterals)
	gelf := flowgo(t, in, "pipe", "--from", "capnp", "--to", "gelf")
	if gelf.code != 0 {
		t.Fatalf("capnp → gelf: exit %d\n%s", gelf.code, gelf.stderr)
	}
	back := flowgo(t, []byte(gelf.stdout), "pipe", "--from", "gelf", "--to", "capnp")
	if back.code != 0 {
		t.Fatalf("gelf → capnp: exit %d\n%s", back.code, back.stderr)
	}
	got := capnptest.Decode(t, []byte(back.stdout))
	want := []string{
		`(ts = 1438790025.6378241, hostname = "web1", facility = 255, severity = 6, msg = "GET /index.html 200", fullMsg = "<30>1 raw line", ` +
			`pairs = [(key = "_facility_num", value = (u64 = 3)), (key = "_application_name", value = (string = "nginx")), ` +
			`(key = "_process_id", value = (string = "4242")), (key = "_msgid", value = (string = "ACCESS")), ` +
			`(key = "_sd_id", value = (string = "request@32473")), (key = "_path", value = (string = "/index.html")), ` +
			`(key = "_status", value = (u64 = 200)), (key = "_cached", value = (bool = true)), (key = "_ratio", value = (f64 = 0.25)), ` +
			`(key = "_delta", value = (i64 = -7)), (key = "_none", value = (null = void)), (key = "_x-env", value = (string = "prod"))])`,
		`(ts = 1700000000.5, hostname = "db2", facility = 255, severity = 255, msg = "` + strings.Repeat("long text ", 1000) + `")`,
		`(ts = 1, hostname = "epoch", facility = 255, severity = 0, msg = "-", pairs = [(key = "_facility_num", value = (u64 = 0))])`,
	}
	if len(got) != len(want) {
		t.Fatalf("%d messages back; want %d", len(got), len(want))
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("message %d:\n got %s\nwant %s", i, got[i], want[i])
		}
	}

	// capnp → capnp keeps every field where it was.
	relay := flowgo(t, in, "pipe", "--from", "capnp", "--to", "capnp")
	if relay.code != 0 {
		t.Fatalf("capnp → capnp: exit %d\n%s", relay.code, relay.stderr)
	}
	orig := capnptest.Decode(t, in)
	again := capnptest.Decode(t, []byte(relay.stdout))
	orig[0] = strings.Replace(orig[0], `(key = "_none", value = (null = void))], extra = [(key = "x-env", value = (string = "prod"))]`,
		`(key = "_none", value = (null = void)), (key = "_x-env", value = (string = "prod"))]`, 1)
	if fmt.Sprint(again) != fmt.Sprint(orig) {
		t.Errorf("capnp → capnp:\n got %q\nwant %q", again, orig)
	}
}

// TestCapnpE2EKafkaOneMessagePerRecord: format capnp to Kafka (kfake, a
// wire-protocol peer in this process); kcat reads the topic back: each
// Kafka message is exactly one Cap'n Proto message, and capnp decode reads
// the values as it reads stdout's.
func TestCapnpE2EKafkaOneMessagePerRecord(t *testing.T) {
	kcat, err := exec.LookPath("kcat")
	if err != nil {
		t.Fatal("kcat (librdkafka's command-line client) is not installed: apt-get install kcat (.ci/tools does it)")
	}
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.AllowAutoTopicCreation(), kfake.DefaultNumPartitions(1))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	broker := c.ListenAddrs()[0]
	const n = 300
	in := sample.Lines(n, sample.New(7).RFC5424)
	input := "[input]\ntype = \"stdin\"\nformat = \"rfc5424\"\n"
	r := flowgo(t, in, "run", "-c", writeConfig(t, input+fmt.Sprintf("[output]\ntype = \"kafka\"\nformat = \"capnp\"\nkafka_brokers = [%q]\nkafka_topic = \"logs\"\n", broker)))
	if r.code != 0 || !strings.Contains(r.stderr, "lost=0") {
		t.Fatalf("flowgo run: exit %d\n%s", r.code, r.stderr)
	}
	ref := flowgo(t, in, "run", "-c", writeConfig(t, input+"[output]\ntype = \"stdout\"\nformat = \"capnp\"\n"))
	if ref.code != 0 {
		t.Fatalf("reference run: exit %d\n%s", ref.code, ref.stderr)
	}
	kc := func(format string) []byte {
		cmd := exec.Command(kcat, "-C", "-b", broker, "-t", "logs", "-o", "beginning", "-e", "-q", "-f", format)
		var out, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &stderr
		if err := cmd.Run(); err != nil {
			t.Fatalf("kcat: %v\n%s", err, stderr.Bytes())
		}
		return out.Bytes()
	}
	values := kc("%s")
	sizes := strings.Fields(string(kc("%S\n")))
	if len(sizes) != n {
		t.Fatalf("the topic holds %d messages; want %d", len(sizes), n)
	}
	rest := values
	for i, s := range sizes {
		size, need, err := capnp.MessageSize(rest)
		if err != nil || need > 0 || fmt.Sprint(size) != s {
			t.Fatalf("Kafka message %d holds %s bytes; its segment table says %d (%v)", i, s, size, err)
		}
		rest = rest[size:]
	}
	got, want := capnptest.Decode(t, values), capnptest.Decode(t, []byte(ref.stdout))
	if len(want) != n || fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("Kafka holds other records than stdout gets (%d and %d messages)", len(got), len(want))
	}
}

// TestCapnpE2EUDPIsAConfigError: UDP trims line ends and NULs off each
// datagram, which would cut binary messages, so format capnp is refused
// there, at start, with the key (Flowgger panics on the first datagram).
func TestCapnpE2EUDPIsAConfigError(t *testing.T) {
	cfg := writeConfig(t, "[input]\ntype = \"udp\"\nlisten = \"127.0.0.1:0\"\nformat = \"capnp\"\n[output]\ntype = \"stdout\"\n")
	r := flowgo(t, nil, "check", "-c", cfg)
	if want := "flowgo: " + cfg + `:4: input.format: format "capnp" needs a stream input`; r.code != 2 || !strings.HasPrefix(r.stderr, want) {
		t.Errorf("flowgo check: exit %d, stderr %q; want exit 2 and %q", r.code, r.stderr, want)
	}
}
