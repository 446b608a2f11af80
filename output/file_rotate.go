package output

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/flowgo/flowgo/internal/logfile"
	"github.com/flowgo/flowgo/internal/timefmt"
	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
)

// This file names rotated files the way Flowgger does, and compresses or
// prunes them in the background.

// splitName splits a file name as Rust's Path::file_stem and
// Path::extension do, which Flowgger's names are built from: the extension
// follows the last dot, unless that dot starts the name.
func splitName(name string) (stem, ext string) {
	i := strings.LastIndexByte(name, '.')
	if i <= 0 {
		return name, ""
	}
	return name[:i], name[i+1:]
}

func isDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// numbered returns the name of size-rotated file k: the extension of
// file_path replaced by k (out.log gives out.0), as Rust's set_extension.
func (o *File) numbered(k int) string {
	return filepath.Join(o.dir, o.stem+"."+strconv.Itoa(k))
}

// stampedName returns the time-rotated file name for t: <stem>-<stamp>.<ext>.
// Flowgger writes <stem>-<stamp>. (a trailing dot) when file_path has no
// extension; flowgo leaves the dot out.
func (o *File) stampedName(t time.Time) string {
	name := o.stem + "-" + o.stamp.Format(t)
	if o.ext != "" {
		name += "." + o.ext
	}
	return filepath.Join(o.dir, name)
}

// archiveSuffixes are the suffixes a rotated file may carry; rotation moves
// every variant, so a change of file_rotation_compress between runs keeps
// the numbering right.
var archiveSuffixes = [...]string{"", ".gz", ".zst"}

func suffixOf(compress string) string {
	switch compress {
	case "gzip":
		return ".gz"
	case "zstd":
		return ".zst"
	}
	return ""
}

// shiftLocked renames out.k to out.k+1 for every k below the first free
// slot, dropping the last one when all maxFiles slots are taken, then out.log
// to out.0. Flowgger renames every slot down from maxFiles; stopping at the
// first gap gives the same files when there is no gap and keeps the work
// proportional to the files present. The caller holds o.ns.
func (o *File) shiftLocked() {
	last := o.maxFiles - 1
	var taken [][len(archiveSuffixes)]bool // the variants present in each slot below the first free one
	for len(taken) < last {
		v, exists := o.variants(len(taken))
		if !exists {
			break
		}
		taken = append(taken, v)
	}
	if len(taken) == last {
		for _, sfx := range archiveSuffixes {
			o.fsOp("remove", os.Remove(o.numbered(last)+sfx))
		}
	}
	for k := len(taken) - 1; k >= 0; k-- {
		for i, sfx := range archiveSuffixes {
			if taken[k][i] {
				o.fsOp("rename", os.Rename(o.numbered(k)+sfx, o.numbered(k+1)+sfx))
			}
		}
	}
	o.fsOp("rename", os.Rename(o.path, o.numbered(0)))
}

// variants reports which variants of slot k exist, and whether any does.
func (o *File) variants(k int) (v [len(archiveSuffixes)]bool, exists bool) {
	name := o.numbered(k)
	for i, sfx := range archiveSuffixes {
		if _, err := os.Lstat(name + sfx); err == nil {
			v[i], exists = true, true
		}
	}
	return v, exists
}

// fsOp logs a failed rename or remove; a missing file is the usual case.
// Like Flowgger, rotation goes on: the data stays in some file.
func (o *File) fsOp(what string, err error) {
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		o.log.Warn("rotation: "+what+" failed", "error", err)
	}
}

// Stamps are matched by shape: two reference times far apart are
// formatted, and every position must be a digit (or padding) in both or the
// same character in both. Names, unpadded numbers and automatic fractions
// change the length or the text, so they have no fixed shape.
var (
	shapeRefA = time.Date(2003, time.January, 5, 3, 4, 5, 0, time.UTC)              // a Sunday morning
	shapeRefB = time.Date(2027, time.December, 29, 22, 58, 59, 123456789, time.UTC) // a Wednesday evening
)

// stampShape holds, per byte of a stamp, the literal byte, or anyDigit.
type stampShape []byte

const anyDigit = 0 // never in a stamp: NUL is rejected

func shapeOf(f *timefmt.Format) (stampShape, bool) {
	a, b := f.Format(shapeRefA), f.Format(shapeRefB)
	if len(a) != len(b) {
		return nil, false
	}
	s := make(stampShape, len(a))
	for i := range len(a) {
		switch {
		case a[i] == b[i] && !isDigitOrSpace(a[i]):
			s[i] = a[i]
		case isDigitOrSpace(a[i]) && isDigitOrSpace(b[i]):
			s[i] = anyDigit
		default:
			return nil, false
		}
	}
	return s, true
}

func isDigitOrSpace(c byte) bool { return c == ' ' || (c >= '0' && c <= '9') }

func (s stampShape) match(v string) bool {
	if s == nil || len(v) != len(s) {
		return false
	}
	for i := range len(s) {
		if s[i] == anyDigit {
			if !isDigitOrSpace(v[i]) {
				return false
			}
		} else if v[i] != s[i] {
			return false
		}
	}
	return true
}

// archiver compresses rotated files, one at a time, in its own goroutine,
// and with time rotation prunes the oldest beyond file_rotation_maxfiles.
// Each pass lists the directory, so files a previous run left behind are
// handled like new ones. The writer only pokes it.
type archiver struct {
	o      *File
	sfx    string
	kick   chan struct{}
	quit   chan struct{}
	done   chan struct{}
	ctx    context.Context
	cancel context.CancelFunc

	gz      *gzip.Writer
	zs      *zstd.Encoder
	buf     []byte
	skipped map[string]bool // collisions already reported, by name+size+mtime

	// cut is set by the goroutine when cancellation stopped it with work
	// left; read after done is closed.
	cut bool
}

// candidate is a rotated file found by a pass.
type candidate struct {
	path   string // time rotation: the file
	k      int    // size rotation: its number when listed ...
	shifts uint64 // ... and how many rotations had happened then
	packed string // an existing compressed variant, "" if none
}

func newArchiver(o *File) *archiver {
	ctx, cancel := context.WithCancel(context.Background())
	a := &archiver{
		o:       o,
		sfx:     suffixOf(o.compress),
		kick:    make(chan struct{}, 1),
		quit:    make(chan struct{}),
		done:    make(chan struct{}),
		ctx:     ctx,
		cancel:  cancel,
		skipped: map[string]bool{},
	}
	go a.run()
	return a
}

// poke asks for a pass, without waiting.
func (a *archiver) poke() {
	if a == nil {
		return
	}
	select {
	case a.kick <- struct{}{}:
	default:
	}
}

func (a *archiver) run() {
	defer close(a.done)
	defer a.cancel()
	for {
		select {
		case <-a.kick:
			a.pass()
		case <-a.quit:
			a.pass()
			return
		case <-a.ctx.Done():
			a.cut = true // the final pass did not run
			return
		}
	}
}

// stop lets the archiver finish its work until ctx ends, then interrupts it.
func (a *archiver) stop(ctx context.Context) error {
	close(a.quit)
	select {
	case <-a.done:
		return nil
	default:
	}
	select {
	case <-a.done:
		return nil
	case <-ctx.Done():
		a.cancel()
		<-a.done
		if !a.cut {
			return nil
		}
		return fmt.Errorf("file output: rotated files not all compressed: %w (the rest are compressed at the next start)", ctx.Err())
	}
}

func (a *archiver) tmpName() string {
	return filepath.Join(a.o.dir, "."+filepath.Base(a.o.path)+".compress.tmp")
}

func (a *archiver) pass() {
	o := a.o
	if err := os.Remove(a.tmpName()); err != nil && !errors.Is(err, fs.ErrNotExist) {
		o.log.Warn("removing a leftover temporary file failed", "error", err)
	}
	var cands []candidate
	var err error
	if o.rotTime > 0 {
		cands, err = a.listStamped()
	} else {
		cands, err = a.listNumbered()
	}
	if err != nil {
		o.log.Warn("listing rotated files failed", "error", err)
		return
	}
	if o.compress == "" {
		return
	}
	for _, c := range cands {
		if err := a.compress(c); err != nil {
			if a.ctx.Err() != nil {
				a.cut = true
				return
			}
			o.log.Warn("compressing a rotated file failed; it stays uncompressed", "error", err)
		}
	}
}

// listNumbered lists the size-rotated files below maxFiles that are not
// compressed, newest first. The listing is retried when a rotation moved the
// files meanwhile, then done under the lock.
func (a *archiver) listNumbered() ([]candidate, error) {
	o := a.o
	shifts := func() uint64 {
		o.ns.Lock()
		defer o.ns.Unlock()
		return o.shifts
	}
	for range 3 {
		s0 := shifts()
		ents, err := os.ReadDir(o.dir)
		if err != nil {
			return nil, err
		}
		if shifts() == s0 {
			return a.numberedIn(ents, s0), nil
		}
	}
	o.ns.Lock()
	defer o.ns.Unlock()
	ents, err := os.ReadDir(o.dir)
	if err != nil {
		return nil, err
	}
	return a.numberedIn(ents, o.shifts), nil
}

func (a *archiver) numberedIn(ents []fs.DirEntry, shifts uint64) []candidate {
	o := a.o
	prefix := o.stem + "."
	plain := map[int]bool{}
	packed := map[int]string{}
	for _, e := range ents {
		name, ok := strings.CutPrefix(e.Name(), prefix)
		if !ok || !e.Type().IsRegular() {
			continue
		}
		sfx := ""
		for _, s := range archiveSuffixes[1:] {
			if n, ok := strings.CutSuffix(name, s); ok {
				name, sfx = n, s
				break
			}
		}
		k, ok := parseIndex(name)
		if !ok || k >= o.maxFiles {
			continue
		}
		if sfx == "" {
			plain[k] = true
		} else {
			packed[k] = sfx
		}
	}
	var out []candidate
	for k := range plain {
		out = append(out, candidate{k: k, shifts: shifts, packed: packed[k]})
	}
	slices.SortFunc(out, func(x, y candidate) int { return x.k - y.k })
	return out
}

// parseIndex parses a rotation number as numbered writes it.
func parseIndex(s string) (int, bool) {
	if !isDigits(s) || len(s) > 9 || (len(s) > 1 && s[0] == '0') {
		return 0, false
	}
	k, err := strconv.Atoi(s)
	return k, err == nil
}

// listStamped lists the time-rotated files, prunes the oldest beyond maxFiles
// when asked to, and returns those not compressed, newest first. A file is
// recognised by its name: <stem>-<stamp of the configured shape>.<ext>.
func (a *archiver) listStamped() ([]candidate, error) {
	o := a.o
	ents, err := os.ReadDir(o.dir)
	if err != nil {
		return nil, err
	}
	o.ns.Lock()
	current := o.current
	o.ns.Unlock()
	type group struct {
		path   string
		plain  bool
		packed []string
		mtime  time.Time
	}
	groups := map[string]*group{}
	prefix := o.stem + "-"
	for _, e := range ents {
		name := e.Name()
		if !strings.HasPrefix(name, prefix) || !e.Type().IsRegular() {
			continue
		}
		base, sfx := name, ""
		for _, s := range archiveSuffixes[1:] {
			if n, ok := strings.CutSuffix(name, s); ok {
				base, sfx = n, s
				break
			}
		}
		mid := base[len(prefix):]
		if o.ext != "" {
			var ok bool
			if mid, ok = strings.CutSuffix(mid, "."+o.ext); !ok {
				continue
			}
		}
		if !o.shape.match(mid) {
			continue
		}
		path := filepath.Join(o.dir, base)
		if path == current {
			continue
		}
		info, err := e.Info()
		if err != nil {
			continue // removed meanwhile
		}
		g := groups[path]
		if g == nil {
			g = &group{path: path}
			groups[path] = g
		}
		if sfx == "" {
			g.plain = true
		} else {
			g.packed = append(g.packed, sfx)
		}
		if info.ModTime().After(g.mtime) {
			g.mtime = info.ModTime()
		}
	}
	list := make([]*group, 0, len(groups))
	for _, g := range groups {
		list = append(list, g)
	}
	// Newest first, by the time of the last write (stamps need not sort).
	slices.SortFunc(list, func(x, y *group) int {
		if c := y.mtime.Compare(x.mtime); c != 0 {
			return c
		}
		return cmp.Compare(y.path, x.path)
	})
	if o.cleanTime && len(list) > o.maxFiles {
		for _, g := range list[o.maxFiles:] {
			for _, sfx := range archiveSuffixes {
				if err := os.Remove(g.path + sfx); err != nil && !errors.Is(err, fs.ErrNotExist) {
					o.log.Warn("removing an old rotated file failed", "error", err)
				}
			}
		}
		list = list[:o.maxFiles]
	}
	var out []candidate
	for _, g := range list {
		if g.plain {
			c := candidate{path: g.path}
			if len(g.packed) > 0 {
				c.packed = g.packed[0]
			}
			out = append(out, c)
		}
	}
	return out, nil
}

// resolveLocked returns where candidate c is now: size rotation may have
// moved it up, or out of the kept files. A time-rotated file that became
// the current file again (the clock went back) is left alone.
func (a *archiver) resolveLocked(c candidate) (string, bool) {
	o := a.o
	if o.rotTime > 0 {
		return c.path, c.path != o.current
	}
	k := uint64(c.k) + (o.shifts - c.shifts)
	if k >= uint64(o.maxFiles) {
		return "", false
	}
	return o.numbered(int(k)), true
}

// compress writes path+suffix from the rotated file c and removes c once
// the compressed file is synced and in place.
func (a *archiver) compress(c candidate) error {
	o := a.o
	o.ns.Lock()
	path, ok := a.resolveLocked(c)
	var src *os.File
	var err error
	if ok {
		src, err = os.Open(path)
	}
	o.ns.Unlock()
	if !ok || errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	defer src.Close()
	st, err := src.Stat()
	if err != nil {
		return err
	}
	if c.packed != "" {
		return a.dedupe(c, src, st, path+c.packed)
	}

	tmp := a.tmpName()
	// A new file, never through a link someone planted: pass removed any
	// leftover, so whatever is there now is not ours.
	out, err := logfile.CreateNew(tmp, st.Mode().Perm())
	if err != nil {
		return err
	}
	err = a.encode(out, src)
	if err == nil {
		err = out.Sync()
	}
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		// Keep the last-write time: pruning orders files by it.
		err = os.Chtimes(tmp, st.ModTime(), st.ModTime())
	}
	if err != nil {
		os.Remove(tmp)
		return err
	}

	o.ns.Lock()
	path, ok = a.resolveLocked(c)
	if ok {
		err = a.placeLocked(tmp, path, st)
	}
	o.ns.Unlock()
	if !ok || err != nil {
		os.Remove(tmp)
		if errors.Is(err, errChanged) {
			return nil // the next pass sees it again
		}
		return err
	}
	if err := syncDir(o.dir); err != nil {
		return err
	}
	return a.removePlain(c, st)
}

var errChanged = errors.New("rotated file changed while being compressed")

// placeLocked renames the compressed tmp next to path, which must still be
// the file that was compressed, without replacing anything.
func (a *archiver) placeLocked(tmp, path string, st os.FileInfo) error {
	now, err := os.Lstat(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return errChanged
		}
		return err
	}
	if !os.SameFile(now, st) || now.Size() != st.Size() || !now.ModTime().Equal(st.ModTime()) {
		return errChanged
	}
	if _, err := os.Lstat(path + a.sfx); err == nil {
		return errChanged // a variant appeared; the next pass compares them
	}
	return os.Rename(tmp, path+a.sfx)
}

// removePlain removes the uncompressed rotated file c, if it is still the
// file st describes, wherever rotation moved it.
func (a *archiver) removePlain(c candidate, st os.FileInfo) error {
	o := a.o
	o.ns.Lock()
	defer o.ns.Unlock()
	path, ok := a.resolveLocked(c)
	if !ok {
		return nil
	}
	now, err := os.Lstat(path)
	if err != nil || !os.SameFile(now, st) {
		return nil
	}
	return os.Remove(path)
}

// dedupe handles a rotated file that has a compressed variant already: a
// crash between placing the compressed file and removing the plain one
// leaves both, identical. Then the plain one goes. Otherwise (the clock went
// back and reused a stamp) both are kept, and that is reported once.
func (a *archiver) dedupe(c candidate, src *os.File, st os.FileInfo, packedPath string) error {
	same, err := a.sameContent(src, packedPath)
	if err != nil {
		return err
	}
	if !same {
		key := fmt.Sprintf("%s/%d/%d", packedPath, st.Size(), st.ModTime().UnixNano())
		if !a.skipped[key] {
			if len(a.skipped) < 1024 {
				a.skipped[key] = true
			}
			a.o.log.Warn("a rotated file and its compressed name differ; both kept", "file", src.Name(), "compressed", packedPath)
		}
		return nil
	}
	return a.removePlain(c, st)
}

func (a *archiver) sameContent(src *os.File, packedPath string) (bool, error) {
	pf, err := os.Open(packedPath)
	if err != nil {
		return false, err
	}
	defer pf.Close()
	var r io.Reader
	switch {
	case strings.HasSuffix(packedPath, ".gz"):
		zr, err := gzip.NewReader(pf)
		if err != nil {
			return false, nil // not a complete gzip file: not a copy
		}
		defer zr.Close()
		r = zr
	default:
		zr, err := zstd.NewReader(pf, zstd.WithDecoderConcurrency(1))
		if err != nil {
			return false, err
		}
		defer zr.Close()
		r = zr
	}
	bufA := make([]byte, 64<<10)
	bufB := make([]byte, 64<<10)
	for {
		if err := a.ctx.Err(); err != nil {
			return false, err
		}
		na, errA := io.ReadFull(src, bufA)
		nb, errB := io.ReadFull(r, bufB)
		if na != nb || !bytes.Equal(bufA[:na], bufB[:nb]) {
			return false, nil
		}
		endA := errA == io.EOF || errors.Is(errA, io.ErrUnexpectedEOF)
		endB := errB == io.EOF || errors.Is(errB, io.ErrUnexpectedEOF)
		if errA != nil && !endA {
			return false, errA
		}
		if errB != nil && !endB {
			return false, nil // corrupt compressed data: not a copy
		}
		if endA || endB {
			return endA && endB, nil
		}
	}
}

// encode compresses src into out, checking for cancellation between chunks.
func (a *archiver) encode(out io.Writer, src io.Reader) error {
	var w io.WriteCloser
	switch a.o.compress {
	case "gzip":
		if a.gz == nil {
			a.gz = gzip.NewWriter(out)
		} else {
			a.gz.Reset(out)
		}
		w = a.gz
	case "zstd":
		if a.zs == nil {
			zs, err := zstd.NewWriter(out, zstd.WithEncoderConcurrency(1))
			if err != nil {
				return err
			}
			a.zs = zs
		} else {
			a.zs.Reset(out)
		}
		w = a.zs
	default:
		return fmt.Errorf("unknown compression %q", a.o.compress)
	}
	if a.buf == nil {
		a.buf = make([]byte, 256<<10)
	}
	for {
		if err := a.ctx.Err(); err != nil {
			return err
		}
		n, err := src.Read(a.buf)
		if n > 0 {
			if _, werr := w.Write(a.buf[:n]); werr != nil {
				return werr
			}
		}
		if err == io.EOF {
			return w.Close()
		}
		if err != nil {
			return err
		}
	}
}

// syncDir makes renames in dir durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	// Some systems cannot sync a directory; the rename is still done.
	if errors.Is(err, syscall.EINVAL) || errors.Is(err, errors.ErrUnsupported) {
		return nil
	}
	return err
}
