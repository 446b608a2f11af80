// Command flowgo-loadgen sends realistic syslog traffic (RFC 5424 or RFC 3164
// lines from internal/sample) to a syslog server over TCP, TLS or UDP, as
// fast as it can or at a given rate, and reports what it sent. With -o it
// writes the same traffic to a file instead, to make big inputs for pipe
// benchmarks.
//
// Lines are generated before the clock starts and written in large chunks,
// so that generating and framing never limit the rate: the server under test
// should be the bottleneck, not the load generator. See bench/README.md.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
