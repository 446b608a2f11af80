package input

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
)

// A file input's src is a glob: the syntax of path/filepath.Match in each
// path component ("*", "?", "[a-z]", "\\" escapes), plus "**" as a whole
// component, which matches any number of directories, none included (the
// Rust glob crate Flowgger uses has both).

// checkGlob reports a malformed pattern.
func checkGlob(pattern string) error {
	if pattern == "" {
		return errors.New("empty: want a path or a glob such as \"/var/log/app/*.log\"")
	}
	for _, c := range strings.Split(filepath.ToSlash(pattern), "/") {
		if c == "**" {
			continue
		}
		if _, err := filepath.Match(c, ""); err != nil {
			return errors.New("malformed glob " + pattern + ": " + err.Error())
		}
	}
	return nil
}

func hasMeta(c string) bool { return strings.ContainsAny(c, `*?[\`) }

// globResult is what one expansion of the pattern found: the matching paths
// (not yet checked to be regular files), and the directories whose entries
// may create new matches, to be watched.
type globResult struct {
	paths []string
	dirs  []string
}

// expandGlob matches pattern against the file system. Unreadable
// directories are skipped; "**" does not follow symbolic links to
// directories (so it cannot loop), other components do.
func expandGlob(pattern string) globResult {
	var res globResult
	clean := filepath.Clean(pattern)
	comps := strings.Split(clean, string(filepath.Separator))
	base := "."
	if filepath.IsAbs(clean) {
		base = string(filepath.Separator)
		comps = comps[1:]
	}
	// The static prefix: components without glob syntax.
	i := 0
	for i < len(comps)-1 && comps[i] != "**" && !hasMeta(comps[i]) {
		base = filepath.Join(base, comps[i])
		i++
	}
	if st, err := os.Stat(base); err != nil || !st.IsDir() {
		return res
	}
	expandIn(base, comps[i:], &res)
	return res
}

func expandIn(dir string, comps []string, res *globResult) {
	c, rest := comps[0], comps[1:]
	if c == "**" {
		if len(rest) == 0 {
			rest = []string{"*"} // "dir/**" means every file below dir
		}
		expandIn(dir, rest, res) // zero directories
		entries, err := os.ReadDir(dir)
		if err != nil {
			return
		}
		for _, e := range entries {
			if e.IsDir() {
				expandIn(filepath.Join(dir, e.Name()), comps, res)
			}
		}
		return
	}
	res.dirs = append(res.dirs, dir)
	var names []string
	if !hasMeta(c) {
		if _, err := os.Lstat(filepath.Join(dir, c)); err == nil {
			names = []string{c}
		}
	} else {
		entries, err := os.ReadDir(dir)
		if err != nil {
			return
		}
		for _, e := range entries {
			if len(rest) == 0 && e.IsDir() {
				continue // directories are never tailed
			}
			if ok, _ := filepath.Match(c, e.Name()); ok {
				names = append(names, e.Name())
			}
		}
	}
	for _, name := range names {
		p := filepath.Join(dir, name)
		if len(rest) == 0 {
			res.paths = append(res.paths, p)
			continue
		}
		if st, err := os.Stat(p); err == nil && st.IsDir() {
			expandIn(p, rest, res)
		}
	}
}
