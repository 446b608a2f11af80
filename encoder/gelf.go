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
	Register("gelf", newGELF, "json") // json: Flowgger's alias
}

func newGELF(s *config.Section) (Encoder, error) { return NewGELF(s) }

// GELF writes a record as one GELF 1.1 JSON object, with the keys Flowgger
// writes, in this order:
//
//	version           "1.1"
//	host              Hostname; "unknown" when empty or blank (Graylog rejects a blank host)
//	short_message     Msg; "-" when empty (Graylog drops a message without one)
//	full_message      FullMsg, when set (and gelf_full_message is not false)
//	timestamp         Time as Unix seconds, up to 6 exact decimals (see below)
//	level             Severity, when 0-7
//	_facility_num     Facility, when 0-23 (Flowgger drops it)
//	application_name  AppName, when set
//	process_id        ProcID, when set
//	_msgid            MsgID, when set (Flowgger drops it)
//	sd_id             the ID of the last SD element that has one
//	_<name>           each SD param, in order, with its JSON type
//	...               the gelf_extra entries, sorted by key
//
// The timestamp is the encoding time when the record has none, or one that
// GELF readers refuse (before 1970, after 9999).
//
// A field appears once. Keys that differ only by one leading '_'
// (application_name, _application_name) name the same field for Graylog,
// which strips the '_', and for flowgo's GELF decoder, so they count as the
// same; the six standard keys above are apart. When two sources give the
// same field, the later one in the list wins: a param named msgid replaces
// _msgid, and gelf_extra replaces anything. Param names are made valid GELF
// field names (letters, digits, '_', '-', '.'; any other character becomes
// '_'), the empty name is written "_" (key "__"), and id, whose key _id
// Graylog reserves, is written _id_. NaN and ±Inf values are written null,
// which Graylog drops.
type GELF struct {
	extra    []byte   // the gelf_extra pairs as `,"key":"value"`...
	extraPar []string // the fields of gelf_extra's non-standard keys
	extraHsh []uint64 // gelfNameHash of each extraPar
	over     fixedSet // fixed keys that gelf_extra replaces
	noFull   bool     // gelf_full_message = false: no full_message from the record
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

// gelfStandard are the keys of the GELF specification.
var gelfStandard = map[string]fixedSet{
	"version": gelfVersion, "host": gelfHost, "short_message": gelfShort, "full_message": gelfFull,
	"timestamp": gelfTimestamp, "level": gelfLevel,
}

// The fields (keys without a leading '_') of the other fixed keys; a param
// of that name replaces the key.
const (
	facilityField = "facility_num"
	appField      = "application_name"
	procField     = "process_id"
	msgIDField    = "msgid"
	sdIDField     = "sd_id"
)

var gelfFixedFields = map[string]fixedSet{
	facilityField: gelfFacility, appField: gelfApp, procField: gelfProc, msgIDField: gelfMsgID, sdIDField: gelfSDID,
}

var (
	facilityHash = gelfNameHash(facilityField)
	appHash      = gelfNameHash(appField)
	procHash     = gelfNameHash(procField)
	msgIDHash    = gelfNameHash(msgIDField)
	sdIDHash     = gelfNameHash(sdIDField)
)

// gelfNames is what a GELF field name may hold: ^[\w\.\-]*$.
var gelfNames = newNameSet("_.-", [2]byte{'a', 'z'}, [2]byte{'A', 'Z'}, [2]byte{'0', '9'})

// gelfMaxUnix is the last second of year 9999; GELF readers (flowgo's
// decoder, Graylog's Elasticsearch dates) take times from 1970 up to it.
const gelfMaxUnix = 253402300799

// NewGELF builds a GELF encoder from the [output] keys gelf_extra (a table
// of strings added to every record) and gelf_full_message (true, the
// default, writes the raw line as full_message; false leaves it out, which
// about halves the bytes of a syslog record for those who need no copy of
// the raw line; a full_message in gelf_extra is still written).
func NewGELF(s *config.Section) (*GELF, error) {
	s = section(s)
	ignoreOthers(s, "gelf", "gelf_extra", "gelf_full_message")
	c := struct {
		Extra       map[string]string `toml:"gelf_extra"`
		FullMessage bool              `toml:"gelf_full_message"`
	}{FullMessage: true}
	if err := s.Decode(&c); err != nil {
		return nil, err
	}
	g := &GELF{now: time.Now, noFull: !c.FullMessage}
	keys := make([]string, 0, len(c.Extra))
	for k := range c.Extra {
		keys = append(keys, k)
	}
	slices.Sort(keys) // a stable order, Flowgger's (it sorts every key)
	type entry struct{ key, written, field string }
	byField := map[string]int{} // index in entries of each field
	var entries []entry
	for _, k := range keys {
		v := c.Extra[k]
		if k == "" {
			return nil, s.Errorf("gelf_extra", "a key is empty")
		}
		fk := gelfFieldName(k)
		if fk != k {
			s.Warn("gelf_extra", "key %q is written %q: a GELF field name holds only letters, digits, '_', '-' and '.', and _id is reserved", k, fk)
		}
		// The field a key names: standard keys apart (a NUL marks them),
		// other keys without one leading '_'.
		field := "\x00" + fk
		if gelfStandard[fk] == 0 {
			field = strings.TrimPrefix(fk, "_")
		}
		switch field {
		case "\x00version":
			if v != "1.1" {
				return nil, s.Errorf("gelf_extra", "version = %q: GELF 1.1 requires \"1.1\"", v)
			}
		case "\x00timestamp", "\x00level", facilityField:
			return nil, s.Errorf("gelf_extra", "%s must be a number in GELF, and gelf_extra values are strings", k)
		case "\x00host", "\x00short_message":
			if strings.TrimSpace(v) == "" {
				return nil, s.Errorf("gelf_extra", "%s = %q: Graylog rejects a message whose %s is blank", k, v, k)
			}
		case "":
			return nil, s.Errorf("gelf_extra", "key %q names no field: GELF readers drop one leading '_'", k)
		}
		if i, dup := byField[field]; dup {
			s.Warn("gelf_extra", "keys %q and %q name the same GELF field; the value of %q wins", entries[i].key, k, k)
			entries[i].key = "" // dropped
		}
		byField[field] = len(entries)
		entries = append(entries, entry{k, fk, field})
	}
	for _, e := range entries {
		if e.key == "" {
			continue
		}
		g.extra = append(g.extra, ',')
		g.extra = appendJSONString(g.extra, e.written)
		g.extra = append(g.extra, ':')
		g.extra = appendJSONString(g.extra, c.Extra[e.key])
		if bit := gelfStandard[e.written]; bit != 0 {
			g.over |= bit
			continue
		}
		g.over |= gelfFixedFields[e.field]
		g.extraPar = append(g.extraPar, e.field)
		g.extraHsh = append(g.extraHsh, gelfNameHash(e.field))
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
	var x nameIndex
	x.init(r.SD, &gelfRules)

	// sep is what goes before the next key: '{' first, then ','. The keys
	// are written inline rather than by a closure, which would keep dst in
	// memory instead of registers on this hot path.
	sep := byte('{')
	if g.over&gelfVersion == 0 {
		dst = append(append(dst, sep), `"version":`...)
		sep = ','
		dst = append(dst, `"1.1"`...)
	}
	if g.over&gelfHost == 0 {
		dst = append(append(dst, sep), `"host":`...)
		sep = ','
		if strings.TrimSpace(r.Hostname) == "" {
			dst = append(dst, `"unknown"`...)
		} else {
			dst = appendJSONString(dst, r.Hostname)
		}
	}
	if g.over&gelfShort == 0 {
		dst = append(append(dst, sep), `"short_message":`...)
		sep = ','
		if r.Msg == "" {
			dst = append(dst, `"-"`...)
		} else {
			dst = appendJSONString(dst, r.Msg)
		}
	}
	if r.FullMsg != "" && g.over&gelfFull == 0 && !g.noFull {
		dst = append(append(dst, sep), `"full_message":`...)
		sep = ','
		dst = appendJSONString(dst, r.FullMsg)
	}
	if g.over&gelfTimestamp == 0 {
		dst = append(append(dst, sep), `"timestamp":`...)
		sep = ','
		t := r.Time
		if sec := t.Unix(); t.IsZero() || sec < 0 || sec > gelfMaxUnix {
			t = g.now()
		}
		dst = appendUnixMicro(dst, t)
	}
	if validSeverity(r.Severity) && g.over&gelfLevel == 0 {
		dst = append(append(dst, sep), `"level":`...)
		sep = ','
		dst = strconv.AppendUint(dst, uint64(r.Severity), 10)
	}
	if validFacility(r.Facility) && g.over&gelfFacility == 0 && !x.has(facilityField, facilityHash) {
		dst = append(append(dst, sep), `"_facility_num":`...)
		sep = ','
		dst = strconv.AppendUint(dst, uint64(r.Facility), 10)
	}
	if r.AppName != "" && g.over&gelfApp == 0 && !x.has(appField, appHash) {
		dst = append(append(dst, sep), `"application_name":`...)
		sep = ','
		dst = appendJSONString(dst, r.AppName)
	}
	if r.ProcID != "" && g.over&gelfProc == 0 && !x.has(procField, procHash) {
		dst = append(append(dst, sep), `"process_id":`...)
		sep = ','
		dst = appendJSONString(dst, r.ProcID)
	}
	if r.MsgID != "" && g.over&gelfMsgID == 0 && !x.has(msgIDField, msgIDHash) {
		dst = append(append(dst, sep), `"_msgid":`...)
		sep = ','
		dst = appendJSONString(dst, r.MsgID)
	}

	lastID := -1
	if g.over&gelfSDID == 0 && !x.has(sdIDField, sdIDHash) {
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
			dst = append(append(dst, sep), `"sd_id":`...)
			sep = ','
			dst = appendJSONString(dst, e.ID)
		}
		for j := range e.Params {
			p := &e.Params[j]
			if !g.replaced(&x, k, p.Name) {
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

// replaced reports whether the k-th param of the record, named name, is
// overridden by gelf_extra or by a later param.
func (g *GELF) replaced(x *nameIndex, k int, name string) bool {
	if len(g.extraPar) > 0 {
		h := x.hashOf(k, name)
		for i, e := range g.extraPar {
			if g.extraHsh[i] == h && sameGELFName(e, name) {
				return true
			}
		}
	}
	return x.later(k, name)
}

// gelfRules are the GELF field names of params for nameIndex.
var gelfRules = nameRules{hash: gelfNameHash, same: sameGELFName, write: appendGELFName}

// gelfNameHash is FNV-1a of the GELF field name of a param (without its
// "_"): equal names have equal hashes.
func gelfNameHash(name string) uint64 {
	name = gelfRename(name)
	h := uint64(fnvOffset)
	for i := 0; i < len(name); {
		c := name[i]
		if gelfNames[c] {
			i++
		} else {
			var w int
			c, w = gelfNames.next(name, i)
			i += w
		}
		h = (h ^ uint64(c)) * fnvPrime
	}
	return h
}

// appendGELFName appends the GELF field name of a param, without the "_"
// in front: name sanitised, "" written "_" (GELF readers take the key "_"
// for an empty name), and "id" (the reserved _id) written "id_".
func appendGELFName(dst []byte, name string) []byte {
	switch name {
	case "":
		return append(dst, '_')
	case "id":
		return append(dst, "id_"...)
	}
	if gelfNames.valid(name) {
		return append(dst, name...)
	}
	return gelfNames.append(dst, name, -1)
}

// sameGELFName reports whether params a and b get the same GELF field.
func sameGELFName(a, b string) bool {
	return gelfNames.same(gelfRename(a), gelfRename(b))
}

// gelfRename gives the two names that are not written sanitised their
// written form.
func gelfRename(name string) string {
	switch name {
	case "":
		return "_"
	case "id":
		return "id_"
	}
	return name
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
