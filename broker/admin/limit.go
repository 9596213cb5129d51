package admin

import (
	"net"
	"sync"
	"sync/atomic"
)

// LimitListener accepts at most n connections open at once from ln; one
// more is closed at once. refbroker serves the admin endpoint through it
// so that its clients cannot take the descriptors the store needs.
func LimitListener(ln net.Listener, n int) net.Listener {
	return &limitListener{Listener: ln, n: int64(n)}
}

type limitListener struct {
	net.Listener
	n    int64
	open atomic.Int64
}

func (l *limitListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		if l.open.Add(1) > l.n {
			l.open.Add(-1)
			c.Close()
			continue
		}
		return &limitConn{Conn: c, l: l}, nil
	}
}

type limitConn struct {
	net.Conn
	l    *limitListener
	once sync.Once
}

func (c *limitConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() { c.l.open.Add(-1) })
	return err
}
