package input

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"sync"

	"github.com/flowgo/flowgo"
)

func init() {
	Register("stdin", Type{Parse: parseStdin, Stream: true})
}

// stdinInput reads one stream, typically a file piped in, as fast as the
// machine allows: one goroutine frames the stream into chunks of raw frames,
// a pool of workers decodes chunks in parallel, and a sequencer hands the
// batches to the pipeline in stream order, so record order is kept.
type stdinInput struct {
	c Config
}

// parseStdin: the stdin input has no keys of its own.
func parseStdin(c Config) (Builder, error) {
	if c.Stdin == nil {
		c.Stdin = os.Stdin
	}
	return BuilderFunc(func() (Input, error) { return &stdinInput{c: c}, nil }), nil
}

// rawChunk is a run of consecutive frames copied out of the stream.
type rawChunk struct {
	data  []byte
	ends  []int
	lines []int64 // line (line framing) or frame number of each frame
	// lineNumbers says whether lines holds line numbers or frame numbers.
	lineNumbers bool
	errs        []error // framing error of each frame, nil for a good one

	// Filled by the worker.
	batch   *flowgo.Batch
	rejects []chunkReject
	done    chan struct{}
}

type chunkReject struct {
	frame int
	err   error
}

func (c *rawChunk) frame(i int) []byte {
	start := 0
	if i > 0 {
		start = c.ends[i-1]
	}
	return c.data[start:c.ends[i]]
}

func (c *rawChunk) reset() {
	c.data = c.data[:0]
	c.ends = c.ends[:0]
	c.lines = c.lines[:0]
	c.errs = c.errs[:0]
	c.batch = nil
	c.rejects = c.rejects[:0]
}

var chunkPool = sync.Pool{New: func() any { return &rawChunk{done: make(chan struct{}, 1)} }}

func (in *stdinInput) Run(ctx context.Context, sink Sink) error {
	c := in.c
	workers := max(c.Workers, 1)
	work := make(chan *rawChunk, workers)
	ordered := make(chan *rawChunk, 2*workers)

	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for ch := range work {
				in.decodeChunk(ch, sink)
				ch.done <- struct{}{}
			}
		})
	}
	seqDone := make(chan struct{})
	go func() {
		defer close(seqDone)
		in.sequence(ordered, sink)
	}()

	// The reader may sit in a Read on a terminal or pipe that never ends;
	// on shutdown we stop waiting for it. dispatch (under mu) is how it
	// sends, so that closing the channels cannot race with a send.
	var (
		mu      sync.Mutex
		stopped bool
	)
	dispatch := func(ch *rawChunk) bool {
		mu.Lock()
		defer mu.Unlock()
		if stopped {
			return false
		}
		ordered <- ch
		work <- ch
		return true
	}
	stop := func() {
		mu.Lock()
		if !stopped {
			stopped = true
			close(work)
			close(ordered)
		}
		mu.Unlock()
	}

	readErr := make(chan error, 1)
	go func() {
		readErr <- in.read(ctx, dispatch, sink)
	}()
	var err error
	select {
	case err = <-readErr:
	case <-ctx.Done():
		// Let the reader hand over what it holds if it is not blocked.
		select {
		case err = <-readErr:
		default:
		}
	}
	stop()
	wg.Wait()
	<-seqDone
	return err
}

// read frames the stream into chunks and dispatches them.
func (in *stdinInput) read(ctx context.Context, dispatch func(*rawChunk) bool, sink Sink) error {
	c := in.c
	var r io.Reader = c.Stdin
	if bc, ok := sink.(ByteCounter); ok {
		r = &countingReader{r: r, count: bc.CountBytes}
	}
	sp := NewSplitter(r, c.Framing, c.MaxMessageSize, c.Truncate)
	sp.useBudget(c.Buffers, &bufHolder{})
	defer sp.Close()
	ch := chunkPool.Get().(*rawChunk)
	ch.reset()
	flush := func() bool {
		if len(ch.ends) == 0 {
			return true
		}
		full := ch
		ch = chunkPool.Get().(*rawChunk)
		ch.reset()
		return dispatch(full)
	}
	ok := true
	sp.BeforeRead = func() { ok = ok && flush() }
	sp.BeforeWait = sp.BeforeRead
	for ok {
		frame, err := sp.Next()
		if frame == nil && err != nil {
			if errors.Is(err, io.EOF) {
				err = nil
			}
			if errors.Is(err, ErrFramingLost) {
				// The frame was rejected; what follows cannot be framed.
				err = fmt.Errorf("stdin stopped at byte %d (that frame was rejected; what follows it is not read): %w", sp.Offset(), err)
			} else if n := sp.Buffered(); n > 0 {
				c.Log.Warn("stdin: incomplete frame discarded", "bytes", n)
			}
			flush()
			return err
		}
		if ctx.Err() != nil {
			flush()
			return nil
		}
		ch.data = append(ch.data, frame...)
		ch.ends = append(ch.ends, len(ch.data))
		if ch.lineNumbers = sp.Framing() == flowgo.FramingLine; ch.lineNumbers {
			ch.lines = append(ch.lines, sp.Line())
		} else {
			ch.lines = append(ch.lines, sp.Frames())
		}
		ch.errs = append(ch.errs, err)
		if len(ch.ends) >= c.BatchRecords || len(ch.data) >= c.BatchBytes {
			ok = flush()
		}
	}
	return nil
}

// decodeChunk decodes every frame of ch into a new batch, and has the
// pipeline encode it, here on the worker.
func (in *stdinInput) decodeChunk(ch *rawChunk, sink Sink) {
	b := flowgo.GetBatch()
	b.Source = in.c.Name
	for i := range ch.ends {
		if ch.errs[i] != nil {
			ch.rejects = append(ch.rejects, chunkReject{frame: i, err: ch.errs[i]})
			continue
		}
		r := b.Next()
		if err := in.c.Decoder.Decode(ch.frame(i), r, &b.Arena); err != nil {
			b.Drop()
			ch.rejects = append(ch.rejects, chunkReject{frame: i, err: err})
		}
	}
	if b.Len() > 0 {
		sink.Prepare(b)
	}
	ch.batch = b
}

// countingReader reports the bytes read from r to count.
type countingReader struct {
	r     io.Reader
	count func(int)
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	if n > 0 {
		c.count(n)
	}
	return n, err
}

// sequence hands batches and rejects over in stream order.
func (in *stdinInput) sequence(ordered <-chan *rawChunk, sink Sink) {
	for ch := range ordered {
		<-ch.done
		what := "frame "
		if ch.lineNumbers {
			what = "line "
		}
		for _, rj := range ch.rejects {
			sink.Reject(what+strconv.FormatInt(ch.lines[rj.frame], 10), ch.frame(rj.frame), rj.err)
		}
		if ch.batch.Len() > 0 {
			sink.Put(ch.batch) // on error the sink counted the records as lost
		} else {
			flowgo.PutBatch(ch.batch)
		}
		ch.reset()
		chunkPool.Put(ch)
	}
}
