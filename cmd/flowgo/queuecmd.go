package main

import (
	"bufio"
	"errors"
	"flag"
	"fmt"
	"strings"

	fg "github.com/flowgo/flowgo"
	"github.com/flowgo/flowgo/encoder"
	"github.com/flowgo/flowgo/output"
	"github.com/flowgo/flowgo/queue"
)

// queueCmd runs `flowgo queue inspect|dump PATH`: the disk queue's
// operator tools. They read the directory without changing it, so they
// may run while flowgo uses the queue.
func (e *env) queueCmd(args []string) int {
	if len(args) == 0 {
		fmt.Fprintf(e.stderr, "flowgo queue: want inspect or dump\n\n%s", usage())
		return exitUsage
	}
	switch args[0] {
	case "inspect":
		fs := flag.NewFlagSet("flowgo queue inspect", flag.ContinueOnError)
		fs.SetOutput(e.stderr)
		if err := fs.Parse(args[1:]); err != nil {
			return exitUsage
		}
		if fs.NArg() != 1 {
			fmt.Fprintf(e.stderr, "flowgo queue inspect: want one queue directory\n")
			return exitUsage
		}
		rep, err := queue.Inspect(fs.Arg(0))
		if err != nil {
			fmt.Fprintf(e.stderr, "flowgo: %v\n", err)
			return exitUsage
		}
		fmt.Fprint(e.stdout, rep.String())
		for _, s := range rep.Segments {
			if s.DamagedBytes > 0 || s.HeaderDamaged {
				return exitFailure
			}
		}
		return exitOK
	case "dump":
		fs := flag.NewFlagSet("flowgo queue dump", flag.ContinueOnError)
		fs.SetOutput(e.stderr)
		all := fs.Bool("all", false, "every record on disk, also those the output already confirmed")
		reader := fs.String("reader", "output", "whose read position to start from")
		format := fs.String("format", "passthrough", "output format: "+strings.Join(encoder.Names(), ", ")+
			" (passthrough writes a record without a raw line as rfc5424)")
		if err := fs.Parse(args[1:]); err != nil {
			return exitUsage
		}
		if fs.NArg() != 1 {
			fmt.Fprintf(e.stderr, "flowgo queue dump: want one queue directory\n")
			return exitUsage
		}
		return e.dump(fs.Arg(0), *reader, *all, *format)
	}
	fmt.Fprintf(e.stderr, "flowgo queue: unknown command %q: want inspect or dump\n", args[0])
	return exitUsage
}

// dump writes the queued records to stdout, one line each, so that a
// backlog can be salvaged by hand.
func (e *env) dump(path, reader string, all bool, format string) int {
	enc, err := encoder.New(format, nil)
	if err != nil {
		fmt.Fprintf(e.stderr, "flowgo queue dump: --format: %v\n", err)
		return exitUsage
	}
	fallback, _ := encoder.New("rfc5424", nil)
	if all {
		reader = ""
	}
	w := bufio.NewWriterSize(e.stdout, 256<<10)
	var line []byte
	var n, damaged int64
	err = queue.Dump(path, reader, func(r *fg.Record) error {
		var err error
		line, err = enc.Encode(line[:0], r)
		if errors.Is(err, encoder.ErrNoFullMsg) {
			line, err = fallback.Encode(line[:0], r)
		}
		if err != nil {
			fmt.Fprintf(e.stderr, "flowgo queue dump: record %d: %v\n", n+1, err)
			return nil
		}
		line = output.Frame(fg.FramingLine, line, 0)
		n++
		_, err = w.Write(line)
		return err
	}, func(segment string, off, bytes int64) {
		damaged += bytes
		fmt.Fprintf(e.stderr, "flowgo queue dump: %s: %d damaged bytes at offset %d skipped\n", segment, bytes, off)
	})
	if ferr := w.Flush(); err == nil {
		err = ferr
	}
	if err != nil {
		fmt.Fprintf(e.stderr, "flowgo: %v\n", err)
		var pe *queue.PathError
		if errors.As(err, &pe) {
			return exitUsage
		}
		return exitFailure
	}
	fmt.Fprintf(e.stderr, "flowgo queue dump: %d records written\n", n)
	if damaged > 0 {
		return exitFailure
	}
	return exitOK
}
