package main

import (
	"bufio"
	"context"
	"io"
	"os"
	"time"
)

// writeFile writes o.count records, framed, to o.out ("-": stdout). Unlike
// the network modes it generates every line, so that a big file holds no
// repeats (each RFC 5424 line carries its own sequence number).
func writeFile(ctx context.Context, o *options, stdout io.Writer) (res result, err error) {
	w := stdout
	if o.out != "-" {
		f, err := os.Create(o.out)
		if err != nil {
			return res, err
		}
		defer func() {
			if cerr := f.Close(); err == nil {
				err = cerr
			}
		}()
		w = f
	}
	bw := bufio.NewWriterSize(w, 1<<20)
	gen := o.generator(o.seed)
	var line, frame []byte
	res.start = time.Now()
	for i := range o.count {
		if i%65536 == 0 && ctx.Err() != nil {
			return res, errInterrupted
		}
		line = gen(line[:0])
		frame = appendFrame(frame[:0], line, o.framing)
		if _, err := bw.Write(frame); err != nil {
			return res, err
		}
		res.records++
		res.bytes += int64(len(frame))
	}
	if err := bw.Flush(); err != nil {
		return res, err
	}
	res.end = time.Now()
	return res, nil
}
