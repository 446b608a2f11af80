package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os/signal"
	"strconv"
	"strings"
	"syscall"

	"github.com/flowgo/flowgo/encoder"
	"github.com/flowgo/flowgo/pipeline"
)

// defaultMetricsURL is where [metrics] listens by default.
const defaultMetricsURL = "http://" + pipeline.DefaultMetricsListen

// tapCmd streams the records of a running flowgo from its metrics
// listener (/tap): what its inputs decode, what an output delivers, or
// the frames its inputs reject. Records go to stdout, one per line;
// what the tap could not show (it samples at most 1000 records a second
// and drops what this reader does not take in time) is told on stderr.
func (e *env) tapCmd(ctx context.Context, args []string) int {
	fs := flag.NewFlagSet("flowgo tap", flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	base := fs.String("metrics-url", defaultMetricsURL, "the running flowgo's [metrics] listener (URL or host:port)")
	pipe := fs.String("pipeline", "", "only this pipeline (default: every one)")
	in := fs.String("input", "", "only the records (or rejected frames) of this input, by name")
	out := fs.String("output", "", "the records this output delivered, by name, instead of what inputs decoded")
	format := fs.String("format", "", "encode the records shown as: "+strings.Join(encoder.Names(), ", ")+
		" (default gelf; for --output, the frames as written)")
	n := fs.Int64("n", 0, "stop after this many records (default: until interrupted)")
	rejected := fs.Bool("rejected", false, "show rejected frames with their reason instead of records")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK
		}
		return exitUsage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(e.stderr, "flowgo tap: unexpected argument %q\n", fs.Arg(0))
		return exitUsage
	}
	if *in != "" && *out != "" {
		fmt.Fprintln(e.stderr, "flowgo tap: --input and --output: choose one")
		return exitUsage
	}
	if *n < 0 {
		fmt.Fprintln(e.stderr, "flowgo tap: -n must not be negative")
		return exitUsage
	}
	u, err := tapURL(*base)
	if err != nil {
		fmt.Fprintf(e.stderr, "flowgo tap: --metrics-url: %v\n", err)
		return exitUsage
	}
	q := url.Values{}
	for k, v := range map[string]string{"pipeline": *pipe, "input": *in, "output": *out, "format": *format} {
		if v != "" {
			q.Set(k, v)
		}
	}
	if *rejected {
		q.Set("rejected", "1")
	}
	if *n > 0 {
		q.Set("n", strconv.FormatInt(*n, 10))
	}
	u.Path = strings.TrimSuffix(u.Path, "/") + "/tap"
	u.RawQuery = q.Encode()

	ctx, stop := signal.NotifyContext(ctx, syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		fmt.Fprintf(e.stderr, "flowgo tap: %v\n", err)
		return exitUsage
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		fmt.Fprintf(e.stderr, "flowgo tap: cannot reach flowgo's metrics listener at %s: %v (is flowgo running, with a [metrics] table? see --metrics-url)\n", *base, err)
		return exitFailure
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		if resp.StatusCode == http.StatusNotFound && !strings.Contains(string(msg), "no ") {
			msg = []byte("this flowgo has no /tap (an older version?)")
		}
		fmt.Fprintf(e.stderr, "flowgo tap: %s\n", strings.TrimSpace(string(msg)))
		return exitFailure
	}

	w := bufio.NewWriter(e.stdout)
	defer w.Flush()
	dec := json.NewDecoder(resp.Body)
	var shown, lost int64
	for {
		var ev pipeline.TapEvent
		if err := dec.Decode(&ev); err != nil {
			if ctx.Err() == nil && !errors.Is(err, io.EOF) {
				w.Flush()
				fmt.Fprintf(e.stderr, "flowgo tap: the stream broke: %v\n", err)
				tapSummary(e, shown, lost)
				return exitFailure
			}
			break
		}
		switch {
		case ev.Lost > 0 && ev.Record == "" && ev.Frame == "":
			lost = ev.Lost
			continue
		case ev.Frame != "" || ev.Reason != "":
			component := "input " + ev.Input
			if ev.Output != "" {
				component = "output " + ev.Output
			}
			fmt.Fprintf(w, "%s %s: %s: %s\n", component, ev.Origin, ev.Reason, strconv.Quote(ev.Frame))
		default:
			w.WriteString(ev.Record)
			w.WriteByte('\n')
		}
		shown++
		if err := w.Flush(); err != nil {
			return exitFailure // stdout closed (| head): done
		}
	}
	w.Flush()
	tapSummary(e, shown, lost)
	return exitOK
}

// tapSummary tells on stderr what the tap did not show.
func tapSummary(e *env, shown, lost int64) {
	if lost > 0 {
		fmt.Fprintf(e.stderr, "flowgo tap: %d shown, %d not shown (the tap samples at most 1000 records/s and drops what is not read in time)\n", shown, lost)
	}
}

// tapURL accepts a URL or host:port.
func tapURL(s string) (*url.URL, error) {
	if !strings.Contains(s, "://") {
		s = "http://" + s
	}
	u, err := url.Parse(s)
	if err != nil {
		return nil, err
	}
	if u.Scheme != "http" && u.Scheme != "https" || u.Host == "" {
		return nil, fmt.Errorf("%q: want http://HOST:PORT or HOST:PORT", s)
	}
	return u, nil
}
