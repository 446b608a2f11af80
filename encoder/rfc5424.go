package encoder

import (
	"unicode/utf8"

	"github.com/flowgo/flowgo"
	"github.com/flowgo/flowgo/config"
)

func init() {
	Register("rfc5424", func(s *config.Section) (Encoder, error) { return NewRFC5424(s) })
}

// RFC5424 writes a record as an RFC 5424 syslog message:
//
//	<PRI>1 TIMESTAMP HOSTNAME APP-NAME PROCID MSGID STRUCTURED-DATA[ MSG]
//
// Every field is made valid so that the line always parses again: an empty
// field is the NILVALUE "-" (APP-NAME too, which Flowgger leaves out);
// header fields keep only printable ASCII (other characters become '_')
// and are cut to the RFC's lengths (255, 48, 128, 32); the timestamp is UTC
// with microseconds. The PRI defaults a missing facility to user (1) and a
// missing severity to notice (5), "<13>" when both are missing, as in
// Flowgger. See appendSD for the structured data. MSG is written as it is,
// without a BOM, and with the space before it only when there is one.
type RFC5424 struct {
	sdID string
}

// NewRFC5424 builds an RFC 5424 encoder from the [output] key syslog_sd_id
// (the SD-ID for fields that have none, default "fields@32473").
func NewRFC5424(s *config.Section) (*RFC5424, error) {
	s = section(s)
	ignoreOthers(s, "rfc5424", "syslog_sd_id")
	id, err := sdID(s)
	if err != nil {
		return nil, err
	}
	return &RFC5424{sdID: id}, nil
}

// Header field limits of RFC 5424 section 6.
const (
	maxHostname = 255
	maxAppName  = 48
	maxProcID   = 128
	maxMsgID    = 32
	maxSDName   = 32
)

// printASCII is PRINTUSASCII, %d33-126: what a header field may hold.
var printASCII = newNameSet("", [2]byte{33, 126})

// sdNames is SD-NAME: PRINTUSASCII except '=', ']', '"' (and space).
var sdNames = func() *nameSet {
	s := *printASCII
	s['='], s[']'], s['"'] = false, false, false
	return &s
}()

// sdEscape marks what PARAM-VALUE must escape with a backslash.
var sdEscape = func() (t [utf8.RuneSelf]bool) {
	t['"'], t['\\'], t[']'] = true, true, true
	return t
}()

// Encode appends the RFC 5424 line for r to dst. It never fails.
func (e *RFC5424) Encode(dst []byte, r *flowgo.Record) ([]byte, error) {
	dst = appendPRI(dst, r, true)
	dst = append(dst, '1', ' ')
	dst = appendRFC3339Micro(dst, r.Time)
	dst = append(dst, ' ')
	dst = appendHeader(dst, r.Hostname, maxHostname)
	dst = append(dst, ' ')
	dst = appendHeader(dst, r.AppName, maxAppName)
	dst = append(dst, ' ')
	dst = appendHeader(dst, r.ProcID, maxProcID)
	dst = append(dst, ' ')
	dst = appendHeader(dst, r.MsgID, maxMsgID)
	dst = append(dst, ' ')
	if n := len(dst); len(r.SD) == 0 {
		dst = append(dst, '-')
	} else if dst = appendSD(dst, r.SD, e.sdID); len(dst) == n {
		dst = append(dst, '-')
	}
	if r.Msg != "" {
		dst = append(dst, ' ')
		dst = append(dst, r.Msg...)
	}
	return dst, nil
}

// appendHeader appends a header field: "-" when empty, else s in printable
// ASCII, cut to limit bytes.
func appendHeader(dst []byte, s string, limit int) []byte {
	if s == "" {
		return append(dst, '-')
	}
	return printASCII.append(dst, s, limit)
}

// appendSD appends the structured data of a record, and nothing when there
// is none to write. Each element is written
//
//	[SD-ID name="value" ...]
//
// with the SD-ID and names made valid SD-NAMEs (PRINTUSASCII but '=', ']',
// '"' and space, which become '_'; at most 32 bytes; an empty name is
// written "_"), and values escaped ('"', '\' and ']' get a backslash; bytes
// of invalid UTF-8 become U+FFFD). Typed values are written as text (true,
// 42, 1.5, NaN, inf), null as "". An element with no ID (GELF or LTSV
// fields) gets sdID. RFC 5424 allows an SD-ID only once per message, so
// elements with the same SD-ID are merged into the first; an element with
// no ID and no params is left out.
func appendSD(dst []byte, sd []flowgo.SDElement, sdID string) []byte {
	if len(sd) > smallParams {
		return appendManySD(dst, sd, sdID)
	}
	for i := range sd {
		id := elemID(&sd[i], sdID)
		if mergedEarlier(sd, i, id, sdID) {
			continue
		}
		if sd[i].ID == "" && !groupHasParams(sd, i, id, sdID) {
			continue
		}
		dst = append(dst, '[')
		dst = sdNames.append(dst, id, maxSDName)
		for k := i; k < len(sd); k++ {
			if k == i || sameSDID(elemID(&sd[k], sdID), id) {
				dst = appendParams(dst, sd[k].Params)
			}
		}
		dst = append(dst, ']')
	}
	return dst
}

// appendManySD is appendSD for records with many elements: it groups them
// with a map, in O(n), where appendSD compares each with the others.
func appendManySD(dst []byte, sd []flowgo.SDElement, sdID string) []byte {
	groups := make(map[string][]int, len(sd))
	var order []string
	var buf []byte
	for i := range sd {
		buf = sdNames.append(buf[:0], elemID(&sd[i], sdID), maxSDName)
		g, ok := groups[string(buf)]
		if !ok {
			order = append(order, string(buf))
		}
		groups[string(buf)] = append(g, i)
	}
	for _, id := range order {
		g := groups[id]
		if sd[g[0]].ID == "" {
			n := 0
			for _, k := range g {
				n += len(sd[k].Params)
			}
			if n == 0 {
				continue
			}
		}
		dst = append(dst, '[')
		dst = append(dst, id...)
		for _, k := range g {
			dst = appendParams(dst, sd[k].Params)
		}
		dst = append(dst, ']')
	}
	return dst
}

func elemID(e *flowgo.SDElement, sdID string) string {
	if e.ID == "" {
		return sdID
	}
	return e.ID
}

// sameSDID reports whether two SD-IDs are written the same.
func sameSDID(a, b string) bool {
	return sdNames.sameN(a, b, maxSDName)
}

// mergedEarlier reports whether an element before i has the same SD-ID.
func mergedEarlier(sd []flowgo.SDElement, i int, id, sdID string) bool {
	for k := 0; k < i; k++ {
		if sameSDID(elemID(&sd[k], sdID), id) {
			return true
		}
	}
	return false
}

// groupHasParams reports whether element i or a later one with the same
// SD-ID has params.
func groupHasParams(sd []flowgo.SDElement, i int, id, sdID string) bool {
	for k := i; k < len(sd); k++ {
		if len(sd[k].Params) > 0 && (k == i || sameSDID(elemID(&sd[k], sdID), id)) {
			return true
		}
	}
	return false
}

func appendParams(dst []byte, ps []flowgo.Param) []byte {
	for j := range ps {
		p := &ps[j]
		dst = append(dst, ' ')
		if p.Name == "" {
			dst = append(dst, '_')
		} else {
			dst = sdNames.append(dst, p.Name, maxSDName)
		}
		dst = append(dst, '=', '"')
		if p.Value.Kind == flowgo.KindString {
			dst = appendUTF8(dst, p.Value.Str, &sdEscape)
		} else {
			dst = appendTextValue(dst, p.Value) // digits, letters, '.', '-': nothing to escape
		}
		dst = append(dst, '"')
	}
	return dst
}
