// Package docs holds flowgo's documentation (Markdown) and the test that
// keeps its links and the README's set-up commands true.
package docs

import (
	"bufio"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// root is the repository, from this package's directory.
const root = ".."

var (
	linkRE       = regexp.MustCompile(`\]\(([^)\s]+)\)`)
	codeSpanRE   = regexp.MustCompile("`[^`]*`")
	headingRE    = regexp.MustCompile(`^#{1,6}\s+(.*?)\s*#*$`)
	externalLink = regexp.MustCompile(`^[a-z][a-z0-9+.-]*:`)
)

// slug is the anchor GitHub gives a heading: lower case, punctuation but
// '-' and '_' removed, spaces made '-'.
func slug(heading string) string {
	heading = strings.ReplaceAll(heading, "`", "")
	var b strings.Builder
	for _, r := range strings.ToLower(heading) {
		switch {
		case r == ' ':
			b.WriteByte('-')
		case r == '-' || r == '_' || r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r > 127:
			b.WriteRune(r)
		}
	}
	return b.String()
}

// mdFile is what the test needs of one Markdown file: its links (outside
// code), with their lines, and its headings' anchors.
type mdFile struct {
	links   []mdLink
	anchors map[string]bool
}

type mdLink struct {
	target string
	line   int
}

func readMarkdown(t *testing.T, path string) *mdFile {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	md := &mdFile{anchors: map[string]bool{}}
	seen := map[string]int{}
	inFence := false
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		if strings.HasPrefix(strings.TrimSpace(line), "```") {
			inFence = !inFence
			continue
		}
		if inFence {
			continue
		}
		if m := headingRE.FindStringSubmatch(line); m != nil {
			a := slug(m[1])
			if k := seen[a]; k > 0 {
				md.anchors[fmt.Sprintf("%s-%d", a, k)] = true
			} else {
				md.anchors[a] = true
			}
			seen[a]++
		}
		for _, m := range linkRE.FindAllStringSubmatch(codeSpanRE.ReplaceAllString(line, ""), -1) {
			md.links = append(md.links, mdLink{target: m[1], line: n})
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return md
}

// TestRelativeLinksResolve checks every relative link of every Markdown
// file of the repository: the file or directory it names exists, and an
// anchor (#section) names a heading of the Markdown file it points into.
func TestRelativeLinksResolve(t *testing.T) {
	files := map[string]*mdFile{}
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == ".git" || d.Name() == "node_modules") {
			return filepath.SkipDir
		}
		if !d.IsDir() && strings.HasSuffix(path, ".md") {
			files[filepath.Clean(path)] = readMarkdown(t, path)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 10 || files[filepath.Join(root, "README.md")] == nil {
		t.Fatalf("found %d Markdown files, README.md among them: %v; run from the docs directory", len(files), files[filepath.Join(root, "README.md")] != nil)
	}
	links := 0
	for path, md := range files {
		for _, l := range md.links {
			if externalLink.MatchString(l.target) {
				continue
			}
			links++
			target, anchor, _ := strings.Cut(l.target, "#")
			dest := path
			if target != "" {
				dest = filepath.Clean(filepath.Join(filepath.Dir(path), target))
				if _, err := os.Stat(dest); err != nil {
					t.Errorf("%s:%d: link %s: %v", path, l.line, l.target, err)
					continue
				}
			}
			if anchor == "" {
				continue
			}
			if !strings.HasSuffix(dest, ".md") {
				t.Errorf("%s:%d: link %s: an anchor into a file that is not Markdown", path, l.line, l.target)
				continue
			}
			if md := files[dest]; md == nil || !md.anchors[anchor] {
				t.Errorf("%s:%d: link %s: %s has no heading #%s", path, l.line, l.target, dest, anchor)
			}
		}
	}
	if links < 50 {
		t.Errorf("only %d relative links found: the link pattern broke?", links)
	}
}

// TestReadmeSetupCommands keeps the README's two set-up commands exactly
// as CI and the guide run them.
func TestReadmeSetupCommands(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(root, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, cmd := range []string{
		"go run ./cmd/flowgo run -c flowgo.toml < testdata/sample.log",
		"./test.sh",
	} {
		if !regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(cmd) + `(\s|$)`).Match(b) {
			t.Errorf("README.md lacks the set-up command %q at the start of a line", cmd)
		}
	}
}
