//go:build !unix

package queue

import "os"

// flock is a no-op where flock(2) does not exist: one queue directory per
// process is then the operator's to ensure.
func flock(*os.File) error { return nil }
