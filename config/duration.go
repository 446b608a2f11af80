package config

import (
	"fmt"
	"math"
	"reflect"
	"strconv"
	"strings"
	"time"
)

// Unit is the unit of a Flowgger key that takes an integer count of time:
// Seconds (timeout), Milliseconds (kafka_timeout, tls_recovery_*) or
// Minutes (file_rotation_time).
type Unit interface {
	Size() time.Duration
	Name() string // plural, for messages: "seconds"
}

// The units of Flowgger's time keys.
type (
	Seconds      struct{}
	Milliseconds struct{}
	Minutes      struct{}
)

func (Seconds) Size() time.Duration      { return time.Second }
func (Seconds) Name() string             { return "seconds" }
func (Milliseconds) Size() time.Duration { return time.Millisecond }
func (Milliseconds) Name() string        { return "milliseconds" }
func (Minutes) Size() time.Duration      { return time.Minute }
func (Minutes) Name() string             { return "minutes" }

// Duration is the value of a key that Flowgger takes as an integer count of
// U ("timeout = 3600" is an hour): an integer keeps that meaning, and a Go
// duration string ("1h", "90s", "250ms") is accepted too, as flowgo's own
// time keys take. An integer whose duration overflows is an error naming
// the key and its line (Section.Decode reports it), never a wrapped-around
// value.
type Duration[U Unit] struct {
	d    time.Duration
	text string // the string as written; "" for an integer
	err  error  // what was wrong with the value; reported by Section.Decode
}

// Count returns a Duration of n units, for defaults.
func Count[U Unit](n int64) Duration[U] {
	var u U
	return Duration[U]{d: time.Duration(n) * u.Size()}
}

// Get returns the duration.
func (d Duration[U]) Get() time.Duration { return d.d }

// String returns the value as written: the duration string, or the count
// of units.
func (d Duration[U]) String() string {
	if d.text != "" {
		return d.text
	}
	var u U
	if d.d%u.Size() == 0 {
		return strconv.FormatInt(int64(d.d/u.Size()), 10)
	}
	return d.d.String()
}

// UnmarshalTOML implements toml.Unmarshaler. A bad value is kept as an
// error for Section.Decode, which knows the key's line even in [[input]]
// arrays.
func (d *Duration[U]) UnmarshalTOML(v any) error {
	var u U
	*d = Duration[U]{}
	switch v := v.(type) {
	case int64:
		if v > int64(math.MaxInt64/u.Size()) || v < int64(math.MinInt64/u.Size()) {
			d.err = fmt.Errorf("%d %s is out of range: at most %d (%s); or write a duration such as \"1h\"",
				v, u.Name(), int64(math.MaxInt64/u.Size()), roundYears(math.MaxInt64))
			return nil
		}
		d.d = time.Duration(v) * u.Size()
	case string:
		pd, err := time.ParseDuration(strings.TrimSpace(v))
		if err != nil {
			d.err = fmt.Errorf("invalid duration %q: want a number of %s or a duration such as \"90s\", \"1h30m\" or \"250ms\" (at most %s)",
				v, u.Name(), roundYears(math.MaxInt64))
			return nil
		}
		d.d, d.text = pd, v
	default:
		d.err = fmt.Errorf("wrong type: expected an integer number of %s or a duration string such as \"30s\", got %s",
			u.Name(), tomlTypeName(fmt.Sprintf("%T", v)))
	}
	return nil
}

// MarshalTOML implements toml.Marshaler, for flowgo check: the value as
// written.
func (d Duration[U]) MarshalTOML() ([]byte, error) {
	if d.text != "" {
		return []byte(strconv.Quote(d.text)), nil
	}
	var u U
	if d.d%u.Size() == 0 {
		return []byte(strconv.FormatInt(int64(d.d/u.Size()), 10)), nil
	}
	return []byte(strconv.Quote(d.d.String())), nil
}

func (d *Duration[U]) decodeError() error { return d.err }

// roundYears describes a duration of n nanoseconds in years, for the limit
// in messages: "292 years".
func roundYears(n int64) string {
	return fmt.Sprintf("%d years", time.Duration(n)/(365*24*time.Hour))
}

// literalChecker is a field type that checks how its value is written.
type literalChecker interface{ checkLiteral(lit string) error }

// literal returns the value of key as written in the file ("0o640"), or ""
// when it cannot be found.
func (s *Section) literal(key string) string {
	line := s.Line(key)
	if line < 1 || line > len(s.file.lines) {
		return ""
	}
	k, v, ok := strings.Cut(s.file.lines[line-1], "=")
	if !ok || strings.TrimSpace(k) == "" {
		return ""
	}
	v = strings.TrimSpace(v)
	if i := strings.IndexAny(v, " \t#"); i >= 0 {
		v = v[:i]
	}
	return v
}

// decodeErrorer is a field type that keeps what was wrong with its value
// for Section.Decode to report with the key's line.
type decodeErrorer interface{ decodeError() error }

var (
	durationType = reflect.TypeOf(time.Duration(0))
)

// checkValues reports, for the struct v was decoded into, the first field
// whose value is wrong in a way BurntSushi/toml lets through: a Duration
// with a bad value, and a time.Duration written as a bare integer other
// than 0, which toml reads as nanoseconds ("shutdown_timeout = 30" would be
// 30ns).
func (s *Section) checkValues(v reflect.Value) error {
	for v.Kind() == reflect.Pointer {
		if v.IsNil() {
			return nil
		}
		v = v.Elem()
	}
	if v.Kind() != reflect.Struct {
		return nil
	}
	t := v.Type()
	for i := 0; i < t.NumField(); i++ {
		fld := t.Field(i)
		name, _, _ := strings.Cut(fld.Tag.Get("toml"), ",")
		if fld.Anonymous && name == "" {
			if err := s.checkValues(v.Field(i)); err != nil {
				return err
			}
			continue
		}
		if name == "" || name == "-" || !s.keys[name] || !fld.IsExported() {
			continue
		}
		if de, ok := v.Field(i).Addr().Interface().(decodeErrorer); ok {
			if lc, ok := de.(literalChecker); ok {
				if err := lc.checkLiteral(s.literal(name)); err != nil {
					return s.Errorf(name, "%v", err)
				}
			}
			if err := de.decodeError(); err != nil {
				return s.Errorf(name, "%v", err)
			}
			continue
		}
		if fld.Type == durationType {
			if n, ok := s.raw[name].(int64); ok && n != 0 {
				return s.Errorf(name, "%d is not a duration: write it with its unit, such as \"%ds\" or \"%dms\" (a bare integer would be nanoseconds)", n, n, n)
			}
		}
	}
	return nil
}
