// Command flowgo collects, converts and ships logs. See README.md, and
// `flowgo -h` for the commands.
package main

import (
	"context"
	"os"
)

func main() {
	os.Exit(run(context.Background(), os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}
