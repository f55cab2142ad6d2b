//go:build unix

package parquetstore

import (
	"errors"
	"os"
	"syscall"
)

// lockDir takes an exclusive advisory lock on path; the kernel drops it when
// the process dies, so a killed store never blocks the next Open.
func lockDir(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, ErrLocked
		}
		return nil, err
	}
	return f, nil
}
