// Package testoutput registers output types whose instances tests create
// themselves (in-memory collectors, blockable outputs) and hand to the
// pipeline through the config: an [output] table of the registered type
// names the instance with its id key.
package testoutput

import (
	"fmt"
	"sync"

	"github.com/flowgo/flowgo"
	"github.com/flowgo/flowgo/output"
)

// Registry holds the instances of one registered output type by id.
type Registry[T output.Output] struct {
	mu   sync.Mutex
	byID map[string]T
}

// Register registers the output type typ, with framing noop (the instances
// get records, not bytes), and returns its registry. Call it from init.
func Register[T output.Output](typ string) *Registry[T] {
	r := &Registry[T]{byID: map[string]T{}}
	output.Register(typ, output.Type{
		DefaultFraming: func(string) flowgo.Framing { return flowgo.FramingNoop },
		Parse: func(c output.Config) (output.Builder, error) {
			var k struct {
				ID string `toml:"id"`
			}
			if err := c.Section.Decode(&k); err != nil {
				return nil, err
			}
			r.mu.Lock()
			defer r.mu.Unlock()
			o, ok := r.byID[k.ID]
			if !ok {
				return nil, fmt.Errorf("no test output with id %q", k.ID)
			}
			return output.BuilderFunc(func() (output.Output, error) { return o, nil }), nil
		},
	})
	return r
}

// Add makes o the instance that a table with id = "id" gets.
func (r *Registry[T]) Add(id string, o T) {
	r.mu.Lock()
	r.byID[id] = o
	r.mu.Unlock()
}
