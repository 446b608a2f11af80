package main

// End-to-end tests of what an operator meets on day one: the version
// flags, flowgo tap, and pipe's progress line.

import (
	"regexp"
	"testing"
)

func TestVersionFlags(t *testing.T) {
	want := regexp.MustCompile(`^flowgo \S+ \(commit \S+, go1\.\d+`)
	for _, args := range [][]string{{"version"}, {"--version"}, {"-version"}, {"-v"}} {
		r := flowgo(t, nil, args...)
		if r.code != 0 || !want.MatchString(r.stdout) || r.stderr != "" {
			t.Errorf("flowgo %v: exit %d, stdout %q, stderr %q; want 0 and the version", args, r.code, r.stdout, r.stderr)
		}
	}
}
