// Package timefmt formats timestamps with the two syntaxes Flowgger configs
// contain: strftime strings ("%Y%m%dT%H%M%SZ", Flowgger 0.2) and time-crate
// format descriptions ("[year][month][day]T[hour][minute][second]Z",
// Flowgger 0.3). A layout with an unescaped '%' is strftime; anything else
// is a format description, where "[[" is a literal '[' and "\%" a literal '%'.
//
// Times are always written in UTC, as Flowgger writes them. Append does not
// allocate, because syslog_prepend_timestamp runs once per record.
package timefmt

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Format is a parsed layout.
type Format struct {
	layout string
	syntax string
	ops    []op
}

type opKind uint8

const (
	opLiteral opKind = iota
	opYear
	opYear2
	opMonth
	opMonthShort
	opMonthLong
	opDay
	opYearDay
	opHour
	opHour12
	opMinute
	opSecond
	opFrac      // width digits, no dot
	opFracAuto  // chrono %.f: ".", then 3, 6 or 9 digits, nothing when 0
	opAmPm      // AM / PM
	opAmPmLower // am / pm
	opWeekdayShort
	opWeekdayLong
	opWeekdayNum // 1..7, Monday = 1 (ISO), as [weekday repr:monday]
	opOffset     // +0000 (always UTC)
	opOffsetColon
	opOffsetHour
	opOffsetMinute
	opZoneName
	opUnix
)

// pad modes for numbers.
const (
	padZero byte = '0'
	padSp   byte = ' '
	padNone byte = 0
)

type op struct {
	kind  opKind
	lit   string
	width int  // digits for numbers and fractions
	pad   byte // padZero, padSp or padNone
}

// Parse parses layout in whichever syntax it uses.
func Parse(layout string) (*Format, error) {
	if hasUnescapedPercent(layout) {
		ops, err := parseStrftime(layout)
		if err != nil {
			return nil, err
		}
		return &Format{layout: layout, syntax: "strftime", ops: ops}, nil
	}
	ops, err := parseDescription(layout)
	if err != nil {
		return nil, err
	}
	return &Format{layout: layout, syntax: "format description", ops: ops}, nil
}

// String returns the layout f was parsed from.
func (f *Format) String() string { return f.layout }

// Syntax returns "strftime" or "format description".
func (f *Format) Syntax() string { return f.syntax }

// Format returns t formatted, in UTC.
func (f *Format) Format(t time.Time) string { return string(f.Append(nil, t)) }

func hasUnescapedPercent(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+1 < len(s) && s[i+1] == '%' {
			i++
			continue
		}
		if s[i] == '%' {
			return true
		}
	}
	return false
}

func appendLit(ops []op, s string) []op {
	if s == "" {
		return ops
	}
	if n := len(ops); n > 0 && ops[n-1].kind == opLiteral {
		ops[n-1].lit += s
		return ops
	}
	return append(ops, op{kind: opLiteral, lit: s})
}

func parseStrftime(layout string) ([]op, error) {
	var ops []op
	for i := 0; i < len(layout); i++ {
		c := layout[i]
		if c != '%' {
			ops = appendLit(ops, string(c))
			continue
		}
		start := i
		i++
		if i >= len(layout) {
			return nil, fmt.Errorf("time format %q: '%%' at the end", layout)
		}
		// Flags: '-' no padding, '_' space padding, '0' zero padding.
		pad := byte(0xff)
		switch layout[i] {
		case '-':
			pad = padNone
		case '_':
			pad = padSp
		case '0':
			pad = padZero
		}
		if pad != 0xff {
			i++
			if i >= len(layout) {
				return nil, fmt.Errorf("time format %q: incomplete specifier %q", layout, layout[start:])
			}
		}
		num := func(k opKind, width int, def byte) {
			p := def
			if pad != 0xff {
				p = pad
			}
			ops = append(ops, op{kind: k, width: width, pad: p})
		}
		switch layout[i] {
		case 'Y':
			num(opYear, 4, padZero)
		case 'C':
			return nil, fmt.Errorf("time format %q: %%C is not supported", layout)
		case 'y':
			num(opYear2, 2, padZero)
		case 'm':
			num(opMonth, 2, padZero)
		case 'b', 'h':
			ops = append(ops, op{kind: opMonthShort})
		case 'B':
			ops = append(ops, op{kind: opMonthLong})
		case 'd':
			num(opDay, 2, padZero)
		case 'e':
			num(opDay, 2, padSp)
		case 'j':
			num(opYearDay, 3, padZero)
		case 'H':
			num(opHour, 2, padZero)
		case 'k':
			num(opHour, 2, padSp)
		case 'I':
			num(opHour12, 2, padZero)
		case 'l':
			num(opHour12, 2, padSp)
		case 'M':
			num(opMinute, 2, padZero)
		case 'S':
			num(opSecond, 2, padZero)
		case 'p':
			ops = append(ops, op{kind: opAmPm})
		case 'P':
			ops = append(ops, op{kind: opAmPmLower})
		case 'a':
			ops = append(ops, op{kind: opWeekdayShort})
		case 'A':
			ops = append(ops, op{kind: opWeekdayLong})
		case 'u':
			num(opWeekdayNum, 1, padNone)
		case 'z':
			ops = append(ops, op{kind: opOffset})
		case ':':
			if i+1 < len(layout) && layout[i+1] == 'z' {
				i++
				ops = append(ops, op{kind: opOffsetColon})
			} else {
				return nil, fmt.Errorf("time format %q: unknown specifier %q", layout, layout[start:i+1])
			}
		case 'Z':
			ops = append(ops, op{kind: opZoneName})
		case 's':
			ops = append(ops, op{kind: opUnix})
		case 'T':
			ops = append(ops, op{kind: opHour, width: 2, pad: padZero}, op{kind: opLiteral, lit: ":"},
				op{kind: opMinute, width: 2, pad: padZero}, op{kind: opLiteral, lit: ":"}, op{kind: opSecond, width: 2, pad: padZero})
		case 'R':
			ops = append(ops, op{kind: opHour, width: 2, pad: padZero}, op{kind: opLiteral, lit: ":"}, op{kind: opMinute, width: 2, pad: padZero})
		case 'F':
			ops = append(ops, op{kind: opYear, width: 4, pad: padZero}, op{kind: opLiteral, lit: "-"},
				op{kind: opMonth, width: 2, pad: padZero}, op{kind: opLiteral, lit: "-"}, op{kind: opDay, width: 2, pad: padZero})
		case 'D':
			ops = append(ops, op{kind: opMonth, width: 2, pad: padZero}, op{kind: opLiteral, lit: "/"},
				op{kind: opDay, width: 2, pad: padZero}, op{kind: opLiteral, lit: "/"}, op{kind: opYear2, width: 2, pad: padZero})
		case 'f': // chrono: nanoseconds, 9 digits
			ops = append(ops, op{kind: opFrac, width: 9})
		case '.':
			// chrono %.f, %.3f, %.6f, %.9f
			if i+1 < len(layout) && layout[i+1] == 'f' {
				i++
				ops = append(ops, op{kind: opFracAuto})
			} else if i+2 < len(layout) && strings.ContainsRune("369", rune(layout[i+1])) && layout[i+2] == 'f' {
				ops = appendLit(ops, ".")
				ops = append(ops, op{kind: opFrac, width: int(layout[i+1] - '0')})
				i += 2
			} else {
				return nil, fmt.Errorf("time format %q: unknown specifier %q", layout, layout[start:min(i+3, len(layout))])
			}
		case '3', '6', '9':
			if i+1 < len(layout) && layout[i+1] == 'f' {
				ops = append(ops, op{kind: opFrac, width: int(layout[i] - '0')})
				i++
			} else {
				return nil, fmt.Errorf("time format %q: unknown specifier %q", layout, layout[start:min(i+2, len(layout))])
			}
		case '%':
			ops = appendLit(ops, "%")
		case 'n':
			ops = appendLit(ops, "\n")
		case 't':
			ops = appendLit(ops, "\t")
		default:
			return nil, fmt.Errorf("time format %q: unknown specifier %q", layout, layout[start:i+1])
		}
	}
	return ops, nil
}

// parseDescription parses a time-crate format description (version 1 syntax).
func parseDescription(layout string) ([]op, error) {
	var ops []op
	for i := 0; i < len(layout); i++ {
		c := layout[i]
		switch {
		case c == '\\' && i+1 < len(layout) && (layout[i+1] == '%' || layout[i+1] == '\\'):
			ops = appendLit(ops, string(layout[i+1]))
			i++
		case c == '[' && i+1 < len(layout) && layout[i+1] == '[':
			ops = appendLit(ops, "[")
			i++
		case c == '[':
			end := strings.IndexByte(layout[i:], ']')
			if end < 0 {
				return nil, fmt.Errorf("time format %q: unclosed '[' at offset %d", layout, i)
			}
			o, err := descComponent(layout[i+1 : i+end])
			if err != nil {
				return nil, fmt.Errorf("time format %q: %v", layout, err)
			}
			ops = append(ops, o)
			i += end
		default:
			ops = appendLit(ops, string(c))
		}
	}
	return ops, nil
}

func descComponent(s string) (op, error) {
	fields := strings.Fields(s)
	if len(fields) == 0 {
		return op{}, fmt.Errorf("empty component []")
	}
	name, mods := fields[0], map[string]string{}
	for _, m := range fields[1:] {
		k, v, ok := strings.Cut(m, ":")
		if !ok {
			return op{}, fmt.Errorf("component [%s]: modifier %q is not key:value", s, m)
		}
		mods[k] = v
	}
	pad := padZero
	if p, ok := mods["padding"]; ok {
		switch p {
		case "zero":
		case "space":
			pad = padSp
		case "none":
			pad = padNone
		default:
			return op{}, fmt.Errorf("component [%s]: padding must be zero, space or none", s)
		}
		delete(mods, "padding")
	}
	var o op
	switch name {
	case "year":
		o = op{kind: opYear, width: 4, pad: pad}
		switch mods["repr"] {
		case "", "full":
		case "last_two":
			o = op{kind: opYear2, width: 2, pad: pad}
		default:
			return op{}, fmt.Errorf("component [%s]: unsupported repr", s)
		}
		delete(mods, "repr")
		delete(mods, "base")
		delete(mods, "sign")
	case "month":
		o = op{kind: opMonth, width: 2, pad: pad}
		switch mods["repr"] {
		case "", "numerical":
		case "short":
			o = op{kind: opMonthShort}
		case "long":
			o = op{kind: opMonthLong}
		default:
			return op{}, fmt.Errorf("component [%s]: unsupported repr", s)
		}
		delete(mods, "repr")
		delete(mods, "case_sensitive")
	case "day":
		o = op{kind: opDay, width: 2, pad: pad}
	case "ordinal":
		o = op{kind: opYearDay, width: 3, pad: pad}
	case "hour":
		o = op{kind: opHour, width: 2, pad: pad}
		switch mods["repr"] {
		case "", "24":
		case "12":
			o.kind = opHour12
		default:
			return op{}, fmt.Errorf("component [%s]: unsupported repr", s)
		}
		delete(mods, "repr")
	case "minute":
		o = op{kind: opMinute, width: 2, pad: pad}
	case "second":
		o = op{kind: opSecond, width: 2, pad: pad}
	case "subsecond":
		o = op{kind: opFracAuto}
		if d, ok := mods["digits"]; ok {
			n, err := strconv.Atoi(d)
			if d == "one_or_more" {
				o = op{kind: opFracAuto}
			} else if err != nil || n < 1 || n > 9 {
				return op{}, fmt.Errorf("component [%s]: digits must be 1 to 9", s)
			} else {
				o = op{kind: opFrac, width: n}
			}
			delete(mods, "digits")
		}
	case "period":
		o = op{kind: opAmPm}
		if mods["case"] == "lower" {
			o.kind = opAmPmLower
		}
		delete(mods, "case")
		delete(mods, "case_sensitive")
	case "weekday":
		o = op{kind: opWeekdayLong}
		switch mods["repr"] {
		case "", "long":
		case "short":
			o.kind = opWeekdayShort
		case "monday":
			o = op{kind: opWeekdayNum, width: 1, pad: padNone}
		default:
			return op{}, fmt.Errorf("component [%s]: unsupported repr", s)
		}
		delete(mods, "repr")
		delete(mods, "one_indexed")
	case "offset_hour":
		o = op{kind: opOffsetHour}
		delete(mods, "sign")
	case "offset_minute":
		o = op{kind: opOffsetMinute}
	case "offset_second":
		o = op{kind: opLiteral, lit: "00"}
	case "unix_timestamp":
		o = op{kind: opUnix}
		delete(mods, "precision")
		delete(mods, "sign")
	default:
		return op{}, fmt.Errorf("unknown component [%s]", s)
	}
	for k := range mods {
		return op{}, fmt.Errorf("component [%s]: unsupported modifier %q", s, k)
	}
	return o, nil
}

var (
	monthShort = [...]string{"Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"}
	monthLong  = [...]string{"January", "February", "March", "April", "May", "June", "July", "August", "September", "October", "November", "December"}
	dayShort   = [...]string{"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"}
	dayLong    = [...]string{"Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday"}
)

// Append appends t, in UTC, formatted by f to dst.
func (f *Format) Append(dst []byte, t time.Time) []byte {
	t = t.UTC()
	year, month, day := t.Date()
	hour, minute, sec := t.Clock()
	ns := t.Nanosecond()
	for i := range f.ops {
		o := &f.ops[i]
		switch o.kind {
		case opLiteral:
			dst = append(dst, o.lit...)
		case opYear:
			dst = appendNum(dst, year, o.width, o.pad)
		case opYear2:
			dst = appendNum(dst, year%100, o.width, o.pad)
		case opMonth:
			dst = appendNum(dst, int(month), o.width, o.pad)
		case opMonthShort:
			dst = append(dst, monthShort[month-1]...)
		case opMonthLong:
			dst = append(dst, monthLong[month-1]...)
		case opDay:
			dst = appendNum(dst, day, o.width, o.pad)
		case opYearDay:
			dst = appendNum(dst, t.YearDay(), o.width, o.pad)
		case opHour:
			dst = appendNum(dst, hour, o.width, o.pad)
		case opHour12:
			h := hour % 12
			if h == 0 {
				h = 12
			}
			dst = appendNum(dst, h, o.width, o.pad)
		case opMinute:
			dst = appendNum(dst, minute, o.width, o.pad)
		case opSecond:
			dst = appendNum(dst, sec, o.width, o.pad)
		case opFrac:
			v := ns
			for w := 9; w > o.width; w-- {
				v /= 10
			}
			dst = appendNum(dst, v, o.width, padZero)
		case opFracAuto:
			switch {
			case ns == 0:
			case ns%1e6 == 0:
				dst = append(dst, '.')
				dst = appendNum(dst, ns/1e6, 3, padZero)
			case ns%1e3 == 0:
				dst = append(dst, '.')
				dst = appendNum(dst, ns/1e3, 6, padZero)
			default:
				dst = append(dst, '.')
				dst = appendNum(dst, ns, 9, padZero)
			}
		case opAmPm, opAmPmLower:
			p := "AM"
			if hour >= 12 {
				p = "PM"
			}
			if o.kind == opAmPmLower {
				p = strings.ToLower(p)
			}
			dst = append(dst, p...)
		case opWeekdayShort:
			dst = append(dst, dayShort[t.Weekday()]...)
		case opWeekdayLong:
			dst = append(dst, dayLong[t.Weekday()]...)
		case opWeekdayNum:
			wd := int(t.Weekday())
			if wd == 0 {
				wd = 7
			}
			dst = appendNum(dst, wd, 1, padNone)
		case opOffset:
			dst = append(dst, "+0000"...)
		case opOffsetColon:
			dst = append(dst, "+00:00"...)
		case opOffsetHour:
			dst = append(dst, "+00"...)
		case opOffsetMinute:
			dst = append(dst, "00"...)
		case opZoneName:
			dst = append(dst, "UTC"...)
		case opUnix:
			dst = strconv.AppendInt(dst, t.Unix(), 10)
		}
	}
	return dst
}

func appendNum(dst []byte, v, width int, pad byte) []byte {
	var buf [20]byte
	i := len(buf)
	if v == 0 {
		i--
		buf[i] = '0'
	}
	for v > 0 {
		i--
		buf[i] = byte('0' + v%10)
		v /= 10
	}
	if pad != padNone {
		for n := len(buf) - i; n < width; n++ {
			dst = append(dst, pad)
		}
	}
	return append(dst, buf[i:]...)
}
