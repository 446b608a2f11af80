package encodertest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// gelfKey is the field-name rule of the GELF 1.1 specification.
var gelfKey = regexp.MustCompile(`^[\w\.\-]*$`)

// ValidGELF checks that out is one GELF 1.1 message that Graylog accepts:
// valid UTF-8, one JSON object and nothing after it, no key twice, every
// key matching ^[\w\.\-]*$ and none "_id", only scalar values, version
// "1.1", a non-blank string host, a non-empty string short_message, a
// numeric timestamp and an integer level 0-7 when present.
func ValidGELF(out []byte) error {
	if !utf8.Valid(out) {
		return errors.New("not valid UTF-8")
	}
	fields, err := gelfFields(out)
	if err != nil {
		return err
	}
	if v, ok := fields["version"].(string); !ok || v != "1.1" {
		return fmt.Errorf("version = %#v; want \"1.1\"", fields["version"])
	}
	if h, ok := fields["host"].(string); !ok || strings.TrimSpace(h) == "" {
		return fmt.Errorf("host = %#v; want a non-blank string", fields["host"])
	}
	if m, ok := fields["short_message"].(string); !ok || m == "" {
		return fmt.Errorf("short_message = %#v; want a non-empty string", fields["short_message"])
	}
	if ts, ok := fields["timestamp"]; ok {
		if _, isNum := ts.(json.Number); !isNum {
			return fmt.Errorf("timestamp = %#v; want a number", ts)
		}
	}
	if lv, ok := fields["level"]; ok {
		n, isNum := lv.(json.Number)
		if i, err := strconv.Atoi(string(n)); !isNum || err != nil || i < 0 || i > 7 {
			return fmt.Errorf("level = %#v; want an integer 0-7", lv)
		}
	}
	return nil
}

// gelfFields parses a JSON object, rejecting duplicate keys, which
// encoding/json would silently merge, and keys GELF does not allow.
func gelfFields(out []byte) (map[string]any, error) {
	dec := json.NewDecoder(bytes.NewReader(out))
	dec.UseNumber()
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return nil, fmt.Errorf("not a JSON object: %v %v", tok, err)
	}
	fields := map[string]any{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, err
		}
		key := tok.(string) // the decoder only gives strings in key position
		if _, dup := fields[key]; dup {
			return nil, fmt.Errorf("key %q appears twice", key)
		}
		if !gelfKey.MatchString(key) {
			return nil, fmt.Errorf("key %q does not match ^[\\w\\.\\-]*$", key)
		}
		if key == "_id" {
			return nil, errors.New("key _id is reserved by Graylog")
		}
		var v any
		if err := dec.Decode(&v); err != nil {
			return nil, fmt.Errorf("value of %q: %v", key, err)
		}
		switch v.(type) {
		case map[string]any, []any:
			return nil, fmt.Errorf("value of %q is not a scalar", key)
		}
		fields[key] = v
	}
	if _, err := dec.Token(); err != nil {
		return nil, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, fmt.Errorf("data after the object (%v)", err)
	}
	return fields, nil
}

// GELFFields returns the fields of a GELF message as encoding/json decodes
// them, numbers as json.Number, after the checks of ValidGELF.
func GELFFields(out []byte) (map[string]any, error) {
	if err := ValidGELF(out); err != nil {
		return nil, err
	}
	return gelfFields(out)
}

var rfc3339 = regexp.MustCompile(`^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?(Z|[+-]\d{2}:\d{2})$`)

// ValidRFC5424 checks out against the grammar of RFC 5424 section 6: PRI
// 0-191, VERSION 1, an RFC 3339 TIMESTAMP with at most 6 fraction digits or
// "-", header fields of printable ASCII within their lengths, and
// structured data whose names are SD-NAMEs, whose values are UTF-8 with
// '"', '\' and ']' escaped, and whose SD-IDs are unique. MSG may be
// anything.
func ValidRFC5424(out []byte) error {
	s := string(out)
	if !strings.HasPrefix(s, "<") {
		return errors.New("no PRI")
	}
	end := strings.IndexByte(s, '>')
	if end < 2 || end > 4 {
		return errors.New("bad PRI")
	}
	pri, err := strconv.Atoi(s[1:end])
	if err != nil || pri < 0 || pri > 191 || s[1] == '+' || s[1] == '-' {
		return fmt.Errorf("bad PRI %q", s[1:end])
	}
	s = s[end+1:]
	if !strings.HasPrefix(s, "1 ") {
		return errors.New("VERSION is not 1")
	}
	s = s[2:]
	fields := [...]struct {
		name string
		max  int
	}{{"TIMESTAMP", 32}, {"HOSTNAME", 255}, {"APP-NAME", 48}, {"PROCID", 128}, {"MSGID", 32}}
	for _, f := range fields {
		sp := strings.IndexByte(s, ' ')
		if sp < 0 {
			return fmt.Errorf("%s: no space after it", f.name)
		}
		v := s[:sp]
		s = s[sp+1:]
		if v == "" || len(v) > f.max {
			return fmt.Errorf("%s %q: length %d not in 1-%d", f.name, v, len(v), f.max)
		}
		for i := 0; i < len(v); i++ {
			if v[i] < 33 || v[i] > 126 {
				return fmt.Errorf("%s %q: byte %#x is not PRINTUSASCII", f.name, v, v[i])
			}
		}
		if f.name == "TIMESTAMP" && v != "-" {
			if !rfc3339.MatchString(v) {
				return fmt.Errorf("TIMESTAMP %q is not RFC 3339 with at most 6 fraction digits", v)
			}
			if _, err := time.Parse(time.RFC3339Nano, v); err != nil {
				return fmt.Errorf("TIMESTAMP %q: %v", v, err)
			}
		}
	}
	rest, err := validSD(s)
	if err != nil {
		return err
	}
	if rest != "" && rest[0] != ' ' {
		return fmt.Errorf("%q after the structured data; want a space and MSG", rest)
	}
	return nil
}

// validSD checks STRUCTURED-DATA at the start of s and returns what follows.
func validSD(s string) (string, error) {
	if strings.HasPrefix(s, "-") {
		return s[1:], nil
	}
	if !strings.HasPrefix(s, "[") {
		return "", errors.New("STRUCTURED-DATA is neither - nor [")
	}
	ids := map[string]bool{}
	for strings.HasPrefix(s, "[") {
		s = s[1:]
		id, rest := sdName(s)
		if id == "" {
			return "", fmt.Errorf("bad SD-ID at %q", s)
		}
		if ids[id] {
			return "", fmt.Errorf("SD-ID %q twice", id)
		}
		ids[id] = true
		s = rest
		for strings.HasPrefix(s, " ") {
			name, rest := sdName(s[1:])
			if name == "" || !strings.HasPrefix(rest, `="`) {
				return "", fmt.Errorf("bad SD-PARAM at %q", s)
			}
			s = rest[2:]
			var val strings.Builder
			closed := false
			for len(s) > 0 && !closed {
				switch c := s[0]; c {
				case '\\':
					if len(s) < 2 || (s[1] != '"' && s[1] != '\\' && s[1] != ']') {
						return "", fmt.Errorf("lone backslash in the value of %q", name)
					}
					val.WriteByte(s[1])
					s = s[2:]
				case '"':
					closed = true
					s = s[1:]
				case ']':
					return "", fmt.Errorf("unescaped ']' in the value of %q", name)
				default:
					val.WriteByte(c)
					s = s[1:]
				}
			}
			if !closed {
				return "", fmt.Errorf("value of %q not closed", name)
			}
			if !utf8.ValidString(val.String()) {
				return "", fmt.Errorf("value of %q is not UTF-8", name)
			}
		}
		if !strings.HasPrefix(s, "]") {
			return "", fmt.Errorf("SD-ELEMENT %q not closed at %q", id, s)
		}
		s = s[1:]
	}
	return s, nil
}

// sdName returns the SD-NAME at the start of s (1-32 PRINTUSASCII but
// '=', ']', '"', space) and what follows; "" when there is none.
func sdName(s string) (string, string) {
	n := 0
	for n < len(s) && s[n] > 32 && s[n] < 127 && s[n] != '=' && s[n] != ']' && s[n] != '"' {
		n++
	}
	if n == 0 || n > 32 {
		return "", s
	}
	return s[:n], s[n:]
}

// ValidLTSV checks that out is one LTSV record: no line break, fields
// separated by tabs, each with a non-empty label before its first ':' and
// no label twice.
func ValidLTSV(out []byte) error {
	if bytes.ContainsAny(out, "\n\r") {
		return errors.New("a line break inside the record")
	}
	seen := map[string]bool{}
	for _, f := range strings.Split(string(out), "\t") {
		label, _, ok := strings.Cut(f, ":")
		if !ok || label == "" {
			return fmt.Errorf("field %q has no label", f)
		}
		if seen[label] {
			return fmt.Errorf("label %q twice", label)
		}
		seen[label] = true
	}
	return nil
}
