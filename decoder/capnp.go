package decoder

import (
	"errors"
	"math"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/flowgo/flowgo"
	"github.com/flowgo/flowgo/config"
	"github.com/flowgo/flowgo/internal/capnp"
)

func init() {
	Register("capnp", func(*config.Section) (Decoder, error) { return &Capnp{}, nil })
}

var _ Decoder = (*Capnp)(nil)

// Capnp decodes one Cap'n Proto message per frame (input.format = "capnp"):
// a Record of Flowgger's record.capnp (file id @0xe5fbb19e9e69110b) in the
// standard unpacked serialization, segment table included, as the capnp
// framing of stream inputs cuts them.
//
// The fields map to the record as in Flowgger:
//
//   - ts: seconds since the Unix epoch (Float64), required: values below a
//     microsecond, negative, NaN, infinite and past-9999 reject the message.
//     It is rounded to the microsecond, the precision a Float64 keeps for
//     current dates.
//   - hostname, appname, procid, msgid, msg, fullMsg → the record's fields;
//     unset and empty are both absent.
//   - facility 0-23 and severity 0-7 are kept; 255, Flowgger's "missing", and
//     any other value leave them unset.
//   - sdId, pairs and extra make one SD element, pairs first, when any of
//     them is set. Keys lose one leading "_" (Flowgger writes "_name" keys and
//     flowgo stores names without the GELF prefix). Values keep their type.
//
// Text must be valid UTF-8 (the Cap'n Proto spec says so); a message with
// invalid UTF-8, an unknown value type, or a malformed layout is rejected
// with the field and the byte offset. The zero Capnp is ready to use.
type Capnp struct{}

// capnpStackParams is how many pairs a record can have before decoding it
// allocates a scratch slice.
const capnpStackParams = 64

// noParams is never written: a.Params copies from it to reserve room.
var noParams [capnpStackParams]flowgo.Param

// capnpMaxUnix is the last second of year 9999, as for GELF timestamps.
const capnpMaxUnix = 253402300799

// Decode implements Decoder.
func (d *Capnp) Decode(frame []byte, r *flowgo.Record, a *flowgo.Arena) error {
	var m capnp.Message
	if err := m.Init(frame); err != nil {
		return capnpError("", err)
	}
	// One copy of the message into the arena; the record's strings are
	// views of its texts. Cheaper than a copy per field.
	frame = a.Copy(frame)
	m.Init(frame)
	root, err := m.Root()
	if err != nil {
		return capnpError("", err)
	}
	ts := math.Float64frombits(root.Uint64(capnp.RecordTs))
	us := math.Round(ts * 1e6)
	if !(us >= 1) || ts > capnpMaxUnix { // also NaN
		return Errorf("capnp", 0, "ts = %v: a timestamp is required, in seconds from 1970 to 9999", ts)
	}
	r.Time = time.UnixMicro(int64(us)).UTC()
	if f := root.Uint8(capnp.RecordFacility); f <= 23 {
		r.Facility = f
	}
	if s := root.Uint8(capnp.RecordSeverity); s <= 7 {
		r.Severity = s
	}
	for _, f := range [...]struct {
		ptr  int
		name string
		dst  *string
	}{
		{capnp.RecordHostname, "hostname", &r.Hostname},
		{capnp.RecordAppname, "appname", &r.AppName},
		{capnp.RecordProcid, "procid", &r.ProcID},
		{capnp.RecordMsgid, "msgid", &r.MsgID},
		{capnp.RecordMsg, "msg", &r.Msg},
		{capnp.RecordFullMsg, "fullMsg", &r.FullMsg},
	} {
		var e *capnp.Error
		if *f.dst, e = capnpText(frame, root, f.ptr); e != nil {
			return capnpError(f.name, e)
		}
	}
	id, e := capnpText(frame, root, capnp.RecordSdID)
	if e != nil {
		return capnpError("sdId", e)
	}
	pairs, err := root.List(capnp.RecordPairs)
	if err != nil {
		return capnpError("pairs", err)
	}
	extra, err := root.List(capnp.RecordExtra)
	if err != nil {
		return capnpError("extra", err)
	}
	n := pairs.Len() + extra.Len()
	if id == "" && n == 0 {
		return nil
	}
	var ps []flowgo.Param
	if n <= capnpStackParams {
		ps = a.Params(noParams[:n]) // room in the arena, filled below
	} else {
		ps = make([]flowgo.Param, n)
	}
	for i := range pairs.Len() {
		if ps[i], err = capnpPair(frame, pairs.At(i), "pairs", i, a); err != nil {
			return err
		}
	}
	for i := range extra.Len() {
		if ps[pairs.Len()+i], err = capnpPair(frame, extra.At(i), "extra", i, a); err != nil {
			return err
		}
	}
	if n > capnpStackParams {
		ps = a.Params(ps)
	}
	r.SD = a.Elems([]flowgo.SDElement{{ID: id, Params: ps}})
	return nil
}

// capnpPair decodes element i of the pairs or extra list.
func capnpPair(frame []byte, s capnp.Struct, list string, i int, a *flowgo.Arena) (flowgo.Param, error) {
	key, e := capnpText(frame, s, capnp.PairKey)
	if e != nil {
		return flowgo.Param{}, capnpError(capnpField(list, i, "key"), e)
	}
	p := flowgo.Param{Name: strings.TrimPrefix(key, "_")}
	switch tag := s.Uint16(capnp.PairTag); tag {
	case capnp.TagString:
		v, e := capnpText(frame, s, capnp.PairString)
		if e != nil {
			return p, capnpError(capnpField(list, i, "value.string"), e)
		}
		p.Value = flowgo.StringValue(v)
	case capnp.TagBool:
		p.Value = flowgo.BoolValue(s.Bit(capnp.PairBool))
	case capnp.TagF64:
		p.Value = flowgo.F64Value(math.Float64frombits(s.Uint64(capnp.PairNumber)))
	case capnp.TagI64:
		p.Value = flowgo.I64Value(int64(s.Uint64(capnp.PairNumber)))
	case capnp.TagU64:
		p.Value = flowgo.U64Value(s.Uint64(capnp.PairNumber))
	case capnp.TagNull:
		p.Value = flowgo.NullValue()
	default:
		return p, Errorf("capnp", 0, "%s: unknown value type (union tag %d; record.capnp has 0-5)", capnpField(list, i, "value"), tag)
	}
	return p, nil
}

// capnpField names element i's field, for errors: "pairs[2].key".
func capnpField(list string, i int, field string) string {
	return list + "[" + strconv.Itoa(i) + "]." + field
}

// capnpText returns Text pointer ptr of s, checking UTF-8. frame, the
// message, is in the arena: the string is a view of it.
func capnpText(frame []byte, s capnp.Struct, ptr int) (string, *capnp.Error) {
	b, err := s.Text(ptr)
	if err != nil {
		var ce *capnp.Error
		errors.As(err, &ce)
		return "", ce
	}
	if !utf8.Valid(b) {
		off := cap(frame) - cap(b) // b is a slice of frame
		for i := 0; i < len(b); {
			r, size := utf8.DecodeRune(b[i:])
			if r == utf8.RuneError && size <= 1 {
				off += i
				break
			}
			i += size
		}
		return "", &capnp.Error{Off: off, Reason: "invalid UTF-8"}
	}
	return flowgo.UnsafeString(b), nil
}

// capnpError turns a reader error into a decode error about field.
func capnpError(field string, err error) error {
	var ce *capnp.Error
	if !errors.As(err, &ce) || ce == nil {
		return Errorf("capnp", 0, "%s: %v", field, err)
	}
	if field != "" {
		return Errorf("capnp", ce.Off+1, "%s: %s", field, ce.Reason)
	}
	return Errorf("capnp", ce.Off+1, "%s", ce.Reason)
}
