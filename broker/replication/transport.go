package replication

import (
	"context"
	"net"
)

// Transport makes the connections of replication and of the witness:
// TCP in refbroker, in memory in tests (Mem).
type Transport interface {
	// Dial connects to addr.
	Dial(ctx context.Context, addr string) (net.Conn, error)
	// Listen accepts connections on addr.
	Listen(addr string) (net.Listener, error)
}

// TCP is the real network.
type TCP struct{}

// Dial implements Transport.
func (TCP) Dial(ctx context.Context, addr string) (net.Conn, error) {
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", addr)
	if err == nil {
		if tc, ok := c.(*net.TCPConn); ok {
			tc.SetNoDelay(true)
		}
	}
	return c, err
}

// Listen implements Transport.
func (TCP) Listen(addr string) (net.Listener, error) { return net.Listen("tcp", addr) }
