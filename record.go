package flowgo

import (
	"math"
	"time"
)

// Unset marks an absent Facility or Severity, as Flowgger does.
const Unset uint8 = 0xff

// Record is one log event, independent of the format it came in or goes out in.
//
// An empty string means "absent": decoders map NILVALUEs ("-") to "", and
// encoders write their own placeholder for it. Strings usually point into the
// Arena of the Batch that holds the record, so a Record is valid only as long
// as that batch is; code that keeps a record longer must copy it with Clone.
type Record struct {
	// Time is when the event happened; the zero Time means unknown.
	Time time.Time
	// Hostname, AppName, ProcID and MsgID are the RFC 5424 header fields.
	Hostname string
	AppName  string
	ProcID   string
	MsgID    string
	// Msg is the message text (GELF short_message).
	Msg string
	// FullMsg is the raw event as received, trailing white space removed
	// (GELF full_message; what the passthrough encoder writes).
	FullMsg string
	// Facility and Severity are 0-23 and 0-7, or Unset.
	Facility uint8
	Severity uint8
	// SD holds the structured-data elements in the order they came. GELF and
	// LTSV additional fields are one element with an empty ID.
	SD []SDElement
}

// Reset makes r the zero record with Facility and Severity unset.
func (r *Record) Reset() {
	*r = Record{Facility: Unset, Severity: Unset}
}

// Clone returns a deep copy of r that shares no memory with any arena.
func (r *Record) Clone() Record {
	c := *r
	c.Hostname = cloneString(r.Hostname)
	c.AppName = cloneString(r.AppName)
	c.ProcID = cloneString(r.ProcID)
	c.MsgID = cloneString(r.MsgID)
	c.Msg = cloneString(r.Msg)
	c.FullMsg = cloneString(r.FullMsg)
	if r.SD != nil {
		c.SD = make([]SDElement, len(r.SD))
		for i, e := range r.SD {
			c.SD[i].ID = cloneString(e.ID)
			if e.Params != nil {
				c.SD[i].Params = make([]Param, len(e.Params))
				for j, p := range e.Params {
					c.SD[i].Params[j] = Param{Name: cloneString(p.Name), Value: p.Value}
					c.SD[i].Params[j].Value.Str = cloneString(p.Value.Str)
				}
			}
		}
	}
	return c
}

func cloneString(s string) string {
	if s == "" {
		return ""
	}
	return string([]byte(s))
}

// SDElement is one structured-data element: an SD-ID and its parameters.
type SDElement struct {
	// ID is the SD-ID ("origin@123"); empty for GELF and LTSV fields.
	ID     string
	Params []Param
}

// Param is one named, typed value. Names are stored as the source format has
// them, without a GELF "_" prefix: the GELF encoder adds it.
type Param struct {
	Name  string
	Value Value
}

// Kind is the type of a Value.
type Kind uint8

// The kinds a Value can have, the types Flowgger's SDValue has.
const (
	KindString Kind = iota
	KindBool
	KindF64
	KindI64
	KindU64
	KindNull
)

var kindNames = [...]string{"string", "bool", "f64", "i64", "u64", "null"}

func (k Kind) String() string {
	if int(k) < len(kindNames) {
		return kindNames[k]
	}
	return "invalid"
}

// Value is a small tagged union: a string, bool, float64, int64, uint64 or null.
// The zero Value is the empty string.
type Value struct {
	Str  string
	num  uint64
	Kind Kind
}

// StringValue returns a string Value.
func StringValue(s string) Value { return Value{Str: s} }

// BoolValue returns a bool Value.
func BoolValue(b bool) Value {
	v := Value{Kind: KindBool}
	if b {
		v.num = 1
	}
	return v
}

// F64Value returns a float64 Value.
func F64Value(f float64) Value { return Value{Kind: KindF64, num: math.Float64bits(f)} }

// I64Value returns an int64 Value.
func I64Value(i int64) Value { return Value{Kind: KindI64, num: uint64(i)} }

// U64Value returns a uint64 Value.
func U64Value(u uint64) Value { return Value{Kind: KindU64, num: u} }

// NullValue returns the null Value.
func NullValue() Value { return Value{Kind: KindNull} }

// Bool returns the value of a bool Value.
func (v Value) Bool() bool { return v.num != 0 }

// F64 returns the value of an f64 Value.
func (v Value) F64() float64 { return math.Float64frombits(v.num) }

// I64 returns the value of an i64 Value.
func (v Value) I64() int64 { return int64(v.num) }

// U64 returns the value of a u64 Value.
func (v Value) U64() uint64 { return v.num }

// Equal reports whether v and w have the same kind and value. Two NaN
// floats are equal, so that round-trip tests can compare records.
func (v Value) Equal(w Value) bool {
	if v.Kind != w.Kind {
		return false
	}
	switch v.Kind {
	case KindString:
		return v.Str == w.Str
	case KindNull:
		return true
	case KindF64:
		a, b := v.F64(), w.F64()
		return a == b || (a != a && b != b)
	default:
		return v.num == w.num
	}
}

// Equal reports whether r and o hold the same event: same instant, fields,
// and structured data in the same order with equal values.
func (r *Record) Equal(o *Record) bool {
	if !r.Time.Equal(o.Time) || r.Hostname != o.Hostname || r.AppName != o.AppName ||
		r.ProcID != o.ProcID || r.MsgID != o.MsgID || r.Msg != o.Msg || r.FullMsg != o.FullMsg ||
		r.Facility != o.Facility || r.Severity != o.Severity || len(r.SD) != len(o.SD) {
		return false
	}
	for i := range r.SD {
		a, b := &r.SD[i], &o.SD[i]
		if a.ID != b.ID || len(a.Params) != len(b.Params) {
			return false
		}
		for j := range a.Params {
			if a.Params[j].Name != b.Params[j].Name || !a.Params[j].Value.Equal(b.Params[j].Value) {
				return false
			}
		}
	}
	return true
}
