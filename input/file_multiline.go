package input

import (
	"bytes"
	"regexp"
	"time"
)

// Values of input.multiline.
const (
	MultilineOff    = "off"    // one line, one record
	MultilineIndent = "indent" // indented lines (and the unindented lines of Java and Python traces) continue a record
	MultilineStart  = "start"  // a line matching multiline_start begins a record; others continue it
)

// multilineRule decides which lines continue the record before them. It is
// shared by the files of one input and not changed after construction.
type multilineRule struct {
	mode     string
	start    *regexp.Regexp
	maxBytes int
	timeout  time.Duration
}

// Lines Python prints inside a chain of tracebacks, unindented.
var (
	pyTraceback = []byte("Traceback (most recent call last):")
	pyChained   = [][]byte{
		[]byte("During handling of the above exception, another exception occurred:"),
		[]byte("The above exception was the direct cause of the following exception:"),
	}
	javaCausedBy = []byte("Caused by: ")
	// A Java exception header at the start of a line, as loggers print it on
	// the line after the message: a qualified class name whose last part ends
	// in Exception or Error, then ":" or the end of the line.
	javaException = regexp.MustCompile(`^(?:[a-zA-Z_$][a-zA-Z0-9_$]*\.)+[A-Z][a-zA-Z0-9_$]*(?:Exception|Error|Throwable)(?::|$)`)
)

// multiline joins the lines of one file into records. The zero value (with
// a nil rule) passes every line through.
type multiline struct {
	rule *multilineRule

	buf      []byte // the pending record: lines joined with LF
	out      []byte // the record last returned, valid until the next call
	pending  bool
	startOff int64     // file offset of the pending record's first line
	endOff   int64     // file offset just past its last line
	last     time.Time // when its last line arrived
	rawLen   int

	// indent mode: where in a Python traceback the record is, and whether
	// the line before was indented (an unindented line after indented
	// frames ends a traceback).
	trace        traceState
	lastIndented bool
}

type traceState uint8

const (
	traceNone  traceState = iota
	traceIn               // after "Traceback (most recent call last):"
	traceEnded            // after the exception line that ends one; a chained one may follow
)

// push adds line, which spans the file bytes [off, end). When line begins
// a new record (or did not fit), it returns the completed one, with the
// file offset of its first line and the raw bytes it spans; the record is
// valid until the next call.
func (m *multiline) push(line []byte, off, end int64, now time.Time) (rec []byte, recOff int64, raw int, ok bool) {
	if m.pending && m.continues(line) && len(m.buf)+1+len(line) <= m.rule.maxBytes {
		m.buf = append(m.buf, '\n')
		m.buf = append(m.buf, line...)
		m.endOff, m.last = end, now
		m.rawLen += int(end - off)
		return nil, 0, 0, false
	}
	if m.pending {
		recOff, raw = m.startOff, m.rawLen
		rec, ok = m.swap(), true
	}
	m.buf = append(m.buf[:0], line...)
	m.pending, m.startOff, m.endOff, m.last, m.rawLen = true, off, end, now, int(end-off)
	m.trace = traceNone
	if m.rule.mode == MultilineIndent && bytes.Equal(line, pyTraceback) {
		m.trace = traceIn
	}
	m.lastIndented = isIndented(line)
	return rec, recOff, raw, ok
}

// swap moves the pending record to out and returns it.
func (m *multiline) swap() []byte {
	m.out, m.buf = m.buf, m.out[:0]
	m.pending = false
	return m.out
}

// flush returns the pending record, if any, with its offset and raw size.
func (m *multiline) flush() (rec []byte, recOff int64, raw int, ok bool) {
	if !m.pending {
		return nil, 0, 0, false
	}
	m.trace, m.lastIndented = traceNone, false
	return m.swap(), m.startOff, m.rawLen, true
}

// due reports whether the pending record has waited multiline_timeout for a
// continuation.
func (m *multiline) due(now time.Time) bool {
	return m.pending && now.Sub(m.last) >= m.rule.timeout
}

// continues reports whether line continues the pending record.
func (m *multiline) continues(line []byte) bool {
	if m.rule.mode == MultilineStart {
		return !m.rule.start.Match(line)
	}
	indented := isIndented(line)
	wasIndented := m.lastIndented
	m.lastIndented = indented
	switch {
	case indented:
		return true
	case bytes.HasPrefix(line, javaCausedBy), javaException.Match(line):
		m.trace = traceNone
		return true
	case bytes.Equal(line, pyTraceback):
		m.trace = traceIn
		return true
	case bytes.Equal(line, pyChained[0]), bytes.Equal(line, pyChained[1]):
		return m.trace != traceNone
	case m.trace == traceIn && wasIndented:
		// The exception line that ends a traceback ("ValueError: bad").
		m.trace = traceEnded
		return true
	}
	m.trace = traceNone
	return false
}

func isIndented(line []byte) bool {
	return len(line) > 0 && (line[0] == ' ' || line[0] == '\t')
}
