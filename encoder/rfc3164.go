package encoder

import (
	"time"

	"github.com/flowgo/flowgo"
	"github.com/flowgo/flowgo/config"
	"github.com/flowgo/flowgo/internal/timefmt"
)

func init() {
	Register("rfc3164", func(s *config.Section) (Encoder, error) { return NewRFC3164(s) })
}

// RFC3164 writes a record as a BSD syslog line:
//
//	[PREPEND]<PRI>Mmm dd hh:mm:ss HOSTNAME TAG: [MSGID ][SD ]MSG
//
// PREPEND is the current time formatted by syslog_prepend_timestamp, when
// set, directly followed by the rest. The PRI is left out when both
// facility and severity are missing (as Flowgger does); when only one is,
// the other defaults to user (1) or notice (5). The timestamp is the
// record's time in UTC (the encoding time when it has none), with the day
// space-padded as the RFC wants ("Aug  6", "Aug 16"; Flowgger 0.3 writes
// "Aug  16"). An empty hostname is written "-"; characters outside
// printable ASCII in it become '_'. The TAG is "app[procid]: " or "app: ";
// with no app name but a procid it is "-[procid]: ", and with neither there
// is no TAG. In the TAG, space, ':', '[', ']' and non-printable characters
// become '_', so that it parses back. As in Flowgger, the MSGID and the
// structured data (written as for RFC 5424) go at the start of the
// content, which RFC 3164 has no other place for. MSG is written as it is.
type RFC3164 struct {
	prepend *timefmt.Format
	sdID    string
	now     clock
}

// NewRFC3164 builds an RFC 3164 encoder from the [output] keys
// syslog_prepend_timestamp (or its old name rfc3164_prepend_timestamp) and
// syslog_sd_id.
func NewRFC3164(s *config.Section) (*RFC3164, error) {
	s = section(s)
	ignoreOthers(s, "rfc3164", "syslog_prepend_timestamp", "rfc3164_prepend_timestamp", "syslog_sd_id")
	f, err := prependFormat(s)
	if err != nil {
		return nil, err
	}
	id, err := sdID(s)
	if err != nil {
		return nil, err
	}
	return &RFC3164{prepend: f, sdID: id, now: time.Now}, nil
}

// tagNames is what an app name or procid in a TAG may hold.
var tagNames = func() *nameSet {
	s := *printASCII
	s[':'], s['['], s[']'] = false, false, false
	return &s
}()

const months = "JanFebMarAprMayJunJulAugSepOctNovDec"

// Encode appends the RFC 3164 line for r to dst. It never fails.
func (e *RFC3164) Encode(dst []byte, r *flowgo.Record) ([]byte, error) {
	var now time.Time
	if e.prepend != nil || r.Time.IsZero() {
		now = e.now()
	}
	if e.prepend != nil {
		dst = e.prepend.Append(dst, now)
	}
	dst = appendPRI(dst, r, false)

	t := r.Time
	if t.IsZero() {
		t = now
	}
	t = t.UTC()
	_, month, day := t.Date()
	hour, minute, sec := t.Clock()
	dst = append(dst, months[3*(month-1):3*month]...)
	dst = append(dst, ' ')
	if day < 10 {
		dst = append(dst, ' ', byte('0'+day))
	} else {
		dst = append2(dst, day)
	}
	dst = append(dst, ' ')
	dst = append2(dst, hour)
	dst = append(dst, ':')
	dst = append2(dst, minute)
	dst = append(dst, ':')
	dst = append2(dst, sec)
	dst = append(dst, ' ')
	dst = appendHeader(dst, r.Hostname, -1)

	if r.AppName != "" || r.ProcID != "" {
		dst = append(dst, ' ')
		if r.AppName == "" {
			dst = append(dst, '-')
		} else {
			dst = tagNames.append(dst, r.AppName, -1)
		}
		if r.ProcID != "" {
			dst = append(dst, '[')
			dst = tagNames.append(dst, r.ProcID, -1)
			dst = append(dst, ']')
		}
		dst = append(dst, ':')
	}
	if r.MsgID != "" {
		dst = append(dst, ' ')
		dst = append(dst, r.MsgID...)
	}
	if len(r.SD) > 0 {
		n := len(dst)
		dst = append(dst, ' ')
		if dst = appendSD(dst, r.SD, e.sdID); len(dst) == n+1 {
			dst = dst[:n]
		}
	}
	if r.Msg != "" {
		dst = append(dst, ' ')
		dst = append(dst, r.Msg...)
	}
	return dst, nil
}
