//go:build unix

package dirlock

import (
	"errors"
	"os"
	"syscall"
)

// Lock takes an exclusive advisory lock on the file at path (created if
// missing); the kernel drops it when the process dies, so a killed store
// never blocks the next open. It returns ErrLocked if another holder has it.
// Closing the file releases the lock.
func Lock(path string) (*os.File, error) {
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
