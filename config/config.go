// Package config reads flowgo.toml: Flowgger's [input] and [output] tables
// (and flowgo's [[input]] arrays), strictly. Each component decodes its own
// keys from a Section; a key that no component read is an error naming its
// line and the closest known key, and a legacy Flowgger key is a warning.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/BurntSushi/toml"
)

// Error is a configuration error: what is wrong, and where.
type Error struct {
	File string // the config file, "" when there is none (pipe mode)
	Line int    // 0 when unknown
	Key  string // full dotted key, such as "input.listen"
	Msg  string
	// Err is the cause, when the error wraps one (Section.Wrap): Msg is its
	// text, and errors.Is and errors.As reach it.
	Err error
}

func (e *Error) Error() string {
	var b strings.Builder
	if e.File != "" {
		b.WriteString(e.File)
		if e.Line > 0 {
			b.WriteString(":")
			b.WriteString(strconv.Itoa(e.Line))
		}
		b.WriteString(": ")
	}
	if e.Key != "" {
		b.WriteString(e.Key)
		b.WriteString(": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// Unwrap returns the cause, nil when there is none.
func (e *Error) Unwrap() error { return e.Err }

// KeyError is an error about one key, from code that knows the key but not
// the section it is in (the TLS settings shared by several components, a
// component built without a config file). Section.Wrap turns it into an
// *Error naming the section, file and line; nothing has to look for a key
// name in an error's text.
type KeyError struct {
	Key string // the key in its section, such as "tls_cert"
	Err error
}

func (e *KeyError) Error() string { return e.Key + ": " + e.Err.Error() }

// Unwrap returns the cause.
func (e *KeyError) Unwrap() error { return e.Err }

// KeyErrorf returns a *KeyError about key.
func KeyErrorf(key, format string, args ...any) error {
	return &KeyError{Key: key, Err: fmt.Errorf(format, args...)}
}

// File is a parsed configuration file.
type File struct {
	Path  string
	src   string
	md    toml.MetaData
	top   map[string]toml.Primitive
	lines []string

	// Inputs holds the [input] table, or each [[input]] table in order.
	Inputs []*Section
	// Output is the [output] table (empty when absent).
	Output *Section
	// Tables holds the other top-level tables ([metrics], ...) by name.
	Tables map[string]*Section

	warnings []string
}

// Load reads and parses the file at path.
func Load(path string) (*File, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, &Error{File: path, Msg: err.Error()}
	}
	return Parse(path, string(data))
}

// Parse parses src, naming it path in errors.
func Parse(path, src string) (*File, error) {
	f := &File{Path: path, src: src, lines: strings.Split(src, "\n"), Tables: map[string]*Section{}}
	md, err := toml.Decode(src, &f.top)
	if err != nil {
		var pe toml.ParseError
		if errors.As(err, &pe) {
			return nil, &Error{File: path, Line: pe.Position.Line, Msg: "syntax error: " + pe.Message + "\n" + pe.ErrorWithPosition()}
		}
		return nil, &Error{File: path, Msg: err.Error()}
	}
	f.md = md
	for name, prim := range f.top {
		switch md.Type(name) {
		case "Hash":
			s := f.newSection(name, -1, prim)
			if name == "input" {
				f.Inputs = []*Section{s}
			} else if name == "output" {
				f.Output = s
			} else {
				f.Tables[name] = s
			}
		case "ArrayHash":
			if name != "input" {
				return nil, &Error{File: path, Line: f.tableLine(name, 0), Key: name, Msg: "only [input] may be an array of tables ([[input]])"}
			}
			var prims []toml.Primitive
			if err := md.PrimitiveDecode(prim, &prims); err != nil {
				return nil, f.tomlError(err)
			}
			for i, p := range prims {
				f.Inputs = append(f.Inputs, f.newSection(name, i, p))
			}
		default:
			return nil, &Error{File: path, Line: f.keyLine("", -1, name), Key: name,
				Msg: fmt.Sprintf("a top-level key must be a table such as [input] or [output], not a %s", strings.ToLower(md.Type(name)))}
		}
	}
	if f.Output == nil {
		f.Output = f.newSection("output", -1, toml.Primitive{})
	}
	if len(f.Inputs) == 0 {
		f.Inputs = []*Section{f.newSection("input", -1, toml.Primitive{})}
	}
	return f, nil
}

// Empty returns a file with empty [input] and [output] tables: every key at
// its default. Pipe mode uses it.
func Empty() *File {
	f, err := Parse("", "")
	if err != nil {
		panic(err) // cannot happen: empty TOML is valid
	}
	f.Path = ""
	return f
}

// Warnings returns the warnings gathered so far (legacy keys, ignored keys).
func (f *File) Warnings() []string { return f.warnings }

// Warn records a warning about key of s.
func (s *Section) Warn(key, format string, args ...any) {
	e := &Error{File: s.file.Path, Line: s.Line(key), Key: s.Key(key), Msg: fmt.Sprintf(format, args...)}
	s.file.warnings = append(s.file.warnings, e.Error())
}

// CheckTables returns an error for a top-level table that is neither
// [input], [output] nor one of allowed. Call it before building components:
// a misspelt [ouput] must be reported as such, not as a missing output key.
func (f *File) CheckTables(allowed ...string) error {
	names := make([]string, 0, len(f.Tables))
	for name := range f.Tables {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		if !slices.Contains(allowed, name) {
			known := append([]string{"input", "output"}, allowed...)
			return &Error{File: f.Path, Line: f.tableLine(name, 0), Key: name, Msg: "unknown table" + suggest(name, known)}
		}
	}
	return nil
}

// Check returns an error for the first key of any section that no component
// decoded, in file order, and for unknown top-level tables not in allowed.
func (f *File) Check(allowedTables ...string) error {
	var errs []*Error
	for name := range f.Tables {
		if !slices.Contains(allowedTables, name) {
			known := append([]string{"input", "output"}, allowedTables...)
			errs = append(errs, &Error{File: f.Path, Line: f.tableLine(name, 0), Key: name,
				Msg: "unknown table" + suggest(name, known)})
		}
	}
	for _, s := range f.sections() {
		errs = append(errs, s.unknown()...)
	}
	if len(errs) == 0 {
		return nil
	}
	slices.SortStableFunc(errs, func(a, b *Error) int { return a.Line - b.Line })
	return errs[0]
}

func (f *File) sections() []*Section {
	out := append([]*Section{}, f.Inputs...)
	out = append(out, f.Output)
	names := make([]string, 0, len(f.Tables))
	for n := range f.Tables {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, n := range names {
		out = append(out, f.Tables[n])
	}
	return out
}

// Section is one table of the file: [input], one [[input]], [output], ...
type Section struct {
	file    *File
	table   string // "input"
	index   int    // position in [[input]], -1 for a plain table
	prim    toml.Primitive
	keys    map[string]bool // keys present in the table
	known   map[string]bool // keys some component decoded or accepts
	targets []any           // what Decode filled, for Effective
	raw     map[string]any  // the table's values, to check kinds toml lets through
}

func (f *File) newSection(table string, index int, prim toml.Primitive) *Section {
	s := &Section{file: f, table: table, index: index, prim: prim, keys: map[string]bool{}, known: map[string]bool{}}
	if f.md.IsDefined(table) {
		var m map[string]any
		if err := f.md.PrimitiveDecode(prim, &m); err == nil {
			for k := range m {
				s.keys[k] = true
			}
			s.raw = m
		}
	}
	return s
}

// Name returns the section's name for messages: "input", "input[1]", "output".
func (s *Section) Name() string {
	if s.index >= 0 && len(s.file.Inputs) > 1 {
		return fmt.Sprintf("%s[%d]", s.table, s.index)
	}
	return s.table
}

// Raw returns the table's values as parsed, for comparing two versions of a
// section. The map must not be modified.
func (s *Section) Raw() map[string]any { return s.raw }

// InArray reports whether s is one table of an array of tables ([[input]]).
func (s *Section) InArray() bool { return s.index >= 0 }

// Key returns the full dotted name of key in s, for messages.
func (s *Section) Key(key string) string {
	if key == "" {
		return s.Name()
	}
	return s.Name() + "." + key
}

// File returns the file s belongs to.
func (s *Section) File() *File { return s.file }

// Has reports whether key is set in s.
func (s *Section) Has(key string) bool { return s.keys[key] }

// Keys returns the keys set in s, sorted.
func (s *Section) Keys() []string {
	out := make([]string, 0, len(s.keys))
	for k := range s.keys {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// Decode fills v, a pointer to a struct with `toml` tags, from s. Fields
// whose key is absent keep their value, so set defaults before. Every tagged
// field's key counts as known to s.
func (s *Section) Decode(v any) error {
	s.learn(reflect.TypeOf(v))
	s.targets = append(s.targets, v)
	if len(s.keys) == 0 {
		return nil
	}
	if err := s.file.md.PrimitiveDecode(s.prim, v); err != nil {
		return s.file.tomlError(err)
	}
	if err := s.checkTables(reflect.TypeOf(v)); err != nil {
		return err
	}
	return s.checkValues(reflect.ValueOf(v))
}

// checkTables reports map-typed fields set to something other than a
// table: BurntSushi/toml leaves the map nil without an error for
// `gelf_extra = "x"`.
func (s *Section) checkTables(t reflect.Type) error {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t.Kind() != reflect.Struct {
		return nil
	}
	for i := 0; i < t.NumField(); i++ {
		fld := t.Field(i)
		name, _, _ := strings.Cut(fld.Tag.Get("toml"), ",")
		if fld.Anonymous && name == "" {
			if err := s.checkTables(fld.Type); err != nil {
				return err
			}
			continue
		}
		if name == "" || name == "-" || fld.Type.Kind() != reflect.Map || !s.keys[name] {
			continue
		}
		if _, ok := s.raw[name].(map[string]any); !ok {
			return s.Errorf(name, "wrong type: expected a table, got %s", tomlTypeName(fmt.Sprintf("%T", s.raw[name])))
		}
	}
	return nil
}

// Decoded reports whether a component decoded s.
func (s *Section) Decoded() bool { return len(s.targets) > 0 }

// Effective returns the section as the components see it: every key they
// decoded, with its default when the file does not set it, as TOML. Values
// of keys whose name contains "password" or "secret" are masked.
func (s *Section) Effective() (string, error) {
	merged := map[string]any{}
	for _, t := range s.targets {
		var buf bytes.Buffer
		if err := toml.NewEncoder(&buf).Encode(t); err != nil {
			return "", err
		}
		var m map[string]any
		if _, err := toml.Decode(buf.String(), &m); err != nil {
			return "", err
		}
		for k, v := range m {
			if strings.Contains(k, "password") || strings.Contains(k, "secret") {
				if v != "" {
					v = "********"
				}
			}
			merged[k] = v
		}
	}
	var buf bytes.Buffer
	err := toml.NewEncoder(&buf).Encode(map[string]any{s.table: merged})
	return buf.String(), err
}

// Accept marks keys as known without decoding them.
func (s *Section) Accept(keys ...string) {
	for _, k := range keys {
		s.known[k] = true
	}
}

// Legacy accepts keys that Flowgger no longer reads, warning about each one
// that is set: why is given by reason.
func (s *Section) Legacy(reason string, keys ...string) {
	for _, k := range keys {
		s.known[k] = true
		if s.keys[k] {
			s.Warn(k, "ignored: %s", reason)
		}
	}
}

// Errorf returns an error about key (or the whole section when key is "").
func (s *Section) Errorf(key, format string, args ...any) error {
	line := s.Line(key)
	return &Error{File: s.file.Path, Line: line, Key: s.Key(key), Msg: fmt.Sprintf(format, args...)}
}

// Wrap returns err as an error about s: an *Error as it is, a *KeyError
// about its key, anything else about key ("" for the whole section). The
// cause stays reachable with errors.Is and errors.As.
func (s *Section) Wrap(key string, err error) error {
	if err == nil {
		return nil
	}
	var ce *Error
	if errors.As(err, &ce) {
		return err
	}
	cause := err
	var ke *KeyError
	if errors.As(err, &ke) {
		key, cause = ke.Key, ke.Err
	}
	return &Error{File: s.file.Path, Line: s.Line(key), Key: s.Key(key), Msg: cause.Error(), Err: cause}
}

// Line returns the line where key is set in s, or where s begins when key
// is "" or not found; 0 when unknown.
func (s *Section) Line(key string) int {
	if sub, k, ok := strings.Cut(key, "."); ok {
		// A key of a sub-table: [input.ltsv_schema] counter = ...
		if l := s.file.subKeyLine(s.file.tableLine(s.table, max(s.index, 0)), s.table+"."+sub, k); l > 0 {
			return l
		}
		key = sub
	}
	if key != "" {
		if l := s.file.keyLine(s.table, s.index, key); l > 0 {
			return l
		}
		// A sub-table written as a header: [output.gelf_extra].
		if l := s.file.subTableLine(s.file.tableLine(s.table, max(s.index, 0)), s.table+"."+key); l > 0 {
			return l
		}
	}
	return s.file.tableLine(s.table, max(s.index, 0))
}

// subTableLine returns the line of the first [table] header after line
// from, before the next header of another top-level table; 0 if none.
func (f *File) subTableLine(from int, table string) int {
	top, _, _ := strings.Cut(table, ".")
	for i := max(from, 1); i < len(f.lines); i++ {
		h, _, ok := header(f.lines[i])
		if !ok {
			continue
		}
		if h == table {
			return i + 1
		}
		if t, _, _ := strings.Cut(h, "."); t != top {
			return 0
		}
	}
	return 0
}

func (s *Section) learn(t reflect.Type) {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t.Kind() != reflect.Struct {
		return
	}
	for i := 0; i < t.NumField(); i++ {
		fld := t.Field(i)
		tag := fld.Tag.Get("toml")
		name, _, _ := strings.Cut(tag, ",")
		if name == "-" {
			continue
		}
		if fld.Anonymous && name == "" {
			s.learn(fld.Type)
			continue
		}
		if name == "" {
			name = fld.Name
		}
		s.known[name] = true
	}
}

func (s *Section) unknown() []*Error {
	var errs []*Error
	// TOML puts every key after a [input.sub] header into that sub-table:
	// a key of the section itself there was meant for the section.
	for k, v := range s.raw {
		sub, ok := v.(map[string]any)
		if !ok {
			continue
		}
		for sk := range sub {
			if s.known[sk] && !s.keys[sk] {
				errs = append(errs, &Error{File: s.file.Path, Line: s.Line(k + "." + sk), Key: s.Key(k + "." + sk),
					Msg: fmt.Sprintf("%q is a key of [%s], but it follows the [%s.%s] header, so TOML put it in that table: move it above the header", sk, s.table, s.table, k)})
			}
		}
	}
	known := make([]string, 0, len(s.known))
	for k := range s.known {
		known = append(known, k)
	}
	slices.Sort(known)
	for k := range s.keys {
		if s.known[k] {
			continue
		}
		msg := "unknown key" + suggest(k, known)
		if t := s.knownType(); t != "" {
			msg += fmt.Sprintf(" (typo, or not supported by %s)", t)
		}
		errs = append(errs, &Error{File: s.file.Path, Line: s.Line(k), Key: s.Key(k), Msg: msg})
	}
	return errs
}

func (s *Section) knownType() string {
	var h struct {
		Type string `toml:"type"`
	}
	if s.keys["type"] && s.file.md.PrimitiveDecode(s.prim, &h) == nil && h.Type != "" {
		return fmt.Sprintf("%s type %q", s.table, h.Type)
	}
	return ""
}

var tomlLineRE = regexp.MustCompile(`^toml: line (\d+) \(last key "([^"]*)"\): (.*)$`)
var tomlTypesRE = regexp.MustCompile(`^incompatible types: TOML value has type (\S+); destination has type (\S+)$`)

// tomlError turns a BurntSushi/toml decode error into an Error naming the
// line, the key and, for type mismatches, the expected type.
func (f *File) tomlError(err error) error {
	var pe toml.ParseError
	if errors.As(err, &pe) {
		return &Error{File: f.Path, Line: pe.Position.Line, Key: pe.LastKey, Msg: pe.Message}
	}
	m := tomlLineRE.FindStringSubmatch(err.Error())
	if m == nil {
		return &Error{File: f.Path, Msg: err.Error()}
	}
	line, _ := strconv.Atoi(m[1])
	msg := m[3]
	if t := tomlTypesRE.FindStringSubmatch(msg); t != nil {
		msg = fmt.Sprintf("wrong type: expected %s, got %s", goTypeName(t[2]), tomlTypeName(t[1]))
	}
	return &Error{File: f.Path, Line: line, Key: m[2], Msg: msg}
}

func goTypeName(t string) string {
	switch {
	case strings.HasPrefix(t, "int"), strings.HasPrefix(t, "uint"):
		return "an integer"
	case strings.HasPrefix(t, "float"):
		return "a number"
	case t == "string":
		return "a string"
	case t == "bool":
		return "a boolean (true or false)"
	case t == "slice", t == "array":
		return "an array"
	case t == "map", t == "struct":
		return "a table"
	}
	return t
}

func tomlTypeName(t string) string {
	switch {
	case strings.HasPrefix(t, "int"):
		return "an integer"
	case strings.HasPrefix(t, "float"):
		return "a float"
	case t == "string":
		return "a string"
	case t == "bool":
		return "a boolean"
	case strings.HasPrefix(t, "[]"):
		return "an array"
	case strings.HasPrefix(t, "map"):
		return "a table"
	case strings.Contains(t, "Time") || strings.Contains(t, "Date"):
		return "a date/time"
	}
	return t
}

// tableLine returns the line of the index-th header of table (1-based), 0 if none.
func (f *File) tableLine(table string, index int) int {
	n := 0
	for i, l := range f.lines {
		if h, arr, ok := header(l); ok && h == table {
			if !arr && index == 0 {
				return i + 1
			}
			if arr {
				if n == index {
					return i + 1
				}
				n++
			}
		}
	}
	return 0
}

// keyLine returns the line where key is set directly in the index-th table
// named table ("" for the top level), 0 if not found.
func (f *File) keyLine(table string, index int, key string) int {
	cur, n := "", -1
	in := table == ""
	for i, l := range f.lines {
		if h, arr, ok := header(l); ok {
			cur = h
			in = false
			if h == table {
				if arr {
					n++
					in = n == index
				} else {
					in = true
				}
			}
			continue
		}
		if !in || cur != table {
			continue
		}
		if k, ok := assignedKey(l); ok && k == key {
			return i + 1
		}
	}
	return 0
}

// subKeyLine returns the line where key is set under the first [table]
// header after line from (1-based), 0 if not found.
func (f *File) subKeyLine(from int, table, key string) int {
	in := false
	for i := max(from, 1) - 1; i < len(f.lines); i++ {
		if h, _, ok := header(f.lines[i]); ok {
			if in {
				return 0
			}
			in = h == table
			continue
		}
		if k, ok := assignedKey(f.lines[i]); in && ok && k == key {
			return i + 1
		}
	}
	return 0
}

// header parses a table header line: "[input]", "[[input]]", "[ input ]".
func header(line string) (name string, array, ok bool) {
	t := strings.TrimSpace(line)
	if i := strings.IndexByte(t, '#'); i >= 0 {
		t = strings.TrimSpace(t[:i])
	}
	if strings.HasPrefix(t, "[[") && strings.HasSuffix(t, "]]") {
		return unquoteKey(strings.TrimSpace(t[2 : len(t)-2])), true, true
	}
	if strings.HasPrefix(t, "[") && strings.HasSuffix(t, "]") {
		return unquoteKey(strings.TrimSpace(t[1 : len(t)-1])), false, true
	}
	return "", false, false
}

func assignedKey(line string) (string, bool) {
	t := strings.TrimSpace(line)
	k, _, ok := strings.Cut(t, "=")
	if !ok || strings.HasPrefix(t, "#") {
		return "", false
	}
	return unquoteKey(strings.TrimSpace(k)), true
}

func unquoteKey(k string) string {
	if len(k) >= 2 && (k[0] == '"' || k[0] == '\'') && k[len(k)-1] == k[0] {
		return k[1 : len(k)-1]
	}
	return k
}

// suggest returns ` (did you mean "x"?)` for the known key closest to k, or
// "" when none is close.
func suggest(k string, known []string) string {
	best, bestD := "", 1<<30
	for _, c := range known {
		if d := distance(strings.ToLower(k), c); d < bestD {
			best, bestD = c, d
		}
	}
	if best != "" && bestD <= max(2, len(k)/3) {
		return fmt.Sprintf(" (did you mean %q?)", best)
	}
	return ""
}

// distance is the Levenshtein edit distance, with a transposition counting
// as one edit, as typos go.
func distance(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	prev2 := make([]int, len(rb)+1)
	prev := make([]int, len(rb)+1)
	cur := make([]int, len(rb)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(ra); i++ {
		cur[0] = i
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
			if i > 1 && j > 1 && ra[i-1] == rb[j-2] && ra[i-2] == rb[j-1] {
				cur[j] = min(cur[j], prev2[j-2]+1)
			}
		}
		prev2, prev, cur = prev, cur, prev2
	}
	return prev[len(rb)]
}
