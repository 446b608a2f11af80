package main

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/BurntSushi/toml"
	"github.com/flowgo/flowgo/decoder"
	"github.com/flowgo/flowgo/encoder"
	"github.com/flowgo/flowgo/input"
	"github.com/flowgo/flowgo/internal/testcerts"
	"github.com/flowgo/flowgo/output"
)

// configDoc is the page TestConfigurationDocMatchesCheck keeps true.
const configDoc = "../../docs/configuration.md"

// docSection is one "##" or "###" section of docs/configuration.md.
type docSection struct {
	title, anchor string
	line          int
	table         string // "input", "output", "metrics", "queue"; "" for prose only
	legacy        bool
	parent        *docSection // the "##" section of a "###" one
	example       string      // the first ```toml block
	rows          []docRow
	links         []string // anchors linked from the section's prose
}

// docRow is a row of a section's key table: the keys of its first cell
// (a sub-table [input.ltsv_schema] gives ltsv_schema) and its default.
type docRow struct {
	keys []string
	def  string // the cell as written
	line int
	rest string // the cells after the default
}

var (
	backquotedRE = regexp.MustCompile("`([^`]+)`")
	subTableRE   = regexp.MustCompile(`^\[(\w+)\.(\w+)\]$`)
	keyRE        = regexp.MustCompile(`^\w+$`)
	tableNameRE  = regexp.MustCompile("`\\[(\\w+)\\]`")
	anchorLinkRE = regexp.MustCompile(`\]\(#([\w-]+)\)`)
)

// slug is the anchor GitHub gives a heading.
func slug(heading string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(heading) {
		switch {
		case r == ' ':
			b.WriteByte('-')
		case r == '-' || r == '_' || r >= 'a' && r <= 'z' || r >= '0' && r <= '9':
			b.WriteRune(r)
		}
	}
	return b.String()
}

func parseConfigDoc(t *testing.T, path string) []*docSection {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var (
		sections []*docSection
		cur, h2  *docSection
		fence    string // the open code fence's language, "" outside
		inFence  bool
		block    strings.Builder
	)
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		trimmed := strings.TrimSpace(line)
		if strings.HasPrefix(trimmed, "```") {
			if !inFence {
				inFence, fence = true, strings.TrimPrefix(trimmed, "```")
				block.Reset()
				continue
			}
			inFence = false
			if fence == "toml" && cur != nil && cur.example == "" {
				cur.example = block.String()
			}
			continue
		}
		if inFence {
			block.WriteString(strings.TrimPrefix(line, "  ") + "\n")
			continue
		}
		if strings.HasPrefix(line, "## ") || strings.HasPrefix(line, "### ") {
			level := strings.Index(line, " ")
			title := strings.TrimSpace(line[level:])
			s := &docSection{title: title, anchor: slug(title), line: n}
			if level == 2 {
				if m := tableNameRE.FindStringSubmatch(title); m != nil {
					s.table = m[1]
				}
				s.legacy = strings.Contains(strings.ToLower(title), "legacy")
				h2 = s
			} else if h2 != nil {
				s.parent, s.table, s.legacy = h2, h2.table, h2.legacy
			}
			sections = append(sections, s)
			cur = s
			continue
		}
		if cur == nil {
			continue
		}
		if strings.HasPrefix(line, "| `") {
			cells := strings.Split(line, "|")
			if len(cells) < 4 {
				t.Fatalf("%s:%d: a key row needs a key, a default and a meaning: %q", path, n, line)
			}
			r := docRow{def: strings.TrimSpace(cells[2]), line: n, rest: strings.Join(cells[3:], "|")}
			for _, m := range backquotedRE.FindAllStringSubmatch(cells[1], -1) {
				switch tok := m[1]; {
				case subTableRE.MatchString(tok):
					r.keys = append(r.keys, subTableRE.FindStringSubmatch(tok)[2])
				case keyRE.MatchString(tok):
					r.keys = append(r.keys, tok)
				default:
					t.Errorf("%s:%d: %q in a key cell is neither a key nor a [table.sub] header", path, n, tok)
				}
			}
			cur.rows = append(cur.rows, r)
			continue
		}
		if !strings.HasPrefix(line, "|") {
			for _, m := range anchorLinkRE.FindAllStringSubmatch(line, -1) {
				cur.links = append(cur.links, m[1])
			}
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return sections
}

// checkOutput is what `flowgo check` printed: the keys of each table, with
// their values as TOML; a sub-table present appears as its name.
type checkOutput map[string]map[string]string

var (
	checkTableRE = regexp.MustCompile(`^\[\[?(\w+)\]\]?$`)
	checkKeyRE   = regexp.MustCompile(`^  (\w+) = (.*)$`)
	checkSubRE   = regexp.MustCompile(`^  \[(\w+)\.(\w+)\]$`)
)

func parseCheckOutput(out string) checkOutput {
	got := checkOutput{}
	table := ""
	for _, line := range strings.Split(out, "\n") {
		switch {
		case checkTableRE.MatchString(line):
			table = checkTableRE.FindStringSubmatch(line)[1]
			if got[table] == nil {
				got[table] = map[string]string{}
			}
		case table == "":
		case checkKeyRE.MatchString(line):
			m := checkKeyRE.FindStringSubmatch(line)
			got[table][m[1]] = m[2]
		case checkSubRE.MatchString(line):
			got[table][checkSubRE.FindStringSubmatch(line)[2]] = "(table)"
		}
	}
	return got
}

// exampleConfig completes a section's example into a config file: an
// example without [input] or [output] gets stdin or stdout.
func exampleConfig(example string) string {
	has := func(table string) bool {
		return regexp.MustCompile(`(?m)^\[\[?` + table + `\]\]?\s*$`).MatchString(example)
	}
	var prefix string
	if !has("input") {
		prefix += "[input]\ntype = \"stdin\"\n"
	}
	if !has("output") {
		prefix += "[output]\ntype = \"stdout\"\n"
	}
	return prefix + example
}

// runCheck runs `flowgo check` on config in dir (where the examples'
// relative paths point), returning its output, stderr and exit code.
func runCheck(t *testing.T, dir, config string) result {
	t.Helper()
	path := filepath.Join(dir, "example.toml")
	if err := os.WriteFile(path, []byte(config), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(flowgoBin, "check", "-c", path)
	cmd.Dir = dir
	var out, errb strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return result{out.String(), errb.String(), code}
}

// explicitKeys returns the keys an example sets, by table.
func explicitKeys(t *testing.T, where, example string) map[string]map[string]bool {
	t.Helper()
	var raw map[string]any
	if _, err := toml.Decode(example, &raw); err != nil {
		t.Fatalf("%s: the example is not TOML: %v", where, err)
	}
	keys := map[string]map[string]bool{}
	add := func(table string, m map[string]any) {
		if keys[table] == nil {
			keys[table] = map[string]bool{}
		}
		for k := range m {
			keys[table][k] = true
		}
	}
	for table, v := range raw {
		switch v := v.(type) {
		case map[string]any:
			add(table, v)
		case []map[string]any:
			for _, m := range v {
				add(table, m)
			}
		}
	}
	return keys
}

// exampleTypes returns the input and output types an example sets.
func exampleTypes(t *testing.T, where, example string) map[string]string {
	t.Helper()
	var raw map[string]any
	if _, err := toml.Decode(example, &raw); err != nil {
		t.Fatalf("%s: the example is not TOML: %v", where, err)
	}
	types := map[string]string{}
	for _, table := range []string{"input", "output"} {
		var m map[string]any
		switch v := raw[table].(type) {
		case map[string]any:
			m = v
		case []map[string]any:
			m = v[0]
		}
		if typ, ok := m["type"].(string); ok {
			types[table] = typ
		}
	}
	return types
}

// sameDefault reports whether the documented default (a TOML literal)
// equals the value flowgo check printed; durations compare by value
// ("60s" is "1m0s").
func sameDefault(doc, printed string) (bool, error) {
	var d, p map[string]any
	if _, err := toml.Decode("v = "+doc, &d); err != nil {
		return false, fmt.Errorf("the default %s is not a TOML value: %v", doc, err)
	}
	if _, err := toml.Decode("v = "+printed, &p); err != nil {
		return false, fmt.Errorf("flowgo check printed %s, not a TOML value: %v", printed, err)
	}
	if ds, ok := d["v"].(string); ok {
		if ps, ok := p["v"].(string); ok {
			dd, err1 := time.ParseDuration(ds)
			pd, err2 := time.ParseDuration(ps)
			if err1 == nil && err2 == nil {
				return dd == pd, nil
			}
		}
	}
	return reflect.DeepEqual(d, p), nil
}

// shippedKeys returns the keys flowgo.toml documents, set or commented
// out, by table; a sub-table counts as a key of its table, and the
// example entries under its header are not keys.
func shippedKeys(t *testing.T) map[string]map[string]bool {
	t.Helper()
	b, err := os.ReadFile("../../flowgo.toml")
	if err != nil {
		t.Fatal(err)
	}
	header := regexp.MustCompile(`^#?\[(\w+)\]\s*$`)
	sub := regexp.MustCompile(`^#?\[(\w+)\.(\w+)\]\s*$`)
	key := regexp.MustCompile(`^#?(\w+) = `)
	keys := map[string]map[string]bool{}
	table, inSub := "", false
	for _, line := range strings.Split(string(b), "\n") {
		switch {
		case header.MatchString(line):
			table, inSub = header.FindStringSubmatch(line)[1], false
		case sub.MatchString(line):
			m := sub.FindStringSubmatch(line)
			if keys[m[1]] == nil {
				keys[m[1]] = map[string]bool{}
			}
			keys[m[1]][m[2]] = true
			inSub = true
		case inSub && strings.HasPrefix(line, "#") && !strings.HasPrefix(line, "# "):
			// an entry of the sub-table's example
		case key.MatchString(line) && table != "":
			inSub = false
			if keys[table] == nil {
				keys[table] = map[string]bool{}
			}
			keys[table][key.FindStringSubmatch(line)[1]] = true
		default:
			inSub = false
		}
	}
	return keys
}

// TestConfigurationDocMatchesCheck keeps docs/configuration.md from
// drifting: each section's example runs through `flowgo check`; every key
// the check prints is documented in the section, its table's section or a
// section it links to; every key documented is printed, with the default
// documented (when the default is a literal in backquotes); every input
// and output type has a section; every format's keys are documented; the
// legacy keys are accepted with a warning naming them; and the documented
// keys are flowgo.toml's, both ways.
func TestConfigurationDocMatchesCheck(t *testing.T) {
	sections := parseConfigDoc(t, configDoc)
	dir := t.TempDir()
	leaf := testcerts.NewCA(t, "ca").Server(t)
	testcerts.WriteFile(t, dir, "server.pem", leaf.CertPEM, leaf.KeyPEM)

	byAnchor := map[string]*docSection{}
	documented := map[string]map[string]bool{} // table → keys, legacy section excluded
	for _, s := range sections {
		if byAnchor[s.anchor] != nil {
			t.Errorf("%s:%d: two sections have the anchor #%s", configDoc, s.line, s.anchor)
		}
		byAnchor[s.anchor] = s
		if s.table == "" || s.legacy {
			continue
		}
		if documented[s.table] == nil {
			documented[s.table] = map[string]bool{}
		}
		for _, r := range s.rows {
			for _, k := range r.keys {
				documented[s.table][k] = true
			}
		}
	}

	typesCovered := map[string]map[string]bool{"input": {}, "output": {}}
	examples := 0
	for _, s := range sections {
		where := fmt.Sprintf("%s:%d (%s)", configDoc, s.line, s.title)
		if s.table == "" && !s.legacy {
			continue
		}
		if s.example == "" {
			if len(s.rows) > 0 || s.legacy {
				t.Errorf("%s: documents keys but has no ```toml example to check them with", where)
			}
			continue
		}
		examples++
		r := runCheck(t, dir, exampleConfig(s.example))
		if r.code != 0 {
			t.Errorf("%s: flowgo check of the example: exit %d: %s", where, r.code, r.stderr)
			continue
		}
		if s.legacy {
			for _, row := range s.rows {
				for _, table := range tableNameRE.FindAllStringSubmatch(row.def, -1) {
					for _, k := range row.keys {
						if !strings.Contains(r.stderr, table[1]+"."+k+":") {
							t.Errorf("%s:%d: legacy key %s.%s: flowgo check gave no warning naming it:\n%s", configDoc, row.line, table[1], k, r.stderr)
						}
					}
				}
			}
			continue
		}
		printed := parseCheckOutput(r.stdout)
		explicit := explicitKeys(t, where, s.example)
		for table, typ := range exampleTypes(t, where, s.example) {
			typesCovered[table][typ] = true
		}

		// Every key documented here is printed, with its default.
		for _, row := range s.rows {
			for _, k := range row.keys {
				v, ok := printed[s.table][k]
				if !ok {
					t.Errorf("%s:%d: %s.%s is documented, but flowgo check of the section's example does not print it", configDoc, row.line, s.table, k)
					continue
				}
				if explicit[s.table][k] || !strings.HasPrefix(row.def, "`") {
					continue
				}
				lit := backquotedRE.FindStringSubmatch(row.def)[1]
				same, err := sameDefault(lit, v)
				if err != nil {
					t.Errorf("%s:%d: %s.%s: %v", configDoc, row.line, s.table, k, err)
				} else if !same {
					t.Errorf("%s:%d: %s.%s: documented default %s; flowgo check prints %s", configDoc, row.line, s.table, k, lit, v)
				}
			}
		}
		// Every key printed is documented here, in the table's section
		// or in a section linked from the prose.
		scope := []*docSection{s}
		if s.parent != nil {
			scope = append(scope, s.parent)
		}
		for _, a := range s.links {
			if l := byAnchor[a]; l != nil {
				scope = append(scope, l)
			} else {
				t.Errorf("%s: links to #%s, which is no section of the page", where, a)
			}
		}
		for k := range printed[s.table] {
			found := false
			for _, d := range scope {
				for _, row := range d.rows {
					found = found || slices.Contains(row.keys, k)
				}
			}
			if !found {
				t.Errorf("%s: flowgo check of the example prints %s.%s, which neither this section, its table's nor one it links to documents", where, s.table, k)
			}
		}
	}
	if examples < 20 {
		t.Fatalf("only %d examples checked: the page's layout changed?", examples)
	}

	// Every type has a section with an example.
	for table, names := range map[string][]string{"input": input.Names(), "output": output.Names()} {
		canonical := map[string]bool{}
		for typ := range typesCovered[table] {
			c := typ
			var err error
			if table == "input" {
				_, c, err = input.Lookup(typ)
			} else {
				_, c, err = output.Lookup(typ)
			}
			if err != nil {
				t.Errorf("an example of %s: %v", configDoc, err)
			}
			canonical[c] = true
		}
		for _, n := range names {
			var c string
			if table == "input" {
				_, c, _ = input.Lookup(n)
			} else {
				_, c, _ = output.Lookup(n)
			}
			if !canonical[c] {
				t.Errorf("%s type %q has no section with an example in %s", table, c, configDoc)
				canonical[c] = true // once
			}
		}
	}

	// Every format's keys are documented.
	for _, f := range decoder.Names() {
		r := runCheck(t, dir, fmt.Sprintf("[input]\ntype = \"stdin\"\nformat = %q\n[output]\ntype = \"stdout\"\n", f))
		if r.code != 0 {
			t.Errorf("input format %s: flowgo check: exit %d: %s", f, r.code, r.stderr)
		}
		for k := range parseCheckOutput(r.stdout)["input"] {
			if !documented["input"][k] {
				t.Errorf("input format %s: flowgo check prints input.%s, which %s does not document", f, k, configDoc)
			}
		}
	}
	for _, f := range encoder.Names() {
		r := runCheck(t, dir, fmt.Sprintf("[input]\ntype = \"stdin\"\n[output]\ntype = \"stdout\"\nformat = %q\n", f))
		if r.code != 0 {
			t.Errorf("output format %s: flowgo check: exit %d: %s", f, r.code, r.stderr)
		}
		for k := range parseCheckOutput(r.stdout)["output"] {
			if !documented["output"][k] {
				t.Errorf("output format %s: flowgo check prints output.%s, which %s does not document", f, k, configDoc)
			}
		}
	}

	// The page and flowgo.toml document the same keys.
	shipped := shippedKeys(t)
	for _, table := range []string{"input", "output", "metrics", "queue"} {
		if len(shipped[table]) == 0 || len(documented[table]) == 0 {
			t.Errorf("no keys found for [%s] in flowgo.toml (%d) or %s (%d)", table, len(shipped[table]), configDoc, len(documented[table]))
		}
		for k := range documented[table] {
			if !shipped[table][k] {
				t.Errorf("%s documents %s.%s; flowgo.toml does not", configDoc, table, k)
			}
		}
		for k := range shipped[table] {
			if !documented[table][k] {
				t.Errorf("flowgo.toml documents %s.%s; %s does not", table, k, configDoc)
			}
		}
	}
}
