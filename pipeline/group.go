package pipeline

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/flowgo/flowgo/config"
)

// DefaultStallTimeout is how long an output write may last before /healthz
// calls the pipeline wedged.
const DefaultStallTimeout = 5 * time.Minute

// DefaultMetricsListen is where the metrics and health endpoints listen
// when no [metrics] table says otherwise; flowgo tap reads it there.
const DefaultMetricsListen = "127.0.0.1:9281"

// metricsKeys is the [metrics] table.
type metricsKeys struct {
	Listen       string        `toml:"listen"`
	StallTimeout time.Duration `toml:"stall_timeout"`
}

// Group runs the pipelines of several config files in one process, one
// pipeline per file, named after the file without ".toml". Pipelines are
// isolated: each has its own queue, so a stuck output in one never slows
// another. A Group also serves /metrics, /healthz and /readyz when a file
// has a [metrics] table (server.go), and reloads every file on request
// (SIGHUP). The dead-letter files of all its pipelines are shared by path
// through the group, across reloads.
type Group struct {
	// Set by LoadGroup, never changed.
	paths   []string
	opts    Options
	log     *slog.Logger
	metrics metricsKeys
	version string
	dead    *deadLetters

	// reloading serialises Reload. A reload holds it while inputs drain,
	// which may take as long as a stuck output: nothing the HTTP side does
	// takes it.
	reloading sync.Mutex

	// mu guards the fields below, held only to read or change them, never
	// across a wait: the HTTP side lists the pipelines through it.
	mu      sync.Mutex
	members map[string]*member
	runCtx  context.Context
	running int           // pipelines whose Run has not returned
	allDone chan struct{} // closed when running drops to 0 after Run started them
	ended   bool          // allDone is closed: no pipeline may start any more
	errs    []error
	srv     *server
}

type member struct {
	p      *Pipeline
	path   string
	cancel context.CancelFunc
}

// loaded is one parsed and built file.
type loaded struct {
	name, path string
	file       *config.File
	metrics    metricsKeys
	hasMetrics bool
}

// expandPaths turns files and directories into config files: every *.toml
// of a directory, sorted.
func expandPaths(paths []string) ([]string, error) {
	var out []string
	for _, p := range paths {
		fi, err := os.Stat(p)
		if err != nil {
			return nil, &config.Error{File: p, Msg: err.Error()}
		}
		if !fi.IsDir() {
			out = append(out, p)
			continue
		}
		matches, err := filepath.Glob(filepath.Join(p, "*.toml"))
		if err != nil {
			return nil, err
		}
		if len(matches) == 0 {
			return nil, &config.Error{File: p, Msg: "directory holds no *.toml file"}
		}
		slices.Sort(matches)
		out = append(out, matches...)
	}
	return out, nil
}

// Name returns the pipeline name of a config file: its base name without ".toml".
func Name(path string) string {
	return strings.TrimSuffix(filepath.Base(path), ".toml")
}

// parseAll reads every file and its [metrics] table.
func parseAll(paths []string) ([]*loaded, metricsKeys, error) {
	files, err := expandPaths(paths)
	if err != nil {
		return nil, metricsKeys{}, err
	}
	var out []*loaded
	byName := map[string]string{}
	mk := metricsKeys{StallTimeout: DefaultStallTimeout}
	var mkFrom string
	for _, path := range files {
		name := Name(path)
		if prev, dup := byName[name]; dup {
			return nil, mk, &config.Error{File: path, Msg: fmt.Sprintf("pipeline name %q is also the name of %s: rename one file", name, prev)}
		}
		byName[name] = path
		f, err := config.Load(path)
		if err != nil {
			return nil, mk, err
		}
		l := &loaded{name: name, path: path, file: f}
		if s, ok := f.Tables["metrics"]; ok {
			k := metricsKeys{Listen: DefaultMetricsListen, StallTimeout: DefaultStallTimeout}
			if err := s.Decode(&k); err != nil {
				return nil, mk, err
			}
			if k.StallTimeout <= 0 {
				return nil, mk, s.Errorf("stall_timeout", "must be positive, such as \"5m\"")
			}
			if mkFrom != "" && k != mk {
				return nil, mk, s.Errorf("", "differs from the [metrics] table of %s: one process has one metrics listener", mkFrom)
			}
			mk, mkFrom = k, path
			l.metrics, l.hasMetrics = k, true
		}
		out = append(out, l)
	}
	return out, mk, nil
}

// checkAddresses refuses two inputs, in any pipelines, on one address.
func checkAddresses(plans map[string]*plan, paths map[string]string) error {
	type use struct {
		pipeline, input, network, address string
	}
	var uses []use
	for _, n := range slices.Sorted(maps.Keys(plans)) {
		for _, ip := range plans[n].inputs {
			if ip.network == "" {
				continue
			}
			u := use{n, ip.section, ip.network, ip.address}
			for _, o := range uses {
				if collide(o.network, o.address, u.network, u.address) {
					return &config.Error{File: paths[n], Key: u.input + ".listen",
						Msg: fmt.Sprintf("%s %s is also used by %s in %s", u.network, u.address, o.input, paths[o.pipeline])}
				}
			}
			uses = append(uses, u)
		}
	}
	return nil
}

// LoadGroup reads and builds every config file (a directory stands for its
// *.toml files). version is reported in flowgo_build_info. Every file is
// parsed and checked, alone and against the others, before anything is
// built; with opts.CheckOnly nothing is.
func LoadGroup(paths []string, opts Options, version string) (*Group, error) {
	log := opts.Log
	if log == nil {
		log = slog.Default()
	}
	files, mk, err := parseAll(paths)
	if err != nil {
		return nil, err
	}
	g := &Group{paths: paths, opts: opts, log: log, metrics: mk, version: version, dead: newDeadLetters(),
		members: map[string]*member{}, allDone: make(chan struct{})}
	var ps []*Pipeline
	plans, pathOf := map[string]*plan{}, map[string]string{}
	for _, l := range files {
		o := opts
		o.Name, o.Path = l.name, l.path
		p, err := parse(l.file, o, g.dead)
		if err != nil {
			return nil, err
		}
		ps = append(ps, p)
		g.members[l.name] = &member{p: p, path: l.path}
		plans[l.name], pathOf[l.name] = p.plan.Load(), l.path
	}
	if err := checkAcross(plans, pathOf); err != nil {
		return nil, err
	}
	if opts.CheckOnly {
		return g, nil
	}
	for i, p := range ps {
		if err := p.build(); err != nil {
			for _, q := range ps[:i] {
				q.Release()
			}
			return nil, err
		}
	}
	return g, nil
}

// checkAcross checks what no file can tell alone: two inputs, in any
// pipelines, on one address; one dead-letter file with two framings.
// plans and paths are by pipeline name.
func checkAcross(plans map[string]*plan, paths map[string]string) error {
	if err := checkAddresses(plans, paths); err != nil {
		return err
	}
	var dead []*deadLetterSpec
	for _, n := range slices.Sorted(maps.Keys(plans)) {
		dead = append(dead, plans[n].deadLetters()...)
	}
	return checkDeadLetterFramings(dead)
}

// release frees what the group's pipelines opened, for a group that will
// not run.
func (g *Group) release() {
	for _, m := range g.members {
		m.p.Release()
	}
}

// Pipelines returns the group's pipelines, sorted by name.
func (g *Group) Pipelines() []*Pipeline {
	g.mu.Lock()
	defer g.mu.Unlock()
	names := slices.Sorted(maps.Keys(g.members))
	out := make([]*Pipeline, len(names))
	for i, n := range names {
		out[i] = g.members[n].p
	}
	return out
}

// MetricsAddr returns the address the metrics listener is bound to, nil
// when there is none (or before Run).
func (g *Group) MetricsAddr() net.Addr {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.srv == nil {
		return nil
	}
	return g.srv.addr()
}

// Run runs every pipeline until ctx ends or all have finished, then drains
// them. It returns the pipelines' errors.
func (g *Group) Run(ctx context.Context) error {
	if g.metrics.Listen != "" {
		srv, err := startServer(g.metrics, g.version, g.log, g.Pipelines)
		if err != nil {
			g.release()
			return err
		}
		g.mu.Lock()
		g.srv = srv
		g.mu.Unlock()
		defer srv.stop()
	}
	g.mu.Lock()
	g.runCtx = ctx
	for name, m := range g.members {
		g.startLocked(name, m)
	}
	if g.running == 0 {
		g.endLocked()
	}
	g.mu.Unlock()
	<-g.allDone
	g.mu.Lock()
	defer g.mu.Unlock()
	return errors.Join(g.errs...)
}

// startLocked runs m's pipeline on a goroutine of its own. Called with g.mu
// held.
func (g *Group) startLocked(name string, m *member) {
	ctx, cancel := context.WithCancel(g.runCtx)
	m.cancel = cancel
	g.running++
	go func() {
		err := m.p.Run(ctx)
		cancel()
		g.mu.Lock()
		defer g.mu.Unlock()
		if err != nil {
			g.errs = append(g.errs, fmt.Errorf("pipeline %s: %w", name, err))
		}
		g.running--
		if g.running == 0 {
			g.endLocked()
		}
	}()
}

// endLocked tells Run that every pipeline has ended. Called with g.mu held.
func (g *Group) endLocked() {
	if !g.ended {
		g.ended = true
		close(g.allDone)
	}
}

// HardStop gives up delivering in every pipeline (second signal).
func (g *Group) HardStop() {
	for _, p := range g.Pipelines() {
		p.HardStop()
	}
}

// Reload re-reads every config file. If any is invalid, nothing changes
// and the error says why. Otherwise each file is compared with its running
// pipeline section by section, and only what changed is built: unchanged
// inputs keep running (connections included) and reopen their files and
// reload their certificates, changed ones are replaced, a changed output
// is swapped (see Update); pipelines of new files start and those of
// removed files stop, draining first. Records accepted before the reload
// are delivered. Reload never holds what the HTTP side needs while inputs
// drain.
func (g *Group) Reload() error {
	g.reloading.Lock()
	defer g.reloading.Unlock()
	g.mu.Lock()
	live := g.runCtx != nil && !g.ended
	members := maps.Clone(g.members)
	g.mu.Unlock()
	if !live {
		return errNotRunning
	}
	for _, m := range members {
		// Run starts each pipeline's inputs at once: wait for that, so
		// that a SIGHUP at start compares with what runs.
		select {
		case <-m.p.in.begun:
		case <-m.p.hardCtx.Done():
		}
	}
	files, mk, err := parseAll(g.paths)
	if err != nil {
		return err
	}
	if mk != g.metrics {
		g.log.Warn("[metrics] changes take effect at the next restart")
	}

	// Parse and compare every file; check them against each other; only
	// then build what changed.
	updates := map[string]*Update{}
	added := map[string]*member{}
	plans, pathOf := map[string]*plan{}, map[string]string{} // as they will be, for the checks
	for _, l := range files {
		pathOf[l.name] = l.path
		if m, ok := members[l.name]; ok {
			u, err := m.p.diff(l.file)
			if err != nil {
				return err
			}
			updates[l.name] = u
			plans[l.name] = u.np
			continue
		}
		o := g.opts
		o.Name, o.Path = l.name, l.path
		p, err := parse(l.file, o, g.dead)
		if err != nil {
			return err
		}
		added[l.name] = &member{p: p, path: l.path}
		plans[l.name] = p.plan.Load()
	}
	if err := checkAcross(plans, pathOf); err != nil {
		return err
	}
	discard := func() {
		for _, u := range updates {
			u.Discard()
		}
		for _, m := range added {
			m.p.Release()
		}
	}
	for _, u := range updates {
		if err := u.build(); err != nil {
			discard()
			return err
		}
	}
	for _, m := range added {
		if err := m.p.build(); err != nil {
			discard()
			return err
		}
	}

	// Phase 1: stop what goes away, so that its addresses are free. The
	// drains happen without g.mu.
	for name, m := range members {
		if _, keep := updates[name]; keep {
			continue
		}
		g.mu.Lock()
		delete(g.members, name)
		g.mu.Unlock()
		g.log.Info("pipeline removed: draining", "pipeline", name)
		m.p.in.stopAll()
		m.cancel()
	}
	for _, u := range updates {
		u.Stop()
	}
	// Phase 2: start.
	var errs []error
	for name, u := range updates {
		if u.Changed() {
			g.log.Info("pipeline reconfigured", "pipeline", name, "inputs_restarted", len(u.added), "output_replaced", u.swap)
		}
		if err := u.Start(); err != nil {
			errs = append(errs, fmt.Errorf("pipeline %s: %w", name, err))
		}
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	for name, m := range added {
		if g.ended {
			// Every pipeline ended meanwhile: Run has returned.
			m.p.Release()
			continue
		}
		g.members[name] = m
		g.startLocked(name, m)
		g.log.Info("pipeline added", "pipeline", name)
	}
	return errors.Join(errs...)
}
