// Package dirlock keeps two processes from opening one store folder: the
// embedded vector store and the embedded analytics store lock their data
// directories with it.
package dirlock

import "errors"

// ErrLocked: another process holds the lock.
var ErrLocked = errors.New("locked by another process")
