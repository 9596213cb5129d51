package replication

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
)

// Mem is an in-memory Transport for tests: listeners by name, and
// connections between them that a test can cut (a partition: every
// connection between the two is closed and new ones are refused) and
// heal. Connections are net.Pipe pairs, so a reader that does not read
// holds its writer back, as a slow peer does.
type Mem struct {
	mu    sync.Mutex
	ls    map[string]*memListener
	cuts  map[[2]string]bool
	conns []*memConn
}

// NewMem returns an empty in-memory network.
func NewMem() *Mem { return &Mem{ls: map[string]*memListener{}, cuts: map[[2]string]bool{}} }

// ErrRefused is a dial to no listener, or across a cut.
var ErrRefused = errors.New("replication: connection refused")

// From returns a Transport whose dials come from the endpoint named
// from, so that Cut(from, addr) applies to them.
func (m *Mem) From(from string) Transport { return memEnd{m, from} }

type memEnd struct {
	m    *Mem
	from string
}

func (e memEnd) Dial(ctx context.Context, addr string) (net.Conn, error) {
	m := e.m
	m.mu.Lock()
	l := m.ls[addr]
	if l == nil || m.cuts[key(e.from, addr)] {
		m.mu.Unlock()
		return nil, fmt.Errorf("dial %s from %s: %w", addr, e.from, ErrRefused)
	}
	a, b := net.Pipe()
	ca := &memConn{Conn: a, ends: key(e.from, addr)}
	cb := &memConn{Conn: b, ends: key(e.from, addr)}
	m.conns = append(m.conns, ca, cb)
	m.mu.Unlock()
	select {
	case l.ch <- cb:
		return ca, nil
	case <-l.done:
		a.Close()
		b.Close()
		return nil, fmt.Errorf("dial %s: %w", addr, ErrRefused)
	case <-ctx.Done():
		a.Close()
		b.Close()
		return nil, ctx.Err()
	}
}

func (e memEnd) Listen(addr string) (net.Listener, error) {
	m := e.m
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.ls[addr] != nil {
		return nil, fmt.Errorf("listen %s: address in use", addr)
	}
	l := &memListener{m: m, addr: addr, ch: make(chan net.Conn), done: make(chan struct{})}
	m.ls[addr] = l
	return l, nil
}

func key(a, b string) [2]string {
	if a > b {
		a, b = b, a
	}
	return [2]string{a, b}
}

// Cut partitions a from b: their connections close, new dials fail.
func (m *Mem) Cut(a, b string) {
	m.mu.Lock()
	m.cuts[key(a, b)] = true
	var drop []*memConn
	live := m.conns[:0]
	for _, c := range m.conns {
		if c.ends == key(a, b) {
			drop = append(drop, c)
		} else {
			live = append(live, c)
		}
	}
	m.conns = live
	m.mu.Unlock()
	for _, c := range drop {
		c.Close()
	}
}

// Heal undoes Cut.
func (m *Mem) Heal(a, b string) {
	m.mu.Lock()
	delete(m.cuts, key(a, b))
	m.mu.Unlock()
}

type memConn struct {
	net.Conn
	ends [2]string
}

type memListener struct {
	m    *Mem
	addr string
	ch   chan net.Conn
	once sync.Once
	done chan struct{}
}

func (l *memListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.ch:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

func (l *memListener) Close() error {
	l.once.Do(func() {
		close(l.done)
		l.m.mu.Lock()
		if l.m.ls[l.addr] == l {
			delete(l.m.ls, l.addr)
		}
		l.m.mu.Unlock()
	})
	return nil
}

func (l *memListener) Addr() net.Addr { return memAddr(l.addr) }

type memAddr string

func (a memAddr) Network() string { return "mem" }
func (a memAddr) String() string  { return string(a) }
