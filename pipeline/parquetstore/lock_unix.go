//go:build unix

package parquetstore

import (
	"errors"
	"os"
	"syscall"
)

// lockShared blocks until it holds a shared flock on f (closing f releases
// it). The writer holds a manifest's exclusive lock only for the instant it
// takes to remove the name, so the wait is short.
func lockShared(f *os.File) error {
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_SH)
		if !errors.Is(err, syscall.EINTR) {
			return err
		}
	}
}

// tryLockExclusive takes an exclusive flock on f if no reader holds a
// shared one, without waiting.
func tryLockExclusive(f *os.File) (bool, error) {
	err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
	if errors.Is(err, syscall.EWOULDBLOCK) {
		return false, nil
	}
	return err == nil, err
}
