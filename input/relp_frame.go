package input

import (
	"errors"
	"fmt"
	"io"
	"strconv"
)

// RELP framing, as librelp (rsyslog's RELP library, doc/relp.md and
// src/relpframe.c) reads and writes it:
//
//	FRAME   = TXNR SP COMMAND SP DATALEN [SP DATA] LF
//	TXNR    = 1*9DIGIT      ; 0 is reserved for hints from the server
//	COMMAND = 1*32ALPHA
//	DATALEN = 1*9DIGIT      ; when 0, LF follows DATALEN directly
//
// The receiver reads frames from a stream of any chunking, keeps at most
// max bytes of a frame's data (the rest of a longer frame is read and
// discarded, so the stream stays in step), and never holds more than about
// max plus one read buffer. Beyond a small buffer of its own, that buffer
// comes from the stream inputs' memory budget (Buffers) when one is set.

// Limits of the RELP grammar.
const (
	relpMaxDigits  = 9
	relpMaxCommand = 32
	relpMaxTxnr    = 999_999_999
	relpMaxHeader  = relpMaxDigits + 1 + relpMaxCommand + 1 + relpMaxDigits + 1
)

// relpNextTxnr returns the transaction number that follows t. RELP's
// specification latches at 999,999,999 and goes on with 1. (librelp 1.11
// computes 1,000,000,000 after 999,999,999, a number it cannot write in
// the 9 digits the grammar allows, so its sessions end there in practice.)
func relpNextTxnr(t int) int {
	if t >= relpMaxTxnr {
		return 1
	}
	return t + 1
}

// relpFrame is one frame as read. cmd and data point into the reader's
// buffer and are valid until the next call of next.
type relpFrame struct {
	txnr   int
	cmd    []byte
	data   []byte // the first max bytes of the data
	size   int    // DATALEN: the data's length as sent
	offset int64  // stream offset of the frame's first byte
	number int64  // 1-based count of frames in the stream
}

// truncated reports whether data holds less than the frame carried.
func (f *relpFrame) truncated() bool { return len(f.data) < f.size }

// relpFrameError is a stream that is not RELP; the session cannot go on.
type relpFrameError struct {
	Offset int64 // stream offset of the frame's first byte
	Frame  int64 // 1-based number of the frame
	Reason string
}

func (e *relpFrameError) Error() string {
	return fmt.Sprintf("relp: frame %d (at byte %d): %s", e.Frame, e.Offset, e.Reason)
}

// errRELPAbort ends reading when beforeRead says so.
var errRELPAbort = errors.New("relp: reading stopped")

// relpReader cuts a byte stream into RELP frames.
type relpReader struct {
	r   io.Reader
	max int

	// beforeRead, when set, is called before every read that may block
	// (no whole frame is buffered): the session hands its batch over and
	// answers there. When it returns false, next returns errRELPAbort.
	beforeRead func() bool
	// beforeWait, when set, is called before the reader waits for room in
	// its budget, which may take long: the session answers there too.
	beforeWait func()

	streamBuffer
	frames int64

	// After an oversized frame: data bytes still to discard, then the LF.
	skip        int
	skipTrailer bool
	skipFrame   relpFrame
}

func newRELPReader(r io.Reader, limit int) *relpReader {
	limit = min(max(limit, 1), relpMaxTxnr)
	frameCap := (relpMaxHeader + limit + 1 + 4095) &^ 4095
	return &relpReader{
		r: r, max: limit,
		streamBuffer: newStreamBuffer(frameCap, max(64<<10, frameCap)),
	}
}

// next returns the next frame. At the end of the stream it returns the
// read error (io.EOF for a clean end between frames, io.ErrUnexpectedEOF
// inside one); a stream that is not RELP gives a *relpFrameError. Either
// error is final.
func (rr *relpReader) next() (relpFrame, error) {
	for {
		f, err, ok := rr.parse()
		if err != nil {
			rr.err = err
			return relpFrame{}, err
		}
		if ok {
			return f, nil
		}
		if rr.err != nil {
			if errors.Is(rr.err, io.EOF) && (rr.end > rr.start || rr.skip > 0 || rr.skipTrailer) {
				return relpFrame{}, io.ErrUnexpectedEOF
			}
			return relpFrame{}, rr.err
		}
		rr.fill()
	}
}

// fill reads more of the stream, making room first.
func (rr *relpReader) fill() {
	rr.makeRoom(rr.beforeWait)
	if rr.beforeRead != nil && !rr.beforeRead() {
		rr.err = errRELPAbort
		return
	}
	rr.read(rr.r)
}

// parse cuts one frame from the buffer; ok is false when more bytes are
// needed.
func (rr *relpReader) parse() (f relpFrame, err error, ok bool) {
	if rr.skip > 0 || rr.skipTrailer {
		if !rr.discard() {
			return f, nil, false
		}
	}
	b := rr.buf[rr.start:rr.end]
	if len(b) == 0 {
		return f, nil, false
	}
	off := rr.base + int64(rr.start)
	bad := func(format string, args ...any) error {
		return &relpFrameError{Offset: off, Frame: rr.frames + 1, Reason: fmt.Sprintf(format, args...)}
	}

	// TXNR SP
	i := 0
	txnr := 0
	for ; i < len(b) && isDigit(b[i]); i++ {
		if i == relpMaxDigits {
			return f, bad("transaction number longer than %d digits", relpMaxDigits), false
		}
		txnr = txnr*10 + int(b[i]-'0')
	}
	if i == len(b) {
		return f, nil, false
	}
	if i == 0 {
		return f, bad("a transaction number must begin the frame, found %s", quoteByte(b[0])), false
	}
	if b[i] != ' ' {
		return f, bad("transaction number followed by %s, not a space", quoteByte(b[i])), false
	}
	i++

	// COMMAND SP
	cmdStart := i
	for ; i < len(b) && isAlpha(b[i]); i++ {
		if i-cmdStart == relpMaxCommand {
			return f, bad("command longer than %d letters", relpMaxCommand), false
		}
	}
	if i == len(b) {
		return f, nil, false
	}
	if i == cmdStart {
		return f, bad("command expected after the transaction number, found %s", quoteByte(b[i])), false
	}
	if b[i] != ' ' {
		return f, bad("command %q followed by %s, not a space", b[cmdStart:i], quoteByte(b[i])), false
	}
	cmdEnd := i
	i++

	// DATALEN, then LF (no data) or SP DATA LF
	lenStart := i
	size := 0
	for ; i < len(b) && isDigit(b[i]); i++ {
		if i-lenStart == relpMaxDigits {
			return f, bad("data length longer than %d digits", relpMaxDigits), false
		}
		size = size*10 + int(b[i]-'0')
	}
	if i == len(b) {
		return f, nil, false
	}
	if i == lenStart {
		return f, bad("data length expected after command %q, found %s", b[cmdStart:cmdEnd], quoteByte(b[i])), false
	}
	f = relpFrame{txnr: txnr, size: size, offset: off, number: rr.frames + 1}
	if size == 0 {
		if b[i] != '\n' {
			return f, bad("data length 0 followed by %s, not the LF that ends the frame", quoteByte(b[i])), false
		}
		f.cmd = b[cmdStart:cmdEnd]
		rr.start += i + 1
		rr.frames++
		return f, nil, true
	}
	if b[i] != ' ' {
		return f, bad("data length followed by %s, not a space", quoteByte(b[i])), false
	}
	i++
	dataStart := i
	if size > rr.max {
		// Keep the head, discard the rest as it arrives.
		if len(b)-dataStart < rr.max {
			return f, nil, false
		}
		f.cmd = b[cmdStart:cmdEnd]
		f.data = b[dataStart : dataStart+rr.max]
		rr.start += dataStart + rr.max
		rr.skip = size - rr.max
		rr.skipTrailer = true
		rr.skipFrame = f
		rr.frames++
		return f, nil, true
	}
	end := dataStart + size
	if len(b) <= end {
		return f, nil, false
	}
	if b[end] != '\n' {
		return f, bad("%d bytes of data followed by %s, not the LF that ends the frame", size, quoteByte(b[end])), false
	}
	f.cmd = b[cmdStart:cmdEnd]
	f.data = b[dataStart:end]
	rr.start += end + 1
	rr.frames++
	return f, nil, true
}

// discard drops the rest of an oversized frame; it reports whether that
// is done. A missing trailer is left for parse to report at the next frame.
func (rr *relpReader) discard() bool {
	n := min(rr.skip, rr.end-rr.start)
	rr.skip -= n
	rr.start += n
	if rr.skip > 0 || rr.start == rr.end {
		return false
	}
	rr.skipTrailer = false
	if rr.buf[rr.start] != '\n' {
		rr.err = &relpFrameError{Offset: rr.skipFrame.offset, Frame: rr.skipFrame.number,
			Reason: fmt.Sprintf("%d bytes of data followed by %s, not the LF that ends the frame", rr.skipFrame.size, quoteByte(rr.buf[rr.start]))}
		return false
	}
	rr.start++
	return true
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }
func isAlpha(c byte) bool { return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' }

// quoteByte names a byte for an error message.
func quoteByte(c byte) string {
	switch c {
	case '\n':
		return "LF"
	case ' ':
		return "a space"
	}
	return strconv.QuoteRune(rune(c))
}

// appendRELPFrame appends a frame to dst.
func appendRELPFrame(dst []byte, txnr int, cmd string, data []byte) []byte {
	dst = strconv.AppendInt(dst, int64(txnr), 10)
	dst = append(dst, ' ')
	dst = append(dst, cmd...)
	dst = append(dst, ' ')
	dst = strconv.AppendInt(dst, int64(len(data)), 10)
	if len(data) > 0 {
		dst = append(dst, ' ')
		dst = append(dst, data...)
	}
	return append(dst, '\n')
}

// appendRELPRsp appends a rsp frame answering txnr with code, a text and,
// for open, the offers after an LF.
func appendRELPRsp(dst []byte, txnr, code int, text string, offers string) []byte {
	n := 3 + 1 + len(text)
	if offers != "" {
		n += 1 + len(offers)
	}
	dst = strconv.AppendInt(dst, int64(txnr), 10)
	dst = append(dst, " rsp "...)
	dst = strconv.AppendInt(dst, int64(n), 10)
	dst = append(dst, ' ')
	dst = strconv.AppendInt(dst, int64(code), 10)
	dst = append(dst, ' ')
	dst = append(dst, text...)
	if offers != "" {
		dst = append(dst, '\n')
		dst = append(dst, offers...)
	}
	return append(dst, '\n')
}

// relpOffer is one offer of an open command: a feature and its values.
type relpOffer struct {
	name   string
	values []string
}

// parseRELPOffers reads the offers of an open command's data:
// lines of FEATURENAME ["=" VALUE *("," VALUE)].
func parseRELPOffers(data []byte) ([]relpOffer, error) {
	var offers []relpOffer
	for len(data) > 0 {
		line := data
		rest := []byte(nil)
		for i, c := range data {
			if c == '\n' {
				line, rest = data[:i], data[i+1:]
				break
			}
		}
		data = rest
		if len(line) == 0 {
			continue
		}
		name, vals := line, []byte(nil)
		for i, c := range line {
			if c == '=' {
				name, vals = line[:i], line[i+1:]
				break
			}
		}
		if len(name) == 0 || len(name) > 32 {
			return nil, fmt.Errorf("offer %q: a feature name of 1 to 32 bytes expected", line)
		}
		o := relpOffer{name: string(name)}
		start := 0
		for i := 0; i <= len(vals); i++ {
			if i == len(vals) || vals[i] == ',' {
				if v := vals[start:i]; len(v) > 0 {
					if len(v) > 255 {
						return nil, fmt.Errorf("offer %s: a value longer than 255 bytes", o.name)
					}
					o.values = append(o.values, string(v))
				}
				start = i + 1
			}
		}
		offers = append(offers, o)
	}
	return offers, nil
}
