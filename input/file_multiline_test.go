package input

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// joinAll runs lines through a joiner and returns the records, the last one
// flushed as the timeout would.
func joinAll(rule *multilineRule, text string) []string {
	m := multiline{rule: rule}
	var out []string
	var off int64
	for _, l := range strings.Split(strings.TrimSuffix(text, "\n"), "\n") {
		end := off + int64(len(l)) + 1
		if l == "" { // the splitter skips empty lines
			off = end
			continue
		}
		if rec, _, _, ok := m.push([]byte(l), off, end, time.Time{}); ok {
			out = append(out, string(rec))
		}
		off = end
	}
	if rec, _, _, ok := m.flush(); ok {
		out = append(out, string(rec))
	}
	return out
}

// firstLines returns each record's first line and its line count.
func firstLines(recs []string) []string {
	var out []string
	for _, r := range recs {
		first, _, _ := strings.Cut(r, "\n")
		out = append(out, fmt.Sprintf("%s (+%d)", first, strings.Count(r, "\n")))
	}
	return out
}

func TestMultilineJavaTraces(t *testing.T) {
	data, err := os.ReadFile("testdata/file/logback.log")
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"2026-11-30 12:00:00.101 INFO  [main] com.example.App - starting (+0)",
		"2026-11-30 12:00:01.202 ERROR [http-7] com.example.Handler - request failed (+11)",
		"2026-11-30 12:00:02.303 WARN  [main] com.example.App - slow start (+0)",
		`Exception in thread "worker-1" java.lang.OutOfMemoryError: Java heap space (+2)`,
		"2026-11-30 12:00:03.404 INFO  [main] com.example.App - stopped (+0)",
	}
	indent := firstLines(joinAll(&multilineRule{mode: MultilineIndent, maxBytes: 1 << 16}, string(data)))
	if strings.Join(indent, "\n") != strings.Join(want, "\n") {
		t.Errorf("indent:\n%s\nwant\n%s", strings.Join(indent, "\n"), strings.Join(want, "\n"))
	}
	// With a start pattern the uncaught exception joins the line before.
	start := firstLines(joinAll(&multilineRule{mode: MultilineStart, maxBytes: 1 << 16,
		start: regexp.MustCompile(`^\d{4}-\d{2}-\d{2} `)}, string(data)))
	wantStart := []string{want[0], want[1], "2026-11-30 12:00:02.303 WARN  [main] com.example.App - slow start (+3)", want[4]}
	if strings.Join(start, "\n") != strings.Join(wantStart, "\n") {
		t.Errorf("start:\n%s\nwant\n%s", strings.Join(start, "\n"), strings.Join(wantStart, "\n"))
	}
}

func TestMultilineRecordsKeepEveryLine(t *testing.T) {
	data, err := os.ReadFile("testdata/file/logback.log")
	if err != nil {
		t.Fatal(err)
	}
	recs := joinAll(&multilineRule{mode: MultilineIndent, maxBytes: 1 << 16}, string(data))
	if got := strings.Join(recs, "\n") + "\n"; got != string(data) {
		t.Errorf("joined records differ from the file:\n%s", got)
	}
}

func TestMultilineMaxBytes(t *testing.T) {
	text := "start\n a\n b\n c\n d\nnext\n"
	got := joinAll(&multilineRule{mode: MultilineIndent, maxBytes: 12}, text)
	// "start\n a\n b" is 11 bytes; " c" would make 14: it begins the next
	// record. Nothing is dropped.
	want := []string{"start\n a\n b", " c\n d", "next"}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("got %q; want %q", got, want)
	}
}

// Python tracebacks written by a real Python program with the logging
// module arrive as one record each, with both ways of joining.
func TestFileMultilinePythonTracebacks(t *testing.T) {
	py := needTool(t, "python3", "python3")
	script, err := filepath.Abs("testdata/file/tracebacks.py")
	if err != nil {
		t.Fatal(err)
	}
	for _, mode := range []struct{ name, keys string }{
		{"indent", `multiline = "indent"`},
		{"start", `multiline = "start"` + "\n" + `multiline_start = '^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2},\d{3} '`},
	} {
		t.Run(mode.name, func(t *testing.T) {
			dir := t.TempDir()
			log := filepath.Join(dir, "app.log")
			appendString(t, log, "")
			r := startFile(t, fmt.Sprintf("src = %q\n%s\nmultiline_timeout = \"200ms\"", log, mode.keys), newTestSink())
			if out, err := exec.Command(py, script, log).CombinedOutput(); err != nil {
				t.Fatalf("python3: %v\n%s", err, out)
			}
			r.waitMsgs(5)
			time.Sleep(300 * time.Millisecond) // more would be a record too many
			got, _, _, _ := r.sink.snapshot()
			if len(got) != 5 {
				t.Fatalf("%d records; want 5:\n%s", len(got), strings.Join(got, "\n----\n"))
			}
			wantEnds := []string{"INFO app: starting", "ZeroDivisionError: division by zero", "RuntimeError: bad config",
				"AttributeError: 'NoneType' object has no attribute 'x'", "INFO app: done"}
			for i, rec := range got {
				if !strings.HasSuffix(rec, wantEnds[i]) {
					t.Errorf("record %d ends %q; want %q", i, rec[max(0, len(rec)-60):], wantEnds[i])
				}
			}
			if !strings.Contains(got[2], "ValueError: invalid literal") || !strings.Contains(got[3], "During handling of the above exception") {
				t.Errorf("chained tracebacks split:\n%s\n----\n%s", got[2], got[3])
			}
			// The record's lines are the file's lines (the blank lines
			// between chained tracebacks excepted).
			data, _ := os.ReadFile(log)
			if strings.Join(got, "\n") != strings.ReplaceAll(strings.TrimSuffix(string(data), "\n"), "\n\n", "\n") {
				t.Errorf("records differ from the file's lines")
			}
		})
	}
}

// The last record of a file is emitted after multiline_timeout, and the
// checkpoint stays before a record still being joined.
func TestFileMultilineTimeoutAndCheckpoint(t *testing.T) {
	dir := t.TempDir()
	log := filepath.Join(dir, "app.log")
	ck := filepath.Join(dir, "ck.json")
	appendString(t, log, "")
	keys := fmt.Sprintf("src = %q\nfile_checkpoint_path = %q\nmultiline = \"indent\"\nmultiline_timeout = \"1h\"", log, ck)
	r := startFile(t, keys, newTestSink())
	appendString(t, log, "first\n  more\nsecond\n  more\n")
	if got := r.waitMsgs(1); got[0] != "first\n  more" {
		t.Fatalf("got %q", got[0])
	}
	first := int64(len("first\n  more\n"))
	if !waitFor(fileWait, func() bool { return savedOffsets(t, ck)[log] == first }) {
		t.Fatalf("checkpoint %d; want %d, the start of the record being joined", savedOffsets(t, ck)[log], first)
	}
	// Stopped now, the record being joined is not emitted: the next start
	// reads it again, whole, with what follows.
	r.stop()
	appendString(t, log, "  even more\nthird\n")
	r2 := startFile(t, keys, newTestSink())
	if got := r2.waitMsgs(1); got[0] != "second\n  more\n  even more" {
		t.Fatalf("got %q", got[0])
	}
	r2.stop()

	r3 := startFile(t, strings.Replace(keys, `"1h"`, `"100ms"`, 1), newTestSink())
	if got := r3.waitMsgs(1); got[0] != "third" {
		t.Fatalf("got %q; want the last record, after the timeout", got[0])
	}
}

// FuzzMultiline: whatever the lines, joining loses, adds and reorders
// nothing, and a record grows past multiline_max_bytes only as one line.
func FuzzMultiline(f *testing.F) {
	data, _ := os.ReadFile("testdata/file/logback.log")
	f.Add(string(data), 200, false)
	f.Add("Traceback (most recent call last):\n  x\nE: y\nDuring handling of the above exception, another exception occurred:\nz", 30, false)
	f.Add("2024 a\nb\n2024 c", 5, true)
	f.Fuzz(func(t *testing.T, text string, maxBytes int, start bool) {
		maxBytes = 1 + abs(maxBytes)%(1<<12)
		rule := &multilineRule{mode: MultilineIndent, maxBytes: maxBytes}
		if start {
			rule.mode, rule.start = MultilineStart, regexp.MustCompile(`^\d{4} `)
		}
		var want []string
		for _, l := range strings.Split(text, "\n") {
			if l != "" {
				want = append(want, l)
			}
		}
		recs := joinAll(rule, text)
		var got []string
		for _, r := range recs {
			if len(r) > maxBytes && strings.Contains(r, "\n") {
				t.Fatalf("record of %d bytes > %d made of several lines: %q", len(r), maxBytes, r)
			}
			got = append(got, strings.Split(r, "\n")...)
		}
		if strings.Join(got, "\n") != strings.Join(want, "\n") {
			t.Fatalf("lines changed:\n got %q\nwant %q", got, want)
		}
	})
}

func abs(n int) int {
	if n < 0 {
		return -n
	}
	return n
}
