//go:build !unix

package dirlock

import "os"

// Lock opens path; other systems get no cross-process lock.
func Lock(path string) (*os.File, error) {
	return os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
}
