package input

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/flowgo/flowgo/internal/logfile"
)

// fileID identifies a file whatever its name: device and inode. An inode
// number can be reused once a file is deleted, so a checkpoint also keeps a
// fingerprint of the file's first bytes.
type fileID struct {
	Dev, Ino uint64
}

func (id fileID) String() string { return fmt.Sprintf("%d:%d", id.Dev, id.Ino) }

// fpMax is how many leading bytes of a file its fingerprint covers at most.
const fpMax = 1024

// fingerprint is a hash of a file's first Len bytes (FNV-1a, 64 bits).
// Len grows with the file up to fpMax; Len 0 means an empty file.
type fingerprint struct {
	Len int
	Sum uint64
}

func fpHash(b []byte) uint64 {
	h := uint64(14695981039346656037)
	for _, c := range b {
		h ^= uint64(c)
		h *= 1099511628211
	}
	return h
}

// checkpoint is where reading a file resumes: every byte before Offset went
// into records the pipeline confirmed (Sink.Put returned nil), or was
// rejected.
type checkpoint struct {
	ID     fileID
	FP     fingerprint
	Offset int64
	Gen    uint32 // bumped when the file is truncated or replaced
	Path   string // where it was last seen, for people reading the file
}

// checkpointFile is the JSON written to file_checkpoint_path.
type checkpointFile struct {
	Version int              `json:"version"`
	Src     string           `json:"src"`
	Files   []checkpointJSON `json:"files"`
}

type checkpointJSON struct {
	Dev    uint64 `json:"dev"`
	Ino    uint64 `json:"ino"`
	FPLen  int    `json:"fp_len"`
	FP     string `json:"fp"` // 16 hex digits
	Offset int64  `json:"offset"`
	Path   string `json:"path"`
}

const checkpointVersion = 1

// parseCheckpoints reads a checkpoint file's content. Entries that make no
// sense (negative offsets, a fingerprint longer than fpMax) are an error:
// the file was not written by flowgo, or was damaged.
func parseCheckpoints(data []byte) (map[fileID]*checkpoint, error) {
	var cf checkpointFile
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&cf); err != nil {
		return nil, fmt.Errorf("not a checkpoint file: %w", err)
	}
	if dec.More() {
		return nil, errors.New("not a checkpoint file: data after the JSON object")
	}
	if cf.Version != checkpointVersion {
		return nil, fmt.Errorf("checkpoint file version %d unknown (this flowgo writes %d)", cf.Version, checkpointVersion)
	}
	out := make(map[fileID]*checkpoint, len(cf.Files))
	for i, e := range cf.Files {
		if e.Offset < 0 || e.FPLen < 0 || e.FPLen > fpMax {
			return nil, fmt.Errorf("entry %d (%s): offset %d or fp_len %d out of range", i, e.Path, e.Offset, e.FPLen)
		}
		sum, err := strconv.ParseUint(e.FP, 16, 64)
		if err != nil || len(e.FP) != 16 {
			return nil, fmt.Errorf("entry %d (%s): fp %q is not 16 hex digits", i, e.Path, e.FP)
		}
		id := fileID{e.Dev, e.Ino}
		if _, dup := out[id]; dup {
			return nil, fmt.Errorf("entry %d (%s): file %s listed twice", i, e.Path, id)
		}
		out[id] = &checkpoint{ID: id, FP: fingerprint{Len: e.FPLen, Sum: sum}, Offset: e.Offset, Path: e.Path}
	}
	return out, nil
}

// marshalCheckpoints renders entries, sorted by path then identity so that
// the file reads well and compares stably.
func marshalCheckpoints(src string, entries []checkpoint) []byte {
	sort.Slice(entries, func(i, j int) bool {
		a, b := entries[i], entries[j]
		if a.Path != b.Path {
			return a.Path < b.Path
		}
		if a.ID.Dev != b.ID.Dev {
			return a.ID.Dev < b.ID.Dev
		}
		return a.ID.Ino < b.ID.Ino
	})
	cf := checkpointFile{Version: checkpointVersion, Src: src, Files: make([]checkpointJSON, 0, len(entries))}
	for _, e := range entries {
		cf.Files = append(cf.Files, checkpointJSON{Dev: e.ID.Dev, Ino: e.ID.Ino, FPLen: e.FP.Len,
			FP: fmt.Sprintf("%016x", e.FP.Sum), Offset: e.Offset, Path: e.Path})
	}
	data, err := json.MarshalIndent(cf, "", " ")
	if err != nil {
		panic(err) // cannot happen: plain data
	}
	return append(data, '\n')
}

// ckOp is one change to the checkpoints, applied in order by the goroutine
// that hands batches to the pipeline, after the batch it came with was
// confirmed.
type ckOp struct {
	kind   ckOpKind
	id     fileID
	gen    uint32
	offset int64       // ckMark
	path   string      // ckMark
	fp     fingerprint // ckFP
	entry  checkpoint  // ckSet
}

type ckOpKind uint8

const (
	ckMark ckOpKind = iota // move id's offset, and note its path (same generation only)
	ckFP                   // extend id's fingerprint (same generation only)
	ckSet                  // add or replace id's entry
	ckDel                  // forget id
)

// checkpointStore holds the checkpoints in memory and writes them to one
// file, atomically (a temporary file, fsync, rename, fsync of the
// directory). A lock file next to it keeps a second input, in this process
// or another, from using the same file.
type checkpointStore struct {
	path string
	src  string

	mu      sync.Mutex
	entries map[fileID]*checkpoint
	dirty   bool
	saves   int64 // successful writes, for tests

	lock *os.File
}

// openCheckpoints locks path and loads it. existed tells whether there was
// a checkpoint file (a previous run); a damaged one is set aside (renamed
// with a ".damaged" suffix), reported in warn, and reading starts without
// checkpoints.
func openCheckpoints(path, src string) (st *checkpointStore, existed bool, warn error, err error) {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, false, nil, fmt.Errorf("file_checkpoint_path: %w", err)
	}
	// Opened as flowgo opens every file it writes: mode 0640, and as root
	// no symbolic link followed in a directory others can write.
	lock, err := logfile.OpenAppend(path+".lock", logfile.DefaultMode)
	if err != nil {
		return nil, false, nil, fmt.Errorf("file_checkpoint_path: %w", err)
	}
	if err := lockFile(lock); err != nil {
		lock.Close()
		if errors.Is(err, errLocked) {
			return nil, false, nil, fmt.Errorf("file_checkpoint_path %s is in use by another file input (in this or another flowgo process): give each its own", path)
		}
		return nil, false, nil, fmt.Errorf("file_checkpoint_path: locking %s.lock: %w", path, err)
	}
	st = &checkpointStore{path: path, src: src, entries: map[fileID]*checkpoint{}, lock: lock}
	data, err := os.ReadFile(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return st, false, nil, nil
	case err != nil:
		st.close()
		return nil, false, nil, fmt.Errorf("file_checkpoint_path: %w", err)
	}
	entries, perr := parseCheckpoints(data)
	if perr != nil {
		aside := path + ".damaged"
		if err := os.Rename(path, aside); err != nil {
			st.close()
			return nil, false, nil, fmt.Errorf("file_checkpoint_path %s is damaged (%v) and could not be set aside: %w", path, perr, err)
		}
		return st, true, fmt.Errorf("checkpoint file %s is damaged (%v); kept as %s, files without a checkpoint are read from the beginning", path, perr, aside), nil
	}
	st.entries = entries
	return st, true, nil, nil
}

// get returns a copy of id's checkpoint.
func (st *checkpointStore) get(id fileID) (checkpoint, bool) {
	st.mu.Lock()
	defer st.mu.Unlock()
	e, ok := st.entries[id]
	if !ok {
		return checkpoint{}, false
	}
	return *e, true
}

// apply carries out ops in order.
func (st *checkpointStore) apply(ops []ckOp) {
	if len(ops) == 0 {
		return
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	for i := range ops {
		op := &ops[i]
		switch op.kind {
		case ckMark:
			if e := st.entries[op.id]; e != nil && e.Gen == op.gen && (e.Offset != op.offset || e.Path != op.path) {
				e.Offset, e.Path = op.offset, op.path
				st.dirty = true
			}
		case ckFP:
			if e := st.entries[op.id]; e != nil && e.Gen == op.gen && e.FP != op.fp {
				e.FP = op.fp
				st.dirty = true
			}
		case ckSet:
			e := op.entry
			st.entries[op.id] = &e
			st.dirty = true
		case ckDel:
			if _, ok := st.entries[op.id]; ok {
				delete(st.entries, op.id)
				st.dirty = true
			}
		}
	}
}

// saveNow writes the checkpoints, changed or not.
func (st *checkpointStore) saveNow() error {
	st.mu.Lock()
	st.dirty = true
	st.mu.Unlock()
	return st.save()
}

// save writes the checkpoints if they changed since the last save.
func (st *checkpointStore) save() error {
	st.mu.Lock()
	if !st.dirty {
		st.mu.Unlock()
		return nil
	}
	entries := make([]checkpoint, 0, len(st.entries))
	for _, e := range st.entries {
		entries = append(entries, *e)
	}
	st.dirty = false
	st.mu.Unlock()
	if err := writeFileAtomic(st.path, marshalCheckpoints(st.src, entries)); err != nil {
		st.mu.Lock()
		st.dirty = true
		st.mu.Unlock()
		return err
	}
	st.mu.Lock()
	st.saves++
	st.mu.Unlock()
	return nil
}

// offsets returns every checkpoint, for tests and logs.
func (st *checkpointStore) snapshot() map[fileID]checkpoint {
	st.mu.Lock()
	defer st.mu.Unlock()
	out := make(map[fileID]checkpoint, len(st.entries))
	for id, e := range st.entries {
		out[id] = *e
	}
	return out
}

func (st *checkpointStore) close() {
	if st.lock != nil {
		st.lock.Close() // releases the flock
		st.lock = nil
	}
}

// writeFileAtomic replaces path with data so that a crash at any moment
// leaves either the old or the new content: it writes a temporary file in
// the same directory, syncs it, renames it over path and syncs the
// directory.
func writeFileAtomic(path string, data []byte) error {
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return err
	}
	name := tmp.Name()
	ok := false
	defer func() {
		if !ok {
			tmp.Close()
			os.Remove(name)
		}
	}()
	if _, err := tmp.Write(data); err != nil {
		return err
	}
	if err := tmp.Chmod(logfile.DefaultMode); err != nil {
		return err
	}
	if err := tmp.Sync(); err != nil {
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Rename(name, path); err != nil {
		return err
	}
	ok = true
	if d, err := os.Open(dir); err == nil {
		d.Sync() // the rename's durability; some file systems refuse, nothing to do then
		d.Close()
	}
	return nil
}

// checkpointFileName turns a pipeline and input name into a file name:
// "web", "input[1]" → "web.input-1.checkpoints.json".
func checkpointFileName(pipeline, input string) string {
	clean := func(s string) string {
		s = strings.Map(func(r rune) rune {
			switch {
			case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-', r == '_', r == '.':
				return r
			}
			return '-'
		}, s)
		return strings.Trim(s, "-.")
	}
	name := clean(input)
	if name == "" {
		name = "input"
	}
	if p := clean(pipeline); p != "" {
		name = p + "." + name
	}
	return name + ".checkpoints.json"
}
