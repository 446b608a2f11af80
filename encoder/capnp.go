package encoder

import (
	"cmp"
	"errors"
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/flowgo/flowgo"
	"github.com/flowgo/flowgo/config"
	"github.com/flowgo/flowgo/internal/capnp"
)

func init() {
	Register("capnp", func(s *config.Section) (Encoder, error) { return NewCapnp(s) })
}

// Capnp writes a record as one Cap'n Proto message of Flowgger's
// record.capnp (file id @0xe5fbb19e9e69110b), in the standard unpacked
// serialization: a segment table of one segment, then the segment. The
// message carries its own length, so the output framing "capnp" (or noop)
// writes it as it is.
//
//	ts        Time as Unix seconds (Float64, microseconds kept); the encoding
//	          time when the record has none or one before 1970 or after 9999
//	hostname, appname, procid, msgid, msg, fullMsg
//	          the record's fields; absent ones are null pointers (read as "")
//	facility  Facility 0-23, else 255 (Flowgger's "missing")
//	severity  Severity 0-7, else 255
//	sdId      the ID of the first SD element that has one
//	pairs     the params of every SD element, in order, keyed "_" + name as
//	          Flowgger writes them (its decoders store names with the "_"),
//	          with their type
//	extra     the capnp_extra entries, sorted by key, as string pairs
//
// Flowgger writes the first SD element only; flowgo writes the params of
// all of them, so that nothing is lost (record.capnp has room for one ID).
type Capnp struct {
	extra []capnpExtra
	now   clock
}

type capnpExtra struct{ key, value string }

// NewCapnp builds a Cap'n Proto encoder from the [output] key capnp_extra
// (a table of strings added to every record as extra pairs).
func NewCapnp(s *config.Section) (*Capnp, error) {
	s = section(s)
	ignoreOthers(s, "capnp", "capnp_extra")
	var c struct {
		Extra map[string]string `toml:"capnp_extra"`
	}
	if err := s.Decode(&c); err != nil {
		return nil, err
	}
	e := &Capnp{now: time.Now}
	for k, v := range c.Extra {
		e.extra = append(e.extra, capnpExtra{k, v})
	}
	slices.SortFunc(e.extra, func(a, b capnpExtra) int { return cmp.Compare(a.key, b.key) })
	return e, nil
}

// capnpMaxUnix is the last second of year 9999; readers (flowgo's decoder)
// take times up to it.
const capnpMaxUnix = 253402300799

const capnpPairWords = capnp.PairDataWords + capnp.PairPtrs

// Encode appends the message for r to dst. It fails only for a record too
// big for a message (a text over 512 MiB).
func (c *Capnp) Encode(dst []byte, r *flowgo.Record) ([]byte, error) {
	b := capnp.Start(dst)
	at := b.NewStruct(0, capnp.RecordDataWords, capnp.RecordPtrs)
	t := r.Time
	if t.IsZero() || t.Unix() < 0 || t.Unix() > capnpMaxUnix || t.UnixMicro() == 0 {
		t = c.now()
	}
	b.PutUint64(at, capnp.RecordTs, math.Float64bits(float64(t.UnixMicro())/1e6))
	f, s := uint8(capnp.Missing), uint8(capnp.Missing)
	if validFacility(r.Facility) {
		f = r.Facility
	}
	if validSeverity(r.Severity) {
		s = r.Severity
	}
	b.PutUint8(at, capnp.RecordFacility, f)
	b.PutUint8(at, capnp.RecordSeverity, s)
	ptrs := at + capnp.RecordDataWords
	for _, f := range [...]struct {
		ptr int
		s   string
	}{
		{capnp.RecordHostname, r.Hostname}, {capnp.RecordAppname, r.AppName}, {capnp.RecordProcid, r.ProcID},
		{capnp.RecordMsgid, r.MsgID}, {capnp.RecordMsg, r.Msg}, {capnp.RecordFullMsg, r.FullMsg},
	} {
		if f.s != "" {
			b.SetText(ptrs+f.ptr, f.s)
		}
	}
	n := 0
	id := ""
	for i := range r.SD {
		n += len(r.SD[i].Params)
		if id == "" {
			id = r.SD[i].ID
		}
	}
	if id != "" {
		b.SetText(ptrs+capnp.RecordSdID, id)
	}
	e := b.NewStructList(ptrs+capnp.RecordPairs, n, capnp.PairDataWords, capnp.PairPtrs)
	for i := range r.SD {
		for _, p := range r.SD[i].Params {
			if err := setPair(&b, e, "_", p.Name, p.Value); err != nil {
				return dst, err
			}
			e += capnpPairWords
		}
	}
	e = b.NewStructList(ptrs+capnp.RecordExtra, len(c.extra), capnp.PairDataWords, capnp.PairPtrs)
	for _, x := range c.extra {
		setPair(&b, e, "", x.key, flowgo.StringValue(x.value))
		e += capnpPairWords
	}
	out, err := b.Finish()
	if err != nil {
		return out, fmt.Errorf("capnp: %w", err)
	}
	return out, nil
}

var errCapnpKind = errors.New("capnp: a parameter of unknown kind")

// setPair fills the Pair at word e: key prefix+name and value v.
func setPair(b *capnp.Builder, e int, prefix, name string, v flowgo.Value) error {
	b.SetText2(e+capnp.PairDataWords+capnp.PairKey, prefix, name)
	switch v.Kind {
	case flowgo.KindString:
		b.PutUint16(e, capnp.PairTag, capnp.TagString)
		b.SetText(e+capnp.PairDataWords+capnp.PairString, v.Str)
	case flowgo.KindBool:
		b.PutUint16(e, capnp.PairTag, capnp.TagBool)
		if v.Bool() {
			b.SetBit(e, capnp.PairBool)
		}
	case flowgo.KindF64:
		b.PutUint16(e, capnp.PairTag, capnp.TagF64)
		b.PutUint64(e, capnp.PairNumber, math.Float64bits(v.F64()))
	case flowgo.KindI64:
		b.PutUint16(e, capnp.PairTag, capnp.TagI64)
		b.PutUint64(e, capnp.PairNumber, uint64(v.I64()))
	case flowgo.KindU64:
		b.PutUint16(e, capnp.PairTag, capnp.TagU64)
		b.PutUint64(e, capnp.PairNumber, v.U64())
	case flowgo.KindNull:
		b.PutUint16(e, capnp.PairTag, capnp.TagNull)
	default:
		return errCapnpKind
	}
	return nil
}
