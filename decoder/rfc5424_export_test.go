package decoder

import "time"

// NewRFC5424AtTime returns an RFC5424 decoder whose receive time, used for
// NILVALUE timestamps, is always t: the external tests need reproducible
// records and cannot reach the unexported clock.
func NewRFC5424AtTime(t time.Time) *RFC5424 { return &RFC5424{now: func() time.Time { return t }} }
