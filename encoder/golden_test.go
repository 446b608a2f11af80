package encoder

import (
	"bytes"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/")

type goldenVariant struct {
	format, variant, toml string
	cases                 []string
}

// goldenVariants are the non-default configurations the golden files cover:
// testdata/<format>/<variant>/<case>.golden, for the cases listed.
var goldenVariants = []goldenVariant{
	{"gelf", "extra", `gelf_extra = { _env = "prod", host = "override-host", _a = "extra a", "bad key" = "x", _id = "y", sd_id = "from extra", _msgid = "extra msgid" }`,
		[]string{"all_fields", "duplicate_names", "empty", "id_param"}},
	{"ltsv", "extra", `ltsv_extra = { env = "prod", host = "override-host", _a = "extra a", "x:y" = "z", time = "fixed" }`,
		[]string{"all_fields", "duplicate_names", "empty", "ltsv_like"}},
	{"rfc3164", "prepend", `syslog_prepend_timestamp = "[[[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:6]Z] "`,
		[]string{"all_fields", "empty"}},
	{"rfc3164", "prepend_strftime", `syslog_prepend_timestamp = "%b %e %H:%M:%S "`,
		[]string{"all_fields"}},
	{"passthrough", "prepend", `syslog_prepend_timestamp = "[%Y-%m-%dT%H:%M:%S%.6fZ] "`,
		[]string{"all_fields", "empty"}},
	{"rfc5424", "sd_id", `syslog_sd_id = "flowgo@99999"`,
		[]string{"gelf_like", "multi_sd", "many_elements"}},
	{"rfc3164", "sd_id", `syslog_sd_id = "flowgo@99999"`,
		[]string{"gelf_like"}},
}

// TestGolden encodes every test case with every format, default config,
// and the variants above, and compares with testdata/<format>/...: the
// encoded bytes in <case>.golden, or the error text in <case>.err.
func TestGolden(t *testing.T) {
	type run struct{ format, dir, toml string }
	var runs []run
	for _, f := range []string{"gelf", "rfc5424", "rfc3164", "ltsv", "passthrough"} {
		runs = append(runs, run{f, f, ""})
	}
	for _, v := range goldenVariants {
		runs = append(runs, run{v.format, filepath.Join(v.format, v.variant), v.toml})
	}
	for _, rn := range runs {
		enc := newTestEncoder(t, rn.format, rn.toml)
		for _, c := range testCases {
			if rn.toml != "" && !slices.ContainsFunc(goldenVariants, func(v goldenVariant) bool {
				return filepath.Join(v.format, v.variant) == rn.dir && slices.Contains(v.cases, c.name)
			}) {
				continue
			}
			t.Run(rn.dir+"/"+c.name, func(t *testing.T) {
				out, err := enc.Encode(nil, &c.r)
				path := filepath.Join("testdata", rn.dir, c.name+".golden")
				if err != nil {
					path = filepath.Join("testdata", rn.dir, c.name+".err")
					out = []byte(err.Error() + "\n")
				}
				compareGolden(t, path, out)
			})
		}
	}
}

func compareGolden(t *testing.T, path string, got []byte) {
	t.Helper()
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		t.Fatalf("%s is missing (run go test -update to create it); got %q", path, got)
	}
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s:\n got %q\nwant %q", path, got, want)
	}
}

// TestGoldenFilesAreUsed fails on a golden file that no test case produces
// any more, so that stale files do not pile up.
func TestGoldenFilesAreUsed(t *testing.T) {
	if *update {
		t.Skip("-update writes the files")
	}
	names := map[string]bool{}
	for _, c := range testCases {
		names[c.name] = true
	}
	err := filepath.WalkDir("testdata", func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		if rel, _ := filepath.Rel("testdata", path); filepath.Dir(rel) == "fuzz" || filepath.Base(filepath.Dir(filepath.Dir(rel))) == "fuzz" {
			return nil
		}
		ext := filepath.Ext(path)
		if ext != ".golden" && ext != ".err" {
			return nil
		}
		if !names[filepath.Base(path[:len(path)-len(ext)])] {
			t.Errorf("%s: no test case of that name", path)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
