package input

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

func TestCheckpointRoundTrip(t *testing.T) {
	in := []checkpoint{
		{ID: fileID{64768, 12}, FP: fingerprint{Len: 1024, Sum: 0xdeadbeefcafef00d}, Offset: 1 << 40, Path: "/var/log/a.log"},
		{ID: fileID{64768, 13}, FP: fingerprint{Len: 0, Sum: fpHash(nil)}, Offset: 0, Path: "/var/log/b \"quoted\".log"},
	}
	data := marshalCheckpoints("/var/log/*.log", append([]checkpoint(nil), in...))
	got, err := parseCheckpoints(data)
	if err != nil {
		t.Fatalf("%v\n%s", err, data)
	}
	if len(got) != len(in) {
		t.Fatalf("%d entries; want %d", len(got), len(in))
	}
	for _, e := range in {
		if g := got[e.ID]; g == nil || !reflect.DeepEqual(*g, e) {
			t.Errorf("entry %v = %+v; want %+v", e.ID, g, e)
		}
	}
}

func TestCheckpointParseErrors(t *testing.T) {
	for _, tc := range []struct{ name, in string }{
		{"not JSON", `{"version":1,"files":[`},
		{"unknown version", `{"version":2,"files":[]}`},
		{"unknown field", `{"version":1,"files":[],"extra":1}`},
		{"negative offset", `{"version":1,"files":[{"dev":1,"ino":2,"fp_len":0,"fp":"0000000000000000","offset":-1}]}`},
		{"fingerprint too long", `{"version":1,"files":[{"dev":1,"ino":2,"fp_len":1025,"fp":"0000000000000000","offset":1}]}`},
		{"bad fingerprint", `{"version":1,"files":[{"dev":1,"ino":2,"fp_len":1,"fp":"xyz","offset":1}]}`},
		{"duplicate file", `{"version":1,"files":[{"dev":1,"ino":2,"fp_len":0,"fp":"0000000000000000","offset":1},{"dev":1,"ino":2,"fp_len":0,"fp":"0000000000000000","offset":1}]}`},
		{"trailing data", `{"version":1,"files":[]} {}`},
	} {
		if _, err := parseCheckpoints([]byte(tc.in)); err == nil {
			t.Errorf("%s: parsed %s", tc.name, tc.in)
		}
	}
}

// FuzzCheckpointFile: a damaged checkpoint file is an error, never a
// panic; what parses writes back to the same entries.
func FuzzCheckpointFile(f *testing.F) {
	f.Add([]byte(`{"version":1,"src":"/x","files":[{"dev":1,"ino":2,"fp_len":3,"fp":"00000000000000ff","offset":4,"path":"/x"}]}`))
	f.Add([]byte(`{"version":1,"files":null}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		entries, err := parseCheckpoints(data)
		if err != nil {
			return
		}
		var list []checkpoint
		for _, e := range entries {
			list = append(list, *e)
		}
		again, err := parseCheckpoints(marshalCheckpoints("src", list))
		if err != nil {
			t.Fatalf("re-parsing what was written: %v", err)
		}
		if len(again) != len(entries) {
			t.Fatalf("%d entries after a round trip; want %d", len(again), len(entries))
		}
		for id, e := range entries {
			if a := again[id]; a == nil || *a != *e {
				t.Fatalf("entry %v = %+v after a round trip; want %+v", id, a, e)
			}
		}
	})
}

func TestWriteFileAtomicReplaces(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "ck.json")
	for _, s := range []string{"one", "two"} {
		if err := writeFileAtomic(p, []byte(s)); err != nil {
			t.Fatal(err)
		}
		if got, _ := os.ReadFile(p); string(got) != s {
			t.Fatalf("content %q; want %q", got, s)
		}
	}
	ents, _ := os.ReadDir(dir)
	if len(ents) != 1 {
		t.Errorf("%d files in the directory; want only ck.json", len(ents))
	}
}
