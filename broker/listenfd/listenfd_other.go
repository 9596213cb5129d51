//go:build !linux

package listenfd

import (
	"errors"
	"net"
	"os"
)

var errNotLinux = errors.New("listenfd: inherited sockets need Linux (shutdown(2) stopping a listener)")

// Bind needs Linux.
func Bind(ip string) (*os.File, string, error) { return nil, "", errNotLinux }

// Stop needs Linux.
func Stop(f *os.File) error { return errNotLinux }

// Socket is a TCP socket inherited bound from the parent.
type Socket struct{}

// Open needs Linux.
func Open(fd int) (*Socket, error) { return nil, errNotLinux }

// Addr is the socket's address.
func (s *Socket) Addr() net.Addr { return nil }

// Listen needs Linux.
func (s *Socket) Listen() (net.Listener, error) { return nil, errNotLinux }
