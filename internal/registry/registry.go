// Package registry is the one registry type behind the four categories of
// flowgo components (input types, decoders, encoders, output types): names
// from the TOML config (`type`, `format`), with aliases, registered from init.
package registry

import (
	"fmt"
	"slices"
	"strings"
	"sync"
)

// Registry maps names and aliases to values of type T. Its methods are safe
// for concurrent use.
type Registry[T any] struct {
	kind    string // "input type", for messages
	mu      sync.RWMutex
	entries map[string]T
	aliases map[string]string
}

// New returns an empty registry for kind ("input type", "output format").
func New[T any](kind string) *Registry[T] {
	return &Registry[T]{kind: kind, entries: map[string]T{}, aliases: map[string]string{}}
}

// Register adds v under name and each alias. It is meant for init
// functions and panics on an empty or duplicate name: that is a programming
// error, found by the first test run.
func (r *Registry[T]) Register(name string, v T, aliases ...string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if name == "" {
		panic(r.kind + ": Register with an empty name")
	}
	for _, n := range append([]string{name}, aliases...) {
		_, dup1 := r.entries[n]
		_, dup2 := r.aliases[n]
		if dup1 || dup2 {
			panic(r.kind + ": Register called twice for " + n)
		}
	}
	r.entries[name] = v
	for _, a := range aliases {
		r.aliases[a] = name
	}
}

// Lookup returns the value registered under name or one of its aliases, and
// the canonical name. An unknown name gives an error listing the known ones.
func (r *Registry[T]) Lookup(name string) (T, string, error) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	if canon, ok := r.aliases[name]; ok {
		name = canon
	}
	v, ok := r.entries[name]
	if !ok {
		var zero T
		return zero, "", fmt.Errorf("%s %q unknown (known: %s)", r.kind, name, strings.Join(r.namesLocked(), ", "))
	}
	return v, name, nil
}

// Names returns the registered names and aliases, sorted.
func (r *Registry[T]) Names() []string {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.namesLocked()
}

func (r *Registry[T]) namesLocked() []string {
	out := make([]string, 0, len(r.entries)+len(r.aliases))
	for n := range r.entries {
		out = append(out, n)
	}
	for a := range r.aliases {
		out = append(out, a)
	}
	slices.Sort(out)
	return out
}
