package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime/debug"
	"strconv"
	"strings"
	"syscall"

	fg "github.com/flowgo/flowgo"
	"github.com/flowgo/flowgo/config"
	"github.com/flowgo/flowgo/decoder"
	"github.com/flowgo/flowgo/encoder"
	"github.com/flowgo/flowgo/input"
	"github.com/flowgo/flowgo/output"
	"github.com/flowgo/flowgo/pipeline"
)

// Exit codes.
const (
	exitOK        = 0
	exitFailure   = 1 // records rejected (pipe) or lost, or an input could not run
	exitUsage     = 2 // bad command line or configuration
	defaultConfig = "flowgo.toml"
)

// version and commit are set at build time:
// -ldflags "-X main.version=v1.2.3 -X main.commit=$(git rev-parse HEAD)".
// Without them, the module version and VCS stamp in the build info are used.
var version, commit = "", ""

// env carries the process's streams so that tests can run commands in-process.
type env struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	log            *slog.Logger
}

// run runs one flowgo command line and returns the exit code.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	// Everything written to stderr goes through one writer, so that pipe's
	// progress line (on a terminal) is erased before anything else.
	stderr = &statusWriter{w: stderr}
	e := &env{stdin: stdin, stdout: stdout, stderr: stderr}
	global := flag.NewFlagSet("flowgo", flag.ContinueOnError)
	global.SetOutput(io.Discard)
	logFormat := global.String("log-format", "text", "")
	logLevel := global.String("log-level", "info", "")
	cpuProfile := global.String("cpuprofile", "", "")
	memProfile := global.String("memprofile", "", "")
	showVersion := global.Bool("version", false, "")
	global.BoolVar(showVersion, "v", false, "")
	if err := global.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprint(stdout, usage())
			return exitOK
		}
		fmt.Fprintf(stderr, "flowgo: %v\n\n%s", err, usage())
		return exitUsage
	}
	log, err := newLogger(stderr, *logFormat, *logLevel)
	if err != nil {
		fmt.Fprintf(stderr, "flowgo: %v\n", err)
		return exitUsage
	}
	e.log = log
	if *showVersion {
		fmt.Fprintln(stdout, versionString())
		return exitOK
	}
	if *cpuProfile != "" {
		stop, err := startCPUProfile(*cpuProfile)
		if err != nil {
			fmt.Fprintf(stderr, "flowgo: --cpuprofile: %v\n", err)
			return exitUsage
		}
		defer stop()
	}
	if *memProfile != "" {
		defer writeHeapProfile(*memProfile, log)
	}
	args = global.Args()
	if len(args) == 0 {
		return e.runCmd(ctx, nil)
	}
	switch args[0] {
	case "run":
		return e.runCmd(ctx, args[1:])
	case "pipe":
		return e.pipeCmd(ctx, args[1:])
	case "check":
		return e.checkCmd(args[1:])
	case "queue":
		return e.queueCmd(args[1:])
	case "tap":
		return e.tapCmd(ctx, args[1:])
	case "version":
		fmt.Fprintln(stdout, versionString())
		return exitOK
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage())
		return exitOK
	}
	if strings.HasPrefix(args[0], "-") || len(args) > 1 {
		fmt.Fprintf(stderr, "flowgo: unknown command or flag %q\n\n%s", args[0], usage())
		return exitUsage
	}
	// `flowgo FILE`, as Flowgger takes its config file.
	return e.runCmd(ctx, []string{"-c", args[0]})
}

func newLogger(w io.Writer, format, level string) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("--log-level %q: want debug, info, warn or error", level)
	}
	opts := &slog.HandlerOptions{Level: lv}
	switch format {
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, fmt.Errorf("--log-format %q: want text or json", format)
}

func usage() string {
	return fmt.Sprintf(`flowgo collects, converts and ships logs (a Flowgger re-done in Go).

Usage:
  flowgo [FILE]                 run the pipeline in FILE (default %[1]s)
  flowgo run [-c FILE]...       the same; each -c (a file, or a directory of
                                *.toml files) adds a pipeline; SIGHUP reloads

  flowgo pipe --from FORMAT --to FORMAT [--framing F] [--output-framing F] [--errors FILE] [--quiet]
                                convert stdin to stdout (progress on stderr when
                                it is a terminal, unless --quiet)
  flowgo check [-c FILE]...     validate and print every effective key
  flowgo queue inspect PATH     a disk queue's segments, records, read position, damage
  flowgo queue dump [--all] [--format F] PATH
                                write the records a disk queue holds to stdout
  flowgo tap [--metrics-url URL] [--pipeline P] [--input NAME | --output NAME]
            [--format F] [-n N] [--rejected]
                                watch a running flowgo's records live (from its
                                [metrics] listener; default %[8]s)
  flowgo version                print the version (also flowgo --version, flowgo -v)
Global flags (before the command):
  --log-format text|json        diagnostics format on stderr (default text)
  --log-level debug|info|warn|error
  --cpuprofile FILE, --memprofile FILE   write Go profiles (for benchmarks)

Input types:     %[2]s
Input formats:   %[3]s
Input framings:  %[4]s
Output types:    %[5]s
Output formats:  %[6]s
Output framings: %[7]s (aliases nop, none)

Exit status: 0 success; 1 records rejected (pipe), lost, or an input failed; 2 usage or configuration error.
`, defaultConfig, strings.Join(input.Names(), ", "), strings.Join(decoder.Names(), ", "),
		input.FramingHelp(), strings.Join(output.Names(), ", "), strings.Join(encoder.Names(), ", "),
		output.FramingHelp(), defaultMetricsURL)
}

func versionString() string {
	v, rev, goV := version, commit, "unknown"
	if bi, ok := debug.ReadBuildInfo(); ok {
		goV = bi.GoVersion
		if v == "" && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
			v = bi.Main.Version
		}
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				if rev == "" {
					rev = s.Value
				}
			case "vcs.modified":
				if s.Value == "true" && rev != "" {
					rev += "+dirty"
				}
			}
		}
	}
	if v == "" {
		v = "devel"
	}
	if rev == "" {
		rev = "unknown"
	}
	return fmt.Sprintf("flowgo %s (commit %s, %s)", v, rev, goV)
}

// pathList is a repeatable -c flag.
type pathList []string

func (l *pathList) String() string     { return strings.Join(*l, ",") }
func (l *pathList) Set(v string) error { *l = append(*l, v); return nil }

// configArgs parses the -c flags of run and check: files, or directories
// standing for their *.toml files, one pipeline each.
func (e *env) configArgs(name string, args []string) ([]string, bool) {
	fs := flag.NewFlagSet("flowgo "+name, flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	var paths pathList
	fs.Var(&paths, "c", "config file or directory of *.toml files (repeatable; default "+defaultConfig+")")
	fs.Var(&paths, "config", "same as -c")
	if err := fs.Parse(args); err != nil {
		return nil, false
	}
	if fs.NArg() == 1 && len(paths) == 0 {
		paths = append(paths, fs.Arg(0)) // `flowgo run FILE`
	} else if fs.NArg() > 0 {
		fmt.Fprintf(e.stderr, "flowgo %s: unexpected argument %q\n", name, fs.Arg(0))
		return nil, false
	}
	if len(paths) == 0 {
		paths = append(paths, defaultConfig)
	}
	return paths, true
}

// load loads and builds the pipelines in paths, printing warnings. With
// checkOnly the pipelines are built to be validated only: nothing is created.
func (e *env) load(paths []string, checkOnly bool) (*pipeline.Group, bool) {
	g, err := pipeline.LoadGroup(paths, pipeline.Options{Log: e.log, Stdin: e.stdin, Stdout: e.stdout, CheckOnly: checkOnly}, versionString())
	if err != nil {
		fmt.Fprintf(e.stderr, "flowgo: %v\n", err)
		return nil, false
	}
	for _, p := range g.Pipelines() {
		for _, w := range p.Warnings() {
			e.log.Warn("config", "warning", w)
		}
	}
	return g, true
}

func (e *env) checkCmd(args []string) int {
	paths, ok := e.configArgs("check", args)
	if !ok {
		return exitUsage
	}
	g, ok := e.load(paths, true)
	if !ok {
		return exitUsage
	}
	for _, p := range g.Pipelines() {
		fmt.Fprintf(e.stdout, "pipeline %s (%s): OK\n%s\n", p.Name, p.Path(), p.Describe())
	}
	return exitOK
}

func (e *env) runCmd(ctx context.Context, args []string) int {
	paths, ok := e.configArgs("run", args)
	if !ok {
		return exitUsage
	}
	g, ok := e.load(paths, false)
	if !ok {
		return exitUsage
	}
	names := make([]string, 0)
	for _, p := range g.Pipelines() {
		names = append(names, p.Name)
	}
	e.log.Info("flowgo starting", "version", versionString(), "pipelines", strings.Join(names, ","))
	code := e.execute(ctx, g, g.Reload)
	for _, p := range g.Pipelines() {
		st := p.Stats()
		e.log.Info("pipeline stopped", "pipeline", p.Name, "received", st.Received.Load(), "sent", st.Sent.Load(),
			"rejected", st.Rejected.Load(), "encode_failed", st.EncodeFailed.Load(), "failed", st.Failed.Load(),
			"dropped", st.Dropped.Load(), "lost", st.Lost.Load())
		if n := st.Lost.Load(); n > 0 {
			e.log.Error("records accepted but not delivered", "pipeline", p.Name, "lost", n)
			code = exitFailure
		}
	}
	return code
}

// runner is what execute runs: a group of pipelines, or pipe mode's one.
type runner interface {
	Run(ctx context.Context) error
	HardStop()
}

// execute runs r with signal handling: the first SIGINT or SIGTERM drains,
// a second one gives up on undelivered records at once; SIGHUP calls reload.
func (e *env) execute(ctx context.Context, r runner, reload func() error) int {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	defer signal.Stop(sigs)
	hups := make(chan os.Signal, 1)
	signal.Notify(hups, syscall.SIGHUP)
	defer signal.Stop(hups)
	done := make(chan struct{})
	go func() {
		for {
			select {
			case <-hups:
				if err := reload(); err != nil {
					e.log.Error("SIGHUP: reload failed; the running configuration stays", "error", err)
				} else {
					e.log.Info("SIGHUP: reloaded")
				}
			case <-done:
				return
			}
		}
	}()
	go func() {
		select {
		case s := <-sigs:
			e.log.Info("signal received: draining; send it again to stop at once", "signal", s.String())
			cancel()
		case <-done:
			return
		}
		select {
		case s := <-sigs:
			e.log.Warn("second signal: stopping without delivering the rest", "signal", s.String())
			r.HardStop()
		case <-done:
		}
	}()
	err := r.Run(ctx)
	close(done)
	if err != nil {
		e.log.Error("pipeline failed", "error", err)
		return exitFailure
	}
	return exitOK
}

func (e *env) pipeCmd(ctx context.Context, args []string) int {
	fs := flag.NewFlagSet("flowgo pipe", flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	from := fs.String("from", "", "input format: "+strings.Join(decoder.Names(), ", "))
	to := fs.String("to", "", "output format: "+strings.Join(encoder.Names(), ", "))
	framing := fs.String("framing", string(fg.FramingLine), "input framing: "+input.FramingHelp()+" (capnp for --from capnp)")
	outFraming := fs.String("output-framing", string(fg.FramingLine), "output framing: "+output.FramingHelp()+" (capnp for --to capnp)")
	errorsPath := fs.String("errors", "", "write rejected frames, byte for byte and whole, to this file")
	maxSize := fs.Int("max-message-size", pipeline.DefaultMaxMessageSize, "longest frame in bytes")
	quiet := fs.Bool("quiet", false, "no progress line (drawn only when stderr is a terminal)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK
		}
		return exitUsage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(e.stderr, "flowgo pipe: unexpected argument %q (it reads stdin)\n", fs.Arg(0))
		return exitUsage
	}
	if *from == "" || *to == "" {
		fmt.Fprintln(e.stderr, "flowgo pipe: --from and --to are required")
		return exitUsage
	}
	// A framing flag left unset leaves the key out, so that the format's
	// default applies (line, or capnp for Cap'n Proto).
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	inFramingKey, outFramingKey := "", ""
	if set["framing"] {
		inFramingKey = "framing = " + strconv.Quote(*framing) + "\n"
	}
	if set["output-framing"] {
		outFramingKey = "framing = " + strconv.Quote(*outFraming) + "\n"
	}
	src := fmt.Sprintf("[input]\ntype = \"stdin\"\nformat = %s\n%smax_message_size = %d\n[output]\ntype = \"stdout\"\nformat = %s\n%s",
		strconv.Quote(*from), inFramingKey, *maxSize, strconv.Quote(*to), outFramingKey)
	f, err := config.Parse("", src)
	if err != nil {
		fmt.Fprintf(e.stderr, "flowgo pipe: %v\n", err)
		return exitUsage
	}

	stdin := e.stdin
	if stdin == nil {
		stdin = os.Stdin
	}
	var prog *progress
	if sw, ok := e.stderr.(*statusWriter); ok && !*quiet && sw.terminal() != nil {
		prog, stdin = newProgress(stdin)
	}
	var errFile *errorsFile
	if *errorsPath != "" && input.ValidFraming(fg.Framing(*framing)) && *maxSize > 0 {
		ef, in, err := newErrorsFile(*errorsPath, stdin, fg.Framing(*framing), *maxSize)
		if err != nil {
			fmt.Fprintf(e.stderr, "flowgo pipe: --errors: %v\n", err)
			return exitUsage
		}
		errFile, stdin = ef, in
	}
	// closeErrors closes --errors and reports a write or close that
	// failed, as a failed open is; it returns false then.
	closeErrors := func() bool {
		if errFile == nil {
			return true
		}
		if err := errFile.Close(); err != nil {
			fmt.Fprintf(e.stderr, "flowgo pipe: --errors: %v\n", err)
			return false
		}
		return true
	}
	report := bufio.NewWriter(e.stderr)
	opts := pipeline.Options{
		Name: "pipe", Log: e.log, Stdin: stdin, Stdout: e.stdout,
		OnReject: func(_, origin string, frame []byte, err error) {
			fmt.Fprintf(report, "%s: %v\n", origin, err)
			if errFile != nil {
				errFile.reject(frame, err)
			}
		},
	}
	p, err := pipeline.Build(f, opts)
	if err != nil {
		fmt.Fprintf(e.stderr, "flowgo pipe: %v\n", pipeArgError(err))
		closeErrors()
		return exitUsage
	}
	var r runner = p
	if errFile != nil && errFile.spool != nil {
		r = stopper{runner: p, stop: errFile.spool.stop}
	}
	var stopProgress func()
	if prog != nil {
		prog.stats = p.Stats()
		stop, done := make(chan struct{}), make(chan struct{})
		go prog.run(e.stderr.(*statusWriter), stop, done)
		stopProgress = func() { close(stop); <-done }
	}
	code := e.execute(ctx, r, p.Reload)
	report.Flush()
	if stopProgress != nil {
		stopProgress()
	}
	if !closeErrors() {
		code = exitFailure
	}
	st := p.Stats()
	bad := st.Rejected.Load() + st.EncodeFailed.Load() + st.Failed.Load() + st.Lost.Load()
	if bad > 0 {
		fmt.Fprintf(e.stderr, "flowgo pipe: %d records converted, %d rejected (%d undecodable, %d unencodable), %d lost\n",
			st.Sent.Load(), st.Rejected.Load()+st.EncodeFailed.Load()+st.Failed.Load(), st.Rejected.Load(), st.EncodeFailed.Load()+st.Failed.Load(), st.Lost.Load())
		if code == exitOK {
			code = exitFailure
		}
	}
	return code
}

// pipeArgError rewrites config errors about the synthetic pipe config in
// terms of the command-line flags.
func pipeArgError(err error) error {
	var ce *config.Error
	if !errors.As(err, &ce) {
		return err
	}
	flagOf := map[string]string{
		"input.format": "--from", "output.format": "--to", "input.framing": "--framing",
		"output.framing": "--output-framing", "input.max_message_size": "--max-message-size",
	}
	if f, ok := flagOf[ce.Key]; ok {
		return fmt.Errorf("%s: %s", f, ce.Msg)
	}
	return fmt.Errorf("%s: %s", ce.Key, ce.Msg)
}
