package queue

import (
	"encoding/binary"
	"errors"
	"hash/crc32"
	"io"
	"os"

	"github.com/flowgo/flowgo"
)

// A position file holds two slots of positionSlot bytes; each update
// writes the slot the previous one did not, with a higher sequence number.
// A write torn by a crash thus spoils at most the newest slot, and the
// other still holds the position before it. A slot:
//
//	"FGQP" version(1) pad(3) | seq | confirmed segment | confirmed offset |
//	sent segment | sent offset | CRC-32C of the bytes before it (uint32) pad(4)
const (
	positionSlot  = 56
	positionMagic = "FGQP\x01\x00\x00\x00"
)

// cursorState is what a position file records for one reader.
type cursorState struct {
	// confirmed: every record before it was delivered; reading resumes here.
	confirmed flowgo.QueuePos
	// sent: records before it were handed to the output, perhaps not
	// confirmed: after a restart, those from confirmed to sent are replays.
	sent flowgo.QueuePos
}

type positionFile struct {
	f    *os.File
	path string
	seq  uint64
	buf  [positionSlot]byte
}

var errPositionDamaged = errors.New("no valid slot")

// openPosition opens (creating) the position file at path and reads the
// newest valid slot. A missing file gives found false; a file with no
// valid slot gives errPositionDamaged alongside a usable positionFile.
func openPosition(path string) (pf *positionFile, st cursorState, found bool, err error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, st, false, err
	}
	pf = &positionFile{f: f, path: path}
	var data [2 * positionSlot]byte
	n, err := f.ReadAt(data[:], 0)
	if err != nil && !errors.Is(err, io.EOF) {
		f.Close()
		return nil, st, false, err
	}
	if n == 0 {
		return pf, st, false, nil
	}
	best, ok := -1, false
	var bestSeq uint64
	var states [2]cursorState
	for i := range 2 {
		slot := data[i*positionSlot : (i+1)*positionSlot]
		if (i+1)*positionSlot > n {
			break
		}
		s, seq, valid := parseSlot(slot)
		if valid && (!ok || seq > bestSeq) {
			best, bestSeq, ok = i, seq, true
			states[i] = s
		}
	}
	if !ok {
		return pf, st, true, errPositionDamaged
	}
	pf.seq = bestSeq
	return pf, states[best], true, nil
}

func parseSlot(b []byte) (cursorState, uint64, bool) {
	if string(b[:8]) != positionMagic {
		return cursorState{}, 0, false
	}
	if crc32.Checksum(b[:48], castagnoli) != binary.LittleEndian.Uint32(b[48:52]) {
		return cursorState{}, 0, false
	}
	le := binary.LittleEndian
	st := cursorState{
		confirmed: flowgo.QueuePos{Segment: le.Uint64(b[16:24]), Offset: int64(le.Uint64(b[24:32]))},
		sent:      flowgo.QueuePos{Segment: le.Uint64(b[32:40]), Offset: int64(le.Uint64(b[40:48]))},
	}
	return st, le.Uint64(b[8:16]), true
}

// write records st in the next slot. It is one pwrite(2): cheap, and
// kept by the page cache across kill -9; sync makes it durable.
func (pf *positionFile) write(st cursorState) error {
	pf.seq++
	b := pf.buf[:]
	le := binary.LittleEndian
	copy(b, positionMagic)
	le.PutUint64(b[8:16], pf.seq)
	le.PutUint64(b[16:24], st.confirmed.Segment)
	le.PutUint64(b[24:32], uint64(st.confirmed.Offset))
	le.PutUint64(b[32:40], st.sent.Segment)
	le.PutUint64(b[40:48], uint64(st.sent.Offset))
	le.PutUint32(b[48:52], crc32.Checksum(b[:48], castagnoli))
	clear(b[52:])
	_, err := pf.f.WriteAt(b, int64(pf.seq%2)*positionSlot)
	return err
}

func (pf *positionFile) sync() error { return pf.f.Sync() }

func (pf *positionFile) close() error { return pf.f.Close() }
