package listenfd

import (
	"errors"
	"fmt"
	"net"
	"os"
	"syscall"
)

// bindTries bounds Bind's draws of a port that another process took
// between the draw and the bind.
const bindTries = 20

// Bind binds a TCP socket to a free port on ip without listening on it,
// for a child process to inherit (exec.Cmd.ExtraFiles). It returns the
// socket and its address. The caller keeps it open across the child's
// restarts and calls Stop after each of the child's exits.
func Bind(ip string) (*os.File, string, error) {
	addr := net.ParseIP(ip)
	if addr == nil || addr.To4() == nil {
		return nil, "", fmt.Errorf("listenfd: bind %q: want an IPv4 address", ip)
	}
	var sa syscall.SockaddrInet4
	copy(sa.Addr[:], addr.To4())
	var last error
	for range bindTries {
		// The kernel's free port, then an explicit bind of it: a port
		// bound explicitly stays the socket's while it does not listen
		// (a port the kernel chose at bind would be let go by the first
		// Stop).
		port, err := drawPort(sa)
		if err != nil {
			return nil, "", err
		}
		sa.Port = port
		fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
		if err != nil {
			return nil, "", fmt.Errorf("listenfd: socket: %w", err)
		}
		if err := syscall.Bind(fd, &sa); err != nil {
			syscall.Close(fd)
			if errors.Is(err, syscall.EADDRINUSE) {
				last = err // taken since the draw: draw again
				continue
			}
			return nil, "", fmt.Errorf("listenfd: bind %s:%d: %w", ip, port, err)
		}
		hp := net.JoinHostPort(ip, fmt.Sprint(port))
		return os.NewFile(uintptr(fd), "tcp "+hp), hp, nil
	}
	return nil, "", fmt.Errorf("listenfd: bind %s: %d ports taken as soon as drawn: %w", ip, bindTries, last)
}

// drawPort is a port the kernel finds free on sa's address.
func drawPort(sa syscall.SockaddrInet4) (int, error) {
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		return 0, fmt.Errorf("listenfd: socket: %w", err)
	}
	defer syscall.Close(fd)
	sa.Port = 0
	if err := syscall.Bind(fd, &sa); err != nil {
		return 0, fmt.Errorf("listenfd: draw a port: %w", err)
	}
	got, err := syscall.Getsockname(fd)
	if err != nil {
		return 0, fmt.Errorf("listenfd: draw a port: %w", err)
	}
	return got.(*syscall.SockaddrInet4).Port, nil
}

// Stop makes the socket f stop listening, if it listens: new
// connections are refused and those waiting in its backlog are reset.
// The socket keeps its address, and a later Socket.Listen listens on it
// again. The parent calls it on its copy after the child's exit.
func Stop(f *os.File) error {
	return control(f, func(fd int) error {
		if on, err := syscall.GetsockoptInt(fd, syscall.SOL_SOCKET, syscall.SO_ACCEPTCONN); err != nil {
			return fmt.Errorf("listenfd: stop %s: %w", f.Name(), err)
		} else if on != 0 {
			if err := syscall.Shutdown(fd, syscall.SHUT_RD); err != nil {
				return fmt.Errorf("listenfd: stop %s: %w", f.Name(), err)
			}
		}
		if err := syscall.SetsockoptInt(fd, syscall.SOL_SOCKET, syscall.SO_REUSEADDR, 0); err != nil {
			return fmt.Errorf("listenfd: stop %s: %w", f.Name(), err)
		}
		return nil
	})
}

// Socket is a TCP socket inherited bound from the parent.
type Socket struct {
	f    *os.File // held for the process's life, so fd stays this socket
	addr net.Addr
}

// Open takes descriptor fd, which must be a TCP socket bound to an
// address (listening or not).
func Open(fd int) (*Socket, error) {
	name := Addr(fd)
	typ, err := syscall.GetsockoptInt(fd, syscall.SOL_SOCKET, syscall.SO_TYPE)
	if err != nil {
		return nil, fmt.Errorf("listenfd: %s: not an inherited socket: %w", name, err)
	}
	if typ != syscall.SOCK_STREAM {
		return nil, fmt.Errorf("listenfd: %s: not a stream socket (type %d)", name, typ)
	}
	sa, err := syscall.Getsockname(fd)
	if err != nil {
		return nil, fmt.Errorf("listenfd: %s: %w", name, err)
	}
	var addr *net.TCPAddr
	switch sa := sa.(type) {
	case *syscall.SockaddrInet4:
		addr = &net.TCPAddr{IP: net.IP(sa.Addr[:]).To16(), Port: sa.Port}
	case *syscall.SockaddrInet6:
		addr = &net.TCPAddr{IP: net.IP(sa.Addr[:]), Port: sa.Port}
	default:
		return nil, fmt.Errorf("listenfd: %s: not a TCP socket", name)
	}
	if addr.Port == 0 {
		return nil, fmt.Errorf("listenfd: %s: socket not bound to a port", name)
	}
	syscall.CloseOnExec(fd) // the broker's own children do not get it
	return &Socket{f: os.NewFile(uintptr(fd), name), addr: addr}, nil
}

// Addr is the socket's address.
func (s *Socket) Addr() net.Addr { return s.addr }

// Listen listens on the socket and returns its listener. Closing the
// listener stops listening (Stop) but keeps the socket, so Listen may be
// called again.
func (s *Socket) Listen() (net.Listener, error) {
	err := control(s.f, func(fd int) error {
		if err := syscall.SetsockoptInt(fd, syscall.SOL_SOCKET, syscall.SO_REUSEADDR, 1); err != nil {
			return err
		}
		return syscall.Listen(fd, syscall.SOMAXCONN)
	})
	if err != nil {
		return nil, fmt.Errorf("listenfd: listen %s (%s): %w", s.f.Name(), s.addr, err)
	}
	ln, err := net.FileListener(s.f) // a duplicate of the descriptor
	if err != nil {
		Stop(s.f)
		return nil, fmt.Errorf("listenfd: listen %s (%s): %w", s.f.Name(), s.addr, err)
	}
	return &listener{Listener: ln, s: s}, nil
}

// listener stops the socket listening when closed.
type listener struct {
	net.Listener
	s *Socket
}

func (l *listener) Close() error {
	err := l.Listener.Close()
	return errors.Join(err, Stop(l.s.f))
}

// control runs fn on f's descriptor without changing its blocking mode
// (os.File.Fd would).
func control(f *os.File, fn func(fd int) error) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var ferr error
	if err := rc.Control(func(fd uintptr) { ferr = fn(int(fd)) }); err != nil {
		return err
	}
	return ferr
}
