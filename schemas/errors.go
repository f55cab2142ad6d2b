package schemas

import (
	"errors"
	"fmt"
)

var (
	// ErrInvalid is wrapped by every rejection of a record: a *FieldError
	// or a *SyntaxError. Such a record will never decode, so it belongs on
	// a dead-letter topic rather than in a retry.
	ErrInvalid = errors.New("invalid record")
)

// FieldError rejects a record because of one field, or because of the record
// as a whole when Field is "record". It wraps ErrInvalid.
type FieldError struct {
	// Field is the path of the field, prefixed with the record's role:
	// "event.user_id", "catalog.category_path[2]", "reply.items[0].score";
	// a catalog tombstone's are "tombstone.key" and "tombstone.timestamp".
	Field string
	// Reason says what is wrong: "missing", "wrong type: got string, want
	// number", "5000 out of range 1..1000".
	Reason string
}

// Error returns "field: reason".
func (e *FieldError) Error() string { return e.Field + ": " + e.Reason }

// Unwrap returns ErrInvalid.
func (e *FieldError) Unwrap() error { return ErrInvalid }

// SyntaxError rejects a record that is not one well-formed JSON value. It
// wraps ErrInvalid.
type SyntaxError struct {
	// Offset is the byte offset in the record where the decoder gave up.
	Offset int
	// Msg describes the problem.
	Msg string
}

// Error returns "malformed JSON at offset N: msg".
func (e *SyntaxError) Error() string {
	return fmt.Sprintf("malformed JSON at offset %d: %s", e.Offset, e.Msg)
}

// Unwrap returns ErrInvalid.
func (e *SyntaxError) Unwrap() error { return ErrInvalid }
