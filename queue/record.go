package queue

import (
	"encoding/binary"
	"errors"
	"math"
	"time"
	"unsafe"

	"github.com/flowgo/flowgo"
)

// A record's payload on disk:
//
//	flags      byte: timeSet, timeUTC
//	[time]     zig-zag varint Unix seconds, uvarint nanoseconds, and unless
//	           timeUTC: zig-zag varint zone offset (seconds) and the zone name
//	facility   byte
//	severity   byte
//	full msg   uvarint length and bytes
//	5 strings  hostname, app-name, procid, msgid, msg
//	uvarint    number of SD elements, each: ID, uvarint count, params
//	param      name, kind byte, value (string: a string; bool/f64/i64/u64:
//	           8 bytes LE; null: nothing)
//
// A string other than the full message starts with a tag byte: below 0x80
// it is the length of the bytes that follow; 0x80: a uvarint length and
// the bytes; 0x81 and 0x82: a view of the full message, its offset and
// length as two uint16 or two uint32 (LE). The syslog decoders' fields are
// views of the line, so most of a record is stored once, and read without
// a varint loop. The format is private to the queue: a
// version change gets a new segment magic.
const (
	flagTime    = 1 << 0
	flagTimeUTC = 1 << 1
)

var errRecord = errors.New("malformed record")

// appendRecord appends r's encoding to dst.
func appendRecord(dst []byte, r *flowgo.Record) []byte {
	var flags byte
	if !r.Time.IsZero() {
		flags |= flagTime
		if r.Time.Location() == time.UTC {
			flags |= flagTimeUTC
		}
	}
	dst = append(dst, flags)
	if flags&flagTime != 0 {
		dst = binary.AppendVarint(dst, r.Time.Unix())
		dst = binary.AppendUvarint(dst, uint64(r.Time.Nanosecond()))
		if flags&flagTimeUTC == 0 {
			name, off := r.Time.Zone()
			dst = binary.AppendVarint(dst, int64(off))
			dst = appendString(dst, name)
		}
	}
	dst = append(dst, r.Facility, r.Severity)
	dst = appendString(dst, r.FullMsg)
	full := fullRange(r.FullMsg)
	dst = full.append(dst, r.Hostname)
	dst = full.append(dst, r.AppName)
	dst = full.append(dst, r.ProcID)
	dst = full.append(dst, r.MsgID)
	dst = full.append(dst, r.Msg)
	dst = binary.AppendUvarint(dst, uint64(len(r.SD)))
	for i := range r.SD {
		e := &r.SD[i]
		dst = full.append(dst, e.ID)
		dst = binary.AppendUvarint(dst, uint64(len(e.Params)))
		for j := range e.Params {
			p := &e.Params[j]
			dst = full.append(dst, p.Name)
			dst = append(dst, byte(p.Value.Kind))
			switch p.Value.Kind {
			case flowgo.KindString:
				dst = full.append(dst, p.Value.Str)
			case flowgo.KindBool:
				var v uint64
				if p.Value.Bool() {
					v = 1
				}
				dst = binary.LittleEndian.AppendUint64(dst, v)
			case flowgo.KindF64:
				dst = binary.LittleEndian.AppendUint64(dst, math.Float64bits(p.Value.F64()))
			case flowgo.KindI64:
				dst = binary.LittleEndian.AppendUint64(dst, uint64(p.Value.I64()))
			case flowgo.KindU64:
				dst = binary.LittleEndian.AppendUint64(dst, p.Value.U64())
			}
		}
	}
	return dst
}

func appendString(dst []byte, s string) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(s)))
	return append(dst, s...)
}

// within is the memory of a record's full message, for strings that are
// views of it.
type within struct{ start, end uintptr }

func fullRange(s string) within {
	if s == "" {
		return within{}
	}
	p := uintptr(unsafe.Pointer(unsafe.StringData(s)))
	return within{p, p + uintptr(len(s))}
}

// String tags (see the format above).
const (
	tagLong  = 0x80
	tagRef16 = 0x81
	tagRef32 = 0x82
)

// append writes s as a reference into the full message when it lies
// within it, else as a string of its own.
func (w within) append(dst []byte, s string) []byte {
	if s != "" && w.end != 0 {
		p := uintptr(unsafe.Pointer(unsafe.StringData(s)))
		if p >= w.start && p+uintptr(len(s)) <= w.end {
			off := p - w.start
			if off+uintptr(len(s)) <= 0xffff {
				return append(dst, tagRef16, byte(off), byte(off>>8), byte(len(s)), byte(len(s)>>8))
			}
			dst = append(dst, tagRef32)
			dst = binary.LittleEndian.AppendUint32(dst, uint32(off))
			return binary.LittleEndian.AppendUint32(dst, uint32(len(s)))
		}
	}
	if len(s) < tagLong {
		dst = append(dst, byte(len(s)))
		return append(dst, s...)
	}
	dst = append(dst, tagLong)
	dst = binary.AppendUvarint(dst, uint64(len(s)))
	return append(dst, s...)
}

// recordReader decodes record payloads into a batch's records, their
// strings pointing into the batch's arena. It keeps the time zones it made,
// so that a record costs no allocation. Not safe for concurrent use.
type recordReader struct {
	zones map[zoneKey]*time.Location
}

type zoneKey struct {
	name string
	off  int32
}

// decoding is a cursor over one payload.
type decoding struct {
	b   []byte
	err bool
}

func (d *decoding) uvarint() uint64 {
	if len(d.b) > 0 && d.b[0] < 0x80 { // most lengths and offsets fit a byte
		v := uint64(d.b[0])
		d.b = d.b[1:]
		return v
	}
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.err = true
		d.b = nil
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoding) varint() int64 {
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.err = true
		d.b = nil
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoding) byte() byte {
	if len(d.b) < 1 {
		d.err = true
		return 0
	}
	c := d.b[0]
	d.b = d.b[1:]
	return c
}

func (d *decoding) u64() uint64 {
	if len(d.b) < 8 {
		d.err = true
		d.b = nil
		return 0
	}
	v := binary.LittleEndian.Uint64(d.b)
	d.b = d.b[8:]
	return v
}

// bytes returns the next string's bytes, a sub-slice of the payload.
func (d *decoding) bytes() []byte {
	n := d.uvarint()
	if n > uint64(len(d.b)) {
		d.err = true
		d.b = nil
		return nil
	}
	s := d.b[:n]
	d.b = d.b[n:]
	return s
}

// ref returns the next string written by within.append: its own bytes, or
// a view of full.
func (d *decoding) ref(full []byte) string {
	if len(d.b) == 0 {
		d.err = true
		return ""
	}
	var off, n uint64
	switch tag := d.b[0]; {
	case tag < tagLong:
		n = uint64(tag)
		if n+1 > uint64(len(d.b)) {
			d.err, d.b = true, nil
			return ""
		}
		s := d.b[1 : 1+n]
		d.b = d.b[1+n:]
		return flowgo.UnsafeString(s)
	case tag == tagLong:
		d.b = d.b[1:]
		return flowgo.UnsafeString(d.bytes())
	case tag == tagRef16 && len(d.b) >= 5:
		off = uint64(binary.LittleEndian.Uint16(d.b[1:]))
		n = uint64(binary.LittleEndian.Uint16(d.b[3:]))
		d.b = d.b[5:]
	case tag == tagRef32 && len(d.b) >= 9:
		off = uint64(binary.LittleEndian.Uint32(d.b[1:]))
		n = uint64(binary.LittleEndian.Uint32(d.b[5:]))
		d.b = d.b[9:]
	default:
		d.err, d.b = true, nil
		return ""
	}
	if off > uint64(len(full)) || n > uint64(len(full))-off {
		d.err, d.b = true, nil
		return ""
	}
	return flowgo.UnsafeString(full[off : off+n])
}

// read decodes payload into r. payload must be arena memory (or otherwise
// outlive r): r's strings point into it.
func (rr *recordReader) read(payload []byte, r *flowgo.Record, a *flowgo.Arena) error {
	d := decoding{b: payload}
	flags := d.byte()
	r.Time = time.Time{}
	if flags&flagTime != 0 {
		sec := d.varint()
		nsec := d.uvarint()
		if nsec >= 1e9 {
			return errRecord
		}
		t := time.Unix(sec, int64(nsec))
		if flags&flagTimeUTC != 0 {
			t = t.UTC()
		} else {
			off := d.varint()
			name := d.bytes()
			if off < -24*3600 || off > 24*3600 {
				return errRecord
			}
			t = t.In(rr.zone(name, int32(off)))
		}
		r.Time = t
	}
	r.Facility = d.byte()
	r.Severity = d.byte()
	full := d.bytes()
	r.FullMsg = flowgo.UnsafeString(full)
	r.Hostname = d.ref(full)
	r.AppName = d.ref(full)
	r.ProcID = d.ref(full)
	r.MsgID = d.ref(full)
	r.Msg = d.ref(full)
	nsd := d.uvarint()
	if d.err || nsd > uint64(len(d.b)) {
		return errRecord
	}
	r.SD = nil
	if nsd == 0 {
		if len(d.b) != 0 {
			return errRecord
		}
		return nil
	}
	// Straight into arena memory: the counts come first.
	sd := a.NewElems(int(nsd))
	for i := range sd {
		e := &sd[i]
		e.ID = d.ref(full)
		np := d.uvarint()
		if d.err || np > uint64(len(d.b)) {
			return errRecord
		}
		e.Params = a.NewParams(int(np))
		for j := range e.Params {
			p := &e.Params[j]
			p.Name = d.ref(full)
			switch kind := flowgo.Kind(d.byte()); kind {
			case flowgo.KindString:
				p.Value = flowgo.StringValue(d.ref(full))
			case flowgo.KindBool:
				p.Value = flowgo.BoolValue(d.u64() != 0)
			case flowgo.KindF64:
				p.Value = flowgo.F64Value(math.Float64frombits(d.u64()))
			case flowgo.KindI64:
				p.Value = flowgo.I64Value(int64(d.u64()))
			case flowgo.KindU64:
				p.Value = flowgo.U64Value(d.u64())
			case flowgo.KindNull:
				p.Value = flowgo.NullValue()
			default:
				return errRecord
			}
			if d.err {
				return errRecord
			}
		}
	}
	if d.err || len(d.b) != 0 {
		return errRecord
	}
	r.SD = sd
	return nil
}

// zone returns a fixed zone with the given name and offset, made once.
func (rr *recordReader) zone(name []byte, off int32) *time.Location {
	if loc, ok := rr.zones[zoneKey{flowgo.UnsafeString(name), off}]; ok {
		return loc
	}
	if rr.zones == nil {
		rr.zones = map[zoneKey]*time.Location{}
	}
	if len(rr.zones) > 1024 {
		clear(rr.zones) // zones are few; this bounds a hostile mix
	}
	k := zoneKey{string(name), off}
	loc := time.FixedZone(k.name, int(off))
	rr.zones[k] = loc
	return loc
}
