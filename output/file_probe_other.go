//go:build !unix

package output

import (
	"fmt"
	"os"
)

// writableDir reports whether dir is a directory; this system has no
// access(2) to tell more without creating a file.
func writableDir(dir string) error {
	fi, err := os.Stat(dir)
	if err != nil {
		return err
	}
	if !fi.IsDir() {
		return fmt.Errorf("%s is not a directory", dir)
	}
	return nil
}
