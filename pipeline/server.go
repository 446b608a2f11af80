package pipeline

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/flowgo/flowgo/config"
	"github.com/flowgo/flowgo/encoder"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// server serves a group's /metrics, /healthz, /readyz and /tap on the
// [metrics] listener. It reads the pipelines through pipelines (the
// group's Pipelines), which never waits for a reload, and the pipelines'
// state through atomics and locks held only briefly: a reload draining
// behind a stuck output never holds up an answer.
type server struct {
	pipelines func() []*Pipeline
	stall     time.Duration
	log       *slog.Logger
	ln        net.Listener
	http      *http.Server
	// tapCtx ends the /tap streams when the listener stops.
	tapCtx   context.Context
	stopTaps context.CancelFunc
}

// startServer listens on k.Listen and serves until stop.
func startServer(k metricsKeys, version string, log *slog.Logger, pipelines func() []*Pipeline) (*server, error) {
	ln, err := net.Listen("tcp", k.Listen)
	if err != nil {
		return nil, fmt.Errorf("[metrics] listen %s: %w", k.Listen, err)
	}
	s := &server{pipelines: pipelines, stall: k.StallTimeout, log: log, ln: ln}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	reg.MustRegister(&metricsCollector{pipelines: pipelines})
	info := prometheus.NewGauge(prometheus.GaugeOpts{Name: "flowgo_build_info", Help: "flowgo's version; the value is 1.",
		ConstLabels: prometheus.Labels{"version": version}})
	info.Set(1)
	reg.MustRegister(info)
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelError)}))
	mux.HandleFunc("/healthz", s.serveHealth)
	mux.HandleFunc("/readyz", s.serveReady)
	mux.HandleFunc("/tap", s.serveTap)
	s.http = &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	s.tapCtx, s.stopTaps = context.WithCancel(context.Background())
	go func() {
		if err := s.http.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("metrics listener", "error", err)
		}
	}()
	log.Info("metrics listening", "address", ln.Addr().String())
	return s, nil
}

// addr returns the address the server listens on.
func (s *server) addr() net.Addr { return s.ln.Addr() }

// stop ends the taps and shuts the server down.
func (s *server) stop() {
	s.stopTaps() // taps stream until their client leaves: end them
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if err := s.http.Shutdown(ctx); err != nil {
		s.log.Warn("stopping the metrics listener", "error", err)
	}
}

func (s *server) serveHealth(w http.ResponseWriter, r *http.Request) {
	now := time.Now()
	var all []ComponentHealth
	for _, p := range s.pipelines() {
		all = append(all, p.Live(s.stall, now)...)
	}
	writeHealth(w, all)
}

func (s *server) serveReady(w http.ResponseWriter, r *http.Request) {
	var all []ComponentHealth
	for _, p := range s.pipelines() {
		all = append(all, p.Ready()...)
	}
	writeHealth(w, all)
}

// serveTap streams what a tap shows, one JSON TapEvent per line, until
// the client leaves, n records were shown, or flowgo stops. Query keys:
// pipeline, input, output, format, rejected, n. It listens only where
// [metrics] listens.
func (s *server) serveTap(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	fail := func(code int, format string, args ...any) {
		http.Error(w, fmt.Sprintf(format, args...), code)
	}
	var ps []*Pipeline
	var names []string
	for _, p := range s.pipelines() {
		names = append(names, p.Name)
		if want := q.Get("pipeline"); want == "" || want == p.Name {
			ps = append(ps, p)
		}
	}
	if len(ps) == 0 {
		fail(http.StatusNotFound, "no pipeline %q (pipelines: %s)", q.Get("pipeline"), strings.Join(names, ", "))
		return
	}
	f := TapFilter{Input: q.Get("input"), Output: q.Get("output"), Rejected: q.Get("rejected") == "1" || q.Get("rejected") == "true"}
	if f.Input != "" && f.Output != "" {
		fail(http.StatusBadRequest, "input and output: choose one")
		return
	}
	var known []string
	found := f.Input == "" && f.Output == ""
	for _, p := range ps {
		for _, n := range p.InputNames() {
			known = append(known, "input "+strconv.Quote(n))
			found = found || n == f.Input
		}
		known = append(known, "output "+strconv.Quote(p.OutputName()))
		found = found || (f.Output != "" && p.OutputName() == f.Output)
	}
	if !found {
		slices.Sort(known)
		fail(http.StatusNotFound, "no such component (known: %s)", strings.Join(known, ", "))
		return
	}
	format := q.Get("format")
	if format == "" && f.Output == "" {
		format = "gelf"
	}
	if format != "" {
		enc, err := encoder.New(format, config.Empty().Output)
		if err != nil {
			fail(http.StatusBadRequest, "format: %v", err)
			return
		}
		f.Encoder = enc
	}
	limit := int64(-1)
	if v := q.Get("n"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 1 {
			fail(http.StatusBadRequest, "n: want a positive number, not %q", v)
			return
		}
		limit = n
	}
	t := NewTap(f)
	for _, p := range ps {
		defer p.Tap(t)()
	}
	w.Header().Set("Content-Type", "application/x-ndjson")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(w)
	rc.Flush()
	enc := json.NewEncoder(w)
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	var reported int64
	report := func() error {
		if lost := t.Lost(); lost != reported {
			reported = lost
			return enc.Encode(TapEvent{Lost: lost})
		}
		return nil
	}
	defer report()
	for shown := int64(0); shown != limit; {
		select {
		case e := <-t.Events():
			if err := enc.Encode(e); err != nil {
				return
			}
			shown++
			// Write what else is waiting, then flush once.
			for more := true; more && shown != limit; {
				select {
				case e := <-t.Events():
					if err := enc.Encode(e); err != nil {
						return
					}
					shown++
				default:
					more = false
				}
			}
			if rc.Flush() != nil {
				return
			}
		case <-tick.C:
			if report() != nil || rc.Flush() != nil {
				return
			}
		case <-r.Context().Done():
			return
		case <-s.tapCtx.Done():
			return
		}
	}
}

// healthBody is the JSON of /healthz and /readyz.
type healthBody struct {
	Status     string            `json:"status"` // "ok" or "unhealthy"
	Unhealthy  []ComponentHealth `json:"unhealthy,omitempty"`
	Components []ComponentHealth `json:"components"`
}

func writeHealth(w http.ResponseWriter, all []ComponentHealth) {
	body := healthBody{Status: "ok", Components: all}
	for _, c := range all {
		if !c.Healthy {
			body.Status = "unhealthy"
			body.Unhealthy = append(body.Unhealthy, c)
		}
	}
	w.Header().Set("Content-Type", "application/json")
	if body.Status != "ok" {
		w.WriteHeader(http.StatusServiceUnavailable)
	}
	json.NewEncoder(w).Encode(body)
}
