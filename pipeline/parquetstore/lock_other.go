//go:build !unix

package parquetstore

import "os"

// lockShared takes no lock: other systems get no cross-process lock (see
// Snapshot).
func lockShared(*os.File) error { return nil }

// tryLockExclusive always succeeds: no reader can hold a lock.
func tryLockExclusive(*os.File) (bool, error) { return true, nil }
