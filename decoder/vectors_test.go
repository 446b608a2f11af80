package decoder_test

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/flowgo/flowgo"
	"github.com/flowgo/flowgo/config"
	"github.com/flowgo/flowgo/decoder"
)

// The public test vectors of other syslog parsers (go-syslog v3 and v4,
// Flowgger's decoder tests), kept as data in testdata/vectors/*.txt, whose
// format README.md there describes. TestDecoderVectors runs flowgo's
// decoders over every one; where flowgo disagrees on purpose the vector
// names a deviation, explained in docs/decoder-vectors.md.

// vectorNow is the receive time of the vectors: RFC 5424 "-" timestamps and
// RFC 3164 lines without a header get it, and missing years are inferred
// from it (vectors without a year compare all but the year).
var vectorNow = time.Date(2024, 12, 31, 12, 0, 0, 0, time.UTC)

// vector is one test vector.
type vector struct {
	pos    string // file:line of its "vector" line
	name   string
	format string
	config string   // [input] keys
	in     []byte   // the frame
	ok     bool     // the source accepts it
	errMsg string   // the source's error when it does not
	fields []vfield // what the source expects of the record
	devs   []string // deviations flowgo takes on purpose
	// hasIn and hasOutcome say that the vector has its in line and its
	// ok or error line.
	hasIn, hasOutcome bool
}

// vfield is one expectation line: a keyword and its arguments.
type vfield struct {
	key  string
	args []string
}

func TestDecoderVectors(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "vectors", "*.txt"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no vector files under testdata/vectors: %v", err)
	}
	documented := documentedDeviations(t)
	used := map[string]int{}
	decoders := map[string]decoder.Decoder{}
	total := 0
	for _, f := range files {
		vs := readVectors(t, f)
		if len(vs) == 0 {
			t.Errorf("%s holds no vector", f)
		}
		for _, v := range vs {
			total++
			for _, d := range v.devs {
				used[d]++
				if _, ok := documented[d]; !ok {
					t.Errorf("%s: vector %s: deviation %q is not in docs/decoder-vectors.md", v.pos, v.name, d)
				}
			}
			diffs := runVector(t, decoders, v)
			switch {
			case len(diffs) > 0 && len(v.devs) == 0:
				t.Errorf("%s: vector %s: Decode(%q) disagrees:\n\t%s", v.pos, v.name, v.in, strings.Join(diffs, "\n\t"))
			case len(diffs) == 0 && len(v.devs) > 0:
				t.Errorf("%s: vector %s: Decode(%q) now agrees with the source; remove its deviation %v", v.pos, v.name, v.in, v.devs)
			}
		}
	}
	for d := range documented {
		if used[d] == 0 {
			t.Errorf("docs/decoder-vectors.md lists deviation %q, which no vector uses", d)
		}
	}
	if total < 1000 {
		t.Errorf("ran %d vectors; the vector files are incomplete", total)
	}
}

// documentedDeviations reads the IDs of the deviation table of
// docs/decoder-vectors.md: rows starting "| `id` |".
func documentedDeviations(t *testing.T) map[string]bool {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "docs", "decoder-vectors.md"))
	if err != nil {
		t.Fatal(err)
	}
	ids := map[string]bool{}
	for _, m := range regexp.MustCompile("(?m)^\\| `([a-z0-9-]+)` \\|").FindAllSubmatch(b, -1) {
		ids[string(m[1])] = true
	}
	if len(ids) == 0 {
		t.Fatal("docs/decoder-vectors.md has no deviation table")
	}
	return ids
}

// readVectors parses a vector file.
func readVectors(t *testing.T, path string) []vector {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []vector
	var v *vector
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(nil, 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		if strings.TrimSpace(line) == "" || strings.HasPrefix(line, "#") {
			continue
		}
		key, args, err := splitVectorLine(line)
		if err != nil {
			t.Fatalf("%s:%d: %v", path, n, err)
		}
		if key == "vector" {
			if len(args) != 1 {
				t.Fatalf("%s:%d: vector wants a name", path, n)
			}
			out = append(out, vector{pos: fmt.Sprintf("%s:%d", path, n), name: args[0]})
			v = &out[len(out)-1]
			continue
		}
		if v == nil {
			t.Fatalf("%s:%d: %q before the first vector", path, n, key)
		}
		one := func() string {
			if len(args) != 1 {
				t.Fatalf("%s:%d: %s wants one argument, has %d", path, n, key, len(args))
			}
			return args[0]
		}
		switch key {
		case "format":
			v.format = one()
		case "config":
			v.config = one()
		case "note":
		case "in":
			v.in, v.hasIn = []byte(one()), true
		case "ok":
			v.ok, v.hasOutcome = true, true
		case "error":
			v.errMsg, v.hasOutcome = one(), true
		case "deviation":
			v.devs = append(v.devs, args...)
		case "time", "facility", "severity", "hostname", "appname", "procid", "msgid", "msg", "full_msg",
			"sd", "nosd", "field", "ciscocounter", "ciscosequence":
			v.fields = append(v.fields, vfield{key, args})
		default:
			t.Fatalf("%s:%d: unknown keyword %q", path, n, key)
		}
	}
	for _, v := range out {
		if v.format == "" || !v.hasIn || !v.hasOutcome {
			t.Fatalf("%s: vector %s lacks format, in, or ok/error", v.pos, v.name)
		}
	}
	return out
}

// splitVectorLine splits a line into its keyword and its arguments: Go
// quoted strings or bare words.
func splitVectorLine(line string) (string, []string, error) {
	key, rest, _ := strings.Cut(line, " ")
	var args []string
	for rest = strings.TrimLeft(rest, " "); rest != ""; rest = strings.TrimLeft(rest, " ") {
		if rest[0] == '"' {
			q, err := strconv.QuotedPrefix(rest)
			if err != nil {
				return "", nil, fmt.Errorf("bad quoted argument %s: %v", rest, err)
			}
			s, _ := strconv.Unquote(q)
			args = append(args, s)
			rest = rest[len(q):]
			continue
		}
		w, r, _ := strings.Cut(rest, " ")
		args = append(args, w)
		rest = r
	}
	return key, args, nil
}

// vectorDecoder builds (once per format and config) the decoder of v.
func vectorDecoder(t *testing.T, cache map[string]decoder.Decoder, v vector) (decoder.Decoder, error) {
	key := v.format + "\x00" + v.config
	if d, ok := cache[key]; ok {
		return d, nil
	}
	var d decoder.Decoder
	switch v.format {
	case "rfc5424":
		if v.config != "" {
			t.Fatalf("%s: rfc5424 has no config keys", v.pos)
		}
		d = decoder.NewRFC5424AtTime(vectorNow)
	case "rfc3164":
		d = rfc3164Decoder(t, "[input]\n"+v.config, vectorNow)
	default:
		f, err := config.Parse("flowgo.toml", "[input]\nformat = "+strconv.Quote(v.format)+"\n"+v.config)
		if err != nil {
			return nil, err
		}
		if d, err = decoder.New(v.format, f.Inputs[0]); err != nil {
			return nil, err
		}
		f.Inputs[0].Accept("format")
		if err := f.Check(); err != nil {
			return nil, err
		}
	}
	cache[key] = d
	return d, nil
}

// runVector decodes v's frame and returns how the result differs from what
// the source expects.
func runVector(t *testing.T, cache map[string]decoder.Decoder, v vector) []string {
	d, err := vectorDecoder(t, cache, v)
	if err != nil {
		return []string{"flowgo refuses the config: " + err.Error()}
	}
	var r flowgo.Record
	r.Reset()
	err = d.Decode(bytes.Clone(v.in), &r, new(flowgo.Arena))
	switch {
	case v.ok && err != nil:
		return []string{"the source accepts it, flowgo rejects it: " + err.Error()}
	case !v.ok && err == nil:
		return []string{fmt.Sprintf("the source rejects it (%s), flowgo accepts it", v.errMsg)}
	case !v.ok:
		return nil
	}
	var diffs []string
	differ := func(what string, want, got any) {
		diffs = append(diffs, fmt.Sprintf("%s: source %q, flowgo %q", what, want, got))
	}
	str := map[string]string{"hostname": r.Hostname, "appname": r.AppName, "procid": r.ProcID, "msgid": r.MsgID, "msg": r.Msg, "full_msg": r.FullMsg}
	var wantSD []string
	sdListed := false
	for _, f := range v.fields {
		arg := func(i int) string {
			if i >= len(f.args) {
				t.Fatalf("%s: vector %s: %s lacks argument %d", v.pos, v.name, f.key, i+1)
			}
			return f.args[i]
		}
		switch f.key {
		case "time":
			if ok, want := vectorTimeMatches(arg(0), r.Time); !ok {
				differ("time", want, r.Time.Format(time.RFC3339Nano))
			}
		case "facility", "severity":
			got := r.Facility
			if f.key == "severity" {
				got = r.Severity
			}
			g := "-"
			if got != flowgo.Unset {
				g = strconv.Itoa(int(got))
			}
			if g != arg(0) {
				differ(f.key, arg(0), g)
			}
		case "hostname", "appname", "procid", "msgid", "msg", "full_msg":
			if str[f.key] != arg(0) {
				differ(f.key, arg(0), str[f.key])
			}
		case "nosd":
			if len(r.SD) > 0 {
				differ("sd", "none", sdString(r.SD, false))
			}
		case "sd":
			sdListed = true
			if len(f.args) == 1 {
				wantSD = append(wantSD, strconv.Quote(arg(0)))
			} else {
				wantSD = append(wantSD, strconv.Quote(arg(0))+" "+strconv.Quote(arg(1))+"="+strconv.Quote(arg(2)))
			}
		case "field":
			// A GELF or LTSV field, by name (Flowgger's leading "_",
			// which flowgo adds only when it writes GELF, aside), kind
			// and value.
			name := strings.TrimPrefix(arg(0), "_")
			want := arg(1) + ":" + arg(2)
			got := "absent"
			for _, e := range r.SD {
				for _, p := range e.Params {
					if e.ID == "" && p.Name == name {
						got = p.Value.Kind.String() + ":" + valueString(p.Value)
					}
				}
			}
			if got != want {
				differ("field "+arg(0), want, got)
			}
		case "ciscocounter":
			got := "none"
			for _, e := range r.SD {
				for _, p := range e.Params {
					if e.ID == "meta" && p.Name == "sequenceId" {
						got = p.Value.Str
					}
				}
			}
			if n, err := strconv.Atoi(got); (arg(0) == "0" && got != "none") || (arg(0) != "0" && (err != nil || strconv.Itoa(n) != arg(0))) {
				differ("cisco message counter (meta sequenceId)", arg(0), got)
			}
		case "ciscosequence":
			differ("cisco sequence number", arg(0), "not kept")
		}
	}
	if sdListed {
		if got, want := sdString(r.SD, true), strings.Join(sortedUnique(wantSD), " "); got != want {
			differ("sd", want, got)
		}
	}
	return diffs
}

// vectorTimeMatches reports whether got is the time want names: RFC 3339,
// "now" (vectorNow), or "*-MM-DDThh:mm:ss..." for a line without a year
// (any year).
func vectorTimeMatches(want string, got time.Time) (bool, string) {
	switch {
	case want == "now":
		return got.Equal(vectorNow), vectorNow.Format(time.RFC3339Nano)
	case strings.HasPrefix(want, "*"):
		for y := got.Year() - 1; y <= got.Year()+1; y++ {
			if w, err := time.Parse(time.RFC3339Nano, fmt.Sprintf("%04d", y)+want[1:]); err == nil && w.Equal(got) {
				return true, want
			}
		}
		return false, want
	}
	w, err := time.Parse(time.RFC3339Nano, want)
	return err == nil && w.Equal(got), want
}

// sdString writes the structured data as sorted `"id" "name"="value"`
// items, `"id"` for an element without parameters; with merge, duplicate
// names keep their last value (go-syslog's maps).
func sdString(sd []flowgo.SDElement, merge bool) string {
	var items []string
	for _, e := range sd {
		if len(e.Params) == 0 {
			items = append(items, strconv.Quote(e.ID))
			continue
		}
		last := map[string]string{}
		for _, p := range e.Params {
			last[p.Name] = valueString(p.Value)
		}
		for _, p := range e.Params {
			if merge {
				items = append(items, strconv.Quote(e.ID)+" "+strconv.Quote(p.Name)+"="+strconv.Quote(last[p.Name]))
			} else {
				items = append(items, strconv.Quote(e.ID)+" "+strconv.Quote(p.Name)+"="+strconv.Quote(valueString(p.Value)))
			}
		}
	}
	return strings.Join(sortedUnique(items), " ")
}

func sortedUnique(s []string) []string {
	s = slices.Clone(s)
	slices.Sort(s)
	return slices.Compact(s)
}

func valueString(v flowgo.Value) string {
	switch v.Kind {
	case flowgo.KindBool:
		return strconv.FormatBool(v.Bool())
	case flowgo.KindF64:
		return strconv.FormatFloat(v.F64(), 'g', -1, 64)
	case flowgo.KindI64:
		return strconv.FormatInt(v.I64(), 10)
	case flowgo.KindU64:
		return strconv.FormatUint(v.U64(), 10)
	case flowgo.KindNull:
		return "null"
	}
	return v.Str
}
