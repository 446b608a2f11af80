package output

// stream is the plaintext of one TLS connection slot (a lane): the frames
// already written that the peer may not have received, then the frames not
// written yet. Offsets are absolute positions in everything the lane was
// ever given, so they survive reconnections.
//
// A frame leaves the stream only once the TLS records carrying its last byte
// are known to be acknowledged by the peer's TCP. The mapping from plaintext
// to ciphertext is kept per write call: after each call to tls.Conn.Write,
// a mark records how much plaintext and how much ciphertext (counted below
// TLS, on the socket) had been written. crypto/tls hands every record of a
// Write to the socket before returning, so once the peer acknowledged the
// ciphertext up to a mark, it holds every plaintext byte up to that mark.
type stream struct {
	buf  []byte // buf[head:] holds the bytes from absolute offset base on
	head int
	base int64 // a frame start: the first byte the peer may lack

	ends  []int64 // absolute ends of the frames in the stream: ends[eh:]
	eh    int
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
func (s *stream) end() int64 { return s.base + int64(len(s.buf)-s.head) }

// frames returns the number of frames held (unacknowledged or unwritten).
func (s *stream) frames() int { return len(s.ends) - s.eh }

// size returns the number of bytes held.
func (s *stream) size() int { return len(s.buf) - s.head }

// unwritten returns the bytes not written to the current connection.
func (s *stream) unwritten() []byte { return s.buf[s.head+int(s.written-s.base):] }

// add appends whole frames: data holds them back to back and ends[i]-off is
// the end of frame i within data.
func (s *stream) add(data []byte, ends []int, off int) {
	start := s.end()
	if s.head > 0 && len(s.buf)+len(data) > cap(s.buf) {
		// Reuse the room acknowledged frames left rather than grow.
		n := copy(s.buf, s.buf[s.head:])
		s.buf, s.head = s.buf[:n], 0
	}
	s.buf = append(s.buf, data...)
	if s.eh > 0 && len(s.ends)+len(ends) > cap(s.ends) {
		n := copy(s.ends, s.ends[s.eh:])
		s.ends, s.eh = s.ends[:n], 0
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

// acked drops the frames the peer holds, given that its TCP acknowledged
// the current connection's cipher bytes up to cipher.
func (s *stream) acked(cipher int64) {
	plain := int64(-1)
	for s.mh < len(s.marks) && s.marks[s.mh].cipher <= cipher {
		plain = s.marks[s.mh].plain
		s.mh++
	}
	if plain < 0 {
		return
	}
	newBase := s.base
	for s.eh < len(s.ends) && s.ends[s.eh] <= plain {
		newBase = s.ends[s.eh]
		s.eh++
	}
	s.head += int(newBase - s.base)
	s.base = newBase
	if s.head == len(s.buf) {
		s.buf, s.head = s.buf[:0], 0
	}
	if s.eh == len(s.ends) {
		s.ends, s.eh = s.ends[:0], 0
	}
	if s.mh == len(s.marks) {
		s.marks, s.mh = s.marks[:0], 0
	}
}

// rewind makes every frame held count as unwritten, for the next
// connection: what the broken one carried is sent again from the first
// frame the peer may lack, so the new connection starts on a frame boundary.
func (s *stream) rewind() {
	s.written = s.base
	s.marks, s.mh = s.marks[:0], 0
}

// drop forgets everything (Close gave up) and returns what was lost.
func (s *stream) drop() (frames, bytes int) {
	frames, bytes = s.frames(), s.size()
	end := s.end() // offsets keep increasing
	s.buf, s.head = s.buf[:0], 0
	s.ends, s.eh = s.ends[:0], 0
	s.marks, s.mh = s.marks[:0], 0
	s.base, s.written = end, end
	return frames, bytes
}

// writtenFrames returns how many frames held had at least their first
// byte written to the current connection.
func (s *stream) writtenFrames() int {
	n, start := 0, s.base
	for i := s.eh; i < len(s.ends) && start < s.written; i++ {
		n++
		start = s.ends[i]
	}
	return n
}
