// Package queue holds flowgo's disk queue: the batches inputs hand over are
// appended to segment files in a directory of their own, and each output
// reads them back from a persisted position that advances only when the
// output confirms delivery. What flowgo accepted therefore survives kill -9,
// a crash, a reboot (per the sync policy) and an outage longer than memory
// could hold, and is delivered at least once after a restart.
//
// # Layout of the directory
//
//	lock                    flock(2)ed by the process using the queue; holds its pid
//	00000000000000000001.seg  segments, appended in id order
//	output.pos              the read position of the output named "output"
//	00000000000000000007.seg.damaged  a segment with damage, kept aside once read
//
// # Segment format
//
// A segment starts with a 16-byte header ("FLOWGOQ" 0x02, then the segment
// id, little-endian) and holds frames, each
//
//	0xF7, kind, payload length (uint32 LE), CRC-32C of kind+length+payload (uint32 LE), payload
//
// A 'B' frame opens each batch an input handed over: its enqueue time, its
// record count and the name of the input. An 'R' frame holds one record
// (see record.go). Every record has its own checksum, so damage costs the
// records it touches and no more: a frame whose checksum fails is skipped
// and counted, and the reader finds the next good frame by its marker and
// checksum.
//
// # Recovery
//
// Opening never fails on damaged contents, only on an unusable directory:
// a torn tail (a partial frame at the end of the newest segment, left by a
// crash in the middle of a write) is truncated; damaged frames are skipped
// and counted; a position naming a segment that no longer exists resumes
// at the next one; a missing or damaged position file resumes at the
// oldest segment (duplicates, never a gap). Every case is logged once, with
// the path, and counted.
package queue
