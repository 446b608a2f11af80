package decoder

import "time"

// SetRFC3164Clock makes d infer missing years as if the time were now(),
// so that tests do not depend on the day they run.
func SetRFC3164Clock(d *RFC3164, now func() time.Time) { d.now = now }

// RFC3164ZoneToken reports whether tok, standing after a timestamp, would
// be read as a time zone rather than as a hostname.
func RFC3164ZoneToken(tok string) bool {
	if bsdZones[tok] != nil {
		return true
	}
	if len(tok) > 0 && (tok[0] == '+' || tok[0] == '-') {
		j, loc := bsdOffset([]byte(tok), 0)
		return loc != nil && j == len(tok)
	}
	var c bsdZoneCache
	return c.lookup([]byte(tok)) != nil
}

// TagRule returns the decoder's rfc3164_tag.
func (d *RFC3164) TagRule() string {
	if d.firstWord {
		return RFC3164TagFirstWord
	}
	return RFC3164TagColon
}
