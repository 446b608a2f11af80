package input

import (
	"hash/maphash"
	"sync"
	"time"
)

// Frames a sender sent again. librelp numbers every session from 1 and
// gives the frames it resends after a reconnect new transaction numbers,
// so numbers cannot tell a resend. What can: a session that ends without
// close leaves its sender holding every frame whose answer it had not
// read, and the sender's next session begins by sending exactly those, in
// order. So each session remembers the hashes of the last frames it
// queued; when it ends without close, they are kept for the peer's
// address, and the first frames of that address's next session that match
// them, in a row, are counted as resent. What this cannot see: resends to
// another flowgo process (or after a restart), clients behind one address
// reconnecting in an interleaved way, and, as a false match, a new message
// byte for byte equal to one of the last frames before the break.
// Resent frames are delivered like any other (at least once).

const (
	// relpRecentFrames is how many of a session's last frames are kept:
	// more than omrelp's window (128 by default) unless it was raised.
	relpRecentFrames = 1024
	// relpResendHosts bounds the addresses remembered, relpResendAge how
	// long.
	relpResendHosts = 1024
	relpResendAge   = time.Hour
)

var relpSeed = maphash.MakeSeed()

func relpHash(data []byte) uint64 { return maphash.Bytes(relpSeed, data) }

// relpRecent is a ring of the hashes of a session's last frames.
type relpRecent struct {
	h    []uint64
	next int
}

func (r *relpRecent) add(h uint64) {
	if len(r.h) < relpRecentFrames {
		r.h = append(r.h, h)
		return
	}
	r.h[r.next] = h
	r.next = (r.next + 1) % relpRecentFrames
}

// relpRecentSet is the frames of a broken session, by hash and count.
type relpRecentSet struct {
	n  map[uint64]int
	at time.Time
}

// remove reports whether h is in the set, and takes one of it out.
func (s *relpRecentSet) remove(h uint64) bool {
	c := s.n[h]
	if c == 0 {
		return false
	}
	if c == 1 {
		delete(s.n, h)
	} else {
		s.n[h] = c - 1
	}
	return true
}

func (s *relpRecentSet) empty() bool { return len(s.n) == 0 }

// relpResends holds the last frames of each address's last broken session.
type relpResends struct {
	mu     sync.Mutex
	byHost map[string]*relpRecentSet
	now    func() time.Time
}

func newRELPResends() *relpResends {
	return &relpResends{byHost: map[string]*relpRecentSet{}, now: time.Now}
}

// put keeps r's frames for host, replacing what host had.
func (t *relpResends) put(host string, r *relpRecent) {
	if len(r.h) == 0 {
		return
	}
	set := &relpRecentSet{n: make(map[uint64]int, len(r.h)), at: t.now()}
	for _, h := range r.h {
		set.n[h]++
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if _, ok := t.byHost[host]; !ok && len(t.byHost) >= relpResendHosts {
		oldest := ""
		for k, v := range t.byHost {
			if oldest == "" || v.at.Before(t.byHost[oldest].at) {
				oldest = k
			}
		}
		delete(t.byHost, oldest)
	}
	t.byHost[host] = set
}

// take removes and returns host's frames, or nil.
func (t *relpResends) take(host string) *relpRecentSet {
	t.mu.Lock()
	defer t.mu.Unlock()
	set := t.byHost[host]
	delete(t.byHost, host)
	if set == nil || t.now().Sub(set.at) > relpResendAge {
		return nil
	}
	return set
}
