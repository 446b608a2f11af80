package output

import (
	"context"
	"fmt"
	"io"
	"os"

	"github.com/flowgo/flowgo"
)

func init() {
	Register("stdout", Type{Parse: parseStdout, DefaultFraming: func(string) flowgo.Framing { return flowgo.FramingLine }}, "debug")
}

// stdoutOutput writes each batch to standard output with one write call.
// Only records go to stdout; flowgo's own messages go to stderr.
type stdoutOutput struct {
	w io.Writer
}

// parseStdout: the stdout output has no keys of its own.
func parseStdout(c Config) (Builder, error) {
	w := c.Stdout
	if w == nil {
		w = os.Stdout
	}
	return BuilderFunc(func() (Output, error) { return &stdoutOutput{w: w}, nil }), nil
}

func (o *stdoutOutput) Write(ctx context.Context, b *flowgo.Batch) error {
	if len(b.Data) == 0 {
		return nil
	}
	if _, err := o.w.Write(b.Data); err != nil {
		return fmt.Errorf("stdout: %w", err)
	}
	return nil
}

func (o *stdoutOutput) Close(ctx context.Context) error {
	if f, ok := o.w.(interface{ Sync() error }); ok && o.w != os.Stdout {
		return f.Sync()
	}
	return nil
}
