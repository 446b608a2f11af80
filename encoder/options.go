package encoder

import (
	"slices"
	"strings"
	"time"

	"github.com/flowgo/flowgo/config"
	"github.com/flowgo/flowgo/internal/timefmt"
)

// Keys of the [output] table that only some formats read. A format that
// does not read one accepts it with a warning, as Flowgger ignores it:
// Flowgger's example config carries blocks for every format, and a
// flowgger.toml must run unchanged.
var formatKeys = []struct{ key, users string }{
	{"gelf_extra", "gelf"},
	{"ltsv_extra", "ltsv"},
	{"capnp_extra", "capnp"},
	{"syslog_prepend_timestamp", "rfc3164 and passthrough"},
	{"rfc3164_prepend_timestamp", "rfc3164 and passthrough"},
	{"syslog_sd_id", "rfc5424 and rfc3164"},
}

// section returns s, or an empty [output] section when s is nil, so that
// the constructors can be called without a config (pipe mode, tests).
func section(s *config.Section) *config.Section {
	if s == nil {
		return config.Empty().Output
	}
	return s
}

// ignoreOthers accepts, with a warning when set, the format-specific keys
// that the format does not read; own lists the ones it does.
func ignoreOthers(s *config.Section, format string, own ...string) {
	for _, k := range formatKeys {
		if !slices.Contains(own, k.key) {
			s.Legacy("used only by output.format "+k.users+", not "+format, k.key)
		}
	}
}

// prependFormat reads syslog_prepend_timestamp, or its Flowgger 0.2.8-0.2.10
// name rfc3164_prepend_timestamp (with a warning), in either time-format
// syntax. It returns nil when neither is set or the layout is empty.
func prependFormat(s *config.Section) (*timefmt.Format, error) {
	var c struct {
		Prepend string `toml:"syslog_prepend_timestamp"`
		Legacy  string `toml:"rfc3164_prepend_timestamp"`
	}
	if err := s.Decode(&c); err != nil {
		return nil, err
	}
	key, layout := "syslog_prepend_timestamp", c.Prepend
	if s.Has("rfc3164_prepend_timestamp") {
		if s.Has("syslog_prepend_timestamp") {
			s.Warn("rfc3164_prepend_timestamp", "ignored: syslog_prepend_timestamp is set as well and wins")
		} else {
			s.Warn("rfc3164_prepend_timestamp", "old name of syslog_prepend_timestamp (Flowgger 0.2.8 to 0.2.10); rename it")
			key, layout = "rfc3164_prepend_timestamp", c.Legacy
		}
	}
	if layout == "" {
		return nil, nil
	}
	f, err := timefmt.Parse(layout)
	if err != nil {
		return nil, s.Errorf(key, "%v", err)
	}
	return f, nil
}

// defaultSDID is the SD-ID the syslog encoders give structured data that
// has none (GELF and LTSV fields). RFC 5424 wants "name@PEN" for SD-IDs
// that IANA did not register; 32473 is the enterprise number RFC 5612
// reserves for documentation, so it can never clash with a real one. Set
// syslog_sd_id to use your own.
const defaultSDID = "fields@32473"

// sdID reads syslog_sd_id and checks that it is a valid SD-ID.
func sdID(s *config.Section) (string, error) {
	c := struct {
		ID string `toml:"syslog_sd_id"`
	}{defaultSDID}
	if err := s.Decode(&c); err != nil {
		return "", err
	}
	if c.ID == "" || len(c.ID) > 32 || !sdNames.valid(c.ID) {
		return "", s.Errorf("syslog_sd_id", "%q is not an SD-ID: 1 to 32 printable ASCII characters other than space, '=', ']' and '\"'", c.ID)
	}
	if name, pen, ok := strings.Cut(c.ID, "@"); ok && (name == "" || pen == "" || strings.Trim(pen, "0123456789") != "") {
		return "", s.Errorf("syslog_sd_id", "%q is not an SD-ID: the part after '@' must be a private enterprise number", c.ID)
	} else if !ok {
		s.Warn("syslog_sd_id", "%q has no @ and a private enterprise number; RFC 5424 reserves such names for IANA", c.ID)
	}
	return c.ID, nil
}

// A clock gives the current time. Encoders read it for the prepend
// timestamp and for records with no time; tests replace it.
type clock func() time.Time
