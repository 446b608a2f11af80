package capnp_test

import (
	"encoding/binary"
	"fmt"
	"math"
	"math/rand/v2"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/flowgo/flowgo/internal/capnp"
	"github.com/flowgo/flowgo/internal/capnp/capnptest"
)

// TestRecordLayout checks the offsets of record.go against the ones the
// capnp compiler gives the schema.
func TestRecordLayout(t *testing.T) {
	layout := capnptest.Layout(t)
	want := map[string]string{
		"struct Record": "16 bytes, 9 ptrs",
		"struct Pair":   "16 bytes, 2 ptrs",
		"ts":            "bits[0, 64)",
		"hostname":      "ptr[0]",
		"facility":      "bits[64, 72)",
		"severity":      "bits[72, 80)",
		"appname":       "ptr[1]",
		"procid":        "ptr[2]",
		"msgid":         "ptr[3]",
		"msg":           "ptr[4]",
		"fullMsg":       "ptr[5]",
		"sdId":          "ptr[6]",
		"pairs":         "ptr[7]",
		"extra":         "ptr[8]",
		"key":           "ptr[0]",
		"union":         "tag bits [0, 16)",
		"string":        "ptr[1], union tag = 0",
		"bool":          "bits[16, 17), union tag = 1",
		"f64":           "bits[64, 128), union tag = 2",
		"i64":           "bits[64, 128), union tag = 3",
		"u64":           "bits[64, 128), union tag = 4",
		"null":          "bits[0, 0), union tag = 5",
	}
	// The constants, in the compiler's words.
	bits := func(byteOff, n int) string { return fmt.Sprintf("bits[%d, %d)", 8*byteOff, 8*byteOff+n) }
	ours := map[string]string{
		"struct Record": fmt.Sprintf("%d bytes, %d ptrs", 8*capnp.RecordDataWords, capnp.RecordPtrs),
		"struct Pair":   fmt.Sprintf("%d bytes, %d ptrs", 8*capnp.PairDataWords, capnp.PairPtrs),
		"ts":            bits(capnp.RecordTs, 64),
		"hostname":      fmt.Sprintf("ptr[%d]", capnp.RecordHostname),
		"facility":      bits(capnp.RecordFacility, 8),
		"severity":      bits(capnp.RecordSeverity, 8),
		"appname":       fmt.Sprintf("ptr[%d]", capnp.RecordAppname),
		"procid":        fmt.Sprintf("ptr[%d]", capnp.RecordProcid),
		"msgid":         fmt.Sprintf("ptr[%d]", capnp.RecordMsgid),
		"msg":           fmt.Sprintf("ptr[%d]", capnp.RecordMsg),
		"fullMsg":       fmt.Sprintf("ptr[%d]", capnp.RecordFullMsg),
		"sdId":          fmt.Sprintf("ptr[%d]", capnp.RecordSdID),
		"pairs":         fmt.Sprintf("ptr[%d]", capnp.RecordPairs),
		"extra":         fmt.Sprintf("ptr[%d]", capnp.RecordExtra),
		"key":           fmt.Sprintf("ptr[%d]", capnp.PairKey),
		"union":         fmt.Sprintf("tag bits [%d, %d)", 8*capnp.PairTag, 8*capnp.PairTag+16),
		"string":        fmt.Sprintf("ptr[%d], union tag = %d", capnp.PairString, capnp.TagString),
		"bool":          fmt.Sprintf("bits[%d, %d), union tag = %d", capnp.PairBool, capnp.PairBool+1, capnp.TagBool),
		"f64":           fmt.Sprintf("%s, union tag = %d", bits(capnp.PairNumber, 64), capnp.TagF64),
		"i64":           fmt.Sprintf("%s, union tag = %d", bits(capnp.PairNumber, 64), capnp.TagI64),
		"u64":           fmt.Sprintf("%s, union tag = %d", bits(capnp.PairNumber, 64), capnp.TagU64),
		"null":          fmt.Sprintf("bits[0, 0), union tag = %d", capnp.TagNull),
	}
	line := regexp.MustCompile(`^\s*(struct \w+|union|\w+)\b.*#\s*(.*)$`)
	got := map[string]string{}
	for _, l := range strings.Split(layout, "\n") {
		if m := line.FindStringSubmatch(l); m != nil {
			got[m[1]] = strings.TrimSpace(m[2])
		}
	}
	for k, w := range want {
		if got[k] != w {
			t.Errorf("capnp compile says %s is %q; the test expects %q\n%s", k, got[k], w, layout)
		}
		if ours[k] != w {
			t.Errorf("record.go puts %s at %q; capnp compile says %q", k, ours[k], w)
		}
	}
}

// pair is a test pair: a key and a value of one of the union's kinds.
type pair struct {
	key  string
	tag  int
	str  string
	num  uint64
	flag bool
}

// record is what a test writes with capnp encode and reads back.
type record struct {
	ts                                          float64
	facility, severity                          uint8
	hostname, appname, procid, msgid, msg, full string
	sdID                                        string
	pairs, extra                                []pair
}

// capnpString writes s as a capnp text-format string literal.
func capnpString(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '"' || c == '\\':
			b.WriteByte('\\')
			b.WriteByte(c)
		case c < 0x20 || c >= 0x7f:
			fmt.Fprintf(&b, "\\x%02x", c)
		default:
			b.WriteByte(c)
		}
	}
	b.WriteByte('"')
	return b.String()
}

func capnpFloat(f float64) string {
	switch {
	case math.IsNaN(f):
		return "nan"
	case math.IsInf(f, 1):
		return "inf"
	case math.IsInf(f, -1):
		return "-inf"
	}
	return strconv.FormatFloat(f, 'g', -1, 64)
}

func (p pair) literal() string {
	var v string
	switch p.tag {
	case capnp.TagString:
		v = "string = " + capnpString(p.str)
	case capnp.TagBool:
		v = "bool = " + strconv.FormatBool(p.flag)
	case capnp.TagF64:
		v = "f64 = " + capnpFloat(math.Float64frombits(p.num))
	case capnp.TagI64:
		v = "i64 = " + strconv.FormatInt(int64(p.num), 10)
	case capnp.TagU64:
		v = "u64 = " + strconv.FormatUint(p.num, 10)
	default:
		v = "null = void"
	}
	return fmt.Sprintf("(key = %s, value = (%s))", capnpString(p.key), v)
}

func (r record) literal() string {
	f := []string{
		"ts = " + capnpFloat(r.ts),
		fmt.Sprintf("facility = %d", r.facility), fmt.Sprintf("severity = %d", r.severity),
	}
	for _, s := range []struct{ name, v string }{
		{"hostname", r.hostname}, {"appname", r.appname}, {"procid", r.procid}, {"msgid", r.msgid},
		{"msg", r.msg}, {"fullMsg", r.full}, {"sdId", r.sdID},
	} {
		if s.v != "" {
			f = append(f, s.name+" = "+capnpString(s.v))
		}
	}
	for _, l := range []struct {
		name  string
		pairs []pair
	}{{"pairs", r.pairs}, {"extra", r.extra}} {
		if len(l.pairs) == 0 {
			continue
		}
		var ps []string
		for _, p := range l.pairs {
			ps = append(ps, p.literal())
		}
		f = append(f, l.name+" = ["+strings.Join(ps, ", ")+"]")
	}
	return "(" + strings.Join(f, ", ") + ")"
}

// read reads a Record message with the reader, as the decoder does.
func read(msg []byte) (record, error) {
	var m capnp.Message
	var r record
	if err := m.Init(msg); err != nil {
		return r, err
	}
	s, err := m.Root()
	if err != nil {
		return r, err
	}
	r.ts = math.Float64frombits(s.Uint64(capnp.RecordTs))
	r.facility, r.severity = s.Uint8(capnp.RecordFacility), s.Uint8(capnp.RecordSeverity)
	for _, f := range []struct {
		ptr int
		dst *string
	}{
		{capnp.RecordHostname, &r.hostname}, {capnp.RecordAppname, &r.appname}, {capnp.RecordProcid, &r.procid},
		{capnp.RecordMsgid, &r.msgid}, {capnp.RecordMsg, &r.msg}, {capnp.RecordFullMsg, &r.full}, {capnp.RecordSdID, &r.sdID},
	} {
		b, err := s.Text(f.ptr)
		if err != nil {
			return r, err
		}
		*f.dst = string(b)
	}
	for _, l := range []struct {
		ptr int
		dst *[]pair
	}{{capnp.RecordPairs, &r.pairs}, {capnp.RecordExtra, &r.extra}} {
		list, err := s.List(l.ptr)
		if err != nil {
			return r, err
		}
		for i := range list.Len() {
			e := list.At(i)
			k, err := e.Text(capnp.PairKey)
			if err != nil {
				return r, err
			}
			p := pair{key: string(k), tag: int(e.Uint16(capnp.PairTag))}
			switch p.tag {
			case capnp.TagString:
				v, err := e.Text(capnp.PairString)
				if err != nil {
					return r, err
				}
				p.str = string(v)
			case capnp.TagBool:
				p.flag = e.Bit(capnp.PairBool)
			case capnp.TagF64, capnp.TagI64, capnp.TagU64:
				p.num = e.Uint64(capnp.PairNumber)
			}
			*l.dst = append(*l.dst, p)
		}
	}
	return r, nil
}

func equalRecords(a, b record) bool {
	if math.Float64bits(a.ts) != math.Float64bits(b.ts) && !(math.IsNaN(a.ts) && math.IsNaN(b.ts)) {
		return false
	}
	a.ts, b.ts = 0, 0
	return fmt.Sprintf("%#v", a) == fmt.Sprintf("%#v", b)
}

var alphabet = []string{"a", "Z", "0", " ", "_", "-", "\"", "\\", "\n", "\t", "é", "日本", "\x01", "]", "="}

func randText(rng *rand.Rand, max int) string {
	var b strings.Builder
	for range rng.IntN(max + 1) {
		b.WriteString(alphabet[rng.IntN(len(alphabet))])
	}
	return b.String()
}

func randPairs(rng *rand.Rand, n int) []pair {
	var ps []pair
	for range rng.IntN(n + 1) {
		p := pair{key: randText(rng, 8), tag: rng.IntN(6)}
		switch p.tag {
		case capnp.TagString:
			p.str = randText(rng, 20)
		case capnp.TagBool:
			p.flag = rng.IntN(2) == 1
		case capnp.TagF64:
			p.num = math.Float64bits([]float64{0, -1.5, 1e300, 3.14159, math.Inf(1), math.Inf(-1)}[rng.IntN(6)])
		case capnp.TagI64:
			p.num = uint64(rng.Int64() - rng.Int64())
		case capnp.TagU64:
			p.num = rng.Uint64()
		}
		ps = append(ps, p)
	}
	return ps
}

func randRecord(rng *rand.Rand) record {
	return record{
		ts:       float64(rng.IntN(2e9)) + float64(rng.IntN(1e6))/1e6,
		facility: uint8(rng.IntN(256)), severity: uint8(rng.IntN(256)),
		hostname: randText(rng, 10), appname: randText(rng, 10), procid: randText(rng, 5), msgid: randText(rng, 5),
		msg: randText(rng, 60), full: randText(rng, 200), sdID: randText(rng, 8),
		pairs: randPairs(rng, 6), extra: randPairs(rng, 3),
	}
}

// TestReadCapnpToolMessages encodes random records with capnp encode, in one
// segment and in many (--segment-size makes far and double-far pointers),
// and reads each back with the reader.
func TestReadCapnpToolMessages(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	recs := []record{{ts: 1}, {ts: 1438790025.637824, hostname: "h", pairs: []pair{{key: "k", tag: capnp.TagNull}}}}
	for range 60 {
		recs = append(recs, randRecord(rng))
	}
	big := randRecord(rng)
	big.full = strings.Repeat("long text ", 5000) // 50 kB: a second segment without --segment-size
	recs = append(recs, big)
	var lits []string
	for _, r := range recs {
		lits = append(lits, r.literal())
	}
	for _, args := range [][]string{nil, {"--segment-size=2"}, {"--segment-size=7"}, {"--segment-size=64"}} {
		stream := capnptest.Encode(t, lits, args...)
		segs := map[int]int{}
		for i, want := range recs {
			size, need, err := capnp.MessageSize(stream)
			if err != nil || need != 0 || size > int64(len(stream)) {
				t.Fatalf("%v: message %d: MessageSize = %d, %d, %v with %d bytes left", args, i, size, need, err, len(stream))
			}
			segs[int(binary.LittleEndian.Uint32(stream))+1]++
			got, err := read(stream[:size])
			if err != nil {
				t.Fatalf("%v: message %d: %v\n%s", args, i, err, want.literal())
			}
			if !equalRecords(got, want) {
				t.Errorf("%v: message %d read as\n%s\nwant\n%s", args, i, got.literal(), want.literal())
			}
			stream = stream[size:]
		}
		if len(stream) != 0 {
			t.Errorf("%v: %d bytes after the last message", args, len(stream))
		}
		if args != nil && len(segs) < 2 {
			t.Errorf("%v: segment counts %v; the option should give multi-segment messages", args, segs)
		}
		t.Logf("%v: messages by segment count: %v", args, segs)
	}
}

// build writes r with the Builder, as the encoder does.
func build(dst []byte, r record) ([]byte, error) {
	b := capnp.Start(dst)
	at := b.NewStruct(0, capnp.RecordDataWords, capnp.RecordPtrs)
	b.PutUint64(at, capnp.RecordTs, math.Float64bits(r.ts))
	b.PutUint8(at, capnp.RecordFacility, r.facility)
	b.PutUint8(at, capnp.RecordSeverity, r.severity)
	ptrs := at + capnp.RecordDataWords
	for _, f := range []struct {
		ptr int
		s   string
	}{
		{capnp.RecordHostname, r.hostname}, {capnp.RecordAppname, r.appname}, {capnp.RecordProcid, r.procid},
		{capnp.RecordMsgid, r.msgid}, {capnp.RecordMsg, r.msg}, {capnp.RecordFullMsg, r.full}, {capnp.RecordSdID, r.sdID},
	} {
		if f.s != "" { // null, as the literal leaves it out
			b.SetText(ptrs+f.ptr, f.s)
		}
	}
	for _, l := range []struct {
		ptr   int
		pairs []pair
	}{{capnp.RecordPairs, r.pairs}, {capnp.RecordExtra, r.extra}} {
		const size = capnp.PairDataWords + capnp.PairPtrs
		first := b.NewStructList(ptrs+l.ptr, len(l.pairs), capnp.PairDataWords, capnp.PairPtrs)
		for i, p := range l.pairs {
			e := first + i*size
			b.SetText(e+capnp.PairDataWords+capnp.PairKey, p.key)
			b.PutUint16(e, capnp.PairTag, uint16(p.tag))
			switch p.tag {
			case capnp.TagString:
				b.SetText(e+capnp.PairDataWords+capnp.PairString, p.str)
			case capnp.TagBool:
				if p.flag {
					b.SetBit(e, capnp.PairBool)
				}
			case capnp.TagF64, capnp.TagI64, capnp.TagU64:
				b.PutUint64(e, capnp.PairNumber, p.num)
			}
		}
	}
	return b.Finish()
}

// TestBuilderMessagesDecodeWithCapnpTool writes random records with the
// Builder and has capnp decode read them: its text must equal what capnp
// decode prints for the same record encoded by capnp encode.
func TestBuilderMessagesDecodeWithCapnpTool(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	var recs []record
	var lits []string
	for range 60 {
		r := randRecord(rng)
		recs = append(recs, r)
		lits = append(lits, r.literal())
	}
	prefix := []byte("kept")
	stream := prefix
	for _, r := range recs {
		var err error
		if stream, err = build(stream, r); err != nil {
			t.Fatal(err)
		}
	}
	if string(stream[:len(prefix)]) != "kept" {
		t.Fatal("the builder changed the bytes before the message")
	}
	got := capnptest.Decode(t, stream[len(prefix):])
	want := capnptest.Decode(t, capnptest.Encode(t, lits))
	if len(got) != len(want) {
		t.Fatalf("capnp decode read %d messages; want %d", len(got), len(want))
	}
	for i := range got {
		if got[i] != want[i] {
			t.Errorf("message %d:\n got %s\nwant %s", i, got[i], want[i])
		}
	}
	// And the reader reads them back.
	rest := stream[len(prefix):]
	for i, want := range recs {
		size, _, _ := capnp.MessageSize(rest)
		r, err := read(rest[:size])
		if err != nil || !equalRecords(r, want) {
			t.Fatalf("message %d read back as %s, %v; want %s", i, r.literal(), err, want.literal())
		}
		rest = rest[size:]
	}
}

// offset returns the offset field of a struct or list pointer.
func offset(words int) uint64 { return uint64(uint32(int32(words) << 2)) }

func le(words ...uint64) []byte {
	b := make([]byte, 8*len(words))
	for i, w := range words {
		binary.LittleEndian.PutUint64(b[8*i:], w)
	}
	return b
}

// TestMalformedMessages: each message is wrong in one way; the reader
// reports it and never panics.
func TestMalformedMessages(t *testing.T) {
	const (
		recPtr = 0 | 2<<32 | 9<<48 // struct at +0, 2 data words, 9 pointers
	)
	table := func(words ...uint32) uint64 { return uint64(words[0]) | uint64(words[1])<<32 }
	body := func(ptrs ...uint64) []uint64 { // a Record with these pointers
		ws := []uint64{recPtr, 0x41d56e3a1c000000, 0}
		ws = append(ws, ptrs...)
		for len(ws) < 12 {
			ws = append(ws, 0)
		}
		return ws
	}
	msg := func(ws ...uint64) []byte { return le(append([]uint64{table(0, uint32(len(ws)))}, ws...)...) }
	text := func(off int, n int) uint64 { return offset(off) | 1 | 2<<32 | uint64(n)<<35 }
	tests := []struct {
		name string
		msg  []byte
		want string
	}{
		{"empty", nil, "truncated"},
		{"short table", []byte{0, 0}, "truncated"},
		{"too many segments", le(table(600, 0)), "segment table claims 601 segments"},
		{"segment past the end", le(table(0, 5)), "truncated: the segment table announces 48 bytes"},
		{"bytes after", append(msg(body()...), 0), "1 bytes after the end"},
		{"no root", le(table(0, 0)), "empty message"},
		{"root out of bounds", msg(0 | 2<<32 | 9<<48), "struct of 11 words outside its segment"},
		{"root negative", msg(offset(-5) | 1<<32), "outside its segment"},
		{"root is a list", msg(1|2<<32|1<<35, 0), "a list where a struct was expected"},
		{"capability", msg(3), "capability pointer"},
		{"far to missing segment", msg(2 | 7<<32), "far pointer to segment 7"},
		{"far pad outside", msg(2 | 100<<3), "landing pad is outside"},
		{"far to far", msg(2|1<<3, 2), "landing pad is not a struct or list pointer"},
		{"double far bad pad", msg(6|1<<3, 0, 0), "does not start with a single far pointer"},
		{"double far bad tag", msg(6|1<<3, 2|3<<3, 3), "double-far tag"},
		{"double far object outside", msg(6|1<<3, 2|50<<3, recPtr), "outside its segment"},
		{"text outside", msg(body(text(0, 100))...), "text of 100 bytes outside"},
		{"text not a list", msg(body(recPtr)...), "a struct where a text was expected"},
		{"text of words", msg(append(body(1|5<<32|1<<35), 7)...), "a list of 64-bit values where a text"},
		{"text without NUL", msg(append(body(text(8, 3)), 0x636261)...), "not NUL-terminated"},
		{"pairs not composite", msg(body(0, 0, 0, 0, 0, 0, 0, 1|6<<32|1<<35)...), "a list of pointers where a list of structs"},
		{"pairs tag not struct", msg(append(body(0, 0, 0, 0, 0, 0, 0, 1|7<<32|1<<35|1<<2), 1, 0)...), "list tag is not a struct tag"},
		{"pairs overflow", msg(append(body(0, 0, 0, 0, 0, 0, 0, 1|7<<32|1<<35|1<<2), 5<<2|2<<32|2<<48, 0)...), "5 elements of 4 words do not fit"},
		{"pairs of nothing, billions", msg(append(body(0, 0, 0, 0, 0, 0, 0, 1|7<<32|0<<35|1<<2), 1000000<<2)...), "read more words than it holds"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := read(tt.msg)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("read = %v; want an error containing %q", err, tt.want)
			}
		})
	}
}

// TestOverlappingTextsAreLimited: pointers that all point to one big text
// would make a small message read many times its size.
func TestOverlappingTextsAreLimited(t *testing.T) {
	ws := []uint64{0 | 2<<32 | 9<<48, 0x41d56e3a1c000000, 0}
	// Pointers 0-6 (words 3-9) all point to the text at word 12 (5 words).
	for i := range 7 {
		p := 3 + i
		ws = append(ws, offset(12-p-1)|1|2<<32|uint64(40)<<35)
	}
	ws = append(ws, 0, 0) // pairs, extra
	for range 5 {
		ws = append(ws, 0x6161616161616161)
	}
	ws[len(ws)-1] = 0x0061616161616161 // NUL at byte 39
	m := le(append([]uint64{uint64(len(ws)) << 32}, ws...)...)
	_, err := read(m)
	if err == nil || !strings.Contains(err.Error(), "read more words than it holds") {
		t.Fatalf("read = %v; want the traversal limit", err)
	}
	// Each text read once is fine.
	ws[4], ws[5], ws[6], ws[7], ws[8], ws[9] = 0, 0, 0, 0, 0, 0
	m = le(append([]uint64{uint64(len(ws)) << 32}, ws...)...)
	r, err := read(m)
	if err != nil || r.hostname != strings.Repeat("a", 39) {
		t.Fatalf("read = %s, %v", r.literal(), err)
	}
}

func TestBuilderLimits(t *testing.T) {
	b := capnp.Start([]byte("x"))
	at := b.NewStruct(0, 1, 1)
	b.NewStructList(at+1, 1<<28, 1, 1) // 2^29 words: one too many
	out, err := b.Finish()
	if err == nil || string(out) != "x" {
		t.Fatalf("Finish = %q, %v; want dst unchanged and ErrTooBig", out, err)
	}
}

func BenchmarkRead(b *testing.B) {
	r := record{ts: 1438790025.637824, hostname: "web-frontend-03.example.net", appname: "nginx", procid: "24731",
		msgid: "ACCESS", msg: "192.0.2.17 GET /api/v1/orders/8842 200 5120", full: "<165>1 2024-02-29T12:34:56.123456Z ...",
		sdID: "request@32473", pairs: []pair{{key: "_method", str: "GET"}, {key: "_status", str: "200"}}}
	msg, err := build(nil, r)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	var m capnp.Message
	for b.Loop() {
		if err := m.Init(msg); err != nil {
			b.Fatal(err)
		}
		s, _ := m.Root()
		for i := range capnp.RecordPtrs - 2 {
			s.Text(i)
		}
	}
}
