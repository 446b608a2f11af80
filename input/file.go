package input

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"regexp"
	"runtime"
	"sync/atomic"
	"time"

	"github.com/flowgo/flowgo"
	"github.com/flowgo/flowgo/config"
)

func init() {
	Register("file", Type{Parse: parseFile, Stream: true})
}

// Defaults of the file input's keys.
const (
	DefaultFileReadFrom           = "end" // Flowgger's behaviour for files found at start
	DefaultFileCheckpointInterval = time.Second
	DefaultFileScanInterval       = 10 * time.Second
	DefaultFileMaxOpen            = 1024
	DefaultFileIdleTimeout        = 5 * time.Minute
	DefaultFileRotateWait         = 5 * time.Second
	DefaultFilePartialLineTimeout = 5 * time.Second
	DefaultMultilineTimeout       = time.Second
)

// fileKeys are the keys of input.type = "file".
type fileKeys struct {
	// Src is the glob of the files to tail (Flowgger's key).
	Src string `toml:"src"`
	// ReadFrom says where files found at the first start begin: "end"
	// (Flowgger's behaviour) or "beginning".
	ReadFrom string `toml:"read_from"`
	// CheckpointPath is the file holding every file's offset; empty means
	// <pipeline>.<input>.checkpoints.json in the directory of [queue] path
	// when one is set, else in the working directory.
	CheckpointPath string `toml:"file_checkpoint_path"`
	// CheckpointInterval is how often changed checkpoints are written.
	CheckpointInterval time.Duration `toml:"file_checkpoint_interval"`
	// ScanInterval is how often the glob is expanded again (it is also
	// expanded when inotify reports a file created, renamed or removed).
	ScanInterval time.Duration `toml:"file_scan_interval"`
	// MaxOpen bounds the files held open at once.
	MaxOpen int `toml:"file_max_open"`
	// IdleTimeout closes a file that has not grown for that long; it is
	// reopened at its offset when it grows.
	IdleTimeout time.Duration `toml:"file_idle_timeout"`
	// RotateWait is how long a file whose name now points elsewhere
	// (rotated) is still read after its last growth, before it is released.
	RotateWait time.Duration `toml:"file_rotate_wait"`
	// PartialLineTimeout is how long an unterminated last line waits for its
	// LF before it is taken as a record; 0 means it waits for ever.
	PartialLineTimeout time.Duration `toml:"file_partial_line_timeout"`
	// Multiline joins continuation lines to the record before them: "off",
	// "indent" or "start" (with MultilineStart).
	Multiline         string        `toml:"multiline"`
	MultilineStart    string        `toml:"multiline_start"`
	MultilineMaxBytes int           `toml:"multiline_max_bytes"`
	MultilineTimeout  time.Duration `toml:"multiline_timeout"`
	// PathField, when set, names a parameter that carries the file's path
	// in every record.
	PathField string `toml:"path_field"`
}

// File is the file input: it tails the files matching a glob, as
// Flowgger's does, keeping the offset of every file in a checkpoint file,
// following rotation (rename and create, copytruncate), and optionally
// joining multi-line records. See docs/file-input.md.
type File struct {
	c    Config
	k    fileKeys
	ml   *multilineRule
	path string // the checkpoint file

	noInotify bool // tests: poll only, as on a file system without inotify

	st fileStats
}

// fileStats are the file input's own counters (Counters), kept across runs.
type fileStats struct {
	truncated atomic.Int64 // files read again from 0: truncated or rewritten
	copies    atomic.Int64 // truncated files whose rest was read from their copy
	released  [releaseKinds]atomic.Int64
	skipped   [skipKinds]atomic.Int64
	ckErrors  atomic.Int64 // checkpoint writes that failed
}

// Why a file is released (no longer tailed).
const (
	releaseRotated = iota // renamed away from src, read to its end
	releaseDeleted        // deleted, read to its end
	releaseGone           // gone (or replaced) while closed
	releaseSkipped        // turned out compressed
	releaseKinds
)

var releaseNames = [releaseKinds]string{"rotated", "deleted", "gone", "compressed"}

// Why a file matched by src is not tailed.
const (
	skipCompressed = iota
	skipCopy
	skipKinds
)

var skipNames = [skipKinds]string{"compressed", "copy"}

// Counters implements CounterSource.
func (in *File) Counters() []Counter {
	out := []Counter{
		{Name: "file_truncations_total", Help: "Tailed files found truncated or rewritten in place (copytruncate), read again from their beginning.", Value: in.st.truncated.Load()},
		{Name: "file_copies_read_total", Help: "Truncated files whose lines not yet read were read from the copy copytruncate made.", Value: in.st.copies.Load()},
		{Name: "file_checkpoint_write_errors_total", Help: "Writes of the checkpoint file that failed (retried every file_checkpoint_interval).", Value: in.st.ckErrors.Load()},
	}
	for i := range releaseKinds {
		out = append(out, Counter{Name: "file_released_total", Help: "Files no longer tailed, by reason: rotated or deleted (read to their end), gone while closed, compressed.",
			Reason: releaseNames[i], Value: in.st.released[i].Load()})
	}
	for i := range skipKinds {
		out = append(out, Counter{Name: "file_skipped_total", Help: "Files matched by src and not read: compressed (gzip, zstd, xz), or a copy of a tailed file.",
			Reason: skipNames[i], Value: in.st.skipped[i].Load()})
	}
	return out
}

// parseFile decodes and checks the file input's keys; the input it builds
// opens its files and checkpoints in Run.
func parseFile(c Config) (Builder, error) {
	k := fileKeys{
		ReadFrom:           DefaultFileReadFrom,
		CheckpointInterval: DefaultFileCheckpointInterval,
		ScanInterval:       DefaultFileScanInterval,
		MaxOpen:            DefaultFileMaxOpen,
		IdleTimeout:        DefaultFileIdleTimeout,
		RotateWait:         DefaultFileRotateWait,
		PartialLineTimeout: DefaultFilePartialLineTimeout,
		Multiline:          MultilineOff,
		MultilineTimeout:   DefaultMultilineTimeout,
	}
	if c.Log == nil {
		c.Log = slog.New(slog.DiscardHandler)
	}
	if !fileIdentities {
		return nil, config.KeyErrorf("type", "the file input needs device and inode numbers, which %s does not give", runtime.GOOS)
	}
	s := c.Section
	if s == nil {
		return nil, config.KeyErrorf("src", "missing: the file input needs a glob such as \"/var/log/app/*.log\"")
	}
	if err := s.Decode(&k); err != nil {
		return nil, err
	}
	if !s.Has("src") {
		return nil, s.Errorf("", "src: missing: the file input needs a glob such as \"/var/log/app/*.log\"")
	}
	if err := checkGlob(k.Src); err != nil {
		return nil, s.Errorf("src", "%v", err)
	}
	// Absolute, so that paths compare with inotify's event names and the
	// working directory does not matter after the start.
	if abs, err := filepath.Abs(k.Src); err == nil {
		k.Src = abs
	}
	switch c.Framing {
	case "", flowgo.FramingLine:
		c.Framing = flowgo.FramingLine
	case flowgo.FramingNUL:
	case flowgo.FramingCapnp:
		if !s.Has("framing") {
			return nil, s.Errorf("format", "the file input reads lines (or NUL-terminated records): format \"capnp\" needs a stream input (stdin, tcp, tls)")
		}
		fallthrough
	default:
		return nil, s.Errorf("framing", "the file input reads line (default) or nul framed files, not %q", c.Framing)
	}
	if k.ReadFrom != "end" && k.ReadFrom != "beginning" {
		return nil, s.Errorf("read_from", "must be \"end\" or \"beginning\", not %q", k.ReadFrom)
	}
	durations := []struct {
		key  string
		v    time.Duration
		min  time.Duration
		zero bool // 0 allowed
	}{
		{"file_checkpoint_interval", k.CheckpointInterval, 10 * time.Millisecond, false},
		{"file_scan_interval", k.ScanInterval, 10 * time.Millisecond, false},
		{"file_idle_timeout", k.IdleTimeout, 10 * time.Millisecond, false},
		{"file_rotate_wait", k.RotateWait, 0, true},
		{"file_partial_line_timeout", k.PartialLineTimeout, 10 * time.Millisecond, true},
		{"multiline_timeout", k.MultilineTimeout, 10 * time.Millisecond, false},
	}
	for _, d := range durations {
		if d.zero && d.v == 0 {
			continue
		}
		if d.v < d.min || d.v < 0 {
			zero := ""
			if d.zero {
				zero = "\"0s\" or "
			}
			return nil, s.Errorf(d.key, "must be %sat least %v, not %v", zero, d.min, d.v)
		}
	}
	if k.MaxOpen < 1 {
		return nil, s.Errorf("file_max_open", "must be at least 1, not %d", k.MaxOpen)
	}
	if err := streamCheckParamName(k.PathField); err != nil {
		return nil, s.Errorf("path_field", "%v", err)
	}
	var ml *multilineRule
	switch k.Multiline {
	case MultilineOff:
		if k.MultilineStart != "" {
			return nil, s.Errorf("multiline_start", "set multiline = \"start\" too, for lines that match it to begin a record")
		}
	case MultilineIndent, MultilineStart:
		ml = &multilineRule{mode: k.Multiline, maxBytes: k.MultilineMaxBytes, timeout: k.MultilineTimeout}
		if ml.maxBytes == 0 {
			ml.maxBytes = c.MaxMessageSize
		}
		if k.MultilineMaxBytes < 0 || ml.maxBytes > c.MaxMessageSize {
			return nil, s.Errorf("multiline_max_bytes", "must be 0 (max_message_size) or between 1 and max_message_size (%d), not %d", c.MaxMessageSize, k.MultilineMaxBytes)
		}
		if k.Multiline == MultilineStart {
			if k.MultilineStart == "" {
				return nil, s.Errorf("multiline_start", "missing: multiline = \"start\" needs the regular expression of a record's first line, such as \"^\\\\d{4}-\\\\d{2}-\\\\d{2}\"")
			}
			re, err := regexp.Compile(k.MultilineStart)
			if err != nil {
				return nil, s.Errorf("multiline_start", "%v", err)
			}
			ml.start = re
		} else if k.MultilineStart != "" {
			return nil, s.Errorf("multiline_start", "only used with multiline = \"start\", not %q", k.Multiline)
		}
	default:
		return nil, s.Errorf("multiline", "must be \"off\", \"indent\" or \"start\", not %q", k.Multiline)
	}
	path := k.CheckpointPath
	if path == "" {
		path = defaultCheckpointPath(c)
	}
	if abs, err := filepath.Abs(path); err == nil {
		path = abs
	}
	// flowgo check shows the values in effect.
	k.CheckpointPath = path
	if ml != nil {
		k.MultilineMaxBytes = ml.maxBytes
	}
	return BuilderFunc(func() (Input, error) { return &File{c: c, k: k, ml: ml, path: path}, nil }), nil
}

// defaultCheckpointPath is <pipeline>.<input>.checkpoints.json next to the
// disk queue's directory when [queue] path is set, else in the working
// directory (the state directory /var/lib/flowgo in the shipped systemd
// unit and container image).
func defaultCheckpointPath(c Config) string {
	dir := "."
	if c.Section != nil && c.Section.File() != nil {
		f := c.Section.File()
		if q := f.Tables["queue"]; q != nil && q.Raw()["type"] == "disk" {
			if p, ok := q.Raw()["path"].(string); ok && p != "" {
				if !filepath.IsAbs(p) && f.Path != "" {
					p = filepath.Join(filepath.Dir(f.Path), p) // as the disk queue reads it
				}
				dir = filepath.Dir(filepath.Clean(p))
			}
		}
	}
	return filepath.Join(dir, checkpointFileName(c.Pipeline, c.Name))
}

// CheckpointPath returns the checkpoint file the input uses.
func (in *File) CheckpointPath() string { return in.path }

// Run tails the files until ctx ends; see Input. It fails at start when the
// checkpoint file cannot be locked, read or written.
func (in *File) Run(ctx context.Context, sink Sink) error {
	store, existed, warn, err := openCheckpoints(in.path, in.k.Src)
	if err != nil {
		return fmt.Errorf("file: %w", err)
	}
	defer store.close()
	if warn != nil {
		in.c.Log.Warn(warn.Error())
	}
	t := newTailer(in, sink, store, !existed)
	return t.run(ctx)
}
