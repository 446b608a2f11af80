// Command flowgo collects, converts and ships logs. See README.md, and
// `flowgo -h` for the commands.
package main

import (
	"context"
	"os"

	// IANA zone names (rfc3164_timezone) must work in a minimal container
	// image without /usr/share/zoneinfo; this embeds the database (~450 KB).
	_ "time/tzdata"
)

func main() {
	os.Exit(run(context.Background(), os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}
