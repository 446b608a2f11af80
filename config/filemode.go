package config

import (
	"fmt"
	"io/fs"
	"strconv"
	"strings"
)

// FileMode is the value of a key that sets the mode of the files flowgo
// creates (file_mode, dead_letter_file_mode): an octal string ("0640") or a
// TOML octal integer (0o640). A decimal integer is refused: 640 would be
// mode 01200. The owner must be able to read and write (flowgo reopens the
// file), and others may not write.
type FileMode struct {
	m       fs.FileMode
	integer bool // written as a TOML integer: its literal must be octal
	err     error
}

// Mode returns a FileMode of m, for defaults.
func Mode(m fs.FileMode) FileMode { return FileMode{m: m} }

// Get returns the mode.
func (m FileMode) Get() fs.FileMode { return m.m }

// String returns the mode in octal: "0640".
func (m FileMode) String() string { return fmt.Sprintf("%04o", uint32(m.m)) }

// UnmarshalTOML implements toml.Unmarshaler; errors are reported by
// Section.Decode with the key's line.
func (m *FileMode) UnmarshalTOML(v any) error {
	*m = FileMode{}
	var n uint64
	switch v := v.(type) {
	case string:
		s := strings.TrimPrefix(strings.TrimPrefix(strings.TrimSpace(v), "0o"), "0O")
		var err error
		if n, err = strconv.ParseUint(s, 8, 32); err != nil || s == "" {
			m.err = fmt.Errorf("%q is not an octal file mode such as \"0640\"", v)
			return nil
		}
	case int64:
		if v < 0 {
			m.err = fmt.Errorf("%d is not a file mode: write it in octal, such as \"0640\"", v)
			return nil
		}
		n, m.integer = uint64(v), true
	default:
		m.err = fmt.Errorf("wrong type: expected an octal file mode such as \"0640\", got %s", tomlTypeName(fmt.Sprintf("%T", v)))
		return nil
	}
	switch {
	case n > 0o777:
		m.err = fmt.Errorf("%04o is not a permission mode: at most 0777 (setuid, setgid and sticky bits are not set on log files)", n)
	case n&0o600 != 0o600:
		m.err = fmt.Errorf("%04o does not let flowgo's user read and write the file (it reopens it): want at least 0600", n)
	case n&0o002 != 0:
		m.err = fmt.Errorf("%04o lets every user write the file: others may read at most, such as 0644", n)
	}
	m.m = fs.FileMode(n)
	return nil
}

// MarshalTOML implements toml.Marshaler: the mode as an octal string.
func (m FileMode) MarshalTOML() ([]byte, error) {
	return []byte(strconv.Quote(m.String())), nil
}

func (m *FileMode) decodeError() error { return m.err }

// checkLiteral refuses an integer not written in octal (0o640): TOML reads
// 640 as decimal.
func (m *FileMode) checkLiteral(lit string) error {
	if !m.integer || strings.HasPrefix(lit, "0o") {
		return nil
	}
	return fmt.Errorf("%s is a decimal integer, not an octal mode: write \"0%s\" or 0o%s", lit, lit, lit)
}
