package stomp

import (
	"errors"
	"fmt"
)

// Kinds of protocol error; a *ProtocolError wraps exactly one of them.
var (
	ErrMalformed      = errors.New("stomp: malformed frame")
	ErrFrameTooLarge  = errors.New("stomp: frame too large")
	ErrTooManyHeaders = errors.New("stomp: too many headers")
	ErrHeaderTooLong  = errors.New("stomp: header line too long")
	ErrBodyTooLarge   = errors.New("stomp: body too large")
	ErrInvalidUTF8    = errors.New("stomp: invalid UTF-8 in header")
)

// ProtocolError is a framing violation by the peer. Unlike an I/O error, it
// leaves the connection writable, so a server can answer with an ERROR
// frame before closing.
type ProtocolError struct {
	Kind   error  // one of the Err* kinds above
	Detail string // what exactly, for the ERROR frame
}

func (e *ProtocolError) Error() string { return e.Kind.Error() + ": " + e.Detail }

// Unwrap lets errors.Is match the kind.
func (e *ProtocolError) Unwrap() error { return e.Kind }

func protoErr(kind error, format string, args ...any) error {
	return &ProtocolError{Kind: kind, Detail: fmt.Sprintf(format, args...)}
}
