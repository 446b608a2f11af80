package output

// stream is the plaintext of one TLS connection slot (a lane): frames
// already written that the peer may not have, then frames not written yet.
// Offsets are absolute positions in everything the lane was ever given, so
// they survive reconnections.
//
//	keep            base                written             end
//	|   margin      |  unacknowledged   |  unwritten        |
//
// A frame stays unacknowledged until the TLS records carrying its last byte
// are known to be acknowledged by the peer's TCP. The mapping from plaintext
// to ciphertext is kept per write call: after each call to tls.Conn.Write,
// a mark records how much plaintext and how much ciphertext (counted below
// TLS, on the socket) had been written. crypto/tls hands every record of a
// Write to the socket before returning, so once the peer acknowledged the
// ciphertext up to a mark, it holds every plaintext byte up to that mark.
//
// Acknowledged frames are kept a while longer, as a margin: the peer's
// kernel may hold them unread, and a server that closes or dies then loses
// them. The lane sizes the margin from the server's receive window. After a
// failure, margin and unacknowledged frames are all sent again.
type stream struct {
	buf  []byte // buf[head:] holds the bytes from absolute offset keep on
	head int
	keep int64 // a frame start: the first byte kept
	base int64 // a frame start: the first byte the peer may not have received

	ends  []int64 // absolute ends of the kept frames: ends[eh:]
	eh    int
	bi    int    // index in ends of the first frame from base
	marks []mark // writes on the current connection not known acknowledged: marks[mh:]
	mh    int

	written int64 // absolute offset written to the current connection
}

// mark says that once the peer acknowledged cipher bytes of the current
// connection, it has the plaintext up to plain.
type mark struct {
	plain, cipher int64
}

// end returns the absolute offset after the last byte.
func (s *stream) end() int64 { return s.keep + int64(len(s.buf)-s.head) }

// frames returns the number of frames not known to be received (not
// acknowledged or not written).
func (s *stream) frames() int { return len(s.ends) - s.bi }

// size returns the number of bytes not known to be received.
func (s *stream) size() int { return int(s.end() - s.base) }

// margin returns the number of frames acknowledged but kept.
func (s *stream) margin() int { return s.bi - s.eh }

// unwritten returns the bytes not written to the current connection.
func (s *stream) unwritten() []byte { return s.buf[s.head+int(s.written-s.keep):] }

// add appends whole frames: data holds them back to back and ends[i]-off is
// the end of frame i within data.
func (s *stream) add(data []byte, ends []int, off int) {
	start := s.end()
	if s.head > 0 && len(s.buf)+len(data) > cap(s.buf) {
		// Reuse the room dropped frames left rather than grow.
		n := copy(s.buf, s.buf[s.head:])
		s.buf, s.head = s.buf[:n], 0
	}
	s.buf = append(s.buf, data...)
	if s.eh > 0 && len(s.ends)+len(ends) > cap(s.ends) {
		n := copy(s.ends, s.ends[s.eh:])
		s.ends, s.bi, s.eh = s.ends[:n], s.bi-s.eh, 0
	}
	for _, e := range ends {
		s.ends = append(s.ends, start+int64(e-off))
	}
}

// wrote records that plaintext up to s.written+n went out in one write
// call, after which the socket had been handed cipher bytes in total.
func (s *stream) wrote(n int, cipher int64) {
	s.written += int64(n)
	if s.mh > 0 && len(s.marks) == cap(s.marks) {
		k := copy(s.marks, s.marks[s.mh:])
		s.marks, s.mh = s.marks[:k], 0
	}
	s.marks = append(s.marks, mark{plain: s.written, cipher: cipher})
}

// acked records that the peer's TCP acknowledged the current connection's
// cipher bytes up to cipher, and drops the frames that end margin bytes or
// more before the first frame it may lack.
func (s *stream) acked(cipher, margin int64) {
	for s.mh < len(s.marks) && s.marks[s.mh].cipher <= cipher {
		for s.bi < len(s.ends) && s.ends[s.bi] <= s.marks[s.mh].plain {
			s.base = s.ends[s.bi]
			s.bi++
		}
		s.mh++
	}
	keep := s.keep
	for s.eh < s.bi && s.ends[s.eh] <= s.base-margin {
		keep = s.ends[s.eh]
		s.eh++
	}
	s.head += int(keep - s.keep)
	s.keep = keep
	if s.head == len(s.buf) {
		s.buf, s.head = s.buf[:0], 0
	}
	if s.eh == len(s.ends) {
		s.ends, s.eh, s.bi = s.ends[:0], 0, 0
	}
	if s.mh == len(s.marks) {
		s.marks, s.mh = s.marks[:0], 0
	}
}

// rewind makes every frame kept, margin included, count as unwritten, for
// the next connection: it starts on a frame boundary with the first frame
// the peer may lack.
func (s *stream) rewind() {
	s.base, s.bi = s.keep, s.eh
	s.written = s.base
	s.marks, s.mh = s.marks[:0], 0
}

// writtenFrames returns how many frames not known to be received start
// before offset to.
func (s *stream) writtenFrames(to int64) int {
	n, start := 0, s.base
	for i := s.bi; i < len(s.ends) && start < to; i++ {
		n++
		start = s.ends[i]
	}
	return n
}

// drop forgets everything (Close gave up) and returns what was not known
// to be received.
func (s *stream) drop() (frames, bytes int) {
	frames, bytes = s.frames(), s.size()
	end := s.end() // offsets keep increasing
	s.buf, s.head = s.buf[:0], 0
	s.ends, s.eh, s.bi = s.ends[:0], 0, 0
	s.marks, s.mh = s.marks[:0], 0
	s.keep, s.base, s.written = end, end, end
	return frames, bytes
}
