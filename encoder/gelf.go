package encoder

import (
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/flowgo/flowgo"
	"github.com/flowgo/flowgo/config"
)

func init() {
	Register("gelf", newGELF)
	Register("json", newGELF) // Flowgger's alias
}

func newGELF(s *config.Section) (Encoder, error) { return NewGELF(s) }

// GELF writes a record as one GELF 1.1 JSON object, with the keys Flowgger
// writes, in this order:
//
//	version        "1.1"
//	host           Hostname; "unknown" when empty or blank (Graylog rejects a blank host)
//	short_message  Msg; "-" when empty (Graylog drops a message without one)
//	full_message   FullMsg, when set
//	timestamp      Time as Unix seconds, up to 6 exact decimals; the encoding time when Time is zero
//	level          Severity, when 0-7
//	_facility_num  Facility, when 0-23 (Flowgger drops it)
//	application_name  AppName, when set
//	process_id     ProcID, when set
//	_msgid         MsgID, when set (Flowgger drops it)
//	sd_id          the ID of the last SD element that has one
//	_<name>        each SD param, in order, with its JSON type
//	...            the gelf_extra entries, sorted by key
//
// A key appears once: when two sources give the same key, the later one in
// this list wins (a param named msgid replaces _msgid; gelf_extra replaces
// anything). Param names are made valid GELF field names (letters, digits,
// '_', '-', '.'; any other character becomes '_'), and _id, which Graylog
// reserves, is written _id_. NaN and ±Inf values are written null, which
// Graylog drops.
type GELF struct {
	extra    []byte   // the gelf_extra pairs as `,"key":"value"`...
	extraPar []string // gelf_extra keys that start with "_", without it
	over     fixedSet // fixed keys that gelf_extra replaces
	now      clock
}

// The keys GELF writes before the params, as bits of a fixedSet.
type fixedSet uint16

const (
	gelfVersion fixedSet = 1 << iota
	gelfHost
	gelfShort
	gelfFull
	gelfTimestamp
	gelfLevel
	gelfFacility
	gelfApp
	gelfProc
	gelfMsgID
	gelfSDID
)

var gelfFixed = map[string]fixedSet{
	"version": gelfVersion, "host": gelfHost, "short_message": gelfShort, "full_message": gelfFull,
	"timestamp": gelfTimestamp, "level": gelfLevel, "_facility_num": gelfFacility,
	"application_name": gelfApp, "process_id": gelfProc, "_msgid": gelfMsgID, "sd_id": gelfSDID,
}

// Param names whose GELF field would collide with _facility_num and _msgid.
const (
	facilityParam = "facility_num"
	msgIDParam    = "msgid"
)

// gelfNames is what a GELF field name may hold: ^[\w\.\-]*$.
var gelfNames = newNameSet("_.-", [2]byte{'a', 'z'}, [2]byte{'A', 'Z'}, [2]byte{'0', '9'})

// NewGELF builds a GELF encoder from the [output] keys gelf_extra (a table
// of strings added to every record).
func NewGELF(s *config.Section) (*GELF, error) {
	s = section(s)
	ignoreOthers(s, "gelf", "gelf_extra")
	var c struct {
		Extra map[string]string `toml:"gelf_extra"`
	}
	if err := s.Decode(&c); err != nil {
		return nil, err
	}
	if c.Extra == nil && s.Has("gelf_extra") {
		// BurntSushi/toml leaves a map nil, without an error, when the
		// value is not a table.
		return nil, s.Errorf("gelf_extra", "wrong type: expected a table of strings, such as { _env = \"prod\" }")
	}
	g := &GELF{now: time.Now}
	keys := make([]string, 0, len(c.Extra))
	for k := range c.Extra {
		keys = append(keys, k)
	}
	slices.Sort(keys) // a stable order, Flowgger's (it sorts every key)
	final := map[string]string{}
	var order []string
	for _, k := range keys {
		v := c.Extra[k]
		if k == "" {
			return nil, s.Errorf("gelf_extra", "a key is empty")
		}
		fk := gelfFieldName(k)
		if fk != k {
			s.Warn("gelf_extra", "key %q is written %q: a GELF field name holds only letters, digits, '_', '-' and '.', and _id is reserved", k, fk)
		}
		switch fk {
		case "version":
			if v != "1.1" {
				return nil, s.Errorf("gelf_extra", "version = %q: GELF 1.1 requires \"1.1\"", v)
			}
		case "timestamp", "level", "_facility_num":
			return nil, s.Errorf("gelf_extra", "%s must be a number in GELF, and gelf_extra values are strings", k)
		case "host", "short_message":
			if strings.TrimSpace(v) == "" {
				return nil, s.Errorf("gelf_extra", "%s = %q: Graylog rejects a message whose %s is blank", k, v, k)
			}
		}
		if prev, dup := final[fk]; dup {
			s.Warn("gelf_extra", "keys %q and %q are both written %q; the value %q wins", prev, k, fk, v)
			order = slices.DeleteFunc(order, func(o string) bool { return o == fk })
		}
		final[fk] = k
		order = append(order, fk)
	}
	for _, fk := range order {
		g.extra = append(g.extra, ',')
		g.extra = appendJSONString(g.extra, fk)
		g.extra = append(g.extra, ':')
		g.extra = appendJSONString(g.extra, c.Extra[final[fk]])
		g.over |= gelfFixed[fk]
		if name, ok := strings.CutPrefix(fk, "_"); ok {
			g.extraPar = append(g.extraPar, name)
		}
	}
	return g, nil
}

// gelfFieldName returns key as a valid GELF field name.
func gelfFieldName(key string) string {
	if key == "_id" {
		return "_id_"
	}
	if gelfNames.valid(key) {
		return key
	}
	return string(gelfNames.append(nil, key, -1))
}

// Encode appends the GELF object for r to dst. It never fails.
func (g *GELF) Encode(dst []byte, r *flowgo.Record) ([]byte, error) {
	nparams := paramCount(r.SD)
	var seen map[string]int // param index by field name, for large records only
	if nparams > smallParams {
		seen = lastParamIndex(r.SD, nparams)
	}

	sep := byte('{')
	field := func(key string) {
		dst = append(dst, sep, '"')
		dst = append(dst, key...)
		dst = append(dst, '"', ':')
		sep = ','
	}
	if g.over&gelfVersion == 0 {
		field("version")
		dst = append(dst, `"1.1"`...)
	}
	if g.over&gelfHost == 0 {
		field("host")
		if strings.TrimSpace(r.Hostname) == "" {
			dst = append(dst, `"unknown"`...)
		} else {
			dst = appendJSONString(dst, r.Hostname)
		}
	}
	if g.over&gelfShort == 0 {
		field("short_message")
		if r.Msg == "" {
			dst = append(dst, `"-"`...)
		} else {
			dst = appendJSONString(dst, r.Msg)
		}
	}
	if r.FullMsg != "" && g.over&gelfFull == 0 {
		field("full_message")
		dst = appendJSONString(dst, r.FullMsg)
	}
	if g.over&gelfTimestamp == 0 {
		field("timestamp")
		t := r.Time
		if t.IsZero() {
			t = g.now()
		}
		dst = appendUnixMicro(dst, t)
	}
	if validSeverity(r.Severity) && g.over&gelfLevel == 0 {
		field("level")
		dst = strconv.AppendUint(dst, uint64(r.Severity), 10)
	}
	if validFacility(r.Facility) && g.over&gelfFacility == 0 && !hasParam(r.SD, seen, facilityParam) {
		field("_facility_num")
		dst = strconv.AppendUint(dst, uint64(r.Facility), 10)
	}
	if r.AppName != "" && g.over&gelfApp == 0 {
		field("application_name")
		dst = appendJSONString(dst, r.AppName)
	}
	if r.ProcID != "" && g.over&gelfProc == 0 {
		field("process_id")
		dst = appendJSONString(dst, r.ProcID)
	}
	if r.MsgID != "" && g.over&gelfMsgID == 0 && !hasParam(r.SD, seen, msgIDParam) {
		field("_msgid")
		dst = appendJSONString(dst, r.MsgID)
	}

	lastID := -1
	if g.over&gelfSDID == 0 {
		for i := range r.SD {
			if r.SD[i].ID != "" {
				lastID = i
			}
		}
	}
	k := 0 // index of the param among all params
	for i := range r.SD {
		e := &r.SD[i]
		if i == lastID {
			field("sd_id")
			dst = appendJSONString(dst, e.ID)
		}
		for j := range e.Params {
			p := &e.Params[j]
			if !g.replaced(r.SD, seen, i, j, k, p.Name) {
				dst = append(dst, sep, '"', '_')
				dst = appendGELFName(dst, p.Name)
				dst = append(dst, '"', ':')
				sep = ','
				dst = appendGELFValue(dst, p.Value)
			}
			k++
		}
	}

	if len(g.extra) > 0 {
		at := len(dst)
		dst = append(dst, g.extra...)
		dst[at] = sep // '{' when nothing came before
		sep = ','
	}
	if sep == '{' {
		dst = append(dst, '{')
	}
	return append(dst, '}'), nil
}

// replaced reports whether the param at SD[i].Params[j], the k-th of the
// record, is overridden by a later param or by gelf_extra.
func (g *GELF) replaced(sd []flowgo.SDElement, seen map[string]int, i, j, k int, name string) bool {
	for _, x := range g.extraPar {
		if sameGELFName(x, name) {
			return true
		}
	}
	if seen != nil {
		return seen[string(appendGELFName(nil, name))] != k
	}
	for ; i < len(sd); i, j = i+1, -1 {
		ps := sd[i].Params
		for j++; j < len(ps); j++ {
			if sameGELFName(ps[j].Name, name) {
				return true
			}
		}
	}
	return false
}

// hasParam reports whether some param's GELF field is "_" + name.
func hasParam(sd []flowgo.SDElement, seen map[string]int, name string) bool {
	if seen != nil {
		_, ok := seen[name]
		return ok
	}
	for i := range sd {
		for j := range sd[i].Params {
			if sameGELFName(sd[i].Params[j].Name, name) {
				return true
			}
		}
	}
	return false
}

// lastParamIndex maps each param field name (without its "_") to the index
// of the last param that has it.
func lastParamIndex(sd []flowgo.SDElement, n int) map[string]int {
	seen := make(map[string]int, n)
	var buf []byte
	k := 0
	for i := range sd {
		for j := range sd[i].Params {
			buf = appendGELFName(buf[:0], sd[i].Params[j].Name)
			seen[string(buf)] = k
			k++
		}
	}
	return seen
}

// appendGELFName appends the GELF field name of a param, without the "_"
// in front: name sanitised, and "id" (the reserved _id) written "id_".
func appendGELFName(dst []byte, name string) []byte {
	if name == "id" {
		return append(dst, "id_"...)
	}
	if gelfNames.valid(name) {
		return append(dst, name...)
	}
	return gelfNames.append(dst, name, -1)
}

// sameGELFName reports whether params a and b get the same GELF field.
func sameGELFName(a, b string) bool {
	if a == "id" {
		a = "id_"
	}
	if b == "id" {
		b = "id_"
	}
	return gelfNames.same(a, b)
}

// appendGELFValue appends v with its JSON type.
func appendGELFValue(dst []byte, v flowgo.Value) []byte {
	switch v.Kind {
	case flowgo.KindString:
		return appendJSONString(dst, v.Str)
	case flowgo.KindBool:
		return strconv.AppendBool(dst, v.Bool())
	case flowgo.KindF64:
		return appendJSONFloat(dst, v.F64())
	case flowgo.KindI64:
		return strconv.AppendInt(dst, v.I64(), 10)
	case flowgo.KindU64:
		return strconv.AppendUint(dst, v.U64(), 10)
	}
	return append(dst, "null"...)
}
