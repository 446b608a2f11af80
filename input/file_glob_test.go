package input

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestExpandGlob(t *testing.T) {
	dir := t.TempDir()
	for _, p := range []string{
		"a.log", "b.txt", ".hidden.log", "x/c.log", "x/y/d.log", "x/y/z/e.log", "w/c.log", "star*.log", "c1/app/u.log", "c2/app/v.log",
	} {
		full := filepath.Join(dir, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink(filepath.Join(dir, "x"), filepath.Join(dir, "x", "y", "loop")); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		pattern string
		paths   []string
		dirs    []string
	}{
		{"*.log", []string{".hidden.log", "a.log", "star*.log"}, []string{"."}},
		{"a.log", []string{"a.log"}, []string{"."}},
		{"missing.log", nil, []string{"."}},
		{"*/c.log", []string{"w/c.log", "x/c.log"}, []string{".", "c1", "c2", "w", "x"}},
		{"*/app/*.log", []string{"c1/app/u.log", "c2/app/v.log"}, []string{".", "c1", "c1/app", "c2", "c2/app", "w", "x"}},
		{"x/**/*.log", []string{"x/c.log", "x/y/d.log", "x/y/z/e.log"}, []string{"x", "x/y", "x/y/z"}},
		{"x/**", []string{"x/c.log", "x/y/d.log", "x/y/loop", "x/y/z/e.log"}, []string{"x", "x/y", "x/y/z"}},
		{`star\*.log`, []string{"star*.log"}, []string{"."}},
		{"nodir/*.log", nil, nil},
	} {
		res := expandGlob(filepath.Join(dir, tc.pattern))
		rel := func(list []string) []string {
			var out []string
			for _, p := range list {
				r, _ := filepath.Rel(dir, p)
				out = append(out, r)
			}
			slices.Sort(out)
			return slices.Compact(out)
		}
		if got := rel(res.paths); !slices.Equal(got, tc.paths) {
			t.Errorf("%s: paths %q; want %q", tc.pattern, got, tc.paths)
		}
		if got := rel(res.dirs); !slices.Equal(got, tc.dirs) {
			t.Errorf("%s: watched directories %q; want %q", tc.pattern, got, tc.dirs)
		}
	}
}

func TestCheckGlob(t *testing.T) {
	for _, ok := range []string{"/var/log/*.log", "/var/lib/docker/containers/*/*.log", "/var/log/**/*.log", "app.log"} {
		if err := checkGlob(ok); err != nil {
			t.Errorf("%s: %v", ok, err)
		}
	}
	for _, bad := range []string{"", "/var/log/[a.log", `/var/log/a\`} {
		if err := checkGlob(bad); err == nil || (bad != "" && !strings.Contains(err.Error(), "malformed")) {
			t.Errorf("%q: %v; want an error", bad, err)
		}
	}
}
